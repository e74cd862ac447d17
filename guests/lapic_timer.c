/* lapic_timer: in-kernel LAPIC timer in TSC-deadline mode, vector 0x30.
 *   arg0 = period in TSC ticks (0 -> 1000000)
 *   arg1 = N ticks to record (0 -> 100, capped at 4000)
 * First deadline = rdtsc() + period; the handler records rdtsc, then (if
 * more ticks are wanted) re-arms with deadline += period (from the previous
 * deadline, no drift), and EOIs. Results buffer as for timer.c:
 * GPA 0x200000: u64 magic "DNVMTICK", u64 count, u64 tsc[count].
 * Ends with outb 108 (halt). If CPUID.1:ECX[24] (TSC-deadline) is clear, or
 * the LVT timer does not read back TSC-deadline mode + vector 0x30, prints a
 * FAIL line and exits via 0xF4 with 1 (KVM only accepts the mode when the
 * VMM set the CPUID bit, cf. KVM_CAP_TSC_DEADLINE_TIMER). */
#include "lib/rt.h"

#define MAX_TICKS 4000
#define VEC_TIMER 0x30

static volatile u64 *const res = (volatile u64 *)RESULTS_BASE;
static u64 n_ticks;
static u64 period;
static volatile u64 deadline;

static void tick_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u64 now = rdtsc();
    u64 c = res[1];
    if (c < n_ticks) {
        res[2 + c] = now;
        res[1] = ++c;
        if (c < n_ticks) {
            deadline += period;
            wrmsr(MSR_TSC_DEADLINE, deadline);
        }
    }
    lapic_eoi();
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg2; (void)arg3;
    period = arg0 ? arg0 : 1000000;
    n_ticks = arg1 ? arg1 : 100;
    if (n_ticks > MAX_TICKS) n_ticks = MAX_TICKS;

    res[0] = RESULTS_MAGIC;
    res[1] = 0;

    u32 a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    if (!(c & (1u << 24))) {
        kprintf("FAIL lapic_timer_tsc_deadline_supported (cpuid.1:ecx=0x%x)\n", c);
        exit_with(1);
    }

    idt_init();
    irq_register(VEC_TIMER, tick_handler);
    lapic_enable();
    lapic_write(LAPIC_LVT_TIMER, (2u << 17) | VEC_TIMER);   /* TSC-deadline */
    {
        /* KVM masks the TSC-deadline mode bit unless the guest CPUID has it. */
        u32 lvt = lapic_read(LAPIC_LVT_TIMER);
        if (((lvt >> 17) & 3) != 2 || (lvt & 0xFF) != VEC_TIMER) {
            kprintf("FAIL lapic_timer_lvt_tsc_deadline_mode (lvt=0x%x)\n", lvt);
            exit_with(1);
        }
    }

    kprintf("lapic_timer: period=%lu tsc n=%lu\n", period, n_ticks);

    cli();
    deadline = rdtsc() + period;
    wrmsr(MSR_TSC_DEADLINE, deadline);
    for (;;) {
        cli();
        if (res[1] >= n_ticks)
            break;
        sti_hlt();
    }
    wrmsr(MSR_TSC_DEADLINE, 0);
    lapic_write(LAPIC_LVT_TIMER, 1u << 16);                  /* mask */
    kprintf("lapic_timer: done count=%lu\n", res[1]);
    halt_done();
}
