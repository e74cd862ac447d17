/* virtio_bench (benchmark): virtio-pci notify round trip and virtio-blk
 * 4-KiB request throughput, timed in the guest with rdtsc.
 *
 *   arg0 = notify iterations (0 -> 200, capped at 4000)
 *   arg1 = blk requests per phase (0 -> 100, capped at 1000)
 *
 * Host side (as for `virtio`): the PCI bus plugin with a virtio-rng and a
 * virtio-blk function on bus 0 (found by device ID 0x1044 / 0x1042), config
 * mechanism #1 at 0xCF8/0xCFC; the disk must hold arg1 * 4 KiB. Optional
 * phase marker port 0x2F8 (`outb` phase number: 1 before the notify loop,
 * 2 before the writes, 3 before the reads, 4 after them) so the host can
 * snapshot its exit counters per phase; unclaimed, it is just an exit.
 *
 * Init is the trimmed `virtio` sequence, on lib/virtio_drv.c (no PASS/FAIL
 * lines, nearly no output): BAR 0 of rng at 0xE0000000, of blk at
 * 0xE0010000, MSI-X vectors rng cfg/q0 0x60/0x61, blk cfg/q0 0x62/0x63,
 * queues of 8.
 *
 * Both queue vectors go to `vb_irq`, a raw IDT handler of a dozen
 * instructions (this KVM emulates every guest instruction, ~1 M/s): it
 * stores rdtsc in irq_tsc, increments irq_count and EOIs the LAPIC.
 *
 * a. notify round trip: arg0 x { one 8-byte rng request (descriptor 0,
 *    prebuilt), t0 = rdtsc, write the queue notify register, `sti;hlt`
 *    until irq_count moves }, sample = irq_tsc - t0.
 * b. blk: arg1 x 4-KiB VIRTIO_BLK_T_OUT at sector 8*i (the prebuilt buffer,
 *    bytes 0..7 = 0xB10C000000000000 | i, byte j >= 8 = (j*7 + 0x5A) & 0xFF),
 *    then arg1 x VIRTIO_BLK_T_IN of the same sectors, one at a time (fill
 *    header, avail, notify, wait, check the status byte); sample = irq_tsc -
 *    t0 per request, plus the whole phase (first t0 to last completion).
 *    Reads are checked (stamp and byte 4095).
 * Each phase also sums rdtsc right after the wait loop - handler TSC
 * ("tail": EOI, iretq, loop exit), so phase - samples - tail = the guest's
 * own per-request work (descriptor/header set-up, used ring, checks).
 *
 * Results at GPA 0x200000 (struct vb_results), per-iteration TSC samples
 * at 0x200100 (notify, u64[arg0]), 0x208000 (writes, u64[arg1]) and
 * 0x20A000 (reads, u64[arg1]). One summary line on serial; exits through
 * 0xF4 with the error count (0 on success). */
#include "lib/rt.h"
#include "lib/virtio_drv.h"

#define PORT_MARK 0x2F8

#define MAX_NOTIFY 4000
#define MAX_BLK    1000
#define BLK_BYTES  4096
#define STAMP      0xB10C000000000000UL

/* ---- results --------------------------------------------------------------- */
#define VB_MAGIC 0x4E4542564D564E44UL          /* "DNVMVBEN" */
struct vb_phase {
    u64 count;        /* completed iterations (samples stored) */
    u64 tsc_sum;      /* sum of the per-iteration samples */
    u64 tsc_min, tsc_max;
    u64 tsc_phase;    /* first t0 .. last completion */
    u64 tsc_tail;     /* sum of handler entry .. back in the wait loop */
};
struct vb_results {
    u64 magic;
    u64 errors;       /* init failures, bad status bytes, read mismatches */
    u64 notify_iters, blk_reqs, blk_bytes;
    struct vb_phase notify, write, read;
    u64 irq_count;    /* all queue interrupts seen */
    u64 unexpected;   /* other vectors */
};
static volatile struct vb_results *const res = (volatile struct vb_results *)RESULTS_BASE;
static volatile u64 *const s_notify = (volatile u64 *)(RESULTS_BASE + 0x100);
static volatile u64 *const s_write = (volatile u64 *)(RESULTS_BASE + 0x8000);
static volatile u64 *const s_read = (volatile u64 *)(RESULTS_BASE + 0xA000);

/* ---- the queue interrupt handler --------------------------------------------- */
volatile u64 irq_tsc, irq_count;
void vb_irq(void);
__asm__(
    ".text\n"
    ".globl vb_irq\n"
    "vb_irq:\n"
    "  push %rax\n"
    "  push %rdx\n"
    "  rdtsc\n"
    "  shl $32, %rdx\n"
    "  or %rdx, %rax\n"
    "  mov %rax, irq_tsc(%rip)\n"
    "  incq irq_count(%rip)\n"
    "  mov $0xfee000b0, %eax\n"        /* LAPIC EOI */
    "  movl $0, (%rax)\n"
    "  pop %rdx\n"
    "  pop %rax\n"
    "  iretq\n");

