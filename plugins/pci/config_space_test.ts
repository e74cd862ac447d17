import assert from "node:assert/strict";
import { ConfigSpace } from "./config_space.ts";
import { CAP_ID, CFG, COMMAND, STATUS } from "./registers.ts";

const ids = {
  vendorId: 0x1af4,
  deviceId: 0x1042,
  classCode: 0x018000,
  revision: 1,
  subsystemVendorId: 0x1af4,
  subsystemId: 0x40,
  interruptPin: 1,
};

Deno.test("ConfigSpace", async (t) => {
  await t.step(
    "identity reads at every width and offset within a dword",
    () => {
      const cs = new ConfigSpace(ids);
      const cases: [number, 1 | 2 | 4, number][] = [
        [0x00, 4, 0x10421af4],
        [0x00, 2, 0x1af4],
        [0x02, 2, 0x1042],
        [0x01, 1, 0x1a],
        [0x01, 2, 0x421a],
        [0x03, 1, 0x10],
        [0x08, 4, 0x01800001],
        [0x0a, 2, 0x0180],
        [0x2c, 4, 0x00401af4],
        [0x3d, 1, 1],
      ];
      for (const [off, size, want] of cases) {
        assert.equal(
          cs.read(off, size),
          want,
          `read ${size}@0x${off.toString(16)}`,
        );
      }
    },
  );

  await t.step(
    "read-only fields ignore writes; command/line are writable",
    () => {
      const cs = new ConfigSpace(ids);
      cs.write(0, 4, 0xffffffff);
      assert.equal(cs.read(0, 4), 0x10421af4);
      cs.write(CFG.COMMAND, 2, 0xffff);
      assert.equal(
        cs.read(CFG.COMMAND, 2),
        COMMAND.IO | COMMAND.MEMORY | COMMAND.BUS_MASTER |
          COMMAND.PARITY_ERROR_RESPONSE | COMMAND.SERR | COMMAND.INTX_DISABLE,
      );
      assert.ok(
        cs.memoryEnabled && cs.ioEnabled && cs.busMaster && cs.intxDisabled,
      );
      cs.write(CFG.COMMAND + 1, 1, 0); // byte write to the high half
      assert.equal(cs.intxDisabled, false);
      assert.equal(cs.memoryEnabled, true);
      cs.write(CFG.INTERRUPT_LINE, 1, 0x0b);
      cs.write(CFG.INTERRUPT_PIN, 1, 4);
      assert.equal(cs.read(CFG.INTERRUPT_LINE, 2), 0x010b);
    },
  );

  await t.step("status: interrupt bit RO, error bits write-1-to-clear", () => {
    const cs = new ConfigSpace(ids);
    cs.setInterruptStatus(true);
    cs.set16(
      CFG.STATUS,
      cs.get16(CFG.STATUS) | STATUS.RECEIVED_MASTER_ABORT |
        STATUS.DETECTED_PARITY_ERROR,
    );
    cs.write(CFG.STATUS, 2, STATUS.INTERRUPT | STATUS.RECEIVED_MASTER_ABORT);
    const s = cs.read(CFG.STATUS, 2);
    assert.ok(s & STATUS.INTERRUPT);
    assert.equal(s & STATUS.RECEIVED_MASTER_ABORT, 0);
    assert.ok(s & STATUS.DETECTED_PARITY_ERROR);
    cs.write(CFG.STATUS, 2, 0); // writing zeros changes nothing
    assert.ok(cs.read(CFG.STATUS, 2) & STATUS.DETECTED_PARITY_ERROR);
  });

  await t.step("BAR sizing protocol (table-driven)", () => {
    const cases: {
      def: Parameters<ConfigSpace["defineBar"]>[1];
      lo: number;
      hi?: number;
    }[] = [
      { def: { kind: "mem32", size: 0x1000 }, lo: 0xfffff000 },
      { def: { kind: "mem32", size: 16 }, lo: 0xfffffff0 },
      {
        def: { kind: "mem32", size: 0x100000, prefetchable: true },
        lo: 0xfff00008,
      },
      { def: { kind: "mem64", size: 0x4000 }, lo: 0xffffc004, hi: 0xffffffff },
      {
        def: { kind: "mem64", size: 2 ** 33, prefetchable: true },
        lo: 0x0000000c,
        hi: 0xfffffffe,
      },
      { def: { kind: "io", size: 32 }, lo: 0xffffffe1 },
      { def: { kind: "io", size: 4 }, lo: 0xfffffffd },
    ];
    for (const c of cases) {
      const cs = new ConfigSpace(ids);
      cs.defineBar(2, c.def);
      const flags = cs.read(0x18, 4);
      cs.write(0x18, 4, 0xffffffff);
      if (c.hi !== undefined) cs.write(0x1c, 4, 0xffffffff);
      assert.equal(cs.read(0x18, 4), c.lo, `${c.def.kind} ${c.def.size} lo`);
      if (c.hi !== undefined) assert.equal(cs.read(0x1c, 4), c.hi, "hi");
      assert.equal(cs.barAddress(2), null, "mid-sizing is not an address");
      cs.write(0x18, 4, 0); // restore
      if (c.hi !== undefined) cs.write(0x1c, 4, 0);
      assert.equal(cs.read(0x18, 4), flags, "flags survive");
      assert.equal(cs.barAddress(2), null, "zero is not an address");
    }
  });

  await t.step("BAR addresses decode; byte writes work", () => {
    const cs = new ConfigSpace(ids);
    cs.defineBar(0, { kind: "mem64", size: 0x4000 });
    cs.defineBar(2, { kind: "mem32", size: 0x1000 });
    cs.defineBar(3, { kind: "io", size: 16 });
    cs.write(0x10, 4, 0xfe001234); // low bits ignored
    cs.write(0x14, 4, 0x1);
    assert.equal(cs.barAddress(0), 0x1_fe000000);
    cs.write(0x18, 4, 0xc0000000);
    cs.write(0x19, 1, 0x50); // byte write into the address
    assert.equal(cs.barAddress(2), 0xc0005000);
    cs.write(0x1c, 2, 0xc040);
    assert.equal(cs.barAddress(3), 0xc040);
    assert.equal(cs.read(0x1c, 4), 0xc041);
    assert.equal(cs.barAddress(4), null);
    assert.equal(
      cs.read(0x20, 4),
      0,
      "undefined BAR reads 0 and ignores writes",
    );
    cs.write(0x20, 4, 0xffffffff);
    assert.equal(cs.read(0x20, 4), 0);
  });

  await t.step("bad BAR definitions throw (host error)", () => {
    const cs = new ConfigSpace(ids);
    assert.throws(() => cs.defineBar(5, { kind: "mem64", size: 4096 }));
    assert.throws(() => cs.defineBar(0, { kind: "mem32", size: 3000 }));
    assert.throws(() => cs.defineBar(0, { kind: "io", size: 512 }));
    cs.defineBar(0, { kind: "mem64", size: 4096 });
    assert.throws(() => cs.defineBar(1, { kind: "mem32", size: 4096 }));
  });

  await t.step("capability list", () => {
    const cs = new ConfigSpace(ids);
    assert.equal(cs.read(CFG.STATUS, 2) & STATUS.CAPABILITIES, 0);
    const a = cs.addCapability(CAP_ID.VENDOR, 16);
    const b = cs.addCapability(CAP_ID.MSIX, 12);
    const c = cs.addCapability(CAP_ID.VENDOR, 19);
    assert.equal(a, 0x40);
    assert.equal(b, 0x50);
    assert.equal(c, 0x5c);
    assert.ok(cs.read(CFG.STATUS, 2) & STATUS.CAPABILITIES);
    assert.equal(cs.read(CFG.CAPABILITIES_POINTER, 1), a);
    assert.equal(cs.read(a + 1, 1), b);
    assert.equal(cs.read(b + 1, 1), c);
    assert.equal(cs.read(c + 1, 1), 0);
    assert.deepEqual(cs.findCapabilities(CAP_ID.VENDOR), [a, c]);
    assert.throws(() => cs.addCapability(CAP_ID.VENDOR, 200));
  });

  await t.step(
    "out-of-space and extended reads are zero; writes ignored",
    () => {
      const cs = new ConfigSpace(ids);
      const d = new Uint8Array(4).fill(0xaa);
      cs.readBytes(0x100, d);
      assert.deepEqual([...d], [0, 0, 0, 0]);
      cs.writeBytes(0xffc, new Uint8Array([1, 2, 3, 4]));
      const e = new Uint8Array(2);
      cs.readBytes(0xff, e); // straddles the end
      assert.deepEqual([...e], [0, 0]);
    },
  );

  await t.step("watchers run on touching writes only", () => {
    const cs = new ConfigSpace(ids);
    let n = 0;
    cs.onWrite(CFG.COMMAND, 2, () => n++);
    cs.write(CFG.VENDOR_ID, 4, 0); // touches 0..3
    assert.equal(n, 0);
    cs.write(CFG.COMMAND, 4, 0); // touches 4..7
    cs.write(CFG.COMMAND + 1, 1, 0);
    assert.equal(n, 2);
  });

  await t.step("reset clears writable state, keeps identity and flags", () => {
    const cs = new ConfigSpace(ids);
    cs.defineBar(0, { kind: "mem32", size: 0x1000, prefetchable: true });
    cs.write(0x10, 4, 0xc0000000);
    cs.write(CFG.COMMAND, 2, 7);
    cs.write(CFG.INTERRUPT_LINE, 1, 5);
    cs.setInterruptStatus(true);
    cs.reset();
    assert.equal(cs.read(0x10, 4), 0x8);
    assert.equal(cs.command, 0);
    assert.equal(cs.read(CFG.INTERRUPT_LINE, 1), 0);
    assert.equal(cs.read(CFG.STATUS, 2) & STATUS.INTERRUPT, 0);
    assert.equal(cs.read(0, 4), 0x10421af4);
  });
});
