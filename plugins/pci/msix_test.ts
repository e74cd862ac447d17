import assert from "node:assert/strict";
import type { MsiMessage } from "../../bus/types.ts";
import { ConfigSpace } from "./config_space.ts";
import { isDeliverable, MsixCapability } from "./msix.ts";
import { CAP_ID, MSIX } from "./registers.ts";

function setup(
  vectors = 4,
  vectorMask?: (vector: number, masked: boolean) => boolean,
) {
  const cs = new ConfigSpace({
    vendorId: 1,
    deviceId: 2,
    classCode: 0,
    interruptPin: 1,
  });
  cs.defineBar(0, { kind: "mem32", size: 0x2000 });
  const sent: [MsiMessage, number][] = [];
  const routes: [number, MsiMessage | null][] = [];
  const enables: boolean[] = [];
  const logs: string[] = [];
  const msix = new MsixCapability(cs, {
    vectors,
    tableBar: 0,
    tableOffset: 0,
    pbaBar: 0,
    pbaOffset: 0x1000,
    sink: (m, v) => sent.push([m, v]),
    routeChanged: (v, m) => routes.push([v, m]),
    onEnableChange: (e) => enables.push(e),
    log: (_l, m) => logs.push(m),
    vectorMask,
  });
  const w32 = (off: number, v: number) => {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, v, true);
    msix.tableWrite(off, d);
  };
  const r32 = (off: number) => {
    const d = new Uint8Array(4);
    msix.tableRead(off, d);
    return new DataView(d.buffer).getUint32(0, true);
  };
  const pba = () => {
    const d = new Uint8Array(8);
    msix.pbaRead(0, d);
    return new DataView(d.buffer).getUint32(0, true);
  };
  const control = (v: number) => cs.write(msix.capOffset + MSIX.CONTROL, 2, v);
  const program = (v: number, data = 0x40 + v, addr = 0xfee00000) => {
    w32(16 * v, addr);
    w32(16 * v + 4, 0);
    w32(16 * v + 8, data);
  };
  return {
    cs,
    msix,
    sent,
    routes,
    enables,
    logs,
    w32,
    r32,
    pba,
    control,
    program,
  };
}

