/* PCI + virtio-pci driver helpers shared by the virtio guests (see
 * virtio_drv.h). */
#include "virtio_drv.h"

/* ---- PCI config mechanism #1 --------------------------------------------------- */
static void cfg_select(u32 dev, u32 off)
{
    outl(PCI_ADDR, 0x80000000u | (dev << 11) | (off & 0xFC));
}
u32 pci_cfg_read32(u32 dev, u32 off) { cfg_select(dev, off); return inl(PCI_DATA); }
u16 pci_cfg_read16(u32 dev, u32 off) { cfg_select(dev, off); return inw((u16)(PCI_DATA + (off & 2))); }
u8  pci_cfg_read8(u32 dev, u32 off)  { cfg_select(dev, off); return inb((u16)(PCI_DATA + (off & 3))); }
void pci_cfg_write32(u32 dev, u32 off, u32 v) { cfg_select(dev, off); outl(PCI_DATA, v); }
void pci_cfg_write16(u32 dev, u32 off, u16 v) { cfg_select(dev, off); outw((u16)(PCI_DATA + (off & 2)), v); }

/* ---- BAR0 --------------------------------------------------------------------- */
u64 vdrv_bar0_size(struct vdev *d, u32 *orig, u32 *lo, u32 *hi)
{
    u32 s = d->slot;
    pci_cfg_write16(s, 0x04, 0);                        /* decoding off */
    *orig = pci_cfg_read32(s, 0x10);
    pci_cfg_write32(s, 0x10, 0xFFFFFFFFu);
    pci_cfg_write32(s, 0x14, 0xFFFFFFFFu);
    *lo = pci_cfg_read32(s, 0x10);
    *hi = pci_cfg_read32(s, 0x14);
    u64 mask = ((u64)*hi << 32) | (*lo & ~0xFu);
    return ~mask + 1;
}

void vdrv_bar0_assign(struct vdev *d)
{
    u32 s = d->slot;
    pci_cfg_write32(s, 0x10, (u32)d->bar);
    pci_cfg_write32(s, 0x14, (u32)(d->bar >> 32));
    pci_cfg_write16(s, 0x04, 0x0006);                   /* memory | bus master */
}

/* ---- capabilities ------------------------------------------------------------ */
u32 vdrv_find_caps(struct vdev *d, vdrv_cap_fn on_cap)
{
    u32 slot = d->slot;
    u32 got = 0;
    u8 p = pci_cfg_read8(slot, 0x34) & 0xFC;
    for (int n = 0; p && n < 48; n++) {
        u8 id = pci_cfg_read8(slot, p);
        if (id == PCI_CAP_VENDOR) {
            u8 type = pci_cfg_read8(slot, p + 3);
            u64 at = d->bar + pci_cfg_read32(slot, p + 8);
            switch (type) {
            case 1: d->common = at; got |= VDRV_HAVE_COMMON; break;
            case 2:
                d->notify = at; got |= VDRV_HAVE_NOTIFY;
                d->notify_mul = pci_cfg_read32(slot, p + 16);
                break;
            case 3: d->isr = at; got |= VDRV_HAVE_ISR; break;
            case 4: d->devcfg = at; got |= VDRV_HAVE_DEVCFG; break;
            default: break;
            }
        } else if (id == PCI_CAP_MSIX) {
            d->msix_cap = p;
            got |= VDRV_HAVE_MSIX;
            d->msix_vectors = (pci_cfg_read16(slot, p + 2) & 0x7FF) + 1u;
            d->table = d->bar + (pci_cfg_read32(slot, p + 4) & ~7u);
            d->pba = d->bar + (pci_cfg_read32(slot, p + 8) & ~7u);
        }
        if (on_cap)
            on_cap(d, p, id);
        p = pci_cfg_read8(slot, p + 1) & 0xFC;
    }
    return got;
}

