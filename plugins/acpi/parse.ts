/**
 * A reader of ACPI tables in guest memory, as an OS finds them: scan
 * 0xE0000–0xFFFFF for the RSDP on 16-byte boundaries, follow the XSDT (and
 * the RSDT, which must agree), check every checksum and decode the fields
 * the PC machine uses. Tests use it to check what {@link buildAcpiTables}
 * wrote; it throws a message naming the first thing that is wrong.
 *
 * @module
 */

/** Reads `length` guest bytes at `gpa`. */
export type ReadGuest = (gpa: number, length: number) => Uint8Array;

/** A decoded Generic Address Structure. */
export interface AcpiGas {
  /** Address space ID (0 memory, 1 I/O). */
  space: number;
  /** Register width in bits. */
  width: number;
  /** Access size code. */
  access: number;
  /** Address. */
  address: number;
}

/** What {@link parseAcpi} found. */
export interface ParsedAcpi {
  /** RSDP address. */
  rsdp: number;
  /** Signature → address, from the XSDT (FACP, APIC, HPET) plus FACS, DSDT. */
  tables: Record<string, number>;
  /** FADT fields. */
  fadt: {
    revision: number;
    facs: number;
    dsdt: number;
    sciInt: number;
    smiCmd: number;
    pm1aEvt: number;
    pm1aCnt: number;
    pmTmr: number;
    pm1EvtLen: number;
    pm1CntLen: number;
    pmTmrLen: number;
    century: number;
    flags: number;
    xFacs: number;
    xDsdt: number;
    xPm1aEvt: AcpiGas;
    xPm1aCnt: AcpiGas;
    xPmTmr: AcpiGas;
  };
  /** DSDT AML body (after the header). */
  dsdtAml: Uint8Array;
  /** MADT. */
  madt: {
    lapicAddress: number;
    flags: number;
    lapics: { uid: number; apicId: number; flags: number }[];
    ioapics: { id: number; address: number; gsiBase: number }[];
    overrides: { irq: number; gsi: number; flags: number }[];
    nmis: { uid: number; flags: number; lint: number }[];
  };
  /** HPET table, or null. */
  hpet:
    | { blockId: number; base: AcpiGas; number: number; minTick: number }
    | null;
}

function sum(b: Uint8Array): number {
  let s = 0;
  for (const x of b) s = (s + x) & 0xff;
  return s;
}

function ascii(b: Uint8Array, o: number, n: number): string {
  return String.fromCharCode(...b.subarray(o, o + n));
}

/** Find the RSDP by the standard scan of 0xE0000–0xFFFFF; null if none. */
export function findRsdp(read: ReadGuest): number | null {
  const area = read(0xe0000, 0x20000);
  for (let o = 0; o + 36 <= area.length; o += 16) {
    if (ascii(area, o, 8) !== "RSD PTR ") continue;
    if (sum(area.subarray(o, o + 20)) === 0) return 0xe0000 + o;
  }
  return null;
}

/**
 * Parse and validate the tables reachable from the RSDP.
 *
 * @example
 * ```ts
 * import { buildAcpiTables } from "./tables.ts";
 * import { parseAcpi } from "./parse.ts";
 * const img = buildAcpiTables({
 *   base: 0xf0000, cpus: 1, ioapic: { id: 0, address: 0xfec00000, gsiBase: 0 },
 *   lapicAddress: 0xfee00000, sciIrq: 9, pmBase: 0xb000, hpet: null, overrides: [],
 * });
 * const mem = new Uint8Array(0x100000);
 * mem.set(img.bytes, img.base);
 * console.log(parseAcpi((a, n) => mem.subarray(a, a + n)).madt.lapics.length); // 1
 * ```
 */
