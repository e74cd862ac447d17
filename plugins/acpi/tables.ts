/**
 * ACPI tables of the PC machine, built by the host into the BIOS area
 * (ACPI 6.4, chapter 5.2): RSDP v2, RSDT and XSDT, FADT (PM1a event and
 * control blocks, PM timer, SCI), FACS, a minimal DSDT (sleep-state
 * packages), MADT (one processor-local APIC per vCPU, the IOAPIC,
 * interrupt source overrides, LINT1 NMI) and the HPET table. One builder
 * for every vCPU count.
 *
 * The RSDP sits on a 16-byte boundary in 0xE0000–0xFFFFF, where an OS
 * finds it by scanning; every table follows it in the same area (the
 * memory map reports 0xF0000–0xFFFFF reserved, and no image may load
 * there).
 *
 * @module
 */

/** OEM ID written into every header. */
export const ACPI_OEM_ID = "DNVMM ";
/** OEM table ID written into every header. */
export const ACPI_OEM_TABLE_ID = "DENOVMM ";

/** `SLP_TYP` value of each sleep state the DSDT declares (`_S1_` ...). */
export const SLP_TYP: Readonly<Record<number, number>> = {
  1: 1,
  3: 3,
  4: 4,
  5: 5,
};

/** An interrupt source override (MADT type 2). */
export interface IrqOverride {
  /** ISA IRQ. */
  readonly irq: number;
  /** GSI it is wired to. */
  readonly gsi: number;
  /** MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2 (0 = bus default). */
  readonly flags: number;
}

/**
 * What the tables describe.
 *
 * @example
 * ```ts
 * import type { AcpiConfig } from "./tables.ts";
 * const c: AcpiConfig = {
 *   base: 0xf0000, cpus: 1, ioapic: { id: 0, address: 0xfec00000, gsiBase: 0 },
 *   lapicAddress: 0xfee00000, sciIrq: 9, pmBase: 0xb000,
 *   hpet: { address: 0xfed00000, blockId: 0x8086a201 }, overrides: [],
 * };
 * ```
 */
export interface AcpiConfig {
  /** Where the RSDP goes (16-byte aligned, in 0xE0000–0xFFFFF); tables follow. */
  readonly base: number;
  /** Number of vCPUs: one LAPIC entry each (APIC ID = processor UID = index). */
  readonly cpus: number;
  /** The IOAPIC. */
  readonly ioapic: {
    readonly id: number;
    readonly address: number;
    readonly gsiBase: number;
  };
  /** LAPIC MMIO address. */
  readonly lapicAddress: number;
  /** ISA IRQ of the SCI (level, active high). */
  readonly sciIrq: number;
  /** First port of the PM block: PM1a_EVT at +0 (4), PM1a_CNT at +4 (2), PM_TMR at +8 (4). */
  readonly pmBase: number;
  /** The HPET, or null for no HPET table. */
  readonly hpet: { readonly address: number; readonly blockId: number } | null;
  /** Interrupt source overrides besides the SCI's (which is always added). */
  readonly overrides: readonly IrqOverride[];
  /** Century register index in CMOS (FADT CENTURY); default 0x32. */
  readonly century?: number;
}

/** Byte offsets of the PM registers from {@link AcpiConfig.pmBase}. */
export const PM_LAYOUT = { evt: 0, evtLen: 4, cnt: 4, cntLen: 2, tmr: 8 };

/** A table image and where it lies. */
export interface AcpiImage {
  /** Guest-physical address of `bytes[0]` (= the RSDP). */
  readonly base: number;
  /** Every table, contiguous. */
  readonly bytes: Uint8Array;
  /** Address of each table by signature (`RSDP`, `XSDT`, `FACP`, ...). */
  readonly addresses: Readonly<Record<string, number>>;
}

const TABLE_HEADER = 36;

/** The 8-bit sum of `b` (0 for a valid ACPI checksum range). */
export function byteSum(b: Uint8Array): number {
  let s = 0;
  for (const x of b) s = (s + x) & 0xff;
  return s;
}

