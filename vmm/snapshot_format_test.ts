import assert from "node:assert/strict";
import {
  decodeContainer,
  encodeContainer,
  FORMAT_VERSION,
  patchMemoryCrc,
  SnapshotError,
} from "./snapshot_format.ts";

function sample(): Uint8Array {
  const enc = new TextEncoder();
  const out = encodeContainer(
    { flags: 0, memorySize: 16 << 20, memoryCrc: 0, memoryPages: 0 },
    new Map([
      ["META", enc.encode(JSON.stringify({ id: "x", plugins: ["a"] }))],
      ["CPUS", new Uint8Array(300).map((_, i) => i * 7)],
      ["DEVS", enc.encode("{}")],
    ]),
  );
  patchMemoryCrc(out, 0x12345678, 42);
  return out;
}

function same(a: ReturnType<typeof decodeContainer>, b: typeof a): boolean {
  if (JSON.stringify(a.header) !== JSON.stringify(b.header)) return false;
  if (a.sections.size !== b.sections.size) return false;
  for (const [k, v] of a.sections) {
    const w = b.sections.get(k);
    if (!w || w.length !== v.length || w.some((x, i) => x !== v[i])) {
      return false;
    }
  }
  return true;
}

Deno.test("snapshot format: round trip", () => {
  const b = sample();
  assert.equal(b.length % 4096, 0, "memory offset is page aligned");
  const c = decodeContainer(b, b.length + (16 << 20));
  assert.equal(c.header.memoryOffset, b.length);
  assert.equal(c.header.memoryCrc, 0x12345678);
  assert.equal(c.header.memoryPages, 42);
  assert.deepEqual([...c.sections.keys()], ["META", "CPUS", "DEVS"]);
  assert.equal(c.sections.get("CPUS")![5], 35);
});

Deno.test("snapshot format: every truncation fails cleanly", () => {
  const b = sample();
  const full = b.length + (16 << 20);
  const c = decodeContainer(b, full);
  // Header, table and sections end here; the rest is padding.
  const used = Math.max(
    ...[...c.sections.values()].map((s) => s.byteOffset + s.length),
  );
  for (let cut = 0; cut < used; cut++) {
    assert.throws(
      () => decodeContainer(b.subarray(0, cut), null),
      (e: unknown) => e instanceof SnapshotError && e.kind === "truncated",
      `cut at ${cut}`,
    );
  }
  // A file cut anywhere in its memory image: the length check catches it.
  for (const short of [1, 4096, 16 << 20]) {
    assert.throws(
      () => decodeContainer(b, full - short),
      (e: unknown) =>
        e instanceof SnapshotError && e.kind === "truncated" &&
        /memory image ends/.test(e.message),
    );
  }
});

Deno.test("snapshot format: random byte flips are detected or harmless", () => {
  const b = sample();
  const full = b.length + (16 << 20);
  const ref = decodeContainer(b, full);
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  let detected = 0;
  for (let i = 0; i < 3000; i++) {
    const c = b.slice();
    const flips = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < flips; k++) {
      c[Math.floor(rnd() * 700)] ^= 1 + Math.floor(rnd() * 255);
    }
    try {
      const d = decodeContainer(c, full);
      // Only padding may change without detection.
      assert.ok(same(d, ref), `flip ${i} went undetected and changed content`);
    } catch (e) {
      assert.ok(e instanceof SnapshotError, `flip ${i}: ${e}`);
      detected++;
    }
  }
  assert.ok(detected > 2000, `${detected} of 3000 detected`);
});

Deno.test("snapshot format: each failure names its cause", () => {
  const b = sample();
  const full = b.length + (16 << 20);
  const kind = (c: Uint8Array, len: number | null = full) => {
    try {
      decodeContainer(c, len);
      return "ok";
    } catch (e) {
      return `${(e as SnapshotError).kind}: ${(e as Error).message}`;
    }
  };
  const notSnap = b.slice();
  notSnap[0] = 0x7f;
  assert.match(kind(notSnap), /^not-a-snapshot: .*magic/);
  const corrupt = b.slice();
  corrupt[30] ^= 1; // memory offset
  assert.match(kind(corrupt), /^corrupt: .*header checksum/);
  const section = b.slice();
  section[64 + 24 * 3 + 3] ^= 1; // first byte of META
  assert.match(kind(section), /^corrupt: .*section META checksum/);
  // A newer format version, consistently sealed.
  const v2 = b.slice();
  new DataView(v2.buffer).setUint32(8, FORMAT_VERSION + 1, true);
  patchMemoryCrc(v2, 0x12345678, 42);
  assert.match(
    kind(v2),
    /^version: snapshot: format version 2, this denovmm reads version 1/,
  );
  assert.match(kind(b, full + 1), /^corrupt: .*past the end/);
});

Deno.test("section and header CRCs are zlib's CRC-32 (files stay readable)", async () => {
  const { crc32 } = await import("node:zlib");
  const body = new Uint8Array(5000).map((_, i) => (i * 7919) & 0xff);
  const out = encodeContainer(
    { flags: 0, memorySize: 4096, memoryCrc: 0, memoryPages: 0 },
    new Map([["DATA", body]]),
  );
  const dv = new DataView(out.buffer);
  assert.equal(dv.getUint32(64 + 4, true), crc32(body) >>> 0);
  const head = out.slice(0, 64 + 24);
  new DataView(head.buffer).setUint32(20, 0, true);
  assert.equal(dv.getUint32(20, true), crc32(head) >>> 0);
});
