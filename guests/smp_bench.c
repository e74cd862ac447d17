/* smp_bench (benchmark): arg0 = vCPUs (1..16), arg1 = mode, arg2 = K.
 *  mode 1, IPI round trip (2+ vCPUs): K times the BSP sends a fixed IPI to
 *    AP 1, whose handler answers with a fixed IPI to the BSP; the BSP waits
 *    in `sti; hlt` for the answer. Prints "smp_bench: ipi_rtt=<cycles>"
 *    (TSC cycles per round trip).
 *  mode 2, TS-exit throughput: the CPUs in the mask arg3 & 0xFF each write
 *    K times to a TS port, all starting together: port 0x614 for all, or
 *    with arg3 bit 8 port 0x614 + 4 * APIC ID (one port each); a BSP not
 *    in the mask halts until the APs are done (each wakes it with an IPI). Prints
 *    "smp_bench: hammer kcycles=<go .. last done, in 1000s> exits=<total>".
 * APs start with INIT/SIPI (lib/smp_boot.c). Exit status = failures. */
#include "lib/smp_boot.h"

#define VEC_PING  0x50
#define VEC_PONG  0x51
#define PORT_BASE 0x614

static volatile u32 pongs;
static volatile u32 go, done, ready;
static u32 mask, k, per_cpu_port;

static void ping_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    lapic_eoi();
    smp_send_ipi(0, VEC_PONG);
}

static void pong_handler(u64 v, struct frame *f)
{
    (void)v; (void)f;
    pongs++;
    lapic_eoi();
}

static void hammer(u32 id)
{
    u16 port = (u16)(per_cpu_port ? PORT_BASE + 4 * id : PORT_BASE);
    for (u32 i = 0; i < k; i++)
        outl(port, i);
}

static void ap_main(void)
{
    u32 id = lapic_id();
    smp_ap_online();
    if (mask & (1u << id)) {
        __atomic_fetch_add(&ready, 1, __ATOMIC_SEQ_CST);
        while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
            cpu_relax();
        hammer(id);
        __atomic_fetch_add(&done, 1, __ATOMIC_SEQ_CST);
        if (!(mask & 1))
            smp_send_ipi(0, VEC_PONG);   /* the halted BSP: wake up */
    }
    for (;;)
        sti_hlt();
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    u32 n = (u32)arg0, mode = (u32)arg1;
    k = (u32)arg2;
    mask = (u32)arg3 & 0xFF;
    per_cpu_port = (arg3 >> 8) & 1;
    idt_init();
    irq_register(VEC_PING, ping_handler);
    irq_register(VEC_PONG, pong_handler);
    lapic_enable();
    if (n < 1 || n > SMP_MAX_CPUS || k == 0)
        return 1;
    if (mode == 2)
        mask &= (1u << n) - 1;
    CHECK("smp_bench_aps_started", smp_start_aps(n, ap_main) == n - 1);
    if (mode == 1) {
        if (n < 2)
            return (int)failures + 1;
        /* The BSP halts until the answer: both vCPU threads sleep in KVM
         * between the IPIs, as a waiting OS would (a spinning BSP would
         * hold a core the AP's thread needs on a small host). */
        u64 t0 = rdtsc();
        for (u32 i = 1; i <= k; i++) {
            smp_send_ipi(1, VEC_PING);
            for (u32 s = 0; s < 100000000; s++) {
                cli();
                if (pongs >= i)
                    break;
                sti_hlt();
            }
        }
        u64 t = rdtsc() - t0;
        sti();
        cli();
        CHECK("smp_bench_ipi_all_answered", pongs == k);
        kprintf("smp_bench: ipi_rtt=%u\n", (u32)(t / k));
    } else if (mode == 2) {
        u32 aps = 0;
        for (u32 id = 1; id < n; id++)
            aps += (mask >> id) & 1;
        for (u32 s = 0; s < 100000000 && ready < aps; s++)
            cpu_relax();
        u64 t0 = rdtsc();
        __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
        if (mask & 1) {
            hammer(0);
            smp_wait_until(&done, aps);
        } else {
            /* Not writing: halt (each AP's IPI wakes it), so that only the
             * writing vCPUs' threads and the JS thread are busy. */
            for (u32 s = 0; s < 100000000; s++) {
                cli();
                if (__atomic_load_n(&done, __ATOMIC_ACQUIRE) >= aps)
                    break;
                sti_hlt();
            }
            sti();
            cli();
        }
        u64 t = rdtsc() - t0;
        u32 cpus = aps + (mask & 1);
        CHECK("smp_bench_hammer_done", done == aps);
        kprintf("smp_bench: hammer kcycles=%u exits=%u\n", (u32)(t / 1000), cpus * k);
    }
    return (int)failures;
}
