/**
 * Every way loading the core can fail gives a one-line error naming the
 * cause and the fix (run in subprocesses with chosen permissions).
 */
import assert from "node:assert/strict";
import { HAVE_KVM } from "./kvm.ts";

const lib = decodeURIComponent(
  new URL("../core/target/release/libdenovmm_core.so", import.meta.url)
    .pathname,
);
const script = `import { createVm } from ${
  JSON.stringify(new URL("../mod.ts", import.meta.url).href)
};
createVm({}).close();
console.log("ok");`;

async function attempt(
  flags: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; err: string; out: string }> {
  const dir = Deno.makeTempDirSync();
  const file = `${dir}/user.ts`;
  Deno.writeTextFileSync(file, script);
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", ...flags, file],
      env: { NO_COLOR: "1", ...env },
      clearEnv: false,
    }).output();
    const d = new TextDecoder();
    return { code: r.code, err: d.decode(r.stderr), out: d.decode(r.stdout) };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test({
  name: "library: load failures say what is wrong and how to fix it",
  ignore: !Deno.statSync(lib).isFile,
  fn: async (t) => {
    await t.step("the documented permissions work", async () => {
      const r = await attempt([
        "--allow-ffi",
        "--allow-read",
        "--allow-env=DENOVMM_LIB",
      ]);
      if (!HAVE_KVM) return; // the load itself is checked by the steps below
      assert.equal(r.out.trim(), "ok", r.err);
    });
    await t.step("no --allow-ffi", async () => {
      const r = await attempt(["--allow-read"]);
      assert.notEqual(r.code, 0);
      assert.match(r.err, /denovmm needs --allow-ffi to load its core/);
    });
    await t.step("--allow-ffi scoped to the library", async () => {
      const r = await attempt([`--allow-ffi=${lib}`, "--allow-read"]);
      assert.match(r.err, /needs an unscoped --allow-ffi/);
    });
    await t.step("DENOVMM_LIB names a missing file", async () => {
      const r = await attempt(
        ["--allow-ffi", "--allow-read", "--allow-env=DENOVMM_LIB"],
        { DENOVMM_LIB: "/nonexistent/libdenovmm_core.so" },
      );
      assert.match(
        r.err,
        /no core library at \/nonexistent\/libdenovmm_core\.so/,
      );
    });
    await t.step(
      "DENOVMM_LIB names something that is not the core",
      async () => {
        const r = await attempt(
          ["--allow-ffi", "--allow-read", "--allow-env=DENOVMM_LIB"],
          { DENOVMM_LIB: "/etc/hostname" },
        );
        assert.match(
          r.err,
          /\/etc\/hostname could not be loaded as the denovmm core/,
        );
      },
    );
  },
});
