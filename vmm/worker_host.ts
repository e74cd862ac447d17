/**
 * Run a VM's vCPU loop in a Worker so the calling thread stays free, and
 * stop it from outside by handle.
 *
 * The worker imports a *setup module* whose default export builds the VM
 * (plugins are functions, so they cannot cross threads: they are created
 * inside the worker):
 *
 * ```ts ignore
 * // my_guest.ts
 * import { createMachine } from "@denovmm/vmm";
 * export default (args: { path: string }) => {
 *   const m = createMachine({});
 *   m.vm.load(args.path);
 *   return { vm: m.vm };
 * };
 * ```
 *
 * @module
 */
import type { RunOptions, RunResult, Vm } from "./vm.ts";
import { stopVm } from "./vm.ts";

/** What a setup module's default export returns. */
export interface WorkerSetup {
  /** The VM to run. */
  vm: Vm;
  /** Options for `vm.run`. */
  run?: RunOptions;
  /** Called after the run; its result is posted back as `report`. */
  report?: () => unknown;
}

/** The message a worker posts when the run ends. */
export interface WorkerOutcome {
  /** How the run ended. */
  result: RunResult;
  /** The setup's `report()` value, if any. */
  report?: unknown;
}

/** A VM running in a Worker. */
export interface RemoteVm {
  /** The VM handle, once the worker has created the VM. */
  readonly ready: Promise<number>;
  /** Resolves when the run ends (rejects if setup or the worker failed). */
  readonly done: Promise<WorkerOutcome>;
  /** Stop the vCPU (sticky); resolves once the stop was requested. */
  stop(): Promise<void>;
  /** Kill the worker (the VM is destroyed with its thread's objects). */
  terminate(): void;
}

/**
 * Start `setupModule` in a Worker and run the VM it returns.
 *
 * @example
 * ```ts ignore
 * import { spawnVm } from "./worker_host.ts";
 * const remote = spawnVm(new URL("./my_guest.ts", import.meta.url), { path: "guest.elf" });
 * await remote.ready;
 * setTimeout(() => remote.stop(), 100);
 * console.log((await remote.done).result);
 * ```
 */
export function spawnVm(
  setupModule: string | URL,
  args: unknown = {},
  options: { libraryPath?: string } = {},
): RemoteVm {
  const worker = new Worker(new URL("./vcpu_worker.ts", import.meta.url), {
    type: "module",
  });
  let handle: number | undefined;
  let readyResolve!: (h: number) => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<number>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  const done = new Promise<WorkerOutcome>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent) => {
      const m = e.data as {
        type: string;
        handle?: number;
        message?: string;
        outcome?: WorkerOutcome;
      };
      if (m.type === "ready") {
        handle = m.handle!;
        readyResolve(handle);
      } else if (m.type === "done") {
        worker.terminate();
        resolve(m.outcome!);
      } else if (m.type === "error") {
        worker.terminate();
        const err = new Error(m.message);
        readyReject(err);
        reject(err);
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      const err = new Error(`vCPU worker failed: ${e.message}`);
      readyReject(err);
      reject(err);
    };
  });
  ready.catch(() => {});
  worker.postMessage({
    module: String(setupModule),
    args,
    libraryPath: options.libraryPath,
  });
  return {
    ready,
    done,
    async stop() {
      const h = handle ?? await ready;
      stopVm(h, options.libraryPath);
    },
    terminate() {
      worker.terminate();
    },
  };
}
