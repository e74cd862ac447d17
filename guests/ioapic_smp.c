/* ioapic_smp: interrupts from the IOAPIC and from MSIs land on the CPUs
 * their destination names. The BSP starts every AP (lib/smp_boot.c), then
 * for each destination form delivers through IOAPIC pin 3 (edge) and, with
 * arg1 != 0, as an MSI (a TS test plugin: outl 0x640 = address, outl
 * 0x644 = data signals it) and counts per CPU which took it:
 *   physical to each CPU, physical broadcast 0xFF;
 *   logical flat (DFR 0xF..., LDR bit = APIC ID) to each CPU, to all, to
 *   none (dest 0), lowest priority to all (exactly one CPU each time);
 *   logical cluster (DFR 0x0F..., cluster = ID / 2, member bit = ID % 2)
 *   to each CPU, to a cluster's two members, broadcast, lowest priority
 *   within a cluster.
 * Each case reports every CPU's count on port 0x648 as
 * (case << 16) | (cpu << 8) | count, then checks it (PASS/FAIL).
 * Then two level lines EOI'd by two CPUs: pin 5 to CPU 1 (vector 0x70),
 * pin 6 to CPU 0 (0x71), both raised at once; each handler EOIs its LAPIC
 * and leaves the line asserted LEVEL_K - 1 times, so the line retriggers
 * after each EOI (Remote IRR cleared), and lowers it the LEVEL_K-th time.
 * Each CPU takes exactly LEVEL_K interrupts of its line (an interrupt after
 * the guest lowered the line is counted as spurious: the host quirk of
 * README "What this project's KVM host does differently"), and Remote IRR
 * of both pins ends clear.
 * With arg3 & 1, directed EOI on an AP (split irqchip, where the LAPIC
 * offers "suppress EOI broadcast"): CPU 1 alone sets SVR bit 12, level pin
 * 7 (vector 0x72) to CPU 1 retriggers LEVEL_K times, its handler EOIs its
 * LAPIC and then the IOAPIC's EOI register: after the LAPIC EOI Remote IRR
 * must still be set (the AP's EOI is not broadcast, whatever vCPU 0's SVR
 * says), after the IOAPIC EOI clear.
 * With arg2 = P > 0, per-vCPU PV timers (port 107, period P us, vector
 * 0x20): AP 1 alone ticks only AP 1 (and reads its own period back, the
 * BSP reads 0), then the BSP alone only the BSP, then both tick at once;
 * per-CPU tick counts reported as case 0x200.
 * arg0 = vCPUs (2..16). Exit status = failures. */
#include "lib/smp_boot.h"

#define PORT_MSI_ADDR 0x640
#define PORT_MSI_DATA 0x644
#define PORT_TABLE    0x648
#define MAX_CPUS      SMP_MAX_CPUS
#define VEC_WAKE      0x50
#define VEC_CASE0     0x80      /* + case number */
#define MAX_CASES     0x70
#define EDGE_PIN      3
#define VEC_LEVEL0    0x70      /* + line: 0 = pin 5 -> CPU 1, 1 = pin 6 -> CPU 0 */
#define LEVEL_K       4
#define LAPIC_LDR     0x0D0
#define LAPIC_DFR     0x0E0
#define DM_FIXED      0
#define DM_LOWEST     1

enum { FLAT, CLUSTER };
enum { VIA_IOAPIC, VIA_MSI };

static u32 ncpus;
static volatile u32 hits[MAX_CASES][MAX_CPUS];
static volatile u32 total[MAX_CASES];
static volatile u32 want_mode, mode_seq, mode_acks;
static u32 ncase;

static const u32 level_pin[2] = { 5, 6 };
static const u32 level_cpu[2] = { 1, 0 };
static volatile u32 level_up[2];
static volatile u32 level_hits[2][MAX_CPUS];
static volatile u32 level_total[2];
static volatile u32 level_spurious[2];

