import assert from "node:assert/strict";
import { FakeMemory } from "../testing/fake_context.ts";
import { VIRTQ } from "./constants.ts";
import {
  forEachSpan,
  readSegments,
  SplitVirtqueue,
  validateLayout,
  VirtqueueError,
  writeSegments,
} from "./virtqueue.ts";

const MEM = 0x10000;
const LAYOUT = { size: 8, desc: 0x1000, driver: 0x2000, device: 0x3000 };
const { DESC_F_NEXT: N, DESC_F_WRITE: W, DESC_F_INDIRECT: I } = VIRTQ;

type Desc = [addr: number, len: number, flags: number, next: number];

function build(
  descs: Desc[],
  heads: number[],
  opts: { table?: number; availIdx?: number } = {},
) {
  const m = new FakeMemory(MEM);
  const dv = new DataView(m.bytes.buffer);
  const table = opts.table ?? LAYOUT.desc;
  descs.forEach(([addr, len, flags, next], i) => {
    const o = table + 16 * i;
    dv.setUint32(o, addr % 2 ** 32, true);
    dv.setUint32(o + 4, Math.floor(addr / 2 ** 32), true);
    dv.setUint32(o + 8, len, true);
    dv.setUint16(o + 12, flags, true);
    dv.setUint16(o + 14, next, true);
  });
  heads.forEach((h, i) => dv.setUint16(LAYOUT.driver + 4 + 2 * i, h, true));
  dv.setUint16(LAYOUT.driver + 2, opts.availIdx ?? heads.length, true);
  return { m, dv };
}

