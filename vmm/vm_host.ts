/**
 * The parts of {@link Vm} that are not its public methods: the checked
 * settings a VM is created with (`vmSettings`), the host its plugin
 * contexts act through (`contextHost`: regions, lines, MSIs, run-ending
 * calls, tick sources), built from the VM's private parts, and attaching
 * a plugin (`attachPlugin`).
 *
 * @module
 */
import type { Bus } from "../bus/bus.ts";
import {
  type ExtIntSource,
  isIrqChipPlugin,
  type LineController,
} from "../bus/irqchip.ts";
import type {
  Clock,
  MsiMessage,
  Plugin,
  Region,
  TickTarget,
} from "../bus/types.ts";
import type { CoreVm } from "../ffi/core_vm.ts";
import type { ContextHost, PluginContexts } from "./context.ts";
import {
  CoreTickSource,
  DEFAULT_TIMER_BACKLOG_CAP_MS,
} from "./core_sources.ts";
import type { RamView } from "./guest_memory.ts";
import type { InterruptDelivery } from "./interrupt_delivery.ts";
import { limitLogger } from "./log_limiter.ts";
import type { RunLoop } from "./run_loop.ts";
import type { IrqchipMode, Logger, VmOptions } from "./vm_types.ts";
import type { Vm } from "./vm.ts";

/** How a VM's tick sources pace and catch up. */
export interface TimerSettings {
  /** Absolute deadlines or relative sleeps. */
  readonly pacing: "absolute" | "relative-sleep";
  /** Missed ticks: replayed (`catchup`) or merged (`coalesce`). */
  readonly policy: "coalesce" | "catchup";
  /** Largest backlog replayed, in ms. */
  readonly capMs: number;
}

/** {@link VmOptions} checked, with their defaults. */
export interface VmSettings {
  /** Irqchip arrangement. */
  readonly irqchip: IrqchipMode;
  /** vCPUs (1..64). */
  readonly vcpus: number;
  /** The rate-limited logger. */
  readonly log: Logger;
  /** Plugin clock. */
  readonly clock: Clock;
  /** Tick-source settings. */
  readonly timers: TimerSettings;
}

const defaultLogger: Logger = (level, source, msg) => {
  if (level === "warn" || level === "error") {
    console.error(`[denovmm ${source}] ${level}: ${msg}`);
  }
};

const realClock: Clock = { now: () => Math.round(performance.now() * 1e6) };

/** Check `options` (throws a `RangeError` naming the bad one). */
export function vmSettings(options: VmOptions): VmSettings {
  const irqchip = options.irqchip ?? "kernel";
  if (irqchip !== "kernel" && irqchip !== "split") {
    throw new RangeError(`unknown irqchip mode "${irqchip}"`);
  }
  const vcpus = options.vcpus ?? 1;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 64) {
    throw new RangeError(`vcpus must be an integer 1..64, not ${vcpus}`);
  }
  const policy = options.timerPolicy ?? "catchup";
  if (policy !== "catchup" && policy !== "coalesce") {
    throw new RangeError(
      `unknown timerPolicy "${policy}" (catchup or coalesce)`,
    );
  }
  const capMs = options.timerBacklogCapMs ?? DEFAULT_TIMER_BACKLOG_CAP_MS;
  if (!(capMs > 0) || !Number.isFinite(capMs)) {
    throw new RangeError(
      `timerBacklogCapMs must be a positive number, not ${capMs}`,
    );
  }
  return {
    irqchip,
    vcpus,
    log: limitLogger(options.log ?? defaultLogger),
    clock: options.clock ?? realClock,
    timers: { pacing: options.timerPacing ?? "absolute", policy, capMs },
  };
}

/** The private parts of a VM its plugins' host is made of. */
export interface VmParts {
  /** The VM (for `exitStatus`). */
  readonly vm: Pick<Vm, "exitStatus" | "irqchip" | "vcpus">;
  /** The core VM. */
  readonly core: CoreVm;
  /** Guest RAM. */
  readonly ram: RamView;
  /** The VM's settings. */
  readonly settings: VmSettings;
  /** The port/MMIO bus. */
  readonly bus: Bus;
  /** Line and MSI delivery. */
  readonly irq: InterruptDelivery;
  /** The run loop. */
  readonly loop: RunLoop;
  /** The VM's tick sources (new ones are appended). */
  readonly tickSources: CoreTickSource[];
  /** True after close. */
  closed(): boolean;
}

/** The host a VM's plugin contexts act through. */
export function contextHost(p: VmParts): ContextHost {
  const { core, bus, irq, loop, settings } = p;
  return {
    core,
    irqchip: p.vm.irqchip,
    vcpus: p.vm.vcpus,
    memory: p.ram,
    clock: settings.clock,
    closed: p.closed,
    log: settings.log,
    addRegion: (r: Region, owner: string) => bus.add(r, owner),
    removeRegion: (r: Region) => void bus.remove(r),
    setLine: (gsi: number, level: boolean) => irq.setLine(gsi, level),
    signalMsi: (msg: MsiMessage) => irq.deliver(msg),
    routeMsi: (gsi: number, msg: MsiMessage | null) => irq.routeMsi(gsi, msg),
    exit: (status: number) => {
      p.vm.exitStatus = status;
      loop.end({ reason: "exit", status });
    },
    halt: () => loop.end({ reason: "halt" }),
    sleep: (state: number) =>
      loop.end({ reason: state === 5 ? "poweroff" : "sleep", state }),
    createTickSource: (target: TickTarget) => {
      const { pacing, policy, capMs } = settings.timers;
      const t = new CoreTickSource(core, target, pacing, policy, capMs);
      p.tickSources.push(t);
      return t;
    },
    addEoiListener: (fn: (vector: number) => void) =>
      void loop.eoiListeners.push(fn),
    addLineController: (c: LineController) => void irq.lineControllers.push(c),
    setExtint: (src: ExtIntSource) => {
      if (loop.extint) throw new Error("the VM already has an ExtINT source");
      loop.extint = src;
    },
  };
}

/**
 * Attach `plugin`: call its `setup` with its context and claim its regions
 * on the bus, all or none (a region the bus refuses takes the ones already
 * added back off); then it is in `plugins` (and the loop's service list).
 */
export function attachPlugin(
  plugin: Plugin,
  vm: {
    contexts: PluginContexts;
    bus: Bus;
    loop: RunLoop;
    plugins: Plugin[];
  },
): void {
  if (vm.plugins.some((p) => p.name === plugin.name)) {
    throw new Error(`a plugin named "${plugin.name}" is already attached`);
  }
  const regions = plugin.setup(
    isIrqChipPlugin(plugin)
      ? vm.contexts.irqchip(plugin.name)
      : vm.contexts.device(plugin.name),
  );
  const added: Region[] = [];
  try {
    for (const r of regions) {
      vm.bus.add(r, plugin.name);
      added.push(r);
    }
  } catch (e) {
    for (const r of added) vm.bus.remove(r);
    throw e;
  }
  vm.plugins.push(plugin);
  if (plugin.service) vm.loop.servicePlugins.push(plugin);
}
