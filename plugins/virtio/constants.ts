/**
 * Constants of the virtio 1.2 specification used by the PCI transport and
 * the devices.
 *
 * @module
 */

/**
 * Device status bits (virtio 1.2 §2.1).
 *
 * @example
 * ```ts
 * import { DEVICE_STATUS } from "./constants.ts";
 * const ready = DEVICE_STATUS.ACKNOWLEDGE | DEVICE_STATUS.DRIVER;
 * ```
 */
export const DEVICE_STATUS = {
  /** The guest found the device. */
  ACKNOWLEDGE: 1,
  /** The guest knows how to drive the device. */
  DRIVER: 2,
  /** The driver is set up and ready. */
  DRIVER_OK: 4,
  /** Feature negotiation is complete. */
  FEATURES_OK: 8,
  /** The device hit an error it cannot recover from. */
  DEVICE_NEEDS_RESET: 0x40,
  /** The driver gave up on the device. */
  FAILED: 0x80,
} as const;

/**
 * Reserved (transport) feature bits (virtio 1.2 §6), as bit numbers.
 *
 * @example
 * ```ts
 * import { FEATURE } from "./constants.ts";
 * const v1 = 1n << BigInt(FEATURE.VERSION_1);
 * ```
 */
export const FEATURE = {
  /** VIRTIO_F_INDIRECT_DESC (§6): indirect descriptors. */
  RING_INDIRECT_DESC: 28,
  /** VIRTIO_F_EVENT_IDX (§6): used/avail event suppression (not offered). */
  RING_EVENT_IDX: 29,
  /** VIRTIO_F_VERSION_1 (§6): compliant with virtio 1.x; required. */
  VERSION_1: 32,
} as const;

/**
 * Split virtqueue flags and layout (virtio 1.2 §2.7).
 *
 * @example
 * ```ts
 * import { VIRTQ } from "./constants.ts";
 * const writable = (flags: number) => (flags & VIRTQ.DESC_F_WRITE) !== 0;
 * ```
 */
export const VIRTQ = {
  /** Descriptor continues via `next` (§2.7.5). */
  DESC_F_NEXT: 1,
  /** Descriptor is device-writable (§2.7.5). */
  DESC_F_WRITE: 2,
  /** Descriptor points to an indirect table (§2.7.5.3). */
  DESC_F_INDIRECT: 4,
  /** Size of one descriptor: le64 addr, le32 len, le16 flags, le16 next. */
  DESC_SIZE: 16,
  /** Available ring flag: no used-buffer notification wanted (§2.7.7). */
  AVAIL_F_NO_INTERRUPT: 1,
  /** Used ring flag: no available-buffer notification wanted (§2.7.10). */
  USED_F_NO_NOTIFY: 1,
  /** Size of one used element: le32 id, le32 len (§2.7.8). */
  USED_ELEM_SIZE: 8,
  /** Largest queue size (§2.7). */
  MAX_SIZE: 32768,
  /** Required alignment of the descriptor table (§2.7, table 2.7.2). */
  DESC_ALIGN: 16,
  /** Required alignment of the available ring. */
  AVAIL_ALIGN: 2,
  /** Required alignment of the used ring. */
  USED_ALIGN: 4,
} as const;

/**
 * Virtio PCI capability layout (virtio 1.2 §4.1.4).
 *
 * @example
 * ```ts
 * import { PCI_CAP } from "./constants.ts";
 * console.log(PCI_CAP.TYPE_COMMON); // 1
 * ```
 */
export const PCI_CAP = {
  /** cfg_type: common configuration (§4.1.4.3). */
  TYPE_COMMON: 1,
  /** cfg_type: notifications (§4.1.4.4). */
  TYPE_NOTIFY: 2,
  /** cfg_type: ISR status (§4.1.4.5). */
  TYPE_ISR: 3,
  /** cfg_type: device-specific configuration (§4.1.4.6). */
  TYPE_DEVICE: 4,
  /** cfg_type: PCI configuration access window (§4.1.4.9). */
  TYPE_PCI: 5,
  /** Offset of cap_len in struct virtio_pci_cap. */
  LEN: 2,
  /** Offset of cfg_type. */
  CFG_TYPE: 3,
  /** Offset of bar. */
  BAR: 4,
  /** Offset of id. */
  ID: 5,
  /** Offset of the le32 offset field. */
  OFFSET: 8,
  /** Offset of the le32 length field. */
  LENGTH: 12,
  /** Size of struct virtio_pci_cap. */
  SIZE: 16,
  /** Offset of notify_off_multiplier in struct virtio_pci_notify_cap. */
  NOTIFY_OFF_MULTIPLIER: 16,
  /** Size of struct virtio_pci_notify_cap. */
  NOTIFY_SIZE: 20,
  /** Offset of pci_cfg_data in struct virtio_pci_cfg_cap. */
  PCI_CFG_DATA: 16,
  /** Size of struct virtio_pci_cfg_cap. */
  PCI_CFG_SIZE: 20,
} as const;

