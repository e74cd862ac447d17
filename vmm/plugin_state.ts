/**
 * The device half of VM snapshots: collect every plugin's
 * {@link DeviceState} by name, and restore them all-or-nothing.
 *
 * @module
 */
import type { DeviceState, Plugin } from "../bus/types.ts";

/**
 * The states of the plugins that have one, by plugin name (a deep copy
 * through JSON, so the result is plain data whatever a plugin returned).
 *
 * @example
 * ```ts
 * import { snapshotPlugins } from "./plugin_state.ts";
 * const p = { name: "d", setup: () => [], snapshot: () => ({ version: 1 }) };
 * console.log(snapshotPlugins([p])); // { d: { version: 1 } }
 * ```
 */
export function snapshotPlugins(
  plugins: readonly Plugin[],
): Record<string, DeviceState> {
  const out: Record<string, DeviceState> = {};
  for (const p of plugins) {
    if (!p.snapshot) continue;
    const s = p.snapshot();
    out[p.name] = JSON.parse(JSON.stringify(s));
  }
  return out;
}

/**
 * Restore `states` into `plugins`: every plugin with `snapshot` and
 * `restore` needs a
 * state and every state a plugin. When a plugin refuses its state, the
 * plugins restored before it are put back, so nothing changes.
 *
 * @example
 * ```ts
 * import { restorePlugins } from "./plugin_state.ts";
 * let got = 0;
 * const p = {
 *   name: "d",
 *   setup: () => [],
 *   snapshot: () => ({ version: 1, n: got }),
 *   restore: (s: { version: number }) =>
 *     void (got = (s as unknown as { n: number }).n),
 * };
 * restorePlugins([p], { d: { version: 1, n: 5 } as { version: number } });
 * console.log(got); // 5
 * ```
 */
export function restorePlugins(
  plugins: readonly Plugin[],
  states: Record<string, DeviceState>,
): void {
  if (typeof states !== "object" || states === null) {
    throw new TypeError("device states must be an object keyed by plugin name");
  }
  const byName = new Map(plugins.map((p) => [p.name, p]));
  for (const name of Object.keys(states)) {
    const p = byName.get(name);
    if (!p?.restore || !p.snapshot) {
      throw new TypeError(
        `device state for "${name}": no such restorable plugin`,
      );
    }
  }
  const targets = plugins.filter((p) => p.restore && p.snapshot);
  for (const p of targets) {
    if (!(p.name in states)) {
      throw new TypeError(`no device state for plugin "${p.name}"`);
    }
  }
  const done: { p: Plugin; before: DeviceState }[] = [];
  try {
    for (const p of targets) {
      const before = p.snapshot!();
      p.restore!(states[p.name]);
      done.push({ p, before });
    }
  } catch (e) {
    for (const { p, before } of done.reverse()) p.restore!(before);
    throw e;
  }
}
