/**
 * Bus adapter for {@link Uart16550}: 8 I/O ports (COM1 at 0x3F8 by
 * default), interrupt on a GSI (4 by default) driven by level.
 *
 * @module
 */
import type {
  Access,
  DeviceContext,
  InterruptLine,
  LogLevel,
  Plugin,
  Region,
} from "../../bus/types.ts";
import { Uart16550, UART_PORTS, type UartState } from "./uart_16550.ts";

/** COM1 base port. */
export const COM1_BASE = 0x3f8;
/** COM1 ISA interrupt line. */
export const COM1_GSI = 4;

/**
 * Options of {@link serialPlugin}.
 *
 * @example
 * ```ts
 * import type { SerialOptions } from "./plugin.ts";
 * const o: SerialOptions = { base: 0x2f8, gsi: 3, output: (b) => void b };
 * ```
 */
export interface SerialOptions {
  /** Base I/O port; default 0x3F8. */
  readonly base?: number;
  /** GSI of the interrupt line; default 4. */
  readonly gsi?: number;
  /** Transmitted bytes; default discards them. */
  readonly output?: (byte: number) => void;
  /** Plugin name; default `serial@<base hex>`. */
  readonly name?: string;
}

/**
 * A serial plugin; `uart` is the device and `enqueueInput` feeds it.
 *
 * @example
 * ```ts
 * import { serialPlugin } from "./plugin.ts";
 * const p = serialPlugin({});
 * p.enqueueInput(new TextEncoder().encode("hi"));
 * ```
 */
export interface SerialPlugin extends Plugin {
  /** The UART state machine. */
  readonly uart: Uart16550;
  /** Queue host input for the guest; returns the bytes accepted. */
  enqueueInput(bytes: Uint8Array | readonly number[]): number;
  /** The UART state. */
  snapshot(): UartState;
  /** Load a UART state (TypeError and no change when malformed). */
  restore(state: UartState): void;
}

/**
 * Create a 16550A serial port plugin. Only 1-byte accesses reach the
 * UART; wider ones are counted in `uart.stats.badAccesses` (reads 0xFF).
 *
 * @example
 * ```ts
 * import { serialPlugin } from "./plugin.ts";
 * const out: number[] = [];
 * const com1 = serialPlugin({ output: (b) => out.push(b) });
 * console.log(com1.name); // "serial@3f8"
 * ```
 */
export function serialPlugin(options: SerialOptions = {}): SerialPlugin {
  const base = options.base ?? COM1_BASE;
  const gsi = options.gsi ?? COM1_GSI;
  let line: InterruptLine | null = null;
  let log: (level: LogLevel, msg: string) => void = () => {};
  const uart = new Uart16550({
    output: options.output,
    interrupt: (level) => line?.set(level),
    log: (level, msg) => log(level, msg),
  });
  return {
    name: options.name ?? `serial@${base.toString(16)}`,
    uart,
    enqueueInput: (bytes) => uart.enqueueInput(bytes),
    setup(ctx: DeviceContext): readonly Region[] {
      line = ctx.interruptLine(gsi, "level");
      log = (level, msg) => ctx.log(level, msg);
      if (uart.interruptLevel) line.set(true);
      return [{
        range: { space: "pio", base, length: UART_PORTS },
        read(access: Access, data: Uint8Array): void {
          if (access.size !== 1) {
            uart.stats.badAccesses++;
            data.fill(0xff);
            return;
          }
          data[0] = uart.read(access.offset);
        },
        write(access: Access, data: Uint8Array): void {
          if (access.size !== 1) {
            uart.stats.badAccesses++;
            return;
          }
          uart.write(access.offset, data[0]);
        },
      }];
    },
    reset(): void {
      uart.reset();
    },
    snapshot: () => uart.snapshot(),
    restore: (state: UartState) => uart.restore(state),
  };
}