Deno.test("MsixCapability", async (t) => {
  await t.step("capability registers", () => {
    const { cs, msix } = setup(3);
    assert.equal(cs.read(msix.capOffset, 1), CAP_ID.MSIX);
    assert.equal(cs.read(msix.capOffset + MSIX.CONTROL, 2), 2);
    assert.equal(cs.read(msix.capOffset + MSIX.TABLE, 4), 0);
    assert.equal(cs.read(msix.capOffset + MSIX.PBA, 4), 0x1000);
    cs.write(msix.capOffset + MSIX.CONTROL, 2, 0xffff);
    assert.equal(
      cs.read(msix.capOffset + MSIX.CONTROL, 2),
      0xc002,
      "only enable/mask writable",
    );
    cs.write(msix.capOffset + MSIX.TABLE, 4, 0x1234);
    assert.equal(cs.read(msix.capOffset + MSIX.TABLE, 4), 0);
  });

  await t.step("disabled: trigger returns false", () => {
    const { msix, sent } = setup();
    assert.equal(msix.trigger(0), false);
    assert.equal(sent.length, 0);
    assert.equal(msix.isPending(0), false);
  });

  await t.step(
    "entries reset masked; masked trigger sets pending; unmask delivers",
    () => {
      const { msix, sent, r32, w32, pba, control, program } = setup();
      assert.equal(r32(12), 1, "vector control masked at reset");
      program(1);
      control(MSIX.CONTROL_ENABLE);
      assert.equal(msix.trigger(1), true);
      assert.equal(sent.length, 0);
      assert.equal(pba(), 0b10);
      w32(16 + 12, 0); // unmask
      assert.deepEqual(sent, [[{ address: 0xfee00000, data: 0x41 }, 1]]);
      assert.equal(pba(), 0);
      msix.trigger(1);
      assert.equal(sent.length, 2, "unmasked: delivered directly");
    },
  );

  await t.step("function mask holds everything pending until cleared", () => {
    const { msix, sent, w32, pba, control, program } = setup();
    for (let v = 0; v < 4; v++) {
      program(v);
      w32(16 * v + 12, 0);
    }
    control(MSIX.CONTROL_ENABLE | MSIX.CONTROL_FUNCTION_MASK);
    msix.trigger(0);
    msix.trigger(3);
    msix.trigger(3);
    assert.equal(sent.length, 0);
    assert.equal(pba(), 0b1001);
    control(MSIX.CONTROL_ENABLE);
    assert.deepEqual(sent.map(([, v]) => v), [0, 3]);
    assert.equal(pba(), 0);
  });

  await t.step("unmask while function-masked does not deliver", () => {
    const { msix, sent, w32, control, program } = setup();
    program(0);
    control(MSIX.CONTROL_ENABLE | MSIX.CONTROL_FUNCTION_MASK);
    msix.trigger(0);
    w32(12, 0);
    assert.equal(sent.length, 0);
    assert.equal(msix.isPending(0), true);
    control(MSIX.CONTROL_ENABLE);
    assert.equal(sent.length, 1);
  });

  await t.step("enable change is reported (INTx off)", () => {
    const { enables, control } = setup();
    control(MSIX.CONTROL_ENABLE);
    control(MSIX.CONTROL_ENABLE | MSIX.CONTROL_FUNCTION_MASK);
    control(0);
    assert.deepEqual(enables, [true, false]);
  });

  await t.step("bad addresses are dropped, counted, logged once", () => {
    const { msix, sent, w32, logs, control, program } = setup();
    control(MSIX.CONTROL_ENABLE);
    program(0, 0x30, 0xfec00000);
    w32(12, 0);
    program(1, 0x31);
    w32(16 + 4, 1); // non-zero high dword
    w32(16 + 12, 0);
    assert.equal(msix.trigger(0), true);
    assert.equal(msix.trigger(1), true);
    assert.equal(msix.trigger(0), true);
    assert.equal(sent.length, 0);
    assert.equal(msix.counters.badAddress, 3);
    assert.equal(logs.length, 1);
    assert.equal(isDeliverable({ address: 0xfeefffff, data: 0 }), true);
    assert.equal(isDeliverable({ address: 0xfef00000, data: 0 }), false);
  });

  await t.step("out-of-range vectors are counted no-ops", () => {
    const { msix, sent, control } = setup();
    control(MSIX.CONTROL_ENABLE);
    for (const v of [4, -1, 1.5, 99999]) assert.equal(msix.trigger(v), true);
    assert.equal(sent.length, 0);
    assert.equal(msix.counters.badVector, 4);
  });

  await t.step(
    "table access rules: 4/8-byte aligned only, inside the table",
    () => {
      const { msix, r32 } = setup(2);
      const bad: [number, number][] = [
        [1, 4],
        [2, 2],
        [0, 1],
        [4, 8],
        [32, 4],
        [-4, 4],
      ];
      for (const [off, size] of bad) {
        const d = new Uint8Array(size).fill(0xff);
        msix.tableWrite(off, d);
      }
      assert.equal(msix.counters.badAccess, bad.length);
      assert.equal(r32(0), 0);
      assert.equal(r32(12), 1);
      const q = new Uint8Array(8);
      new DataView(q.buffer).setUint32(0, 0xfee01003, true);
      new DataView(q.buffer).setUint32(4, 0, true);
      msix.tableWrite(16, q);
      assert.equal(r32(16), 0xfee01000, "address bits 1:0 reserved");
      const back = new Uint8Array(8);
      msix.tableRead(16, back);
      assert.equal(new DataView(back.buffer).getUint32(0, true), 0xfee01000);
      const vc = new Uint8Array(4).fill(0xff);
      msix.tableWrite(12, vc);
      assert.equal(r32(12), 1, "reserved vector-control bits read 0");
    },
  );

  await t.step("PBA is read-only", () => {
    const { msix, pba, control, program } = setup();
    program(2);
    control(MSIX.CONTROL_ENABLE);
    msix.trigger(2);
    msix.pbaWrite(0, new Uint8Array(8));
    assert.equal(pba(), 0b100);
    assert.equal(msix.counters.badAccess, 1);
  });

  await t.step("routeChanged on address/data rewrites only", () => {
    const { routes, w32, program } = setup();
    program(1);
    assert.deepEqual(routes, [
      [1, { address: 0xfee00000, data: 0 }],
      [1, { address: 0xfee00000, data: 0x41 }],
    ]);
    routes.length = 0;
    w32(16 + 12, 0);
    w32(16 + 12, 1);
    w32(16 + 8, 0x41); // same value: no churn
    assert.equal(routes.length, 0);
    w32(16, 0x1000);
    assert.deepEqual(routes, [[1, null]]);
  });

  await t.step("reset masks entries and clears pending", () => {
    const { cs, msix, r32, control, program, pba } = setup();
    program(0);
    control(MSIX.CONTROL_ENABLE);
    msix.trigger(0);
    cs.reset();
    msix.reset();
    assert.equal(msix.enabled, false);
    assert.equal(r32(0), 0);
    assert.equal(r32(12), 1);
    assert.equal(pba(), 0);
  });
});

Deno.test("MsixCapability: vector mask changes reach the host (irqfd detach)", () => {
  const reports: string[] = [];
  let held = false; // a host thread fired the vector's irqfd while masked
  const { msix, sent, w32, control } = setup(2, (v, masked) => {
    reports.push(`${v}:${masked ? "mask" : "unmask"}`);
    const h = held && !masked;
    if (h) held = false;
    return h;
  });
  w32(0, 0xfee00000);
  w32(8, 0x41);
  w32(12, 0); // entry 0 unmasked, but MSI-X still disabled: no report
  assert.deepEqual(reports, []);
  control(MSIX.CONTROL_ENABLE);
  assert.deepEqual(reports, ["0:unmask"], "enable unmasks vector 0 only");
  control(MSIX.CONTROL_ENABLE | MSIX.CONTROL_FUNCTION_MASK);
  assert.deepEqual(reports, ["0:unmask", "0:mask"]);
  held = true; // the device thread fires while the function is masked
  control(MSIX.CONTROL_ENABLE);
  assert.deepEqual(reports, ["0:unmask", "0:mask", "0:unmask"]);
  assert.deepEqual(
    sent.map(([, v]) => v),
    [0],
    "the held message is delivered on unmask",
  );
  assert.equal(msix.isPending(0), false);
  w32(12, 1); // entry mask
  assert.equal(reports.at(-1), "0:mask");
  w32(8, 0x42); // data rewrite while masked: no mask report
  assert.equal(reports.length, 4);
});
