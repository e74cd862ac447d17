/**
 * `vm.runAsync` with the 16550 on streams: a large input stream reaches
 * the `serial_echo` guest intact (no byte lost or duplicated: the UART's
 * receive queue is the flow control) and its echo comes back intact, while
 * the event loop keeps running.
 */
import assert from "node:assert/strict";
import { SerialStreams } from "../plugins/serial/streams.ts";
import { createMachine } from "../vmm/machine.ts";
import { guestPath, HAVE_KVM } from "./kvm.ts";

/** Seeded lowercase lines, `size` bytes in all, each ending in "\n". */
function text(size: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = 0x2545f491;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = i % 64 === 63 ? 0x0a : 0x61 + ((x >>> 0) % 26);
  }
  b[size - 1] = 0x0a;
  return b;
}

/** The guest's checksum: sum = sum * 31 + byte (mod 2^32). */
function checksum(b: Uint8Array): number {
  let s = 0;
  for (const v of b) s = (Math.imul(s, 31) + v) >>> 0;
  return s;
}

// 256 KiB by default (~35 s here: every byte is several exits through TS);
// DENOVMM_SERIAL_BYTES=1048576 runs the 1 MiB case (2 min 17 s here).
const SIZE = Number(Deno.env.get("DENOVMM_SERIAL_BYTES") ?? 256 * 1024);

Deno.test({
  name: `serial streams: ${SIZE >> 10} KiB through the 16550 and back`,
  ignore: !HAVE_KVM,
  fn: async () => {
    const input = text(SIZE);
    const chunks: Uint8Array[] = [];
    const io = new SerialStreams({
      // Uneven chunks, as a pipe delivers them.
      input: new ReadableStream({
        start(c) {
          for (let o = 0; o < input.length;) {
            const n = Math.min(1 + (o * 7919) % 5000, input.length - o);
            c.enqueue(input.slice(o, o + n));
            o += n;
          }
          c.enqueue(new TextEncoder().encode("quit\n"));
          c.close();
        },
      }),
      output: new WritableStream({ write: (c) => void chunks.push(c) }),
    });
    await using m = createMachine({
      serialOutput: io.output,
      plugins: [io.plugin],
    });
    io.connect(m.serial);
    m.vm.load(guestPath("serial_echo"));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const r = await m.vm.runAsync({ timeoutMs: 600_000 });
    clearInterval(timer);
    await io.close();
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    const text_ = new TextDecoder().decode(out);
    assert.deepEqual(r, { reason: "exit", status: 1 }, text_.slice(-200));
    const ready = "serial_echo ready\n";
    assert.ok(text_.startsWith(ready), text_.slice(0, 100));
    const echo = out.subarray(ready.length, ready.length + input.length);
    assert.equal(echo.length, input.length);
    assert.ok(echo.every((b, i) => b === input[i]), "echo is the input");
    assert.match(
      text_,
      new RegExp(
        `bye bytes=${input.length} sum=(0x)?0*${
          checksum(input).toString(16)
        }\\b`,
      ),
    );
    assert.equal(io.pending, 0, "every input byte reached the UART");
    assert.equal(m.serial.uart.stats.overruns, 0, "flow control: no overrun");
    assert.ok(ticks > 0, "the event loop ran while the guest did");
  },
});
