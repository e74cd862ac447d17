import assert from "node:assert/strict";
import { ConfigSpace } from "./config_space.ts";
import type { PciFunction } from "./pci_function.ts";

Deno.test("a minimal PciFunction satisfies the interface", () => {
  const f: PciFunction = {
    name: "dummy",
    config: new ConfigSpace({
      vendorId: 0x1234,
      deviceId: 1,
      classCode: 0xff0000,
    }),
    attach() {},
    barRead(_b, _o, d) {
      d.fill(0);
    },
    barWrite() {},
  };
  assert.equal(f.config.read(0, 2), 0x1234);
});
