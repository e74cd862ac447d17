/* virtio: PCI enumeration, BAR placement, MSI-X and virtio-pci (modern)
 * drivers for virtio-rng and virtio-blk, as a real guest would run them.
 *
 *   arg0 = expected blk capacity in sectors after the resize (0: only
 *          check that it changed)
 *
 * Host side: the PCI bus plugin with a virtio-rng and a virtio-blk function
 * anywhere on bus 0 (found by device ID 0x1044 / 0x1042), config mechanism
 * #1 at 0xCF8/0xCFC, ECAM at 0xB0000000, and a 1-port PIO hook at 0x2F0
 * whose write of 1 resizes the disk (the guest prints WAITING_FOR_RESIZE
 * right before that write).
 *
 * BAR 0 (64-bit, 32 KiB) of rng is placed at 0xE0000000, of blk at
 * 0xE0010000. MSI-X vectors (IDT): rng config 0x60, rng q0 0x61, blk config
 * 0x62, blk q0 0x63; messages to 0xFEE00000 | apic_id << 12, data = vector.
 * Queues of size 8 in static buffers. Blk sector 1 is written with the
 * pattern byte i -> (i * 7 + 0x5A) & 0xFF (i = 0..511).
 *
 * Every interrupt wait is bounded: RT_WAIT_ITERS iterations of `outb 0x80`
 * with IF=1, then RT_SETTLE_ITERS more to catch duplicates. One PASS/FAIL
 * line per check; exits through 0xF4 with the failure count. */
#include "lib/rt.h"
#include "lib/virtio_drv.h"


#define ECAM_BASE 0xB0000000UL
#define PORT_RESIZE 0x2F0

#define BLK_F_BLK_SIZE (1u << 6)
#define BLK_F_FLUSH    (1u << 9)

static struct vq rng_q __attribute__((aligned(4096)));
static struct vq blk_q __attribute__((aligned(4096)));
static struct vdev rng, blk;

static u8 rng_buf[16] __attribute__((aligned(64)));
static struct blk_hdr blk_hdr __attribute__((aligned(16)));
static u8 blk_wbuf[512] __attribute__((aligned(512)));
static u8 blk_rbuf[512] __attribute__((aligned(512)));
static u8 blk_id[20] __attribute__((aligned(16)));
static volatile u8 blk_status __attribute__((aligned(16)));

static volatile u32 cnt[256];

static void h_count(u64 v, struct frame *f)
{
    (void)f;
    cnt[v & 0xFF]++;
    lapic_eoi();
}

static u32 wait_for(u8 vec, u32 target) { return rt_wait_for(&cnt[vec], target); }
/* ---- helpers ------------------------------------------------------------ */
static int pba_bit(struct vdev *d, u32 vector)
{
    return (mmio_read32(d->pba + 4 * (vector / 32)) >> (vector % 32)) & 1;
}

static void msix_entry_mask(struct vdev *d, u32 vector, int masked)
{
    mmio_write32(d->table + 16 * vector + 12, masked ? 1 : 0);
}

static void blk_req(u32 type, u64 sector, void *data, u32 len, int data_write)
{
    blk_hdr.type = type;
    blk_hdr.reserved = 0;
    blk_hdr.sector = sector;
    blk_status = 0xFF;
    struct buf b[3];
    int n = 0;
    b[n].addr = &blk_hdr; b[n].len = sizeof(blk_hdr); b[n].write = 0; n++;
    if (data) { b[n].addr = data; b[n].len = len; b[n].write = data_write; n++; }
    b[n].addr = (const void *)&blk_status; b[n].len = 1; b[n].write = 1; n++;
    vdrv_submit(&blk, b, n);
}

/* ---- enumeration and BARs ------------------------------------------------ */
/* Layout expected of this host: every structure in BAR 0, common at 0x0
 * (at least 0x38 bytes), ISR 0x1000, device 0x2000, notify 0x3000 x4,
 * MSI-X table 0x4000 / PBA 0x5000 (BIR 0). */
