import assert from "node:assert/strict";
import type { VirtioDevice } from "./virtio_device.ts";
import { VirtioPciFunction } from "./virtio_pci.ts";

Deno.test("a minimal VirtioDevice plugs into the transport", () => {
  const dev: VirtioDevice = {
    name: "nothing",
    deviceId: 0x3f,
    features: 0n,
    queueSizes: [8, 8],
    configSize: 0,
    attach() {},
    readConfig(_o, d) {
      d.fill(0);
    },
    writeConfig() {},
    processQueue() {},
    reset() {},
  };
  const fn = new VirtioPciFunction(dev);
  assert.equal(fn.config.read(2, 2), 0x1040 + 0x3f);
  assert.equal(fn.msix.vectors, 3);
});
