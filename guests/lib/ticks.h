/* Tick recording shared by the timer guests (see ticks.c). */
#ifndef DENOVMM_TICKS_H
#define DENOVMM_TICKS_H
#include "rt.h"

#define MAX_TICKS 4000

/* Ticks to record; the handler stops recording (still EOIs) after that. */
extern u64 n_ticks;
/* The handler: records rdtsc at res[2 + count] while count < n_ticks, then
 * EOIs the LAPIC. Install with idt_set_entry(vector, (u64)fast_tick). */
void fast_tick(void);

static volatile u64 *const tick_res = (volatile u64 *)RESULTS_BASE;

/* Reset the results buffer for n ticks (capped at MAX_TICKS). */
static inline void ticks_init(u64 n)
{
    n_ticks = n > MAX_TICKS ? MAX_TICKS : n;
    tick_res[0] = RESULTS_MAGIC;
    tick_res[1] = 0;
}
#endif
