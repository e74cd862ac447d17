/* timer_garbage: hostile PV-timer (port 107) programming, then a sane run.
 *   arg0 = sane period in microseconds (0 -> 200)
 *   arg1 = ticks to count in the sane phase (0 -> 50, max 100000)
 *   arg2 = garbage rounds (0 -> 1, max 1000); each round is the whole
 *          garbage sequence below, ending with a stop
 *
 * Ticks arrive as MSI vector 0x20 (the machine's default PV-timer
 * delivery); the handler counts them and EOIs the LAPIC. A periodic LAPIC
 * timer on vector 0x41 (~10 ms, 1 GHz APIC bus) is the watchdog that bounds
 * every sti;hlt wait and calibrates the TSC.
 *
 * Sequence (interrupts enabled during the garbage, so ticks land between
 * writes): outl 107 <- 0 (stop while stopped), 1, 0xFFFFFFFF, then 1000
 * writes cycling 1, 50, 7, then 0. Reads of port 107 check the effective
 * period after 0 / 1 / 0xFFFFFFFF / the final 0. Then arm arg0 and count
 * arg1 ticks, write 0, check that ticks stop.
 *
 * Ends with a summary line. No failures: outb 108 (clean halt). Otherwise
 * 0xF4 <- failure count. */
#include "lib/rt.h"

#define VEC_TICK 0x20
#define VEC_WDOG 0x41
#define WDOG_COUNT 10000000u          /* ~10 ms at the 1 GHz KVM APIC bus */

static volatile u32 ticks;
static volatile u64 first_tsc, last_tsc;
static volatile u32 wdog;
static volatile u64 wdog_tsc[4];

static void tick_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u64 t = rdtsc();
    if (ticks == 0) first_tsc = t;
    last_tsc = t;
    ticks++;
    lapic_eoi();
}

static void wdog_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    if (wdog < 4) wdog_tsc[wdog] = rdtsc();
    wdog++;
    lapic_eoi();
}

/* sti;hlt until *c >= target or `max_wdog` watchdog ticks pass (each hlt
 * wakes on a tick or the watchdog). Returns 1 if the target was reached. */
