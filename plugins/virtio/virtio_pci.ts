/**
 * The virtio 1.x modern PCI transport (virtio 1.2 §4.1): vendor-specific
 * capabilities locating the common, notify, ISR and device configuration
 * structures in one 64-bit memory BAR, MSI-X in the same BAR, feature
 * negotiation, the status handshake and queue notifications.
 *
 * @module
 */
import type { LogLevel } from "../../bus/types.ts";
import { readLe, writeLe } from "../../bus/le.ts";
import { stateFields } from "../../bus/state.ts";
import type { MsixState } from "../pci/msix.ts";
import { ConfigSpace } from "../pci/config_space.ts";
import { MsixCapability } from "../pci/msix.ts";
import type { PciFunction, PciHost } from "../pci/pci_function.ts";
import { CAP_ID } from "../pci/registers.ts";
import {
  COMMON_CFG,
  DEVICE_STATUS,
  FEATURE,
  ISR,
  PCI_CAP,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI,
} from "./constants.ts";
import type { VirtioDevice, VirtioDeviceHost } from "./virtio_device.ts";
import { SplitVirtqueue, validateLayout } from "./virtqueue.ts";

/**
 * Layout of BAR 0 (offsets of each structure).
 *
 * @example
 * ```ts
 * import { VIRTIO_BAR } from "./virtio_pci.ts";
 * const notifyQueue1 = VIRTIO_BAR.NOTIFY + 1 * VIRTIO_BAR.NOTIFY_MULTIPLIER;
 * ```
 */
export const VIRTIO_BAR = {
  /** BAR index (64-bit, so BARs 0 and 1). */
  INDEX: 0,
  /** BAR size. */
  SIZE: 0x8000,
  /** Common configuration (§4.1.4.3). */
  COMMON: 0x0000,
  /** ISR status (§4.1.4.5). */
  ISR: 0x1000,
  /** Device-specific configuration (§4.1.4.6). */
  DEVICE: 0x2000,
  /** Notification area (§4.1.4.4). */
  NOTIFY: 0x3000,
  /** notify_off_multiplier: queue N notifies at NOTIFY + N * 4. */
  NOTIFY_MULTIPLIER: 4,
  /** MSI-X table. */
  MSIX_TABLE: 0x4000,
  /** MSI-X pending bit array. */
  MSIX_PBA: 0x5000,
  /** Size of each window. */
  WINDOW: 0x1000,
} as const;

/**
 * Options of {@link VirtioPciFunction}.
 *
 * @example
 * ```ts
 * import type { VirtioPciOptions } from "./virtio_pci.ts";
 * const o: VirtioPciOptions = { classCode: 0x00ff00 };
 * ```
 */
export interface VirtioPciOptions {
  /** PCI class code (default 0xff0000, "other"). */
  readonly classCode?: number;
  /** Offer VIRTIO_F_INDIRECT_DESC (default true). */
  readonly indirect?: boolean;
}

/**
 * Counters of ignored guest actions and device errors.
 *
 * @example
 * ```ts
 * import type { VirtioCounters } from "./virtio_pci.ts";
 * const c: VirtioCounters = { ignoredWrites: 0, ignoredNotifies: 0, refusedFeatures: 0, deviceErrors: 0 };
 * ```
 */
export interface VirtioCounters {
  /** Writes to read-only, misaligned or locked registers. */
  ignoredWrites: number;
  /** Notifications of disabled queues, before DRIVER_OK or without bus mastering. */
  ignoredNotifies: number;
  /** FEATURES_OK refusals. */
  refusedFeatures: number;
  /** Queue errors that set DEVICE_NEEDS_RESET. */
  deviceErrors: number;
}

/**
 * Plain-data state of a {@link VirtioPciFunction}: the common
 * configuration, each queue's layout and ring positions, the ISR and the
 * MSI-X table (the config space is saved by the bus).
 *
 * @example
 * ```ts
 * import type { VirtioPciState } from "./virtio_pci.ts";
 * const s: Partial<VirtioPciState> = { version: 1, status: 0 };
 * ```
 */
