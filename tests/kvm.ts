/**
 * Helpers for the end-to-end tests that boot guests on /dev/kvm.
 *
 * KVM tests run whenever /dev/kvm exists; only when it is absent are they
 * skipped, with a loud message on stderr.
 *
 * @module
 */
import {
  createMachine,
  type Machine,
  type MachineOptions,
} from "../vmm/machine.ts";
import type { RunResult } from "../vmm/vm.ts";

/** True when /dev/kvm exists (tests are ignored, loudly, when it does not). */
export const HAVE_KVM: boolean = (() => {
  try {
    Deno.statSync("/dev/kvm");
    return true;
  } catch {
    console.error(
      "\n*** /dev/kvm is absent: the KVM end-to-end tests are SKIPPED ***\n",
    );
    return false;
  }
})();

/** Absolute path of a built guest. */
export function guestPath(name: string): string {
  return decodeURIComponent(
    new URL(`../guests/build/${name}.elf`, import.meta.url).pathname,
  );
}

/** Result of {@link bootGuest}. */
export interface Booted {
  /** How the run ended. */
  result: RunResult;
  /** Serial output. */
  out: string;
  /** The machine (closed by the caller via `using`). */
  machine: Machine;
}

/**
 * Create a machine, load `name` with `args`, run it; the caller disposes
 * the returned machine.
 */
export function bootGuest(
  name: string,
  args: (number | bigint)[] = [],
  options: MachineOptions & { timeoutMs?: number } = {},
): Booted {
  let out = "";
  const machine = createMachine({
    ...options,
    serialOutput: (b) => out += String.fromCharCode(b),
  });
  try {
    machine.vm.load(guestPath(name), args);
    const result = machine.vm.run({ timeoutMs: options.timeoutMs ?? 20_000 });
    return { result, out, machine };
  } catch (e) {
    machine.vm.close();
    throw e;
  }
}

/** The `FAIL name` lines of a guest's serial output. */
export function failures(out: string): string[] {
  return out.split("\n").filter((l) => l.startsWith("FAIL ")).map((l) =>
    l.slice(5).trim()
  );
}

/** The `PASS name` lines of a guest's serial output. */
export function passes(out: string): string[] {
  return out.split("\n").filter((l) => l.startsWith("PASS ")).map((l) =>
    l.slice(5).trim()
  );
}

/** Names of the threads of this process (from /proc/self/task). */
export function threadNames(): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync("/proc/self/task")) {
    try {
      names.push(
        Deno.readTextFileSync(`/proc/self/task/${e.name}/comm`).trim(),
      );
    } catch {
      // the thread ended while we listed
    }
  }
  return names;
}