#define VEC_TICK      0x20
#define TICKS         5
static volatile u32 ticks[MAX_CPUS];
static volatile u32 timer_want[MAX_CPUS], timer_read[MAX_CPUS], timer_acks;

static void tick_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u32 id = lapic_id();
    if (id < MAX_CPUS)
        ticks[id]++;
    lapic_eoi();
}

#define DIR_PIN   7
#define VEC_DIR   0x72
static volatile u32 directed_mask;            /* CPUs with SVR bit 12 set */
static volatile u32 dir_up, dir_total, dir_spurious, dir_irr_bad, dir_done;
static volatile u32 dir_hits[MAX_CPUS];

static void directed_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u32 id = lapic_id();
    if (!dir_up) {
        dir_spurious++;
    } else {
        if (id < MAX_CPUS)
            dir_hits[id]++;
        if (++dir_total >= LEVEL_K) {
            dir_up = 0;
            irq_line(DIR_PIN, 0);
        }
    }
    lapic_eoi();
    if (!(ioapic_redir_lo(DIR_PIN) & IOAPIC_RTE_REMOTE_IRR))
        dir_irr_bad++;                        /* the LAPIC EOI reached the IOAPIC */
    ioapic_eoi(VEC_DIR);
    /* Last: the BSP touches the IOAPIC only once this handler is done
     * (IOREGSEL/IOWIN pairs from two CPUs would interleave). */
    __atomic_fetch_add(&dir_done, 1, __ATOMIC_SEQ_CST);
}

static void apply_mode(void)
{
    u32 id = lapic_id();
    u32 svr = lapic_read(LAPIC_SVR) & ~(1u << 12);
    lapic_write(LAPIC_SVR, svr | ((directed_mask >> id) & 1 ? 1u << 12 : 0));
    if (want_mode == FLAT) {
        lapic_write(LAPIC_DFR, 0xFFFFFFFFu);
        lapic_write(LAPIC_LDR, (1u << id) << 24);
    } else {
        lapic_write(LAPIC_DFR, 0x0FFFFFFFu);
        lapic_write(LAPIC_LDR, (((id >> 1) << 4) | (1u << (id & 1))) << 24);
    }
}

static void case_handler(u64 v, struct frame *f)
{
    (void)f;
    u32 c = (u32)v - VEC_CASE0, id = lapic_id();
    if (c < MAX_CASES && id < MAX_CPUS) {
        hits[c][id]++;
        __atomic_fetch_add(&total[c], 1, __ATOMIC_SEQ_CST);
    }
    lapic_eoi();
}

static void wake_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    lapic_eoi();
}

static void level_handler(u64 v, struct frame *f)
{
    (void)f;
    u32 k = (u32)v - VEC_LEVEL0, id = lapic_id();
    if (!level_up[k]) {
        level_spurious[k]++;
    } else if (id < MAX_CPUS) {
        level_hits[k][id]++;
        if (__atomic_add_fetch(&level_total[k], 1, __ATOMIC_SEQ_CST) >= LEVEL_K) {
            level_up[k] = 0;
            irq_line(level_pin[k], 0);
        }
    }
    lapic_eoi();
}

static void ap_main(void)
{
    u32 seen = mode_seq, id = lapic_id(), timer = 0;
    apply_mode();
    smp_ap_online();
    for (;;) {
        cli();
        if (mode_seq != seen) {
            seen = mode_seq;
            apply_mode();
            __atomic_fetch_add(&mode_acks, 1, __ATOMIC_SEQ_CST);
        }
        if (id < MAX_CPUS && timer_want[id] != timer) {
            timer = timer_want[id];
            outl(PORT_PVTIMER, timer);
            timer_read[id] = inl(PORT_PVTIMER);
            __atomic_fetch_add(&timer_acks, 1, __ATOMIC_SEQ_CST);
        }
        sti_hlt();
    }
}

