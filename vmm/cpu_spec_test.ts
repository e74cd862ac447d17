import assert from "node:assert/strict";
import { cpuOptionFromArg, cpuSpecText } from "./cpu_spec.ts";

Deno.test("cpu spec: strings become one item per line", () => {
  assert.equal(
    cpuSpecText("host, -x2apic,,+tsc-deadline"),
    "host\n-x2apic\n+tsc-deadline",
  );
  assert.equal(cpuSpecText("baseline"), "baseline");
  assert.equal(cpuSpecText(""), "");
  assert.throws(() => cpuSpecText("host\n-x2apic"), /line break/);
});

Deno.test("cpu spec: objects", () => {
  assert.equal(
    cpuSpecText({
      template: "baseline",
      features: { x2apic: false, "tsc-deadline": true },
      vendor: "intel",
      family: 6,
      model: 0x55,
      stepping: 4,
      brand: "A, B",
      kvm: false,
      tscLeaves: true,
    }),
    [
      "baseline",
      "-x2apic",
      "+tsc-deadline",
      "vendor=intel",
      "family=6",
      "model=85",
      "stepping=4",
      "brand=A, B",
      "kvm=off",
      "tsc-leaves=on",
    ].join("\n"),
  );
  assert.equal(
    cpuSpecText({ features: ["-pcid", "+x2apic"] }),
    "-pcid\n+x2apic",
  );
  assert.equal(cpuSpecText({}), "");
  for (
    const [bad, re] of [
      [{ template: "fast" }, /template/],
      [{ features: ["pcid"] }, /start with \+ or -/],
      [{ features: { pcid: "no" } }, /true or false/],
      [{ family: -1 }, /family/],
      [{ model: 1.5 }, /model/],
      [{ brand: "a\nb" }, /line break/],
      [{ kvm: "off" }, /kvm/],
      [{ cores: 2 }, /unknown key "cores"/],
    ] as const
  ) {
    assert.throws(() => cpuSpecText(bad as never), re, JSON.stringify(bad));
  }
  assert.throws(() => cpuSpecText(null as never), TypeError);
});

Deno.test("cpu spec: --cpu reads .json files", () => {
  assert.equal(cpuOptionFromArg("host,-x2apic"), "host,-x2apic");
  const f = Deno.makeTempFileSync({ suffix: ".json" });
  try {
    Deno.writeTextFileSync(f, '{"template":"baseline","features":["-x2apic"]}');
    assert.deepEqual(cpuOptionFromArg(f), {
      template: "baseline",
      features: ["-x2apic"],
    });
    Deno.writeTextFileSync(f, "{nope");
    assert.throws(() => cpuOptionFromArg(f), /not JSON/);
  } finally {
    Deno.removeSync(f);
  }
  assert.throws(
    () => cpuOptionFromArg("/nonexistent/cpu.json"),
    /--cpu \/nonexistent/,
  );
});
