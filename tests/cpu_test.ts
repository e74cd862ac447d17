/**
 * CPU models end to end: the `cpuid` guest reads CPUID under each template
 * and flag and must see the table the host set (vendor, signature, brand,
 * feature bits, topology, hypervisor and TSC leaves); the `x2apic` guest
 * checks that hiding x2APIC really hides it (the MSRs fault, xAPIC MMIO
 * works); unsupported features fail with the feature's name.
 */
import assert from "node:assert/strict";
import { CoreCode } from "../ffi/abi.ts";
import { CoreError } from "../ffi/library.ts";
import { createVm } from "../vmm/vm.ts";
import type { Vm } from "../vmm/vm.ts";
import type { CpuOption } from "../vmm/cpu_spec.ts";
import { bootGuest, failures, HAVE_KVM, passes } from "./kvm.ts";

type Regs = [number, number, number, number];

/** The guest's `key=value` lines. */
function parse(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of out.split("\n")) {
    const i = l.indexOf("=");
    if (i > 0 && !l.startsWith("PASS") && !l.startsWith("FAIL")) {
      m.set(l.slice(0, i), l.slice(i + 1).trim());
    }
  }
  return m;
}

const words = (s: string | undefined): Regs => {
  assert.ok(s, "guest printed the leaf");
  const w = s.split(",").map((h) => parseInt(h, 16) >>> 0);
  return [w[0], w[1], w[2], w[3]];
};

/** Leaves the guest prints, by key: [leaf, subleaf]. */
const LEAVES: Record<string, [number, number]> = {
  "leaf1": [1, 0],
  "leaf7": [7, 0],
  "leafb.0": [0xb, 0],
  "leafb.1": [0xb, 1],
  "leafb.2": [0xb, 2],
  "leafd.0": [0xd, 0],
  "leaf15": [0x15, 0],
  "ext1": [0x8000_0001, 0],
  "ext8": [0x8000_0008, 0],
  "hv0": [0x4000_0000, 0],
  "hv1": [0x4000_0001, 0],
  "hv10": [0x4000_0010, 0],
};

/** What the guest saw and what the host set, for one CPU option. */
interface Seen {
  guest: Map<string, string>;
  table: Map<string, Regs | null>;
  out: string;
}

function runCpuid(cpu: CpuOption | undefined, irqchip: "kernel" | "split") {
  const table = new Map<string, Regs | null>();
  const b = bootGuest("cpuid", [], { cpu, irqchip }, (vm: Vm) => {
    for (const [k, [l, s]] of Object.entries(LEAVES)) {
      table.set(k, vm.cpuid(l, s));
    }
    table.set("leaf0", vm.cpuid(0));
    table.set("ext0", vm.cpuid(0x8000_0000));
    for (let i = 0; i < 3; i++) {
      table.set(`brand${i}`, vm.cpuid(0x8000_0002 + i));
    }
  });
  using _ = b.machine;
  assert.equal(b.result.reason, "exit", b.out + b.result.detail);
  assert.deepEqual(failures(b.out), [], b.out);
  assert.ok(passes(b.out).includes("leaf1_apic_id_is_lapic_id"), b.out);
  return { guest: parse(b.out), table, out: b.out };
}

const text = (regs: number[]) =>
  new TextDecoder().decode(
    new Uint8Array(new Uint32Array(regs).buffer),
  ).replace(/\0+$/, "");

/** Leaves 7 and 0xD that this host answered from the physical CPU. */
const passthrough = new Set<string>();

/**
 * The guest sees the host's table: exactly for every leaf, except runtime
 * bits KVM keeps itself (OSXSAVE, APIC enable, OSPKE, the XSAVE size for
 * the current XCR0), and leaf 1's feature bits outside what KVM reports
 * (`hostTable`), which a host emulating CPUID may answer from the
 * physical CPU. Leaves 7 and 0xD are the table's or, on such a host,
 * untouched by every template (what the `host` guest saw).
 */