export interface VirtioPciState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** Device status. */
  readonly status: number;
  /** device_feature_select. */
  readonly deviceFeatureSelect: number;
  /** driver_feature_select. */
  readonly driverFeatureSelect: number;
  /** Accepted driver features as a hex string (64 bits). */
  readonly driverFeatures: string;
  /** config_msix_vector. */
  readonly configVector: number;
  /** config_generation. */
  readonly generation: number;
  /** queue_select. */
  readonly queueSelect: number;
  /** Interrupt status (INTx mode). */
  readonly isr: number;
  /** Per queue: layout, vector, enable and ring positions. */
  readonly queues: readonly {
    readonly size: number;
    readonly vector: number;
    readonly enabled: boolean;
    readonly desc: number;
    readonly driver: number;
    readonly device: number;
    readonly lastAvailIdx: number;
    readonly usedIdx: number;
  }[];
  /** The MSI-X table and pending bits. */
  readonly msix: MsixState;
}

interface QueueState {
  readonly max: number;
  size: number;
  vector: number;
  enabled: boolean;
  desc: number;
  driver: number;
  device: number;
  queue: SplitVirtqueue | null;
}

/**
 * A virtio device on PCI.
 *
 * @example
 * ```ts
 * import { VirtioPciFunction } from "./virtio_pci.ts";
 * import { VirtioRng } from "./rng.ts";
 * const fn = new VirtioPciFunction(new VirtioRng());
 * console.log(fn.config.read(0, 4).toString(16)); // "10441af4"
 * ```
 */
