/**
 * `CoreVm`: the typed face of one core VM. Everything above `ffi/` calls
 * the core through this class: named methods, numbers and typed results;
 * no op codes, no BigInt on the exit path, no raw pointers.
 *
 * @module
 */
import {
  AbiConst,
  IrqchipCode,
  PacingCode,
  RangeAction,
  SpaceCode,
  StructFields,
  TickPolicyCode,
  TimerTargetCode,
} from "./abi.ts";
import { type CoreLibrary, type CoreSymbols, openLibrary } from "./library.ts";

/** Address space of a range. */
export type CoreSpace = "pio" | "mmio";
/** Irqchip arrangement. */
export type CoreIrqchip = "kernel" | "split";

type Fields<K extends keyof typeof StructFields> =
  (typeof StructFields)[K][number];
/** A decoded all-u64 out-struct. */
export type CoreStruct<K extends keyof typeof StructFields> = Record<
  Fields<K>,
  number
>;

/** Options of {@link CoreVm.create}. */
export interface CoreVmConfig {
  /** Guest RAM in bytes. */
  memSize: number;
  /** Irqchip arrangement. */
  irqchip: CoreIrqchip;
  /** Forward unclaimed accesses. */
  strict: boolean;
  /** Nested-KVM workaround: re-signal level MSIs left without EOI. */
  quirkLevelResignal?: boolean;
  /** vCPUs, 1..64 (default 1): vCPU 0 boots, the others wait for INIT/SIPI. */
  vcpus?: number;
  /** Core library path (default: see `defaultLibraryPath`). */
  libraryPath?: string;
}

const SPACE = { pio: SpaceCode.Pio, mmio: SpaceCode.Mmio } as const;

/**
 * One VM of the core.
 *
 * @example
 * ```ts ignore
 * import { CoreVm } from "./core_vm.ts";
 * const vm = CoreVm.create({ memSize: 16 << 20, irqchip: "kernel", strict: false });
 * console.log(vm.info().event_thread); // 0: no timers, no thread
 * vm.destroy();
 * ```
 */
export class CoreVm {
  readonly #lib: CoreLibrary;
  readonly #sym: CoreSymbols;
  /** The core's handle (a small integer; never reused). */
  readonly handle: number;
  readonly #u64 = new BigUint64Array(16);
  readonly #u32 = new Uint32Array(64);

  private constructor(lib: CoreLibrary, handle: number) {
    this.#lib = lib;
    this.#sym = lib.symbols;
    this.handle = handle;
  }

  /** Create a VM with `config.vcpus` vCPUs (default 1). */
  static create(config: CoreVmConfig): CoreVm {
    const lib = openLibrary(config.libraryPath);
    const cfg = new DataView(new ArrayBuffer(24));
    cfg.setUint32(16, config.vcpus ?? 1, true);
    cfg.setBigUint64(0, BigInt(config.memSize), true);
    cfg.setUint32(
      8,
      config.irqchip === "split" ? IrqchipCode.Split : IrqchipCode.Kernel,
      true,
    );
    cfg.setUint32(
      12,
      (config.strict ? AbiConst.DV_VM_STRICT : 0) |
        (config.quirkLevelResignal ? AbiConst.DV_VM_QUIRK_LEVEL_RESIGNAL : 0),
      true,
    );
    const out = new Uint32Array(1);
    lib.check(
      lib.symbols.dv_vm_create(new Uint8Array(cfg.buffer), out),
      "create VM",
    );
    return new CoreVm(lib, out[0]);
  }

  /** Throw a `CoreError` for a negative `rc`; return `rc` otherwise. */
  check(rc: number, what: string): number {
    return rc >= 0 ? rc : this.#lib.check(rc, what);
  }