static struct vq rng_q __attribute__((aligned(4096)));
static struct vq blk_q __attribute__((aligned(4096)));
static struct vdev rng, blk;

static u8 rng_buf[8] __attribute__((aligned(64)));
static struct blk_hdr blk_hdr __attribute__((aligned(16)));
static u8 blk_wbuf[BLK_BYTES] __attribute__((aligned(4096)));
static u8 blk_rbuf[BLK_BYTES] __attribute__((aligned(4096)));
static volatile u8 blk_status __attribute__((aligned(16)));

static u64 errors;

static void place_bar(struct vdev *d)
{
    pci_cfg_write16(d->slot, 0x04, 0);                  /* decoding off */
    vdrv_bar0_assign(d);
    if ((pci_cfg_read32(d->slot, 0x10) & ~0xFu) != (u32)d->bar) errors++;
}

static void find_caps(struct vdev *d)
{
    u32 need = VDRV_HAVE_COMMON | VDRV_HAVE_NOTIFY | VDRV_HAVE_MSIX;
    if ((vdrv_find_caps(d, 0) & need) != need) errors++;
}

/* virtio 1.2 3.1.1 driver initialisation (VERSION_1 only, one queue). */
static void init_virtio(struct vdev *d)
{
    vdrv_reset_ack(d);
    if (!vdrv_set_features(d, 0, F_VERSION_1_HI)) errors++;
    vdrv_setup_queue0(d);
    if (vdrv_driver_ok(d) != ST_ALL_OK) errors++;
}

/* ---- the measured request ------------------------------------------------------ */
/* Publish head 0 (the prebuilt chain), note t0, kick, sleep until the queue
 * vector ran; returns the handler's TSC - t0 and adds rdtsc after the wait
 * - handler's TSC (EOI, iretq, loop exit) to *tail. Leaves IF=0. */
static inline u64 kick_and_wait(struct vdev *d, u64 *t0_out, volatile u64 *tail)
{
    vdrv_publish(d, 0);
    u64 c0 = irq_count;
    u64 t0 = rdtsc();
    vdrv_kick(d);
    while (irq_count == c0) {
        sti_hlt();
        cli();
    }
    u64 t1 = rdtsc();
    *tail += t1 - irq_tsc;
    *t0_out = t0;
    return irq_tsc - t0;
}

static void phase_init(volatile struct vb_phase *p)
{
    p->count = 0; p->tsc_sum = 0; p->tsc_min = ~0UL; p->tsc_max = 0; p->tsc_phase = 0; p->tsc_tail = 0;
}

static inline void phase_add(volatile struct vb_phase *p, volatile u64 *samples, u64 dt)
{
    samples[p->count] = dt;
    p->count++;
    p->tsc_sum += dt;
    if (dt < p->tsc_min) p->tsc_min = dt;
    if (dt > p->tsc_max) p->tsc_max = dt;
}

static void h_other(u64 v, struct frame *f)
{
    (void)v; (void)f;
    res->unexpected++;
    lapic_eoi();
}