/* Every CPU switches to `mode` (the APs on a wake-up IPI). */
static int set_mode(u32 mode)
{
    want_mode = mode;
    apply_mode();
    u32 acks = mode_acks;
    __atomic_fetch_add(&mode_seq, 1, __ATOMIC_SEQ_CST);
    for (u32 id = 1; id < ncpus; id++)
        smp_send_ipi(id, VEC_WAKE);
    return smp_wait_until(&mode_acks, acks + ncpus - 1) == acks + ncpus - 1;
}

static void fire(int via, u8 vec, u32 dm, int logical, u32 dest)
{
    if (via == VIA_IOAPIC) {
        ioapic_write(IOAPIC_REDTBL(EDGE_PIN), IOAPIC_RTE_MASKED | vec);
        ioapic_write(IOAPIC_REDTBL(EDGE_PIN) + 1, dest << 24);
        ioapic_write(IOAPIC_REDTBL(EDGE_PIN), vec | (dm << 8) | (logical ? 1u << 11 : 0));
        irq_line(EDGE_PIN, 1);
        irq_line(EDGE_PIN, 0);
    } else {
        u32 addr = 0xFEE00000u | (dest << 12) | (logical ? 1u << 2 : 0) |
                   (dm == DM_LOWEST ? 1u << 3 : 0);
        outl(PORT_MSI_ADDR, addr);
        outl(PORT_MSI_DATA, vec | (dm << 8));
    }
}

static u32 popcount(u32 m)
{
    u32 n = 0;
    for (; m; m &= m - 1)
        n++;
    return n;
}

/* Deliver `reps` times; `expect` = the CPUs (bit = APIC ID) that each take
 * every one (fixed) or of which exactly one takes each (lowest priority). */
static int run_case(int via, u32 dm, int logical, u32 dest, u32 expect, u32 reps)
{
    u32 c = ncase++;
    if (c >= MAX_CASES)
        return 0;
    u8 vec = (u8)(VEC_CASE0 + c);
    u32 per = dm == DM_LOWEST ? 1 : popcount(expect);
    for (u32 r = 1; r <= reps; r++) {
        fire(via, vec, dm, logical, dest);
        smp_wait_until(&total[c], per * r);
    }
    if (via == VIA_IOAPIC)
        ioapic_mask(EDGE_PIN, 1);
    rt_settle();                        /* anything late or extra shows now */
    int ok = total[c] == per * reps;
    for (u32 id = 0; id < ncpus; id++) {
        outl(PORT_TABLE, (c << 16) | (id << 8) | hits[c][id]);
        if (!(expect & (1u << id)))
            ok &= hits[c][id] == 0;
        else if (dm != DM_LOWEST)
            ok &= hits[c][id] == reps;
    }
    if (!ok) {
        kprintf("case %u via=%d dm=%u logical=%d dest=0x%x expect=0x%x:", c, via, dm,
                logical, dest, expect);
        for (u32 id = 0; id < ncpus; id++)
            kprintf(" cpu%u=%u", id, hits[c][id]);
        kprintf("\n");
    }
    return ok;
}

static void check_named(int via, const char *what, int ok)
{
    char name[48];
    const char *p = via == VIA_IOAPIC ? "ioapic_" : "msi_";
    usize n = 0;
    for (; *p && n < sizeof name - 1; p++)
        name[n++] = *p;
    for (p = what; *p && n < sizeof name - 1; p++)
        name[n++] = *p;
    name[n] = 0;
    CHECK(name, ok);
}

