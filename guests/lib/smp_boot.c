/* AP start-up shared by the SMP guests (see smp_boot.h). */
#include "smp_boot.h"

#define TRAMP_BASE 0x7000UL   /* SIPI vector 0x07; below the boot GDT's neighbours */

/* The trampoline, copied to TRAMP_BASE. Kept in a data section so that
 * the 64-bit forbidden-instruction scan does not decode its 16/32-bit
 * code. Addresses are TRAMP_BASE + offset in the blob. */
__asm__(
    ".section .rodata.smp_tramp, \"a\"\n"
    ".set TB, 0x7000\n"
    ".globl tramp_start, tramp_end, tramp_cr3, tramp_stack, tramp_entry\n"
    ".code16\n"
    "tramp_start:\n"
    "    cli\n"
    "    movw %cs, %ax\n"
    "    movw %ax, %ds\n"
    "    lgdtl (tramp_gdtr - tramp_start)\n"
    "    movl %cr0, %eax\n"
    "    orl $1, %eax\n"
    "    movl %eax, %cr0\n"
    "    ljmpl $0x18, $(TB + tramp32 - tramp_start)\n"
    ".code32\n"
    "tramp32:\n"
    "    movw $0x10, %ax\n"
    "    movw %ax, %ds\n"
    "    movw %ax, %es\n"
    "    movw %ax, %ss\n"
    "    movl %cr4, %eax\n"
    "    orl $0x20, %eax\n"                 /* PAE */
    "    movl %eax, %cr4\n"
    "    movl (TB + tramp_cr3 - tramp_start), %eax\n"
    "    movl %eax, %cr3\n"
    "    movl $0xC0000080, %ecx\n"          /* EFER.LME */
    "    rdmsr\n"
    "    orl $0x100, %eax\n"
    "    wrmsr\n"
    "    movl $0x80010033, %eax\n"          /* PG WP NE ET MP PE, caches on */
    "    movl %eax, %cr0\n"
    "    ljmpl $0x08, $(TB + tramp64 - tramp_start)\n"
    ".code64\n"
    "tramp64:\n"
    "    movw $0x10, %ax\n"
    "    movw %ax, %ds\n"
    "    movw %ax, %es\n"
    "    movw %ax, %ss\n"
    "    movw %ax, %fs\n"
    "    movw %ax, %gs\n"
    "    movl $(TB + tramp_stack - tramp_start), %eax\n"
    "    movq (%rax), %rsp\n"
    "    movl $(TB + tramp_entry - tramp_start), %eax\n"
    "    movq (%rax), %rax\n"
    "    xorl %ebp, %ebp\n"
    "    jmp *%rax\n"
    "    .p2align 3\n"
    "tramp_gdt:\n"
    "    .quad 0\n"
    "    .quad 0x00af9a000000ffff\n"        /* 0x08: 64-bit code (the IDT's selector) */
    "    .quad 0x00cf92000000ffff\n"        /* 0x10: data */
    "    .quad 0x00cf9a000000ffff\n"        /* 0x18: 32-bit code */
    "tramp_gdtr:\n"
    "    .word 31\n"
    "    .long TB + tramp_gdt - tramp_start\n"
    "    .p2align 3\n"
    "tramp_cr3:   .quad 0\n"
    "tramp_stack: .quad 0\n"
    "tramp_entry: .quad 0\n"
    "tramp_end:\n"
    ".text\n");

extern const u8 tramp_start[], tramp_end[], tramp_cr3[], tramp_stack[], tramp_entry[];

static struct { u16 limit; u64 base; } __attribute__((packed)) idtr;
static u8 ap_stacks[SMP_MAX_CPUS][4096] __attribute__((aligned(16)));
static void (*ap_entry)(void);
volatile u32 smp_ap_started;

static void ap_start(void)
{
    __asm__ volatile("lidt %0" :: "m"(idtr) : "memory");
    lapic_enable();
    ap_entry();
    for (;;)
        hlt();
}

void smp_ap_online(void)
{
    __atomic_fetch_add(&smp_ap_started, 1, __ATOMIC_SEQ_CST);
}

void smp_send_ipi(u32 dest, u32 icr_lo)
{
    for (int i = 0; i < 100000 && (lapic_read(LAPIC_ICR_LO) & (1u << 12)); i++)
        cpu_relax();
    lapic_write(LAPIC_ICR_HI, dest << 24);
    lapic_write(LAPIC_ICR_LO, icr_lo);
}

u32 smp_wait_until(volatile u32 *c, u32 target)
{
    sti();
    for (int i = 0; i < SMP_WAIT_ITERS && *c < target; i++)
        outb(PORT_NULL, 0);
    cli();
    return *c;
}

u32 smp_start_aps(u32 n, void (*entry)(void))
{
    if (n > SMP_MAX_CPUS)
        n = SMP_MAX_CPUS;
    __asm__ volatile("sidt %0" : "=m"(idtr) :: "memory");
    ap_entry = entry;
    u64 cr3;
    __asm__ volatile("movq %%cr3, %0" : "=r"(cr3));
    usize len = (usize)(tramp_end - tramp_start);
    memcpy((void *)TRAMP_BASE, tramp_start, len);
    *(volatile u64 *)(TRAMP_BASE + (usize)(tramp_cr3 - tramp_start)) = cr3;
    *(volatile u64 *)(TRAMP_BASE + (usize)(tramp_entry - tramp_start)) = (u64)ap_start;
    for (u32 id = 1; id < n; id++) {
        *(volatile u64 *)(TRAMP_BASE + (usize)(tramp_stack - tramp_start)) =
            (u64)&ap_stacks[id][4096];
        smp_send_ipi(id, 0x4500);                            /* INIT */
        smp_send_ipi(id, 0x4600 | (u32)(TRAMP_BASE >> 12));  /* SIPI */
        if (smp_wait_until(&smp_ap_started, id) < id) {
            smp_send_ipi(id, 0x4600 | (u32)(TRAMP_BASE >> 12));  /* second SIPI */
            smp_wait_until(&smp_ap_started, id);
        }
    }
    return smp_ap_started;
}
