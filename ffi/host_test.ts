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

Deno.test("only ffi/ (and cli.ts, tests, benches) names the Deno runtime", () => {
  const uses = /\bDeno\s*[.[]|typeof\s+Deno\b|globalThis\.Deno\b|lib="deno/;
  const files = [...librarySources(ROOT)];
  assert.ok(files.includes("vmm/machine.ts"), files.join());
  assert.ok(files.includes("plugins/virtio/block_backend.ts"));
  const offenders = files.filter((f) =>
    uses.test(Deno.readTextFileSync(new URL(f, ROOT)))
  );
  assert.deepEqual(offenders, [], "use ffi/host.ts instead");
});

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
