/**
 * The backend interface with the napi backend under Deno: the whole TS
 * stack (machine, bus, plugins, vm.ts, run loop) boots guests through the
 * napi-rs addon exactly as through `Deno.dlopen`. Skipped loudly when the
 * addon is not built (`cd napi && npm install && npm run build`).
 */
import { ABI_VERSION } from "./abi.ts";
import assert from "node:assert/strict";
import { CoreVm, coreVmCount } from "./core_vm.ts";
import { openLibrary } from "./library.ts";
import { findPlatformAddon, openNapiBackend } from "./napi_backend.ts";
import { bootGuest, HAVE_KVM } from "../tests/kvm.ts";
import { echoPlugin } from "../plugins/echo/plugin.ts";

const ADDON = decodeURIComponent(
  new URL("../napi/denovmm.linux-x64-gnu.node", import.meta.url).pathname,
);
const HAVE_ADDON = (() => {
  try {
    return Deno.statSync(ADDON).isFile;
  } catch {
    console.error(
      `\n*** no napi addon at ${ADDON}: the napi backend tests are SKIPPED ` +
        "(cd napi && npm install && npm run build) ***\n",
    );
    return false;
  }
})();

Deno.test({
  name: "napi backend: the TS stack on the napi-rs addon",
  ignore: !HAVE_KVM || !HAVE_ADDON,
  fn: async (t) => {
    await t.step("a .node path opens the napi backend; a .so Deno FFI", () => {
      assert.equal(openLibrary(ADDON).kind, "napi");
      assert.equal(openLibrary().kind, "deno-ffi");
    });

    await t.step("hello boots through bus, serial plugin and vm.ts", () => {
      const { result, out, machine } = bootGuest("hello", [21], {
        libraryPath: ADDON,
      });
      using _ = machine;
      assert.deepEqual(result, { reason: "exit", status: 43 });
      assert.match(out, /hello from denovmm/);
    });

    await t.step(
      "ports: PIO and MMIO through a TS plugin, both irqchips",
      () => {
        for (const irqchip of ["kernel", "split"] as const) {
          const { result, out, machine } = bootGuest("ports", [], {
            irqchip,
            libraryPath: ADDON,
            plugins: [
              echoPlugin({ space: "pio", base: 0x600 }),
              echoPlugin({ space: "mmio", base: 0xd0000000 }),
            ],
          });
          using _ = machine;
          assert.ok(!/^FAIL /m.test(out), out);
          assert.ok((out.match(/^PASS /gm) ?? []).length >= 50, out);
          assert.deepEqual(result, { reason: "exit", status: 1 });
        }
      },
    );

    await t.step(
      "CoreVm on the napi backend: handles, VM count, zero-copy RAM",
      () => {
        const before = coreVmCount(ADDON);
        const vm = CoreVm.create({
          memSize: 16 << 20,
          irqchip: "kernel",
          strict: false,
          libraryPath: ADDON,
        });
        try {
          assert.equal(vm.backend, "napi");
          assert.equal(coreVmCount(ADDON), before + 1);
          const ram = new Uint8Array(vm.memoryBuffer());
          assert.equal(ram.length, 16 << 20);
          ram[0x1000] = 0xa5;
          assert.equal(new Uint8Array(vm.memoryBuffer())[0x1000], 0xa5);
          assert.equal(vm.recordBuffer(0).byteLength, 4160);
        } finally {
          vm.destroy();
        }
        assert.equal(coreVmCount(ADDON), before);
        assert.throws(() => vm.destroy(), /unknown or closed VM handle/);
      },
    );
  },
});

Deno.test("napi backend: load errors name the cause and the fix", () => {
  assert.throws(
    () => openLibrary("/nonexistent/denovmm.node"),
    /no napi addon at \/nonexistent\/denovmm\.node; .*npm run build/,
  );
  const dir = Deno.makeTempDirSync();
  try {
    const fake = `${dir}/fake.node`;
    Deno.writeTextFileSync(fake, "not an ELF");
    assert.throws(
      () => openLibrary(fake),
      /fake\.node could not be loaded as the denovmm napi addon/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("napi backend: the npm platform package is looked up from a directory", () => {
  assert.equal(findPlatformAddon("/nonexistent-dir"), undefined);
});

Deno.test("napi backend: another ABI or another addon is refused by name", () => {
  // require() loads a CommonJS stand-in the same way it loads a .node
  const dir = Deno.makeTempDirSync();
  try {
    const old = `${dir}/old_abi.cjs`;
    Deno.writeTextFileSync(old, "exports.dv_abi_version = () => 1;");
    assert.throws(
      () => openNapiBackend(old),
      new RegExp(
        `old_abi\\.cjs speaks ABI 1 and this module ABI ${ABI_VERSION}; rebuild the addon`,
      ),
    );
    const other = `${dir}/other.cjs`;
    Deno.writeTextFileSync(other, "exports.hello = () => 1;");
    assert.throws(
      () => openNapiBackend(other),
      /other\.cjs loads but is not the denovmm addon/,
    );
    // the right ABI but built before dv_buffer_detach existed
    const stale = `${dir}/stale.cjs`;
    Deno.writeTextFileSync(
      stale,
      `exports.dv_abi_version = () => ${ABI_VERSION};
       exports.dv_last_error_string = () => "";
       exports.dv_vcpu_record_buffer = () => new ArrayBuffer(0);
       exports.dv_vm_memory_buffer = () => new ArrayBuffer(0);`,
    );
    assert.throws(
      () => openNapiBackend(stale),
      /stale\.cjs lacks dv_buffer_detach \(an addon older than this module\)/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
