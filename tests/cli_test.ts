/**
 * The CLI as a user runs it: a subprocess per case, asserting exit codes,
 * stdout (guest serial output) and stderr messages. KVM cases are skipped
 * (loudly) without /dev/kvm; option and file errors are checked always.
 */
import assert from "node:assert/strict";
import { ExitCode } from "../vmm/exit_codes.ts";
import { VERSION } from "../vmm/version.ts";
import { failures, guestPath, HAVE_KVM, passes } from "./kvm.ts";

const CLI = decodeURIComponent(new URL("../cli.ts", import.meta.url).pathname);
const FIXTURES = decodeURIComponent(
  new URL("./fixtures/", import.meta.url).pathname,
);

interface Ran {
  code: number;
  out: string;
  err: string;
}

async function cli(
  args: string[],
  options: { stdin?: Uint8Array | string; sigintAfter?: string } = {},
): Promise<Ran> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      CLI,
      ...args,
    ],
    stdin: options.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "" },
  }).spawn();
  const writing = (async () => {
    if (options.stdin === undefined) return;
    const w = child.stdin.getWriter();
    const data = typeof options.stdin === "string"
      ? new TextEncoder().encode(options.stdin)
      : options.stdin;
    await w.write(data).catch(() => {}); // the guest may exit before reading all
    await w.close().catch(() => {});
  })();
  const dec = new TextDecoder();
  let out = "";
  const reading = (async () => {
    for await (const chunk of child.stdout) {
      out += dec.decode(chunk, { stream: true });
      // SIGINT once the guest is known to run (the listener is installed)
      if (
        options.sigintAfter !== undefined && out.includes(options.sigintAfter)
      ) {
        options.sigintAfter = undefined;
        child.kill("SIGINT");
      }
    }
  })();
  const [status, errBytes] = await Promise.all([
    child.status,
    new Response(child.stderr).arrayBuffer(),
    reading,
    writing,
  ]);
  return { code: status.code, out, err: dec.decode(errBytes) };
}

function expectUsage(r: Ran, re: RegExp) {
  assert.equal(r.code, ExitCode.Usage, r.err);
  assert.match(r.err, re);
  assert.doesNotMatch(
    r.err,
    new RegExp(String.fromCharCode(27) + "\\["),
    "no colours when stderr is not a terminal",
  );
  assert.equal(r.err.trim().split("\n").length, 1, `one line: ${r.err}`);
}

