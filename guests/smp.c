/* smp: the BSP starts every AP with INIT/SIPI through a real-mode
 * trampoline (real mode -> 32-bit protected mode -> long mode, no `int`,
 * no 32-bit `iret`), each AP reports its APIC ID on port 0x610 (a TS
 * plugin counts them) and increments a shared counter; then the BSP and
 * the APs exchange fixed IPIs in rounds (BSP -> each AP on 0x50, each AP
 * answers on 0x60 + its APIC ID, so no two IPIs pending at one LAPIC share
 * a vector and none coalesces); then rounds of NMIs to each AP and of a
 * fixed IPI broadcast to all excluding self (vector 0x51), each AP
 * counting what it got; then IOAPIC pin 3 (edge, fixed, physical) routed to
 * each AP in turn and pulsed once: exactly that AP takes it. arg0 = vCPUs expected, arg1 = rounds,
 * arg2 != 0: then every vCPU spins forever (for stop/timeout tests);
 * arg3 = K > 0: the handoff measurement: the BSP times K writes to port
 * 0x614 (a TS plugin), then AP 1 times K writes, both with rdtsc, and
 * prints "smp: handoff bsp=<cycles/exit> ap=<cycles/exit>".
 * Exit status = failures. */
#include "lib/smp_boot.h"

#define PORT_SMP    0x610
#define MAX_CPUS    SMP_MAX_CPUS
#define VEC_AP      0x50
#define VEC_REPLY   0x60       /* + APIC ID */
#define VEC_BCAST   0x51
#define VEC_IO      0x53
#define IO_PIN      3

static volatile u32 ap_ipis[MAX_CPUS];    /* by APIC ID, counted on the AP */
static volatile u32 replies[MAX_CPUS];    /* by APIC ID, counted on the BSP */
static u32 bsp_id;
static volatile u32 ap_nmis[MAX_CPUS];    /* by APIC ID, counted on the AP */
static volatile u32 ap_bcasts[MAX_CPUS];  /* by APIC ID, counted on the AP */
static volatile u32 bsp_bcasts;
static volatile u32 io_irqs[MAX_CPUS];    /* by APIC ID of the CPU that took it */           /* a broadcast excluding self must not reach the BSP */
static volatile u32 spin_all;
static volatile u32 hammer;          /* K writes for AP 1 to time */
static volatile u64 ap_cycles;
static volatile u32 ap_hammer_done;

#define PORT_HAMMER 0x614

static u64 time_writes(u32 k)
{
    u64 t0 = rdtsc();
    for (u32 i = 0; i < k; i++)
        outl(PORT_HAMMER, i);
    return rdtsc() - t0;
}

#define send_ipi smp_send_ipi
#define wait_until smp_wait_until

static void ap_ipi_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u32 id = lapic_id();
    if (id < MAX_CPUS)
        ap_ipis[id]++;
    lapic_eoi();
    send_ipi(bsp_id, VEC_REPLY + id);
}

static void nmi_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u32 id = lapic_id();
    if (id < MAX_CPUS)
        ap_nmis[id]++;                   /* no EOI for an NMI */
}

static void bcast_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u32 id = lapic_id();
    if (id == bsp_id)
        bsp_bcasts++;
    else if (id < MAX_CPUS)
        ap_bcasts[id]++;
    lapic_eoi();
}

static void io_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u32 id = lapic_id();
    if (id < MAX_CPUS)
        io_irqs[id]++;
    lapic_eoi();
}

static void reply_handler(u64 v, struct frame *f)
{
    (void)f;
    u32 id = (u32)v - VEC_REPLY;
    if (id < MAX_CPUS)
        replies[id]++;
    lapic_eoi();
}

