/* msi_exits (benchmark): arg0 = port, arg1 = count, arg2 = vector.
 * `count` times: `outb port` (the host answers with an MSI to `vector`,
 * fixed delivery to APIC 0), then wait, interrupts enabled, until the
 * handler ran. The handler is a raw IDT entry of six instructions (count,
 * LAPIC EOI, iretq), so that guest work stays small next to the host's.
 * Exits via 0xF4 with 0 when every write got exactly one interrupt, 1 when
 * one never came (after a bounded wait), 2 for extra interrupts. */
#include "lib/rt.h"

/* Spins (compiler barriers) allowed for one interrupt: KVM injects it on
 * the VM entry that follows the write, so normally none is needed. */
#define WAIT_SPINS 1000

volatile u32 msi_count;

void msi_isr(void);
__asm__(
    "    .text\n"
    "    .p2align 4\n"
    "msi_isr:\n"
    "    pushq   %rax\n"
    "    incl    msi_count(%rip)\n"
    "    movl    $0xFEE000B0, %eax\n"   /* LAPIC EOI (zero-extended) */
    "    movl    $0, (%rax)\n"
    "    popq    %rax\n"
    "    iretq\n");

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg3;
    u16 port = (u16)arg0;
    idt_init();
    idt_set_entry((u8)arg2, (u64)msi_isr);
    lapic_enable();
    sti();
    u32 missed = 0;
    for (u64 i = 0; i < arg1; i++) {
        outb(port, 0);
        for (u32 s = 0; msi_count <= i && s < WAIT_SPINS; s++)
            cpu_relax();
        if (msi_count <= i)
            missed++;
    }
    for (u32 s = 0; s < 20; s++)
        cpu_relax();
    cli();
    if (missed)
        return 1;
    return msi_count == arg1 ? 0 : 2;
}
