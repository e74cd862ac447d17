import assert from "node:assert/strict";
import { locateLibrary } from "./library.ts";

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
