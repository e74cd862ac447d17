/**
 * One limiter for every guest-triggerable log line: per message key (the
 * source and the message with its numbers blanked), the first few lines
 * pass, later ones are counted, and at most one "suppressed N" line per
 * key and interval reports them. A guest looping a bad write therefore
 * produces O(1) lines per second, however fast it loops.
 *
 * @module
 */
import type { LogLevel } from "../bus/types.ts";
import type { Logger } from "./vm_types.ts";

/** Options of {@link limitLogger}. */
export interface LogLimit {
  /** Lines per key that always pass (default 5). */
  burst?: number;
  /** Interval of the "suppressed N" summaries in ms (default 1000). */
  intervalMs?: number;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
}

interface KeyState {
  passed: number;
  suppressed: number;
  lastSummary: number;
}

/** Most keys tracked; beyond this, new keys share one overflow key. */
const MAX_KEYS = 1024;

/**
 * Wrap `log` with the limiter.
 *
 * @example
 * ```ts
 * import { limitLogger } from "./log_limiter.ts";
 * const lines: string[] = [];
 * const log = limitLogger((_l, _s, m) => lines.push(m), { burst: 2 });
 * for (let i = 0; i < 1000; i++) log("warn", "dev", `bad write ${i}`);
 * console.log(lines.length); // 2
 * ```
 */
export function limitLogger(log: Logger, limit: LogLimit = {}): Logger {
  const burst = limit.burst ?? 5;
  const interval = limit.intervalMs ?? 1000;
  const now = limit.now ?? (() => performance.now());
  const keys = new Map<string, KeyState>();
  return (level: LogLevel, source: string, msg: string) => {
    let key = `${level}|${source}|${
      msg.replace(/(0x)?[0-9a-f]*\d[0-9a-f]*/gi, "#")
    }`;
    if (!keys.has(key) && keys.size >= MAX_KEYS) key = "overflow";
    let st = keys.get(key);
    if (!st) {
      st = { passed: 0, suppressed: 0, lastSummary: now() };
      keys.set(key, st);
    }
    if (st.passed < burst) {
      st.passed++;
      log(level, source, msg);
      return;
    }
    st.suppressed++;
    const t = now();
    if (t - st.lastSummary >= interval) {
      log(
        level,
        source,
        `${msg} (and ${st.suppressed - 1} similar messages suppressed)`,
      );
      st.suppressed = 0;
      st.lastSummary = t;
    }
  };
}
