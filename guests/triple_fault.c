/* triple_fault: loads an empty IDT and executes ud2 with known values in
 * RBX, R12 and R13: #UD cannot be delivered (#GP), nor can #GP (#DF), nor
 * #DF: a triple fault, which KVM reports as a shutdown. The run must end
 * with the vCPU's state: RIP at the ud2 printed here, the registers, the
 * bytes 0f 0b. Never returns normally. */
#include "lib/rt.h"

struct __attribute__((packed)) idtr { u16 limit; u64 base; };

int main(u64 a0, u64 a1, u64 a2, u64 a3)
{
    (void)a0; (void)a1; (void)a2; (void)a3;
    static const struct idtr empty = {0, 0};
    u64 at;
    __asm__ volatile("leaq 1f(%%rip), %0" : "=r"(at));
    kprintf("triple_fault: ud2 at %lx\n", at);
    __asm__ volatile(
        "lidt %0\n\t"
        "movq $0x1111222233334444, %%rbx\n\t"
        "movq $0xdeadbeefcafef00d, %%r12\n\t"
        "movq $0x0123456789abcdef, %%r13\n\t"
        "1: ud2\n\t"
        :: "m"(empty)
        : "rbx", "r12", "r13", "memory");
    return 101;
}
