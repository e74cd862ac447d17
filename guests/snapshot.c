/* snapshot: deterministic work under a ticking PV timer, for snapshot /
 * restore tests.
 *   arg0 = work steps (0 -> 20000)
 *   arg1 = PV timer period in us (0 -> 1000)
 *   arg2 = ticks to wait for after the work, so a restored guest proves its
 *          timer ticks on (0 -> 5)
 *   arg3 = IOAPIC pin for the ticks (edge, vector 0x20), or 0xFFFFFFFF for
 *          MSI delivery (no IOAPIC programming)
 * Results at GPA 0x200000 (u64): [0] magic "DNVMSNAP", [1] ticks, [2] steps
 * done, [3] checksum of the work, [4] 1 when finished. The work scribbles
 * over a 64 KiB buffer at 0x300000 (16 pages) with an LCG; the checksum
 * depends only on arg0, never on when ticks arrive. Ends with outb 108. */
#include "lib/rt.h"

#define SNAP_MAGIC 0x50414E534D564E44UL /* "DNVMSNAP" */
#define BUF ((volatile u64 *)0x300000UL)
#define BUF_WORDS (65536 / 8)

static volatile u64 *const res = (volatile u64 *)RESULTS_BASE;

void snap_tick(void);
__asm__(
    ".text\n"
    ".globl snap_tick\n"
    "snap_tick:\n"
    "  push %rcx\n"
    "  mov $0x200008, %ecx\n"
    "  incq (%rcx)\n"
    "  mov $0xfee000b0, %ecx\n"   /* LAPIC EOI */
    "  movl $0, (%rcx)\n"
    "  pop %rcx\n"
    "  iretq\n");

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    u64 steps = arg0 ? arg0 : 20000;
    u32 period = arg1 ? (u32)arg1 : 1000;
    u64 wait = arg2 ? arg2 : 5;
    u32 pin = (u32)arg3;

    res[0] = SNAP_MAGIC;
    res[1] = 0;
    res[2] = 0;
    res[3] = 0;
    res[4] = 0;
    idt_init();
    idt_set_entry(0x20, (u64)snap_tick);
    lapic_enable();
    if (pin != 0xFFFFFFFFu)
        ioapic_set_redir(pin, 0x20, 0, 0, (u8)lapic_id());
    outl(PORT_PVTIMER, period);
    sti();

    u64 x = 0x9E3779B97F4A7C15UL, sum = 0;
    for (u64 i = 0; i < steps; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        u64 j = (x >> 33) % BUF_WORDS;
        u64 v = BUF[j] ^ x;
        BUF[j] = v;
        sum = (sum << 7 | sum >> 57) ^ v;
        res[2] = i + 1;
    }
    res[3] = sum;
    u64 target = res[1] + wait;
    for (;;) {
        cli();
        if (res[1] >= target)
            break;
        sti_hlt();
    }
    outl(PORT_PVTIMER, 0);
    res[4] = 1;
    kprintf("snapshot: sum=0x%lx ticks=%lu\n", sum, res[1]);
    halt_done();
}
