/**
 * End-to-end tests of the core pipeline (guest → core → FFI → bus →
 * plugin → interrupt back) on /dev/kvm.
 */
import assert from "node:assert/strict";
import { CoreError } from "../ffi/library.ts";
import { echoPlugin } from "../plugins/echo/plugin.ts";
import { createMachine } from "../vmm/machine.ts";
import { createVm, interruptVm, stopVm } from "../vmm/vm.ts";
import { spawnVm } from "../vmm/worker_host.ts";
import { bootGuest, failures, guestPath, HAVE_KVM, passes } from "./kvm.ts";
import type { Region } from "../bus/types.ts";

const echoes = () => [
  echoPlugin({ space: "pio", base: 0x600 }),
  echoPlugin({ space: "mmio", base: 0xd0000000 }),
];

Deno.test({
  name: "boot: guests on KVM",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    await t.step("hello prints and exits with (arg << 1) | 1", () => {
      const { result, out, machine } = bootGuest("hello", [21]);
      using _ = machine;
      assert.deepEqual(result, { reason: "exit", status: 43 });
      assert.match(out, /hello from denovmm/);
      assert.equal(machine.vm.exitStatus, 43);
    });

    await t.step(
      "ports: 1/2/4(/8)-byte PIO and MMIO through a TS plugin",
      () => {
        for (const irqchip of ["kernel", "split"] as const) {
          const { result, out, machine } = bootGuest("ports", [], {
            irqchip,
            plugins: echoes(),
          });
          using _ = machine;
          assert.deepEqual(failures(out), [], out);
          assert.ok(passes(out).length >= 50, out);
          assert.deepEqual(result, { reason: "exit", status: 1 });
          const c = machine.vm.counters();
          assert.ok(c.forwarded > 50, JSON.stringify(c));
          assert.ok(machine.vm.bus.stats.dispatched >= c.forwarded - 1);
        }
      },
    );

    await t.step("selfipi: LAPIC self-IPI delivered once, iretq back", () => {
      for (const irqchip of ["kernel", "split"] as const) {
        const { result, out, machine } = bootGuest("selfipi", [], { irqchip });
        using _ = machine;
        assert.deepEqual(failures(out), [], out);
        assert.deepEqual(passes(out), [
          "selfipi_first_delivered",
          "selfipi_second_delivered_once",
        ]);
        assert.deepEqual(result, { reason: "exit", status: 1 });
      }
    });

    await t.step(
      "the Rust fast path answers port 0x80 without TypeScript",
      () => {
        const { result, machine } = bootGuest("exits", [0x80, 500]);
        using _ = machine;
        assert.equal(result.reason, "exit");
        const c = machine.vm.counters();
        assert.ok(c.fastPath >= 500, JSON.stringify(c));
        assert.ok(c.forwarded < 5, JSON.stringify(c));
      },
    );

    await t.step("unclaimed ports read all-ones and are counted", () => {
      const { out, machine } = bootGuest("ports");
      using _ = machine;
      assert.ok(failures(out).length > 0, "no echo device: checks must fail");
      const c = machine.vm.counters();
      assert.ok(
        c.unclaimedReads > 0 && c.unclaimedWrites > 0,
        JSON.stringify(c),
      );
      assert.match(out, /got=0xff\b|got=0xffff|got=0xffffffff/);
    });

    await t.step("strict mode fails the run on an unclaimed access", () => {
      const { result, machine } = bootGuest("ports", [], { strict: true });
      using _ = machine;
      assert.equal(result.reason, "error");
      assert.match(
        result.detail!,
        /unclaimed (read of|write to) (port|MMIO) 0x60/,
      );
    });

    await t.step("a run timeout ends a spinning guest", () => {
      const t0 = performance.now();
      const { result, out, machine } = bootGuest("spin", [], {
        timeoutMs: 150,
      });
      using _ = machine;
      assert.equal(result.reason, "timeout");
      assert.match(out, /spinning/);
      assert.ok(performance.now() - t0 < 5000);
    });

    await t.step(
      "stop() from the main thread ends a vCPU spinning in a Worker",
      async () => {
        const remote = spawnVm(
          new URL("./fixtures/guest_setup.ts", import.meta.url),
          { name: "spin" },
        );
        await remote.ready;
        await new Promise((r) => setTimeout(r, 100));
        const t0 = performance.now();
        await remote.stop();
        const { result } = await remote.done;
        const ms = performance.now() - t0;
        assert.equal(result.reason, "stopped");
        assert.ok(ms < 1000, `stop took ${ms} ms`);
      },
    );

    await t.step("the main thread stays free while the vCPU runs", async () => {
      const remote = spawnVm(
        new URL("./fixtures/guest_setup.ts", import.meta.url),
        { name: "spin" },
      );
      const h = await remote.ready;
      let ticks = 0;
      const id = setInterval(() => ticks++, 5);
      await new Promise((r) => setTimeout(r, 100));
      clearInterval(id);
      stopVm(h);
      assert.equal((await remote.done).result.reason, "stopped");
      assert.ok(ticks >= 5, `main thread timer ran ${ticks} times`);
    });

    await t.step(
      "request_virtual_interrupt from another thread while the vCPU runs",
      async () => {
        // timer guest: counts 20 interrupts on vector 0x20, then halts; its PV
        // timer is armed at 10 s, so every interrupt here comes from us
        const remote = spawnVm(
          new URL("./fixtures/guest_setup.ts", import.meta.url),
          { name: "timer", args: [10_000_000, 20, 0x20, 0xffffffff] },
        );
        const h = await remote.ready;
        await new Promise((r) => setTimeout(r, 50));
        for (let i = 0; i < 20; i++) {
          interruptVm(h, 0x20);
          await new Promise((r) => setTimeout(r, 5));
        }
        const { result, report } = await remote.done;
        assert.equal(result.reason, "halt");
        assert.match((report as { out: string }).out, /done count=20\b/);
      },
    );

    await t.step("a stop before run() ends exactly the next run", () => {
      using m = createMachine({});
      m.vm.load(guestPath("hello"), [1]);
      m.vm.stop();
      // A stop is never lost: the next run returns it and consumes it...
      assert.deepEqual(m.vm.run({ timeoutMs: 5000 }), { reason: "stopped" });
      // ...and the run after that resumes the guest.
      assert.deepEqual(m.vm.run({ timeoutMs: 5000 }), {
        reason: "exit",
        status: 3,
      });
    });

    await t.step("two VMs in one process, interleaved", async () => {
      using a = createMachine({});
      using b = createMachine({ irqchip: "split" });
      a.vm.load(guestPath("hello"), [1]);
      b.vm.load(guestPath("hello"), [2]);
      assert.notEqual(a.vm.handle, b.vm.handle);
      assert.deepEqual(b.vm.run({ timeoutMs: 5000 }), {
        reason: "exit",
        status: 5,
      });
      assert.deepEqual(a.vm.run({ timeoutMs: 5000 }), {
        reason: "exit",
        status: 3,
      });
      // and two at once, each in its own worker
      const runs = [3, 4].map((arg) =>
        spawnVm(new URL("./fixtures/guest_setup.ts", import.meta.url), {
          name: "hello",
          args: [arg],
        }).done
      );
      const results = await Promise.all(runs);
      assert.deepEqual(results.map((r) => r.result.status), [7, 9]);
    });

    await t.step("a plugin returning a Promise fails the run clearly", () => {
      const bad: Region = {
        range: { space: "pio", base: 0x600, length: 16 },
        read: () => {},
        write: (() => Promise.resolve()) as unknown as Region["write"],
      };
      using m = createMachine({
        plugins: [{ name: "async", setup: () => [bad] }],
      });
      m.vm.load(guestPath("ports"));
      const r = m.vm.run({ timeoutMs: 5000 });
      assert.equal(r.reason, "error");
      assert.match(r.detail!, /synchronous/);
    });

    await t.step("overlapping plugins are refused", () => {
      assert.throws(
        () =>
          createMachine({
            plugins: [echoPlugin({ space: "pio", base: 0x3f8 })],
          }),
        (e: unknown) => e instanceof RangeError && /overlaps/.test(e.message),
      );
    });
  },
});

