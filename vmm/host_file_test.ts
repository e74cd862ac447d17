import assert from "node:assert/strict";
import { checkHostFile, HostFileError, readHostFile } from "./host_file.ts";

function problem(fn: () => unknown): { problem: string; message: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof HostFileError, String(e));
    return { problem: e.problem, message: e.message };
  }
  throw new Error("did not throw");
}

Deno.test("readHostFile / checkHostFile", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "denovmm-hostfile-" });
  try {
    const file = `${dir}/a.bin`;
    Deno.writeFileSync(file, new Uint8Array([1, 2, 3]));
    await t.step("reads a regular file", () => {
      assert.deepEqual(readHostFile(file), new Uint8Array([1, 2, 3]));
      assert.equal(checkHostFile(file, { write: true }).size, 3);
    });
    await t.step("missing: names what and path", () => {
      const r = problem(() =>
        readHostFile(`${dir}/nope`, { what: "guest image" })
      );
      assert.equal(r.problem, "missing");
      assert.equal(r.message, `guest image "${dir}/nope": no such file`);
    });
    await t.step("directory", () => {
      const r = problem(() => readHostFile(dir, { what: "--config" }));
      assert.equal(r.problem, "directory");
      assert.match(r.message, /^--config ".*": is a directory$/);
      assert.equal(
        problem(() => checkHostFile(dir, { write: true })).problem,
        "directory",
      );
      assert.equal(problem(() => checkHostFile(dir)).problem, "directory");
    });
    await t.step("not a regular file", () => {
      assert.equal(
        problem(() => checkHostFile("/dev/null")).problem,
        "not-a-file",
      );
    });
    await t.step("too big", () => {
      const r = problem(() => readHostFile(file, { maxBytes: 2 }));
      assert.equal(r.problem, "too-big");
      assert.match(r.message, /is 3 bytes, over the 2 bytes limit/);
    });
    await t.step("permission denied (unless running as root)", () => {
      Deno.chmodSync(file, 0o000);
      let readable = true;
      try {
        Deno.readFileSync(file);
      } catch {
        readable = false;
      }
      if (readable) return; // root reads anything: nothing to check
      const r = problem(() => readHostFile(file, { what: "--disk" }));
      assert.equal(r.problem, "permission");
      assert.match(r.message, /permission denied \(needs read access\)/);
      Deno.chmodSync(file, 0o444);
      const w = problem(() =>
        checkHostFile(file, { what: "--disk", write: true })
      );
      assert.match(w.message, /needs read and write access/);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
