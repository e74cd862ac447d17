/* forbidden: executes one instruction this project's host cannot emulate
 * (arg0: 0 int3, 1 int $0x80, 2 xgetbv, 3 cmpxchg16b), with known values
 * in RBX and R12, from a code buffer in .rodata (so the build's
 * forbidden-instruction check, which reads .text, stays clean). No IDT is
 * loaded: on a host that can execute it, the exception ends as a triple
 * fault. The run must end with a crash report naming the address printed
 * here and the bytes. Never returns normally. */
#include "lib/rt.h"

/* Each: the instruction, then nop; ret (never reached on this host). */
static const u8 code[4][8] __attribute__((aligned(16))) = {
    {0xcc, 0x90, 0xc3},                   /* int3 */
    {0xcd, 0x80, 0x90, 0xc3},             /* int $0x80 */
    {0x0f, 0x01, 0xd0, 0x90, 0xc3},       /* xgetbv */
    {0xf0, 0x48, 0x0f, 0xc7, 0x0f, 0xc3}, /* lock cmpxchg16b (%rdi) */
};
static const char *const names[4] = {"int3", "int n", "xgetbv", "cmpxchg16b"};
static u64 target[2] __attribute__((aligned(16)));

int main(u64 which, u64 a1, u64 a2, u64 a3)
{
    (void)a1; (void)a2; (void)a3;
    if (which > 3) return 100;
    u64 at = (u64)&code[which][0];
    kprintf("forbidden: executing %s at %lx\n", names[which], at);
    __asm__ volatile(
        "movq $0x1111222233334444, %%rbx\n\t"
        "movq $0xdeadbeefcafef00d, %%r12\n\t"
        "xorl %%ecx, %%ecx\n\t"
        "xorl %%eax, %%eax\n\t"
        "xorl %%edx, %%edx\n\t"
        "call *%0"
        :: "r"(at), "D"(target)
        : "rax", "rbx", "rcx", "rdx", "r12", "memory");
    kprintf("forbidden: %s returned\n", names[which]);
    return 101;
}
