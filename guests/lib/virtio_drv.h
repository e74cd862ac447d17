/* Minimal PCI + virtio-pci (modern) driver pieces shared by the `virtio`
 * and `virtio_bench` guests: config mechanism #1 at 0xCF8/0xCFC, 64-bit
 * BAR0 sizing and placement, the capability walk, MSI-X table set-up,
 * driver initialisation steps (virtio 1.2 3.1.1) and one split virtqueue
 * of QSIZE entries per device (queue 0, MSI-X entry 1; config on entry 0).
 *
 * Nothing here prints or checks: the guests do that with what the helpers
 * return or leave in struct vdev. The per-request fast path (publish,
 * kick, take_used) is static inline so the benchmark loop stays as short
 * as before (this KVM emulates every guest instruction, ~1 M/s). */
#ifndef DENOVMM_VIRTIO_DRV_H
#define DENOVMM_VIRTIO_DRV_H

#include "rt.h"

/* ---- the host layout both virtio guests use ------------------------------- */
#define VIRTIO_VENDOR 0x1AF4
#define DEVID_RNG 0x1044
#define DEVID_BLK 0x1042

#define RNG_BAR 0xE0000000UL
#define BLK_BAR 0xE0010000UL

#define VEC_RNG_CFG 0x60
#define VEC_RNG_Q0  0x61
#define VEC_BLK_CFG 0x62
#define VEC_BLK_Q0  0x63

#define QSIZE 8

/* ---- PCI --------------------------------------------------------------------- */
#define PCI_ADDR 0xCF8
#define PCI_DATA 0xCFC

#define PCI_CAP_VENDOR 0x09
#define PCI_CAP_MSIX   0x11

#define MSIX_CTL_ENABLE (1u << 15)
#define MSIX_CTL_FMASK  (1u << 14)

/* Bus 0, function 0 of device `dev`; `off` may be unaligned for 8/16-bit. */
u32 pci_cfg_read32(u32 dev, u32 off);
u16 pci_cfg_read16(u32 dev, u32 off);
u8  pci_cfg_read8(u32 dev, u32 off);
void pci_cfg_write32(u32 dev, u32 off, u32 v);
void pci_cfg_write16(u32 dev, u32 off, u16 v);

/* ---- virtio-pci ------------------------------------------------------------- */
/* common config (virtio 1.2 4.1.4.3) */
#define CC_DFSEL   0x00
#define CC_DF      0x04
#define CC_GFSEL   0x08
#define CC_GF      0x0C
#define CC_MSIX    0x10
#define CC_NUMQ    0x12
#define CC_STATUS  0x14
#define CC_GEN     0x15
#define CC_QSEL    0x16
#define CC_QSIZE   0x18
#define CC_QMSIX   0x1A
#define CC_QENABLE 0x1C
#define CC_QNOFF   0x1E
#define CC_QDESC   0x20
#define CC_QDRIVER 0x28
#define CC_QDEVICE 0x30

#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8
#define ST_NEEDS_RESET 0x40
#define ST_ALL_OK (ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK)

#define F_VERSION_1_HI 1u        /* bit 32 = bit 0 of the high dword */

#define VIRTQ_DESC_F_NEXT  1
#define VIRTQ_DESC_F_WRITE 2

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8

struct blk_hdr { u32 type; u32 reserved; u64 sector; };

/* ---- split virtqueue ---------------------------------------------------------- */
struct vq_desc { u64 addr; u32 len; u16 flags; u16 next; };
struct vq_avail { u16 flags; u16 idx; u16 ring[QSIZE]; u16 used_event; };
struct vq_used_elem { u32 id; u32 len; };
struct vq_used { u16 flags; u16 idx; struct vq_used_elem ring[QSIZE]; u16 avail_event; };

struct vq {
    struct vq_desc desc[QSIZE] __attribute__((aligned(16)));
    struct vq_avail avail __attribute__((aligned(16)));
    struct vq_used used __attribute__((aligned(16)));
};

/* One device. The guest fills name, slot, bar, vec_cfg, vec_q0 and q; the
 * helpers fill the rest. */
