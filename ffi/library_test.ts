import assert from "node:assert/strict";
import { ABI_VERSION } from "./abi.ts";
import { locateLibrary, noPrebuiltError } from "./library.ts";
import {
  findPlatformPackage,
  PLATFORM_PACKAGE,
  platformPackageName,
} from "./platform_package.ts";

Deno.test("locateLibrary: DENOVMM_LIB wins; a local module has a build beside it", () => {
  assert.deepEqual(
    locateLibrary("/x/lib.so", true, "file:///repo/ffi/library.ts"),
    {
      path: "/x/lib.so",
      hints: [],
    },
  );
  const local = locateLibrary(undefined, true, "file:///repo/ffi/library.ts");
  assert.equal(local.path, "/repo/core/target/release/libdenovmm_core.so");
  assert.match(local.hints.join(), /deno task build:core/);
});

Deno.test("locateLibrary: a module from the network names the real cause", () => {
  const jsr = "https://jsr.io/@denovmm/vmm/0.1.0/ffi/library.ts";
  const l = locateLibrary(undefined, true, jsr);
  assert.equal(l.path, undefined, "no meaningless default path");
  assert.match(l.hints[0], /not part of the published module/);
  assert.match(l.hints[0], /DENOVMM_LIB=/);
  const noEnv = locateLibrary(undefined, false, jsr);
  assert.match(noEnv.hints.join(), /--allow-env=DENOVMM_LIB/);
});

Deno.test("no prebuilt core for this platform: the message names it and the fix", () => {
  assert.equal(platformPackageName("linux", "x86_64"), PLATFORM_PACKAGE);
  assert.equal(platformPackageName("linux", "x64"), PLATFORM_PACKAGE);
  assert.equal(platformPackageName("darwin", "aarch64"), undefined);
  assert.equal(platformPackageName("linux", "aarch64"), undefined);
  assert.equal(
    noPrebuiltError("darwin", "aarch64").message,
    "cannot load the denovmm core: there is no prebuilt core for " +
      "darwin-aarch64 (denovmm needs KVM: Linux on x86-64); build core/ " +
      "from the repository on such a host and set DENOVMM_LIB to it",
  );
});

Deno.test("locateLibrary on Node: the addon beside a checkout, else the package", () => {
  const l = locateLibrary(
    undefined,
    true,
    "file:///repo/ffi/library.js",
    "node",
  );
  assert.equal(l.path, "/repo/napi/denovmm.linux-x64-gnu.node");
  assert.match(l.hints.join(), /npm run build.*@denovmm\/core-linux-x64-gnu/);
});

Deno.test("findPlatformPackage: another ABI is refused by name", () => {
  const dir = Deno.makeTempDirSync();
  const fake = (sub: string, abi: number) => {
    const p = `${dir}/${sub}/node_modules/@denovmm/core-linux-x64-gnu`;
    Deno.mkdirSync(p, { recursive: true });
    Deno.writeTextFileSync(
      `${p}/package.json`,
      '{"name":"@denovmm/core-linux-x64-gnu","main":"index.js"}',
    );
    Deno.writeTextFileSync(
      `${p}/index.js`,
      `module.exports = { addon: "/a.node", library: "/a.so", abi: ${abi} };`,
    );
    return `${dir}/${sub}`;
  };
  try {
    assert.throws(
      () => findPlatformPackage(fake("old", 99), ""),
      /@denovmm\/core-linux-x64-gnu \(\S+index\.js\) speaks ABI 99 and this module ABI \d+; install @denovmm\/core-linux-x64-gnu@0\.1\.0/,
    );
    assert.deepEqual(findPlatformPackage(fake("ok", ABI_VERSION), ""), {
      addon: "/a.node",
      library: "/a.so",
      abi: ABI_VERSION,
    });
    assert.equal(findPlatformPackage(`${dir}/none`, ""), undefined);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
