/* hello: prints a greeting, exits with status arg0 (host sees (arg0<<1)|1). */
#include "lib/rt.h"

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg1; (void)arg2; (void)arg3;
    serial_puts("hello from denovmm\n");
    return (int)arg0;
}
