/**
 * Register offsets and bit definitions of a PCI type-0 configuration
 * header and of the MSI-X capability.
 *
 * References: PCI Local Bus Specification 3.0 (PCI 3.0) chapter 6,
 * PCI Express Base Specification 4.0 (PCIe) 7.5 and 7.7.2.
 *
 * @module
 */

/**
 * Offsets in the type-0 configuration header (PCI 3.0 §6.1, figure 6-1).
 *
 * @example
 * ```ts
 * import { CFG } from "./registers.ts";
 * console.log(CFG.COMMAND.toString(16)); // "4"
 * ```
 */
export const CFG = {
  /** Vendor ID, 16 bits, RO (§6.2.1). */
  VENDOR_ID: 0x00,
  /** Device ID, 16 bits, RO (§6.2.1). */
  DEVICE_ID: 0x02,
  /** Command register, 16 bits (§6.2.2). */
  COMMAND: 0x04,
  /** Status register, 16 bits (§6.2.3). */
  STATUS: 0x06,
  /** Revision ID, 8 bits, RO (§6.2.1). */
  REVISION_ID: 0x08,
  /** Programming interface byte of the class code (§6.2.1). */
  PROG_IF: 0x09,
  /** Sub-class byte of the class code (§6.2.1). */
  SUBCLASS: 0x0a,
  /** Base class byte of the class code (§6.2.1). */
  CLASS: 0x0b,
  /** Cache line size, 8 bits (§6.2.4). */
  CACHE_LINE_SIZE: 0x0c,
  /** Latency timer, 8 bits (§6.2.4). */
  LATENCY_TIMER: 0x0d,
  /** Header type; bit 7 = multi-function (§6.2.1). */
  HEADER_TYPE: 0x0e,
  /** BIST, 8 bits (§6.2.4). */
  BIST: 0x0f,
  /** First base address register; six dwords follow (§6.2.5.1). */
  BAR0: 0x10,
  /** Subsystem vendor ID, 16 bits, RO (§6.2.4). */
  SUBSYSTEM_VENDOR_ID: 0x2c,
  /** Subsystem ID, 16 bits, RO (§6.2.4). */
  SUBSYSTEM_ID: 0x2e,
  /** Expansion ROM base address (§6.2.5.2); not implemented (reads 0). */
  ROM_ADDRESS: 0x30,
  /** Capabilities pointer, 8 bits, RO (§6.7). */
  CAPABILITIES_POINTER: 0x34,
  /** Interrupt line, 8 bits, RW (§6.2.4). */
  INTERRUPT_LINE: 0x3c,
  /** Interrupt pin, 8 bits, RO: 0 none, 1..4 INTA#..INTD# (§6.2.4). */
  INTERRUPT_PIN: 0x3d,
  /** First byte after the predefined header; capabilities go here. */
  HEADER_END: 0x40,
  /** Size of the conventional configuration space (PCI 3.0 §6.1). */
  SIZE: 0x100,
  /** Size of one function's space in ECAM (PCIe §7.2.2). */
  EXTENDED_SIZE: 0x1000,
  /** Number of BARs in a type-0 header (§6.2.5.1). */
  BAR_COUNT: 6,
} as const;

/**
 * Command register bits (PCI 3.0 §6.2.2, table 6-2).
 *
 * @example
 * ```ts
 * import { COMMAND } from "./registers.ts";
 * const enable = COMMAND.MEMORY | COMMAND.BUS_MASTER;
 * ```
 */
export const COMMAND = {
  /** Bit 0: respond to I/O space accesses. */
  IO: 1 << 0,
  /** Bit 1: respond to memory space accesses. */
  MEMORY: 1 << 1,
  /** Bit 2: bus master (the function may do DMA). */
  BUS_MASTER: 1 << 2,
  /** Bit 6: parity error response. */
  PARITY_ERROR_RESPONSE: 1 << 6,
  /** Bit 8: SERR# enable. */
  SERR: 1 << 8,
  /** Bit 10: INTx emulation disable (PCI 3.0 §6.2.2, PCIe §7.5.1.1). */
  INTX_DISABLE: 1 << 10,
} as const;

/**
 * Status register bits (PCI 3.0 §6.2.3, table 6-3).
 *
 * @example
 * ```ts
 * import { STATUS } from "./registers.ts";
 * const hasCaps = (status: number) => (status & STATUS.CAPABILITIES) !== 0;
 * ```
 */
export const STATUS = {
  /** Bit 3: INTx is asserted by this function (RO). */
  INTERRUPT: 1 << 3,
  /** Bit 4: a capabilities list is present (RO). */
  CAPABILITIES: 1 << 4,
  /** Bit 8: master data parity error (RW1C). */
  MASTER_DATA_PARITY_ERROR: 1 << 8,
  /** Bit 11: signaled target abort (RW1C). */
  SIGNALED_TARGET_ABORT: 1 << 11,
  /** Bit 12: received target abort (RW1C). */
  RECEIVED_TARGET_ABORT: 1 << 12,
  /** Bit 13: received master abort (RW1C). */
  RECEIVED_MASTER_ABORT: 1 << 13,
  /** Bit 14: signaled system error (RW1C). */
  SIGNALED_SYSTEM_ERROR: 1 << 14,
  /** Bit 15: detected parity error (RW1C). */
  DETECTED_PARITY_ERROR: 1 << 15,
  /** Every write-1-to-clear bit of the status register. */
  W1C_MASK: (1 << 8) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) |
    (1 << 15),
} as const;

