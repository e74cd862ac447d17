/**
 * Crash reports end to end: a guest executing an instruction this host
 * cannot emulate, a guest that triple-faults, a strict-mode unclaimed
 * access; the report names RIP, the mode, the registers and the bytes,
 * compactly in `detail` and on the CLI, completely with `-v`.
 */
import assert from "node:assert/strict";
import { formatCrashReport } from "../vmm/crash_report.ts";
import { ExitCode } from "../vmm/exit_codes.ts";
import { bootGuest, guestPath, HAVE_KVM } from "./kvm.ts";

/** The address a guest printed as `<prefix> <hex>`. */
function printed(out: string, re: RegExp): bigint {
  const m = re.exec(out);
  assert.ok(m, `address in\n${out}`);
  return BigInt(`0x${m[1]}`);
}

/** Guest arg -> (name the report gives, bytes). */
const FORBIDDEN: [string, number[]][] = [
  ["int3", [0xcc]],
  ["int n", [0xcd, 0x80]],
  ["xgetbv/xsetbv", [0x0f, 0x01, 0xd0]],
  ["cmpxchg16b", [0xf0, 0x48, 0x0f, 0xc7, 0x0f]],
];

Deno.test({
  name: "crash: forbidden instructions end with a report naming them",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    for (const [i, [name, bytes]] of FORBIDDEN.entries()) {
      await t.step(name, () => {
        const { result, out, machine } = bootGuest("forbidden", [i]);
        using _ = machine;
        const at = printed(out, /executing .* at ([0-9a-f]+)/);
        const c = result.crash;
        assert.ok(c, JSON.stringify(result.detail));
        assert.equal(c.mode, "long64");
        assert.equal(c.regs.rbx, 0x1111222233334444n);
        assert.equal(c.regs.r12, 0xdeadbeefcafef00dn);
        assert.equal(c.control.cr3, 0x9000n);
        if (result.reason === "internal-error") {
          // This project's host: KVM's emulator gives up at the instruction.
          assert.equal(c.rip, at);
          assert.equal(c.instruction.linear, at);
          assert.deepEqual(c.instruction.bytes.slice(0, bytes.length), bytes);
          assert.equal(c.instruction.bytes.length, 15);
          assert.equal(c.instruction.forbidden, name);
          assert.match(c.instruction.hint!, /cannot emulate/);
          assert.equal(c.kvm?.suberror, 1);
          assert.equal(c.kvm?.name, "emulation failure");
          assert.match(
            result.detail!,
            new RegExp(
              `at rip 0x${at.toString(16)} \\(long64\\): ${
                bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ")
              }.*\\[${name}: this host's KVM cannot emulate`,
            ),
          );
        } else {
          // A host that executes it: no IDT, so the exception triple-faults.
          assert.equal(result.reason, "shutdown", result.detail);
          assert.ok(c.rip >= at && c.rip <= at + BigInt(bytes.length));
        }
      });
    }
  },
});

Deno.test({
  name: "crash: a triple fault ends as shutdown with the vCPU's state",
  ignore: !HAVE_KVM,
  fn: () => {
    for (const irqchip of ["kernel", "split"] as const) {
      const { result, out, machine } = bootGuest("triple_fault", [], {
        irqchip,
      });
      using _ = machine;
      const at = printed(out, /ud2 at ([0-9a-f]+)/);
      assert.equal(result.reason, "shutdown", result.detail);
      const c = result.crash!;
      assert.equal(c.rip, at);
      assert.deepEqual(c.instruction.bytes.slice(0, 2), [0x0f, 0x0b]);
      assert.equal(c.instruction.forbidden, undefined);
      assert.equal(c.regs.rbx, 0x1111222233334444n);
      assert.equal(c.regs.r12, 0xdeadbeefcafef00dn);
      assert.equal(c.regs.r13, 0x0123456789abcdefn);
      assert.equal(c.tables.idtLimit, 0);
      assert.equal(c.kvm, undefined);
      assert.match(
        result.detail!,
        new RegExp(
          `triple fault.*at rip 0x${at.toString(16)} \\(long64\\): 0f 0b`,
        ),
      );
      const full = formatCrashReport(c);
      assert.match(full, /r12 deadbeefcafef00d/);
      assert.match(full, /code at 0x[0-9a-f]+: 0f 0b/);
    }
  },
});

Deno.test({
  name: "crash: strict-mode unclaimed accesses carry RIP and the instruction",
  ignore: !HAVE_KVM,
  fn: () => {
    const { result, machine } = bootGuest("ports", [], { strict: true });
    using _ = machine;
    assert.equal(result.reason, "error");
    const c = result.crash!;
    assert.match(
      result.detail!,
      new RegExp(`unclaimed .* 0x60\\w* .* at rip 0x${c.rip.toString(16)} `),
    );
    // RIP is the port instruction (in/out, imm8 or dx form, maybe 0x66).
    const b = c.instruction.bytes;
    const op = b[0] === 0x66 ? b[1] : b[0];
    assert.ok(
      [0xe4, 0xe5, 0xe6, 0xe7, 0xec, 0xed, 0xee, 0xef].includes(op),
      `port instruction at RIP: ${b}`,
    );
    assert.ok(c.rip >= 0x100000n && c.rip < 0x200000n);
  },
});

Deno.test({
  name: "crash: the CLI prints one line, and the whole report with -v",
  ignore: !HAVE_KVM,
  fn: async () => {
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const run = async (...args: string[]) => {
      const o = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-ffi", "--allow-read", cli, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: o.code, err: new TextDecoder().decode(o.stderr) };
    };
    const compact = await run(guestPath("triple_fault"));
    assert.equal(compact.code, ExitCode.GuestCrash);
    assert.match(
      compact.err,
      /^denovmm: guest shutdown: guest triple fault or shutdown at rip 0x[0-9a-f]+ \(long64\): 0f 0b[^\n]*\n$/,
    );
    const full = await run(guestPath("forbidden"), "--arg", "0", "-v");
    assert.equal(full.code, ExitCode.GuestCrash);
    assert.match(full.err, /^denovmm: guest (internal-error|shutdown): /);
    assert.match(full.err, /\nrax [0-9a-f]{16} {2}rbx 1111222233334444/);
    assert.match(full.err, /\nr12 deadbeefcafef00d/);
    assert.match(full.err, /\ncr0 [0-9a-f]{16} {2}cr2/);
    assert.match(full.err, /\ncode at 0x[0-9a-f]+: /);
    if (/internal-error/.test(full.err)) {
      assert.match(full.err, /\nKVM suberror 1 \(emulation failure\)\n/);
      assert.match(full.err, /\nhint: int3: this host's KVM cannot emulate/);
    }
  },
});
