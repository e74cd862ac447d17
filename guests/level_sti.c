/* level_sti: a level line raised while interrupts are off, then taken with
 * `sti; hlt` and retriggered by its EOI, repeated (kvm-unit-tests'
 * "retriggered level interrupts without masking": the pattern after which
 * a nested KVM can lose the split-irqchip EOI exit, leaving Remote IRR set
 * and the guest halted).
 *   arg0 = GSI (a pc-testdev line), arg1 = vector, arg2 = rounds,
 *   arg3 = 1: reprogram the entry each round, alternating vector and
 *   vector + 1 (a routing update right before the line rises).
 * Each round: cli; raise the line; sti; hlt until two interrupts came. The
 * handler EOIs the LAPIC with the line still high on the first interrupt
 * (the EOI must retrigger it) and lowers the line on the second. Waits use
 * sti; hlt with a 5 ms LAPIC timer, at most 2 s per round. Prints the
 * count; exits 0 when every round got exactly its two interrupts, else 1. */
#include "lib/rt.h"

#define VEC_WD 0xEF

static volatile u32 count, wd;
static u32 gsi;

static void handler(u64 v, struct frame *f)
{
    if (++count % 2 == 0)
        irq_line(gsi, 0);
    lapic_eoi();
}
static void on_wd(u64 v, struct frame *f) { wd++; lapic_eoi(); }

int main(u64 line, u64 vector, u64 rounds, u64 reprogram)
{
    gsi = (u32)line;
    idt_init();
    irq_register((u8)vector, handler);
    irq_register((u8)(vector + 1), handler);
    irq_register(VEC_WD, on_wd);
    lapic_enable();
    ioapic_set_redir(gsi, (u8)vector, 1 /* level */, 0, (u8)lapic_id());
    lapic_watchdog_start(VEC_WD, 5000000);
    u32 r;
    for (r = 0; r < rounds; r++) {
        cli();
        if (reprogram)   /* a new vector each round, as test suites do */
            ioapic_set_redir(gsi, (u8)(vector + (r & 1)), 1, 0, (u8)lapic_id());
        irq_line(gsi, 1);
        for (int i = 0; i < 400 && count < 2 * (r + 1); i++) { sti_hlt(); cli(); }
        if (count != 2 * (r + 1)) break;
    }
    lapic_watchdog_stop();
    kprintf("level_sti: count=%u rounds=%u/%lu watchdog=%u\n", count, r, rounds, wd);
    return count == 2 * rounds ? 0 : 1;
}
