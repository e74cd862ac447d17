import assert from "node:assert/strict";
import { limitLogger } from "./log_limiter.ts";

Deno.test("log limiter: a flood is O(1) lines per interval, per key", () => {
  let t = 0;
  const lines: string[] = [];
  const log = limitLogger((_l, s, m) => lines.push(`${s}: ${m}`), {
    burst: 3,
    intervalMs: 1000,
    now: () => t,
  });
  for (let i = 0; i < 36_000; i++) {
    t = i / 18; // 18k lines a second, for two seconds
    log("warn", "ioapic", `entry ${i % 24} has reserved delivery mode 0x${i}`);
  }
  assert.ok(lines.length <= 3 + 2, lines.join("\n"));
  assert.ok(lines.length >= 4, "the suppressed lines are reported");
  assert.match(lines.at(-1)!, /similar messages suppressed/);
  // Another key has its own budget.
  log("warn", "pci", "BAR 0 moved onto the ECAM window");
  assert.match(lines.at(-1)!, /^pci: BAR/);
});

Deno.test("log limiter: suppressed counts are exact", () => {
  let t = 0;
  const lines: string[] = [];
  const log = limitLogger((_l, _s, m) => lines.push(m), {
    burst: 1,
    intervalMs: 10,
    now: () => t,
  });
  for (let i = 0; i < 5; i++) log("warn", "x", `bad ${i}`);
  t = 10;
  log("warn", "x", "bad 99");
  assert.deepEqual(lines, [
    "bad 0",
    "bad 99 (and 4 similar messages suppressed)",
  ]);
});
