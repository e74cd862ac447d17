/**
 * The VM lifecycle (issue 9): views after close and after GC, stops that
 * race with run(), resume after a timeout with the PV timer live.
 */
import assert from "node:assert/strict";
import { createMachine } from "../vmm/machine.ts";
import { createVm } from "../vmm/vm.ts";
import { detectHostQuirks } from "../vmm/quirks.ts";
import { coreVmCount } from "../ffi/core_vm.ts";
import { spawnVm } from "../vmm/worker_host.ts";
import { guestPath, HAVE_KVM, readTicks, threadNames } from "./kvm.ts";

const MSI_PIN = 0xffffffff;

Deno.test({
  name: "lifecycle: views, stops and resume",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    await t.step(
      "a view after close() throws, never touches freed memory",
      () => {
        const a = createVm({});
        const ram = a.memory;
        const sub = ram.view(0x100000, 16);
        sub[0] = 7;
        a.close();
        assert.throws(
          () => ram.read(0x100000, new Uint8Array(1)),
          /VM is closed/,
        );
        assert.throws(() => ram.write(0, new Uint8Array(1)), /VM is closed/);
        assert.equal(sub.length, 0, "live subarrays are detached");
        assert.equal(sub[0], undefined);
        // A new VM B never sees writes through A's old views.
        using b = createVm({});
        assert.throws(() => ram.write(0x100000, new Uint8Array([9])));
        const got = new Uint8Array(1);
        b.memory.read(0x100000, got);
        assert.equal(got[0], 0);
      },
    );

    await t.step("views keep the mapping alive across GC", async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          new URL("./fixtures/view_after_gc.ts", import.meta.url).pathname,
        ],
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const r = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.equal(r.ok, true, "views still read the guest's bytes");
      assert.equal(r.aliveWithViews, 1, "the VM lives while views do");
      assert.equal(r.aliveAfter, 0, "and is released after them");
      assert.match(stderr, /garbage-collected without close\(\)/);
    });

    await t.step(
      "terminate() stops a spinning vCPU and releases the VM",
      async () => {
        const before = coreVmCount();
        const remote = spawnVm(
          new URL("./fixtures/guest_setup.ts", import.meta.url),
          { name: "spin" },
        );
        await remote.ready;
        await new Promise((r) => setTimeout(r, 50)); // in KVM_RUN by now
        await remote.terminate();
        assert.equal(coreVmCount(), before, "VM released");
        const { result } = await remote.done;
        assert.equal(result.reason, "stopped");
        await remote.terminate(); // idempotent
      },
    );

    await t.step("terminate() ends a worker stuck in a plugin", async () => {
      const before = coreVmCount();
      const remote = spawnVm(
        new URL("./fixtures/stuck_setup.ts", import.meta.url),
      );
      await remote.ready;
      await remote.terminate(300);
      assert.equal(coreVmCount(), before, "VM destroyed by handle");
      await assert.rejects(remote.done, /terminated/);
    });

    await t.step("1,000 unclosed machines under ulimit -n 256", async () => {
      const fixture =
        new URL("./fixtures/unclosed_vms.ts", import.meta.url).pathname;
      const out = await new Deno.Command("bash", {
        args: [
          "-c",
          `ulimit -n 256 && exec "$0" run -A "$1"`,
          Deno.execPath(),
          fixture,
        ],
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const r = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.ok(r.maxFds < 256, JSON.stringify(r));
      assert.ok(r.maxLive < 1000, `collected VMs are released: ${r.maxLive}`);
      const warnings = stderr.match(/garbage-collected without close/g);
      assert.equal(warnings?.length, 1, `warned once:\n${stderr}`);
      assert.match(stderr, /unclosed_vms\.ts/, "names where it was created");
    });

    await t.step("a handler that closes the VM mid-dispatch is safe", () => {
      const vm = createVm({
        plugins: [{
          name: "closer",
          setup: () => [{
            range: { space: "pio", base: 0x3f8, length: 8 },
            read: (_a, d) => d.fill(0x60),
            write: () => vm.close(),
          }],
        }],
      });
      vm.load(guestPath("hello"), [1]);
      const r = vm.run({ timeoutMs: 5000 });
      assert.equal(r.reason, "error");
      assert.match(r.detail ?? "", /closed/);
    });

    await t.step("run() after a timeout resumes with the PV timer live", () => {
      using m = createMachine({});
      const n = 60;
      m.vm.load(guestPath("timer"), [1000, n, 0x20, MSI_PIN]);
      const first = m.vm.run({ timeoutMs: 15 });
      assert.equal(first.reason, "timeout");
      let result = first;
      for (let i = 0; i < 50 && result.reason === "timeout"; i++) {
        result = m.vm.run({ timeoutMs: 200 });
      }
      assert.equal(result.reason, "halt", JSON.stringify(result));
      assert.equal(readTicks(m).length, n, "every tick arrived");
      assert.equal(m.vm.armedTimers(), 0);
    });

    await t.step("reset(): 100 cycles boot identically, resources flat", () => {
      for (const irqchip of ["kernel", "split"] as const) {
        let out = "";
        using m = createMachine({
          irqchip,
          serialOutput: (b) => out += String.fromCharCode(b),
        });
        const boot = () => {
          out = "";
          m.vm.load(guestPath("timer"), [200, 5, 0x20, MSI_PIN]);
          const r = m.vm.run({ timeoutMs: 10_000 });
          return `${JSON.stringify(r)} ${out}`;
        };
        const first = boot();
        assert.match(first, /"halt".*done count=5/s);
        const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
        // Our own threads ("dv-…"); V8 and the runtime start theirs lazily.
        const threads = () =>
          threadNames().filter((n) => n.startsWith("dv-")).length;
        const rssKb = () =>
          Number(Deno.readTextFileSync("/proc/self/statm").split(" ")[1]) * 4;
        m.vm.reset();
        assert.equal(boot(), first, `${irqchip}: boots again identically`);
        const before = { fds: fds(), threads: threads(), rss: rssKb() };
        for (let i = 0; i < 100; i++) {
          m.vm.reset();
          assert.equal(boot(), first, `${irqchip}: cycle ${i}`);
        }
        assert.equal(fds(), before.fds, "fds flat");
        assert.equal(threads(), before.threads, "threads flat");
        assert.ok(
          rssKb() - before.rss < 16 * 1024,
          `RSS flat: ${before.rss} KiB -> ${rssKb()} KiB`,
        );
        // A reset zeroes RAM: nothing of the last boot is left.
        m.vm.reset();
        const probe = new Uint8Array(4096);
        m.vm.memory.read(0x100000, probe);
        assert.ok(probe.every((b) => b === 0), "RAM zeroed");
      }
    });

    await t.step("quirks: auto-detected, overridable per VM", () => {
      using auto = createVm({ irqchip: "split" });
      assert.deepEqual(auto.quirks, detectHostQuirks());
      using off = createVm({
        irqchip: "split",
        quirks: { levelResignal: false },
      });
      assert.equal(off.quirks.levelResignal, false);
      // Without the workaround the core never re-signals: a level source's
      // counter stays 0 whatever the host does.
      const src = off.createLevelSource(10);
      assert.equal(src.stats().reinjected, 0);
      src.close();
    });

    await t.step(
      "a refused IOAPIC delivery is a counted drop, not a crash",
      () => {
        const logs: string[] = [];
        using m = createMachine({
          irqchip: "split",
          log: (_l, s, msg) => logs.push(`${s}: ${msg}`),
        });
        const io = (reg: number, value: number) => {
          const d = new Uint8Array(4);
          new DataView(d.buffer).setUint32(0, reg, true);
          m.vm.bus.dispatch("mmio", 0xfec00000, 4, true, d, 0);
          new DataView(d.buffer).setUint32(0, value, true);
          m.vm.bus.dispatch("mmio", 0xfec00010, 4, true, d, 0);
        };
        // Pin 5: vector 0x30, lowest priority, physical destination 0xFF.
        io(0x11 + 2 * 5, 0xff << 24);
        io(0x10 + 2 * 5, 0x30 | (1 << 8));
        for (let i = 0; i < 2000; i++) {
          m.vm.setIrqLine(5, true);
          m.vm.setIrqLine(5, false);
        }
        assert.ok(m.vm.stats.droppedInterrupts >= 1, "drops are counted");
        assert.ok(logs.length <= 20, `bounded logging:\n${logs.join("\n")}`);
        m.vm.load(guestPath("hello"), [1]);
        assert.deepEqual(m.vm.run({ timeoutMs: 5000 }), {
          reason: "exit",
          status: 3,
        });
      },
    );

    await t.step(
      "a stop before run() ends exactly that run (1,000 times)",
      () => {
        using m = createMachine({});
        m.vm.load(guestPath("spin"), []);
        let seed = 0x9e3779b9;
        const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
        for (let i = 0; i < 1000; i++) {
          const stop = rnd() < 0.5;
          if (stop) m.vm.stop();
          const r = m.vm.run({ timeoutMs: 2 });
          assert.equal(r.reason, stop ? "stopped" : "timeout", `run ${i}`);
        }
      },
    );
  },
});