class Writer {
  readonly buf: Uint8Array;
  readonly dv: DataView;
  constructor(len: number) {
    this.buf = new Uint8Array(len);
    this.dv = new DataView(this.buf.buffer);
  }
  ascii(o: number, s: string): void {
    for (let i = 0; i < s.length; i++) this.buf[o + i] = s.charCodeAt(i);
  }
  u8(o: number, v: number): void {
    this.dv.setUint8(o, v);
  }
  u16(o: number, v: number): void {
    this.dv.setUint16(o, v, true);
  }
  u32(o: number, v: number): void {
    this.dv.setUint32(o, v >>> 0, true);
  }
  u64(o: number, v: number): void {
    this.dv.setBigUint64(o, BigInt(v), true);
  }
  /** Generic Address Structure (5.2.3.2). */
  gas(o: number, space: number, width: number, access: number, addr: number) {
    this.u8(o, space);
    this.u8(o + 1, width);
    this.u8(o + 2, 0);
    this.u8(o + 3, access);
    this.u64(o + 4, addr);
  }
}

/** A table with its standard header (5.2.6), checksum filled in. */
function table(
  sig: string,
  revision: number,
  body: number,
  fill: (w: Writer) => void,
): Uint8Array {
  const w = new Writer(TABLE_HEADER + body);
  w.ascii(0, sig);
  w.u32(4, w.buf.length);
  w.u8(8, revision);
  w.ascii(10, ACPI_OEM_ID);
  w.ascii(16, ACPI_OEM_TABLE_ID);
  w.u32(24, 1);
  w.ascii(28, "DNVM");
  w.u32(32, 1);
  fill(w);
  w.u8(9, (0x100 - byteSum(w.buf)) & 0xff);
  return w.buf;
}

/** Minimal DSDT body: `Name (_Sx_, Package () { typ, typ, 0, 0 })` per state. */
function dsdtAml(): Uint8Array {
  const out: number[] = [];
  for (const [state, typ] of Object.entries(SLP_TYP)) {
    const name = `_S${state}_`;
    out.push(0x08, ...[...name].map((c) => c.charCodeAt(0)));
    // PackageOp, PkgLength (8: itself, NumElements, 2 BytePrefix, 2 Zero), 4.
    out.push(0x12, 0x08, 0x04, 0x0a, typ, 0x0a, typ, 0x00, 0x00);
  }
  return new Uint8Array(out);
}

function madt(c: AcpiConfig): Uint8Array {
  const overrides: IrqOverride[] = [
    ...c.overrides.filter((o) => o.irq !== c.sciIrq),
    // SCI: level, active high (MPS INTI flags 0b1101).
    { irq: c.sciIrq, gsi: c.sciIrq, flags: 0xd },
  ];
  const len = 8 + 8 * c.cpus + 12 + 10 * overrides.length + 6;
  return table("APIC", 5, len, (w) => {
    let o = TABLE_HEADER;
    w.u32(o, c.lapicAddress);
    w.u32(o + 4, 1); // PCAT_COMPAT: 8259 pair present
    o += 8;
    for (let i = 0; i < c.cpus; i++) {
      w.u8(o, 0); // Processor Local APIC
      w.u8(o + 1, 8);
      w.u8(o + 2, i); // ACPI processor UID
      w.u8(o + 3, i); // APIC ID
      w.u32(o + 4, 1); // enabled
      o += 8;
    }
    w.u8(o, 1); // I/O APIC
    w.u8(o + 1, 12);
    w.u8(o + 2, c.ioapic.id);
    w.u32(o + 4, c.ioapic.address);
    w.u32(o + 8, c.ioapic.gsiBase);
    o += 12;
    for (const ov of overrides) {
      w.u8(o, 2); // Interrupt Source Override
      w.u8(o + 1, 10);
      w.u8(o + 2, 0); // ISA
      w.u8(o + 3, ov.irq);
      w.u32(o + 4, ov.gsi);
      w.u16(o + 8, ov.flags);
      o += 10;
    }
    w.u8(o, 4); // Local APIC NMI: all processors, LINT1
    w.u8(o + 1, 6);
    w.u8(o + 2, 0xff);
    w.u16(o + 3, 0);
    w.u8(o + 5, 1);
  });
}

