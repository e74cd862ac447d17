import { SerialFeeder } from "../plugins/serial/streams.ts";
import assert from "node:assert/strict";
import { Uart16550 } from "../plugins/serial/uart_16550.ts";
import { ConsoleEscape, OutputSink, stderrLogger } from "./cli_io.ts";

const bytes = (...b: number[]) => new Uint8Array(b);

Deno.test("ConsoleEscape", async (t) => {
  await t.step("plain bytes pass, Ctrl-A x quits (across chunks)", () => {
    const e = new ConsoleEscape();
    assert.deepEqual(e.feed(bytes(0x61, 0x62, 0x01)), {
      bytes: bytes(0x61, 0x62),
      quit: false,
      help: false,
    });
    const r = e.feed(bytes(0x78, 0x63));
    assert.equal(r.quit, true);
    assert.deepEqual(r.bytes, bytes());
  });
  await t.step(
    "Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A h is help; others dropped",
    () => {
      const e = new ConsoleEscape();
      const r = e.feed(bytes(0x01, 0x01, 0x01, 0x68, 0x01, 0x7a, 0x03));
      assert.deepEqual(r.bytes, bytes(0x01, 0x03)); // Ctrl-C goes to the guest
      assert.equal(r.help, true);
      assert.equal(r.quit, false);
      assert.equal(e.feed(bytes(0x01, 0x58)).quit, true);
    },
  );
});

Deno.test("SerialFeeder keeps order, never overruns the UART", () => {
  const received: number[] = [];
  const uart = new Uart16550({ output: () => {}, interrupt: () => {} });
  const cap = 64;
  const feeder = new SerialFeeder((b) => {
    const room = cap - uart.pendingInput;
    return room <= 0 ? 0 : uart.enqueueInput(b.subarray(0, room));
  });
  const input = Uint8Array.from(
    { length: 10_000 },
    (_, i) => (i * 7 + 3) & 0xff,
  );
  for (let off = 0; off < input.length; off += 333) {
    feeder.push(input.subarray(off, off + 333));
  }
  assert.equal(feeder.fed, cap);
  const service = feeder.plugin().service!;
  while (received.length < input.length) {
    // the guest reads a few bytes (LSR.DR then RBR), then an exit services
    for (let i = 0; i < 5 && (uart.read(5) & 1); i++) {
      received.push(uart.read(0));
    }
    service(0);
  }
  assert.deepEqual(Uint8Array.from(received), input);
  assert.equal(uart.stats.overruns, 0);
  assert.equal(feeder.queued, 0);
  assert.equal(feeder.fed, input.length);
});

Deno.test("OutputSink", async (t) => {
  const dec = new TextDecoder();
  await t.step(
    "flushes at newlines and on demand; partial writes retried",
    () => {
      const chunks: string[] = [];
      const out = new OutputSink((b) => {
        const n = Math.min(2, b.length); // a short writer
        chunks.push(dec.decode(b.subarray(0, n)));
        return n;
      });
      for (const c of "ab\ncd") out.byte(c.charCodeAt(0));
      assert.equal(chunks.join(""), "ab\n");
      out.flush();
      assert.equal(chunks.join(""), "ab\ncd");
      assert.equal(out.bytes, 5);
    },
  );
  await t.step("crlf adds a CR before a lone LF only", () => {
    let s = "";
    const out = new OutputSink((b) => (s += dec.decode(b), b.length));
    out.crlf = true;
    for (const c of "a\nb\r\n") out.byte(c.charCodeAt(0));
    assert.equal(s, "a\r\nb\r\n");
  });
  await t.step("large output crosses the buffer intact", () => {
    const parts: Uint8Array[] = [];
    const out = new OutputSink((b) => (parts.push(b.slice()), b.length));
    const data = Uint8Array.from({ length: 20_000 }, (_, i) => 0x20 + (i % 90));
    for (const b of data) out.byte(b);
    out.flush();
    const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) all.set(p, o), o += p.length;
    assert.deepEqual(all, data);
  });
});

Deno.test("stderrLogger filters by level and flushes guest output first", () => {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (m: string) => lines.push(m);
  try {
    let flushes = 0;
    const log = stderrLogger("warn", () => flushes++, false);
    log("debug", "x", "d");
    log("info", "x", "i");
    log("warn", "x", "w");
    log("error", "y", "e");
    assert.deepEqual(lines, ["[denovmm x] warn: w", "[denovmm y] error: e"]);
    assert.equal(flushes, 2);
    lines.length = 0;
    stderrLogger("debug", () => {}, true)("info", "z", "m");
    assert.equal(lines[0], "[denovmm z] \x1b[36minfo\x1b[0m: m");
  } finally {
    console.error = orig;
  }
});
