/**
 * The command line's implementation (`cli.ts` is its entry point and
 * public surface): boot an x86-64 ELF64 guest (or a Multiboot v1 kernel)
 * with the standard devices, in this process (no Worker). `cli.ts` runs
 * this module from the bundle `deno task build` makes (`.bundle/cli.js`,
 * see `tools/bundle_cli.ts`) when it is current, else from source.
 *
 * COM1 output goes to stdout, stdin goes to COM1 (raw mode on a terminal;
 * Ctrl-A x quits). Exit codes are listed in `vmm/exit_codes.ts`: 0 guest
 * success, odd codes the guest's debug-exit status, 2 usage error, 66 host
 * file error, 70 VMM failure, 72 guest crashed, 124 timeout, 130
 * interrupted. `--help` lists the options.
 *
 * Only option parsing is loaded up front; the VM, the PCI/virtio code and
 * device modules are imported when a run needs them.
 *
 * @module
 */
import type { Plugin } from "../bus/types.ts";
import {
  type CliConfig,
  isUsageError,
  parseCli,
  USAGE,
} from "./cli_options.ts";
import { ExitCode } from "./exit_codes.ts";
import { checkHostFile, HostFileError, readHostFile } from "./host_file.ts";
import { VERSION } from "./version.ts";
import type { RunResult } from "./vm_types.ts";
import { formatCrashReport } from "./crash_report.ts";

// DENOVMM_START_TIMES=1 (with --allow-env=DENOVMM_START_TIMES) prints the
// ms since the runtime's time origin at which each boot stage ended, one
// `denovmm-start-times {json}` line on stderr (bench/run_start_bench.ts).
const startTimes: Record<string, number> | null =
  Deno.permissions.querySync({ name: "env", variable: "DENOVMM_START_TIMES" })
        .state === "granted" && Deno.env.get("DENOVMM_START_TIMES") === "1"
    ? { module: round(performance.now()) }
    : null;

function mark(stage: string): void {
  if (startTimes) startTimes[stage] = round(performance.now());
}

/** Outcome of {@link main}: exit code and a one-line error, if any. */
export interface CliOutcome {
  /** Process exit code. */
  code: number;
  /** One-line error message. */
  error?: string;
}

/** Largest guest image or module the CLI reads (1 GiB). */
const MAX_IMAGE = 2 ** 30;
/** Largest config file (1 MiB). */
const MAX_CONFIG = 2 ** 20;

function failure(e: unknown): CliOutcome {
  if (isUsageError(e)) {
    return {
      code: ExitCode.Usage,
      error: `${(e as Error).message} (see --help)`,
    };
  }
  if (e instanceof HostFileError) {
    return { code: ExitCode.HostFile, error: e.message };
  }
  return { code: ExitCode.Vmm, error: (e as Error)?.message ?? String(e) };
}

/**
 * Run the CLI with `argv`; returns the exit code instead of exiting.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli_main.ts";
 * const { code } = await main(["guests/build/hello.elf"]);
 * ```
 */
export async function main(argv: string[]): Promise<CliOutcome> {
  let config: CliConfig;
  try {
    const req = parseCli(argv, (p) =>
      new TextDecoder().decode(
        readHostFile(p, { what: "--config", maxBytes: MAX_CONFIG }),
      ));
    if (req.kind === "help") {
      console.log(USAGE);
      return { code: ExitCode.Ok };
    }
    if (req.kind === "version") {
      console.log(
        `denovmm ${VERSION} (deno ${Deno.version.deno}, v8 ${Deno.version.v8})`,
      );
      return { code: ExitCode.Ok };
    }
    config = req.config;
    mark("parsed");
  } catch (e) {
    return failure(e);
  }
  try {
    return await boot(config);
  } catch (e) {
    return failure(e);
  }
}

