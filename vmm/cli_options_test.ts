import assert from "node:assert/strict";
import {
  CLI_DEFAULTS,
  type CliConfig,
  isUsageError,
  parseArgv,
  parseCli,
  parseDeviceSpec,
  parseDiskSpec,
  UsageError,
} from "./cli_options.ts";

function run(argv: string[], files: Record<string, string> = {}): CliConfig {
  const r = parseCli(argv, (p) => {
    if (!(p in files)) throw new Error(`unexpected read of ${p}`);
    return files[p];
  });
  assert.equal(r.kind, "run");
  return (r as { config: CliConfig }).config;
}

function usage(argv: string[], re: RegExp, files: Record<string, string> = {}) {
  assert.throws(
    () => parseCli(argv, (p) => files[p]),
    (e: Error) => isUsageError(e) && re.test(e.message),
    argv.join(" "),
  );
}

Deno.test("parseArgv", async (t) => {
  const specs = {
    verbose: { type: "boolean", short: "v", multiple: true },
    memory: { type: "string", short: "m" },
    disk: { type: "string", multiple: true },
    rng: { type: "boolean" },
  } as const;
  await t.step("forms", () => {
    const r = parseArgv(
      [
        "-vv",
        "--memory=32M",
        "--disk",
        "a",
        "--disk=b",
        "x.elf",
        "--",
        "--rng",
      ],
      specs,
    );
    assert.deepEqual(r.values, {
      verbose: [true, true],
      memory: "32M",
      disk: ["a", "b"],
    });
    assert.deepEqual(r.positionals, ["x.elf", "--rng"]);
    assert.equal(parseArgv(["-m16M"], specs).values.memory, "16M");
    assert.equal(parseArgv(["-vm", "8M"], specs).values.memory, "8M");
  });
  await t.step("errors", () => {
    for (
      const [argv, re] of [
        [["--nope"], /unknown option --nope/],
        [["-q"], /unknown option -q/],
        [["--memory"], /option --memory needs a value/],
        [["-m"], /option -m needs a value/],
        [["--rng=yes"], /option --rng takes no value/],
        [["-m", "1", "--memory", "2"], /given twice/],
      ] as const
    ) {
      assert.throws(
        () => parseArgv(argv, specs),
        (e: Error) => e instanceof UsageError && re.test(e.message),
      );
    }
  });
});

Deno.test("parseCli: flags", async (t) => {
  await t.step("defaults", () => {
    const c = run(["g.elf"]);
    assert.deepEqual(c, {
      guest: "g.elf",
      args: [],
      cmdline: undefined,
      modules: [],
      memory: CLI_DEFAULTS.memory,
      irqchip: "kernel",
      vcpus: 1,
      timer: "msi",
      strict: false,
      disks: [],
      rng: false,
      devices: [],
      logLevel: "warn",
      timeoutMs: 10_000,
      stats: null,
      stdin: true,
    });
  });
  await t.step("--cpu: a spec string, or a .json file", () => {
    assert.equal(run(["--cpu", "host,-x2apic", "g.elf"]).cpu, "host,-x2apic");
    const f = Deno.makeTempFileSync({ suffix: ".json" });
    try {
      Deno.writeTextFileSync(f, '{"template":"baseline"}');
      assert.deepEqual(run(["--cpu", f, "g.elf"]).cpu, {
        template: "baseline",
      });
    } finally {
      Deno.removeSync(f);
    }
  });
  await t.step("every flag", () => {
    const c = run([
      "--memory",
      "64",
      "--irqchip",
      "split",
      "--vcpus",
      "4",
      "--timer",
      "gsi",
      "--strict",
      "--disk",
      "a.img,ro",
      "--disk",
      "b.img",
      "--rng",
      "--device",
      "echo",
      "--device",
      './d.ts:{"base":1536}',
      "--arg",
      "0x10",
      "--arg",
      "2",
      "--cmdline",
      "console=ttyS0",
      "--module",
      "m.bin",
      "--timeout",
      "0",
      "--no-stdin",
      "--stats=text",
      "-v",
      "g.elf",
    ]);
    assert.equal(c.memory, 64 * 2 ** 20); // bare number: MiB
    assert.equal(c.irqchip, "split");
    assert.equal(c.vcpus, 4);
    assert.equal(c.timer, "gsi");
    assert.equal(c.strict, true);
    assert.deepEqual(c.disks, [
      { path: "a.img", readOnly: true },
      { path: "b.img", readOnly: false },
    ]);
    assert.equal(c.rng, true);
    assert.deepEqual(c.devices, [
      { module: "echo" },
      { module: "./d.ts", options: { base: 1536 } },
    ]);
    assert.deepEqual(c.args, [16n, 2n]);
    assert.equal(c.cmdline, "console=ttyS0");
    assert.deepEqual(c.modules, ["m.bin"]);
    assert.equal(c.timeoutMs, undefined);
    assert.equal(c.stdin, false);
    assert.equal(c.stats, "text");
    assert.equal(c.logLevel, "info");
  });
  await t.step("--stats alone is json and does not eat the guest path", () => {
    const c = run(["--stats", "g.elf"]);
    assert.equal(c.stats, "json");
    assert.equal(c.guest, "g.elf");
  });
  await t.step("-vv is debug, --log-level, --mem alias, help, version", () => {
    assert.equal(run(["-vv", "g"]).logLevel, "debug");
    assert.equal(run(["--log-level", "error", "g"]).logLevel, "error");
    assert.equal(run(["--mem", "32M", "g"]).memory, 32 * 2 ** 20);
    assert.deepEqual(parseCli(["-h"]), { kind: "help" });
    assert.deepEqual(parseCli(["--version", "g"]), { kind: "version" });
  });
  await t.step("usage errors name the option and value", () => {
    usage([], /no guest image/);
    usage(["a", "b"], /expected one guest image, got 2: a b/);
    usage(["--mem", "abc", "g"], /--mem: "abc" is not a size/);
    usage(["--memory", "100K", "g"], /--memory: .*minimum/);
    usage(["--memory", "1M", "--mem", "1M", "g"], /not both/);
    usage(
      ["--irqchip", "user", "g"],
      /--irqchip: "user" is not one of kernel, split/,
    );
    usage(["--timer", "x", "g"], /--timer: "x"/);
    usage(["--vcpus", "0", "g"], /--vcpus: expected an integer 1..64, got "0"/);
    usage(["--vcpus", "65", "g"], /--vcpus: .*"65"/);
    usage(["--vcpus", "2x", "g"], /--vcpus: .*"2x"/);
    usage(["--timeout", "soon", "g"], /--timeout: "soon" is not a duration/);
    usage([
      "--arg",
      "1",
      "--arg",
      "2",
      "--arg",
      "3",
      "--arg",
      "4",
      "--arg",
      "5",
      "g",
    ], /at most 4/);
    usage(["--arg", "-3", "g"], /--arg: "-3" is not an unsigned integer/);
    usage(["--log-level", "loud", "g"], /--log-level: "loud"/);
    usage(["-v", "--log-level", "info", "g"], /not both/);
    usage(["--stats=xml", "g"], /--stats: "xml"/);
    usage(
      ["--disk", "a.img,fast", "g"],
      /--disk "a.img,fast": unknown flag "fast"/,
    );
    usage(["--disk", ",ro", "g"], /missing path/);
    usage(
      ["--device", "x.ts:{bad", "g"],
      /--device "x.ts:\{bad": options are not valid JSON/,
    );
  });
});

