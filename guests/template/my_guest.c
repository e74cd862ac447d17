/* A guest of your own, built with `deno task guest path/to/my_guest.c`
 * (writes path/to/my_guest.elf) and booted with
 * `deno run --allow-ffi --allow-read cli.ts path/to/my_guest.elf --arg 2 --arg 3`.
 *
 * The boot ABI (guests/README.md has the whole of it):
 *  - entry in 64-bit long mode, the first 4 GiB identity-mapped, interrupts
 *    off; lib/entry.S sets a stack, zeroes .bss and calls main();
 *  - main(arg0..arg3) gets the host's four arguments (`--arg`, or
 *    `vm.load(path, [a, b])`) from RDI, RSI, RDX, RCX;
 *  - serial_puts/kprintf write to COM1 (the CLI's stdout);
 *  - main's return value v goes to isa-debug-exit (port 0xF4): the run ends
 *    with `{ reason: "exit", status: (v << 1) | 1 }` and the CLI exits 0
 *    for v = 0, else with that status;
 *  - build with general registers only (no SSE), and keep clear of the
 *    instructions this host's KVM cannot emulate (int3, int n, 32-bit iret,
 *    cmpxchg16b, xsave*): the build checks for them.
 */
#include "rt.h"

int main(u64 a, u64 b, u64 arg2, u64 arg3)
{
    (void)arg2; (void)arg3;
    kprintf("my guest: %lu + %lu = %lu\n", a, b, a + b);
    return a + b == 5 ? 0 : 1;
}
