/* pc_timers (split irqchip): the 8254 PIT and MC146818 RTC as kernels use
 * them. RTC: date registers (after UIP clears) go to RESULTS_BASE for the
 * host to compare with its own clock; the periodic interrupt on IRQ8
 * (IOAPIC pin 8) is counted. PIT: counter 2 gated through port 0x61 runs a
 * mode-0 count until OUT2 rises (calibration pattern); counter 0 in mode 2
 * raises IRQ0 (IOAPIC pin 0) repeatedly. Waits use sti;hlt, so the host's
 * wake-up alarm must deliver every edge. Exit status: failure count. */
#include "lib/rt.h"

#define VEC_PIT 0x30
#define VEC_RTC 0x38

static volatile u32 pit_irqs, rtc_irqs, rtc_flags;

static u8 cmos(u8 r) { outb(0x70, r); return inb(0x71); }
static void cmos_w(u8 r, u8 v) { outb(0x70, r); outb(0x71, v); }

static void pit_handler(u64 v, struct frame *f) { pit_irqs++; lapic_eoi(); }
static void rtc_handler(u64 v, struct frame *f)
{
    rtc_flags |= cmos(0x0C);          /* read C: clears flags, drops IRQ8 */
    rtc_irqs++;
    lapic_eoi();
}

int main(u64 a0, u64 a1, u64 a2, u64 a3)
{
    idt_init();
    irq_register(VEC_PIT, pit_handler);
    irq_register(VEC_RTC, rtc_handler);
    lapic_enable();

    /* ---- RTC date: wait for UIP to clear, then read in one go ---- */
    u32 spins = 0;
    while ((cmos(0x0A) & 0x80) && spins < 100000) spins++;
    volatile u8 *res = (volatile u8 *)RESULTS_BASE;
    static const u8 regs[8] = { 0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32, 0x0B };
    for (int i = 0; i < 8; i++) res[i] = cmos(regs[i]);
    CHECK("rtc_register_d_valid", cmos(0x0D) == 0x80);
    CHECK("rtc_ext_mem_bytes", ((u32)cmos(0x17) | (u32)cmos(0x18) << 8) == (u32)a0);

    /* ---- PIT counter 2: gate via port 0x61, mode 0, poll OUT2 ---- */
    outb(0x61, (u8)((inb(0x61) & ~0x02) | 0x01));  /* gate on, speaker off */
    outb(0x43, 0xB0);                               /* ch2, lo/hi, mode 0 */
    outb(0x42, 0x9B);
    outb(0x42, 0x2E);                               /* 11931 ticks, ~10 ms */
    u64 t0 = rdtsc();                               /* the count runs from here */
    outb(0x43, 0x80);                               /* latch ch2 */
    u32 c1 = inb(0x42); c1 |= (u32)inb(0x42) << 8;
    int out2_low = (inb(0x61) & 0x20) == 0;
    u32 polls = 0;
    while (!(inb(0x61) & 0x20) && polls < 1000000) polls++;
    u64 t1 = rdtsc();
    CHECK("pit_ch2_out2_low_while_counting", out2_low);
    outb(0x43, 0x80);
    u32 c2 = inb(0x42); c2 |= (u32)inb(0x42) << 8;
    CHECK("pit_ch2_counts_down", c1 <= 11931 && c1 > 0);
    CHECK("pit_ch2_out2_rises", inb(0x61) & 0x20);
    CHECK("pit_ch2_wrapped_after_terminal_count", c2 > 0xC000);
    kprintf("pit ch2: 11931 ticks = %lu TSC cycles (%u polls)\n", t1 - t0, polls);
    *(volatile u64 *)(RESULTS_BASE + 8) = t1 - t0;

    /* ---- PIT counter 0, mode 2, on IOAPIC pin 0 ---- */
    ioapic_set_redir(0, VEC_PIT, 0 /* edge */, 0, (u8)lapic_id());
    outb(0x43, 0x34);                               /* ch0, lo/hi, mode 2 */
    outb(0x40, 0xA9);
    outb(0x40, 0x04);                               /* 1193 ticks, ~1 ms */
    for (int i = 0; i < 200 && pit_irqs < 10; i++) { sti_hlt(); cli(); }
    outb(0x43, 0x30);                               /* ch0 mode 0, no count: stops */
    CHECK("pit_irq0_periodic", pit_irqs >= 10);
    ioapic_mask(0, 1);

    /* ---- RTC periodic interrupt on IOAPIC pin 8 ---- */
    ioapic_set_redir(8, VEC_RTC, 0 /* edge */, 0, (u8)lapic_id());
    cmos_w(0x0A, 0x26);                             /* 1024 Hz */
    (void)cmos(0x0C);
    cmos_w(0x0B, (u8)(cmos(0x0B) | 0x40));          /* PIE */
    for (int i = 0; i < 200 && rtc_irqs < 10; i++) { sti_hlt(); cli(); }
    cmos_w(0x0B, (u8)(cmos(0x0B) & ~0x40));
    CHECK("rtc_periodic_irq8", rtc_irqs >= 10);
    CHECK("rtc_flags_pf_irqf", (rtc_flags & 0xC0) == 0xC0);
    kprintf("pc_timers: pit irqs %u, rtc irqs %u, %u failures\n", pit_irqs, rtc_irqs, failures);
    return (int)failures;
}
