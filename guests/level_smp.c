/* level_smp: a host level source (irqfd + resamplefd, `Vm.createLevelSource`)
 * whose IOAPIC pin is routed to each CPU in turn. The BSP starts every AP
 * (lib/smp_boot.c); for target CPU t = n-1 down to 0 it programs the pin
 * level-triggered, physical destination t, writes port 0x2F1 ("ready": the
 * host adds K work items), and waits until K interrupts arrived. Each
 * handler counts per CPU and EOIs its LAPIC, which (broadcast EOI) clears
 * Remote IRR and resamples the source: the line stays asserted while work
 * remains, so the CPU takes K (more only where the host re-signals a
 * message it saw lost, `quirks.levelResignal`: the test checks those
 * against the source's `reinjected`) and no other CPU takes any. Per-CPU
 * counts go to port 0x648 as (t << 16) | (cpu << 8) | count.
 *   arg0 = vCPUs (2..16), arg1 = pin, arg2 = vector, arg3 = K (1..255).
 * Exit status = failures. */
#include "lib/smp_boot.h"

#define PORT_READY 0x2F1
#define PORT_TABLE 0x648
#define MAX_CPUS   SMP_MAX_CPUS

static volatile u32 hits[MAX_CPUS][MAX_CPUS];
static volatile u32 total;
static volatile u32 target;

static void handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    u32 t = target, id = lapic_id();
    if (t < MAX_CPUS && id < MAX_CPUS)
        hits[t][id]++;
    __atomic_fetch_add(&total, 1, __ATOMIC_SEQ_CST);
    lapic_eoi();
}

static void ap_main(void)
{
    smp_ap_online();
    for (;;)
        sti_hlt();
}

int main(u64 arg0, u64 pin, u64 vector, u64 k)
{
    u32 n = (u32)arg0;
    cli();
    idt_init();
    irq_register((u8)vector, handler);
    lapic_enable();
    if (n < 2 || n > MAX_CPUS || lapic_id() != 0 || k < 1 || k > 255) {
        kprintf("level_smp: need 2..%u vCPUs and 1..255 items, got %u, %lu\n", MAX_CPUS, n, k);
        return (int)failures + 1;
    }
    CHECK("all_aps_started", smp_start_aps(n, ap_main) == n - 1);
    int routed = 1;
    for (u32 t = n; t-- > 0;) {
        target = t;
        u32 before = total;
        ioapic_set_redir((u32)pin, (u8)vector, 1 /* level */, 0, (u8)t);
        outb(PORT_READY, 1);
        smp_wait_until(&total, before + (u32)k);
        rt_settle();
        ioapic_mask((u32)pin, 1);
        for (u32 id = 0; id < n; id++) {
            outl(PORT_TABLE, (t << 16) | (id << 8) | (hits[t][id] & 0xff));
            if (id == t ? hits[t][id] < (u32)k : hits[t][id] != 0)
                routed = 0;
        }
        kprintf("level_smp: to cpu %u: %u of %lu\n", t, hits[t][t], k);
    }
    CHECK("level_source_only_on_routed_cpu", routed);
    return (int)failures;
}
