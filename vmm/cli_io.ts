/**
 * The CLI's console: COM1 output to stdout (buffered, flushed at newlines
 * and at exit), stdin to COM1 (raw mode on a terminal, with QEMU's Ctrl-A
 * escape), and the log sink on stderr (colours only on a terminal).
 *
 * @module
 */
import { host } from "../ffi/host.ts";
import type { LogLevel } from "../bus/types.ts";

/** Ctrl-A: the console escape key (as in QEMU's `-nographic`). */
export const ESCAPE_KEY = 0x01;

/** What {@link ConsoleEscape.feed} decided for a chunk of input. */
export interface EscapeOutcome {
  /** Bytes for the guest. */
  bytes: Uint8Array;
  /** The user asked to quit (Ctrl-A x). */
  quit: boolean;
  /** The user asked for help (Ctrl-A h). */
  help: boolean;
}

/**
 * Terminal escape decoder: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A,
 * Ctrl-A h asks for help, Ctrl-A with any other key is dropped. State
 * carries across chunks (the two keys may arrive in separate reads).
 *
 * @example
 * ```ts
 * import { ConsoleEscape } from "./cli_io.ts";
 * const esc = new ConsoleEscape();
 * console.log(esc.feed(new Uint8Array([0x61, 0x01])).bytes); // Uint8Array(1) [ 97 ]
 * console.log(esc.feed(new Uint8Array([0x78])).quit); // true
 * ```
 */
export class ConsoleEscape {
  #pending = false;

  /** Decode one chunk. */
  feed(chunk: Uint8Array): EscapeOutcome {
    const out: number[] = [];
    let quit = false;
    let help = false;
    for (const b of chunk) {
      if (this.#pending) {
        this.#pending = false;
        if (b === 0x78 || b === 0x58) {
          quit = true;
          break;
        }
        if (b === ESCAPE_KEY) out.push(ESCAPE_KEY);
        else if (b === 0x68 || b === 0x48) help = true;
      } else if (b === ESCAPE_KEY) {
        this.#pending = true;
      } else {
        out.push(b);
      }
    }
    return { bytes: new Uint8Array(out), quit, help };
  }
}

/** Help line printed for Ctrl-A h. */
export const ESCAPE_HELP =
  "\r\n[denovmm] Ctrl-A x: quit   Ctrl-A Ctrl-A: send Ctrl-A   Ctrl-A h: this help\r\n";

/**
 * Buffered writer for COM1 output: flushes at a newline, when full, and on
 * demand; with `crlf` a lone `\n` becomes `\r\n` (a terminal in raw mode
 * does not add the carriage return).
 *
 * @example
 * ```ts
 * import { OutputSink } from "./cli_io.ts";
 * const chunks: string[] = [];
 * const out = new OutputSink((b) => { chunks.push(new TextDecoder().decode(b)); return b.length; });
 * for (const c of "hi\n") out.byte(c.charCodeAt(0));
 * console.log(chunks); // [ "hi\n" ]
 * ```
 */
export class OutputSink {
  readonly #buf = new Uint8Array(4096);
  #n = 0;
  #last = 0;
  readonly #write: (b: Uint8Array) => number;
  /** Translate `\n` to `\r\n`. */
  crlf = false;
  /** Bytes written. */
  bytes = 0;

  /** Write through `write` (returns bytes written, like `writeSync`). */
  constructor(write: (b: Uint8Array) => number) {
    this.#write = write;
  }

  /** One guest byte. */
  byte(b: number): void {
    if (this.#n >= this.#buf.length - 1) this.flush();
    if (b === 0x0a && this.crlf && this.#last !== 0x0d) {
      this.#buf[this.#n++] = 0x0d;
    }
    this.#buf[this.#n++] = b;
    this.#last = b;
    this.bytes++;
    if (b === 0x0a) this.flush();
  }

  /** Write what is buffered. */
  flush(): void {
    let off = 0;
    while (off < this.#n) off += this.#write(this.#buf.subarray(off, this.#n));
    this.#n = 0;
  }
}

const LEVEL_RANK: Record<LogLevel, number> = {
  error: 0,
  warn: 1,
  info: 2,
  debug: 3,
};

/** True when colours may be used on stderr (a terminal and no NO_COLOR). */
export function stderrColours(): boolean {
  try {
    return host.stderrIsTerminal() && !host.env("NO_COLOR");
  } catch {
    return false;
  }
}

/**
 * A logger printing messages at or above `threshold` to stderr, after
 * `beforeWrite` (the CLI flushes guest output first so lines interleave).
 */
export function stderrLogger(
  threshold: LogLevel,
  beforeWrite: () => void = () => {},
  colours = stderrColours(),
): (level: LogLevel, source: string, msg: string) => void {
  const max = LEVEL_RANK[threshold];
  const tint: Record<LogLevel, string> = {
    error: "\x1b[31m",
    warn: "\x1b[33m",
    info: "\x1b[36m",
    debug: "\x1b[2m",
  };
  return (level, source, msg) => {
    if (LEVEL_RANK[level] > max) return;
    beforeWrite();
    const tag = colours ? `${tint[level]}${level}\x1b[0m` : level;
    console.error(`[denovmm ${source}] ${tag}: ${msg}`);
  };
}

/**
 * Read stdin in the background, handing chunks to `onData` (after the
 * Ctrl-A escape when `escape` is set) until EOF; `onQuit` for Ctrl-A x.
 * Returns a function that stops reading and restores the terminal.
 */
export function startStdin(options: {
  raw: boolean;
  onData: (bytes: Uint8Array) => void;
  onEof: () => void;
  onQuit: () => void;
  onHelp: () => void;
}): () => void {
  let rawSet = false;
  if (options.raw) {
    host.setStdinRaw(true);
    rawSet = true;
  }
  const esc = options.raw ? new ConsoleEscape() : null;
  let stopped = false;
  (async () => {
    try {
      for (;;) {
        const value = await host.readStdin();
        if (value === null || stopped) break;
        if (esc) {
          const r = esc.feed(value);
          if (r.bytes.length > 0) options.onData(r.bytes);
          if (r.help) options.onHelp();
          if (r.quit) {
            options.onQuit();
            return;
          }
        } else {
          options.onData(value);
        }
      }
    } catch {
      // stdin closed or unreadable: same as EOF
    }
    if (!stopped) options.onEof();
  })();
  return () => {
    stopped = true;
    if (rawSet) {
      try {
        host.setStdinRaw(false);
      } catch {
        // not a terminal any more
      }
    }
  };
}
