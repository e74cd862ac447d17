/* Tick recording shared by the timer guests (timer, hpet_ticks): a
 * dozen-instruction interrupt handler that stores rdtsc in the results
 * buffer. Results at GPA 0x200000: u64 magic "DNVMTICK", u64 count,
 * u64 tsc[count]. */
#include "rt.h"
#include "ticks.h"

u64 n_ticks;

/* The tick handler, in a dozen instructions: this KVM emulates every guest
 * instruction (~1 M/s), so the generic stub + C dispatch (~150
 * instructions) would itself take longer than a 100 us period. Records
 * rdtsc at res[2 + count] while count < n_ticks, then EOIs the LAPIC. */
void fast_tick(void);
__asm__(
    ".text\n"
    ".globl fast_tick\n"
    "fast_tick:\n"
    "  push %rax\n"
    "  push %rdx\n"
    "  push %rcx\n"
    "  mov $0x200008, %ecx\n"          /* &res[1] */
    "  mov (%rcx), %rcx\n"
    "  cmp n_ticks(%rip), %rcx\n"
    "  jae 1f\n"
    "  rdtsc\n"
    "  shl $32, %rdx\n"
    "  or %rdx, %rax\n"
    "  mov %rax, 0x200010(,%rcx,8)\n"
    "  inc %rcx\n"
    "  mov %rcx, 0x200008\n"
    "1:\n"
    "  mov $0xfee000b0, %ecx\n"        /* LAPIC EOI */
    "  movl $0, (%rcx)\n"
    "  pop %rcx\n"
    "  pop %rdx\n"
    "  pop %rax\n"
    "  iretq\n");