/* One blk phase: n requests of `type` at sectors 8*i. */
static void blk_phase(u32 type, u64 n, volatile struct vb_phase *p, volatile u64 *samples)
{
    struct vq *q = blk.q;
    u8 *buf = type == BLK_T_OUT ? blk_wbuf : blk_rbuf;
    q->desc[1].addr = (u64)buf;
    q->desc[1].flags = (u16)(VIRTQ_DESC_F_NEXT | (type == BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0));
    blk_hdr.type = type;
    u64 first = 0, t0 = 0;
    for (u64 i = 0; i < n; i++) {
        blk_hdr.sector = i * (BLK_BYTES / 512);
        blk_status = 0xFF;
        if (type == BLK_T_OUT)
            *(volatile u64 *)blk_wbuf = STAMP | i;
        u64 dt = kick_and_wait(&blk, &t0, &p->tsc_tail);
        if (i == 0) first = t0;
        phase_add(p, samples, dt);
        u32 len = 0;
        if (!vdrv_take_used(&blk, 0, &len) || blk_status != 0) errors++;
        if (type == BLK_T_IN &&
            (len != BLK_BYTES + 1 || *(volatile u64 *)blk_rbuf != (STAMP | i) ||
             blk_rbuf[BLK_BYTES - 1] != (u8)((BLK_BYTES - 1) * 7 + 0x5A)))
            errors++;
    }
    p->tsc_phase = irq_tsc - first;
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg2; (void)arg3;
    u64 n_notify = arg0 ? arg0 : 200;
    u64 n_blk = arg1 ? arg1 : 100;
    if (n_notify > MAX_NOTIFY) n_notify = MAX_NOTIFY;
    if (n_blk > MAX_BLK) n_blk = MAX_BLK;

    res->magic = 0;
    res->errors = 0;
    res->notify_iters = n_notify;
    res->blk_reqs = n_blk;
    res->blk_bytes = BLK_BYTES;
    phase_init(&res->notify);
    phase_init(&res->write);
    phase_init(&res->read);
    res->irq_count = 0;
    res->unexpected = 0;

    cli();
    idt_init();
    idt_set_entry(VEC_RNG_Q0, (u64)vb_irq);
    idt_set_entry(VEC_BLK_Q0, (u64)vb_irq);
    irq_register(VEC_RNG_CFG, h_other);
    irq_register(VEC_BLK_CFG, h_other);
    lapic_enable();
    u8 dest = (u8)lapic_id();

    rng.bar = RNG_BAR; rng.vec_cfg = VEC_RNG_CFG; rng.vec_q0 = VEC_RNG_Q0; rng.q = &rng_q;
    blk.bar = BLK_BAR; blk.vec_cfg = VEC_BLK_CFG; blk.vec_q0 = VEC_BLK_Q0; blk.q = &blk_q;
    int n_rng = 0, n_blk_dev = 0;
    for (u32 s = 1; s < 32; s++) {
        u32 id = pci_cfg_read32(s, 0);
        if ((id & 0xFFFF) != VIRTIO_VENDOR)
            continue;
        if ((id >> 16) == DEVID_RNG) { rng.slot = s; n_rng++; }
        if ((id >> 16) == DEVID_BLK) { blk.slot = s; n_blk_dev++; }
    }
    if (n_rng != 1 || n_blk_dev != 1) {
        kprintf("virtio_bench: rng=%d blk=%d functions found, giving up\n", n_rng, n_blk_dev);
        return 1;
    }
    place_bar(&rng);
    place_bar(&blk);
    find_caps(&rng);
    find_caps(&blk);
    vdrv_setup_msix(&rng, dest);
    vdrv_setup_msix(&blk, dest);
    init_virtio(&rng);
    init_virtio(&blk);
    u64 cap = ((u64)mmio_read32(blk.devcfg + 4) << 32) | mmio_read32(blk.devcfg);
    if (cap < n_blk * (BLK_BYTES / 512)) {
        kprintf("virtio_bench: disk has %lu sectors, need %lu\n", cap, n_blk * (BLK_BYTES / 512));
        errors++;
    }
    if (errors) {
        kprintf("virtio_bench: init failed (%lu errors)\n", errors);
        return (int)errors;
    }

    /* Prebuilt chains: rng = desc 0 (8 bytes, device-writable); blk = desc
     * 0 header -> 1 data (addr/flags set per phase) -> 2 status. */
    rng_q.desc[0].addr = (u64)rng_buf;
    rng_q.desc[0].len = sizeof(rng_buf);
    rng_q.desc[0].flags = VIRTQ_DESC_F_WRITE;
    blk_q.desc[0].addr = (u64)&blk_hdr;
    blk_q.desc[0].len = sizeof(blk_hdr);
    blk_q.desc[0].flags = VIRTQ_DESC_F_NEXT;
    blk_q.desc[0].next = 1;
    blk_q.desc[1].len = BLK_BYTES;
    blk_q.desc[1].next = 2;
    blk_q.desc[2].addr = (u64)&blk_status;
    blk_q.desc[2].len = 1;
    blk_q.desc[2].flags = VIRTQ_DESC_F_WRITE;
    u64 *w = (u64 *)blk_wbuf;
    for (u32 k = 0; k < BLK_BYTES / 8; k++) {
        u64 v = 0;
        for (u32 b = 0; b < 8; b++)
            v |= (u64)(u8)((k * 8 + b) * 7 + 0x5A) << (8 * b);
        w[k] = v;
    }

    /* ---- a. notify -> MSI-X -> handler ------------------------------------- */
    outb(PORT_MARK, 1);
    u64 first = 0, t0 = 0;
    for (u64 i = 0; i < n_notify; i++) {
        u64 dt = kick_and_wait(&rng, &t0, &res->notify.tsc_tail);
        if (i == 0) first = t0;
        phase_add(&res->notify, s_notify, dt);
        u32 len = 0;
        if (!vdrv_take_used(&rng, 0, &len) || len != sizeof(rng_buf)) errors++;
    }
    res->notify.tsc_phase = irq_tsc - first;

    /* ---- b. blk 4-KiB writes, then reads of the same sectors ----------------- */
    outb(PORT_MARK, 2);
    blk_phase(BLK_T_OUT, n_blk, &res->write, s_write);
    outb(PORT_MARK, 3);
    blk_phase(BLK_T_IN, n_blk, &res->read, s_read);
    outb(PORT_MARK, 4);

    res->irq_count = irq_count;
    res->errors = errors;
    res->magic = VB_MAGIC;
    kprintf("virtio_bench: notify n=%lu min=%lu sum=%lu; write n=%lu sum=%lu; read n=%lu sum=%lu tsc; irqs=%lu errors=%lu\n",
            res->notify.count, res->notify.tsc_min, res->notify.tsc_sum,
            res->write.count, res->write.tsc_sum, res->read.count, res->read.tsc_sum,
            irq_count, errors);
    return (int)errors;
}
