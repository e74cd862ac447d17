/* cpuid: prints what CPUID tells this vCPU (vendor, signature, feature
 * words, brand, hypervisor and TSC leaves, topology, XSAVE) as key=value
 * lines for tests/cpu_test.ts to compare with the CPU model the host set,
 * and checks the topology against the LAPIC. Exit status: failures. */
#include "lib/rt.h"

static void regs(const char *name, u32 leaf, u32 sub)
{
    u32 a, b, c, d;
    cpuid(leaf, sub, &a, &b, &c, &d);
    kprintf("%s=%x,%x,%x,%x\n", name, a, b, c, d);
}

int main(u64 a0, u64 a1, u64 a2, u64 a3)
{
    (void)a0; (void)a1; (void)a2; (void)a3;
    u32 a, b, c, d;
    cpuid(0, 0, &a, &b, &c, &d);
    u32 max_basic = a;
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = 0;
    kprintf("vendor=%s\n", vendor);
    kprintf("max_basic=%x\n", max_basic);
    regs("leaf1", 1, 0);
    if (max_basic >= 7) regs("leaf7", 7, 0);
    if (max_basic >= 0xb) {
        regs("leafb.0", 0xb, 0);
        regs("leafb.1", 0xb, 1);
        regs("leafb.2", 0xb, 2);
    }
    if (max_basic >= 0xd) regs("leafd.0", 0xd, 0);
    if (max_basic >= 0x15) regs("leaf15", 0x15, 0);
    cpuid(0x80000000, 0, &a, &b, &c, &d);
    u32 max_ext = a;
    kprintf("max_ext=%x\n", max_ext);
    regs("ext1", 0x80000001, 0);
    if (max_ext >= 0x80000008) regs("ext8", 0x80000008, 0);
    if (max_ext >= 0x80000004) {
        char brand[49];
        for (u32 i = 0; i < 3; i++) {
            cpuid(0x80000002 + i, 0, &a, &b, &c, &d);
            memcpy(brand + 16 * i, &a, 4);
            memcpy(brand + 16 * i + 4, &b, 4);
            memcpy(brand + 16 * i + 8, &c, 4);
            memcpy(brand + 16 * i + 12, &d, 4);
        }
        brand[48] = 0;
        kprintf("brand=%s\n", brand);
    }
    regs("hv0", 0x40000000, 0);
    cpuid(0x40000000, 0, &a, &b, &c, &d);
    char hv[13];
    memcpy(hv, &b, 4);
    memcpy(hv + 4, &c, 4);
    memcpy(hv + 8, &d, 4);
    hv[12] = 0;
    int kvm = memcmp(hv, "KVMKVMKVM\0\0\0", 12) == 0;
    kprintf("hv_sig=%s\n", kvm ? "KVMKVMKVM" : "none");
    if (kvm) {
        kprintf("hv_max=%x\n", a);
        regs("hv1", 0x40000001, 0);
        if (a >= 0x40000010) regs("hv10", 0x40000010, 0);
    }
    /* Topology: one vCPU, APIC ID 0, agreeing with the LAPIC. */
    cpuid(1, 0, &a, &b, &c, &d);
    u32 id = lapic_id();
    kprintf("lapic_id=%u\n", id);
    CHECK("leaf1_apic_id_is_lapic_id", (b >> 24) == id);
    if (max_basic >= 0xb) {
        cpuid(0xb, 0, &a, &b, &c, &d);
        CHECK("leafb_smt_level", ((c >> 8) & 0xff) == 1 && b == 1 && d == id);
        cpuid(0xb, 1, &a, &b, &c, &d);
        CHECK("leafb_core_level_one_vcpu", ((c >> 8) & 0xff) == 2 && b == 1 && d == id);
        cpuid(0xb, 2, &a, &b, &c, &d);
        CHECK("leafb_ends", ((c >> 8) & 0xff) == 0);
    }
    return (int)failures;
}
