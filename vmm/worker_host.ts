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
import { CoreVmRef } from "../ffi/core_vm.ts";
import { host } from "../ffi/host.ts";
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

/** A VM running in a Worker (`await using` terminates it). */
export interface RemoteVm extends AsyncDisposable {
  /** The VM handle, once the worker has created the VM. */
  readonly ready: Promise<number>;
  /** Resolves when the run ends (rejects if setup or the worker failed). */
  readonly done: Promise<WorkerOutcome>;
  /** Stop the vCPU (sticky); resolves once the stop was requested. */
  stop(): Promise<void>;
  /**
   * Stop the vCPU, wait for the worker to close the VM, then end the
   * worker. A worker that does not answer within `graceMs` (a plugin stuck
   * in a loop) is ended anyway and its VM destroyed by handle. Resolves
   * once the VM is released; `done` then settles (with the run's result,
   * or rejected as terminated). Idempotent.
   */
  terminate(graceMs?: number): Promise<void>;
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
  const worker = host.spawnWorker(new URL("./vcpu_worker.ts", import.meta.url));
  let handle: number | undefined;
  let readyResolve!: (h: number) => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<number>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  let settle!: (e: Error) => void;
  const done = new Promise<WorkerOutcome>((resolve, reject) => {
    settle = reject; // no-op once settled
    worker.onMessage((data) => {
      const m = data as {
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
    });
    worker.onError((message) => {
      worker.terminate();
      const err = new Error(`vCPU worker failed: ${message}`);
      readyReject(err);
      reject(err);
    });
  });
  ready.catch(() => {});
  done.catch(() => {}); // terminate() may reject it; callers see it if they wait
  worker.postMessage({
    module: String(setupModule),
    args,
    libraryPath: options.libraryPath,
  });
  let terminating: Promise<void> | undefined;
  const terminate = async (graceMs: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const within = <T>(p: Promise<T>, late: T) =>
      Promise.race([
        p,
        new Promise<T>((r) => timer = setTimeout(() => r(late), graceMs)),
      ]).finally(() => clearTimeout(timer));
    const h = await within(ready.catch(() => undefined), undefined);
    if (h === undefined) {
      // Setup failed or hangs: no VM handle reached us to release.
      worker.terminate();
      settle(new Error("vCPU worker terminated during setup"));
      return;
    }
    try {
      stopVm(h, options.libraryPath);
    } catch {
      // already closed: the run ended on its own
    }
    const answered = await within(done.then(() => true, () => true), false);
    worker.terminate();
    // The worker's JS can no longer touch the VM's memory: release it.
    if (!answered) new CoreVmRef(h, options.libraryPath).destroyOrphan();
    settle(new Error("vCPU worker terminated"));
  };
  return {
    ready,
    done,
    async stop() {
      const h = handle ?? await ready;
      stopVm(h, options.libraryPath);
    },
    terminate(graceMs = 5000) {
      terminating ??= terminate(graceMs);
      return terminating;
    },
    [Symbol.asyncDispose]() {
      terminating ??= terminate(5000);
      return terminating;
    },
  };
}
