/**
 * Command line: boot an x86-64 ELF64 guest (or a Multiboot v1 kernel) with
 * the standard devices, in this process (no Worker).
 *
 * ```sh
 * deno run --allow-ffi --allow-read cli.ts guests/build/hello.elf --arg 3
 * ```
 *
 * COM1 output goes to stdout, stdin goes to COM1 (raw mode on a terminal;
 * Ctrl-A x quits). Exit codes are listed in `vmm/exit_codes.ts`: 0 guest
 * success, odd codes the guest's debug-exit status, 2 usage error, 66 host
 * file error, 70 VMM failure, 72 guest crashed, 124 timeout, 130
 * interrupted. `--help` lists the options.
 *
 * Start-up: this module imports nothing up front. Run as a program, it
 * loads the implementation (`vmm/cli_main.ts`) from the single-file bundle
 * `deno task build` writes (`.bundle/cli.js`) when the bundle's manifest
 * still matches every source file it was made from (path, size, mtime)
 * and this Deno; otherwise from source. Deno loads one 450 KB module far
 * faster than the ~75 modules it is made of (~5 against ~25-45 ms here).
 *
 * @module
 */
import type { CliOutcome } from "./vmm/cli_main.ts";
import { importUrl } from "./vmm/dynamic_import.ts";

export type { CliOutcome } from "./vmm/cli_main.ts";
export { parseDuration, parseSize, type SizeOptions } from "./vmm/options.ts";
export type { DeviceEnv, DeviceFactory } from "./vmm/cli_devices.ts";

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
  return (await import("./vmm/cli_main.ts")).main(argv);
}

/** The bundle's manifest (written by `tools/bundle_cli.ts`). */
interface BundleManifest {
  deno: string;
  bundle: string;
  sources: [path: string, size: number, mtimeMs: number][];
}

/**
 * The bundle's URL when its manifest matches the sources (all relative to
 * this module's directory) and this Deno, else null. Any error (no
 * bundle, no read permission, a module imported over the network) means
 * null: the sources are always a correct fallback. `load`, when given,
 * starts importing the bundle while the sources are checked (the two
 * overlap: the stats run on Deno's I/O threads).
 */
export async function currentBundle(
  base: URL = new URL(".", import.meta.url),
  load?: (bundle: URL) => Promise<unknown>,
): Promise<URL | null> {
  if (base.protocol !== "file:") return null;
  try {
    const m = JSON.parse(
      Deno.readTextFileSync(new URL(".bundle/cli.json", base)),
    ) as BundleManifest;
    if (m.deno !== Deno.version.deno) return null;
    const dir = decodeURIComponent(base.pathname);
    const bundle = new URL(m.bundle, base);
    const loading = load?.(bundle).catch(() => null);
    const fresh = await Promise.all(
      m.sources.map(async ([path, size, mtime]) => {
        const st = await Deno.stat(dir + path);
        return st.size === size && st.mtime?.getTime() === mtime;
      }),
    );
    await loading;
    return fresh.every(Boolean) ? bundle : null;
  } catch {
    return null;
  }
}

if (import.meta.main) {
  type CliMain = typeof import("./vmm/cli_main.ts");
  // A bundle that fails to load (a broken build) falls back to source too.
  let loaded: Promise<CliMain | null> = Promise.resolve(null);
  const bundle = await currentBundle(
    undefined,
    (url) =>
      loaded = (importUrl(url.href) as Promise<CliMain>).catch(() => null),
  );
  const fromBundle = bundle ? await loaded : null;
  const mod = fromBundle ?? await import("./vmm/cli_main.ts");
  await mod.runCli(Deno.args, fromBundle ? "bundle" : "source");
}
