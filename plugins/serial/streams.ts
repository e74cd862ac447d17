/**
 * Host input for a 16550: bytes waiting for the guest, fed into the UART
 * whenever its receive queue has room (never more, so no overrun and no
 * byte lost), and {@link SerialStreams}: the UART on a `ReadableStream`
 * and a `WritableStream`.
 *
 * @module
 */
import type { Plugin } from "../../bus/types.ts";
import type { Uart16550 } from "./uart_16550.ts";

/**
 * Hand `uart` as much of `bytes` as its receive queue takes now (never
 * more, so the guest sees no overrun); returns the bytes it took.
 *
 * @example
 * ```ts
 * import { enqueueInRoom } from "./streams.ts";
 * import { Uart16550 } from "./uart_16550.ts";
 * const uart = new Uart16550({ inputCapacity: 4 });
 * console.log(enqueueInRoom(uart, new Uint8Array(10))); // 4
 * ```
 */
export function enqueueInRoom(uart: Uart16550, bytes: Uint8Array): number {
  const room = uart.inputRoom;
  return room <= 0 ? 0 : uart.enqueueInput(bytes.subarray(0, room));
}

/**
 * Host bytes waiting for the guest's COM1, fed into the UART whenever its
 * receive queue has room. As a plugin with `service()` it refills the UART
 * after every exit while the guest reads, so throughput is not bounded by
 * the UART's 64-byte queue per run slice.
 */
export class SerialFeeder {
  #chunks: Uint8Array[] = [];
  #head = 0;
  #queued = 0;
  #fed = 0;
  readonly #enqueue: (bytes: Uint8Array) => number;

  /** Feed through `enqueue` (returns how many bytes the UART accepted). */
  constructor(enqueue: (bytes: Uint8Array) => number) {
    this.#enqueue = enqueue;
  }

  /** Queue host input. */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#chunks.push(bytes);
    this.#queued += bytes.length;
    this.pump();
  }

  /** Move as much as the UART accepts; returns the bytes moved. */
  pump(): number {
    let moved = 0;
    while (this.#chunks.length > 0) {
      const c = this.#chunks[0];
      const n = this.#enqueue(c.subarray(this.#head));
      moved += n;
      this.#head += n;
      if (this.#head < c.length) break;
      this.#chunks.shift();
      this.#head = 0;
    }
    this.#queued -= moved;
    this.#fed += moved;
    return moved;
  }

  /** Bytes waiting. */
  get queued(): number {
    return this.#queued;
  }

  /** Bytes handed to the UART so far. */
  get fed(): number {
    return this.#fed;
  }

  /** A plugin that pumps after every exit while bytes wait. */
  plugin(): Plugin {
    return {
      name: "stdin",
      setup: () => [],
      service: () => {
        if (this.#queued > 0) this.pump();
        return null;
      },
    };
  }
}

/** Options of {@link SerialStreams}. */
export interface SerialStreamsOptions {
  /** Bytes for the guest to read from COM1. */
  readonly input?: ReadableStream<Uint8Array>;
  /** Where the guest's COM1 output goes. */
  readonly output?: WritableStream<Uint8Array>;
  /** Input bytes held before reading more from `input` (default 64 KiB). */
  readonly highWater?: number;
}

/**
 * A 16550 on streams, for guests that run while the event loop does
 * (`vm.runAsync`): `input` is read as the guest consumes it (flow control
 * by the UART's receive queue, so nothing is lost or duplicated), output
 * is written in chunks (at a newline, every 4 KiB, and at `close()`).
 *
 * @example
 * ```ts ignore
 * import { createMachine } from "@denovmm/vmm";
 * import { SerialStreams } from "@denovmm/vmm/plugins";
 * // any byte streams: the terminal's stdin and stdout, a socket, a pipe
 * declare const input: ReadableStream<Uint8Array>, output: WritableStream<Uint8Array>;
 * const io = new SerialStreams({ input, output });
 * await using m = createMachine({ serialOutput: io.output, plugins: [io.plugin] });
 * io.connect(m.serial);
 * m.vm.load("guests/build/serial_echo.elf");
 * console.log(await m.vm.runAsync());
 * await io.close();
 * ```
 */
export class SerialStreams {
  readonly #input?: ReadableStream<Uint8Array>;
  readonly #writer?: WritableStreamDefaultWriter<Uint8Array>;
  readonly #highWater: number;
  #feeder: SerialFeeder | null = null;
  #room: (() => void) | null = null;
  #buf = new Uint8Array(4096);
  #n = 0;
  #writes: Promise<void> = Promise.resolve();
  #reading: Promise<void> = Promise.resolve();
  #reader?: ReadableStreamDefaultReader<Uint8Array>;
  /** Every guest output byte, one at a time (give to `serialOutput`). */
  readonly output: (byte: number) => void;
  /** Feeds input as the UART makes room (attach it to the VM). */
  readonly plugin: Plugin;

  /** Streams for one UART; `connect` it once the machine exists. */
  constructor(options: SerialStreamsOptions) {
    this.#input = options.input;
    this.#writer = options.output?.getWriter();
    this.#highWater = options.highWater ?? 64 * 1024;
    this.output = (b) => {
      this.#buf[this.#n++] = b;
      if (b === 0x0a || this.#n === this.#buf.length) this.#flush();
    };
    this.plugin = {
      name: "serial-streams",
      setup: () => [],
      service: () => {
        const f = this.#feeder;
        if (f && f.queued > 0) {
          f.pump();
          if (f.queued < this.#highWater / 2) this.#room?.();
        }
        return null;
      },
    };
  }

  /**
   * Start feeding `input` to the serial plugin's UART, never more than its
   * receive queue takes (so the guest never sees an overrun).
   */
  connect(serial: { readonly uart: Uart16550 }): void {
    if (this.#feeder) throw new Error("SerialStreams: already connected");
    const uart = serial.uart;
    const feeder = new SerialFeeder((b) => enqueueInRoom(uart, b));
    this.#feeder = feeder;
    if (!this.#input) return;
    const reader = this.#input.getReader();
    this.#reader = reader;
    this.#reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        feeder.push(value);
        while (feeder.queued >= this.#highWater) {
          await new Promise<void>((r) => this.#room = r);
          this.#room = null;
        }
      }
    })();
  }

  /** Input bytes not yet in the UART. */
  get pending(): number {
    return this.#feeder?.queued ?? 0;
  }

  /** Input bytes handed to the UART. */
  get fed(): number {
    return this.#feeder?.fed ?? 0;
  }

  #flush(): void {
    if (this.#n === 0) return;
    const chunk = this.#buf.slice(0, this.#n);
    this.#n = 0;
    const w = this.#writer;
    if (w) this.#writes = this.#writes.then(() => w.write(chunk));
  }

  /**
   * Write buffered output, wait for every write, close the output and stop
   * reading the input.
   */
  async close(): Promise<void> {
    this.#flush();
    await this.#writes;
    await this.#writer?.close();
    await this.#reader?.cancel();
    await this.#reading.catch(() => {});
  }
}
