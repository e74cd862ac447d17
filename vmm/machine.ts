/**
 * The wiring file: the one place that knows the guest-visible ports, MMIO
 * bases and GSIs of a denovmm machine, and which plugins each irqchip mode
 * gets. Plugins that take an address as an option get it from here; the
 * others default to constants checked against it.
 *
 * `WIRING` below is the one port and address map: the README's Guest ABI
 * table, the guests' header (`guests/lib/rt.h`) and the plugins' default
 * constants are checked against it (`tests/port_map_test.ts`).
 *
 * @module
 */
import type { Plugin, TickTarget } from "../bus/types.ts";
import { acpiPlugin } from "../plugins/acpi/plugin.ts";
import { debugExitPlugin } from "../plugins/debug_exit/plugin.ts";
import { hpetPlugin } from "../plugins/hpet/plugin.ts";
import { Hpet } from "../plugins/hpet/hpet.ts";
import { fwCfgPlugin } from "../plugins/fw_cfg/plugin.ts";
import { type IoapicPlugin, ioapicPlugin } from "../plugins/ioapic/plugin.ts";
import { legacyPlugin } from "../plugins/legacy/plugin.ts";
import { type PicPlugin, picPlugin } from "../plugins/pic/plugin.ts";
import { pitPlugin } from "../plugins/pit/plugin.ts";
import { rtcPlugin } from "../plugins/rtc/plugin.ts";
import {
  type PvTimerPlugin,
  pvTimerPlugin,
} from "../plugins/pv_timer/plugin.ts";
import { type SerialPlugin, serialPlugin } from "../plugins/serial/plugin.ts";
import { testdevPlugin } from "../plugins/testdev/plugin.ts";
import { resolveQuirks } from "./quirks.ts";
import { createVm, parseSize, type Vm, type VmOptions } from "./vm.ts";

/** Guest-visible addresses and GSIs of the standard machine. */
export const WIRING = {
  serial: { base: 0x3f8, gsi: 4 },
  debugExit: { base: 0xf4, iosize: 4 },
  testdev: { base: 0x2000, lines: 24, ioport: 0xe0, iomem: 0xff000000 },
  postPort: 0x80,
  pit: { base: 0x40, portB: 0x61, irq: 0 },
  rtc: { base: 0x70, irq: 8 },
  ioapic: { base: 0xfec00000 },
  /**
   * ACPI tables (RSDP here, the rest after it in the BIOS area) and the PM
   * block; the SCI is ISA IRQ 9, level, active high.
   */
  acpi: { rsdp: 0xf0000, pmBase: 0xb000, sciIrq: 9 },
  /**
   * HPET. ISA IRQ0 is GSI 0 on this machine (the PIT, in-kernel or ours,
   * and the PV timer drive IOAPIC pin 0), so the MADT's IRQ0 override and
   * the HPET's legacy route say GSI 0, not QEMU's GSI 2.
   */
  hpet: { base: 0xfed00000, irq0Gsi: 0, irq8Gsi: 8 },
  lapic: { base: 0xfee00000 },
  /** PV timer ticks: GSI 0 (IRQ0) or a direct MSI to vector 0x20. */
  timer: { gsi: 0, vector: 0x20, destination: 0 },
  /** PV timer ports (Hyperlight's ABI): period in µs, halt. */
  pvTimer: { periodPort: 107, haltPort: 108 },
  /** fw_cfg selector (the data port follows). */
  fwCfg: { base: 0x510 },
  /** 8259A pair command ports and the ELCR pair. */
  pic: { master: 0x20, slave: 0xa0, elcr: 0x4d0 },
  /** PCI configuration mechanism #1 and the ECAM window (below the RAM hole's BARs). */
  pci: { configAddress: 0xcf8, configData: 0xcfc, ecam: 0xb0000000 },
} as const;

/** The HPET table's event timer block ID: the low half of GCAP_ID. */
function hpetBlockId(): number {
  return Number(Hpet.capabilities & 0xffffffffn);
}

/** Where PV timer ticks go. */
export type TimerDelivery = "msi" | "gsi";

/** Options of {@link createMachine}. */
export interface MachineOptions
  extends Omit<VmOptions, "plugins" | "ignoredPorts"> {
  /** Bytes the guest writes to COM1 (default: discarded). */
  serialOutput?: (byte: number) => void;
  /** PV timer delivery (default `msi`). */
  timerDelivery?: TimerDelivery;
  /** PV timer period clamp in µs (default 50 .. 10 s). */
  timerRangeUs?: { min?: number; max?: number };
  /** Kernel command line served by fw_cfg. */
  cmdline?: string;
  /**
   * Split irqchip: `8259` (default) emulates the 8259A pair (ExtINT through
   * LINT0) and the 8254 PIT; `stub` answers the PIC and PIT ports with
   * Hyperlight-style stubs.
   */
  pic?: "8259" | "stub";
  /** More plugins, attached after the standard ones. */
  plugins?: readonly Plugin[];
}