static void destinations(int via)
{
    u32 all = (1u << ncpus) - 1;
    int ok = 1;
    for (u32 id = 0; id < ncpus; id++)
        ok &= run_case(via, DM_FIXED, 0, id, 1u << id, 1);
    check_named(via, "physical_each_cpu", ok);
    check_named(via, "physical_broadcast", run_case(via, DM_FIXED, 0, 0xFF, all, 1));

    ok = set_mode(FLAT);
    for (u32 id = 0; id < ncpus; id++)
        ok &= run_case(via, DM_FIXED, 1, 1u << id, 1u << id, 1);
    check_named(via, "flat_each_cpu", ok);
    check_named(via, "flat_all", run_case(via, DM_FIXED, 1, all, all, 1));
    check_named(via, "flat_none", run_case(via, DM_FIXED, 1, 0, 0, 1));
    check_named(via, "flat_lowest_priority", run_case(via, DM_LOWEST, 1, all, all, 8));

    ok = set_mode(CLUSTER);
    for (u32 id = 0; id < ncpus; id++)
        ok &= run_case(via, DM_FIXED, 1, ((id >> 1) << 4) | (1u << (id & 1)), 1u << id, 1);
    check_named(via, "cluster_each_cpu", ok);
    u32 last = (ncpus - 1) >> 1;           /* the last cluster: CPUs 2*last, 2*last+1 */
    u32 members = (3u << (2 * last)) & all;
    check_named(via, "cluster_pair", run_case(via, DM_FIXED, 1, (last << 4) | 3, members, 1));
    check_named(via, "cluster_broadcast", run_case(via, DM_FIXED, 1, 0xFF, all, 1));
    check_named(via, "cluster_lowest_priority",
                run_case(via, DM_LOWEST, 1, (last << 4) | 3, members, 8));
}

static void level_lines(void)
{
    set_mode(FLAT);
    for (u32 k = 0; k < 2; k++) {
        irq_line(level_pin[k], 0);
        ioapic_set_redir(level_pin[k], (u8)(VEC_LEVEL0 + k), 1, 0, (u8)level_cpu[k]);
    }
    for (u32 k = 0; k < 2; k++) {
        level_up[k] = 1;
        irq_line(level_pin[k], 1);
    }
    for (u32 k = 0; k < 2; k++)
        smp_wait_until(&level_total[k], LEVEL_K);
    /* Remote IRR clears once the last EOI reaches the IOAPIC. */
    int irr = 1;
    for (u32 i = 0; i < SMP_WAIT_ITERS / 1000 && irr; i++) {
        irr = 0;
        for (u32 k = 0; k < 2; k++)
            irr |= (ioapic_redir_lo(level_pin[k]) & IOAPIC_RTE_REMOTE_IRR) != 0;
        rt_settle();
    }
    int ok = 1;
    for (u32 k = 0; k < 2; k++) {
        for (u32 id = 0; id < ncpus; id++) {
            outl(PORT_TABLE, ((0x100 + k) << 16) | (id << 8) | level_hits[k][id]);
            ok &= level_hits[k][id] == (id == level_cpu[k] ? LEVEL_K : 0);
        }
        ioapic_mask(level_pin[k], 1);
    }
    kprintf("ioapic_smp: level cpu1=%u cpu0=%u spurious=%u/%u remote_irr=%d\n",
            level_hits[0][1], level_hits[1][0], level_spurious[0], level_spurious[1], irr);
    CHECK("level_each_cpu_retriggers_exactly", ok);
    CHECK("level_remote_irr_clear", !irr);
}

static void directed_eoi(void)
{
    if (!(lapic_read(LAPIC_VERSION) & (1u << 24))) {
        kprintf("ioapic_smp: directed EOI not offered\n");
        return;
    }
    directed_mask = 1u << 1;
    set_mode(FLAT);
    irq_line(DIR_PIN, 0);
    ioapic_set_redir(DIR_PIN, VEC_DIR, 1, 0, 1);
    dir_up = 1;
    irq_line(DIR_PIN, 1);
    smp_wait_until(&dir_done, LEVEL_K);
    rt_settle();
    int ok = dir_hits[1] == LEVEL_K && dir_total == LEVEL_K;
    int irr = (ioapic_redir_lo(DIR_PIN) & IOAPIC_RTE_REMOTE_IRR) != 0;
    ioapic_mask(DIR_PIN, 1);
    directed_mask = 0;
    set_mode(FLAT);
    kprintf("ioapic_smp: directed cpu1=%u spurious=%u irr_cleared_by_lapic_eoi=%u remote_irr=%d\n",
            dir_hits[1], dir_spurious, dir_irr_bad, irr);
    CHECK("directed_eoi_on_ap_retriggers_exactly", ok);
    CHECK("directed_eoi_on_ap_lapic_eoi_not_broadcast", dir_irr_bad == 0 && !irr);
}

