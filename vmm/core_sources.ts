/**
 * Host event sources backed by the core's event thread: tick timers
 * ({@link CoreTickSource}) and level-triggered interrupt sources
 * ({@link createCoreLevelSource}).
 *
 * @module
 */
import type { TickCounters, TickSource, TickTarget } from "../bus/types.ts";
import type { CoreVm } from "../ffi/core_vm.ts";

/** How a host tick source treats ticks the guest has not taken yet. */
export type TickPolicy = "coalesce" | "catchup";

/** Default catch-up backlog cap: one second worth of ticks. */
export const DEFAULT_TIMER_BACKLOG_CAP_MS = 1000;

/**
 * A host tick source: a core timer (timerfd with absolute deadlines on the
 * VM's event thread) writing an irqfd. It remembers its period, so a
 * VM's run can suspend it at its end and resume it at the next run. With
 * the `catchup` policy on a GSI target the irqfd resamples: the event
 * thread owes the guest every expiration and sends the next one when the
 * guest acknowledged the previous one (see README, "Paravirtual timer").
 */
export class CoreTickSource implements TickSource {
  readonly #core: CoreVm;
  readonly #id: number;
  #periodNs = 0;
  #suspended = false;

  /** Create a disarmed timer delivering to `target`. */
  constructor(
    core: CoreVm,
    target: TickTarget,
    pacing: "absolute" | "relative-sleep",
    policy: TickPolicy = "coalesce",
    backlogCapMs: number = DEFAULT_TIMER_BACKLOG_CAP_MS,
  ) {
    this.#core = core;
    this.#id = core.timerCreate(
      target.kind === "gsi"
        ? { gsi: target.gsi }
        : { vector: target.vector, destination: target.destination },
    );
    if (pacing !== "absolute") core.timerSetPacing(this.#id, pacing);
    if (policy !== "coalesce") {
      core.timerSetPolicy(this.#id, policy, Math.round(backlogCapMs * 1e6));
    }
  }
  /** Start, or re-arm with a new period (ns > 0). */
  arm(periodNs: number): void {
    if (!(periodNs > 0) || !Number.isFinite(periodNs)) {
      throw new RangeError(`bad timer period ${periodNs} ns`);
    }
    this.#periodNs = Math.round(periodNs);
    this.#core.timerArm(this.#id, this.#periodNs);
  }
  /** Stop ticking. Idempotent. */
  disarm(): void {
    if (this.#periodNs === 0) return;
    this.#periodNs = 0;
    this.#suspended = false;
    this.#core.timerDisarm(this.#id);
  }
  /** Pause an armed timer while the VM does not run (keeps its period). */
  suspend(): void {
    if (this.#periodNs === 0 || this.#suspended) return;
    this.#suspended = true;
    this.#core.timerDisarm(this.#id);
  }
  /** Re-arm a suspended timer with its period. */
  resume(): void {
    if (!this.#suspended) return;
    this.#suspended = false;
    this.#core.timerArm(this.#id, this.#periodNs);
  }
  /** Forget the period (the core disarmed the timer at a VM reset). */
  forget(): void {
    this.#periodNs = 0;
    this.#suspended = false;
  }
  /** Period in ns (0 when disarmed; suspended timers keep theirs). */
  get periodNs(): number {
    return this.#periodNs;
  }
  /**
   * Snapshot restore: take `periodNs` (0 = disarmed) as the period, armed
   * at the next run's `resume()` (the VM is not running now).
   */
  restorePeriod(periodNs: number): void {
    if (this.#periodNs !== 0 && !this.#suspended) {
      this.#core.timerDisarm(this.#id);
    }
    this.#periodNs = periodNs > 0 ? Math.round(periodNs) : 0;
    this.#suspended = this.#periodNs !== 0;
  }
  /** True while armed (suspended timers count as armed). */
  get armed(): boolean {
    return this.#periodNs !== 0;
  }
  /** Ticks delivered since creation. */
  get ticks(): number {
    return this.#core.timerStats(this.#id).ticks;
  }
  /** Ticks lost: coalesced, or dropped over the catch-up backlog cap. */
  get missedTicks(): number {
    const s = this.#core.timerCatchupStats(this.#id);
    return s.missed + s.dropped_over_cap;
  }
  /** Detailed counters (policy in effect, owed, delivered, backlog...). */
  counters(): TickCounters {
    const s = this.#core.timerCatchupStats(this.#id);
    return {
      policy: s.policy === 1 ? "catchup" : "coalesce",
      owed: s.owed,
      delivered: s.ticks,
      coalesced: s.missed,
      droppedOverCap: s.dropped_over_cap,
      cleared: s.cleared,
      backlog: s.backlog,
      acks: s.acks,
      reinjected: s.reinjected,
    };
  }
  /** CPU time of the VM's event thread (which serves every timer) in ns. */
  get cpuNs(): number {
    return this.#core.info().event_thread_cpu_ns;
  }
  /** True when the event thread runs with real-time priority. */
  get realtime(): boolean {
    return this.#core.info().event_thread_realtime === 1;
  }
}

/** Counters of a {@link LevelSource}. */
export interface LevelSourceStats {
  /** Line assertions. */
  asserts: number;
  /** EOIs seen (one work item retired each). */
  eois: number;
  /** Work items left. */
  pending: number;
  /** Mean assert → EOI round trip (ns). */
  meanRttNs: number;
  /** Shortest round trip (ns). */
  minRttNs: number;
  /** Longest round trip (ns). */
  maxRttNs: number;
  /**
   * Split irqchip: assertions the vCPU re-signalled with KVM_SIGNAL_MSI
   * because the irqfd's message never reached the LAPIC (a nested-KVM
   * quirk on this project's machines; 0 on healthy hosts).
   */
  reinjected: number;
}

/** A host-side level interrupt source (see `Vm.createLevelSource`). */
export interface LevelSource {
  /** The line. */
  readonly gsi: number;
  /** Add `n` work items; each raises the line until its EOI. */
  add(n: number): void;
  /** Counters. */
  stats(): LevelSourceStats;
  /** Stop the source and unregister its irqfd. */
  close(): void;
}

/**
 * Start a level source on `gsi`; `vmClosed` guards use after close.
 * `live` (the VM's) maps the core's id of each open source to its line:
 * snapshots record the sources in id order, the order the core uses.
 */
export function createCoreLevelSource(
  core: CoreVm,
  gsi: number,
  vmClosed: () => boolean,
  live: Map<number, number>,
): LevelSource {
  const id = core.levelCreate(gsi);
  live.set(id, gsi);
  let closed = false;
  return {
    gsi,
    add(n: number) {
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new RangeError(`bad work item count ${n}`);
      }
      core.levelAdd(id, n);
    },
    stats(): LevelSourceStats {
      const s = core.levelStats(id);
      return {
        asserts: s.asserts,
        eois: s.eois,
        pending: s.pending,
        meanRttNs: s.eois ? s.rtt_total_ns / s.eois : 0,
        minRttNs: s.rtt_min_ns,
        maxRttNs: s.rtt_max_ns,
        reinjected: s.reinjected,
      };
    },
    close() {
      if (closed || vmClosed()) return;
      closed = true;
      live.delete(id);
      core.levelDestroy(id);
    },
  };
}
