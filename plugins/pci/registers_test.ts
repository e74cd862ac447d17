import assert from "node:assert/strict";
import {
  BAR_BITS,
  CAP_ID,
  CFG,
  COMMAND,
  CONFIG_MECHANISM,
  MSIX,
  STATUS,
} from "./registers.ts";

Deno.test("registers match the specifications", () => {
  assert.equal(CFG.COMMAND, 0x04);
  assert.equal(CFG.BAR0, 0x10);
  assert.equal(CFG.CAPABILITIES_POINTER, 0x34);
  assert.equal(CFG.INTERRUPT_PIN, 0x3d);
  assert.equal(COMMAND.INTX_DISABLE, 0x400);
  assert.equal(STATUS.CAPABILITIES, 0x10);
  assert.equal(STATUS.INTERRUPT, 0x08);
  assert.equal(BAR_BITS.MEM_TYPE_64, 0x4);
  assert.equal(CAP_ID.MSIX, 0x11);
  assert.equal(CAP_ID.VENDOR, 0x09);
  assert.equal(MSIX.CONTROL_ENABLE, 0x8000);
  assert.equal(MSIX.CONTROL_FUNCTION_MASK, 0x4000);
  assert.equal(CONFIG_MECHANISM.ECAM_BUS_SIZE, 0x100000);
});