/** A VM with the standard devices attached. */
export interface Machine extends Disposable {
  /** The VM. */
  readonly vm: Vm;
  /** COM1. */
  readonly serial: SerialPlugin;
  /** The PV timer. */
  readonly pvTimer: PvTimerPlugin;
  /** The userspace IOAPIC (split mode only). */
  readonly ioapic: IoapicPlugin | null;
  /** The userspace 8259A pair (split mode with `pic: "8259"` only). */
  readonly pic: PicPlugin | null;
}

/**
 * The standard plugins for an irqchip mode (kernel: the in-kernel PIC, PIT
 * (KVM_CREATE_PIT2) and IOAPIC stay KVM's; split: our IOAPIC, 8259A pair
 * and 8254 PIT, or with `pic: "stub"` the Hyperlight-style PIC/PIT stubs).
 * Both: ACPI tables + PM block, HPET, RTC.
 *
 * @example
 * ```ts
 * import { standardPlugins } from "./machine.ts";
 * const { plugins } = standardPlugins({ irqchip: "split" });
 * console.log(plugins.map((p) => p.name));
 * ```
 */
export function standardPlugins(options: MachineOptions = {}): {
  plugins: Plugin[];
  serial: SerialPlugin;
  pvTimer: PvTimerPlugin;
  ioapic: IoapicPlugin | null;
  pic: PicPlugin | null;
} {
  const irqchip = options.irqchip ?? "kernel";
  const target: TickTarget = options.timerDelivery === "gsi"
    ? { kind: "gsi", gsi: WIRING.timer.gsi }
    : {
      kind: "msi",
      vector: WIRING.timer.vector,
      destination: WIRING.timer.destination,
    };
  const serial = serialPlugin({
    ...WIRING.serial,
    output: options.serialOutput,
  });
  const pvTimer = pvTimerPlugin({
    target,
    minUs: options.timerRangeUs?.min,
    maxUs: options.timerRangeUs?.max,
  });
  const ramSize = parseSize(options.memory ?? 16 << 20);
  const plugins: Plugin[] = [
    serial,
    debugExitPlugin(WIRING.debugExit),
    pvTimer,
    testdevPlugin(WIRING.testdev),
    fwCfgPlugin({
      ramSize,
      cpus: options.vcpus ?? 1,
      cmdline: options.cmdline,
    }),
    acpiPlugin({
      base: WIRING.acpi.rsdp,
      cpus: options.vcpus ?? 1,
      ioapic: { id: 0, address: WIRING.ioapic.base, gsiBase: 0 },
      lapicAddress: WIRING.lapic.base,
      sciIrq: WIRING.acpi.sciIrq,
      pmBase: WIRING.acpi.pmBase,
      hpet: { address: WIRING.hpet.base, blockId: hpetBlockId() },
      overrides: [{ irq: 0, gsi: WIRING.hpet.irq0Gsi, flags: 0 }],
    }),
    hpetPlugin(WIRING.hpet),
    // KVM has no RTC: ours in both modes (IRQ8 through KVM_IRQ_LINE or our
    // IOAPIC and 8259A pair).
    rtcPlugin({ ...WIRING.rtc, ramBelow4g: ramSize }),
  ];
  let ioapic: IoapicPlugin | null = null;
  let pic: PicPlugin | null = null;
  if (irqchip === "split") {
    ioapic = ioapicPlugin({
      ...WIRING.ioapic,
      remoteIrrWatchdog: resolveQuirks(options.quirks).remoteIrrWatchdog
        ? {}
        : null,
    });
    plugins.push(ioapic);
    if (options.pic === "stub") {
      plugins.push(legacyPlugin({ timerActive: () => pvTimer.active }));
    } else {
      // Hyperlight-style guests take PV-timer ticks as MSIs but acknowledge
      // them with a PIC EOI: pass an empty PIC EOI on to the LAPIC.
      pic = picPlugin({ emptyEoiToLapic: () => pvTimer.active });
      plugins.push(pic, pitPlugin(WIRING.pit));
    }
  }
  return { plugins, serial, pvTimer, ioapic, pic };
}

/**
 * Create a VM with the standard devices of its irqchip mode.
 *
 * @example
 * ```ts ignore
 * import { createMachine } from "./machine.ts";
 * using m = createMachine({
 *   irqchip: "split",
 *   serialOutput: (b) => console.log(String.fromCharCode(b)),
 * });
 * m.vm.load("guests/build/hello.elf");
 * console.log(m.vm.run({ timeoutMs: 5000 }));
 * ```
 */
export function createMachine(options: MachineOptions = {}): Machine {
  const std = standardPlugins(options);
  const vm = createVm({
    ...options,
    plugins: [...std.plugins, ...(options.plugins ?? [])],
    ignoredPorts: [{ space: "pio", base: WIRING.postPort, length: 1 }],
  });
  return {
    vm,
    serial: std.serial,
    pvTimer: std.pvTimer,
    ioapic: std.ioapic,
    pic: std.pic,
    [Symbol.dispose]: () => vm.close(),
  };
}
