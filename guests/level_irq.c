/* level_irq: counts level-triggered interrupts raised by a host device
 * thread (irqfd + resamplefd), for the resample test and the level round
 * trip benchmark.
 *   arg0 = IOAPIC pin (GSI), arg1 = vector, arg2 = N interrupts to wait
 *   for, arg3 = max sti;hlt wake-ups before giving up (0 -> 4 N + 1000).
 * The pin is programmed level-triggered, unmasked, to this CPU; the handler
 * counts and EOIs the LAPIC (broadcast EOI). Prints the count and exits
 * through 0xF4 with 0 when exactly N arrived, else 1. Writes port 0x2F1
 * once the IOAPIC entry is programmed, so the host starts the work then. */
#include "lib/rt.h"

static volatile u64 count;

static void handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    count++;
    lapic_eoi();
}

int main(u64 pin, u64 vector, u64 n, u64 max_wakes)
{
    if (!max_wakes) max_wakes = 4 * n + 1000;
    idt_init();
    irq_register((u8)vector, handler);
    lapic_enable();
    ioapic_set_redir((u32)pin, (u8)vector, 1 /* level */, 0, (u8)lapic_id());
    outb(0x2F1, 1);                     /* "ready": the host adds work now */
    u64 wakes = 0;
    for (;;) {
        cli();
        if (count >= n || wakes++ >= max_wakes)
            break;
        sti_hlt();
    }
    kprintf("level_irq: count=%lu n=%lu wakes=%lu\n", count, n, wakes);
    return count == n ? 0 : 1;
}
