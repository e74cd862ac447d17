/**
 * The host CPU facts a snapshot records: vendor and the feature flags a
 * restored guest may depend on (its CPUID is KVM's supported set, and its
 * XSAVE/MSR state only loads where the same features exist).
 *
 * @module
 */

import { host } from "../ffi/host.ts";

/** Vendor and features of a host CPU. */
export interface HostCpu {
  /** `vendor_id` of /proc/cpuinfo (GenuineIntel, AuthenticAMD, ...). */
  vendor: string;
  /** Flags from {@link RESTORE_FLAGS} this host has. */
  features: string[];
}

/**
 * Flags whose absence on the restoring host would break a guest or the
 * state load (XSAVE layout, TSC-deadline, x2APIC, vector extensions,
 * page-table features).
 */
export const RESTORE_FLAGS = [
  "xsave",
  "xsaves",
  "avx",
  "avx2",
  "avx512f",
  "tsc_deadline_timer",
  "x2apic",
  "pcid",
  "fsgsbase",
  "pku",
  "la57",
  "rdtscp",
  "nx",
  "pdpe1gb",
] as const;

let cached: HostCpu | null = null;

/** This host's CPU (read once from /proc/cpuinfo). */
export function hostCpu(): HostCpu {
  if (cached) return cached;
  let text = "";
  try {
    text = host.readTextFile("/proc/cpuinfo");
  } catch {
    // no /proc: an unknown host, matched only by another unknown host
  }
  const field = (name: string) =>
    new RegExp(`^${name}\\s*:\\s*(.*)$`, "m").exec(text)?.[1].trim() ?? "";
  const flags = new Set(field("flags").split(/\s+/));
  cached = {
    vendor: field("vendor_id") || "unknown",
    features: RESTORE_FLAGS.filter((f) => flags.has(f)),
  };
  return cached;
}

/**
 * Why a snapshot taken on `saved` cannot be restored on `here`, or null:
 * another vendor, or features the snapshot's host had that this one lacks.
 */
export function hostMismatch(saved: HostCpu, here: HostCpu): string | null {
  if (saved?.vendor !== here.vendor) {
    return `snapshot was taken on a ${saved?.vendor} CPU, this host is ${here.vendor}`;
  }
  const lacking = (saved.features ?? []).filter((f) =>
    !here.features.includes(f)
  );
  if (lacking.length) {
    return `snapshot's host had CPU features this host lacks: ${
      lacking.join(", ")
    }`;
  }
  return null;
}