/* Arm (us > 0) or stop CPU `id`'s PV timer from that CPU. */
static void set_timer(u32 id, u32 us)
{
    if (id == 0) {
        outl(PORT_PVTIMER, us);
        timer_read[0] = inl(PORT_PVTIMER);
        return;
    }
    u32 acks = timer_acks;
    timer_want[id] = us;
    smp_send_ipi(id, VEC_WAKE);
    smp_wait_until(&timer_acks, acks + 1);
}

static void pv_timers(u32 us)
{
    set_timer(1, us);
    smp_wait_until(&ticks[1], TICKS);
    u32 bsp_period = inl(PORT_PVTIMER);
    int ok = ticks[1] >= TICKS && ticks[0] == 0 && timer_read[1] == us && bsp_period == 0;
    set_timer(1, 0);
    rt_settle();
    CHECK("pv_timer_ap_alone", ok);
    if (!ok)
        kprintf("pv ap alone: ticks %u/%u read %u bsp %u\n", ticks[0], ticks[1],
                timer_read[1], bsp_period);

    u32 ap_stopped = ticks[1];
    set_timer(0, us);
    smp_wait_until(&ticks[0], TICKS);
    set_timer(0, 0);
    rt_settle();
    ok = ticks[0] >= TICKS && ticks[1] == ap_stopped && timer_read[0] == 0;
    CHECK("pv_timer_bsp_alone", ok);

    u32 b0 = ticks[0], a0 = ticks[1];
    set_timer(1, us);
    set_timer(0, us);
    smp_wait_until(&ticks[0], b0 + TICKS);
    smp_wait_until(&ticks[1], a0 + TICKS);
    set_timer(0, 0);
    set_timer(1, 0);
    CHECK("pv_timer_both", ticks[0] >= b0 + TICKS && ticks[1] >= a0 + TICKS);
    for (u32 id = 0; id < ncpus; id++)
        outl(PORT_TABLE, (0x200u << 16) | (id << 8) | (ticks[id] & 0xff));
    kprintf("ioapic_smp: pv timer ticks cpu0=%u cpu1=%u\n", ticks[0], ticks[1]);
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    ncpus = (u32)arg0;
    idt_init();
    irq_register(VEC_WAKE, wake_handler);
    for (u32 c = 0; c < MAX_CASES; c++)
        irq_register((u8)(VEC_CASE0 + c), case_handler);
    irq_register(VEC_LEVEL0, level_handler);
    irq_register(VEC_LEVEL0 + 1, level_handler);
    irq_register(VEC_TICK, tick_handler);
    irq_register(VEC_DIR, directed_handler);
    lapic_enable();
    if (ncpus < 2 || ncpus > MAX_CPUS || lapic_id() != 0) {
        kprintf("ioapic_smp: need 2..%u vCPUs, got %u\n", MAX_CPUS, ncpus);
        return (int)failures + 1;
    }
    want_mode = FLAT;
    apply_mode();
    CHECK("all_aps_started", smp_start_aps(ncpus, ap_main) == ncpus - 1);
    destinations(VIA_IOAPIC);
    if (arg1)
        destinations(VIA_MSI);
    level_lines();
    if (arg3 & 1)
        directed_eoi();
    if (arg2)
        pv_timers((u32)arg2);
    kprintf("ioapic_smp: cpus=%u cases=%u unexpected=%u\n", ncpus, ncase, unexpected_irqs);
    return (int)failures;
}
