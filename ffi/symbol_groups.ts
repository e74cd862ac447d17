/**
 * The core's `Deno.dlopen` table opened in groups, on first use: Deno
 * builds a call trampoline per symbol when a library is opened (~0.2 ms
 * each here, ~15 ms for the whole table), which a short-lived process such
 * as the CLI pays in full although a plain boot calls a fifth of them.
 * {@link BOOT_SYMBOLS} (create, load, run, the exit path's interrupt and
 * timer calls in kernel-irqchip mode, destroy) are opened at once and are plain data properties,
 * so the hot path sees the same object as before; every other symbol is
 * a getter that opens its concern's group (snapshot, SMP, irqfd/level/
 * routes, split-irqchip injection, timers, inspection) the first time any of its symbols is read.
 *
 * @module
 */

/** Symbols opened with the library: a plain boot and the exit hot path. */
export const BOOT_SYMBOLS: ReadonlySet<string> = new Set([
  "dv_abi_version",
  "dv_last_error",
  "dv_vm_create",
  "dv_vm_destroy",
  "dv_vm_load_elf",
  "dv_vm_load_multiboot",
  "dv_vm_memory",
  "dv_vm_range_add",
  "dv_vm_set_timeout",
  "dv_vm_set_wake",
  "dv_vcpu_run",
  "dv_vcpu_record",
  "dv_vcpu_lapic_eoi",
  "dv_irq_line",
  "dv_irq_signal_msi",
  "dv_timer_create",
  "dv_timer_set_policy",
  "dv_timer_arm",
  "dv_timer_disarm",
]);

/**
 * The lazily opened group of a symbol not in {@link BOOT_SYMBOLS}: one
 * name per concern, so that taking a snapshot does not open the SMP calls.
 *
 * @example
 * ```ts
 * import { symbolGroup } from "./symbol_groups.ts";
 * console.log(symbolGroup("dv_vm_state_save")); // "snapshot"
 * ```
 */
export function symbolGroup(name: string): string {
  if (BOOT_SYMBOLS.has(name)) return "boot";
  if (
    /^dv_(vm_(state_|dirty_|bitmap_|memory_(save|load|copy))|memory_file_crc)/
      .test(name)
  ) return "snapshot";
  if (
    /^dv_(vm_(start_aps|stop_aps|take_parked|release_ap|wait_exits)|vcpu_(mp_state|wake))/
      .test(
        name,
      )
  ) {
    return "smp";
  }
  if (/^dv_(irqfd|level|route)_/.test(name)) return "irq";
  if (
    /^dv_vcpu_(set_irq_window|ready_for_injection|inject_extint)$/.test(name)
  ) {
    return "split";
  }
  if (/^dv_timer_/.test(name)) return "timer";
  return "misc";
}

/**
 * Open `table` from `path` in groups: the boot group now (it throws as
 * `Deno.dlopen` does), each other group the first time one of its symbols
 * is read. The libraries stay open for the life of the process, as the
 * whole table did.
 */
export function openGrouped<S extends Deno.ForeignLibraryInterface>(
  path: string,
  table: S,
): Deno.DynamicLibrary<S>["symbols"] {
  const groups = new Map<string, Partial<S>>();
  for (const [name, def] of Object.entries(table)) {
    const g = symbolGroup(name);
    const t = groups.get(g) ?? {};
    (t as Record<string, unknown>)[name] = def;
    groups.set(g, t);
  }
  const out: Record<string, unknown> = {};
  const boot = groups.get("boot");
  if (boot) Object.assign(out, Deno.dlopen(path, boot as S).symbols);
  const opened = new Map<string, Record<string, unknown>>();
  for (const [g, t] of groups) {
    if (g === "boot") continue;
    for (const name of Object.keys(t)) {
      Object.defineProperty(out, name, {
        enumerable: true,
        get() {
          let syms = opened.get(g);
          if (!syms) {
            syms = Deno.dlopen(path, t as S).symbols as Record<string, unknown>;
            opened.set(g, syms);
          }
          return syms[name];
        },
      });
    }
  }
  return Object.freeze(out) as Deno.DynamicLibrary<S>["symbols"];
}
