/**
 * The vCPU run loop of a {@link ./vm.ts Vm}: `KVM_RUN` through the core,
 * exits dispatched to the bus by region tag, EOI exits to the interrupt
 * controllers, plugin service deadlines turned into the core's wake alarm,
 * ExtINT pumped in split mode, and the run's end (a device's exit/halt/
 * sleep, a timeout, a stop, a failure).
 *
 * @module
 */
import type { Bus } from "../bus/bus.ts";
import type { ExtIntSource } from "../bus/irqchip.ts";
import type { Clock, Plugin } from "../bus/types.ts";
import { ExitReason } from "../ffi/abi.ts";
import type { CoreVm } from "../ffi/core_vm.ts";
import type { ExitRecordView } from "../ffi/exit_record.ts";
import type { CoreTickSource } from "./core_sources.ts";
import { eoiBroadcastSuppressed, ExtIntPump } from "./extint.ts";
import { endOfRun } from "./run_result.ts";
import type { Logger, RunOptions, RunResult, VmStats } from "./vm_types.ts";

/**
 * Exits handled per call of the run slice: `run()` calls the slice many
 * times, so V8 optimizes the slice (with its FFI fast call) through
 * ordinary invocation counting instead of leaving the hot loop in the
 * mid-tier code that on-stack replacement of one long loop ends up in.
 */
const SLICE_EXITS = 64;

/** What the run loop works on. */
export interface RunLoopParts {
  /** The core VM. */
  readonly core: CoreVm;
  /** vCPU 0's exit record. */
  readonly record: ExitRecordView;
  /** Every vCPU's exit record by index (default: vCPU 0's only). */
  readonly records?: readonly ExitRecordView[];
  /** The bus the exits go to. */
  readonly bus: Bus;
  /** The VM's clock (plugin service deadlines). */
  readonly clock: Clock;
  /** The VM's counters. */
  readonly stats: VmStats;
  /** The VM's (rate-limited) logger. */
  readonly log: Logger;
  /** Host tick sources: resumed for a run, suspended after it. */
  readonly tickSources: readonly CoreTickSource[];
  /** True once the VM is closed. */
  readonly closed: () => boolean;
}

/**
 * A VM's run loop. With one vCPU, vCPU 0 runs here (`KVM_RUN` on this
 * thread). With more, the core runs every vCPU on its own thread during
 * `run()`, and an exit that needs a plugin parks that vCPU: the loop
 * waits in one call for parked exits, dispatches each (the record names
 * the vCPU) and releases them with its next wait.
 */
export class RunLoop {
  readonly #core: CoreVm;
  readonly #rec: ExitRecordView;
  readonly #records: readonly ExitRecordView[];
  /** More than one vCPU: AP threads run and park exits for us. */
  readonly #smp: boolean;
  /** vCPU indices: taken exits, then (the first `#taken`) to release. */
  readonly #parked = new Uint32Array(64);
  /** Exits taken by the last wait and not yet released. */
  #taken = 0;
  /** vCPU 0 was kicked out for the ExtINT pump and has not come back. */
  #pumpKicked = false;
  readonly #bus: Bus;
  readonly #clock: Clock;
  readonly #stats: VmStats;
  readonly #tickSources: readonly CoreTickSource[];
  readonly #closed: () => boolean;
  readonly #pump: ExtIntPump;
  /** Plugins with a `service` deadline. */
  readonly servicePlugins: Plugin[] = [];
  /** Who hears EOI exits (the split-mode interrupt controllers). */
  readonly eoiListeners: ((vector: number) => void)[] = [];
  /** The split-mode PIC's ExtINT output, once one is attached. */
  extint: ExtIntSource | undefined;
  #end: RunResult | undefined;
  #wakeAt: number | null = null;

  /** A loop over `parts`. */
  constructor(parts: RunLoopParts) {
    this.#core = parts.core;
    this.#rec = parts.record;
    this.#records = parts.records ?? [parts.record];
    this.#smp = this.#records.length > 1;
    this.#bus = parts.bus;
    this.#clock = parts.clock;
    this.#stats = parts.stats;
    this.#tickSources = parts.tickSources;
    this.#closed = parts.closed;
    this.#pump = new ExtIntPump(parts.core, parts.stats, parts.log);
  }

  /**
   * End the current run with `result` after the exit being handled: a
   * guest exit replaces an earlier end of the same exit, a halt or sleep
   * does not.
   */
  end(result: RunResult): void {
    if (result.reason === "exit") this.#end = result;
    else this.#end ??= result;
  }

  /** Forget run-local state (the vCPU was reset or restored). */
  reset(): void {
    this.#end = undefined;
    this.#wakeAt = null;
    this.#taken = 0;
    this.#pumpKicked = false;
    this.#pump.reset();
  }

