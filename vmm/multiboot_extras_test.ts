import assert from "node:assert/strict";
import { encodeMultibootExtras, multibootCmdline } from "./multiboot_extras.ts";

Deno.test("multiboot: the command line starts with the image name", () => {
  assert.equal(multibootCmdline({ cmdline: "a=1 b" }, "k.elf"), "k.elf a=1 b");
  assert.equal(multibootCmdline({}, "/boot/k"), "/boot/k");
  assert.equal(multibootCmdline({ cmdline: "x" }), "kernel x");
  assert.equal(
    multibootCmdline({ cmdline: "x", imageName: "vmlinuz" }, "k.elf"),
    "vmlinuz x",
  );
  assert.equal(multibootCmdline({ cmdline: "x", imageName: false }, "k"), "x");
  const blob = encodeMultibootExtras({ cmdline: "a=1" }, "k.elf");
  const n = new DataView(blob.buffer).getUint32(0, true);
  assert.equal(new TextDecoder().decode(blob.subarray(4, 4 + n)), "k.elf a=1");
});
