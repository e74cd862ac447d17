/* ioapic: IOAPIC behaviour through the IRQ-line ports 0x2000+n (written for
 * the split-irqchip userspace IOAPIC, also runs against KVM's in-kernel one).
 * One PASS/FAIL line per check; exits via 0xF4 with the failure count.
 *
 * Every wait is bounded: RT_WAIT_ITERS iterations with interrupts enabled, each
 * doing an outb to the ignored port 0x80 (a cheap VM exit, so that a pending
 * interrupt is injected even by a host that only injects on entry). After a
 * wait, RT_SETTLE_ITERS more iterations give duplicate deliveries a chance to
 * show up. Handlers count per vector and EOI the LAPIC.
 *
 * Pin -> vector map (all fixed delivery, physical dest = this CPU):
 *   3  0x50 edge                      9  0x56 level, retrigger after EOI
 *   4  0x51 level, handler lowers    10  0x57 level, masked while asserted
 *   5  0x52 edge (simultaneous)      11  0x58 level, mask/unmask retrigger
 *   6  0x53 edge (simultaneous)      12  0x59 level, Remote IRR
 *   7  0x54 level, coalescing        13  0x5A level, EOI register (v0x20 only)
 *   8  0x55 level, sequential        14  0x5B redirection entry readback
 */
#include "lib/rt.h"


static volatile u32 cnt[256];
static volatile u32 rirr_before[256];
static volatile u32 rirr_after[256];
static u8 dest;

static int rirr(u32 pin) { return (ioapic_redir_lo(pin) & IOAPIC_RTE_REMOTE_IRR) != 0; }

static void cleanup(u32 pin)
{
    irq_line(pin, 0);
    ioapic_mask(pin, 1);
}

/* ---- handlers ---------------------------------------------------------- */
static void h_count(u64 v, struct frame *f)            /* edge pins */
{
    (void)f;
    cnt[v]++;
    lapic_eoi();
}

static u8 pin_of[256];                                 /* vector -> pin */

/* Directed EOI (SDM 11.8.5): when the LAPIC offers "suppress EOI
 * broadcast" (version register bit 24; KVM does with a userspace IOAPIC)
 * and we enable it (SVR bit 12), a LAPIC EOI no longer reaches the IOAPIC
 * and level interrupts are retired through the IOAPIC EOI register, as
 * Linux does with a version-0x20 IOAPIC. */
static int directed;

static void level_eoi(u64 v)
{
    lapic_eoi();
    if (directed)
        ioapic_eoi((u8)v);
}

static void h_level_lower(u64 v, struct frame *f)
{
    (void)f;
    cnt[v]++;
    irq_line(pin_of[v], 0);
    level_eoi(v);
}

static void h_coalesce(u64 v, struct frame *f)         /* pin 7 */
{
    (void)f;
    u32 c = ++cnt[v];
    if (c == 1) {
        /* Re-assert while Remote IRR is set: must not deliver until EOI. */
        irq_line(7, 0);
        irq_line(7, 1);
        rirr_before[v] = rirr(7);
    } else {
        irq_line(7, 0);
    }
    level_eoi(v);
}

static void h_retrigger(u64 v, struct frame *f)        /* pin 9 */
{
    (void)f;
    u32 c = ++cnt[v];
    if (c >= 2)
        irq_line(9, 0);
    level_eoi(v);                      /* first time: line still asserted */
}

static void h_mask_retrigger(u64 v, struct frame *f)   /* pin 11 */
{
    (void)f;
    u32 c = ++cnt[v];
    if (c == 1)
        ioapic_mask(11, 1);           /* line stays asserted */
    else
        irq_line(11, 0);
    level_eoi(v);
}

static void h_rirr(u64 v, struct frame *f)             /* pin 12 */
{
    (void)f;
    cnt[v]++;
    rirr_before[v] = rirr(12);
    irq_line(12, 0);
    level_eoi(v);
}

static void h_eoi_reg(u64 v, struct frame *f)          /* pin 13 */
{
    (void)f;
    cnt[v]++;
    rirr_before[v] = rirr(13);
    irq_line(13, 0);
    ioapic_eoi((u8)v);                /* IOAPIC EOI register (+0x40) */
    rirr_after[v] = rirr(13);
    lapic_eoi();
}