  /**
   * Run until the run ends (see `Vm.run`). With `keepAps` (runs in
   * slices) a run that ends by its timeout leaves the AP threads running
   * for the next slice (`CoreVm.detachAps`); every other end stops them.
   */
  run(options: RunOptions, keepAps = false): RunResult {
    this.#end = undefined;
    const core = this.#core;
    const timed = options.timeoutMs !== undefined;
    if (timed) {
      const ms = options.timeoutMs!;
      if (!(ms > 0) || !Number.isFinite(ms)) {
        throw new RangeError(`timeoutMs must be a positive number, not ${ms}`);
      }
      core.setTimeout(Math.max(1, Math.round(ms * 1e6)));
    }
    let result: RunResult | undefined;
    try {
      for (const t of this.#tickSources) t.resume();
      if (this.#smp) {
        core.startAps();
        for (;;) {
          result = this.#smpSlice();
          if (result !== undefined) return result;
        }
      }
      for (;;) {
        result = this.#slice();
        if (result !== undefined) return result;
      }
    } catch (e) {
      return result = { reason: "error", detail: (e as Error).message };
    } finally {
      if (!this.#closed()) {
        if (this.#smp) {
          // Exits taken and handled: a detached thread must run on (a
          // stopped one counts them as handled).
          const detach = keepAps && result?.reason === "timeout";
          if (detach) {
            for (let k = 0; k < this.#taken; k++) {
              core.releaseAp(this.#parked[k]);
            }
          }
          this.#taken = 0;
          if (detach) core.detachAps();
          else core.stopAps();
        }
        if (timed) core.setTimeout(0);
        for (const t of this.#tickSources) t.suspend();
      }
    }
  }

  /** Up to {@link SLICE_EXITS} exits; the run's result when it ends. */
  #slice(): RunResult | undefined {
    const core = this.#core;
    const rec = this.#rec;
    for (let i = 0; i < SLICE_EXITS; i++) {
      const r = core.run(0);
      if (r === ExitReason.Io || r === ExitReason.Mmio) {
        this.#dispatch(r === ExitReason.Io ? "pio" : "mmio", rec);
      } else if (r < 0) {
        core.check(r, "run");
      } else {
        const end = this.#other(r, rec);
        if (end !== undefined) return end;
      }
      if (this.servicePlugins.length > 0) this.#service();
      if (this.extint !== undefined) {
        this.#pump.poll(this.extint, r === ExitReason.IrqWindow);
      }
      if (this.#end !== undefined) return this.#end;
    }
    return undefined;
  }

  /**
   * More than one vCPU: up to {@link SLICE_EXITS} batches of exits from
   * the vCPU threads; the run's result when it ends. Each wait releases
   * the previous batch, so a batch costs one call; a batch that ends the
   * run stays taken (stopping the threads counts it as handled).
   */
  #smpSlice(): RunResult | undefined {
    const core = this.#core;
    const ids = this.#parked;
    for (let b = 0; b < SLICE_EXITS; b++) {
      const n = core.waitExits(ids, this.#taken);
      this.#taken = 0;
      if (n < 0) core.check(n, "wait for exits");
      this.#taken = n;
      let vcpu0 = -1;
      for (let k = 0; k < n; k++) {
        const rec = this.#records[ids[k]];
        const r = rec.reason;
        if (ids[k] === 0) vcpu0 = r;
        if (r === ExitReason.Io || r === ExitReason.Mmio) {
          this.#dispatch(r === ExitReason.Io ? "pio" : "mmio", rec);
        } else {
          const end = this.#other(r, rec);
          if (end !== undefined) this.end(end);
        }
      }
      if (this.servicePlugins.length > 0) this.#service();
      if (this.extint !== undefined) this.#smpPump(this.extint, vcpu0);
      if (this.#end !== undefined) return this.#end;
    }
    return undefined;
  }

  /**
   * The ExtINT pump with vCPU 0 on its own thread: it may touch vCPU 0
   * only while vCPU 0's exit is taken (`vcpu0`, its reason, else -1); an
   * interrupt raised while vCPU 0 runs (an AP's device access, a service
   * deadline) kicks vCPU 0 out once, and its wake-up exit pumps it.
   */
  #smpPump(src: ExtIntSource, vcpu0: number): void {
    if (vcpu0 >= 0) {
      this.#pumpKicked = false;
      this.#pump.poll(src, vcpu0 === ExitReason.IrqWindow);
    } else if (
      src.interruptPending && !this.#pump.windowRequested && !this.#pumpKicked
    ) {
      this.#core.wakeVcpu(0);
      this.#pumpKicked = true;
    }
  }

  #dispatch(space: "pio" | "mmio", rec: ExitRecordView): void {
    const size = rec.size;
    const count = rec.count;
    const address = rec.address;
    const isWrite = rec.isWrite;
    const vcpu = rec.vcpu;
    const tag = rec.region;
    for (let i = 0; i < count; i++) {
      this.#bus.dispatchTagged(
        tag,
        space,
        address,
        size,
        isWrite,
        rec.data(size, i),
        vcpu,
      );
    }
  }

  #other(r: number, rec: ExitRecordView): RunResult | undefined {
    switch (r) {
      case ExitReason.IoapicEoi:
        // SDM 11.8.5: with "suppress EOI broadcast" (SVR bit 12, offered by
        // KVM's LAPIC in split mode) a LAPIC EOI is not broadcast to the
        // IOAPICs; the guest EOIs through the IOAPIC's EOI register. KVM
        // still reports the exit, so the filter is ours.
        if (eoiBroadcastSuppressed(this.#core, rec.vcpu)) {
          this.#stats.suppressedEoiBroadcasts++;
          return undefined;
        }
        for (const fn of this.eoiListeners) fn(rec.arg);
        return undefined;
      case ExitReason.Wake:
        this.#wakeAt = null;
        return undefined;
      case ExitReason.IrqWindow:
        return undefined;
      default:
        return endOfRun(r, rec, this.#core);
    }
  }

  #service(): void {
    const now = this.#clock.now();
    let next: number | null = null;
    for (const p of this.servicePlugins) {
      const d = p.service!(now);
      if (d !== null && (next === null || d < next)) next = d;
    }
    if (next !== null && next !== this.#wakeAt) {
      this.#wakeAt = next;
      this.#core.setWake(Math.max(1, Math.round(next - now)));
    }
  }
}
