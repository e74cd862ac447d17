/* x2apic: arg0 = 1 when the host hid x2APIC (cpu "-x2apic"). Checks that
 * CPUID says so, that the xAPIC MMIO page works, that an x2APIC MSR access
 * in xAPIC mode faults (#GP, caught by the IDT handler), and that setting
 * IA32_APIC_BASE.EXTD faults when x2APIC is hidden but works (and the
 * x2APIC MSRs then answer) when it is offered. Exit status: failures. */
#include "lib/rt.h"

#define APIC_BASE_EXTD (1ul << 10)
#define APIC_BASE_EN   (1ul << 11)
#define MSR_X2APIC_ID  0x802
#define MSR_X2APIC_VER 0x803

static volatile u32 gp_count;
static volatile u64 gp_rip;

/* #GP from rdmsr/wrmsr (both 2 bytes: 0f 32 / 0f 30): count and skip. */
static void on_gp(u64 vector, struct frame *f)
{
    (void)vector;
    gp_count++;
    gp_rip = f->rip;
    f->rip += 2;
}

static u64 rdmsr_probe(u32 msr)
{
    u32 lo = 0, hi = 0;
    __asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
    return ((u64)hi << 32) | lo;
}

int main(u64 hidden, u64 a1, u64 a2, u64 a3)
{
    (void)a1; (void)a2; (void)a3;
    idt_init();
    irq_register(13, on_gp);
    u32 a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    int offered = (c >> 21) & 1;
    kprintf("x2apic_cpuid=%d\n", offered);
    CHECK("cpuid_x2apic_bit", offered == !hidden);

    u32 ver = lapic_read(LAPIC_VER);
    kprintf("xapic_version=%x\n", ver);
    CHECK("xapic_mmio_version", (ver & 0xff) >= 0x10 && (ver & 0xff) <= 0x15);
    lapic_write(LAPIC_TPR, 0x20);
    CHECK("xapic_mmio_tpr", lapic_read(LAPIC_TPR) == 0x20);
    lapic_write(LAPIC_TPR, 0);
    CHECK("xapic_mmio_id", lapic_id() == 0);

    gp_count = 0;
    (void)rdmsr_probe(MSR_X2APIC_ID);
    kprintf("gp_after_x2apic_msr_in_xapic_mode=%u\n", gp_count);
    CHECK("x2apic_msr_faults_in_xapic_mode", gp_count == 1);

    u64 base = rdmsr(MSR_APIC_BASE);
    gp_count = 0;
    wrmsr(MSR_APIC_BASE, base | APIC_BASE_EN | APIC_BASE_EXTD);
    u64 after = rdmsr(MSR_APIC_BASE);
    kprintf("gp_after_extd_write=%u apic_base=%lx\n", gp_count, after);
    if (hidden) {
        CHECK("extd_write_faults", gp_count == 1 && !(after & APIC_BASE_EXTD));
        gp_count = 0;
        (void)rdmsr_probe(MSR_X2APIC_VER);
        CHECK("x2apic_msr_still_faults", gp_count == 1);
        CHECK("xapic_mmio_still_works", lapic_read(LAPIC_VER) == ver);
    } else {
        CHECK("extd_write_enables_x2apic", gp_count == 0 && (after & APIC_BASE_EXTD));
        gp_count = 0;
        u64 id = rdmsr_probe(MSR_X2APIC_ID);
        u64 v2 = rdmsr_probe(MSR_X2APIC_VER);
        kprintf("x2apic_id=%lx x2apic_version=%lx\n", id, v2);
        CHECK("x2apic_msrs_answer", gp_count == 0 && id == 0 && (u32)v2 == ver);
    }
    kprintf("gp_rip=%lx\n", gp_rip);
    return (int)failures;
}