static void h_lapic_eoi_only(u64 v, struct frame *f)  /* pin 15 */
{
    (void)f;
    cnt[v]++;
    lapic_eoi();
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg0; (void)arg1; (void)arg2; (void)arg3;
    cli();
    idt_init();
    lapic_enable();
    dest = (u8)lapic_id();

    /* ---- registers ----------------------------------------------------- */
    u32 ver = ioapic_read(IOAPIC_REG_VER);
    kprintf("ioapic: version register 0x%08x (version 0x%x, max redir %u), lapic id %u\n",
            ver, ver & 0xFF, (ver >> 16) & 0xFF, dest);
    CHECK("ioapic_version_0x00170020", ver == 0x00170020);
    CHECK("ioapic_max_redir_entry_23", ((ver >> 16) & 0xFF) == 23);

    ioapic_write(IOAPIC_REG_VER, ~ver);
    CHECK("ioapic_version_readonly", ioapic_read(IOAPIC_REG_VER) == ver);

    u32 arb = ioapic_read(IOAPIC_REG_ARB);
    ioapic_write(IOAPIC_REG_ARB, arb ^ 0x0F000000);
    CHECK("ioapic_arb_readonly", ioapic_read(IOAPIC_REG_ARB) == arb);

    u32 id0 = ioapic_read(IOAPIC_REG_ID);
    ioapic_write(IOAPIC_REG_ID, 0x05000000);
    u32 id1 = ioapic_read(IOAPIC_REG_ID);
    CHECK("ioapic_id_readback", ((id1 >> 24) & 0xF) == 5);
    ioapic_write(IOAPIC_REG_ID, id0);
    CHECK("ioapic_id_restored", ((ioapic_read(IOAPIC_REG_ID) >> 24) & 0xF) == ((id0 >> 24) & 0xF));

    ioapic_set_redir(14, 0x5B, 1, 1, dest);
    {
        u32 lo = ioapic_redir_lo(14), hi = ioapic_redir_hi(14);
        int ok = (lo & 0x1FFFF & ~(IOAPIC_RTE_DELIVS | IOAPIC_RTE_REMOTE_IRR)) ==
                 (0x5Bu | IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED) &&
                 (hi >> 24) == dest;
        if (!CHECK("ioapic_redir_readback", ok))
            kprintf("  redir14 lo=0x%08x hi=0x%08x\n", lo, hi);
    }
    ioapic_mask(14, 1);

    /* ---- edge ------------------------------------------------------------ */
    irq_register(0x50, h_count);
    ioapic_set_redir(3, 0x50, 0, 0, dest);
    irq_line(3, 1);
    CHECK("edge_delivered_once", rt_wait_for(&cnt[0x50], 1) == 1);
    rt_settle();                                   /* line held high: no repeat */
    CHECK("edge_held_high_no_repeat", cnt[0x50] == 1);
    irq_line(3, 0);
    rt_settle();
    CHECK("edge_falling_no_delivery", cnt[0x50] == 1);
    irq_line(3, 1);
    CHECK("edge_second_rising_delivered", rt_wait_for(&cnt[0x50], 2) == 2);
    cleanup(3);

    /* ---- level, handler lowers the line -------------------------------- */
    pin_of[0x51] = 4;
    irq_register(0x51, h_level_lower);
    ioapic_set_redir(4, 0x51, 1, 0, dest);
    irq_line(4, 1);
    CHECK("level_delivered_once", rt_wait_for(&cnt[0x51], 1) == 1);
    CHECK("level_remote_irr_clear_after_eoi", !rirr(4));
    cleanup(4);

    /* ---- from here on: directed EOI when the LAPIC offers it ------------- */
    if (lapic_read(LAPIC_VERSION) & (1u << 24)) {
        lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | (1u << 12));
        directed = 1;
    }
    kprintf("ioapic: %s EOI\n", directed ? "directed (suppress broadcast)" : "broadcast");
    if (directed) {
        /* A LAPIC EOI alone must not retire a level interrupt now. */
        irq_register(0x5C, h_lapic_eoi_only);
        ioapic_set_redir(15, 0x5C, 1, 0, dest);
        irq_line(15, 1);
        CHECK("directed_lapic_eoi_only_delivered_once", rt_wait_for(&cnt[0x5C], 1) == 1);
        CHECK("directed_lapic_eoi_keeps_remote_irr", rirr(15));
        irq_line(15, 0);
        ioapic_eoi(0x5C);
        CHECK("directed_ioapic_eoi_clears_remote_irr", !rirr(15));
        CHECK("directed_no_redelivery_after_lowering", cnt[0x5C] == 1);
        cleanup(15);
    }

    /* ---- two edges raised with interrupts off --------------------------- */
    irq_register(0x52, h_count);
    irq_register(0x53, h_count);
    ioapic_set_redir(5, 0x52, 0, 0, dest);
    ioapic_set_redir(6, 0x53, 0, 0, dest);
    cli();
    irq_line(5, 1);
    irq_line(6, 1);
    rt_wait_for(&cnt[0x52], 1);
    rt_wait_for(&cnt[0x53], 1);
    CHECK("simultaneous_edges_pin5_once", cnt[0x52] == 1);
    CHECK("simultaneous_edges_pin6_once", cnt[0x53] == 1);
    cleanup(5);
    cleanup(6);

    /* ---- coalescing: re-assert while Remote IRR set ---------------------- */
    irq_register(0x54, h_coalesce);
    ioapic_set_redir(7, 0x54, 1, 0, dest);
    irq_line(7, 1);
    rt_wait_for(&cnt[0x54], 2);
    CHECK("coalesce_remote_irr_set_in_handler", rirr_before[0x54]);
    CHECK("coalesce_exactly_one_more_after_eoi", cnt[0x54] == 2);
    cleanup(7);

    /* ---- sequential level interrupts ------------------------------------ */
    pin_of[0x55] = 8;
    irq_register(0x55, h_level_lower);
    ioapic_set_redir(8, 0x55, 1, 0, dest);
    for (u32 i = 1; i <= 3; i++) {
        irq_line(8, 1);
        rt_wait_for(&cnt[0x55], i);
    }
    CHECK("sequential_level_3_deliveries", cnt[0x55] == 3);
    cleanup(8);

    /* ---- retrigger after EOI while still asserted ----------------------- */
    irq_register(0x56, h_retrigger);
    ioapic_set_redir(9, 0x56, 1, 0, dest);
    irq_line(9, 1);
    CHECK("level_retrigger_after_eoi", rt_wait_for(&cnt[0x56], 2) == 2);
    cleanup(9);

    /* ---- masked while asserted, then unmask ----------------------------- */
    pin_of[0x57] = 10;
    irq_register(0x57, h_level_lower);
    ioapic_set_redir(10, 0x57, 1, 1, dest);
    irq_line(10, 1);
    rt_settle();
    CHECK("masked_level_not_delivered", cnt[0x57] == 0);
    ioapic_mask(10, 0);
    CHECK("unmask_asserted_level_delivered", rt_wait_for(&cnt[0x57], 1) == 1);
    cleanup(10);

    /* ---- retrigger via mask/unmask -------------------------------------- */
    irq_register(0x58, h_mask_retrigger);
    ioapic_set_redir(11, 0x58, 1, 0, dest);
    irq_line(11, 1);
    rt_wait_for(&cnt[0x58], 1);
    CHECK("mask_in_handler_no_redelivery", cnt[0x58] == 1);
    CHECK("mask_in_handler_remote_irr_clear", !rirr(11));
    ioapic_mask(11, 0);
    CHECK("unmask_redelivers_asserted_level", rt_wait_for(&cnt[0x58], 2) == 2);
    cleanup(11);

    /* ---- Remote IRR ------------------------------------------------------ */
    irq_register(0x59, h_rirr);
    ioapic_set_redir(12, 0x59, 1, 0, dest);
    CHECK("remote_irr_clear_before", !rirr(12));
    irq_line(12, 1);
    rt_wait_for(&cnt[0x59], 1);
    CHECK("remote_irr_delivered", cnt[0x59] == 1);
    CHECK("remote_irr_set_in_handler", rirr_before[0x59]);
    CHECK("remote_irr_clear_after_eoi", !rirr(12));
    cleanup(12);

    /* ---- IOAPIC EOI register (version 0x20 only) ------------------------ */
    if ((ver & 0xFF) >= 0x20) {
        irq_register(0x5A, h_eoi_reg);
        ioapic_set_redir(13, 0x5A, 1, 0, dest);
        irq_line(13, 1);
        rt_wait_for(&cnt[0x5A], 1);
        CHECK("eoi_register_delivered_once", cnt[0x5A] == 1);
        CHECK("eoi_register_remote_irr_set_before", rirr_before[0x5A]);
        CHECK("eoi_register_clears_remote_irr", !rirr_after[0x5A]);
        cleanup(13);
    } else {
        kprintf("SKIP eoi_register (IOAPIC version 0x%x has no EOI register)\n", ver & 0xFF);
    }

    kprintf("ioapic: %u failures, %u unexpected interrupts\n", failures, unexpected_irqs);
    return (int)failures;
}
