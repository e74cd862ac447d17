/**
 * `runAsync`: run a VM on the calling thread without starving its event
 * loop. The guest runs in synchronous slices (`vm.run` with a short core
 * timeout, the same per-exit path as `run()`); between slices the event
 * loop gets a turn, so stdin reads, signal listeners, timers and other
 * promises make progress while the guest runs.
 *
 * Two kinds of turn, measured on Deno 2.9: a `MessageChannel` message
 * (0.1–0.7 ms) after every slice, which settles promises and most I/O
 * but does not run due timers (nor, reliably, signal listeners); and a
 * `setTimeout(0)` turn (1–4 ms, which is why it is not the only kind)
 * once `timerTurnMs` has passed since the last, which does.
 *
 * Costs and limits: an `AbortSignal` is seen at the next slice boundary
 * (at most `sliceMs` later); a JS timer or signal listener may run up to
 * `timerTurnMs` late; armed PV timers are paused for the turn between
 * slices (their phase restarts, no tick is replayed).
 *
 * @module
 */
import type { RunResult } from "./vm_types.ts";

/** The part of a VM {@link runAsync} needs. */
export interface SliceRunnable {
  /** Synchronous run with a timeout (resumable). */
  run(options: { timeoutMs?: number }): RunResult;
}

/** Options of {@link runAsync}. */
export interface AsyncRunOptions {
  /** End with reason `stopped` once aborted (checked between slices). */
  signal?: AbortSignal;
  /** End with reason `timeout` after this many milliseconds. */
  timeoutMs?: number;
  /** Longest synchronous slice in ms (default 20). */
  sliceMs?: number;
  /**
   * Give timers (and signal listeners) a `setTimeout(0)` turn at least
   * this often, in ms (default 50).
   */
  timerTurnMs?: number;
  /** Called between slices, before the event-loop turn. */
  onSlice?: () => void;
}

/**
 * Run `vm` until the guest exits, halts or fails, the timeout passes or
 * `signal` aborts, yielding to the event loop every `sliceMs`.
 *
 * @example
 * ```ts ignore
 * import { createMachine } from "./machine.ts";
 * import { runAsync } from "./run_async.ts";
 * using m = createMachine({});
 * m.vm.load("guests/build/hello.elf");
 * const ac = new AbortController();
 * setTimeout(() => ac.abort(), 1000); // fires while the guest runs
 * console.log(await runAsync(m.vm, { signal: ac.signal, timeoutMs: 5000 }));
 * ```
 */
export async function runAsync(
  vm: { run(options: { timeoutMs?: number }): RunResult },
  options: AsyncRunOptions = {},
): Promise<RunResult> {
  const sliceMs = options.sliceMs ?? 20;
  if (!(sliceMs > 0) || !Number.isFinite(sliceMs)) {
    throw new RangeError(`sliceMs must be a positive number, not ${sliceMs}`);
  }
  const { timeoutMs, signal } = options;
  if (
    timeoutMs !== undefined && (!(timeoutMs > 0) || !Number.isFinite(timeoutMs))
  ) {
    throw new RangeError(
      `timeoutMs must be a positive number, not ${timeoutMs}`,
    );
  }
  const deadline = timeoutMs === undefined
    ? Infinity
    : performance.now() + timeoutMs;
  // One macrotask turn per slice: a message to ourselves (setTimeout(0)
  // is clamped to milliseconds once nested). Made at the first turn: a
  // guest done within one slice never needs it, and Deno's first
  // MessageChannel costs 2-5 ms (a CLI boot of a tiny kernel pays that).
  let ch: MessageChannel | null = null;
  let wake: (() => void) | null = null;
  const channel = (): MessageChannel => {
    if (ch) return ch;
    ch = new MessageChannel();
    ch.port1.onmessage = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    return ch;
  };
  const timerTurnMs = options.timerTurnMs ?? 50;
  let lastTimerTurn = performance.now();
  const turn = () => {
    const now = performance.now();
    if (now - lastTimerTurn >= timerTurnMs) {
      lastTimerTurn = now;
      return new Promise<void>((resolve) => setTimeout(resolve, 0));
    }
    const port = channel().port2;
    return new Promise<void>((resolve) => {
      wake = resolve;
      port.postMessage(0);
    });
  };
  try {
    for (;;) {
      if (signal?.aborted) {
        return { reason: "stopped", detail: abortDetail(signal) };
      }
      const left = deadline - performance.now();
      if (left <= 0) return { reason: "timeout" };
      const r = vm.run({ timeoutMs: Math.min(sliceMs, left) });
      if (r.reason !== "timeout") return r;
      options.onSlice?.();
      await turn();
    }
  } finally {
    // (a local: TS narrows the closure-assigned `ch` to null here)
    const c = ch as MessageChannel | null;
    c?.port1.close();
    c?.port2.close();
  }
}

function abortDetail(signal: AbortSignal): string {
  const r = signal.reason;
  if (r instanceof Error) return r.message;
  return r === undefined ? "aborted" : String(r);
}
