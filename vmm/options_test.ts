import assert from "node:assert/strict";
import {
  OptionError,
  parseDuration,
  parseEnum,
  parseGuestArg,
  parseMemorySize,
  parseSize,
} from "./options.ts";

Deno.test("parseSize", async (t) => {
  await t.step("units, case and suffixes", () => {
    assert.equal(parseSize("256M"), 256 * 2 ** 20);
    assert.equal(parseSize("1G"), 2 ** 30);
    assert.equal(parseSize("1GiB"), 2 ** 30);
    assert.equal(parseSize("64k"), 65536);
    assert.equal(parseSize("2T"), 2 * 2 ** 40);
    assert.equal(parseSize(" 4096 "), 4096);
    assert.equal(parseSize(4096), 4096);
    assert.equal(parseSize("16MB"), 16 * 2 ** 20);
  });
  await t.step("default unit applies only to bare numbers", () => {
    assert.equal(parseSize("64", { defaultUnit: "M" }), 64 * 2 ** 20);
    assert.equal(parseSize("64K", { defaultUnit: "M" }), 65536);
    assert.equal(parseSize("64B", { defaultUnit: "M" }), 64);
  });
  await t.step("garbage is refused with the option name and value", () => {
    for (const bad of ["abc", "", "1.5M", "-1M", "1X", "M", "0x10", "1 2"]) {
      assert.throws(
        () => parseSize(bad, { what: "--memory" }),
        (e: Error) =>
          e instanceof OptionError && e.message.startsWith("--memory: ") &&
          e.message.includes(`"${bad}"`),
        bad,
      );
    }
    assert.throws(() => parseSize(1.5), OptionError);
    assert.throws(() => parseSize(NaN), OptionError);
    assert.throws(() => parseSize("99999999999T"), /too large/);
  });
  await t.step("bounds and alignment", () => {
    assert.throws(() => parseSize("0"), /below the minimum/);
    assert.equal(parseSize("0", { min: 0 }), 0);
    assert.throws(
      () => parseSize("2M", { max: 2 ** 20 }),
      /above the maximum of 1M/,
    );
    assert.throws(
      () => parseSize(4097, { multipleOf: 4096 }),
      /multiple of 4K/,
    );
  });
  await t.step("parseMemorySize: pages, 2 MiB .. 1 TiB", () => {
    assert.equal(parseMemorySize("16M"), 16 * 2 ** 20);
    assert.equal(parseMemorySize("1T"), 2 ** 40);
    assert.throws(() => parseMemorySize("1M"), /memory: .*minimum of 2M/);
    assert.throws(() => parseMemorySize("1025G"), /maximum of 1024G/);
    assert.throws(() => parseMemorySize(2 ** 21 + 1), /multiple of 4K/);
    assert.throws(
      () => parseMemorySize("x", { what: "--memory" }),
      /^OptionError: --memory: /,
    );
  });
});

Deno.test("parseDuration", async (t) => {
  await t.step("units; bare numbers are seconds", () => {
    assert.equal(parseDuration("1.5s"), 1500);
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("2m"), 120_000);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration("250us"), 0.25);
    assert.equal(parseDuration("5"), 5000);
    assert.equal(parseDuration("0"), 0);
    assert.equal(parseDuration(2), 2000);
  });
  await t.step("garbage is refused naming the option", () => {
    for (const bad of ["abc", "-1s", "5 parsecs", "1e3", "s", ""]) {
      assert.throws(
        () => parseDuration(bad, "--timeout"),
        (e: Error) =>
          e instanceof OptionError && e.message.startsWith("--timeout: "),
        bad,
      );
    }
    assert.throws(() => parseDuration(-1), OptionError);
    assert.throws(() => parseDuration(Infinity), OptionError);
  });
});

Deno.test("parseGuestArg", () => {
  assert.equal(parseGuestArg("42"), 42n);
  assert.equal(parseGuestArg("0xFF"), 255n);
  assert.equal(parseGuestArg("0b101"), 5n);
  assert.equal(parseGuestArg("0o17"), 15n);
  assert.equal(parseGuestArg("1_000"), 1000n);
  assert.equal(parseGuestArg("18446744073709551615"), (1n << 64n) - 1n);
  assert.equal(parseGuestArg(7), 7n);
  assert.throws(
    () => parseGuestArg("18446744073709551616", "--arg"),
    /--arg: .*64 bits/,
  );
  assert.throws(
    () => parseGuestArg("-1", "--arg"),
    /--arg: "-1" is not an unsigned integer/,
  );
  assert.throws(() => parseGuestArg("1.5"), OptionError);
  assert.throws(() => parseGuestArg("ten"), OptionError);
  assert.throws(() => parseGuestArg(1.5), OptionError);
  assert.throws(() => parseGuestArg(-1n), OptionError);
});

Deno.test("parseEnum", () => {
  const modes = ["kernel", "split"] as const;
  assert.equal(parseEnum("split", modes, "--irqchip"), "split");
  assert.throws(
    () => parseEnum("userspace", modes, "--irqchip"),
    /--irqchip: "userspace" is not one of kernel, split/,
  );
  assert.throws(() => parseEnum(3, modes, "x"), /x: 3 is not one of/);
});