  #struct<K extends keyof typeof StructFields>(
    kind: K,
    rc: number,
    what: string,
  ): CoreStruct<K> {
    this.check(rc, what);
    const out = {} as Record<string, number>;
    StructFields[kind].forEach((f, i) => out[f] = Number(this.#u64[i]));
    return out as CoreStruct<K>;
  }

  /** Destroy the VM (idempotence is the caller's). */
  destroy(): void {
    this.check(this.#sym.dv_vm_destroy(this.handle), "destroy VM");
  }

  /** Load an ELF64 image with four guest arguments. */
  loadElf(image: Uint8Array, args: BigUint64Array): void {
    this.check(
      this.#sym.dv_vm_load_elf(
        this.handle,
        image,
        BigInt(image.length),
        args,
      ),
      "load ELF",
    );
  }

  /** Load a Multiboot image with its encoded extras blob. */
  loadMultiboot(image: Uint8Array, extras: Uint8Array): void {
    this.check(
      this.#sym.dv_vm_load_multiboot(
        this.handle,
        image,
        BigInt(image.length),
        extras,
        BigInt(extras.length),
      ),
      "load Multiboot image",
    );
  }

  /** Guest RAM: host pointer value and size. */
  memory(): { address: bigint; size: number } {
    this.check(this.#sym.dv_vm_memory(this.handle, this.#u64), "memory");
    return { address: this.#u64[0], size: Number(this.#u64[1]) };
  }

  /** Forward accesses in a range to the caller, tagged with `region`. */
  forwardRange(
    space: CoreSpace,
    base: number,
    length: number,
    region: number,
  ): void {
    this.check(
      this.#sym.dv_vm_range_add(
        this.handle,
        SPACE[space],
        BigInt(base),
        BigInt(length),
        RangeAction.Forward,
        region,
        0n,
      ),
      `claim ${space} range`,
    );
  }

  /** Answer a range in the core: writes ignored, reads `readValue`. */
  ignoreRange(
    space: CoreSpace,
    base: number,
    length: number,
    readValue: bigint,
  ): void {
    this.check(
      this.#sym.dv_vm_range_add(
        this.handle,
        SPACE[space],
        BigInt(base),
        BigInt(length),
        RangeAction.Ignore,
        0,
        readValue,
      ),
      `ignore ${space} range`,
    );
  }

  /** Remove the range at `base`. */
  removeRange(space: CoreSpace, base: number): void {
    this.check(
      this.#sym.dv_vm_range_remove(this.handle, SPACE[space], BigInt(base)),
      `release ${space} range`,
    );
  }

  /**
   * Run vCPU `vcpu` until an exit for the caller: the raw `DvReason` or a
   * negative error code (the hot path: the caller checks).
   */
  run(vcpu: number): number {
    return this.#sym.dv_vcpu_run(this.handle, vcpu);
  }

  /**
   * Start the vCPU threads (with more than one vCPU every vCPU, vCPU 0
   * too, runs `KVM_RUN` on a core thread; the run loop then waits with
   * {@link waitExits}); no-op with one vCPU or while they run.
   */
  startAps(): void {
    this.check(this.#sym.dv_vm_start_aps(this.handle), "start APs");
  }

  /** Stop and join the vCPU threads (idempotent). */
  stopAps(): void {
    this.check(this.#sym.dv_vm_stop_aps(this.handle), "stop APs");
  }

  /**
   * End a run leaving the AP threads running (runs in slices): the next
   * {@link startAps} adopts them; {@link stopAps}, or a call that needs an
   * AP's vCPU or the whole VM still (state, reset, snapshot), stops them.
   */
  detachAps(): void {
    this.check(this.#sym.dv_vm_detach_aps(this.handle), "detach APs");
  }

  /**
   * Let a vCPU whose exit {@link waitExits} took run again without
   * waiting (a run ending with its vCPU threads left running).
   */
  releaseAp(vcpu: number): void {
    this.check(this.#sym.dv_vm_release_ap(this.handle, vcpu), "release AP");
  }

  /**
   * The run loop's one call per batch of exits while the vCPU threads run:
   * release the vCPUs in `buf[0..released)` (their exits handled), wait
   * until at least one vCPU parks an exit, take every parked one into
   * `buf` (at most its length, 1..64) and return how many. A stop, the run
   * timeout and wake-ups arrive as vCPU 0's exits. The raw result (a
   * negative error code when no vCPU thread runs): the caller checks.
   */
  waitExits(buf: Uint32Array, released: number): number {
    return this.#sym.dv_vm_wait_exits(
      this.handle,
      buf,
      released,
      buf.length,
    );
  }

  /**
   * vCPU `vcpu`'s KVM MP state: 0 runnable, 1 uninitialized (an AP waiting
   * for INIT/SIPI), 2 INIT received, 3 halted, 4 SIPI received.
   */
  mpState(vcpu: number): number {
    return this.check(
      this.#sym.dv_vcpu_mp_state(this.handle, vcpu),
      "MP state",
    );
  }

  /**
   * Set vCPU `vcpu`'s CPU model from the core's spec text (items one per
   * line: template, `+feature`/`-feature`, `key=value`). Before the first
   * run only. Throws a `CoreError` naming what the host lacks.
   */
  setCpu(vcpu: number, spec: string): void {
    const b = new TextEncoder().encode(spec);
    this.check(
      this.#sym.dv_vcpu_set_cpu(this.handle, vcpu, b, BigInt(b.length)),
      "CPU model",
    );
  }

  /** CPUID answer (EAX, EBX, ECX, EDX) of vCPU `vcpu`, or null if absent. */
  cpuid(
    vcpu: number,
    leaf: number,
    subleaf = 0,
  ): [number, number, number, number] | null {
    const out = new Uint32Array(4);
    const found = this.check(
      this.#sym.dv_vcpu_cpuid(
        this.handle,
        vcpu,
        leaf >>> 0,
        subleaf >>> 0,
        out,
      ),
      "CPUID",
    );
    return found ? [out[0], out[1], out[2], out[3]] : null;
  }

  /** Raw crash report of vCPU `vcpu` (`DvCrashReport`, as bigints). */
  crashReport(vcpu: number): Record<Fields<"DvCrashReport">, bigint> {
    const fields = StructFields.DvCrashReport;
    const out = new BigUint64Array(fields.length);
    this.check(
      this.#sym.dv_vcpu_crash_report(this.handle, vcpu, out),
      "crash report",
    );
    const r = {} as Record<string, bigint>;
    fields.forEach((f, i) => r[f] = out[i]);
    return r as Record<Fields<"DvCrashReport">, bigint>;
  }

  /** Stop (consumed by the current or next run). */
  stop(): void {
    this.check(this.#sym.dv_vm_stop(this.handle), "stop");
  }

  /** Set (> 0 ns from now) or cancel (0) the run timeout. */
  setTimeout(ns: number): void {
    this.check(this.#sym.dv_vm_set_timeout(this.handle, BigInt(ns)), "timeout");
  }

  /** Set (> 0 ns from now) or cancel (0) a wake-up exit. */
  setWake(ns: number): void {
    this.check(this.#sym.dv_vm_set_wake(this.handle, BigInt(ns)), "wake alarm");
  }

  /** Power-on reset of vCPUs, in-kernel irqchip, timers (and RAM). */
  reset(zeroMemory: boolean): void {
    this.check(
      this.#sym.dv_vm_reset(
        this.handle,
        zeroMemory ? AbiConst.DV_RESET_MEMORY : 0,
      ),
      "reset",
    );
  }

  /** VM-wide facts and counters. */
  info(): CoreStruct<"DvVmInfo"> {
    return this.#struct(
      "DvVmInfo",
      this.#sym.dv_vm_info(this.handle, this.#u64),
      "VM info",
    );
  }

  /** Which backend reaches the core (`deno-ffi` or `napi`). */
  get backend(): string {
    return this.#lib.kind;
  }

  /**
   * vCPU `vcpu`'s exit record as a zero-copy `ArrayBuffer` (valid until
   * {@link destroy}), from whichever backend is in use.
   */
  recordBuffer(vcpu: number): ArrayBuffer {
    return this.#lib.recordBuffer(this.handle, vcpu);
  }

  /** Guest RAM as a zero-copy `ArrayBuffer` (valid until {@link destroy}). */
  memoryBuffer(): ArrayBuffer {
    return this.#lib.memoryBuffer(this.handle);
  }

  /**
   * Detach a buffer of {@link recordBuffer} / {@link memoryBuffer} in
   * place (no copy): its views throw or read as empty from then on.
   */
  detachBuffer(buffer: ArrayBuffer): void {
    this.#lib.detachBuffer(buffer);
  }

  /** Address of vCPU `vcpu`'s exit record. */
  recordAddress(vcpu: number): bigint {
    this.check(
      this.#sym.dv_vcpu_record(this.handle, vcpu, this.#u64),
      "exit record",
    );
    return this.#u64[0];
  }

  /** Run-loop counters of a vCPU. */
  counters(vcpu: number): CoreStruct<"DvVcpuCounters"> {
    return this.#struct(
      "DvVcpuCounters",
      this.#sym.dv_vcpu_counters(this.handle, vcpu, this.#u64),
      "counters",
    );
  }

  /** TSC frequency of a vCPU in kHz. */
  tscKhz(vcpu: number): number {
    return this.check(this.#sym.dv_vcpu_tsc_khz(this.handle, vcpu), "TSC");
  }

  /** 32-bit LAPIC registers of a vCPU at byte offsets (SDM table 11-1). */
  lapicRead(vcpu: number, offsets: readonly number[]): number[] {
    const offs = new Uint32Array(offsets);
    this.check(
      this.#sym.dv_vcpu_lapic_read(
        this.handle,
        vcpu,
        offs,
        BigInt(offs.length),
        this.#u32,
      ),
      "LAPIC read",
    );
    return Array.from(this.#u32.subarray(0, offs.length));
  }

  /** Retire the highest in-service LAPIC vector; null when none. */
  lapicEoi(vcpu: number): number | null {
    const r = this.check(
      this.#sym.dv_vcpu_lapic_eoi(this.handle, vcpu),
      "LAPIC EOI",
    );
    return r === AbiConst.DV_LAPIC_EOI_NONE ? null : r;
  }

  /** Ask for or cancel an interrupt-window exit. */
  setIrqWindow(vcpu: number, on: boolean): void {
    this.check(
      this.#sym.dv_vcpu_set_irq_window(this.handle, vcpu, on ? 1 : 0),
      "interrupt window",
    );
  }

  /**
   * Make vCPU `vcpu`'s current or next run return a wake-up (from the JS
   * thread while the vCPU runs on its own thread).
   */
  wakeVcpu(vcpu: number): void {
    this.check(this.#sym.dv_vcpu_wake(this.handle, vcpu), "wake vCPU");
  }

  /** Whether the vCPU can take an injected interrupt now. */
  readyForInjection(vcpu: number): boolean {
    return this.check(
      this.#sym.dv_vcpu_ready_for_injection(this.handle, vcpu),
      "ready for injection",
    ) === 1;
  }

  /** Inject an ExtINT vector if the vCPU is ready; false if not. */
  injectExtint(vcpu: number, vector: number): boolean {
    return this.check(
      this.#sym.dv_vcpu_inject_extint(this.handle, vcpu, vector),
      "inject ExtINT",
    ) === 1;
  }

  /** Set an in-kernel irqchip line. */
  irqLine(gsi: number, level: boolean): void {
    this.check(
      this.#sym.dv_irq_line(this.handle, gsi, level ? 1 : 0),
      `IRQ line ${gsi}`,
    );
  }

  /**
   * KVM_SIGNAL_MSI; the raw result (> 0 delivered, 0 blocked, < 0 error
   * code) so the caller can count guest-caused refusals without throwing.
   */
  signalMsi(address: number, data: number): number {
    return this.#sym.dv_irq_signal_msi(
      this.handle,
      address >>> 0,
      Math.floor(address / 0x1_0000_0000) >>> 0,
      data >>> 0,
    );
  }

  /** Inject `vector` at an xAPIC destination; KVM's result. */
  requestInterrupt(
    vector: number,
    destination: number,
    level: boolean,
    logical: boolean,
  ): number {
    const flags = (level ? AbiConst.DV_IRQ_LEVEL : 0) |
      (logical ? AbiConst.DV_IRQ_LOGICAL : 0);
    return this.check(
      this.#sym.dv_irq_request(this.handle, vector, destination, flags),
      "request interrupt",
    );
  }

  /** Route `gsi` to an MSI. */
  routeSetMsi(gsi: number, address: number, data: number): void {
    this.check(
      this.#sym.dv_route_set_msi(
        this.handle,
        gsi,
        address >>> 0,
        Math.floor(address / 0x1_0000_0000) >>> 0,
        data >>> 0,
      ),
      `route GSI ${gsi}`,
    );
  }

  /** Remove the routes of `gsi`. */
  routeClear(gsi: number): void {
    this.check(this.#sym.dv_route_clear(this.handle, gsi), `unroute ${gsi}`);
  }

  /** Allocate a GSI for an MSI route. */
  routeAllocate(): number {
    return this.check(this.#sym.dv_route_allocate(this.handle), "GSI");
  }

  /** Release an allocated GSI. */
  routeRelease(gsi: number): void {
    this.check(this.#sym.dv_route_release(this.handle, gsi), "release GSI");
  }

  /** Create an irqfd on `gsi`; returns its id. */
  irqfdCreate(gsi: number, resample: boolean): number {
    return this.check(
      this.#sym.dv_irqfd_create(
        this.handle,
        gsi,
        resample ? AbiConst.DV_IRQFD_RESAMPLE : 0,
      ),
      `irqfd on GSI ${gsi}`,
    );
  }

  /** Signal an irqfd. */
  irqfdTrigger(id: number): void {
    this.check(this.#sym.dv_irqfd_trigger(this.handle, id), "fire irqfd");
  }

  /** Attach or detach an irqfd. */
  irqfdSetAttached(id: number, attached: boolean): void {
    this.check(
      this.#sym.dv_irqfd_set_attached(this.handle, id, attached ? 1 : 0),
      attached ? "attach irqfd" : "detach irqfd",
    );
  }

  /** Consume a detached irqfd's signal; true if it was signalled. */
  irqfdTakePending(id: number): boolean {
    return this.check(
      this.#sym.dv_irqfd_take_pending(this.handle, id),
      "irqfd pending",
    ) === 1;
  }

  /** Signal the resamplefds on `gsi`; returns how many. */
  irqfdResampleGsi(gsi: number): number {
    return this.check(
      this.#sym.dv_irqfd_resample_gsi(this.handle, gsi),
      `resample GSI ${gsi}`,
    );
  }

  /** Destroy an irqfd. */
  irqfdDestroy(id: number): void {
    this.check(this.#sym.dv_irqfd_destroy(this.handle, id), "close irqfd");
  }

  /** Start a level source on `gsi`; returns its id. */
  levelCreate(gsi: number): number {
    return this.check(
      this.#sym.dv_level_create(this.handle, gsi),
      `level source on GSI ${gsi}`,
    );
  }

  /** Add work items to a level source. */
  levelAdd(id: number, items: number): void {
    this.check(
      this.#sym.dv_level_add(this.handle, id, BigInt(items)),
      "level work",
    );
  }

  /** Counters of a level source. */
  levelStats(id: number): CoreStruct<"DvLevelStats"> {
    return this.#struct(
      "DvLevelStats",
      this.#sym.dv_level_stats(this.handle, id, this.#u64),
      "level source stats",
    );
  }

  /** Stop a level source. */
  levelDestroy(id: number): void {
    this.check(this.#sym.dv_level_destroy(this.handle, id), "level source");
  }

  /** Create a disarmed timer to a GSI or a direct MSI; returns its id. */
  timerCreate(
    target:
      | { gsi: number }
      | { vector: number; destination: number },
  ): number {
    const r = "gsi" in target
      ? this.#sym.dv_timer_create(
        this.handle,
        TimerTargetCode.Gsi,
        target.gsi,
        0,
        0,
      )
      : this.#sym.dv_timer_create(
        this.handle,
        TimerTargetCode.Msi,
        0,
        target.vector,
        target.destination,
      );
    return this.check(r, "create timer");
  }

  /** Arm a timer with a period in ns. */
  timerArm(id: number, periodNs: number): void {
    this.check(
      this.#sym.dv_timer_arm(this.handle, id, BigInt(periodNs)),
      "arm timer",
    );
  }

  /** Disarm a timer. */
  timerDisarm(id: number): void {
    this.check(this.#sym.dv_timer_disarm(this.handle, id), "disarm timer");
  }

  /** Set a timer's pacing. */
  timerSetPacing(id: number, pacing: "absolute" | "relative-sleep"): void {
    this.check(
      this.#sym.dv_timer_set_pacing(
        this.handle,
        id,
        pacing === "absolute" ? PacingCode.Absolute : PacingCode.RelativeSleep,
      ),
      "timer pacing",
    );
  }

  /** Counters of a timer. */
  timerStats(id: number): CoreStruct<"DvTimerStats"> {
    return this.#struct(
      "DvTimerStats",
      this.#sym.dv_timer_stats(this.handle, id, this.#u64),
      "timer stats",
    );
  }

  /**
   * Set a timer's tick policy and catch-up backlog cap (ns worth of
   * ticks), while disarmed; from its next arm.
   */
  timerSetPolicy(
    id: number,
    policy: "coalesce" | "catchup",
    capNs: number,
  ): void {
    this.check(
      this.#sym.dv_timer_set_policy(
        this.handle,
        id,
        policy === "catchup" ? TickPolicyCode.Catchup : TickPolicyCode.Coalesce,
        BigInt(capNs),
      ),
      "timer policy",
    );
  }

  /** Counters of a timer with the catch-up policy's. */
  timerCatchupStats(id: number): CoreStruct<"DvTimerCatchupStats"> {
    return this.#struct(
      "DvTimerCatchupStats",
      this.#sym.dv_timer_catchup_stats(this.handle, id, this.#u64),
      "timer stats",
    );
  }

  /** Destroy a timer. */
  timerDestroy(id: number): void {
    this.check(this.#sym.dv_timer_destroy(this.handle, id), "destroy timer");
  }
  // ---- snapshots (see core/src/snapshot.rs) ------------------------------

  /**
   * Machine state of every vCPU, the in-kernel irqchip and the KVM clock
   * as a versioned blob (layout in `dv_vm_state_save`). Not while running.
   */
  stateSave(): Uint8Array {
    let buf = new Uint8Array(64 << 10);
    for (;;) {
      const n = this.check(
        this.#sym.dv_vm_state_save(this.handle, buf, BigInt(buf.length)),
        "save machine state",
      );
      if (n <= buf.length) return buf.slice(0, n);
      buf = new Uint8Array(n);
    }
  }

  /** Load a blob from {@link stateSave} (checked whole first). */
  stateLoad(blob: Uint8Array): void {
    this.check(
      this.#sym.dv_vm_state_load(this.handle, blob, BigInt(blob.length)),
      "load machine state",
    );
  }

  /** Turn KVM dirty-page logging on or off. */
  dirtyLog(on: boolean): void {
    this.check(this.#sym.dv_vm_dirty_log(this.handle, on ? 1 : 0), "dirty log");
  }

  /** u64 words of a dirty bitmap of this VM's RAM. */
  bitmapWords(): number {
    return this.check(this.#sym.dv_vm_bitmap_words(this.handle), "bitmap");
  }

  /**
   * OR the pages the guest wrote since the last call into `out` (bit i =
   * page i of the RAM mapping) and clear KVM's log; returns their number.
   */
  dirtyBitmap(out: BigUint64Array): number {
    return this.check(
      this.#sym.dv_vm_dirty_bitmap(this.handle, out, BigInt(out.length)),
      "get dirty log",
    );
  }

  /**
   * Write RAM pages (those of `bitmap`, or every non-zero page) to `path`
   * at `offset`; returns pages written and their CRC32.
   */
  memorySave(
    path: string,
    offset: number,
    bitmap: BigUint64Array | null,
  ): { pages: number; crc: number } {
    const p = new TextEncoder().encode(path);
    this.check(
      this.#sym.dv_vm_memory_save(
        this.handle,
        p,
        BigInt(p.length),
        BigInt(offset),
        bitmap,
        BigInt(bitmap?.length ?? 0),
        this.#u64,
      ),
      `save memory to ${path}`,
    );
    return { pages: Number(this.#u64[0]), crc: Number(this.#u64[1]) };
  }

  /**
   * Load RAM from `path` at `offset`: `map` (copy-on-write, flat cost) or
   * copy (the pages of `bitmap`, or the whole file).
   */
  memoryLoad(
    path: string,
    offset: number,
    map: boolean,
    bitmap: BigUint64Array | null,
  ): void {
    const p = new TextEncoder().encode(path);
    this.check(
      this.#sym.dv_vm_memory_load(
        this.handle,
        p,
        BigInt(p.length),
        BigInt(offset),
        map ? AbiConst.DV_MEMORY_MAP : 0,
        bitmap,
        BigInt(bitmap?.length ?? 0),
      ),
      `load memory from ${path}`,
    );
  }

  /**
   * Copy pages between RAM and a RAM-sized `image` (`toRam` or back);
   * without a bitmap every page (RAM → image skips zero pages).
   */
  memoryCopy(
    image: Uint8Array,
    bitmap: BigUint64Array | null,
    toRam: boolean,
  ): number {
    return this.check(
      this.#sym.dv_vm_memory_copy(
        this.handle,
        image,
        BigInt(image.length),
        bitmap,
        BigInt(bitmap?.length ?? 0),
        toRam ? AbiConst.DV_MEMORY_TO_RAM : 0,
      ),
      "copy memory",
    );
  }
}

/** Live VMs of the core in this process (leak tests). */
export function coreVmCount(libraryPath?: string): number {
  return openLibrary(libraryPath).symbols.dv_vm_count();
}

/**
 * Operations on a VM by handle from any thread (for example the main
 * thread driving a VM whose vCPU runs in a Worker). Non-owning: the VM is
 * destroyed by its owner.
 */
export class CoreVmRef {
  readonly #lib: CoreLibrary;
  /** The VM handle. */
  readonly handle: number;
  /** Refer to VM `handle` of the library at `libraryPath`. */
  constructor(handle: number, libraryPath?: string) {
    this.#lib = openLibrary(libraryPath);
    this.handle = handle;
  }
  /** Stop (consumed by the current or next run). */
  stop(): void {
    this.#lib.check(this.#lib.symbols.dv_vm_stop(this.handle), "stop");
  }
  /**
   * Destroy a VM whose owning thread is gone (a terminated Worker): its
   * views of guest RAM must never be used again. False if it already was.
   */
  destroyOrphan(): boolean {
    return this.#lib.symbols.dv_vm_destroy(this.handle) === 0;
  }
  /** Inject `vector` at an xAPIC destination; KVM's result. */
  requestInterrupt(
    vector: number,
    destination: number,
    level: boolean,
  ): number {
    return this.#lib.check(
      this.#lib.symbols.dv_irq_request(
        this.handle,
        vector,
        destination,
        level ? AbiConst.DV_IRQ_LEVEL : 0,
      ),
      "request interrupt",
    );
  }
}

/**
 * CRC32 of a memory file as the core writes it (see `dv_memory_file_crc`):
 * the pages of `bitmap`, or every non-zero page of `[offset, offset+size)`.
 */
export function memoryFileCrc(
  path: string,
  offset: number,
  size: number,
  bitmap: BigUint64Array | null,
  libraryPath?: string,
): { pages: number; crc: number } {
  const lib = openLibrary(libraryPath);
  const p = new TextEncoder().encode(path);
  const out = new BigUint64Array(2);
  lib.check(
    lib.symbols.dv_memory_file_crc(
      p,
      BigInt(p.length),
      BigInt(offset),
      BigInt(size),
      bitmap,
      BigInt(bitmap?.length ?? 0),
      out,
    ),
    `checksum memory file ${path}`,
  );
  return { pages: Number(out[0]), crc: Number(out[1]) };
}
