/**
 * The contexts a VM hands its plugins, built over the VM's internals
 * ({@link ContextHost}): a {@link DeviceContext} for every device and, for
 * the interrupt controllers the VM marked (`bus/irqchip.ts`), an
 * {@link IrqChipContext} that adds routes, EOIs, resampling and ExtINT.
 * One context per plugin, so logs name it.
 *
 * Interrupt lines are a wired OR: each device drives its own source, and
 * the line the irqchip sees is high while any unmasked source on it is.
 *
 * @module
 */
import type {
  DeviceContext,
  GuestMemory,
  InterruptLine,
  LogLevel,
  Mapping,
  MsiInterrupt,
  MsiMessage,
  Region,
  TickSource,
  TickTarget,
  TriggerMode,
} from "../bus/types.ts";
import type {
  ExtIntSource,
  IrqChipContext,
  LineController,
  MsiIrqfd,
} from "../bus/irqchip.ts";
import type { Clock } from "../bus/types.ts";
import { LineSource, MsiSource, type Wire } from "../bus/interrupt_sources.ts";
import type { CoreVm } from "../ffi/core_vm.ts";

/** The highest GSI a source may name. */
const MAX_LINE = 1023;

/** What the VM lends the contexts of its plugins. */
export interface ContextHost {
  /** The core VM. */
  readonly core: CoreVm;
  /** Irqchip arrangement. */
  readonly irqchip: "kernel" | "split";
  /** Number of vCPUs (default 1). */
  readonly vcpus?: number;
  /** Guest RAM. */
  readonly memory: GuestMemory;
  /** Plugin clock. */
  readonly clock: Clock;
  /** True after close. */
  closed(): boolean;
  /** Log on behalf of `source`. */
  log(level: LogLevel, source: string, msg: string): void;
  /** Put a region on the bus for `owner`. */
  addRegion(region: Region, owner: string): void;
  /** Take a region off the bus. */
  removeRegion(region: Region): void;
  /** Drive a GSI line (KVM or the userspace line controllers). */
  setLine(gsi: number, level: boolean): void;
  /** Deliver an MSI; false when the guest's state blocked it. */
  signalMsi(msg: MsiMessage): boolean;
  /** Set or clear the MSI route of `gsi`. */
  routeMsi(gsi: number, msg: MsiMessage | null): void;
  /** End the run with an `exit` result. */
  exit(status: number): void;
  /** End the run with a `halt` result (unless an exit came first). */
  halt(): void;
  /** End the run with a `sleep` or `poweroff` result (ACPI S-state). */
  sleep(state: number): void;
  /** A tick source owned by the VM. */
  createTickSource(target: TickTarget): TickSource;
  /** Call `listener` with the vector of every end of interrupt. */
  addEoiListener(listener: (vector: number) => void): void;
  /** Send every GSI level to `controller` (split irqchip). */
  addLineController(controller: LineController): void;
  /** Make `source` the VM's ExtINT source (split irqchip). */
  setExtint(source: ExtIntSource): void;
}

/**
 * The contexts of one VM's plugins and the wired-OR state of its lines.
 *
 * @example
 * ```ts ignore
 * import { PluginContexts } from "./context.ts";
 * const contexts = new PluginContexts(host);
 * plugin.setup(contexts.device(plugin.name));
 * ```
 */
export class PluginContexts {
  readonly #host: ContextHost;
  readonly #wires = new Map<number, Wire>();
  readonly #lines: LineSource[] = [];
  readonly #msis: MsiSource[] = [];

  /** Contexts over `host`. */
  constructor(host: ContextHost) {
    this.#host = host;
  }

