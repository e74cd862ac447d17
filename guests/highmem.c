/* highmem: reads and writes RAM above 4 GiB (the part of guest RAM that
 * lies past the MMIO hole). The boot page tables map 0..4 GiB only, so the
 * guest maps 4..5 GiB itself with 2 MiB pages, as a kernel would.
 *   arg0: offset from 4 GiB (< 1 GiB - 16)   arg1: value the host put there
 * Checks the value, writes ~value at +8, prints PASS/FAIL lines; the exit
 * status is the failure count. */
#include "lib/rt.h"

#define HIGH_BASE 0x100000000UL
#define PTE_P  1UL
#define PTE_RW 2UL
#define PTE_PS (1UL << 7)

static u64 pd[512] __attribute__((aligned(4096)));

int main(u64 offset, u64 expect, u64 arg2, u64 arg3)
{
    (void)arg2; (void)arg3;
    u64 cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    u64 *pml4 = (u64 *)(cr3 & ~0xFFFUL);
    u64 *pdpt = (u64 *)(pml4[0] & ~0xFFFUL);
    for (u64 i = 0; i < 512; i++) pd[i] = (HIGH_BASE + (i << 21)) | PTE_P | PTE_RW | PTE_PS;
    /* Low memory is identity-mapped, so pd's address is its physical one. */
    pdpt[4] = (u64)pd | PTE_P | PTE_RW;
    __asm__ volatile("mov %0, %%cr3" :: "r"(cr3) : "memory");

    volatile u64 *p = (volatile u64 *)(HIGH_BASE + offset);
    CHECK("host value visible above 4 GiB", p[0] == expect);
    p[1] = ~expect;
    CHECK("guest write reads back above 4 GiB", p[1] == ~expect);
    kprintf("highmem done\n");
    return (int)failures;
}
