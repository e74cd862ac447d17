/* timer: PV timer (port 107) measurement.
 *   arg0 = period in microseconds (0 -> 1000)
 *   arg1 = N ticks to record (0 -> 100, capped at 4000)
 *   arg2 = vector the ticks arrive on (0 -> 0x20)
 *   arg3 = IOAPIC pin (GSI) to program edge-triggered, unmasked, to arg2
 *          for this CPU; 0xFFFFFFFF = MSI delivery, no IOAPIC programming;
 *          pin | 0x10000 = program the pin level-triggered instead.
 * Results at GPA 0x200000: u64 magic "DNVMTICK", u64 count, u64 tsc[count].
 * The handler records rdtsc while count < N and EOIs the LAPIC. When
 * count == N: outl 107 <- 0 (stop), then outb 108 (halt). */
#include "lib/rt.h"
#include "lib/ticks.h"

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    u32 period_us = arg0 ? (u32)arg0 : 1000;
    ticks_init(arg1 ? arg1 : 100);
    u8 vector = arg2 ? (u8)arg2 : 0x20;
    u32 pin = (u32)arg3;
    int level = 0;
    if (pin != 0xFFFFFFFFu) {
        level = (pin & 0x10000u) != 0;
        pin &= 0xFFFFu;
    }

    idt_init();
    idt_set_entry(vector, (u64)fast_tick);
    lapic_enable();
    if (pin != 0xFFFFFFFFu)
        ioapic_set_redir(pin, vector, level, 0 /* unmasked */, (u8)lapic_id());

    if (pin == 0xFFFFFFFFu)
        kprintf("timer: period=%uus n=%lu vector=0x%x delivery=msi\n", period_us, n_ticks, vector);
    else
        kprintf("timer: period=%uus n=%lu vector=0x%x ioapic_pin=%u%s\n", period_us, n_ticks, vector, pin,
                level ? " level" : "");

    outl(PORT_PVTIMER, period_us);
    for (;;) {
        cli();
        if (tick_res[1] >= n_ticks)
            break;
        sti_hlt();
    }
    outl(PORT_PVTIMER, 0);
    kprintf("timer: done count=%lu\n", tick_res[1]);
    halt_done();
}