  /**
   * Power-on for every interrupt source: levels low, masks and held
   * interrupts cleared, without signalling (the irqchip is reset too).
   */
  reset(): void {
    for (const w of this.#wires.values()) w.high = 0;
    for (const l of this.#lines) l.forget();
    for (const m of this.#msis) m.forget();
  }

  /** Current level of line `gsi` as the plugins drive it (wired OR). */
  lineLevel(gsi: number): boolean {
    return (this.#wires.get(gsi)?.high ?? 0) > 0;
  }

  /** The context of device plugin `source`. */
  device(source: string): DeviceContext {
    const host = this.#host;
    const lines = new Map<number, LineSource>();
    return {
      interruptLine: (line: number, mode: TriggerMode): InterruptLine => {
        if (!Number.isInteger(line) || line < 0 || line > MAX_LINE) {
          throw new RangeError(`${source}: bad interrupt line ${line}`);
        }
        if (mode !== "edge" && mode !== "level") {
          throw new RangeError(`${source}: bad trigger mode "${mode}"`);
        }
        let s = lines.get(line);
        if (s) {
          if (s.mode !== mode) {
            throw new RangeError(
              `${source}: line ${line} is already an ${s.mode} source`,
            );
          }
          return s;
        }
        let wire = this.#wires.get(line);
        if (!wire) {
          wire = { high: 0 };
          this.#wires.set(line, wire);
        }
        s = new LineSource(line, mode, wire, {
          level: (high) => {
            if (!host.closed()) host.setLine(line, high);
          },
          pulse: () => {
            if (host.closed()) return;
            host.setLine(line, true);
            host.setLine(line, false);
          },
        });
        lines.set(line, s);
        this.#lines.push(s);
        return s;
      },
      msiInterrupt: (): MsiInterrupt => {
        const m = new MsiSource((msg) => {
          if (!host.closed()) host.signalMsi(msg);
        });
        this.#msis.push(m);
        return m;
      },
      memory: host.memory,
      clock: host.clock,
      log: (level, msg) => host.log(level, source, msg),
      map: (region: Region): Mapping => {
        host.addRegion(region, source);
        let mapped = true;
        return {
          range: region.range,
          unmap: () => {
            if (mapped && !host.closed()) host.removeRegion(region);
            mapped = false;
          },
        };
      },
      exit: (status: number) => host.exit(status),
      halt: () => host.halt(),
      sleep: (state: number) => host.sleep(state),
      createTickSource: (target: TickTarget) => host.createTickSource(target),
    };
  }

  /** The context of interrupt-controller plugin `source`. */
  irqchip(source: string): IrqChipContext {
    const host = this.#host;
    const core = host.core;
    const split = () => {
      if (host.irqchip !== "split") {
        throw new Error(
          `${source}: a userspace interrupt controller needs irqchip "split"`,
        );
      }
    };
    let extint = false;
    return {
      ...this.device(source),
      signalMsi: (msg: MsiMessage) => host.signalMsi(msg),
      routeMsi: (gsi: number, msg: MsiMessage | null) =>
        host.routeMsi(gsi, msg),
      resample: (gsi: number) => {
        if (host.irqchip === "split") core.irqfdResampleGsi(gsi);
      },
      lapicEoi: (vcpu = 0) => {
        core.lapicEoi(vcpu);
      },
      lapicHasVector: (vector: number): boolean => {
        const word = 0x10 * ((vector & 0xff) >> 5);
        const bit = 1 << (vector & 31);
        // Any vCPU's LAPIC: a level interrupt may be routed to an AP. With
        // more than one vCPU each runs on its own thread, and one inside
        // KVM_RUN cannot be read (its vCPU is busy) and counts as not
        // holding it: a wrong answer costs one spurious retrigger, which
        // level handlers tolerate.
        const vcpus = host.vcpus ?? 1;
        for (let i = 0; i < vcpus; i++) {
          let regs: number[];
          try {
            regs = core.lapicRead(i, [0x100 + word, 0x200 + word]);
          } catch (e) {
            if (vcpus === 1) throw e;
            continue;
          }
          if (((regs[0] | regs[1]) & bit) !== 0) return true;
        }
        return false;
      },
      msiIrqfd: (): MsiIrqfd => {
        const gsi = core.routeAllocate();
        let id: number;
        try {
          id = core.irqfdCreate(gsi, false);
        } catch (e) {
          core.routeRelease(gsi);
          throw e;
        }
        let closed = false;
        return {
          gsi,
          route: (msg: MsiMessage | null) => host.routeMsi(gsi, msg),
          fire: () => core.irqfdTrigger(id),
          mask: () => core.irqfdSetAttached(id, false),
          unmask: () => {
            core.irqfdSetAttached(id, true);
            return core.irqfdTakePending(id);
          },
          close: () => {
            if (closed || host.closed()) return;
            closed = true;
            core.irqfdDestroy(id);
            core.routeRelease(gsi);
          },
        };
      },
      onEoi: (listener) => host.addEoiListener(listener),
      addLineController: (c) => {
        split();
        host.addLineController(c);
      },
      setExtint: (src) => {
        split();
        if (extint) throw new Error(`${source}: ExtINT source already set`);
        host.setExtint(src);
        extint = true;
      },
    };
  }
}
