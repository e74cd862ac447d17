/* hpet_ticks: HPET periodic timer measurement (the timer bench's `hpet`
 * method), the `timer` guest's protocol with the HPET as the source.
 *   arg0 = period in microseconds (0 -> 1000)
 *   arg1 = N ticks to record (0 -> 100, capped at 4000)
 *   arg2 = vector (0 -> 0x20); timer 0 periodic, FSB (MSI) delivery
 * Results at GPA 0x200000 as the timer guest's (lib/ticks.h). When N ticks
 * are in: timer off, then outb 108 (halt). */
#include "lib/rt.h"
#include "lib/ticks.h"

#define HPET          0xFED00000UL
#define HPET_CAP      0x000
#define HPET_CFG      0x010
#define HPET_CNT      0x0F0
#define TN_CFG(n)     (0x100 + 0x20 * (n))
#define TN_CMP(n)     (0x108 + 0x20 * (n))
#define TN_FSB(n)     (0x110 + 0x20 * (n))
#define TN_ENABLE     (1u << 2)
#define TN_PERIODIC   (1u << 3)
#define TN_VAL_SET    (1u << 6)
#define TN_FSB_EN     (1u << 14)

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg3;
    u32 period_us = arg0 ? (u32)arg0 : 1000;
    ticks_init(arg1 ? arg1 : 100);
    u8 vector = arg2 ? (u8)arg2 : 0x20;

    idt_init();
    idt_set_entry(vector, (u64)fast_tick);
    lapic_enable();
    u32 period_fs = (u32)(mmio_read64(HPET + HPET_CAP) >> 32);
    u64 ticks = (u64)period_us * 1000000000UL / period_fs;
    kprintf("hpet_ticks: period=%uus (%lu counter ticks) n=%lu vector=0x%x\n",
            period_us, ticks, n_ticks, vector);

    mmio_write32(HPET + HPET_CFG, 0);
    mmio_write64(HPET + HPET_CNT, 0);
    mmio_write64(HPET + TN_FSB(0), ((LAPIC_BASE | ((u64)lapic_id() << 12)) << 32) | vector);
    mmio_write32(HPET + TN_CFG(0), TN_ENABLE | TN_PERIODIC | TN_VAL_SET | TN_FSB_EN);
    mmio_write64(HPET + TN_CMP(0), ticks);                /* first match */
    mmio_write64(HPET + TN_CMP(0), ticks);                /* period */
    mmio_write32(HPET + HPET_CFG, 1);                     /* go */
    for (;;) {
        cli();
        if (tick_res[1] >= n_ticks)
            break;
        sti_hlt();
    }
    mmio_write32(HPET + HPET_CFG, 0);
    kprintf("hpet_ticks: done count=%lu\n", tick_res[1]);
    halt_done();
}
