/* msix_smp: a real PCI function's MSI-X table entries steer its interrupts
 * to the CPU their message names. The BSP starts every AP (lib/smp_boot.c),
 * brings up the virtio-rng function (lib/virtio_drv.c: BAR, capabilities,
 * MSI-X, queue 0 on table entry 1) and, for each case, rewrites entry 1's
 * message address (masking the entry around the rewrite, as a driver
 * must), completes one rng request and counts which CPU took the vector:
 *   physical destination = each CPU's APIC ID in turn: that CPU alone;
 *   physical broadcast 0xFF: every CPU once;
 *   entry masked while the request completes: nothing delivered, the
 *   entry's PBA bit set; unmasked: delivered to its CPU (the last), PBA
 *   bit clear.
 * Each case reports every CPU's count on port 0x648 as
 * (case << 16) | (cpu << 8) | count, then checks it (PASS/FAIL).
 * arg0 = vCPUs (2..16). Exit status = failures. */
#include "lib/smp_boot.h"
#include "lib/virtio_drv.h"

#define PORT_TABLE 0x648
#define MAX_CPUS   SMP_MAX_CPUS
#define CASES      (MAX_CPUS + 2)

static u32 ncpus;
static struct vq rng_q __attribute__((aligned(4096)));
static struct vdev rng;
static u8 rng_buf[16] __attribute__((aligned(64)));
static volatile u32 hits[CASES][MAX_CPUS];
static volatile u32 total[CASES];
static volatile u32 cur_case;
static volatile u32 cfg_irqs;

static void q_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u32 c = cur_case, id = lapic_id();
    if (c < CASES && id < MAX_CPUS) {
        hits[c][id]++;
        __atomic_fetch_add(&total[c], 1, __ATOMIC_SEQ_CST);
    }
    lapic_eoi();
}

static void cfg_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    cfg_irqs++;
    lapic_eoi();
}

static void ap_main(void)
{
    smp_ap_online();
    for (;;)
        sti_hlt();
}

/* Entry 1 (queue 0) to physical destination `dest`, masked around the
 * rewrite; left masked with `keep_masked`. */
static void retarget(u8 dest, int keep_masked)
{
    u64 e = rng.table + 16;
    mmio_write32(e + 12, 1);
    mmio_write32(e + 0, 0xFEE00000u | ((u32)dest << 12));
    mmio_write32(e + 4, 0);
    if (!keep_masked)
        mmio_write32(e + 12, 0);
}

/* One 16-byte rng request; returns once the device has used it (bounded). */
static int request(void)
{
    struct buf b = { rng_buf, sizeof(rng_buf), 1 };
    vdrv_submit(&rng, &b, 1);
    u32 len = 0;
    for (u32 i = 0; i < SMP_WAIT_ITERS; i++) {
        if (vdrv_take_used(&rng, 0, &len))
            return len == sizeof(rng_buf);
        outb(0x80, 0);
    }
    return 0;
}

static void report(u32 c)
{
    for (u32 id = 0; id < ncpus; id++)
        outl(PORT_TABLE, (c << 16) | (id << 8) | (hits[c][id] & 0xff));
}

/* Exactly `want` on each CPU in `mask` (one bit per APIC ID), 0 elsewhere. */
static int only(u32 c, u32 mask, u32 want)
{
    for (u32 id = 0; id < ncpus; id++)
        if (hits[c][id] != ((mask >> id) & 1 ? want : 0))
            return 0;
    return 1;
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg1; (void)arg2; (void)arg3;
    ncpus = (u32)arg0;
    cli();
    idt_init();
    irq_register(VEC_RNG_Q0, q_handler);
    irq_register(VEC_RNG_CFG, cfg_handler);
    lapic_enable();
    if (ncpus < 2 || ncpus > MAX_CPUS || lapic_id() != 0) {
        kprintf("msix_smp: need 2..%u vCPUs, got %u\n", MAX_CPUS, ncpus);
        return (int)failures + 1;
    }
    CHECK("all_aps_started", smp_start_aps(ncpus, ap_main) == ncpus - 1);

    rng.name = "rng"; rng.bar = RNG_BAR; rng.vec_cfg = VEC_RNG_CFG; rng.vec_q0 = VEC_RNG_Q0; rng.q = &rng_q;
    for (u32 s = 1; s < 32 && !rng.slot; s++) {
        u32 id = pci_cfg_read32(s, 0);
        if ((id & 0xFFFF) == VIRTIO_VENDOR && (id >> 16) == DEVID_RNG)
            rng.slot = s;
    }
    CHECK("rng_found", rng.slot != 0);
    if (!rng.slot)
        return (int)failures;
    vdrv_bar0_assign(&rng);
    int caps = (vdrv_find_caps(&rng, 0) & VDRV_HAVE_MSIX) != 0;
    vdrv_setup_msix(&rng, 0);
    vdrv_reset_ack(&rng);
    int fok = vdrv_set_features(&rng, 0, F_VERSION_1_HI);
    vdrv_setup_queue0(&rng);
    int dok = vdrv_driver_ok(&rng) == ST_ALL_OK;
    CHECK("rng_msix_driver_ok", caps && fok && dok);
    if (!(caps && fok && dok))
        return (int)failures;

    /* Physical destination: each CPU in turn takes the completion alone. */
    int each = 1;
    for (u32 id = 0; id < ncpus; id++) {
        cur_case = id;
        retarget((u8)id, 0);
        int used = request();
        smp_wait_until(&total[id], 1);
        rt_settle();
        report(id);
        if (!used || !only(id, 1u << id, 1)) {
            each = 0;
            kprintf("msix_smp: to cpu %u: used=%d total=%u\n", id, used, total[id]);
        }
    }
    CHECK("msix_physical_each_cpu", each);

    /* Physical broadcast: every CPU once. */
    u32 c = MAX_CPUS;
    cur_case = c;
    retarget(0xFF, 0);
    int used = request();
    smp_wait_until(&total[c], ncpus);
    rt_settle();
    report(c);
    CHECK("msix_physical_broadcast", used && only(c, (1u << ncpus) - 1, 1));

    /* Masked entry: the message waits in the PBA, then goes to its CPU. */
    c = MAX_CPUS + 1;
    cur_case = c;
    u32 last = ncpus - 1;
    retarget((u8)last, 1);
    used = request();
    rt_settle();
    int held = total[c] == 0 && (mmio_read64(rng.pba) & 2) != 0;
    mmio_write32(rng.table + 16 + 12, 0);
    smp_wait_until(&total[c], 1);
    rt_settle();
    report(c);
    CHECK("msix_masked_entry_pending_bit", used && held);
    CHECK("msix_unmask_delivers_to_its_cpu", only(c, 1u << last, 1) && (mmio_read64(rng.pba) & 2) == 0);
    CHECK("msix_no_config_interrupt", cfg_irqs == 0);
    kprintf("msix_smp: cpus=%u failures=%u\n", ncpus, failures);
    return (int)failures;
}