async function boot(config: CliConfig): Promise<CliOutcome> {
  const t0 = performance.now();
  // --restore: the snapshot says how much RAM, which irqchip, how many vCPUs.
  const snapshots = config.restore || config.snapshotOnExit
    ? await import("./snapshot.ts")
    : null;
  let snap: import("./snapshot.ts").VmSnapshot | undefined;
  if (config.restore) {
    checkHostFile(config.restore, { what: "--restore" });
    try {
      snap = snapshots!.loadSnapshot(config.restore);
    } catch (e) {
      throw new HostFileError(
        "--restore",
        config.restore,
        "invalid",
        (e as Error).message,
        { cause: e },
      );
    }
    config = {
      ...config,
      memory: snap.meta.memorySize,
      irqchip: snap.meta.irqchip,
      vcpus: snap.meta.vcpus ?? 1,
    };
  }
  const image = snap ? new Uint8Array() : readHostFile(config.guest, {
    what: "guest image",
    maxBytes: MAX_IMAGE,
  });
  const modules = config.modules.map((m) => ({
    bytes: readHostFile(m, { what: "--module", maxBytes: MAX_IMAGE }),
    cmdline: m,
  }));
  const { imageKind } = await import("./image_kind.ts");
  const kind = snap ? "snapshot" : imageKind(image);
  if (kind === "elf64" && modules.length > 0) {
    throw new (await import("./options.ts")).OptionError(
      "--module",
      "modules need a Multiboot kernel; the guest is an ELF64 image",
    );
  }
  const env = { irqchip: config.irqchip, memory: config.memory };
  const extra: Plugin[] = [];
  if (config.disks.length > 0 || config.rng) {
    const { virtioPlugins } = await import("./cli_devices.ts");
    const pci = await virtioPlugins(config.disks, config.rng);
    if (pci) extra.push(pci);
  }
  if (config.devices.length > 0) {
    const { devicePlugins } = await import("./cli_devices.ts");
    extra.push(...await devicePlugins(config.devices, env));
  }

  const [
    machineMod,
    io,
    { SerialFeeder, enqueueInRoom },
    { exitCodeOf },
  ] = await Promise.all([
    import("./machine.ts"),
    import("./cli_io.ts"),
    import("../plugins/serial/streams.ts"),
    import("./exit_codes.ts"),
  ]);
  mark("imported");
  const out = new io.OutputSink((b) => Deno.stdout.writeSync(b));
  const log = io.stderrLogger(config.logLevel, () => out.flush());
  const feeder = config.stdin ? new SerialFeeder((b) => enqueue(b)) : null;
  const machineOptions = {
    irqchip: config.irqchip,
    vcpus: config.vcpus,
    memory: config.memory,
    strict: config.strict,
    cpu: config.cpu,
    timerDelivery: config.timer,
    cmdline: config.cmdline,
    serialOutput: (b: number) => out.byte(b),
    log,
    plugins: feeder ? [...extra, feeder.plugin()] : extra,
  };
  // With --stats every plugin's regions are wrapped to count accesses; the
  // machine is then assembled from the same parts createMachine uses.
  const counts: Record<string, { reads: number; writes: number }> = {};
  const stats = config.stats ? await import("./cli_stats.ts") : null;
  let machine: Pick<
    import("./machine.ts").Machine,
    "vm" | "serial" | "pvTimer"
  >;
  if (stats) {
    const std = machineMod.standardPlugins(machineOptions);
    const { createVm } = await import("./vm.ts");
    const vm = createVm({
      ...machineOptions,
      plugins: [...std.plugins, ...machineOptions.plugins].map((p) =>
        stats.countAccesses(p, counts)
      ),
      ignoredPorts: [{
        space: "pio",
        base: machineMod.WIRING.postPort,
        length: 1,
      }],
    });
    machine = { vm, serial: std.serial, pvTimer: std.pvTimer };
  } else {
    machine = machineMod.createMachine(machineOptions);
  }
  const vm = machine.vm;
  mark("created");
  function enqueue(b: Uint8Array): number {
    return enqueueInRoom(machine.serial.uart, b);
  }
  let stopStdin = () => {};
  const ac = new AbortController();
  const onSigint = () => ac.abort(new Error("interrupted (SIGINT)"));
  try {
    try {
      if (snap) {
        vm.restore(snap);
      } else if (kind === "multiboot") {
        vm.loadMultiboot(image, {
          cmdline: config.cmdline ?? "",
          imageName: config.guest,
          modules,
        });
      } else {
        vm.load(image, config.args);
      }
    } catch (e) {
      // the file was read: what the loader refused is its content
      throw new HostFileError(
        snap ? "--restore" : "guest image",
        snap ? config.restore! : config.guest,
        "invalid",
        (e as Error).message,
        { cause: e },
      );
    }
    mark("loaded");
    Deno.addSignalListener("SIGINT", onSigint);
    if (feeder) {
      const raw = Deno.stdin.isTerminal();
      out.crlf = raw && Deno.stdout.isTerminal();
      stopStdin = io.startStdin({
        raw,
        onData: (b) => feeder.push(b),
        onEof: () => {},
        onQuit: () => ac.abort(new Error("quit (Ctrl-A x)")),
        onHelp: () => {
          out.flush();
          Deno.stderr.writeSync(new TextEncoder().encode(io.ESCAPE_HELP));
        },
      });
    }
    const tRun = performance.now();
    const result = await vm.runAsync({
      timeoutMs: config.timeoutMs,
      signal: ac.signal,
      onSlice: () => feeder?.pump(),
    });
    const tEnd = performance.now();
    mark("exited");
    out.flush();
    stopStdin();
    stopStdin = () => {};
    const code = exitCodeOf(result);
    if (
      config.snapshotOnExit &&
      (result.reason === "timeout" || result.reason === "stopped")
    ) {
      vm.snapshot(config.snapshotOnExit);
      log("info", "cli", `snapshot saved to ${config.snapshotOnExit}`);
    }
    if (stats && config.stats) {
      const report = {
        result,
        exitCode: code,
        timeMs: {
          setup: round(tRun - t0),
          run: round(tEnd - tRun),
        },
        vcpu: vm.counters(),
        bus: vm.bus.stats,
        vm: vm.stats,
        devices: counts,
        serial: {
          ...machine.serial.uart.stats,
          stdinBytes: feeder ? feeder.fed + feeder.queued : 0,
          stdinQueued: feeder?.queued ?? 0,
        },
        pvTimer: machine.pvTimer.stats,
        levelResignalQuirk: vm.quirks.levelResignal,
      };
      console.error(
        config.stats === "json"
          ? JSON.stringify(report, null, 2)
          : stats.statsText(report),
      );
    }
    return { code, error: describe(result, config) };
  } finally {
    out.flush();
    stopStdin();
    Deno.removeSignalListener("SIGINT", onSigint);
    vm.close();
    mark("closed");
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function describe(
  r: RunResult,
  config: CliConfig,
): string | undefined {
  switch (r.reason) {
    case "exit":
    case "halt":
    case "poweroff":
      return undefined;
    case "sleep":
      return `guest entered ACPI sleep state S${r.state} (not resumed)`;
    case "timeout":
      return `guest timed out after ${config.timeoutMs} ms (--timeout)`;
    case "stopped":
      return r.detail ?? "stopped";
    default:
      // -v (log level info or debug) adds the whole crash report.
      return `guest ${r.reason}${r.detail ? `: ${r.detail}` : ""}${
        r.crash && (config.logLevel === "info" || config.logLevel === "debug")
          ? `\n${formatCrashReport(r.crash)}`
          : ""
      }`;
  }
}

/**
 * Run the CLI as a process: {@link main}, its error on stderr, then exit
 * with its code. `via` says how `cli.ts` loaded this module (reported
 * with the start times).
 */
export async function runCli(
  argv: string[],
  via: "bundle" | "source",
): Promise<never> {
  if (startTimes) startTimes.bundle = via === "bundle" ? 1 : 0;
  const { code, error } = await main(argv);
  if (error) {
    const tty = Deno.stderr.isTerminal() && !Deno.env.get("NO_COLOR");
    console.error(`${tty ? "\x1b[1;31mdenovmm:\x1b[0m" : "denovmm:"} ${error}`);
  }
  if (startTimes) {
    console.error(`denovmm-start-times ${JSON.stringify(startTimes)}`);
  }
  Deno.exit(code);
}

if (import.meta.main) await runCli(Deno.args, "source");