Deno.test("SplitVirtqueue", async (t) => {
  await t.step("layout validation", () => {
    const m = new FakeMemory(MEM);
    assert.equal(validateLayout(m, LAYOUT), null);
    const bad = [
      { ...LAYOUT, size: 6 },
      { ...LAYOUT, size: 0 },
      { ...LAYOUT, size: 65536 },
      { ...LAYOUT, desc: 0x1008 },
      { ...LAYOUT, driver: 0x2001 },
      { ...LAYOUT, device: 0x3002 },
      { ...LAYOUT, device: MEM - 8 },
      { ...LAYOUT, desc: 2 ** 60 },
    ];
    for (const l of bad) {
      assert.notEqual(validateLayout(m, l), null, JSON.stringify(l));
    }
    assert.throws(() => new SplitVirtqueue(m, bad[0]), VirtqueueError);
  });

  await t.step(
    "well-formed chains: readable then writable, used ring written",
    () => {
      const { m, dv } = build([
        [0x4000, 16, N, 1],
        [0x5000, 100, N | W, 2],
        [0x6000, 1, W, 0],
        [0x7000, 8, 0, 0],
      ], [0, 3]);
      const q = new SplitVirtqueue(m, LAYOUT);
      const c = q.pop()!;
      assert.equal(c.head, 0);
      assert.deepEqual(c.readable, [{ addr: 0x4000, len: 16 }]);
      assert.deepEqual(c.writable, [{ addr: 0x5000, len: 100 }, {
        addr: 0x6000,
        len: 1,
      }]);
      assert.equal(c.readableLength, 16);
      assert.equal(c.writableLength, 101);
      q.pushUsed(c.head, 101);
      const d = q.pop()!;
      assert.equal(d.head, 3);
      q.pushUsed(d.head, 0);
      assert.equal(q.pop(), null);
      assert.equal(dv.getUint16(LAYOUT.device + 2, true), 2);
      assert.equal(dv.getUint32(LAYOUT.device + 4, true), 0);
      assert.equal(dv.getUint32(LAYOUT.device + 8, true), 101);
      assert.equal(dv.getUint32(LAYOUT.device + 12, true), 3);
    },
  );

  await t.step("indirect descriptors (when negotiated)", () => {
    const { m, dv } = build([[0x8000, 48, I, 0]], [0]);
    const ind = 0x8000;
    const put = (i: number, d: Desc) => {
      dv.setUint32(ind + 16 * i, d[0], true);
      dv.setUint32(ind + 16 * i + 8, d[1], true);
      dv.setUint16(ind + 16 * i + 12, d[2], true);
      dv.setUint16(ind + 16 * i + 14, d[3], true);
    };
    put(0, [0x4000, 16, N, 2]);
    put(2, [0x4100, 32, N | W, 1]);
    put(1, [0x4200, 1, W, 0]);
    const q = new SplitVirtqueue(m, LAYOUT, { indirect: true });
    const c = q.pop()!;
    assert.equal(c.readableLength, 16);
    assert.equal(c.writableLength, 33);
    const q2 = new SplitVirtqueue(m, LAYOUT);
    assert.throws(() => q2.pop(), VirtqueueError, "not negotiated");
  });

  await t.step("wrap-around of 16-bit indices", () => {
    const { m, dv } = build([[0x4000, 4, W, 0]], []);
    const q = new SplitVirtqueue(m, LAYOUT);
    q.lastAvailIdx = 0xffff;
    q.usedIdx = 0xffff;
    dv.setUint16(LAYOUT.driver + 4 + 2 * (0xffff % 8), 0, true);
    dv.setUint16(LAYOUT.driver + 2, 0, true);
    const c = q.pop()!;
    assert.equal(c.head, 0);
    q.pushUsed(0, 4);
    assert.equal(q.lastAvailIdx, 0);
    assert.equal(dv.getUint16(LAYOUT.device + 2, true), 0);
    assert.equal(q.pop(), null);
  });

  await t.step(
    "hostile input is rejected with VirtqueueError (table-driven)",
    () => {
      const cases: {
        name: string;
        descs: Desc[];
        heads: number[];
        availIdx?: number;
        indirect?: boolean;
        ind?: Desc[];
      }[] = [
        {
          name: "avail idx jumps past queue size",
          descs: [[0x4000, 1, 0, 0]],
          heads: [0],
          availIdx: 9,
        },
        {
          name: "avail idx goes backwards",
          descs: [[0x4000, 1, 0, 0]],
          heads: [0],
          availIdx: 0xfff0,
        },
        { name: "head out of range", descs: [], heads: [8] },
        { name: "next out of range", descs: [[0x4000, 1, N, 200]], heads: [0] },
        { name: "self loop", descs: [[0x4000, 1, N, 0]], heads: [0] },
        {
          name: "two-cycle",
          descs: [[0x4000, 1, N, 1], [0x4000, 1, N, 0]],
          heads: [0],
        },
        {
          name: "buffer past end of RAM",
          descs: [[MEM - 4, 8, 0, 0]],
          heads: [0],
        },
        {
          name: "buffer address huge",
          descs: [[2 ** 52, 8, 0, 0]],
          heads: [0],
        },
        { name: "length 4 GiB-1", descs: [[0, 0xffffffff, W, 0]], heads: [0] },
        {
          name: "readable after writable",
          descs: [[0x4000, 1, N | W, 1], [0x4000, 1, 0, 0]],
          heads: [0],
        },
        {
          name: "indirect with NEXT",
          descs: [[0x8000, 16, I | N, 1]],
          heads: [0],
          indirect: true,
        },
        {
          name: "indirect length not multiple of 16",
          descs: [[0x8000, 20, I, 0]],
          heads: [0],
          indirect: true,
        },
        {
          name: "indirect length 0",
          descs: [[0x8000, 0, I, 0]],
          heads: [0],
          indirect: true,
        },
        {
          name: "indirect table outside RAM",
          descs: [[MEM - 16, 32, I, 0]],
          heads: [0],
          indirect: true,
        },
        {
          name: "nested indirect",
          descs: [[0x8000, 16, I, 0]],
          heads: [0],
          indirect: true,
          ind: [[0x8000, 16, I, 0]],
        },
        {
          name: "loop inside indirect",
          descs: [[0x8000, 32, I, 0]],
          heads: [0],
          indirect: true,
          ind: [[0x4000, 1, N, 1], [0x4000, 1, N, 0]],
        },
        {
          name: "next out of indirect table",
          descs: [[0x8000, 16, I, 0]],
          heads: [0],
          indirect: true,
          ind: [[0x4000, 1, N, 1]],
        },
      ];
      for (const c of cases) {
        const { m, dv } = build(c.descs, c.heads, { availIdx: c.availIdx });
        (c.ind ?? []).forEach(([a, l, f, n], i) => {
          dv.setUint32(0x8000 + 16 * i, a, true);
          dv.setUint32(0x8000 + 16 * i + 8, l, true);
          dv.setUint16(0x8000 + 16 * i + 12, f, true);
          dv.setUint16(0x8000 + 16 * i + 14, n, true);
        });
        const q = new SplitVirtqueue(m, LAYOUT, { indirect: c.indirect });
        assert.throws(() => q.pop(), VirtqueueError, c.name);
      }
    },
  );

  await t.step("zero-length descriptors are accepted", () => {
    const { m } = build([[0, 0, N, 1], [0x4000, 0, W, 0]], [0]);
    const c = new SplitVirtqueue(m, LAYOUT).pop()!;
    assert.equal(c.readableLength + c.writableLength, 0);
  });

  await t.step("scatter/gather helpers", () => {
    const m = new FakeMemory(256);
    const segs = [{ addr: 10, len: 3 }, { addr: 100, len: 5 }];
    assert.equal(
      writeSegments(m, segs, 1, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])),
      7,
    );
    assert.deepEqual([...m.bytes.subarray(10, 13)], [0, 1, 2]);
    assert.deepEqual([...m.bytes.subarray(100, 105)], [3, 4, 5, 6, 7]);
    const out = new Uint8Array(4);
    assert.equal(readSegments(m, segs, 2, out), 4);
    assert.deepEqual([...out], [2, 3, 4, 5]);
    const spans: number[][] = [];
    forEachSpan(segs, 3, 100, (a, l, p) => spans.push([a, l, p]));
    assert.deepEqual(spans, [[100, 5, 0]]);
  });
});
