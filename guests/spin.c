/* spin: prints "spinning" then keeps the vCPU busy forever (no hlt). */
#include "lib/rt.h"

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg0; (void)arg1; (void)arg2; (void)arg3;
    serial_puts("spinning\n");
    for (;;)
        cpu_relax();
}
