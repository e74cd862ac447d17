import assert from "node:assert/strict";
import { OptionError } from "./options.ts";
import { parseVmConfig } from "./vm_config.ts";

function bad(json: unknown, re: RegExp) {
  const text = typeof json === "string" ? json : JSON.stringify(json);
  assert.throws(
    () => parseVmConfig(text, "vm.json"),
    (e: Error) => e instanceof OptionError && re.test(e.message),
    text,
  );
}

Deno.test("config file", async (t) => {
  await t.step("full shape, paths relative to the file", () => {
    const c = parseVmConfig(
      JSON.stringify({
        "boot-source": {
          kernel_image_path: "k.elf",
          boot_args: "a=b",
          guest_args: [3, "0x10"],
          modules: ["/abs/m.bin", "rel.bin"],
        },
        "machine-config": {
          vcpu_count: 2,
          mem_size_mib: 8,
          irqchip: "split",
          timer: "gsi",
          strict: true,
        },
        drives: [
          { drive_id: "r", path_on_host: "d.img", is_root_device: true },
          { path_on_host: "/x.img", is_read_only: true },
        ],
        entropy: {},
        devices: [{ module: "echo", options: { base: 5 } }, { module: "d.ts" }],
        logger: { level: "DEBUG" },
        timeout: 2,
      }),
      "dir/vm.json",
    );
    assert.deepEqual(c, {
      guest: "dir/k.elf",
      cmdline: "a=b",
      args: [3n, 16n],
      modules: ["/abs/m.bin", "dir/rel.bin"],
      memory: 8 * 2 ** 20,
      irqchip: "split",
      vcpus: 2,
      timer: "gsi",
      strict: true,
      disks: [
        { path: "dir/d.img", readOnly: false },
        { path: "/x.img", readOnly: true },
      ],
      rng: true,
      devices: [
        { module: "echo", options: { base: 5 } },
        { module: "dir/d.ts" },
      ],
      logLevel: "debug",
      timeoutMs: 2000,
    });
    assert.deepEqual(parseVmConfig("{}", "vm.json"), {});
  });
  await t.step("errors name the file and the field", () => {
    bad("{", /^vm.json: not valid JSON/);
    bad([], /vm.json: \(top level\): expected an object, got an array/);
    bad(
      { "boot-sauce": {} },
      /vm.json: boot-sauce: unknown field \(known: boot-source/,
    );
    bad(
      { "machine-config": { mem_size_mib: "lots" } },
      /machine-config.mem_size_mib: expected an integer, got "lots"/,
    );
    bad(
      { "machine-config": { mem_size_mib: 0 } },
      /machine-config.mem_size_mib: .*minimum/,
    );
    bad(
      { "machine-config": { vcpu_count: 65 } },
      /machine-config.vcpu_count: expected an integer 1..64/,
    );
    bad(
      { "machine-config": { irqchip: "x" } },
      /machine-config.irqchip: "x" is not one of/,
    );
    bad(
      { "machine-config": { memsize: 1 } },
      /machine-config.memsize: unknown field/,
    );
    bad(
      { "machine-config": { strict: "yes" } },
      /machine-config.strict: expected true or false/,
    );
    bad(
      { "boot-source": { kernel_image_path: 5 } },
      /boot-source.kernel_image_path: expected a non-empty string, got number 5/,
    );
    bad(
      { "boot-source": { guest_args: [1, 2, 3, 4, 5] } },
      /boot-source.guest_args: at most 4/,
    );
    bad(
      { "boot-source": { guest_args: [-1] } },
      /boot-source.guest_args\[0\]: -1 is not an integer|guest_args\[0\]/,
    );
    bad(
      { "boot-source": { guest_args: [true] } },
      /boot-source.guest_args\[0\]: expected an integer/,
    );
    bad({ drives: {} }, /vm.json: drives: expected an array/);
    bad({ drives: [{}] }, /drives\[0\].path_on_host: missing/);
    bad(
      { drives: [{ path_on_host: "a", is_read_only: 1 }] },
      /drives\[0\].is_read_only: expected true or false/,
    );
    bad(
      { drives: [{ path_on_host: "a", cache: "x" }] },
      /drives\[0\].cache: unknown field/,
    );
    bad({ entropy: { rate: 1 } }, /entropy.rate: unknown field/);
    bad({ devices: [{ options: {} }] }, /devices\[0\].module: missing/);
    bad({ logger: { level: "loud" } }, /logger.level: "loud" is not one of/);
    bad({ timeout: "soon" }, /vm.json: timeout: "soon" is not a duration/);
    bad({ timeout: true }, /vm.json: timeout: expected a duration/);
  });
});