function assertSeesTable(s: Seen, host: Seen, label: string) {
  const g = s.guest;
  const t = (k: string): Regs => s.table.get(k) ?? [0, 0, 0, 0];
  const leaf0 = t("leaf0");
  assert.equal(g.get("vendor"), text([leaf0[1], leaf0[3], leaf0[2]]), label);
  assert.equal(parseInt(g.get("max_basic")!, 16), leaf0[0], label);
  assert.equal(parseInt(g.get("max_ext")!, 16), t("ext0")[0], label);
  const brand = [0, 1, 2].flatMap((i) => t(`brand${i}`));
  assert.equal(g.get("brand") ?? "", text(brand), label);
  for (const k of Object.keys(LEAVES)) {
    const want = t(k);
    if (!g.has(k)) {
      // The guest skips leaves beyond the maxima it read.
      if (k === "hv1" || k === "hv10") {
        assert.ok(g.get("hv_sig") !== "KVMKVMKVM" || k === "hv10", label);
      }
      continue;
    }
    const have = words(g.get(k));
    if (k === "leaf1") {
      const known = (i: number, ignore: number) =>
        ((host.table.get("leaf1") ?? [0, 0, 0, 0])[i] | want[i]) & ~ignore;
      assert.equal(have[0], want[0], `${label} ${k} eax`);
      assert.equal(have[1], want[1], `${label} ${k} ebx`);
      const ecx = known(2, 1 << 27);
      const edx = known(3, 1 << 9);
      assert.equal(
        (have[2] & ecx) >>> 0,
        (want[2] & ecx) >>> 0,
        `${label} leaf1 ecx`,
      );
      assert.equal(
        (have[3] & edx) >>> 0,
        (want[3] & edx) >>> 0,
        `${label} leaf1 edx`,
      );
    } else if (k === "leaf7" || k === "leafd.0") {
      const norm = (r: Regs): Regs =>
        k === "leaf7" ? [r[0], r[1], r[2] & ~(1 << 4), r[3]] : [
          r[0],
          0,
          r[2],
          r[3],
        ];
      if (JSON.stringify(norm(have)) !== JSON.stringify(norm(want))) {
        assert.deepEqual(
          have,
          words(host.guest.get(k)),
          `${label} ${k}: neither the table nor the host's answer`,
        );
        passthrough.add(k);
      }
    } else {
      assert.deepEqual(have, want, `${label} ${k}`);
    }
  }
}

const bit = (r: Regs | null | undefined, reg: number, b: number) =>
  r ? ((r[reg] >>> b) & 1) === 1 : false;

Deno.test({
  name: "cpu: the guest sees each template and flag",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    const host = runCpuid(undefined, "kernel");
    await t.step("host (default), both irqchip modes", () => {
      assertSeesTable(host, host, "host");
      assert.equal(host.guest.get("hv_sig"), "KVMKVMKVM");
      const hv10 = words(host.guest.get("hv10"));
      assert.ok(hv10[0] > 100_000, "TSC kHz in 0x40000010");
      assert.equal(hv10[1], 1_000_000, "LAPIC bus kHz");
      assert.ok(bit(host.table.get("leaf1"), 2, 24), "tsc-deadline offered");
      const split = runCpuid("host", "split");
      assertSeesTable(split, host, "host split");
    });
    const cases: [string, CpuOption, (s: Seen) => void][] = [
      ["-x2apic,-hypervisor", "host,-x2apic,-hypervisor", (s) => {
        const l1 = words(s.guest.get("leaf1"));
        assert.equal(bit(l1, 2, 21), false, "x2APIC hidden");
        assert.equal(bit(l1, 2, 31), false, "hypervisor bit hidden");
      }],
      ["+tsc-deadline,-pcid", "host,-tsc-deadline,+tsc-deadline,-pcid", (s) => {
        const l1 = words(s.guest.get("leaf1"));
        assert.equal(bit(l1, 2, 24), true);
        assert.equal(bit(l1, 2, 17), false);
      }],
      ["baseline", "baseline", (s) => {
        const ext1 = words(s.guest.get("ext1"));
        // syscall, nx, lm only; no lahf/abm/svm...
        assert.equal(ext1[2], 0);
        assert.equal(ext1[3], (1 << 11) | (1 << 20) | (1 << 29));
        assert.equal(bit(words(s.guest.get("leaf1")), 2, 13), false, "cx16");
        assert.ok(bit(words(s.guest.get("leaf1")), 2, 21), "x2apic kept");
      }],
      ["baseline as an object", {
        template: "baseline",
        features: { x2apic: false },
      }, (s) => {
        assert.equal(bit(words(s.guest.get("leaf1")), 2, 21), false);
      }],
      [
        "vendor/family/model/stepping/brand",
        "host,vendor=intel,family=6,model=0x55,stepping=4,brand=denovmm test CPU",
        (s) => {
          assert.equal(s.guest.get("vendor"), "GenuineIntel");
          assert.equal(words(s.guest.get("leaf1"))[0], 0x50654);
          assert.equal(s.guest.get("brand"), "denovmm test CPU");
          const l15 = words(s.guest.get("leaf15"));
          const hz = l15[2] * l15[1] / l15[0];
          assert.equal(hz, words(s.guest.get("hv10"))[0] * 1000, "0x15 TSC");
        },
      ],
      ["kvm=off (paravirt leaves hidden)", { kvm: false }, (s) => {
        assert.equal(s.guest.get("hv_sig"), "none");
      }],
      ["tsc-leaves=off", "host,tsc-leaves=off", (s) => {
        assert.equal(s.guest.get("hv_max"), "40000001");
        assert.equal(s.guest.has("hv10"), false);
      }],
      ["-kvm-pv-unhalt", "host,-kvm-pv-unhalt", (s) => {
        assert.equal(bit(words(s.guest.get("hv1")), 0, 7), false);
      }],
    ];
    for (const [name, cpu, check] of cases) {
      await t.step(name, () => {
        const s = runCpuid(cpu, "kernel");
        assertSeesTable(s, host, name);
        check(s);
      });
    }
    if (passthrough.size) {
      console.error(
        `cpu_test: this host answers CPUID leaves ${
          [...passthrough].join(", ")
        } from the physical CPU whatever the table says (see README)`,
      );
    }
  },
});

