import assert from "node:assert/strict";
import {
  COMMON_CFG,
  DEVICE_STATUS,
  FEATURE,
  PCI_CAP,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI,
  VIRTQ,
} from "./constants.ts";

Deno.test("virtio constants match virtio 1.2", () => {
  assert.equal(DEVICE_STATUS.DEVICE_NEEDS_RESET, 0x40);
  assert.equal(FEATURE.VERSION_1, 32);
  assert.equal(VIRTQ.DESC_F_INDIRECT, 4);
  assert.equal(PCI_CAP.NOTIFY_SIZE, 20);
  assert.equal(COMMON_CFG.QUEUE_DEVICE, 0x30);
  assert.equal(COMMON_CFG.QUEUE_NOTIFY_OFF, 0x1e);
  assert.equal(VIRTIO_MSI_NO_VECTOR, 0xffff);
  assert.equal(VIRTIO_PCI.DEVICE_ID_BASE, 0x1040);
});