struct vdev {
    const char *name;
    u32 slot;
    u64 bar;
    u64 common, notify, isr, devcfg;   /* from the capability walk */
    u32 notify_mul;
    u32 msix_cap;
    u64 table, pba;
    u32 msix_vectors;
    u8 vec_cfg, vec_q0;
    u16 queue_max, notify_off;          /* from vdrv_setup_queue0 */
    u64 notify_addr;
    struct vq *q;
    u16 next_desc, avail_idx, last_used;
};

static inline u8 vdrv_status(struct vdev *d) { return mmio_read8(d->common + CC_STATUS); }
static inline void vdrv_set_status(struct vdev *d, u8 s) { mmio_write8(d->common + CC_STATUS, s); }

/* BAR0/1 as one 64-bit BAR. size: decoding off, then the all-ones probe;
 * *orig = BAR0 before, *lo / *hi = the probe's readback; returns the size.
 * assign: program d->bar, then enable memory decoding + bus mastering. */
u64 vdrv_bar0_size(struct vdev *d, u32 *orig, u32 *lo, u32 *hi);
void vdrv_bar0_assign(struct vdev *d);

/* Capability walk (at most 48 entries): fills common/notify/isr/devcfg/
 * notify_mul (vendor caps, cfg_type 1..4) and msix_cap/table/pba/
 * msix_vectors. Calls on_cap (if not 0) after each capability it read.
 * Returns the VDRV_HAVE_* bits found. */
#define VDRV_HAVE_COMMON 1u
#define VDRV_HAVE_NOTIFY 2u
#define VDRV_HAVE_ISR    4u
#define VDRV_HAVE_DEVCFG 8u
#define VDRV_HAVE_MSIX   16u
typedef void (*vdrv_cap_fn)(struct vdev *d, u8 pos, u8 id);
u32 vdrv_find_caps(struct vdev *d, vdrv_cap_fn on_cap);

/* Read-modify-write of the MSI-X enable / function-mask bits. */
void vdrv_msix_control(struct vdev *d, u16 bits);
/* Function-masked enable, entry 0 -> vec_cfg, entry 1 -> vec_q0 (fixed,
 * to APIC `dest`, unmasked), then enable without the function mask. */
void vdrv_setup_msix(struct vdev *d, u8 dest);

/* Reset (status 0), then ACKNOWLEDGE and DRIVER; returns whether the
 * status read 0 after the reset. */
int vdrv_reset_ack(struct vdev *d);
/* Write the driver features and set FEATURES_OK; returns whether the
 * device kept FEATURES_OK. */
int vdrv_set_features(struct vdev *d, u32 lo, u32 hi);
/* Config vector = MSI-X entry 0; queue 0: queue_max (read before sizing),
 * size QSIZE, the rings of d->q, vector = entry 1, notify_off and
 * notify_addr, then enable. */
void vdrv_setup_queue0(struct vdev *d);
/* Set DRIVER_OK; returns the status read back. */
u8 vdrv_driver_ok(struct vdev *d);

/* Make descriptor chain `head` available (no kick). */
static inline void vdrv_publish(struct vdev *d, u16 head)
{
    struct vq *q = d->q;
    ((volatile u16 *)q->avail.ring)[d->avail_idx % QSIZE] = head;
    __asm__ volatile("" ::: "memory");
    d->avail_idx++;
    *(volatile u16 *)&q->avail.idx = d->avail_idx;
}

/* Notify queue 0. */
static inline void vdrv_kick(struct vdev *d) { mmio_write16(d->notify_addr, 0); }

/* Next used element (id only if `id` is not 0), or 0 if none. */
static inline int vdrv_take_used(struct vdev *d, u32 *id, u32 *len)
{
    volatile struct vq_used *u = &d->q->used;
    if (u->idx == d->last_used)
        return 0;
    u32 s = d->last_used % QSIZE;
    if (id)
        *id = u->ring[s].id;
    *len = u->ring[s].len;
    d->last_used++;
    return 1;
}

/* Chain of n buffers from d->next_desc on (wrapping), published and kicked;
 * returns the head. */
struct buf { const void *addr; u32 len; int write; };
u16 vdrv_submit(struct vdev *d, const struct buf *b, int n);

#endif