/** FADT flags (5.2.9, table 5.10). */
const FADT_WBINVD = 1 << 0;
const FADT_PROC_C1 = 1 << 2;
const FADT_PWR_BUTTON = 1 << 4;
const FADT_SLP_BUTTON = 1 << 5;
const FADT_TMR_VAL_EXT = 1 << 8;
/** IA-PC boot architecture flag: legacy (ISA) devices present. */
const IAPC_LEGACY_DEVICES = 1 << 0;
/** GAS address space IDs. */
const GAS_MEMORY = 0;
const GAS_IO = 1;

function fadt(c: AcpiConfig, facs: number, dsdt: number): Uint8Array {
  const evt = c.pmBase + PM_LAYOUT.evt;
  const cnt = c.pmBase + PM_LAYOUT.cnt;
  const tmr = c.pmBase + PM_LAYOUT.tmr;
  return table("FACP", 6, 276 - TABLE_HEADER, (w) => {
    w.u32(36, facs);
    w.u32(40, dsdt);
    w.u8(45, 0); // preferred PM profile: unspecified
    w.u16(46, c.sciIrq);
    w.u32(48, 0); // no SMI_CMD: ACPI mode is always on (SCI_EN reads 1)
    w.u32(56, evt);
    w.u32(64, cnt);
    w.u32(76, tmr);
    w.u8(88, PM_LAYOUT.evtLen);
    w.u8(89, PM_LAYOUT.cntLen);
    w.u8(91, 4);
    w.u16(96, 101); // P_LVL2_LAT > 100: C2 unsupported
    w.u16(98, 1001); // P_LVL3_LAT > 1000: C3 unsupported
    w.u8(108, c.century ?? 0x32);
    w.u16(109, IAPC_LEGACY_DEVICES);
    w.u32(
      112,
      FADT_WBINVD | FADT_PROC_C1 | FADT_PWR_BUTTON | FADT_SLP_BUTTON |
        FADT_TMR_VAL_EXT,
    );
    w.u8(131, 4); // FADT minor version (6.4)
    w.u64(132, facs);
    w.u64(140, dsdt);
    w.gas(148, GAS_IO, PM_LAYOUT.evtLen * 8, 2, evt);
    w.gas(172, GAS_IO, PM_LAYOUT.cntLen * 8, 2, cnt);
    w.gas(208, GAS_IO, 32, 3, tmr);
  });
}

function facsTable(): Uint8Array {
  const w = new Writer(64);
  w.ascii(0, "FACS");
  w.u32(4, 64);
  w.u8(32, 2); // version
  return w.buf;
}

function hpetTable(h: { address: number; blockId: number }): Uint8Array {
  return table("HPET", 1, 20, (w) => {
    w.u32(36, h.blockId);
    w.gas(40, GAS_MEMORY, 64, 0, h.address);
    w.u8(52, 0); // HPET number
    w.u16(53, 0x80); // minimum clock ticks in periodic mode
    w.u8(55, 0); // no page protection
  });
}

function sdt(sig: string, entries: number[], width: 4 | 8): Uint8Array {
  return table(sig, 1, entries.length * width, (w) => {
    entries.forEach((a, i) => {
      if (width === 4) w.u32(TABLE_HEADER + 4 * i, a);
      else w.u64(TABLE_HEADER + 8 * i, a);
    });
  });
}

function validate(c: AcpiConfig): void {
  const bad = (m: string) => {
    throw new RangeError(`acpi: ${m}`);
  };
  if (
    !Number.isInteger(c.base) || c.base % 16 !== 0 || c.base < 0xe0000 ||
    c.base >= 0x100000
  ) {
    bad(
      `RSDP base 0x${
        c.base.toString(16)
      } must be 16-byte aligned in [0xE0000, 0x100000)`,
    );
  }
  if (!Number.isInteger(c.cpus) || c.cpus < 1 || c.cpus > 255) {
    bad(`cpus ${c.cpus} must be 1..255`);
  }
  if (!Number.isInteger(c.pmBase) || c.pmBase < 0 || c.pmBase > 0xfff0) {
    bad(`pmBase ${c.pmBase} must be a port below 0xFFF0`);
  }
  if (!Number.isInteger(c.sciIrq) || c.sciIrq < 0 || c.sciIrq > 15) {
    bad(`sciIrq ${c.sciIrq} must be an ISA IRQ 0..15`);
  }
  for (const o of c.overrides) {
    if (o.irq < 0 || o.irq > 15 || o.gsi < 0 || !Number.isInteger(o.gsi)) {
      bad(`override IRQ ${o.irq} -> GSI ${o.gsi} is not ISA IRQ -> GSI`);
    }
  }
}