/**
 * Low bits of a base address register (PCI 3.0 §6.2.5.1).
 *
 * @example
 * ```ts
 * import { BAR_BITS } from "./registers.ts";
 * const isIo = (bar: number) => (bar & BAR_BITS.IO_SPACE) !== 0;
 * ```
 */
export const BAR_BITS = {
  /** Bit 0: 1 = I/O space BAR, 0 = memory BAR. */
  IO_SPACE: 0x1,
  /** Bits 2:1 = 00: memory BAR decoded anywhere in 32-bit space. */
  MEM_TYPE_32: 0x0,
  /** Bits 2:1 = 10: memory BAR decoded anywhere in 64-bit space. */
  MEM_TYPE_64: 0x4,
  /** Bit 3: memory BAR is prefetchable. */
  MEM_PREFETCHABLE: 0x8,
  /** Address bits of a memory BAR dword (bits 31:4). */
  MEM_ADDRESS_MASK: 0xfffffff0,
  /** Address bits of an I/O BAR dword (bits 31:2). */
  IO_ADDRESS_MASK: 0xfffffffc,
} as const;

/**
 * Capability IDs (PCI Code and ID Assignment Specification §2).
 *
 * @example
 * ```ts
 * import { CAP_ID } from "./registers.ts";
 * console.log(CAP_ID.MSIX); // 17
 * ```
 */
export const CAP_ID = {
  /** MSI (PCI 3.0 §6.8.1). */
  MSI: 0x05,
  /** Vendor specific (PCI 3.0 appendix H); used by virtio. */
  VENDOR: 0x09,
  /** PCI Express (PCIe §7.5.3). */
  PCIE: 0x10,
  /** MSI-X (PCI 3.0 §6.8.2). */
  MSIX: 0x11,
} as const;

/**
 * MSI-X capability layout (PCI 3.0 §6.8.2, PCIe §7.7.2).
 *
 * @example
 * ```ts
 * import { MSIX } from "./registers.ts";
 * const enabled = (control: number) => (control & MSIX.CONTROL_ENABLE) !== 0;
 * ```
 */
export const MSIX = {
  /** Length of the capability structure in bytes. */
  CAP_LENGTH: 12,
  /** Offset of Message Control in the capability (§6.8.2.3). */
  CONTROL: 0x02,
  /** Offset of Table Offset/Table BIR (§6.8.2.4). */
  TABLE: 0x04,
  /** Offset of PBA Offset/PBA BIR (§6.8.2.5). */
  PBA: 0x08,
  /** Message Control bits 10:0: table size minus one (RO). */
  CONTROL_TABLE_SIZE: 0x07ff,
  /** Message Control bit 14: function mask (RW). */
  CONTROL_FUNCTION_MASK: 1 << 14,
  /** Message Control bit 15: MSI-X enable (RW). */
  CONTROL_ENABLE: 1 << 15,
  /** Bits 2:0 of the table/PBA dword: BAR indicator register. */
  BIR_MASK: 0x7,
  /** Size of one table entry (§6.8.2.6). */
  ENTRY_SIZE: 16,
  /** Entry offset of Message Address (low dword) (§6.8.2.6). */
  ENTRY_ADDRESS_LO: 0x0,
  /** Entry offset of Message Upper Address (§6.8.2.7). */
  ENTRY_ADDRESS_HI: 0x4,
  /** Entry offset of Message Data (§6.8.2.8). */
  ENTRY_DATA: 0x8,
  /** Entry offset of Vector Control (§6.8.2.9). */
  ENTRY_VECTOR_CONTROL: 0xc,
  /** Vector Control bit 0: the entry is masked. */
  VECTOR_CONTROL_MASK: 0x1,
  /** Maximum number of table entries (11-bit table size field). */
  MAX_VECTORS: 2048,
  /** Lowest deliverable message address (Intel SDM Vol. 3 §11.11.1). */
  ADDRESS_BASE: 0xfee00000,
  /** Highest deliverable message address. */
  ADDRESS_LAST: 0xfeefffff,
} as const;

/**
 * Configuration mechanism #1 (PCI 3.0 §3.2.2.3.2) and ECAM
 * (PCIe §7.2.2) constants.
 *
 * @example
 * ```ts
 * import { CONFIG_MECHANISM } from "./registers.ts";
 * const addr = CONFIG_MECHANISM.ENABLE | (3 << 11) | 0x10;
 * ```
 */
export const CONFIG_MECHANISM = {
  /** CONFIG_ADDRESS I/O port (dword access only). */
  ADDRESS_PORT: 0xcf8,
  /** CONFIG_DATA I/O ports 0xCFC..0xCFF. */
  DATA_PORT: 0xcfc,
  /** CONFIG_ADDRESS bit 31: enable configuration cycles. */
  ENABLE: 0x80000000,
  /** CONFIG_ADDRESS writable bits: enable, bus, device, function, register. */
  ADDRESS_MASK: 0x80fffffc,
  /** Default ECAM base (QEMU q35 uses 0xB0000000). */
  ECAM_DEFAULT_BASE: 0xb0000000,
  /** ECAM bytes for one bus: 32 devices * 8 functions * 4 KiB. */
  ECAM_BUS_SIZE: 1 << 20,
  /** Devices per bus. */
  DEVICES: 32,
  /** Functions per device. */
  FUNCTIONS: 8,
} as const;
