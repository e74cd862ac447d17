/**
 * The built-in device families: each device's state machine, its bus
 * adapter (plugin), options, state type and register constants, as the
 * `@denovmm/vmm/plugins` subpath. The root module re-exports only the
 * factories.
 *
 * @example
 * ```ts
 * import { Uart16550, UART_LSR } from "./mod.ts";
 * const uart = new Uart16550();
 * console.log(uart.read(UART_LSR).toString(16)); // "60"
 * ```
 *
 * @module
 */
export { readLe, readLeBig, writeLe, writeLeBig } from "../bus/le.ts";
export * from "./serial/uart_16550.ts";
export * from "./serial/plugin.ts";
export * from "./serial/streams.ts";
export * from "./debug_exit/debug_exit.ts";
export * from "./debug_exit/plugin.ts";
export * from "./pv_timer/pv_timer.ts";
export * from "./pv_timer/plugin.ts";
export * from "./fw_cfg/fw_cfg.ts";
export * from "./fw_cfg/plugin.ts";
export * from "./pit/i8254.ts";
export * from "./pit/pit_clock.ts";
export * from "./pit/plugin.ts";
export * from "./rtc/mc146818.ts";
export * from "./rtc/plugin.ts";
export * from "./pic/pic_8259.ts";
export * from "./pic/plugin.ts";
export * from "./ioapic/ioapic.ts";
export * from "./ioapic/plugin.ts";
export * from "./ioapic/remote_irr_watchdog.ts";
export * from "./acpi/plugin.ts";
export * from "./acpi/tables.ts";
export * from "./acpi/parse.ts";
export * from "./acpi/pm.ts";
export * from "./hpet/plugin.ts";
export * from "./hpet/hpet.ts";
export * from "./pci/mod.ts";
export { standardPlugins, WIRING } from "../vmm/machine.ts";
export * from "./virtio/mod.ts";