/* ---- MSI-X ------------------------------------------------------------------- */
void vdrv_msix_control(struct vdev *d, u16 bits)
{
    u16 c = pci_cfg_read16(d->slot, d->msix_cap + 2);
    c = (u16)((c & ~(MSIX_CTL_ENABLE | MSIX_CTL_FMASK)) | bits);
    pci_cfg_write16(d->slot, d->msix_cap + 2, c);
}

void vdrv_setup_msix(struct vdev *d, u8 dest)
{
    vdrv_msix_control(d, MSIX_CTL_ENABLE | MSIX_CTL_FMASK);
    u8 vecs[2] = { d->vec_cfg, d->vec_q0 };
    for (u32 v = 0; v < 2; v++) {
        u64 e = d->table + 16 * v;
        mmio_write32(e + 0, 0xFEE00000u | ((u32)dest << 12));
        mmio_write32(e + 4, 0);
        mmio_write32(e + 8, vecs[v]);
        mmio_write32(e + 12, 0);
    }
    vdrv_msix_control(d, MSIX_CTL_ENABLE);
}

/* ---- initialisation (virtio 1.2 3.1.1) ------------------------------------------ */
int vdrv_reset_ack(struct vdev *d)
{
    vdrv_set_status(d, 0);
    int reset_ok = vdrv_status(d) == 0;
    vdrv_set_status(d, ST_ACK);
    vdrv_set_status(d, ST_ACK | ST_DRIVER);
    return reset_ok;
}

int vdrv_set_features(struct vdev *d, u32 lo, u32 hi)
{
    mmio_write32(d->common + CC_GFSEL, 0);
    mmio_write32(d->common + CC_GF, lo);
    mmio_write32(d->common + CC_GFSEL, 1);
    mmio_write32(d->common + CC_GF, hi);
    vdrv_set_status(d, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
    return (vdrv_status(d) & ST_FEATURES_OK) != 0;
}

void vdrv_setup_queue0(struct vdev *d)
{
    mmio_write16(d->common + CC_MSIX, 0);
    mmio_write16(d->common + CC_QSEL, 0);
    d->queue_max = mmio_read16(d->common + CC_QSIZE);
    mmio_write16(d->common + CC_QSIZE, QSIZE);
    u64 desc = (u64)d->q->desc, drv = (u64)&d->q->avail, dev = (u64)&d->q->used;
    mmio_write32(d->common + CC_QDESC, (u32)desc);
    mmio_write32(d->common + CC_QDESC + 4, (u32)(desc >> 32));
    mmio_write32(d->common + CC_QDRIVER, (u32)drv);
    mmio_write32(d->common + CC_QDRIVER + 4, (u32)(drv >> 32));
    mmio_write32(d->common + CC_QDEVICE, (u32)dev);
    mmio_write32(d->common + CC_QDEVICE + 4, (u32)(dev >> 32));
    mmio_write16(d->common + CC_QMSIX, 1);
    d->notify_off = mmio_read16(d->common + CC_QNOFF);
    d->notify_addr = d->notify + (u64)d->notify_off * d->notify_mul;
    mmio_write16(d->common + CC_QENABLE, 1);
}

u8 vdrv_driver_ok(struct vdev *d)
{
    vdrv_set_status(d, ST_ALL_OK);
    return vdrv_status(d);
}

/* ---- requests ---------------------------------------------------------------- */
u16 vdrv_submit(struct vdev *d, const struct buf *b, int n)
{
    struct vq *q = d->q;
    u16 head = d->next_desc;
    for (int i = 0; i < n; i++) {
        u16 idx = (u16)((head + i) % QSIZE);
        q->desc[idx].addr = (u64)b[i].addr;
        q->desc[idx].len = b[i].len;
        q->desc[idx].flags = (u16)((i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
                                   (b[i].write ? VIRTQ_DESC_F_WRITE : 0));
        q->desc[idx].next = (u16)((head + i + 1) % QSIZE);
    }
    d->next_desc = (u16)((head + n) % QSIZE);
    vdrv_publish(d, head);
    __asm__ volatile("" ::: "memory");
    vdrv_kick(d);
    return head;
}
