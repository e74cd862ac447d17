/**
 * Bundle the CLI's implementation (`vmm/cli_main.ts` and everything it
 * imports, dynamic imports included) into `.bundle/cli.js`, with a
 * manifest (`.bundle/cli.json`: Deno version, and each local source's
 * path, size and mtime) that `cli.ts` checks before using the bundle.
 * Part of `deno task build`.
 *
 * The bundle sits one directory below the repository root, as `ffi/` and
 * `vmm/` do, so `import.meta.url`-relative paths (the core library at
 * `../core/target/release/`) resolve the same from it.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-run tools/bundle_cli.ts
 * ```
 *
 * @module
 */
const root = new URL("../", import.meta.url);
const rootPath = decodeURIComponent(root.pathname);
const ENTRY = "vmm/cli_main.ts";
const OUT = ".bundle/cli.js";

async function deno(args: string[]): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: rootPath,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (!r.success) {
    throw new Error(`deno ${args.join(" ")} failed:\n${dec.decode(r.stderr)}`);
  }
  return dec.decode(r.stdout);
}

interface InfoModule {
  specifier: string;
}

Deno.mkdirSync(new URL(".bundle/", root), { recursive: true });
// The manifest first goes away: a half-written bundle is never "current".
try {
  Deno.removeSync(new URL(".bundle/cli.json", root));
} catch {
  // none yet
}
const graph = JSON.parse(
  await deno(["info", "--json", ENTRY]),
) as { modules: InfoModule[] };
await deno(["bundle", "--quiet", "--platform", "deno", "-o", OUT, ENTRY]);
const sources: [string, number, number][] = [];
for (const m of graph.modules) {
  if (!m.specifier.startsWith(root.href)) continue;
  const path = decodeURIComponent(m.specifier.slice(root.href.length));
  const st = Deno.statSync(new URL(path, root));
  sources.push([path, st.size, st.mtime?.getTime() ?? 0]);
}
sources.sort((a, b) => a[0].localeCompare(b[0]));
// cli.ts (the launcher) resolves the manifest's paths against its own
// directory, the repository root.
Deno.writeTextFileSync(
  new URL(".bundle/cli.json", root),
  JSON.stringify({ deno: Deno.version.deno, bundle: OUT, sources }),
);
console.log(
  `bundle_cli: ${OUT} from ${sources.length} modules (${
    (Deno.statSync(new URL(OUT, root)).size / 1024).toFixed(0)
  } KiB)`,
);
