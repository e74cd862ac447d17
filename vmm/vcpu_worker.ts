/**
 * Worker entry for {@link spawnVm}: imports the setup module, posts the VM
 * handle, runs the vCPU loop synchronously, posts the outcome.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { WorkerSetup } from "./worker_host.ts";

/**
 * Import the caller's setup module. Its URL is known only at run time, so
 * no publish-time rewriting applies to it anyway; going through a function
 * keeps `deno publish` from flagging an import it cannot analyze. The
 * specifier is made absolute first (relative ones resolve against this
 * file, as a plain `import()` here would).
 */
const importSetup = new Function("specifier", "return import(specifier)") as (
  specifier: string,
) => Promise<{ default: (args: unknown) => unknown }>;

self.onmessage = async (e: MessageEvent) => {
  const { module, args } = e.data as { module: string; args: unknown };
  let setup: WorkerSetup | undefined;
  try {
    const mod = await importSetup(new URL(module, import.meta.url).href);
    setup = await mod.default(args) as WorkerSetup;
    self.postMessage({ type: "ready", handle: setup.vm.handle });
    const result = setup.vm.run(setup.run);
    const report = setup.report?.();
    self.postMessage({ type: "done", outcome: { result, report } });
  } catch (err) {
    self.postMessage({ type: "error", message: (err as Error).message });
  } finally {
    setup?.vm.close();
  }
};