Deno.test({
  name: "boot: bad input is a clear error, never a crash",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    await t.step("not an ELF / not ELF64 / hostile headers", () => {
      using m = createMachine({});
      const vm = m.vm;
      assert.throws(
        () => vm.load(new TextEncoder().encode("hello")),
        (e: unknown) =>
          e instanceof CoreError && /not an ELF file/.test(e.message),
      );
      const elf32 = new Uint8Array(64);
      elf32.set([0x7f, 0x45, 0x4c, 0x46, 1, 1]);
      assert.throws(() => vm.load(elf32), /not an ELF64/);
      const real = Deno.readFileSync(guestPath("hello"));
      const broken = real.slice();
      new DataView(broken.buffer).setBigUint64(32, 0xffffffffn, true); // e_phoff
      assert.throws(() => vm.load(broken), /program headers lie outside/);
      vm.load(real, [1]);
      assert.deepEqual(vm.run({ timeoutMs: 5000 }), {
        reason: "exit",
        status: 3,
      });
    });

    await t.step("memory sizes are checked", () => {
      assert.throws(
        () => createVm({ memory: "1M" }),
        /memory: 1M is below the minimum of 2M/,
      );
      assert.throws(() => createVm({ memory: "2T" }), /memory: 2T is above/);
      assert.throws(
        () => createVm({ memory: "lots" }),
        /memory: "lots" is not a size/,
      );
    });

    await t.step("closed VMs and bogus handles are errors", () => {
      const vm = createVm({});
      const h = vm.handle;
      vm.close();
      vm.close(); // idempotent
      assert.throws(() => vm.run(), /VM is closed/);
      assert.throws(
        () => stopVm(h),
        (e: unknown) =>
          e instanceof CoreError && e.code === -1 &&
          /unknown or closed VM handle/.test(e.message),
      );
      assert.throws(() => stopVm(0xdeadbeef), CoreError);
    });

    await t.step("guest memory views are bounds-checked", () => {
      using vm = createVm({ memory: "4M" });
      assert.equal(vm.memory.size, 4 << 20);
      assert.throws(() => vm.memory.view((4 << 20) - 2, 4), RangeError);
      assert.throws(() => vm.memory.read(-1, new Uint8Array(1)), RangeError);
      vm.memory.write(0x300000, new Uint8Array([1, 2, 3]));
      assert.deepEqual([...vm.memory.view(0x300000, 3)], [1, 2, 3]);
    });

    await t.step("MSI and interrupt requests are validated", () => {
      using vm = createVm({});
      assert.throws(
        () => vm.signalMsi({ address: 0xdead0000, data: 0x30 }),
        /outside 0xFEE00000/,
      );
      assert.throws(() => vm.requestVirtualInterrupt(3), /vector 3/);
      assert.throws(() => vm.requestVirtualInterrupt(0x30, 999), /destination/);
      assert.equal(typeof vm.requestVirtualInterrupt(0x30), "boolean");
    });
  },
});

