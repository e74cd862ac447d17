// Node 20 boots guests/build/hello.elf through the napi addon, with the
// exit loop and the serial device in JS. Skips (loudly) without the addon.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  addon, attach, check, createVm, debugExit, missing, Off, Reason, runLoop,
  serialPort,
} from "./harness.mjs";

const why = missing();
if (why) console.log(`# SKIP napi tests: ${why}`);
const opts = { skip: why ?? false };

test("hello boots, prints through a JS serial port, exits through 0xF4", opts, () => {
  const dv = addon();
  const before = dv.dv_vm_count();
  const vm = createVm(dv, { elf: "hello", arg0: 7 });
  try {
    const serial = serialPort();
    const devices = [serial, debugExit()];
    attach(dv, vm, devices);
    const { reason, result, exits } = runLoop(dv, vm, devices);
    assert.equal(reason, Reason.Io);
    assert.equal(result, 7); // the value written to 0xF4 (status (7 << 1) | 1)
    assert.equal(serial.text(), "hello from denovmm\n");
    // one exit per THR byte at least, plus the LSR polls and the exit
    assert.ok(exits > serial.bytes.length, `${exits} exits`);
    assert.equal(dv.dv_vm_count(), before + 1);
  } finally {
    check(dv, dv.dv_vm_destroy(vm), "destroy");
  }
  assert.equal(dv.dv_vm_count(), before);
});

test("the exit record and guest RAM are the core's memory (zero copy)", opts, () => {
  const dv = addon();
  const vm = createVm(dv, { elf: "hello", arg0: 0 });
  try {
    attach(dv, vm, [serialPort(), debugExit()]);
    const a = new DataView(dv.dv_vcpu_record_buffer(vm, 0));
    const b = new DataView(dv.dv_vcpu_record_buffer(vm, 0));
    const reason = check(dv, dv.dv_vcpu_run(vm, 0), "run");
    // the core wrote the record after the buffers were made: both see it
    assert.equal(a.getUint32(Off.reason, true), reason);
    assert.equal(b.getUint32(Off.reason, true), reason);
    a.setUint32(Off.data, 0xdeadbeef, true);
    assert.equal(b.getUint32(Off.data, true), 0xdeadbeef);
    // the address reported by the C-shaped call is the buffer's memory
    const addr = new BigUint64Array(1);
    check(dv, dv.dv_vcpu_record(vm, 0, addr), "record");
    assert.ok(addr[0] > 0n);
    // guest RAM: the ELF's greeting is in it; a host write is seen by
    // another view (one mapping, not a copy)
    const ram = new Uint8Array(dv.dv_vm_memory_buffer(vm));
    const mem = new BigUint64Array(2);
    check(dv, dv.dv_vm_memory(vm, mem), "memory");
    assert.equal(BigInt(ram.length), mem[1]);
    assert.ok(Buffer.from(ram.buffer).indexOf("hello from denovmm") >= 0);
    const ram2 = new Uint8Array(dv.dv_vm_memory_buffer(vm));
    ram[0x500] = 0x5a;
    assert.equal(ram2[0x500], 0x5a);
  } finally {
    check(dv, dv.dv_vm_destroy(vm), "destroy");
  }
});

test("errors keep the C ABI's codes and messages", opts, () => {
  const dv = addon();
  assert.equal(dv.dv_abi_version(), 3);
  assert.equal(dv.dv_vm_destroy(987654), -1); // DV_CODE_BAD_HANDLE
  assert.match(dv.dv_last_error_string(), /handle 987654/);
  const msg = new Uint8Array(256);
  const n = dv.dv_last_error(msg, msg.length);
  assert.match(Buffer.from(msg.subarray(0, n)).toString(), /handle 987654/);
  // a bad image is DV_CODE_BAD_IMAGE with a message, not a crash
  const cfg = new DataView(new ArrayBuffer(24));
  cfg.setBigUint64(0, 16n << 20n, true);
  const out = new Uint32Array(1);
  check(dv, dv.dv_vm_create(cfg, out), "create");
  try {
    const junk = new Uint8Array(64).fill(7);
    assert.equal(dv.dv_vm_load_elf(out[0], junk, junk.length, null), -4);
    assert.ok(dv.dv_last_error_string().length > 0);
    // where C would read past a short buffer, the binding throws
    assert.throws(() => dv.dv_vm_load_elf(out[0], junk, 65, null), /needs 65/);
    assert.throws(() => dv.dv_vm_memory(out[0], new Uint32Array(2)), /needs 16/);
    assert.throws(() => dv.dv_vm_set_timeout(out[0], -1), /u64/);
    // u64 arguments take numbers and BigInts alike
    assert.equal(dv.dv_vm_set_timeout(out[0], 0), 0);
    assert.equal(dv.dv_vm_set_timeout(out[0], 0n), 0);
  } finally {
    check(dv, dv.dv_vm_destroy(out[0]), "destroy");
  }
});
