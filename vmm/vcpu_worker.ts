/**
 * Worker entry for {@link spawnVm}: imports the setup module, posts the VM
 * handle, runs the vCPU loop synchronously, posts the outcome.
 *
 * @module
 */
import type { WorkerSetup } from "./worker_host.ts";
import { importUrl } from "./dynamic_import.ts";
import { host } from "../ffi/host.ts";

const parent = host.parentPort();
parent.onMessage(async (data) => {
  const { module, args } = data as { module: string; args: unknown };
  let setup: WorkerSetup | undefined;
  try {
    const mod = await importUrl(new URL(module, import.meta.url).href) as {
      default: (args: unknown) => unknown;
    };
    setup = await mod.default(args) as WorkerSetup;
    parent.postMessage({ type: "ready", handle: setup.vm.handle });
    const result = setup.vm.run(setup.run);
    const report = setup.report?.();
    // Closed before "done", so the host may terminate this worker at once.
    setup.vm.close();
    parent.postMessage({ type: "done", outcome: { result, report } });
  } catch (err) {
    setup?.vm.close();
    parent.postMessage({ type: "error", message: (err as Error).message });
  }
});
