import assert from "node:assert/strict";
import { host } from "./host.ts";

const ROOT = new URL("../", import.meta.url);

/** Library source files outside ffi/ (tests, CLI entry, dev scripts aside). */
function* librarySources(dir: URL, rel = ""): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = rel + e.name;
    if (e.isDirectory) {
      if (
        ["bus/", "vmm/", "plugins/"].some((d) => (path + "/").startsWith(d))
      ) {
        yield* librarySources(new URL(`${e.name}/`, dir), `${path}/`);
      }
    } else if (
      e.name.endsWith(".ts") && !e.name.endsWith("_test.ts") &&
      (rel !== "" || ["mod.ts", "snapshot.ts", "cpu.ts"].includes(e.name))
    ) {
      yield path;
    }
  }
}

// The CLI is a Deno program: its body moved from cli.ts to vmm/cli_main.ts
// so that it can be loaded from a single-file bundle.
const DENO_PROGRAMS = ["vmm/cli_main.ts"];

Deno.test("only ffi/ (and cli.ts, tests, benches) names the Deno runtime", () => {
  const uses = /\bDeno\s*[.[]|typeof\s+Deno\b|globalThis\.Deno\b|lib="deno/;
  const files = [...librarySources(ROOT)].filter((f) =>
    !DENO_PROGRAMS.includes(f)
  );
  assert.ok(files.includes("vmm/machine.ts"), files.join());
  assert.ok(files.includes("plugins/virtio/block_backend.ts"));
  const offenders = files.filter((f) =>
    uses.test(Deno.readTextFileSync(new URL(f, ROOT)))
  );
  assert.deepEqual(offenders, [], "use ffi/host.ts instead");
});

Deno.test("no library module imports a node: built-in statically", () => {
  // A static `node:` import starts Deno's Node layer (~20-30 ms) in every
  // process, the CLI included: ffi/builtin.ts fetches them on first use.
  const staticNode = /^\s*(import|export)\s[^;]*?from\s+"node:[^"]+";/ms;
  const files = [...librarySources(ROOT), ...ffiSources()];
  const offenders = files.filter((f) => {
    const src = Deno.readTextFileSync(new URL(f, ROOT));
    return src.split(/(?=^\s*(?:import|export)\s)/m).some((stmt) =>
      staticNode.test(stmt) && !/^\s*(import|export)\s+type\s/.test(stmt)
    );
  });
  assert.deepEqual(
    offenders,
    [],
    "fetch it with builtin() from ffi/builtin.ts",
  );
});

function ffiSources(): string[] {
  return [...Deno.readDirSync(new URL("ffi/", ROOT))]
    .filter((e) => e.name.endsWith(".ts") && !e.name.endsWith("_test.ts"))
    .map((e) => `ffi/${e.name}`);
}

Deno.test("host: positional file I/O, stat, truncate, rename, errors", () => {
  assert.equal(host.runtime, "deno");
  const dir = Deno.makeTempDirSync();
  try {
    const a = `${dir}/a`;
    const f = host.open(a, { read: true, write: true, createNew: true });
    assert.equal(f.writeAt(new Uint8Array([1, 2, 3, 4]), 2), 4);
    const b = new Uint8Array(6);
    assert.equal(f.readAt(b, 0), 6);
    assert.deepEqual([...b], [0, 0, 1, 2, 3, 4]);
    assert.equal(f.readAt(b, 6), 0, "EOF reads 0");
    f.truncate(3);
    assert.equal(f.stat().size, 3);
    f.syncData();
    f.close();
    assert.deepEqual(host.stat(a), {
      isFile: true,
      isDirectory: false,
      size: 3,
    });
    host.rename(a, `${dir}/b`);
    assert.throws(() => host.stat(a), (e) => host.errorKind(e) === "missing");
    assert.throws(
      () => host.open(`${dir}/b`, { write: true, createNew: true }),
      (e) => host.errorKind(e) === "other",
    );
    host.chmod(`${dir}/b`, 0o600);
    assert.equal(host.readTextFile(`${dir}/b`), "\0\0\x01");
    host.remove(`${dir}/b`);
    assert.equal(host.stat(dir).isDirectory, true);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("host: env reads never prompt; cwd", () => {
  assert.equal(host.envReadable("PATH"), true); // the suite runs with -A
  assert.equal(host.env("DENOVMM_SURELY_UNSET_VAR"), undefined);
  assert.equal(host.cwd(), Deno.cwd());
});