static int caps_layout_ok;

static void check_cap_layout(struct vdev *d, u8 p, u8 id)
{
    u32 slot = d->slot;
    if (id == PCI_CAP_VENDOR) {
        u8 type = pci_cfg_read8(slot, p + 3);
        u8 bar = pci_cfg_read8(slot, p + 4);
        u32 off = pci_cfg_read32(slot, p + 8);
        u32 len = pci_cfg_read32(slot, p + 12);
        if (type >= 1 && type <= 4 && bar != 0) caps_layout_ok = 0;
        switch (type) {
        case 1: if (off != 0x0 || len < 0x38) caps_layout_ok = 0; break;
        case 2: if (off != 0x3000 || d->notify_mul != 4) caps_layout_ok = 0; break;
        case 3: if (off != 0x1000) caps_layout_ok = 0; break;
        case 4: if (off != 0x2000) caps_layout_ok = 0; break;
        default: break;
        }
    } else if (id == PCI_CAP_MSIX) {
        u32 t = pci_cfg_read32(slot, p + 4), pb = pci_cfg_read32(slot, p + 8);
        if ((t & 7) != 0 || (t & ~7u) != 0x4000 || (pb & 7) != 0 || (pb & ~7u) != 0x5000)
            caps_layout_ok = 0;
    }
}

static void find_caps(struct vdev *d, u32 dev_cfg_expected)
{
    caps_layout_ok = 1;
    u32 got = vdrv_find_caps(d, check_cap_layout);
    kprintf("%s: common=%p notify=%p (x%u) isr=%p devcfg=%p msix cap 0x%x table=%p pba=%p vectors=%u\n",
            d->name, (void *)d->common, (void *)d->notify, d->notify_mul, (void *)d->isr,
            (void *)d->devcfg, d->msix_cap, (void *)d->table, (void *)d->pba, d->msix_vectors);
    u32 need = VDRV_HAVE_COMMON | VDRV_HAVE_NOTIFY | VDRV_HAVE_ISR | VDRV_HAVE_MSIX;
    int found = (got & need) == need && ((got & VDRV_HAVE_DEVCFG) != 0) == (dev_cfg_expected != 0);
    if (d == &rng) {
        CHECK("rng_caps_found", found);
        CHECK("rng_caps_layout", caps_layout_ok);
        CHECK("rng_msix_2_vectors", d->msix_vectors == 2);
    } else {
        CHECK("blk_caps_found", found);
        CHECK("blk_caps_layout", caps_layout_ok);
        CHECK("blk_msix_2_vectors", d->msix_vectors == 2);
    }
}

/* Size BAR0/1 (64-bit) and place it at d->bar; enable memory + bus master. */
static void place_bar(struct vdev *d)
{
    u32 s = d->slot;
    u32 orig, lo, hi;
    u64 size = vdrv_bar0_size(d, &orig, &lo, &hi);
    kprintf("%s: BAR0 flags=0x%x size=0x%lx -> %p\n", d->name, orig & 0xF, size, (void *)d->bar);
    int ok = (orig & 0x7) == 0x4 && (lo & 0xF) == (orig & 0xF) && size == 0x8000;
    if (d == &rng) CHECK("rng_bar0_mem64_32k", ok);
    else CHECK("blk_bar0_mem64_32k", ok);
    vdrv_bar0_assign(d);
    u32 rb_lo = pci_cfg_read32(s, 0x10), rb_hi = pci_cfg_read32(s, 0x14);
    u16 cmd = pci_cfg_read16(s, 0x04);
    ok = (rb_lo & ~0xFu) == (u32)d->bar && rb_hi == (u32)(d->bar >> 32) && (cmd & 6) == 6;
    if (d == &rng) CHECK("rng_bar0_command_readback", ok);
    else CHECK("blk_bar0_command_readback", ok);
}