Deno.test({
  name: "cli: exit codes and one-line errors",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const run = async (...args: string[]) => {
      const o = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-ffi", "--allow-read", cli, ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return {
        code: o.code,
        out: dec.decode(o.stdout),
        err: dec.decode(o.stderr),
      };
    };
    await t.step(
      "hello: serial to stdout, exit code = guest status",
      async () => {
        const r = await run(guestPath("hello"), "--arg", "5");
        assert.equal(r.code, 11, r.err);
        assert.match(r.out, /hello from denovmm/);
      },
    );
    await t.step("split irqchip and PV halt (exit 0)", async () => {
      const r = await run(
        guestPath("timer"),
        "--irqchip",
        "split",
        "--arg",
        "1000",
        "--arg",
        "20",
        "--arg",
        "32",
        "--arg",
        "0xffffffff",
      );
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /count=20/);
    });
    await t.step(
      "a Multiboot kernel with command line and module",
      async () => {
        const mod = Deno.makeTempFileSync({ prefix: "denovmm-mod-" });
        try {
          Deno.writeTextFileSync(mod, "MODULE0 from the CLI");
          const r = await run(
            decodeURIComponent(
              new URL("../guests/build/multiboot_elf32.elf", import.meta.url)
                .pathname,
            ),
            "--cmdline",
            "denovmm-multiboot-test arg=42",
            "--module",
            mod,
          );
          assert.equal(r.code, 0, r.out + r.err); // 0 failures: success
          assert.match(r.out, /PASS fwcfg_cmdline/);
          assert.doesNotMatch(r.out, /FAIL/);
        } finally {
          Deno.removeSync(mod);
        }
      },
    );
    await t.step("timeout", async () => {
      const r = await run(guestPath("spin"), "--timeout", "200ms");
      assert.equal(r.code, 124);
      assert.match(r.err, /^denovmm: guest timed out after 200 ms/);
    });
    await t.step("missing file, not an ELF, bad option", async () => {
      let r = await run("/nonexistent/guest.elf");
      assert.equal(r.code, 66);
      assert.match(
        r.err,
        /^denovmm: guest image "\/nonexistent\/guest.elf": no such file\n$/,
      );
      r = await run(cli);
      assert.equal(r.code, 66);
      assert.match(r.err, /not an ELF file/);
      assert.equal(r.err.trim().split("\n").length, 1);
      r = await run(guestPath("hello"), "--irqchip", "bogus");
      assert.equal(r.code, 2);
      r = await run("--help");
      assert.equal(r.code, 0);
      assert.match(r.out, /usage:/);
    });
  },
});