export function parseAcpi(read: ReadGuest): ParsedAcpi {
  const fail = (m: string): never => {
    throw new Error(`acpi: ${m}`);
  };
  const rsdp = findRsdp(read) ?? fail("no RSDP in 0xE0000-0xFFFFF");
  const r = read(rsdp, 36);
  const rdv = new DataView(r.buffer, r.byteOffset, 36);
  if (r[15] < 2) fail(`RSDP revision ${r[15]} < 2`);
  if (rdv.getUint32(20, true) !== 36) fail("RSDP length is not 36");
  if (sum(r) !== 0) fail("RSDP extended checksum");
  const rsdtAt = rdv.getUint32(16, true);
  const xsdtAt = Number(rdv.getBigUint64(24, true));

  const tableAt = (at: number, sig: string): Uint8Array => {
    const h = read(at, 36);
    if (ascii(h, 0, 4) !== sig) {
      fail(
        `expected ${sig} at 0x${at.toString(16)}, found "${ascii(h, 0, 4)}"`,
      );
    }
    const len = new DataView(h.buffer, h.byteOffset, 8).getUint32(4, true);
    if (len < 36) fail(`${sig} length ${len}`);
    const t = read(at, len);
    if (sum(t) !== 0) fail(`${sig} checksum`);
    return t;
  };
  const dvOf = (t: Uint8Array) =>
    new DataView(t.buffer, t.byteOffset, t.length);
  const xsdt = tableAt(xsdtAt, "XSDT");
  const rsdt = tableAt(rsdtAt, "RSDT");
  const xdv = dvOf(xsdt);
  const rdv2 = dvOf(rsdt);
  const n = (xsdt.length - 36) / 8;
  if ((rsdt.length - 36) / 4 !== n) fail("RSDT and XSDT differ in length");
  const tables: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const a = Number(xdv.getBigUint64(36 + 8 * i, true));
    if (rdv2.getUint32(36 + 4 * i, true) !== a) fail(`RSDT entry ${i} differs`);
    const sig = ascii(read(a, 4), 0, 4);
    tableAt(a, sig);
    tables[sig] = a;
  }
  const gas = (dv: DataView, o: number): AcpiGas => ({
    space: dv.getUint8(o),
    width: dv.getUint8(o + 1),
    access: dv.getUint8(o + 3),
    address: Number(dv.getBigUint64(o + 4, true)),
  });

  const f = tableAt(tables.FACP ?? fail("no FACP in the XSDT"), "FACP");
  const fd = dvOf(f);
  if (f.length < 244) fail(`FADT length ${f.length}`);
  const fadt = {
    revision: f[8],
    facs: fd.getUint32(36, true),
    dsdt: fd.getUint32(40, true),
    sciInt: fd.getUint16(46, true),
    smiCmd: fd.getUint32(48, true),
    pm1aEvt: fd.getUint32(56, true),
    pm1aCnt: fd.getUint32(64, true),
    pmTmr: fd.getUint32(76, true),
    pm1EvtLen: f[88],
    pm1CntLen: f[89],
    pmTmrLen: f[91],
    century: f[108],
    flags: fd.getUint32(112, true),
    xFacs: Number(fd.getBigUint64(132, true)),
    xDsdt: Number(fd.getBigUint64(140, true)),
    xPm1aEvt: gas(fd, 148),
    xPm1aCnt: gas(fd, 172),
    xPmTmr: gas(fd, 208),
  };
  if (fadt.xFacs !== fadt.facs || fadt.xDsdt !== fadt.dsdt) {
    fail("FADT X_ pointers differ from the 32-bit ones");
  }
  const facs = read(fadt.facs, 64);
  if (ascii(facs, 0, 4) !== "FACS") fail("no FACS");
  if (fadt.facs % 64 !== 0) fail("FACS is not 64-byte aligned");
  if (dvOf(facs).getUint32(4, true) !== 64) fail("FACS length");
  tables.FACS = fadt.facs;
  const dsdt = tableAt(fadt.dsdt, "DSDT");
  tables.DSDT = fadt.dsdt;

  const m = tableAt(tables.APIC ?? fail("no MADT in the XSDT"), "APIC");
  const md = dvOf(m);
  const madt: ParsedAcpi["madt"] = {
    lapicAddress: md.getUint32(36, true),
    flags: md.getUint32(40, true),
    lapics: [],
    ioapics: [],
    overrides: [],
    nmis: [],
  };
  for (let o = 44; o < m.length;) {
    const type = m[o];
    const len = m[o + 1];
    if (len < 2 || o + len > m.length) {
      fail(`MADT entry at +${o} length ${len}`);
    }
    if (type === 0) {
      madt.lapics.push({
        uid: m[o + 2],
        apicId: m[o + 3],
        flags: md.getUint32(o + 4, true),
      });
    } else if (type === 1) {
      madt.ioapics.push({
        id: m[o + 2],
        address: md.getUint32(o + 4, true),
        gsiBase: md.getUint32(o + 8, true),
      });
    } else if (type === 2) {
      madt.overrides.push({
        irq: m[o + 3],
        gsi: md.getUint32(o + 4, true),
        flags: md.getUint16(o + 8, true),
      });
    } else if (type === 4) {
      madt.nmis.push({
        uid: m[o + 2],
        flags: md.getUint16(o + 3, true),
        lint: m[o + 5],
      });
    }
    o += len;
  }

  let hpet: ParsedAcpi["hpet"] = null;
  if (tables.HPET !== undefined) {
    const h = tableAt(tables.HPET, "HPET");
    const hd = dvOf(h);
    if (h.length !== 56) fail(`HPET length ${h.length}`);
    hpet = {
      blockId: hd.getUint32(36, true),
      base: gas(hd, 40),
      number: h[52],
      minTick: hd.getUint16(53, true),
    };
  }
  return {
    rsdp,
    tables,
    fadt,
    dsdtAml: dsdt.slice(36),
    madt,
    hpet,
  };
}