export class VirtioPciFunction<D extends VirtioDevice = VirtioDevice>
  implements PciFunction {
  /** Name in logs. */
  readonly name: string;
  /** The device model. */
  readonly device: D;
  /** PCI configuration space. */
  readonly config: ConfigSpace;
  /** MSI-X: vector 0..numQueues. */
  readonly msix: MsixCapability;
  /** Counters. */
  readonly counters: VirtioCounters = {
    ignoredWrites: 0,
    ignoredNotifies: 0,
    refusedFeatures: 0,
    deviceErrors: 0,
  };
  readonly #offered: bigint;
  readonly #queues: QueueState[];
  readonly #pciCfgCap: number;
  #host: PciHost | null = null;
  #status = 0;
  #deviceFeatureSelect = 0;
  #driverFeatureSelect = 0;
  #driverFeatures = 0n;
  #configVector = VIRTIO_MSI_NO_VECTOR;
  #generation = 0;
  #queueSelect = 0;
  #isr = 0;
  readonly #logged = new Set<string>();

  /** Build the PCI function for `device`. */
  constructor(device: D, options: VirtioPciOptions = {}) {
    this.device = device;
    this.name = device.name;
    const nq = device.queueSizes.length;
    if (nq < 1 || nq > 255) throw new RangeError(`bad queue count ${nq}`);
    if (device.configSize > VIRTIO_BAR.WINDOW) {
      throw new RangeError(`device config too large: ${device.configSize}`);
    }
    this.#offered = device.features | (1n << BigInt(FEATURE.VERSION_1)) |
      ((options.indirect ?? true)
        ? 1n << BigInt(FEATURE.RING_INDIRECT_DESC)
        : 0n);
    this.#queues = device.queueSizes.map((max) => ({
      max,
      size: max,
      vector: VIRTIO_MSI_NO_VECTOR,
      enabled: false,
      desc: 0,
      driver: 0,
      device: 0,
      queue: null,
    }));
    const cs = new ConfigSpace({
      vendorId: VIRTIO_PCI.VENDOR_ID,
      deviceId: VIRTIO_PCI.DEVICE_ID_BASE + device.deviceId,
      classCode: options.classCode ?? 0xff0000,
      revision: VIRTIO_PCI.REVISION,
      subsystemVendorId: VIRTIO_PCI.VENDOR_ID,
      subsystemId: VIRTIO_PCI.SUBSYSTEM_ID,
      interruptPin: 1,
    });
    this.config = cs;
    cs.defineBar(VIRTIO_BAR.INDEX, { kind: "mem64", size: VIRTIO_BAR.SIZE });
    const addCap = (
      type: number,
      offset: number,
      length: number,
      size: number = PCI_CAP.SIZE,
    ) => {
      const at = cs.addCapability(CAP_ID.VENDOR, size);
      cs.set8(at + PCI_CAP.LEN, size);
      cs.set8(at + PCI_CAP.CFG_TYPE, type);
      cs.set8(at + PCI_CAP.BAR, VIRTIO_BAR.INDEX);
      cs.set8(at + PCI_CAP.ID, 0);
      cs.set32(at + PCI_CAP.OFFSET, offset);
      cs.set32(at + PCI_CAP.LENGTH, length);
      return at;
    };
    addCap(PCI_CAP.TYPE_COMMON, VIRTIO_BAR.COMMON, COMMON_CFG.SIZE);
    const notify = addCap(
      PCI_CAP.TYPE_NOTIFY,
      VIRTIO_BAR.NOTIFY,
      nq * VIRTIO_BAR.NOTIFY_MULTIPLIER,
      PCI_CAP.NOTIFY_SIZE,
    );
    cs.set32(
      notify + PCI_CAP.NOTIFY_OFF_MULTIPLIER,
      VIRTIO_BAR.NOTIFY_MULTIPLIER,
    );
    addCap(PCI_CAP.TYPE_ISR, VIRTIO_BAR.ISR, 1);
    if (device.configSize > 0) {
      addCap(PCI_CAP.TYPE_DEVICE, VIRTIO_BAR.DEVICE, device.configSize);
    }
    // §4.1.4.9: the PCI configuration access window.
    const pc = addCap(PCI_CAP.TYPE_PCI, 0, 0, PCI_CAP.PCI_CFG_SIZE);
    this.#pciCfgCap = pc;
    cs.set8(pc + PCI_CAP.BAR, 0);
    cs.setWritable(pc + PCI_CAP.BAR, 1, 0xff);
    cs.setWritable(pc + PCI_CAP.OFFSET, 4, 0xffffffff);
    cs.setWritable(pc + PCI_CAP.LENGTH, 4, 0xffffffff);
    cs.setWritable(pc + PCI_CAP.PCI_CFG_DATA, 4, 0xffffffff);
    cs.onWrite(pc + PCI_CAP.PCI_CFG_DATA, 4, () => this.#pciCfgAccess(true));
    cs.onRead(pc + PCI_CAP.PCI_CFG_DATA, 4, () => this.#pciCfgAccess(false));
    this.msix = new MsixCapability(cs, {
      vectors: nq + 1,
      tableBar: VIRTIO_BAR.INDEX,
      tableOffset: VIRTIO_BAR.MSIX_TABLE,
      pbaBar: VIRTIO_BAR.INDEX,
      pbaOffset: VIRTIO_BAR.MSIX_PBA,
      sink: (msg, v) => this.#host?.signalMsi(msg, v),
      onEnableChange: (on) => {
        if (on) {
          this.#isr = 0;
          this.#host?.setIntx(false);
        }
      },
      routeChanged: (v, msg) => this.#host?.msixRouteChanged(v, msg),
      vectorMask: (v, masked) =>
        this.#host?.msixVectorMask?.(v, masked) ?? false,
      log: (level, msg) => this.#log(level, msg),
    });
  }

  /** Current device_status. */
  get status(): number {
    return this.#status;
  }
  /** Negotiated (driver) features. */
  get driverFeatures(): bigint {
    return this.#driverFeatures;
  }
  /** Features offered to the driver. */
  get offeredFeatures(): bigint {
    return this.#offered;
  }
  /** config_generation. */
  get configGeneration(): number {
    return this.#generation;
  }

  /** Receive host services and attach the device model. */
  attach(host: PciHost): void {
    this.#host = host;
    const dh: VirtioDeviceHost = {
      memory: host.memory,
      log: (level, msg) => host.log(level, msg),
      configChanged: () => this.#configChanged(),
    };
    this.device.attach(dh);
  }

  /** BAR 0 read. */
  barRead(bar: number, offset: number, data: Uint8Array): void {
    data.fill(0);
    if (bar !== VIRTIO_BAR.INDEX) return;
    const win = offset & ~(VIRTIO_BAR.WINDOW - 1);
    const rel = offset - win;
    switch (win) {
      case VIRTIO_BAR.COMMON:
        this.#commonRead(rel, data);
        return;
      case VIRTIO_BAR.ISR:
        if (rel === 0) data[0] = this.#readIsr();
        return;
      case VIRTIO_BAR.DEVICE: {
        const n = Math.min(data.length, this.device.configSize - rel);
        if (n > 0) this.device.readConfig(rel, data.subarray(0, n));
        return;
      }
      case VIRTIO_BAR.MSIX_TABLE:
        if (rel < this.msix.tableSize) this.msix.tableRead(rel, data);
        return;
      case VIRTIO_BAR.MSIX_PBA:
        if (rel < this.msix.pbaSize) this.msix.pbaRead(rel, data);
        return;
    }
  }

  /** BAR 0 write. */
  barWrite(bar: number, offset: number, data: Uint8Array): void {
    if (bar !== VIRTIO_BAR.INDEX) return;
    const win = offset & ~(VIRTIO_BAR.WINDOW - 1);
    const rel = offset - win;
    switch (win) {
      case VIRTIO_BAR.COMMON:
        this.#commonWrite(rel, data);
        return;
      case VIRTIO_BAR.DEVICE: {
        const n = Math.min(data.length, this.device.configSize - rel);
        if (n > 0) this.device.writeConfig(rel, data.subarray(0, n));
        else this.counters.ignoredWrites++;
        return;
      }
      case VIRTIO_BAR.NOTIFY:
        this.#notify(Math.floor(rel / VIRTIO_BAR.NOTIFY_MULTIPLIER));
        return;
      case VIRTIO_BAR.MSIX_TABLE:
        if (rel < this.msix.tableSize) this.msix.tableWrite(rel, data);
        else this.counters.ignoredWrites++;
        return;
      case VIRTIO_BAR.MSIX_PBA:
        this.msix.pbaWrite(rel, data);
        return;
      default:
        this.counters.ignoredWrites++;
    }
  }

  /** The transport state as plain data. */
  snapshot(): VirtioPciState {
    return {
      version: 1,
      status: this.#status,
      deviceFeatureSelect: this.#deviceFeatureSelect,
      driverFeatureSelect: this.#driverFeatureSelect,
      driverFeatures: this.#driverFeatures.toString(16),
      configVector: this.#configVector,
      generation: this.#generation,
      queueSelect: this.#queueSelect,
      isr: this.#isr,
      queues: this.#queues.map((q) => ({
        size: q.size,
        vector: q.vector,
        enabled: q.enabled,
        desc: q.desc,
        driver: q.driver,
        device: q.device,
        lastAvailIdx: q.queue?.lastAvailIdx ?? 0,
        usedIdx: q.queue?.usedIdx ?? 0,
      })),
      msix: this.msix.snapshot(),
    };
  }

  /**
   * Load a state from {@link snapshot} (same device and queue count),
   * after the bus restored the config space. Enabled queues are rebuilt
   * over guest memory at their saved ring positions. A malformed state (or
   * a queue layout outside RAM) throws TypeError and changes nothing.
   */
  restore(state: VirtioPciState): void {
    const f = stateFields(state, 1, "virtio");
    const features = f.string("driverFeatures");
    if (!/^[0-9a-f]{1,16}$/.test(features)) {
      throw new TypeError("virtio state: driverFeatures must be hex");
    }
    const list = state.queues;
    if (!Array.isArray(list) || list.length !== this.#queues.length) {
      throw new TypeError(
        `virtio state: ${this.#queues.length} queues expected`,
      );
    }
    const memory = this.#host?.memory;
    const queues = list.map((raw, i) => {
      const q = stateFields({ ...raw, version: 1 }, 1, `virtio queue ${i}`);
      const v = {
        size: q.int("size", 1, this.#queues[i].max),
        vector: q.int("vector", 0, 0xffff),
        enabled: q.bool("enabled"),
        desc: q.int("desc", 0, Number.MAX_SAFE_INTEGER),
        driver: q.int("driver", 0, Number.MAX_SAFE_INTEGER),
        device: q.int("device", 0, Number.MAX_SAFE_INTEGER),
        lastAvailIdx: q.int("lastAvailIdx", 0, 0xffff),
        usedIdx: q.int("usedIdx", 0, 0xffff),
      };
      if (v.enabled) {
        const bad = memory ? validateLayout(memory, v) : "not attached";
        if (bad) throw new TypeError(`virtio state: queue ${i}: ${bad}`);
      }
      return v;
    });
    const top = {
      status: f.int("status", 0, 0xff),
      deviceFeatureSelect: f.int("deviceFeatureSelect", 0, 0xffffffff),
      driverFeatureSelect: f.int("driverFeatureSelect", 0, 0xffffffff),
      configVector: f.int("configVector", 0, 0xffff),
      generation: f.int("generation", 0, 0xff),
      queueSelect: f.int("queueSelect", 0, 0xffff),
      isr: f.int("isr", 0, 0xff),
    };
    this.msix.restore(state.msix);
    this.#status = top.status;
    this.#deviceFeatureSelect = top.deviceFeatureSelect;
    this.#driverFeatureSelect = top.driverFeatureSelect;
    this.#driverFeatures = BigInt(`0x${features}`);
    this.#configVector = top.configVector;
    this.#generation = top.generation;
    this.#queueSelect = top.queueSelect;
    this.#isr = top.isr;
    queues.forEach((v, i) => {
      const q = this.#queues[i];
      Object.assign(q, {
        size: v.size,
        vector: v.vector,
        desc: v.desc,
        driver: v.driver,
        device: v.device,
        enabled: false,
        queue: null,
      });
      if (v.enabled) {
        this.#enableQueue(q);
        if (q.queue) {
          q.queue.lastAvailIdx = v.lastAvailIdx;
          q.queue.usedIdx = v.usedIdx;
        }
      }
    });
  }

  /** PCI reset: virtio reset plus MSI-X table reset. */
  reset(): void {
    this.#virtioReset();
    this.msix.reset();
  }

  /** Close the device model. */
  close(): void {
    this.device.close?.();
  }

  // ---- common configuration ----

  #commonRead(off: number, data: Uint8Array): void {
    const buf = new Uint8Array(COMMON_CFG.SIZE);
    const dv = new DataView(buf.buffer);
    const sel = this.#deviceFeatureSelect;
    const feat = sel < 2
      ? Number((this.#offered >> BigInt(32 * sel)) & 0xffffffffn)
      : 0;
    dv.setUint32(COMMON_CFG.DEVICE_FEATURE_SELECT, sel, true);
    dv.setUint32(COMMON_CFG.DEVICE_FEATURE, feat, true);
    const dsel = this.#driverFeatureSelect;
    dv.setUint32(COMMON_CFG.DRIVER_FEATURE_SELECT, dsel, true);
    dv.setUint32(
      COMMON_CFG.DRIVER_FEATURE,
      dsel < 2
        ? Number((this.#driverFeatures >> BigInt(32 * dsel)) & 0xffffffffn)
        : 0,
      true,
    );
    dv.setUint16(COMMON_CFG.CONFIG_MSIX_VECTOR, this.#configVector, true);
    dv.setUint16(COMMON_CFG.NUM_QUEUES, this.#queues.length, true);
    dv.setUint8(COMMON_CFG.DEVICE_STATUS, this.#status);
    dv.setUint8(COMMON_CFG.CONFIG_GENERATION, this.#generation);
    dv.setUint16(COMMON_CFG.QUEUE_SELECT, this.#queueSelect, true);
    const q = this.#queues[this.#queueSelect];
    if (q) {
      dv.setUint16(COMMON_CFG.QUEUE_SIZE, q.size, true);
      dv.setUint16(COMMON_CFG.QUEUE_MSIX_VECTOR, q.vector, true);
      dv.setUint16(COMMON_CFG.QUEUE_ENABLE, q.enabled ? 1 : 0, true);
      dv.setUint16(COMMON_CFG.QUEUE_NOTIFY_OFF, this.#queueSelect, true);
      writeLe(buf, q.desc, COMMON_CFG.QUEUE_DESC, 8);
      writeLe(buf, q.driver, COMMON_CFG.QUEUE_DRIVER, 8);
      writeLe(buf, q.device, COMMON_CFG.QUEUE_DEVICE, 8);
    }
    for (let i = 0; i < data.length; i++) {
      const o = off + i;
      data[i] = o < COMMON_CFG.SIZE ? buf[o] : 0;
    }
  }

  #commonWrite(off: number, data: Uint8Array): void {
    const size = data.length;
    const v = readLe(data, 0, Math.min(size, 4));
    const hi = size === 8 ? readLe(data, 4, 4) : 0;
    const q = this.#queues[this.#queueSelect];
    const field = (o: number, s: number) => off === o && size === s;
    if (field(COMMON_CFG.DEVICE_FEATURE_SELECT, 4)) {
      this.#deviceFeatureSelect = v;
    } else if (field(COMMON_CFG.DRIVER_FEATURE_SELECT, 4)) {
      this.#driverFeatureSelect = v;
    } else if (field(COMMON_CFG.DRIVER_FEATURE, 4)) {
      const sel = this.#driverFeatureSelect;
      if (sel >= 2 || (this.#status & DEVICE_STATUS.FEATURES_OK)) {
        this.counters.ignoredWrites++;
        return;
      }
      const shift = BigInt(32 * sel);
      this.#driverFeatures = (this.#driverFeatures & ~(0xffffffffn << shift)) |
        (BigInt(v) << shift);
    } else if (field(COMMON_CFG.CONFIG_MSIX_VECTOR, 2)) {
      this.#configVector = this.#vector(v);
    } else if (field(COMMON_CFG.DEVICE_STATUS, 1)) {
      this.#writeStatus(v);
    } else if (field(COMMON_CFG.QUEUE_SELECT, 2)) {
      this.#queueSelect = v;
    } else if (!q) {
      this.counters.ignoredWrites++;
    } else if (field(COMMON_CFG.QUEUE_MSIX_VECTOR, 2)) {
      q.vector = this.#vector(v);
    } else if (field(COMMON_CFG.QUEUE_SIZE, 2)) {
      if (q.enabled || v < 1 || v > q.max || (v & (v - 1)) !== 0) {
        this.counters.ignoredWrites++;
        return;
      }
      q.size = v;
    } else if (field(COMMON_CFG.QUEUE_ENABLE, 2)) {
      if (v !== 1 || q.enabled) {
        this.counters.ignoredWrites++;
        return;
      }
      this.#enableQueue(q);
    } else if (
      off >= COMMON_CFG.QUEUE_DESC && off < COMMON_CFG.SIZE &&
      (size === 4 || size === 8) && off % size === 0
    ) {
      if (q.enabled) {
        this.counters.ignoredWrites++;
        return;
      }
      const base = off & ~7;
      const key = base === COMMON_CFG.QUEUE_DESC
        ? "desc"
        : base === COMMON_CFG.QUEUE_DRIVER
        ? "driver"
        : "device";
      const cur = q[key];
      let lo = cur % 2 ** 32;
      let h = Math.floor(cur / 2 ** 32);
      if (size === 8) {
        lo = v;
        h = hi;
      } else if (off === base) lo = v;
      else h = v;
      q[key] = h * 2 ** 32 + lo;
    } else {
      this.counters.ignoredWrites++;
    }
  }

  #vector(v: number): number {
    // §4.1.5.1.2: the device may report NO_VECTOR for an unusable vector.
    return v < this.msix.vectors ? v : VIRTIO_MSI_NO_VECTOR;
  }

  #enableQueue(q: QueueState): void {
    const layout = {
      size: q.size,
      desc: q.desc,
      driver: q.driver,
      device: q.device,
    };
    const bad = validateLayout(this.#host!.memory, layout);
    if (bad) {
      this.#fail(`queue ${this.#queues.indexOf(q)}: ${bad}`);
      return;
    }
    q.queue = new SplitVirtqueue(this.#host!.memory, layout, {
      indirect: (this.#driverFeatures >> BigInt(FEATURE.RING_INDIRECT_DESC) &
        1n) === 1n,
    });
    q.enabled = true;
  }

  #writeStatus(v: number): void {
    if (v === 0) {
      this.#virtioReset();
      return;
    }
    const old = this.#status;
    if ((v & DEVICE_STATUS.FEATURES_OK) && !(old & DEVICE_STATUS.FEATURES_OK)) {
      const f = this.#driverFeatures;
      const v1 = 1n << BigInt(FEATURE.VERSION_1);
      if ((f & ~this.#offered) !== 0n || (f & v1) === 0n) {
        this.counters.refusedFeatures++;
        this.#logOnce(
          "features",
          "warn",
          `refusing FEATURES_OK for features 0x${f.toString(16)} (offered 0x${
            this.#offered.toString(16)
          }; VERSION_1 required)`,
        );
        v &= ~DEVICE_STATUS.FEATURES_OK;
      }
    }
    if (
      (v & DEVICE_STATUS.DRIVER_OK) && !(v & DEVICE_STATUS.FEATURES_OK)
    ) {
      this.counters.ignoredWrites++;
      v &= ~DEVICE_STATUS.DRIVER_OK;
    }
    this.#status = (v & ~DEVICE_STATUS.DEVICE_NEEDS_RESET & 0xff) |
      (old & DEVICE_STATUS.DEVICE_NEEDS_RESET);
    if (
      (this.#status & DEVICE_STATUS.DRIVER_OK) &&
      !(old & DEVICE_STATUS.DRIVER_OK)
    ) {
      this.device.activate?.(this.#driverFeatures);
      // Buffers made available before DRIVER_OK are consumed now.
      for (let i = 0; i < this.#queues.length; i++) {
        if (this.#queues[i].enabled) this.#process(i, false);
      }
    }
  }

  #virtioReset(): void {
    this.#status = 0;
    this.#deviceFeatureSelect = 0;
    this.#driverFeatureSelect = 0;
    this.#driverFeatures = 0n;
    this.#configVector = VIRTIO_MSI_NO_VECTOR;
    this.#queueSelect = 0;
    for (const q of this.#queues) {
      q.size = q.max;
      q.vector = VIRTIO_MSI_NO_VECTOR;
      q.enabled = false;
      q.desc = q.driver = q.device = 0;
      q.queue = null;
    }
    this.#isr = 0;
    this.#host?.setIntx(false);
    this.device.reset();
  }

  // ---- notifications and interrupts ----

  #notify(index: number): void {
    const q = this.#queues[index];
    if (!q || !q.enabled) {
      this.counters.ignoredNotifies++;
      return;
    }
    if (!(this.#status & DEVICE_STATUS.DRIVER_OK)) {
      // Processed when DRIVER_OK is set (§3.1.1 allows early kicks).
      this.counters.ignoredNotifies++;
      return;
    }
    this.#process(index, true);
  }

  #process(index: number, counted: boolean): void {
    const q = this.#queues[index];
    const vq = q.queue;
    if (!vq || (this.#status & DEVICE_STATUS.DEVICE_NEEDS_RESET)) {
      if (counted) this.counters.ignoredNotifies++;
      return;
    }
    if (!this.config.busMaster) {
      if (counted) this.counters.ignoredNotifies++;
      this.#logOnce(
        "busmaster",
        "warn",
        "queue notify without bus mastering enabled; ignored",
      );
      return;
    }
    const before = vq.usedIdx;
    try {
      this.device.processQueue(index, vq);
    } catch (e) {
      this.#fail(`queue ${index}: ${e instanceof Error ? e.message : e}`);
    }
    if (vq.usedIdx === before) return;
    let suppressed = false;
    try {
      suppressed = vq.interruptSuppressed();
    } catch {
      suppressed = false;
    }
    if (!suppressed) this.#interrupt(q.vector, ISR.QUEUE);
  }

  #interrupt(vector: number, isrBit: number): void {
    if (this.msix.enabled) {
      if (vector !== VIRTIO_MSI_NO_VECTOR) this.msix.trigger(vector);
      return;
    }
    this.#isr |= isrBit;
    this.#host?.setIntx(true);
  }

  #readIsr(): number {
    const v = this.#isr;
    this.#isr = 0;
    if (v !== 0) this.#host?.setIntx(false);
    return v;
  }

  #configChanged(): void {
    this.#generation = (this.#generation + 1) & 0xff;
    if (this.#status & DEVICE_STATUS.DRIVER_OK) {
      this.#interrupt(this.#configVector, ISR.CONFIG);
    }
  }

  /** Device error: set DEVICE_NEEDS_RESET and tell the driver (§2.1.2). */
  #fail(reason: string): void {
    this.counters.deviceErrors++;
    this.#logOnce("fail", "error", `device needs reset: ${reason}`);
    if (this.#status & DEVICE_STATUS.DEVICE_NEEDS_RESET) return;
    this.#status |= DEVICE_STATUS.DEVICE_NEEDS_RESET;
    if (this.#status & DEVICE_STATUS.DRIVER_OK) {
      this.#interrupt(this.#configVector, ISR.CONFIG);
    }
  }

  /** The VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.9.1). */
  #pciCfgAccess(write: boolean): void {
    const cs = this.config;
    const at = this.#pciCfgCap;
    const bar = cs.get8(at + PCI_CAP.BAR);
    const len = cs.get32(at + PCI_CAP.LENGTH);
    const off = cs.get32(at + PCI_CAP.OFFSET);
    const window = cs.bytes.subarray(
      at + PCI_CAP.PCI_CFG_DATA,
      at + PCI_CAP.PCI_CFG_DATA + 4,
    );
    if (
      bar !== VIRTIO_BAR.INDEX || !(len === 1 || len === 2 || len === 4) ||
      off % len !== 0 || off + len > VIRTIO_BAR.SIZE
    ) {
      if (write) this.counters.ignoredWrites++;
      return;
    }
    if (write) this.barWrite(bar, off, window.slice(0, len));
    else {
      const d = new Uint8Array(len);
      this.barRead(bar, off, d);
      window.set(d);
    }
  }

  #log(level: LogLevel, msg: string): void {
    this.#host?.log(level, msg);
  }

  #logOnce(key: string, level: LogLevel, msg: string): void {
    if (this.#logged.has(key)) return;
    this.#logged.add(key);
    this.#log(level, msg);
  }
}
