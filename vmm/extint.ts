/**
 * Split-irqchip ExtINT delivery and the LAPIC facts the run loop checks
 * after an exit.
 *
 * @module
 */
import type { ExtIntSource } from "../bus/irqchip.ts";
import type { CoreVm } from "../ffi/core_vm.ts";
import type { Logger, VmStats } from "./vm_types.ts";

/** LAPIC spurious-vector register: suppress EOI broadcast (SDM 11.8.5). */
const LAPIC_SVR_SUPPRESS_EOI_BROADCAST = 1 << 12;
/** LAPIC register offsets (SDM table 11-1). */
const LAPIC_SVR = 0xf0;
const LAPIC_ISR = 0x100;

/**
 * True when vCPU `vcpu`'s LAPIC (default vCPU 0) suppresses EOI broadcast
 * (SVR bit 12): each LAPIC has its own SVR, so the EOI-ing vCPU decides.
 */
export function eoiBroadcastSuppressed(core: CoreVm, vcpu = 0): boolean {
  const [svr] = core.lapicRead(vcpu, [LAPIC_SVR]);
  return (svr & LAPIC_SVR_SUPPRESS_EOI_BROADCAST) !== 0;
}

/** True when `vector` is in service in vCPU 0's in-kernel LAPIC. */
export function lapicInService(core: CoreVm, vector: number): boolean {
  const [w] = core.lapicRead(0, [LAPIC_ISR + 0x10 * (vector >> 5)]);
  return ((w >>> (vector & 31)) & 1) === 1;
}

/**
 * Split irqchip ExtINT (SDM 10.5.1, KVM api.rst KVM_INTERRUPT): while the
 * PIC's INT output is high, inject at once if KVM said at this exit that
 * the vCPU can take it (run INTA, KVM_INTERRUPT), else keep an interrupt
 * window requested and inject at the window exit.
 */
export class ExtIntPump {
  readonly #core: CoreVm;
  readonly #stats: VmStats;
  readonly #log: Logger;
  #windowRequested = false;

  /** Pump into `core`, counting in `stats`. */
  constructor(core: CoreVm, stats: VmStats, log: Logger) {
    this.#core = core;
    this.#stats = stats;
    this.#log = log;
  }

  /** An interrupt window is requested on vCPU 0 (an ExtINT waits). */
  get windowRequested(): boolean {
    return this.#windowRequested;
  }

  /** After an exit: `windowOpen` when it was an interrupt-window exit. */
  poll(src: ExtIntSource, windowOpen: boolean): void {
    const core = this.#core;
    if (
      src.interruptPending && (windowOpen || core.readyForInjection(0))
    ) {
      const vector = src.acknowledge() & 0xff;
      if (core.injectExtint(0, vector)) {
        this.#stats.extintInjected++;
      } else {
        this.#log(
          "warn",
          "vm",
          `ExtINT vector ${vector} could not be injected at the window`,
        );
      }
    }
    const want = src.interruptPending;
    if (want !== this.#windowRequested) {
      core.setIrqWindow(0, want);
      this.#windowRequested = want;
    }
  }

  /** Forget the window request (the vCPU was reset or restored). */
  reset(): void {
    this.#windowRequested = false;
  }
}