/**
 * Common configuration structure offsets (virtio 1.2 §4.1.4.3).
 *
 * @example
 * ```ts
 * import { COMMON_CFG } from "./constants.ts";
 * console.log(COMMON_CFG.DEVICE_STATUS); // 20
 * ```
 */
export const COMMON_CFG = {
  /** le32 device_feature_select (RW). */
  DEVICE_FEATURE_SELECT: 0x00,
  /** le32 device_feature (RO). */
  DEVICE_FEATURE: 0x04,
  /** le32 driver_feature_select (RW). */
  DRIVER_FEATURE_SELECT: 0x08,
  /** le32 driver_feature (RW). */
  DRIVER_FEATURE: 0x0c,
  /** le16 config_msix_vector (RW). */
  CONFIG_MSIX_VECTOR: 0x10,
  /** le16 num_queues (RO). */
  NUM_QUEUES: 0x12,
  /** u8 device_status (RW). */
  DEVICE_STATUS: 0x14,
  /** u8 config_generation (RO). */
  CONFIG_GENERATION: 0x15,
  /** le16 queue_select (RW). */
  QUEUE_SELECT: 0x16,
  /** le16 queue_size (RW). */
  QUEUE_SIZE: 0x18,
  /** le16 queue_msix_vector (RW). */
  QUEUE_MSIX_VECTOR: 0x1a,
  /** le16 queue_enable (RW). */
  QUEUE_ENABLE: 0x1c,
  /** le16 queue_notify_off (RO). */
  QUEUE_NOTIFY_OFF: 0x1e,
  /** le64 queue_desc (RW). */
  QUEUE_DESC: 0x20,
  /** le64 queue_driver (RW). */
  QUEUE_DRIVER: 0x28,
  /** le64 queue_device (RW). */
  QUEUE_DEVICE: 0x30,
  /** Length of the structure implemented here. */
  SIZE: 0x38,
} as const;

/**
 * ISR status bits (virtio 1.2 §4.1.4.5).
 *
 * @example
 * ```ts
 * import { ISR } from "./constants.ts";
 * const configChanged = (isr: number) => (isr & ISR.CONFIG) !== 0;
 * ```
 */
export const ISR = {
  /** Bit 0: a used buffer notification. */
  QUEUE: 1,
  /** Bit 1: a configuration change notification. */
  CONFIG: 2,
} as const;

/**
 * VIRTIO_MSI_NO_VECTOR (virtio 1.2 §4.1.5.1.2): no interrupt for this
 * source.
 *
 * @example
 * ```ts
 * import { VIRTIO_MSI_NO_VECTOR } from "./constants.ts";
 * console.log(VIRTIO_MSI_NO_VECTOR); // 65535
 * ```
 */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/**
 * PCI identity of virtio devices (virtio 1.2 §4.1.2).
 *
 * @example
 * ```ts
 * import { VIRTIO_PCI } from "./constants.ts";
 * const blkDeviceId = VIRTIO_PCI.DEVICE_ID_BASE + 2; // 0x1042
 * ```
 */
export const VIRTIO_PCI = {
  /** PCI vendor ID of virtio devices. */
  VENDOR_ID: 0x1af4,
  /** Modern device ID = 0x1040 + virtio device ID. */
  DEVICE_ID_BASE: 0x1040,
  /** Revision ID of non-transitional devices (>= 1). */
  REVISION: 1,
  /** Subsystem ID of non-transitional devices (>= 0x40). */
  SUBSYSTEM_ID: 0x40,
} as const;

/**
 * Virtio device IDs (virtio 1.2 §5).
 *
 * @example
 * ```ts
 * import { DEVICE_ID } from "./constants.ts";
 * console.log(DEVICE_ID.ENTROPY); // 4
 * ```
 */
export const DEVICE_ID = {
  /** Block device (§5.2). */
  BLOCK: 2,
  /** Entropy source (§5.4). */
  ENTROPY: 4,
} as const;
