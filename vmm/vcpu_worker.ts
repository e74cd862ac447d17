/**
 * Worker entry for {@link spawnVm}: imports the setup module, posts the VM
 * handle, runs the vCPU loop synchronously, posts the outcome.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { WorkerSetup } from "./worker_host.ts";

self.onmessage = async (e: MessageEvent) => {
  const { module, args } = e.data as { module: string; args: unknown };
  let setup: WorkerSetup | undefined;
  try {
    const mod = await import(module);
    setup = await mod.default(args) as WorkerSetup;
    self.postMessage({ type: "ready", handle: setup.vm.handle });
    const result = setup.vm.run(setup.run);
    const report = setup.report?.();
    // Closed before "done", so the host may terminate this worker at once.
    setup.vm.close();
    self.postMessage({ type: "done", outcome: { result, report } });
  } catch (err) {
    setup?.vm.close();
    self.postMessage({ type: "error", message: (err as Error).message });
  }
};
