import assert from "node:assert/strict";
import { parseAcpi } from "./parse.ts";
import {
  type AcpiConfig,
  buildAcpiTables,
  byteSum,
  SLP_TYP,
} from "./tables.ts";

const config = (cpus: number): AcpiConfig => ({
  base: 0xf0000,
  cpus,
  ioapic: { id: 0, address: 0xfec00000, gsiBase: 0 },
  lapicAddress: 0xfee00000,
  sciIrq: 9,
  pmBase: 0xb000,
  hpet: { address: 0xfed00000, blockId: 0x8086a201 },
  overrides: [{ irq: 0, gsi: 2, flags: 0 }],
});

function inMemory(cpus: number) {
  const img = buildAcpiTables(config(cpus));
  const mem = new Uint8Array(0x100000);
  mem.set(img.bytes, img.base);
  return { img, mem, read: (a: number, n: number) => mem.subarray(a, a + n) };
}

Deno.test("acpi tables: every checksum and field parses back", () => {
  const { img, read } = inMemory(1);
  const t = parseAcpi(read);
  assert.equal(t.rsdp, 0xf0000);
  assert.deepEqual(Object.keys(t.tables).sort(), [
    "APIC",
    "DSDT",
    "FACP",
    "FACS",
    "HPET",
  ]);
  assert.equal(t.tables.FACP, img.addresses.FACP);
  assert.equal(t.fadt.revision, 6);
  assert.equal(t.fadt.sciInt, 9);
  assert.equal(t.fadt.smiCmd, 0);
  assert.equal(t.fadt.pm1aEvt, 0xb000);
  assert.equal(t.fadt.pm1aCnt, 0xb004);
  assert.equal(t.fadt.pmTmr, 0xb008);
  assert.deepEqual([t.fadt.pm1EvtLen, t.fadt.pm1CntLen, t.fadt.pmTmrLen], [
    4,
    2,
    4,
  ]);
  assert.equal(t.fadt.century, 0x32);
  assert.ok(t.fadt.flags & (1 << 8), "TMR_VAL_EXT: 32-bit PM timer");
  assert.deepEqual(t.fadt.xPmTmr, {
    space: 1,
    width: 32,
    access: 3,
    address: 0xb008,
  });
  assert.equal(t.fadt.xPm1aEvt.address, 0xb000);
  assert.equal(t.fadt.xPm1aCnt.address, 0xb004);
  assert.equal(t.fadt.facs % 64, 0);
  // DSDT: Name(_S5_, Package(){5, 5, 0, 0}) and the others.
  const aml = [...t.dsdtAml];
  for (const [s, typ] of Object.entries(SLP_TYP)) {
    const name = [0x08, 0x5f, 0x53, 0x30 + Number(s), 0x5f];
    const at = aml.findIndex((_, i) => name.every((b, j) => aml[i + j] === b));
    assert.ok(at >= 0, `_S${s}_ declared`);
    assert.deepEqual(aml.slice(at + 5, at + 14), [
      0x12,
      0x08,
      0x04,
      0x0a,
      typ,
      0x0a,
      typ,
      0,
      0,
    ]);
  }
  assert.equal(t.madt.lapicAddress, 0xfee00000);
  assert.equal(t.madt.flags, 1);
  assert.deepEqual(t.madt.lapics, [{ uid: 0, apicId: 0, flags: 1 }]);
  assert.deepEqual(t.madt.ioapics, [{
    id: 0,
    address: 0xfec00000,
    gsiBase: 0,
  }]);
  assert.deepEqual(t.madt.overrides, [
    { irq: 0, gsi: 2, flags: 0 },
    { irq: 9, gsi: 9, flags: 0xd },
  ]);
  assert.deepEqual(t.madt.nmis, [{ uid: 0xff, flags: 0, lint: 1 }]);
  assert.deepEqual(t.hpet, {
    blockId: 0x8086a201,
    base: { space: 0, width: 64, access: 0, address: 0xfed00000 },
    number: 0,
    minTick: 0x80,
  });
  // Everything stays inside the reserved BIOS area.
  assert.ok(img.base + img.bytes.length <= 0x100000);
});

Deno.test("acpi tables: one LAPIC per vCPU", () => {
  for (const n of [1, 2, 8, 64]) {
    const t = parseAcpi(inMemory(n).read);
    assert.deepEqual(
      t.madt.lapics,
      Array.from({ length: n }, (_, i) => ({ uid: i, apicId: i, flags: 1 })),
    );
  }
});

Deno.test("acpi tables: a corrupted byte in any table is caught", () => {
  const { img, mem, read } = inMemory(2);
  for (const sig of ["RSDP", "XSDT", "FACP", "DSDT", "APIC", "HPET"]) {
    const at = img.addresses[sig] + 30;
    mem[at] ^= 0x40;
    assert.throws(() => parseAcpi(read), /checksum|RSDP/, sig);
    mem[at] ^= 0x40;
  }
  assert.equal(byteSum(mem.subarray(0xf0000, 0xf0014)), 0);
  parseAcpi(read);
});

Deno.test("acpi tables: host configuration is validated", () => {
  assert.throws(
    () => buildAcpiTables({ ...config(1), base: 0xf0008 }),
    /16-byte aligned/,
  );
  assert.throws(() => buildAcpiTables({ ...config(0) }), /cpus 0/);
  assert.throws(
    () => buildAcpiTables({ ...config(1), sciIrq: 20 }),
    /sciIrq 20/,
  );
});

function which(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`] })
      .outputSync().success;
  } catch {
    return false;
  }
}

const HAVE_IASL = which("iasl");
if (!HAVE_IASL) {
  console.error(
    "\n*** iasl (acpica-tools) is absent: the `iasl -d` ACPI table check is SKIPPED ***\n",
  );
}

Deno.test({
  name: "acpi tables: iasl -d disassembles every table without errors",
  ignore: !HAVE_IASL,
  fn() {
    const { img } = inMemory(2);
    const dir = Deno.makeTempDirSync({ prefix: "denovmm-acpi-" });
    try {
      const sigs = ["FACP", "FACS", "DSDT", "APIC", "HPET", "XSDT", "RSDT"];
      for (const sig of sigs) {
        const at = img.addresses[sig] - img.base;
        const len = new DataView(img.bytes.buffer).getUint32(at + 4, true);
        Deno.writeFileSync(
          `${dir}/${sig.toLowerCase()}.dat`,
          img.bytes.subarray(at, at + len),
        );
      }
      for (const sig of sigs) {
        const f = `${sig.toLowerCase()}.dat`;
        const out = new Deno.Command("iasl", { args: ["-d", f], cwd: dir })
          .outputSync();
        const text = new TextDecoder().decode(out.stdout) +
          new TextDecoder().decode(out.stderr);
        assert.ok(out.success, `iasl -d ${f} failed:\n${text}`);
        const dsl = Deno.readTextFileSync(`${dir}/${sig.toLowerCase()}.dsl`);
        assert.doesNotMatch(dsl, /\*\*\*\* (?!ACPI)|Invalid|Error/i, dsl);
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
