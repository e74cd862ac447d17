// dv_vm_stop from a worker_threads worker ends a run that is blocked on
// the main thread (the spin guest never exits on its own).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import {
  ADDON_PATH, addon, attach, check, createVm, missing, Reason, runLoop,
  serialPort,
} from "./harness.mjs";

const why = missing();
if (why) console.log(`# SKIP napi tests: ${why}`);

const WORKER = `
const { workerData, parentPort } = require("node:worker_threads");
const dv = require(workerData.path);
const flag = new Int32Array(workerData.flag);
Atomics.wait(flag, 0, 0);             // main is about to block in run
Atomics.wait(flag, 1, 0, 50);         // give it time to enter KVM_RUN
parentPort.postMessage(dv.dv_vm_stop(workerData.vm));
`;

test("stop from another thread ends a blocked run", { skip: why ?? false }, async () => {
  const dv = addon();
  const vm = createVm(dv, { elf: "spin" });
  try {
    const serial = serialPort();
    attach(dv, vm, [serial]);
    const flag = new SharedArrayBuffer(8);
    const w = new Worker(WORKER, {
      eval: true,
      workerData: { path: ADDON_PATH, vm, flag },
    });
    const rc = new Promise((res, rej) => {
      w.once("message", res);
      w.once("error", rej);
    });
    await new Promise((res) => w.once("online", res));
    Atomics.store(new Int32Array(flag), 0, 1);
    Atomics.notify(new Int32Array(flag), 0);
    const { reason } = runLoop(dv, vm, [serial]);
    assert.equal(reason, Reason.Stopped);
    assert.equal(await rc, 0);
    assert.equal(serial.text(), "spinning\n");
    await w.terminate();
  } finally {
    check(dv, dv.dv_vm_destroy(vm), "destroy");
  }
});
