/* exits (benchmark): arg0 = port, arg1 = count. Performs `count` outb
 * writes (value 0) to `port` in a tight loop, then exits 0 via port 0xF4.
 * Prints nothing. */
#include "lib/rt.h"

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg2; (void)arg3;
    u16 port = (u16)arg0;
    for (u64 i = 0; i < arg1; i++)
        outb(port, 0);
    return 0;
}