Deno.test("parseCli: --config, flags override", async (t) => {
  const cfg = JSON.stringify({
    "boot-source": {
      kernel_image_path: "k.elf",
      boot_args: "quiet",
      guest_args: [1, "0x2"],
    },
    "machine-config": { vcpu_count: 1, mem_size_mib: 32, irqchip: "split" },
    drives: [{ drive_id: "root", path_on_host: "d.img", is_read_only: true }],
    entropy: {},
    devices: [{ module: "echo" }, { module: "dev.ts", options: { base: 1 } }],
    logger: { level: "Info" },
    timeout: "3s",
  });
  const files = { "conf/vm.json": cfg };
  await t.step("a config builds the same machine as the flags", () => {
    const fromFile = run(["--config", "conf/vm.json"], files);
    const fromFlags = run([
      "--memory",
      "32M",
      "--irqchip",
      "split",
      "--arg",
      "1",
      "--arg",
      "2",
      "--cmdline",
      "quiet",
      "--disk",
      "conf/d.img,ro",
      "--rng",
      "--device",
      "echo",
      "--device",
      'conf/dev.ts:{"base":1}',
      "--log-level",
      "info",
      "--timeout",
      "3s",
      "conf/k.elf",
    ]);
    assert.deepEqual(fromFile, fromFlags);
  });
  await t.step("flags override; lists on the command line replace", () => {
    const c = run(
      [
        "--config",
        "conf/vm.json",
        "--memory",
        "64M",
        "--disk",
        "x.img",
        "other.elf",
      ],
      files,
    );
    assert.equal(c.memory, 64 * 2 ** 20);
    assert.equal(c.guest, "other.elf");
    assert.deepEqual(c.disks, [{ path: "x.img", readOnly: false }]);
    assert.equal(c.irqchip, "split");
  });
});

Deno.test("disk and device specs", () => {
  assert.deepEqual(parseDiskSpec("a,readonly"), { path: "a", readOnly: true });
  assert.deepEqual(parseDiskSpec("a,ro,rw"), { path: "a", readOnly: false });
  assert.deepEqual(parseDeviceSpec("echo"), { module: "echo" });
  assert.deepEqual(parseDeviceSpec("echo:[1]"), {
    module: "echo",
    options: [1],
  });
  assert.deepEqual(parseDeviceSpec("/a:b/x.ts"), { module: "/a:b/x.ts" });
});