/* MSI-X: function-masked enable, program entries, then unmask. */
static void setup_msix(struct vdev *d, u8 dest)
{
    vdrv_setup_msix(d, dest);
    u16 ctl = pci_cfg_read16(d->slot, d->msix_cap + 2);
    int ok = (ctl & (MSIX_CTL_ENABLE | MSIX_CTL_FMASK)) == MSIX_CTL_ENABLE &&
             mmio_read32(d->table + 16 + 8) == d->vec_q0 &&
             mmio_read32(d->table + 16 + 12) == 0 &&
             mmio_read32(d->table + 0) == (0xFEE00000u | ((u32)dest << 12));
    if (d == &rng) CHECK("rng_msix_enabled_table_readback", ok);
    else CHECK("blk_msix_enabled_table_readback", ok);
}

/* virtio 1.2 3.1.1 driver initialisation; returns 1 on DRIVER_OK. */
static int init_virtio(struct vdev *d, u32 want_lo)
{
    int reset_ok = vdrv_reset_ack(d);
    mmio_write32(d->common + CC_DFSEL, 0);
    u32 f_lo = mmio_read32(d->common + CC_DF);
    mmio_write32(d->common + CC_DFSEL, 1);
    u32 f_hi = mmio_read32(d->common + CC_DF);
    kprintf("%s: device features hi=0x%x lo=0x%x num_queues=%u\n", d->name, f_hi, f_lo,
            mmio_read16(d->common + CC_NUMQ));
    int v1 = (f_hi & F_VERSION_1_HI) != 0;
    int nq1 = mmio_read16(d->common + CC_NUMQ) == 1;

    int refused = 1;
    if (d == &rng) {
        /* Without VERSION_1 the device must refuse FEATURES_OK. */
        refused = !vdrv_set_features(d, 0, 0);
        vdrv_reset_ack(d);
    }

    int fok = vdrv_set_features(d, f_lo & want_lo, F_VERSION_1_HI);

    vdrv_setup_queue0(d);                       /* then read back what it wrote */
    u64 desc = (u64)d->q->desc;
    int cfgvec_ok = mmio_read16(d->common + CC_MSIX) == 0;
    u16 qmax = d->queue_max;
    int qsize_ok = qmax >= QSIZE && mmio_read16(d->common + CC_QSIZE) == QSIZE;
    int qvec_ok = mmio_read16(d->common + CC_QMSIX) == 1;
    u16 noff = d->notify_off;
    int qen_ok = mmio_read16(d->common + CC_QENABLE) == 1 &&
                 mmio_read32(d->common + CC_QDESC) == (u32)desc;

    u8 st = vdrv_driver_ok(d);
    int dok = st == ST_ALL_OK;
    kprintf("%s: status=0x%x queue max=%u notify_off=%u notify=%p\n", d->name, st, qmax, noff,
            (void *)d->notify_addr);

    if (d == &rng) {
        CHECK("rng_reset_status_0", reset_ok);
        CHECK("rng_offers_version_1", v1);
        CHECK("rng_one_queue", nq1);
        CHECK("rng_features_ok_refused_without_version_1", refused);
        CHECK("rng_features_ok", fok);
        CHECK("rng_config_msix_vector_readback", cfgvec_ok);
        CHECK("rng_queue_size_8", qsize_ok);
        CHECK("rng_queue_msix_vector_readback", qvec_ok);
        CHECK("rng_queue_enabled", qen_ok);
        CHECK("rng_driver_ok", dok);
    } else {
        CHECK("blk_reset_status_0", reset_ok);
        CHECK("blk_offers_version_1", v1);
        CHECK("blk_one_queue", nq1);
        CHECK("blk_features_ok", fok);
        CHECK("blk_config_msix_vector_readback", cfgvec_ok);
        CHECK("blk_queue_size_8", qsize_ok);
        CHECK("blk_queue_msix_vector_readback", qvec_ok);
        CHECK("blk_queue_enabled", qen_ok);
        CHECK("blk_driver_ok", dok);
    }
    return dok;
}

