/**
 * One port and address map: `WIRING` (vmm/machine.ts) is the source; the
 * guests' header (`guests/lib/rt.h`), the plugins' default constants and
 * the README's Guest ABI table must agree with it.
 */
import assert from "node:assert/strict";
import { WIRING } from "../vmm/machine.ts";
import {
  PV_TIMER_HALT_PORT,
  PV_TIMER_PERIOD_PORT,
} from "../plugins/pv_timer/pv_timer.ts";
import { FW_CFG_PORT_SELECTOR } from "../plugins/fw_cfg/fw_cfg.ts";
import {
  I8259_ELCR_MASTER,
  I8259_MASTER_COMMAND,
  I8259_SLAVE_COMMAND,
} from "../plugins/pic/pic_8259.ts";
import { CONFIG_MECHANISM } from "../plugins/pci/registers.ts";
import { HPET_BASE } from "../plugins/hpet/hpet.ts";
import { IOAPIC_DEFAULT_BASE } from "../plugins/ioapic/ioapic.ts";
import { AbiConst } from "../ffi/abi.ts";

const root = new URL("..", import.meta.url);

/** Every number in `WIRING`, recursively. */
function numbers(v: unknown): Set<number> {
  const out = new Set<number>();
  const walk = (x: unknown) => {
    if (typeof x === "number") out.add(x);
    else if (x && typeof x === "object") Object.values(x).forEach(walk);
  };
  walk(v);
  return out;
}

Deno.test("port map: the guests' header agrees with WIRING", () => {
  const h = Deno.readTextFileSync(new URL("guests/lib/rt.h", root));
  const def = (name: string): number => {
    const m = new RegExp(`#define ${name}\\s+\\(?(0x[0-9A-Fa-f]+|\\d+)`).exec(
      h,
    );
    assert.ok(m, `rt.h defines ${name}`);
    return Number(m[1]);
  };
  assert.equal(def("PORT_COM1"), WIRING.serial.base);
  assert.equal(def("PORT_DEBUG_EXIT"), WIRING.debugExit.base);
  assert.equal(def("PORT_PVTIMER"), WIRING.pvTimer.periodPort);
  assert.equal(def("PORT_HALT"), WIRING.pvTimer.haltPort);
  assert.equal(def("PORT_IRQLINE\\(n\\)"), WIRING.testdev.base);
  assert.equal(def("PORT_NULL"), WIRING.postPort);
  assert.equal(def("LAPIC_BASE"), WIRING.lapic.base);
  assert.equal(def("IOAPIC_BASE"), WIRING.ioapic.base);
});

Deno.test("port map: plugin defaults agree with WIRING", () => {
  assert.equal(PV_TIMER_PERIOD_PORT, WIRING.pvTimer.periodPort);
  assert.equal(PV_TIMER_HALT_PORT, WIRING.pvTimer.haltPort);
  assert.equal(FW_CFG_PORT_SELECTOR, WIRING.fwCfg.base);
  assert.equal(I8259_MASTER_COMMAND, WIRING.pic.master);
  assert.equal(I8259_SLAVE_COMMAND, WIRING.pic.slave);
  assert.equal(I8259_ELCR_MASTER, WIRING.pic.elcr);
  assert.equal(CONFIG_MECHANISM.ADDRESS_PORT, WIRING.pci.configAddress);
  assert.equal(CONFIG_MECHANISM.DATA_PORT, WIRING.pci.configData);
  assert.equal(CONFIG_MECHANISM.ECAM_DEFAULT_BASE, WIRING.pci.ecam);
  assert.equal(HPET_BASE, WIRING.hpet.base);
  assert.equal(IOAPIC_DEFAULT_BASE, WIRING.ioapic.base);
  // MMIO devices sit in the hole below 4 GiB, never over RAM.
  for (const b of [WIRING.pci.ecam, WIRING.ioapic.base, WIRING.hpet.base]) {
    assert.ok(
      b >= AbiConst.DV_RAM_HOLE_START,
      `0x${b.toString(16)} in the hole`,
    );
  }
});

Deno.test("port map: every Guest ABI row of the README is in WIRING", () => {
  const readme = Deno.readTextFileSync(new URL("README.md", root));
  const at = readme.indexOf("### Guest ABI");
  assert.ok(at >= 0);
  const table = readme.slice(at).split("\n\n")[1];
  const known = numbers(WIRING);
  let rows = 0;
  for (const line of table.split("\n").slice(2)) {
    const first = line.split("|")[1]?.trim() ?? "";
    const m = /^(0x[0-9A-Fa-f]+|\d+)/.exec(first);
    assert.ok(m, `row starts with an address: ${line}`);
    rows++;
    assert.ok(known.has(Number(m[1])), `${m[1]} (${first}) is in WIRING`);
  }
  assert.ok(rows >= 15, `${rows} rows`);
});