/**
 * Build every table for `config`: the RSDP at `config.base`, then the
 * XSDT, RSDT, FADT, FACS (64-byte aligned), DSDT, MADT and HPET, each
 * 16-byte aligned, all within the BIOS area.
 *
 * @example
 * ```ts
 * import { buildAcpiTables } from "./tables.ts";
 * const img = buildAcpiTables({
 *   base: 0xf0000, cpus: 2, ioapic: { id: 0, address: 0xfec00000, gsiBase: 0 },
 *   lapicAddress: 0xfee00000, sciIrq: 9, pmBase: 0xb000,
 *   hpet: { address: 0xfed00000, blockId: 0x8086a201 }, overrides: [],
 * });
 * console.log(img.addresses.RSDP.toString(16)); // "f0000"
 * ```
 */
export function buildAcpiTables(config: AcpiConfig): AcpiImage {
  validate(config);
  const align = (a: number, n: number) => Math.ceil(a / n) * n;
  const addresses: Record<string, number> = {};
  const parts: { at: number; bytes: Uint8Array }[] = [];
  let cursor = config.base + 36; // after the RSDP
  const place = (sig: string, len: number, alignment = 16): number => {
    cursor = align(cursor, alignment);
    const at = cursor;
    cursor += len;
    addresses[sig] = at;
    return at;
  };
  const sigs = ["FACP", "APIC", ...(config.hpet ? ["HPET"] : [])];
  // Lay out fixed-size pieces first so pointers are known.
  const madtBytes = madt(config);
  const hpetBytes = config.hpet ? hpetTable(config.hpet) : null;
  const dsdtBytes = table("DSDT", 2, dsdtAml().length, (w) => {
    w.buf.set(dsdtAml(), TABLE_HEADER);
  });
  const xsdtAt = place("XSDT", TABLE_HEADER + 8 * sigs.length);
  const rsdtAt = place("RSDT", TABLE_HEADER + 4 * sigs.length);
  const fadtAt = place("FACP", 276);
  const facsAt = place("FACS", 64, 64);
  const dsdtAt = place("DSDT", dsdtBytes.length);
  const madtAt = place("APIC", madtBytes.length);
  const hpetAt = hpetBytes ? place("HPET", hpetBytes.length) : 0;
  if (cursor > 0x100000) {
    throw new RangeError("acpi: tables do not fit below 1 MiB");
  }
  const pointers = [fadtAt, madtAt, ...(hpetBytes ? [hpetAt] : [])];
  parts.push({ at: xsdtAt, bytes: sdt("XSDT", pointers, 8) });
  parts.push({ at: rsdtAt, bytes: sdt("RSDT", pointers, 4) });
  parts.push({ at: fadtAt, bytes: fadt(config, facsAt, dsdtAt) });
  parts.push({ at: facsAt, bytes: facsTable() });
  parts.push({ at: dsdtAt, bytes: dsdtBytes });
  parts.push({ at: madtAt, bytes: madtBytes });
  if (hpetBytes) parts.push({ at: hpetAt, bytes: hpetBytes });

  const rsdp = new Writer(36);
  rsdp.ascii(0, "RSD PTR ");
  rsdp.ascii(9, ACPI_OEM_ID);
  rsdp.u8(15, 2);
  rsdp.u32(16, rsdtAt);
  rsdp.u32(20, 36);
  rsdp.u64(24, xsdtAt);
  rsdp.u8(8, (0x100 - byteSum(rsdp.buf.subarray(0, 20))) & 0xff);
  rsdp.u8(32, (0x100 - byteSum(rsdp.buf)) & 0xff);
  addresses.RSDP = config.base;

  const bytes = new Uint8Array(cursor - config.base);
  bytes.set(rsdp.buf, 0);
  for (const p of parts) bytes.set(p.bytes, p.at - config.base);
  return { base: config.base, bytes, addresses };
}
