/**
 * Workarounds for hosts whose KVM misbehaves, as an explicit option. They
 * are detected once per process and can be overridden per VM; on a
 * healthy host every quirk is off, because each one costs something there
 * (see README, "What this project's KVM host does differently").
 *
 * @module
 */

import { host } from "../ffi/host.ts";

/** The workarounds a VM can enable. */
export interface HostQuirks {
  /**
   * Split irqchip: a level MSI written to an irqfd while the vCPU runs can
   * be lost by a nested KVM; re-signal one left without EOI for 1 ms when
   * the LAPIC shows it neither requested nor in service.
   */
  readonly levelResignal: boolean;
  /**
   * Split irqchip: the EOI exit of a level interrupt taken after `sti; hlt`
   * can be lost, leaving Remote IRR set forever; a watchdog in our IOAPIC
   * completes the EOI of a level pin whose vector the LAPIC shows neither
   * in service nor requested at two checks 100 ms apart.
   */
  readonly remoteIrrWatchdog: boolean;
}

/** Every quirk off: a healthy KVM. */
export const NO_QUIRKS: HostQuirks = {
  levelResignal: false,
  remoteIrrWatchdog: false,
};

let detected: HostQuirks | undefined;

/**
 * The quirks this host needs, detected once: a KVM that itself runs under
 * a hypervisor (the `hypervisor` CPU flag in `/proc/cpuinfo`) is nested,
 * and the nested KVMs this project runs on lose level MSIs. Without read
 * access to `/proc/cpuinfo` the host is taken as healthy.
 *
 * @example
 * ```ts
 * import { detectHostQuirks } from "./quirks.ts";
 * console.log(typeof detectHostQuirks().levelResignal); // "boolean"
 * ```
 */
export function detectHostQuirks(): HostQuirks {
  if (detected) return detected;
  let nested = false;
  try {
    const info = host.readTextFile("/proc/cpuinfo");
    nested = /^flags\s*:.*\bhypervisor\b/m.test(info);
  } catch {
    nested = false;
  }
  detected = { levelResignal: nested, remoteIrrWatchdog: nested };
  return detected;
}

/** Resolve a VM's `quirks` option. */
export function resolveQuirks(
  option: Partial<HostQuirks> | "auto" | undefined,
): HostQuirks {
  if (option === undefined || option === "auto") return detectHostQuirks();
  return { ...detectHostQuirks(), ...option };
}
