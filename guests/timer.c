/* timer: PV timer (port 107) measurement.
 *   arg0 = period in microseconds (0 -> 1000)
 *   arg1 = N ticks to record (0 -> 100, capped at 4000)
 *   arg2 = vector the ticks arrive on (0 -> 0x20)
 *   arg3 = IOAPIC pin (GSI) to program edge-triggered, unmasked, to arg2
 *          for this CPU; 0xFFFFFFFF = MSI delivery, no IOAPIC programming.
 * Results at GPA 0x200000: u64 magic "DNVMTICK", u64 count, u64 tsc[count].
 * The handler records rdtsc while count < N and EOIs the LAPIC. When
 * count == N: outl 107 <- 0 (stop), then outb 108 (halt). */
#include "lib/rt.h"

#define MAX_TICKS 4000

static volatile u64 *const res = (volatile u64 *)RESULTS_BASE;
static u64 n_ticks;

static void tick_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u64 c = res[1];
    if (c < n_ticks) {
        res[2 + c] = rdtsc();
        res[1] = c + 1;
    }
    lapic_eoi();
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    u32 period_us = arg0 ? (u32)arg0 : 1000;
    n_ticks = arg1 ? arg1 : 100;
    if (n_ticks > MAX_TICKS) n_ticks = MAX_TICKS;
    u8 vector = arg2 ? (u8)arg2 : 0x20;
    u32 pin = (u32)arg3;

    res[0] = RESULTS_MAGIC;
    res[1] = 0;

    idt_init();
    irq_register(vector, tick_handler);
    lapic_enable();
    if (pin != 0xFFFFFFFFu)
        ioapic_set_redir(pin, vector, 0 /* edge */, 0 /* unmasked */, (u8)lapic_id());

    if (pin == 0xFFFFFFFFu)
        kprintf("timer: period=%uus n=%lu vector=0x%x delivery=msi\n", period_us, n_ticks, vector);
    else
        kprintf("timer: period=%uus n=%lu vector=0x%x ioapic_pin=%u\n", period_us, n_ticks, vector, pin);

    outl(PORT_PVTIMER, period_us);
    for (;;) {
        cli();
        if (res[1] >= n_ticks)
            break;
        sti_hlt();
    }
    outl(PORT_PVTIMER, 0);
    kprintf("timer: done count=%lu\n", res[1]);
    halt_done();
}
