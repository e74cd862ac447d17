/**
 * denovmm: a Deno-native, plugin-driven x86-64 KVM virtual machine monitor
 * with a Rust core.
 *
 * ```ts ignore
 * import { createMachine } from "@denovmm/vmm";
 * using m = createMachine({ serialOutput: (b) => Deno.stdout.writeSync(new Uint8Array([b])) });
 * m.vm.load("guests/build/hello.elf", [3]);
 * console.log(m.vm.run({ timeoutMs: 5000 })); // { reason: "exit", status: 7 }
 * ```
 *
 * @module
 */
export * from "./bus/types.ts";
export * from "./bus/bus.ts";
export * from "./vmm/vm.ts";
export * from "./vmm/machine.ts";
export * from "./vmm/worker_host.ts";
export * from "./vmm/guest_memory.ts";
export { CoreError, ErrorCode } from "./ffi/library.ts";
export * from "./plugins/serial/plugin.ts";
export * from "./plugins/serial/uart_16550.ts";
export * from "./plugins/debug_exit/plugin.ts";
export * from "./plugins/debug_exit/debug_exit.ts";
export * from "./plugins/echo/plugin.ts";
export * from "./plugins/echo/echo_device.ts";
export * from "./plugins/legacy/plugin.ts";
export * from "./plugins/legacy/pic_stub.ts";
export * from "./plugins/legacy/pit_stub.ts";
export * from "./plugins/pv_timer/plugin.ts";
export * from "./plugins/pv_timer/pv_timer.ts";
export * from "./plugins/testdev/plugin.ts";
export * from "./plugins/testdev/irq_lines.ts";
export * from "./plugins/testdev/ioport.ts";
export * from "./plugins/testdev/iomem.ts";
export * from "./plugins/pit/plugin.ts";
export * from "./plugins/pit/i8254.ts";
export * from "./plugins/pit/pit_clock.ts";
export * from "./plugins/rtc/plugin.ts";
export * from "./plugins/rtc/mc146818.ts";
export * from "./plugins/fw_cfg/plugin.ts";
export * from "./plugins/fw_cfg/fw_cfg.ts";
export * from "./plugins/pic/plugin.ts";
export * from "./plugins/pic/pic_8259.ts";
export * from "./plugins/ioapic/plugin.ts";
export * from "./plugins/ioapic/ioapic.ts";
export * from "./plugins/ioapic/remote_irr_watchdog.ts";
export * from "./plugins/acpi/plugin.ts";
export * from "./plugins/acpi/tables.ts";
export * from "./plugins/acpi/parse.ts";
export * from "./plugins/acpi/pm.ts";
export * from "./plugins/hpet/plugin.ts";
export * from "./plugins/hpet/hpet.ts";
export * from "./plugins/pci/mod.ts";
export * from "./plugins/virtio/mod.ts";
