/* AP start-up shared by the SMP guests: a real-mode trampoline at 0x7000
 * (SIPI vector 7) that goes real mode -> 32-bit protected mode -> long
 * mode and calls C on a per-AP stack, with no `int` and no 32-bit `iret`
 * (which this host cannot emulate). */
#ifndef DENOVMM_SMP_BOOT_H
#define DENOVMM_SMP_BOOT_H
#include "rt.h"

#define SMP_MAX_CPUS   16
#define SMP_WAIT_ITERS 2000000   /* outb 0x80 polls: bounded, not timed */

/* APs that called smp_ap_online(). */
extern volatile u32 smp_ap_started;

/* Start APs 1..n-1 (APIC IDs) one at a time with INIT/SIPI (a second SIPI
 * when the first went unanswered). Each AP loads the BSP's IDT (call after
 * idt_init and every irq_register), enables its LAPIC and calls `entry`,
 * which must call smp_ap_online() once it is ready and never return.
 * Returns the number of APs online. */
u32 smp_start_aps(u32 n, void (*entry)(void));
/* Called by an AP's entry when it is ready. */
void smp_ap_online(void);
/* Send an IPI: destination (ICR bits 63:56) and the ICR low word. */
void smp_send_ipi(u32 dest, u32 icr_lo);
/* With interrupts enabled, poll (port 0x80 writes, bounded) until
 * *c >= target; returns *c, interrupts disabled again. */
u32 smp_wait_until(volatile u32 *c, u32 target);

#endif