Deno.test({
  name: "cpu: hiding x2APIC really hides it",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    for (const irqchip of ["kernel", "split"] as const) {
      for (const hidden of [true, false]) {
        await t.step(`${hidden ? "-x2apic" : "host"}, ${irqchip}`, () => {
          const b = bootGuest("x2apic", [hidden ? 1 : 0], {
            irqchip,
            cpu: hidden ? "host,-x2apic" : "host",
          });
          using _ = b.machine;
          assert.deepEqual(failures(b.out), [], b.out);
          const want = hidden
            ? ["extd_write_faults", "x2apic_msr_still_faults"]
            : ["extd_write_enables_x2apic", "x2apic_msrs_answer"];
          for (
            const c of [
              "cpuid_x2apic_bit",
              "xapic_mmio_version",
              "xapic_mmio_tpr",
              "x2apic_msr_faults_in_xapic_mode",
              ...want,
            ]
          ) assert.ok(passes(b.out).includes(c), `${c} in\n${b.out}`);
          assert.deepEqual(b.result, { reason: "exit", status: 1 });
        });
      }
    }
  },
});

Deno.test({
  name: "cpu: bad and unsupported models fail clearly",
  ignore: !HAVE_KVM,
  fn: () => {
    const fails = (cpu: CpuOption, code: number, re: RegExp) =>
      assert.throws(
        () => createVm({ cpu }),
        (e: unknown) =>
          e instanceof CoreError && e.code === code && re.test(e.message),
        String(cpu),
      );
    // No KVM offers SMX; this host's KVM also lacks PCID (a healthy one
    // has it, so only SMX is asserted unconditionally).
    fails("host,+smx", CoreCode.Unsupported, /feature "smx" is not supported/);
    fails(
      "host,+bogus",
      CoreCode.InvalidArgument,
      /unknown CPU feature "bogus"/,
    );
    fails("host,vendor=x", CoreCode.InvalidArgument, /vendor/);
    fails("host,-x2apic,baseline", CoreCode.InvalidArgument, /first item/);
    assert.throws(
      () => createVm({ cpu: { template: "fast" as "host" } }),
      /template must be host or baseline/,
    );
    assert.throws(
      () => createVm({ cpu: { x2apic: false } as never }),
      /unknown key "x2apic"/,
    );
    // The VM was released each time.
    using vm = createVm({ cpu: "baseline" });
    assert.equal(bit(vm.cpuid(1), 2, 13), false);
  },
});