static void ap_main(void)
{
    u32 id = lapic_id();
    outl(PORT_SMP, id);
    smp_ap_online();
    for (;;) {
        if (hammer && id == 1) {
            ap_cycles = time_writes(hammer);
            hammer = 0;
            __atomic_store_n(&ap_hammer_done, 1, __ATOMIC_SEQ_CST);
        }
        if (spin_all) {
            cli();
            for (;;)
                cpu_relax();
        }
        sti_hlt();
    }
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg3;
    u32 n = (u32)arg0, rounds = (u32)arg1;
    idt_init();
    irq_register(VEC_AP, ap_ipi_handler);
    irq_register(2, nmi_handler);
    irq_register(VEC_BCAST, bcast_handler);
    irq_register(VEC_IO, io_handler);
    for (u32 i = 0; i < MAX_CPUS; i++)
        irq_register((u8)(VEC_REPLY + i), reply_handler);
    lapic_enable();
    bsp_id = lapic_id();

    /* Leaf 1 counts addressable IDs (a power of two), leaf 0xB's core
     * level the logical processors themselves. */
    u32 a, b, c, d, max;
    cpuid(0, 0, &max, &b, &c, &d);
    cpuid(1, 0, &a, &b, &c, &d);
    u32 addressable = (b >> 16) & 0xff, count = n;
    u32 b1 = b;
    if (max >= 0xb) {
        cpuid(0xb, 1, &a, &b, &c, &d);
        count = b & 0xffff;
    }
    CHECK("smp_cpuid_count", count == n && addressable >= n && addressable < 2 * n);
    CHECK("smp_bsp_is_apic_0", bsp_id == 0 && (b1 >> 24) == 0);
    if (n < 2 || n > MAX_CPUS) {
        kprintf("smp: need 2..%u vCPUs, got %u\n", MAX_CPUS, n);
        return (int)failures + 1;
    }

    u32 ap_started = smp_start_aps(n, ap_main);
    CHECK("smp_all_aps_started", ap_started == n - 1);

    for (u32 r = 1; r <= rounds; r++) {
        for (u32 id = 1; id < n; id++)
            send_ipi(id, VEC_AP);                        /* fixed, physical */
        for (u32 id = 1; id < n; id++)
            wait_until(&replies[id], r);
    }
    int ok = 1;
    for (u32 id = 1; id < n; id++)
        ok &= ap_ipis[id] == rounds && replies[id] == rounds;
    CHECK("smp_ipi_counts_exact", ok);

    /* NMIs, one outstanding per AP at a time (a second one latched while
     * the first is handled would merge). */
    for (u32 r = 1; r <= rounds; r++) {
        for (u32 id = 1; id < n; id++)
            send_ipi(id, 0x400);                         /* delivery mode NMI */
        for (u32 id = 1; id < n; id++)
            wait_until(&ap_nmis[id], r);
    }
    ok = 1;
    for (u32 id = 1; id < n; id++)
        ok &= ap_nmis[id] == rounds;
    CHECK("smp_nmi_counts_exact", ok);

    /* Fixed broadcast to all excluding self: every AP, never the BSP. */
    for (u32 r = 1; r <= rounds; r++) {
        send_ipi(0, 0xC0000 | VEC_BCAST);
        for (u32 id = 1; id < n; id++)
            wait_until(&ap_bcasts[id], r);
    }
    ok = bsp_bcasts == 0;
    for (u32 id = 1; id < n; id++)
        ok &= ap_bcasts[id] == rounds;
    CHECK("smp_broadcast_excluding_self", ok);

    /* IOAPIC physical destination: pin IO_PIN to each AP in turn. */
    irq_line(IO_PIN, 0);
    for (u32 id = 1; id < n; id++) {
        ioapic_set_redir(IO_PIN, VEC_IO, 0, 0, (u8)id);
        irq_line(IO_PIN, 1);
        irq_line(IO_PIN, 0);
        wait_until(&io_irqs[id], 1);
    }
    ioapic_mask(IO_PIN, 1);
    ok = io_irqs[0] == 0;
    for (u32 id = 1; id < n; id++)
        ok &= io_irqs[id] == 1;
    CHECK("smp_ioapic_physical_destination", ok);
    kprintf("smp: cpus=%u started=%u rounds=%u", n, ap_started, rounds);
    for (u32 id = 1; id < n; id++)
        kprintf(" ap%u=%u/%u nmi=%u bcast=%u", id, ap_ipis[id], replies[id],
                ap_nmis[id], ap_bcasts[id]);
    kprintf(" unexpected=%u\n", unexpected_irqs);
    if (arg3) {
        u32 k = (u32)arg3;
        u64 bsp = time_writes(k);
        hammer = k;
        send_ipi(1, VEC_AP);                 /* wake AP 1: it sees hammer */
        wait_until(&ap_hammer_done, 1);
        wait_until(&replies[1], rounds + 1);
        CHECK("smp_handoff_done", ap_hammer_done == 1);
        kprintf("smp: handoff bsp=%u ap=%u\n", (u32)(bsp / k), (u32)(ap_cycles / k));
    }
    if (arg2) {
        spin_all = 1;
        for (u32 id = 1; id < n; id++)
            send_ipi(id, VEC_AP);    /* wake it: it sees spin_all */
        kprintf("smp: spinning\n");
        for (;;)
            cpu_relax();
    }
    return (int)failures;
}