Deno.test("cli: options and host files (no VM)", async (t) => {
  await t.step("--version", async () => {
    const r = await cli(["--version"]);
    assert.equal(r.code, 0);
    assert.match(
      r.out,
      new RegExp(`^denovmm ${VERSION.replaceAll(".", "\\.")} \\(deno `),
    );
  });
  await t.step("--help ends with the exit-code paragraph", async () => {
    const r = await cli(["-h"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /^usage: /);
    assert.match(
      r.out,
      /-h, --help +show this help\n[\s\S]*\nexit codes: [^]*124 timeout; 130 interrupted\.\n$/,
    );
  });
  await t.step("usage errors exit 2 with one clear line", async () => {
    expectUsage(
      await cli(["--frobnicate", "x.elf"]),
      /^denovmm: unknown option --frobnicate/,
    );
    expectUsage(
      await cli(["--mem", "abc", "x.elf"]),
      /--mem: "abc" is not a size/,
    );
    expectUsage(
      await cli([
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
        "x.elf",
      ]),
      /at most 4/,
    );
    expectUsage(await cli([]), /no guest image/);
    expectUsage(
      await cli(["--irqchip", "none", "x.elf"]),
      /--irqchip: "none" is not one of kernel, split/,
    );
    expectUsage(await cli(["--timeout", "soon", "x.elf"]), /--timeout/);
    expectUsage(
      await cli(["--disk", "a.img,turbo", "x.elf"]),
      /unknown flag "turbo"/,
    );
  });
  await t.step(
    "host file errors exit 66 naming the file and cause",
    async () => {
      let r = await cli(["/nonexistent/guest.elf"]);
      assert.equal(r.code, ExitCode.HostFile);
      assert.match(
        r.err,
        /guest image "\/nonexistent\/guest.elf": no such file/,
      );
      if (HAVE_KVM) { // the loader (inside a VM) refuses the content
        r = await cli([CLI]);
        assert.equal(r.code, ExitCode.HostFile);
        assert.match(r.err, /guest image ".*cli.ts": .*not an ELF file/);
      }
      r = await cli([FIXTURES]);
      assert.equal(r.code, ExitCode.HostFile);
      assert.match(r.err, /is a directory/);
      r = await cli(["--config", "/nonexistent/vm.json"]);
      assert.equal(r.code, ExitCode.HostFile);
      assert.match(r.err, /--config "\/nonexistent\/vm.json": no such file/);
    },
  );
  await t.step(
    "devices and FIFOs are refused as modules, never read",
    async () => {
      const mb = decodeURIComponent(
        new URL("../guests/build/multiboot_aout.bin", import.meta.url)
          .pathname,
      );
      const fifo = `${Deno.makeTempDirSync()}/fifo`;
      const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assert.ok(mk.success);
      for (const bad of ["/dev/zero", fifo]) {
        const r = await cli([mb, "--module", bad]);
        assert.equal(r.code, ExitCode.HostFile, r.err);
        assert.match(r.err, /--module ".*": is not a regular file/);
      }
      Deno.removeSync(fifo);
      // A module with an ELF64 guest (which cannot take one) is a usage error.
      const hello = decodeURIComponent(
        new URL("../guests/build/hello.elf", import.meta.url).pathname,
      );
      const r = await cli([hello, "--module", CLI]);
      assert.equal(r.code, ExitCode.Usage, r.err);
      assert.match(r.err, /--module: modules need a Multiboot kernel/);
    },
  );
  await t.step("--config content errors exit 2 naming the field", async () => {
    const path = Deno.makeTempFileSync({ suffix: ".json" });
    try {
      Deno.writeTextFileSync(
        path,
        JSON.stringify({ "machine-config": { mem_size_mib: "big" } }),
      );
      expectUsage(
        await cli(["--config", path, "x.elf"]),
        /machine-config.mem_size_mib: expected an integer, got "big"/,
      );
      Deno.writeTextFileSync(
        path,
        JSON.stringify({ drives: [{ path_on_host: "d", readonly: true }] }),
      );
      expectUsage(
        await cli(["--config", path, "x.elf"]),
        /drives\[0\].readonly: unknown field/,
      );
      Deno.writeTextFileSync(path, "{ not json");
      expectUsage(await cli(["--config", path, "x.elf"]), /not valid JSON/);
    } finally {
      Deno.removeSync(path);
    }
  });
});

Deno.test({
  name: "cli: booting guests",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    const hello = guestPath("hello");
    await t.step(
      "cli.ts runs the bundle when current, else the sources, alike",
      async () => {
        const run = async (entry: string) => {
          const r = await new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "--allow-ffi",
              "--allow-read",
              "--allow-env",
              entry,
              hello,
            ],
            env: { DENOVMM_START_TIMES: "1" },
            stdin: "null",
          }).output();
          const err = new TextDecoder().decode(r.stderr);
          const line = err.split("\n").find((l) =>
            l.startsWith("denovmm-start-times ")
          );
          assert.ok(line, err);
          const times = JSON.parse(line.slice(20)) as Record<string, number>;
          for (
            const k of [
              "module",
              "parsed",
              "imported",
              "created",
              "loaded",
              "exited",
              "closed",
            ]
          ) {
            assert.ok(times[k] > 0, `${k} in ${line}`);
          }
          return {
            code: r.code,
            out: new TextDecoder().decode(r.stdout),
            bundle: times.bundle,
          };
        };
        const { currentBundle } = await import("../cli.ts");
        const viaCli = await run(CLI);
        assert.equal(viaCli.bundle, (await currentBundle()) ? 1 : 0);
        const viaSource = await run(CLI.replace(/cli\.ts$/, "vmm/cli_main.ts"));
        assert.equal(viaSource.bundle, 0);
        assert.equal(viaCli.code, 0);
        assert.equal(viaSource.code, 0);
        assert.equal(viaCli.out, viaSource.out);
        assert.match(viaCli.out, /hello/i);
      },
    );
    await t.step("--vcpus 4: the smp guest starts 3 APs", async () => {
      const r = await cli([
        "--vcpus",
        "4",
        "--arg",
        "4",
        "--arg",
        "2",
        guestPath("smp"),
      ]);
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /PASS smp_all_aps_started/);
      assert.match(r.out, /started=3 rounds=2 ap1=2\/2 .*ap2=2\/2 .*ap3=2\/2/);
      assert.doesNotMatch(r.out, /FAIL/);
    });
    await t.step(
      "--snapshot-on-exit, then --restore, ends as an uninterrupted run",
      async () => {
        const guest = [
          guestPath("snapshot"),
          ...["100000", "1000", "5", "0xffffffff"].flatMap((a) => ["--arg", a]),
        ];
        const whole = await cli([...guest, "--timeout", "120s"]);
        assert.equal(whole.code, 0, whole.err);
        const sum = /sum=(0x[0-9a-f]+)/.exec(whole.out)?.[1];
        assert.ok(sum, whole.out);
        const file = `${Deno.makeTempDirSync()}/vm.snap`;
        // Stop it mid-work (shorter timeouts until it is caught running).
        let first = whole;
        for (const ms of [300, 100, 30, 10]) {
          first = await cli([
            ...guest,
            "--timeout",
            `${ms}ms`,
            "--snapshot-on-exit",
            file,
          ]);
          if (first.code === ExitCode.Timeout) break;
        }
        assert.equal(first.code, ExitCode.Timeout, first.err);
        assert.equal(Deno.statSync(file).mode! & 0o777, 0o600);
        const rest = await cli(["--restore", file, "--timeout", "120s"]);
        assert.equal(rest.code, 0, rest.err);
        assert.match(rest.out, new RegExp(`sum=${sum}\\b`));
        expectUsage(
          await cli(["--restore", file, guestPath("hello")]),
          /--restore resumes a snapshot: give no guest image/,
        );
        const bad = await cli(["--restore", guestPath("hello")]);
        assert.equal(bad.code, ExitCode.HostFile, bad.err);
        assert.match(bad.err, /--restore ".*hello.elf": .*snapshot/);
        Deno.removeSync(file);
      },
    );
    await t.step(
      "hello exits 0; --arg 5 passes the guest's status 11 through",
      async () => {
        let r = await cli([hello]);
        assert.equal(r.code, 0, r.err);
        assert.equal(r.out, "hello from denovmm\n");
        assert.equal(r.err, "");
        r = await cli([
          hello,
          "--arg",
          "5",
          "--irqchip",
          "split",
          "--memory",
          "32M",
        ]);
        assert.equal(r.code, 11, r.err);
      },
    );
    await t.step("--config reproduces the flag-built machine", async () => {
      const path = Deno.makeTempFileSync({ suffix: ".json" });
      try {
        Deno.writeTextFileSync(
          path,
          JSON.stringify({
            "boot-source": { kernel_image_path: hello, guest_args: [5] },
            "machine-config": { mem_size_mib: 32, irqchip: "split" },
          }),
        );
        const r = await cli(["--config", path]);
        assert.equal(r.code, 11, r.err);
        assert.equal(r.out, "hello from denovmm\n");
        const o = await cli(["--config", path, "--arg", "0"]); // flags override
        assert.equal(o.code, 0, o.err);
      } finally {
        Deno.removeSync(path);
      }
    });
    await t.step("--timeout exits 124; SIGINT exits 130", async () => {
      let r = await cli([guestPath("spin"), "--timeout", "300ms"]);
      assert.equal(r.code, ExitCode.Timeout, r.err);
      assert.match(r.out, /spinning/);
      assert.match(r.err, /timed out/);
      r = await cli([guestPath("spin"), "--timeout", "0"], {
        sigintAfter: "spinning",
      });
      assert.equal(r.code, ExitCode.Interrupted, r.err);
      assert.match(r.err, /interrupted/);
    });
    await t.step(
      "stdin reaches the guest through COM1 and its echo comes back",
      async () => {
        const lines: string[] = [];
        for (let i = 0; i < 100; i++) {
          lines.push(`line ${i} ${"x".repeat(i % 37)}`);
        }
        const input = lines.join("\n") + "\n";
        let sum = 0;
        for (const b of new TextEncoder().encode(input)) {
          sum = (Math.imul(sum, 31) + b) >>> 0;
        }
        const r = await cli([
          guestPath("serial_echo"),
          "--timeout",
          "60s",
          "--stats",
        ], {
          stdin: input + "quit\n",
        });
        assert.equal(r.code, 0, r.err);
        assert.equal(
          r.out,
          `serial_echo ready\n${input}quit\nbye bytes=${input.length} sum=${
            sum.toString(16)
          }\n`,
        );
        const stats = JSON.parse(r.err);
        assert.equal(stats.serial.overruns, 0);
        assert.equal(stats.serial.received, input.length + 5);
      },
    );
    await t.step(
      "ports passes every check with --device echo or a device module",
      async () => {
        for (
          const dev of [
            ["--device", "echo"],
            ["--device", `${FIXTURES}echo_device.ts`],
            ["--device", `${FIXTURES}echo_device.ts:{"pio":1536}`, "-v"],
          ]
        ) {
          const r = await cli([guestPath("ports"), ...dev]);
          assert.equal(r.code, 0, r.out + r.err);
          assert.deepEqual(failures(r.out), []);
          assert.equal(passes(r.out).length, 59);
          assert.equal(
            /fixture echo attached/.test(r.err),
            dev.includes("-v"),
            r.err,
          );
        }
        const without = await cli([guestPath("ports")]);
        assert.notEqual(without.code, 0);
        assert.equal(without.code % 2, 1, "a guest failure status is odd");
      },
    );
    await t.step("--device errors", async () => {
      expectUsage(
        await cli([hello, "--device", "nosuch"]),
        /not a built-in device/,
      );
      expectUsage(
        await cli([hello, "--device", `${FIXTURES}not_a_device.ts`]),
        /default export must be a factory/,
      );
      const r = await cli([hello, "--device", "/nonexistent/dev.ts"]);
      assert.equal(r.code, ExitCode.HostFile);
      assert.match(
        r.err,
        /--device module "\/nonexistent\/dev.ts": no such file/,
      );
    });
    await t.step(
      "--disk + --rng boot the virtio guest against a file",
      async () => {
        const disk = Deno.makeTempFileSync({ suffix: ".img" });
        try {
          Deno.truncateSync(disk, 64 * 1024);
          const r = await cli([
            guestPath("virtio"),
            "--disk",
            disk,
            "--rng",
            "--timeout",
            "60s",
            "--log-level",
            "error",
          ]);
          // the resize checks need the test's resize hook, absent from the CLI
          assert.deepEqual(
            failures(r.out).filter((f) => !f.startsWith("config_change")),
            [],
            r.out,
          );
          assert.ok(passes(r.out).some((p) => p.startsWith("blk")), r.out);
          assert.doesNotMatch(
            r.err,
            /warn/,
            "--log-level error hides warnings",
          );
          const sector1 = Deno.readFileSync(disk).subarray(512, 1024);
          assert.deepEqual(
            sector1,
            Uint8Array.from({ length: 512 }, (_, i) => (i * 7 + 0x5a) & 0xff),
          );
          const missing = await cli([
            guestPath("virtio"),
            "--disk",
            `${disk}.nope`,
          ]);
          assert.equal(missing.code, ExitCode.HostFile);
          assert.match(missing.err, /--disk ".*\.nope": no such file/);
        } finally {
          Deno.removeSync(disk);
        }
      },
    );
    await t.step(
      "--stats prints JSON with exits and per-device counts",
      async () => {
        const r = await cli([hello, "--stats"]);
        assert.equal(r.code, 0);
        const s = JSON.parse(r.err);
        assert.equal(s.exitCode, 0);
        assert.deepEqual(s.result, { reason: "exit", status: 1 });
        assert.ok(s.vcpu.exits >= 19);
        assert.equal(s.devices["debug-exit"].writes, 1);
        assert.equal(
          s.devices["serial@3f8"].writes,
          "hello from denovmm\n".length,
        );
        assert.equal(s.serial.transmitted, 19);
        const text = await cli([hello, "--stats=text"]);
        assert.match(text.err, /^result:\n {2}reason: exit\n/);
      },
    );
  },
});

Deno.test("README's CLI exit-code table matches ExitCode", () => {
  const readme = Deno.readTextFileSync(
    new URL("../README.md", import.meta.url),
  );
  const section = readme.slice(
    readme.indexOf("### CLI"),
    readme.indexOf("## Architecture"),
  );
  const rows = [...section.matchAll(/^\| `?(\d+)`? +\| (.+?) +\|$/gm)].map((
    m,
  ) => Number(m[1]));
  const fixed = Object.values(ExitCode).filter((c) => c !== 0);
  assert.deepEqual(
    rows.filter((c) => c !== 0 && c % 2 === 0).sort((a, b) => a - b),
    [...fixed].sort((a, b) => a - b),
  );
});
