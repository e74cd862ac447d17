/**
 * `currentBundle`: the CLI uses its bundle only while the manifest matches
 * every source (size, mtime) and this Deno, and falls back otherwise.
 */
import assert from "node:assert/strict";
import { currentBundle } from "./cli.ts";

function fixture(): { base: URL; dir: string } {
  const dir = Deno.makeTempDirSync({ prefix: "denovmm-bundle-" });
  Deno.mkdirSync(`${dir}/.bundle`);
  Deno.mkdirSync(`${dir}/vmm`);
  Deno.writeTextFileSync(`${dir}/.bundle/cli.js`, "export {};");
  Deno.writeTextFileSync(`${dir}/vmm/a.ts`, "export const a = 1;");
  const st = Deno.statSync(`${dir}/vmm/a.ts`);
  Deno.writeTextFileSync(
    `${dir}/.bundle/cli.json`,
    JSON.stringify({
      deno: Deno.version.deno,
      bundle: ".bundle/cli.js",
      sources: [["vmm/a.ts", st.size, st.mtime!.getTime()]],
    }),
  );
  return { base: new URL(`file://${dir}/`), dir };
}

Deno.test("currentBundle: a matching manifest names the bundle", async () => {
  const { base, dir } = fixture();
  try {
    assert.equal(
      (await currentBundle(base))?.href,
      new URL(".bundle/cli.js", base).href,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("currentBundle: an edited, missing or other-Deno source means source", async () => {
  const { base, dir } = fixture();
  try {
    Deno.writeTextFileSync(`${dir}/vmm/a.ts`, "export const a = 22;");
    assert.equal(await currentBundle(base), null, "size changed");
    const { base: b2, dir: d2 } = fixture();
    try {
      const t = new Date(Date.now() + 5000);
      Deno.utimeSync(`${d2}/vmm/a.ts`, t, t);
      assert.equal(await currentBundle(b2), null, "mtime changed");
      Deno.removeSync(`${d2}/vmm/a.ts`);
      assert.equal(await currentBundle(b2), null, "source gone");
    } finally {
      Deno.removeSync(d2, { recursive: true });
    }
    const { base: b3, dir: d3 } = fixture();
    try {
      const m = JSON.parse(Deno.readTextFileSync(`${d3}/.bundle/cli.json`));
      Deno.writeTextFileSync(
        `${d3}/.bundle/cli.json`,
        JSON.stringify({ ...m, deno: "0.0.1" }),
      );
      assert.equal(await currentBundle(b3), null, "other Deno");
      Deno.removeSync(`${d3}/.bundle/cli.json`);
      assert.equal(await currentBundle(b3), null, "no manifest");
      Deno.writeTextFileSync(`${d3}/.bundle/cli.json`, "{");
      assert.equal(await currentBundle(b3), null, "bad manifest");
    } finally {
      Deno.removeSync(d3, { recursive: true });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("currentBundle: a module not on disk has none", async () => {
  assert.equal(
    await currentBundle(new URL("https://jsr.io/@denovmm/vmm/0.1.0/")),
    null,
  );
});

Deno.test("currentBundle: `load` starts the import, the answer still decides", async () => {
  const { base, dir } = fixture();
  try {
    const seen: string[] = [];
    const load = (u: URL) => {
      seen.push(u.href);
      return Promise.resolve();
    };
    assert.ok(await currentBundle(base, load));
    Deno.writeTextFileSync(`${dir}/vmm/a.ts`, "export const a = 22;");
    assert.equal(await currentBundle(base, load), null);
    assert.deepEqual(seen, [
      new URL(".bundle/cli.js", base).href,
      new URL(".bundle/cli.js", base).href,
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
