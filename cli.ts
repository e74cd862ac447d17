/**
 * Command line: boot an ELF64 guest with the standard devices.
 *
 * ```sh
 * deno run --allow-ffi --allow-read cli.ts guests/build/hello.elf --arg 3
 * ```
 *
 * Serial output goes to stdout; the exit code is the guest's isa-debug-exit
 * status (`(v << 1) | 1`, truncated to 8 bits by the OS), 0 when the guest
 * halts through the PV halt port, 124 on timeout, 1 on any other failure,
 * 2 on a usage error.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { CliGuestArgs } from "./vmm/cli_guest.ts";
import { spawnVm } from "./vmm/worker_host.ts";

const USAGE =
  `usage: deno run --allow-ffi --allow-read cli.ts <guest.elf> [options]

options:
  --irqchip kernel|split   interrupt controllers (default kernel)
  --mem SIZE               guest RAM, e.g. 16M (default 16M)
  --timeout DURATION       stop after e.g. 10s, 500ms (default 10s)
  --strict                 fail on accesses no device claims
  --arg N                  guest argument (RDI, RSI, RDX, RCX), repeatable
  --timer msi|gsi          PV timer delivery (default msi)
  --cmdline STRING         kernel command line (multiboot info and fw_cfg)
  --module PATH            multiboot module, repeatable

A file that is not an x86-64 ELF64 but has a Multiboot v1 header boots as a
Multiboot kernel (32-bit protected-mode entry).
  -h, --help               show this help`;

/**
 * Parse a duration like `10s`, `500ms`, `2m` into milliseconds.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./cli.ts";
 * console.log(parseDuration("1.5s")); // 1500
 * ```
 */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(s.trim());
  if (!m) throw new RangeError(`bad duration "${s}" (use e.g. 10s or 500ms)`);
  const v = Number(m[1]);
  return m[2] === "ms" ? v : m[2] === "m" ? v * 60_000 : v * 1000;
}

/** Outcome of {@link main}: exit code and a one-line error, if any. */
export interface CliOutcome {
  /** Process exit code. */
  code: number;
  /** One-line error message. */
  error?: string;
}

/**
 * Run the CLI with `argv`; returns the exit code instead of exiting.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * const { code } = await main(["guests/build/hello.elf"]);
 * ```
 */
export async function main(argv: string[]): Promise<CliOutcome> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        irqchip: { type: "string", default: "kernel" },
        mem: { type: "string", default: "16M" },
        timeout: { type: "string", default: "10s" },
        strict: { type: "boolean", default: false },
        arg: { type: "string", multiple: true, default: [] },
        timer: { type: "string", default: "msi" },
        cmdline: { type: "string" },
        module: { type: "string", multiple: true, default: [] },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    return { code: 2, error: `${(e as Error).message}\n${USAGE}` };
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return { code: 0 };
  }
  if (positionals.length !== 1) {
    return { code: 2, error: `expected one guest file\n${USAGE}` };
  }
  const path = positionals[0];
  if (values.irqchip !== "kernel" && values.irqchip !== "split") {
    return { code: 2, error: `--irqchip must be kernel or split` };
  }
  if (values.timer !== "msi" && values.timer !== "gsi") {
    return { code: 2, error: `--timer must be msi or gsi` };
  }
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(values.timeout!);
  } catch (e) {
    return { code: 2, error: (e as Error).message };
  }
  for (const a of values.arg!) {
    if (!/^(0x[0-9a-f]+|\d+)$/i.test(a)) {
      return { code: 2, error: `--arg ${a}: not an integer` };
    }
  }
  for (const m of values.module!) {
    try {
      Deno.statSync(m);
    } catch {
      return { code: 1, error: `--module ${m}: no such file` };
    }
  }
  try {
    if (!Deno.statSync(path).isFile) {
      return { code: 1, error: `${path}: not a file` };
    }
  } catch (e) {
    return {
      code: 1,
      error: e instanceof Deno.errors.NotFound
        ? `${path}: no such file`
        : `${path}: ${(e as Error).message}`,
    };
  }
  const args: CliGuestArgs = {
    path,
    irqchip: values.irqchip,
    memory: values.mem!,
    strict: values.strict!,
    timeoutMs,
    args: values.arg!,
    timer: values.timer,
    cmdline: values.cmdline,
    modules: values.module,
  };
  const remote = spawnVm(new URL("./vmm/cli_guest.ts", import.meta.url), args);
  const onSigint = () => void remote.stop().catch(() => {});
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    const { result } = await remote.done;
    switch (result.reason) {
      case "exit":
        return { code: result.status! & 0xff };
      case "halt":
      case "poweroff":
        return { code: 0 };
      case "timeout":
        return { code: 124, error: `guest timed out after ${values.timeout}` };
      case "stopped":
        return { code: 130, error: "stopped" };
      default:
        return {
          code: 1,
          error: `guest ${result.reason}${
            result.detail ? `: ${result.detail}` : ""
          }`,
        };
    }
  } catch (e) {
    return { code: 1, error: (e as Error).message };
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}

if (import.meta.main) {
  const { code, error } = await main(Deno.args);
  if (error) console.error(`denovmm: ${error}`);
  Deno.exit(code);
}