static int wait_count(volatile u32 *c, u32 target, u32 max_wdog)
{
    u32 w0 = wdog;
    for (u32 it = 0; it < 4 * target + 20 * max_wdog + 100; it++) {
        cli();
        if (*c >= target) { sti(); return 1; }
        if (wdog - w0 >= max_wdog) break;
        sti_hlt();
    }
    sti();
    return *c >= target;
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg3;
    u32 period = arg0 ? (u32)arg0 : 200;
    u32 rounds = arg2 ? (u32)arg2 : 1;
    if (rounds > 1000) rounds = 1000;
    u32 n = arg1 ? (u32)arg1 : 50;
    if (n > 100000) n = 100000;

    cli();
    idt_init();
    irq_register(VEC_TICK, tick_handler);
    irq_register(VEC_WDOG, wdog_handler);
    lapic_enable();
    lapic_watchdog_start(VEC_WDOG, WDOG_COUNT);
    kprintf("timer_garbage: period=%uus n=%u rounds=%u\n", period, n, rounds);

    /* ---- TSC calibration against the watchdog -------------------------- */
    sti();
    int cal = wait_count(&wdog, 3, 50);
    u64 tsc_per_10ms = cal ? (wdog_tsc[2] - wdog_tsc[1]) : 0;
    CHECK("watchdog_runs", cal);

    /* ---- garbage --------------------------------------------------------- */
    static const u32 cyc[3] = { 1, 50, 7 };
    int ok_zero0 = 1, ok_one = 1, ok_max = 1, ok_cyc = 1, ok_zero1 = 1;
    u32 rb_zero0 = 0, rb_one = 0, rb_max = 0, rb_cyc = 0, rb_zero1 = 0;
    for (u32 r = 0; r < rounds; r++) {
        outl(PORT_PVTIMER, 0);
        rb_zero0 = inl(PORT_PVTIMER);
        outl(PORT_PVTIMER, 1);
        rb_one = inl(PORT_PVTIMER);
        outl(PORT_PVTIMER, 0xFFFFFFFFu);
        rb_max = inl(PORT_PVTIMER);
        for (u32 i = 0; i < 1000; i++)
            outl(PORT_PVTIMER, cyc[i % 3]);
        rb_cyc = inl(PORT_PVTIMER);
        outl(PORT_PVTIMER, 0);
        rb_zero1 = inl(PORT_PVTIMER);
        ok_zero0 &= rb_zero0 == 0;
        ok_one &= rb_one != 0;
        ok_max &= rb_max >= rb_one && rb_max != 0;
        ok_cyc &= rb_cyc != 0 && rb_cyc <= 50;
        ok_zero1 &= rb_zero1 == 0;
    }
    u32 garbage_ticks = ticks;
    kprintf("timer_garbage: %u round(s), readback 0->%u 1->%u 0xFFFFFFFF->%u cycle->%u 0->%u; %u ticks during garbage\n",
            rounds, rb_zero0, rb_one, rb_max, rb_cyc, rb_zero1, garbage_ticks);
    CHECK("stop_while_stopped_reads_0", ok_zero0);
    CHECK("period_1_clamped_up", ok_one);
    CHECK("period_max_clamped", ok_max);
    CHECK("cycle_leaves_armed", ok_cyc);
    CHECK("final_zero_stops", ok_zero1);

    /* After the stop: at most one tick already in flight, then silence for
     * two watchdog periods (~20 ms; a 50 us timer would give ~400). */
    wait_count(&wdog, wdog + 1, 3);
    u32 t0 = ticks;
    wait_count(&wdog, wdog + 2, 5);
    u32 after_stop = ticks - t0;
    kprintf("timer_garbage: %u ticks in ~20 ms after stop\n", after_stop);
    CHECK("no_ticks_after_garbage_stop", after_stop == 0);

    /* ---- sane period ------------------------------------------------------- */
    cli();
    ticks = 0;
    first_tsc = last_tsc = 0;
    outl(PORT_PVTIMER, period);
    u32 rb_sane = inl(PORT_PVTIMER);
    sti();
    /* Expected duration n * period; allow 4x that plus 1 s in watchdog ticks. */
    u64 exp_wd = ((u64)n * period) / 10000;
    u32 max_wd = (u32)(100 + 4 * exp_wd);
    int got = wait_count(&ticks, n, max_wd);
    cli();
    u32 counted = ticks;
    u64 span = last_tsc - first_tsc;
    outl(PORT_PVTIMER, 0);
    u32 rb_stop = inl(PORT_PVTIMER);
    sti();
    /* Let a tick already in flight at the stop land: two watchdog ticks, so
     * the window is at least one whole 10 ms period (the first may be
     * pending already and come at once). */
    wait_count(&wdog, wdog + 2, 5);
    u32 t1 = ticks;
    wait_count(&wdog, wdog + 2, 5);
    u32 late = ticks - t1;
    cli();
    lapic_watchdog_stop();

    /* Mean tick interval in us from the TSC (calibrated: 10 ms per wdog). */
    u64 mean_us = 0;
    if (tsc_per_10ms && counted > 1)
        mean_us = span * 10000 / tsc_per_10ms / (counted - 1);
    CHECK("sane_period_readback", rb_sane == period);
    CHECK("sane_ticks_counted", got && counted >= n);
    CHECK("sane_ticks_not_faster_than_period", mean_us == 0 || mean_us * 2 >= period);
    CHECK("sane_stop_reads_0", rb_stop == 0);
    CHECK("no_ticks_after_final_stop", late == 0);
    CHECK("no_unexpected_interrupts", unexpected_irqs == 0);

    kprintf("timer_garbage: summary period=%uus ticks=%u/%u mean=%luus garbage_ticks=%u "
            "late=%u watchdog=%u failures=%u\n",
            period, counted, n, mean_us, garbage_ticks, late, wdog, failures);
    if (failures)
        exit_with(failures);
    halt_done();
}
