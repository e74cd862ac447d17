/* selfipi: LAPIC self-IPI on vector 0x40, delivered exactly once per IPI.
 * A periodic LAPIC timer on vector 0x41 (about 10 ms) only serves as a
 * watchdog so that every sti;hlt wait is bounded. Exits via 0xF4 with the
 * failure count. */
#include "lib/rt.h"

#define VEC_IPI   0x40
#define VEC_WDOG  0x41

static volatile u32 ipi_count;
static volatile u32 wdog_count;

static void ipi_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    ipi_count++;
    lapic_eoi();
}

static void wdog_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    wdog_count++;
    lapic_eoi();
}

/* Wait with interrupts enabled only inside sti;hlt (no lost wakeup). */
static void wait_count(u32 target)
{
    for (int i = 0; i < 200; i++) {
        cli();
        if (ipi_count >= target)
            break;
        sti_hlt();
    }
    cli();
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg0; (void)arg1; (void)arg2; (void)arg3;
    idt_init();
    irq_register(VEC_IPI, ipi_handler);
    irq_register(VEC_WDOG, wdog_handler);
    lapic_enable();
    lapic_watchdog_start(VEC_WDOG, 10000000);    /* ~10 ms at 1 GHz bus */

    lapic_self_ipi(VEC_IPI);
    wait_count(1);
    CHECK("selfipi_first_delivered", ipi_count == 1);

    lapic_self_ipi(VEC_IPI);
    wait_count(2);
    /* Give a duplicate delivery a chance to show up. */
    sti();
    for (int i = 0; i < 100; i++) cpu_relax();
    cli();
    CHECK("selfipi_second_delivered_once", ipi_count == 2);

    lapic_watchdog_stop();
    kprintf("selfipi: count=%u watchdog_ticks=%u unexpected=%u\n",
            ipi_count, wdog_count, unexpected_irqs);
    return (int)failures;
}
