/**
 * The {@link PluginContext} a plugin receives: host services built over
 * the VM's internals ({@link ContextHost}), one context per plugin so
 * logs and errors name it.
 *
 * @module
 */
import type {
  Clock,
  GuestMemory,
  IrqLine,
  LogLevel,
  Mapping,
  MsiIrqfd,
  MsiMessage,
  PluginContext,
  Region,
  TickSource,
  TickTarget,
} from "../bus/types.ts";
import type { CoreVm } from "../ffi/core_vm.ts";

/** What the VM lends the contexts of its plugins. */
export interface ContextHost {
  /** The core VM. */
  readonly core: CoreVm;
  /** Irqchip arrangement. */
  readonly irqchip: "kernel" | "split";
  /** Guest RAM. */
  readonly memory: GuestMemory;
  /** Plugin clock. */
  readonly clock: Clock;
  /** True after close. */
  closed(): boolean;
  /** Log on behalf of `source`. */
  log(level: LogLevel, source: string, msg: string): void;
  /** Put a region on the bus for `owner`. */
  addRegion(region: Region, owner: string): void;
  /** Take a region off the bus. */
  removeRegion(region: Region): void;
  /** Drive a GSI line (KVM or the userspace line controllers). */
  setLine(gsi: number, level: boolean): void;
  /** Deliver an MSI; false when the guest's state blocked it. */
  signalMsi(msg: MsiMessage): boolean;
  /** Set or clear the MSI route of `gsi`. */
  routeMsi(gsi: number, msg: MsiMessage | null): void;
  /** End the run with an `exit` result. */
  exit(status: number): void;
  /** End the run with a `halt` result (unless an exit came first). */
  halt(): void;
  /** End the run with a `sleep` or `poweroff` result (ACPI S-state). */
  sleep(state: number): void;
  /** A tick source owned by the VM. */
  createTickSource(target: TickTarget): TickSource;
}

/** Build the context of plugin `source`. */
export function createContext(
  host: ContextHost,
  source: string,
): PluginContext {
  const core = host.core;
  const lines = new Map<number, IrqLine>();
  return {
    irqLine(gsi: number): IrqLine {
      if (!Number.isInteger(gsi) || gsi < 0 || gsi > 1023) {
        throw new RangeError(`${source}: bad GSI ${gsi}`);
      }
      let line = lines.get(gsi);
      if (!line) {
        const set = (level: boolean) => host.setLine(gsi, level);
        line = {
          gsi,
          set,
          pulse() {
            set(true);
            set(false);
          },
        };
        lines.set(gsi, line);
      }
      return line;
    },
    signalMsi(msg: MsiMessage): void {
      host.signalMsi(msg);
    },
    memory: host.memory,
    clock: host.clock,
    log: (level, msg) => host.log(level, source, msg),
    map: (region: Region): Mapping => {
      host.addRegion(region, source);
      let mapped = true;
      return {
        range: region.range,
        unmap: () => {
          if (mapped && !host.closed()) host.removeRegion(region);
          mapped = false;
        },
      };
    },
    exit: (status: number) => host.exit(status),
    halt: () => host.halt(),
    sleep: (state: number) => host.sleep(state),
    createTickSource: (target: TickTarget) => host.createTickSource(target),
    lapicEoi: () => {
      core.lapicEoi(0);
    },
    lapicHasVector: (vector: number): boolean => {
      const word = 0x10 * ((vector & 0xff) >> 5);
      const [isr, irr] = core.lapicRead(0, [0x100 + word, 0x200 + word]);
      const bit = 1 << (vector & 31);
      return ((isr | irr) & bit) !== 0;
    },
    msiIrqfd: (): MsiIrqfd => {
      const gsi = core.routeAllocate();
      let id: number;
      try {
        id = core.irqfdCreate(gsi, false);
      } catch (e) {
        core.routeRelease(gsi);
        throw e;
      }
      let closed = false;
      return {
        gsi,
        route: (msg: MsiMessage | null) => host.routeMsi(gsi, msg),
        fire: () => core.irqfdTrigger(id),
        mask: () => core.irqfdSetAttached(id, false),
        unmask: () => {
          core.irqfdSetAttached(id, true);
          return core.irqfdTakePending(id);
        },
        close: () => {
          if (closed || host.closed()) return;
          closed = true;
          core.irqfdDestroy(id);
          core.routeRelease(gsi);
        },
      };
    },
    resample: (gsi: number) => {
      if (host.irqchip === "split") core.irqfdResampleGsi(gsi);
    },
    routeMsi: (gsi: number, msg: MsiMessage | null) => host.routeMsi(gsi, msg),
  };
}