static u64 blk_capacity(u8 *gen_out)
{
    /* Generation-consistent read (virtio 1.2 4.1.4.3.1 / 2.5.1). */
    u64 cap = 0;
    u8 g0 = 0;
    for (int i = 0; i < 4; i++) {
        g0 = mmio_read8(blk.common + CC_GEN);
        u32 lo = mmio_read32(blk.devcfg + 0), hi = mmio_read32(blk.devcfg + 4);
        cap = ((u64)hi << 32) | lo;
        if (mmio_read8(blk.common + CC_GEN) == g0)
            break;
    }
    if (gen_out) *gen_out = g0;
    return cap;
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg1; (void)arg2; (void)arg3;
    cli();
    idt_init();
    lapic_enable();
    u8 dest = (u8)lapic_id();
    for (u32 v = VEC_RNG_CFG; v <= VEC_BLK_Q0; v++)
        irq_register((u8)v, h_count);

    /* ---- host bridge and enumeration ---------------------------------- */
    u32 hb_id = pci_cfg_read32(0, 0x00), hb_class = pci_cfg_read32(0, 0x08) >> 8;
    kprintf("virtio: 00:00.0 id=0x%08x class=0x%06x\n", hb_id, hb_class);
    CHECK("host_bridge_present", (hb_id & 0xFFFF) != 0xFFFF);
    CHECK("host_bridge_class_060000", hb_class == 0x060000);
    CHECK("ecam_matches_cf8", mmio_read32(ECAM_BASE) == hb_id);

    rng.name = "rng"; rng.bar = RNG_BAR; rng.vec_cfg = VEC_RNG_CFG; rng.vec_q0 = VEC_RNG_Q0; rng.q = &rng_q;
    blk.name = "blk"; blk.bar = BLK_BAR; blk.vec_cfg = VEC_BLK_CFG; blk.vec_q0 = VEC_BLK_Q0; blk.q = &blk_q;
    int n_rng = 0, n_blk = 0, n_virtio = 0, absent_ok = 1;
    for (u32 s = 1; s < 32; s++) {
        u32 id = pci_cfg_read32(s, 0);
        if ((id & 0xFFFF) == 0xFFFF) {
            if (id != 0xFFFFFFFFu) absent_ok = 0;
            continue;
        }
        u32 class = pci_cfg_read32(s, 0x08);
        u16 sub = pci_cfg_read16(s, 0x2E);
        kprintf("virtio: 00:%02x.0 id=0x%08x class/rev=0x%08x subsys=0x%04x\n", s, id, class, sub);
        if ((id & 0xFFFF) != VIRTIO_VENDOR)
            continue;
        n_virtio++;
        if ((id >> 16) == DEVID_RNG) { rng.slot = s; n_rng++; }
        if ((id >> 16) == DEVID_BLK) { blk.slot = s; n_blk++; }
        if ((class & 0xFF) < 1 || sub < 0x40) absent_ok = 0;   /* modern: rev >= 1, subsys >= 0x40 */
    }
    CHECK("enum_found_rng", n_rng == 1);
    CHECK("enum_found_blk", n_blk == 1);
    CHECK("enum_two_virtio_functions", n_virtio == 2);
    CHECK("enum_absent_slots_all_ones_and_modern_ids", absent_ok);
    if (n_rng != 1 || n_blk != 1) {
        kprintf("virtio: devices missing, giving up (%u failures)\n", failures);
        return (int)failures;
    }
    CHECK("status_capability_list", (pci_cfg_read16(rng.slot, 0x06) & 0x10) && (pci_cfg_read16(blk.slot, 0x06) & 0x10));

    /* ---- BARs, capabilities, MSI-X -------------------------------------- */
    place_bar(&rng);
    place_bar(&blk);
    find_caps(&rng, 0);
    find_caps(&blk, 1);
    setup_msix(&rng, dest);
    setup_msix(&blk, dest);

    /* ---- virtio init ------------------------------------------------------ */
    int rng_ok = init_virtio(&rng, 0);
    int blk_ok = init_virtio(&blk, BLK_F_FLUSH | BLK_F_BLK_SIZE);
    if (!rng_ok || !blk_ok) {
        kprintf("virtio: init failed, giving up (%u failures)\n", failures);
        return (int)failures;
    }

    /* ---- rng: one 16-byte request --------------------------------------- */
    {
        struct buf b = { rng_buf, sizeof(rng_buf), 1 };
        u16 head = vdrv_submit(&rng, &b, 1);
        u32 c = wait_for(VEC_RNG_Q0, 1);
        u32 id = 0xFFFF, len = 0;
        int got = vdrv_take_used(&rng, &id, &len);
        int nz = 0;
        for (u32 i = 0; i < sizeof(rng_buf); i++) nz |= rng_buf[i];
        kprintf("rng: irq=%u used id=%u len=%u bytes=%02x%02x%02x%02x...\n", c, id, len,
                rng_buf[0], rng_buf[1], rng_buf[2], rng_buf[3]);
        CHECK("rng_irq_on_queue_vector_once", c == 1);
        CHECK("rng_no_config_irq", cnt[VEC_RNG_CFG] == 0);
        CHECK("rng_used_id_head", got && id == head);
        CHECK("rng_used_len_16", got && len == 16);
        CHECK("rng_bytes_not_all_zero", nz != 0);
    }

    /* ---- blk: capacity, write, read back, flush, get_id -------------------- */
    u8 gen0 = 0;
    u64 cap0 = blk_capacity(&gen0);
    u32 blksz = mmio_read32(blk.devcfg + 20);
    kprintf("blk: capacity=%lu sectors blk_size=%u generation=%u\n", cap0, blksz, gen0);
    CHECK("blk_capacity_at_least_2", cap0 >= 2);
    CHECK("blk_size_512", blksz == 512);
    {
        for (u32 i = 0; i < 512; i++) blk_wbuf[i] = (u8)(i * 7 + 0x5A);
        u32 id, len;
        blk_req(BLK_T_OUT, 1, blk_wbuf, 512, 0);
        u32 c = wait_for(VEC_BLK_Q0, 1);
        int got = vdrv_take_used(&blk, &id, &len);
        CHECK("blk_write_irq_on_queue_vector", c == 1);
        CHECK("blk_write_status_ok", got && blk_status == 0);

        blk_req(BLK_T_IN, 1, blk_rbuf, 512, 1);
        c = wait_for(VEC_BLK_Q0, 2);
        got = vdrv_take_used(&blk, &id, &len);
        CHECK("blk_read_irq", c == 2);
        CHECK("blk_read_status_ok", got && blk_status == 0);
        CHECK("blk_read_used_len_513", got && len == 513);
        CHECK("blk_read_matches_written", memcmp(blk_rbuf, blk_wbuf, 512) == 0);

        blk_req(BLK_T_FLUSH, 0, 0, 0, 0);
        c = wait_for(VEC_BLK_Q0, 3);
        got = vdrv_take_used(&blk, &id, &len);
        CHECK("blk_flush_ok", c == 3 && got && blk_status == 0);

        blk_req(BLK_T_GET_ID, 0, blk_id, sizeof(blk_id), 1);
        c = wait_for(VEC_BLK_Q0, 4);
        got = vdrv_take_used(&blk, &id, &len);
        char idstr[21];
        for (int i = 0; i < 20; i++) idstr[i] = (char)blk_id[i];
        idstr[20] = 0;
        kprintf("blk: GET_ID \"%s\" used len=%u\n", idstr, len);
        CHECK("blk_get_id_ok", c == 4 && got && blk_status == 0 && blk_id[0] != 0);

        blk_req(BLK_T_IN, cap0, blk_rbuf, 512, 1);     /* one past the end */
        c = wait_for(VEC_BLK_Q0, 5);
        got = vdrv_take_used(&blk, &id, &len);
        CHECK("blk_read_past_end_ioerr", c == 5 && got && blk_status == 1);
        CHECK("blk_no_config_irq", cnt[VEC_BLK_CFG] == 0);
    }

    /* ---- MSI-X entry mask ------------------------------------------------ */
    {
        u32 id, len;
        CHECK("msix_pba_clear_initially", !pba_bit(&blk, 1));
        msix_entry_mask(&blk, 1, 1);
        blk_req(BLK_T_GET_ID, 0, blk_id, sizeof(blk_id), 1);
        rt_settle();
        int got = vdrv_take_used(&blk, &id, &len);
        CHECK("msix_masked_request_completed", got && blk_status == 0);
        CHECK("msix_masked_no_interrupt", cnt[VEC_BLK_Q0] == 5);
        CHECK("msix_masked_pba_bit_set", pba_bit(&blk, 1));
        msix_entry_mask(&blk, 1, 0);
        u32 c = wait_for(VEC_BLK_Q0, 6);
        CHECK("msix_unmask_delivers_once", c == 6);
        CHECK("msix_unmask_pba_bit_clear", !pba_bit(&blk, 1));
    }

    /* ---- MSI-X function mask ----------------------------------------------- */
    {
        u32 id, len;
        vdrv_msix_control(&blk, MSIX_CTL_ENABLE | MSIX_CTL_FMASK);
        blk_req(BLK_T_FLUSH, 0, 0, 0, 0);
        rt_settle();
        int got = vdrv_take_used(&blk, &id, &len);
        CHECK("fmask_request_completed", got && blk_status == 0);
        CHECK("fmask_no_interrupt", cnt[VEC_BLK_Q0] == 6);
        CHECK("fmask_pba_bit_set", pba_bit(&blk, 1));
        vdrv_msix_control(&blk, MSIX_CTL_ENABLE);
        u32 c = wait_for(VEC_BLK_Q0, 7);
        CHECK("fmask_clear_delivers_once", c == 7);
        CHECK("fmask_clear_pba_bit_clear", !pba_bit(&blk, 1));
    }

    /* ---- config change (host resize) --------------------------------------- */
    {
        serial_puts("WAITING_FOR_RESIZE\n");
        outb(PORT_RESIZE, 1);
        u32 c = wait_for(VEC_BLK_CFG, 1);
        u8 gen1 = 0;
        u64 cap1 = blk_capacity(&gen1);
        kprintf("blk: after resize capacity=%lu generation=%u config irqs=%u\n", cap1, gen1, c);
        CHECK("config_change_irq_on_config_vector", c == 1);
        CHECK("config_change_no_queue_irq", cnt[VEC_BLK_Q0] == 7);
        CHECK("config_change_capacity_changed", cap1 != cap0);
        if (arg0)
            CHECK("config_change_capacity_expected", cap1 == arg0);
        CHECK("config_change_generation_changed", gen1 != gen0);
        CHECK("isr_zero_with_msix", mmio_read8(blk.isr) == 0);

        /* The resized disk still has sector 1. */
        u32 id, len;
        memset(blk_rbuf, 0, sizeof(blk_rbuf));
        blk_req(BLK_T_IN, 1, blk_rbuf, 512, 1);
        wait_for(VEC_BLK_Q0, 8);
        int got = vdrv_take_used(&blk, &id, &len);
        CHECK("after_resize_sector1_intact", got && blk_status == 0 &&
              memcmp(blk_rbuf, blk_wbuf, 512) == 0);
    }

    CHECK("no_unexpected_interrupts", unexpected_irqs == 0);
    CHECK("rng_no_stray_irqs", cnt[VEC_RNG_Q0] == 1 && cnt[VEC_RNG_CFG] == 0);
    CHECK("devices_not_needing_reset",
          !(vdrv_status(&rng) & ST_NEEDS_RESET) && !(vdrv_status(&blk) & ST_NEEDS_RESET));
    kprintf("virtio: %u failures, %u unexpected interrupts\n", failures, unexpected_irqs);
    return (int)failures;
}
