/* serial_echo: stdin -> COM1 -> guest -> COM1 -> stdout.
 *
 * Prints "serial_echo ready\n", then echoes every byte it receives on COM1
 * (polling LSR.DR) and keeps a byte count and a checksum
 * (sum = sum * 31 + byte, mod 2^32). A line "quit" (after a newline, or
 * as the first line) ends the run: the guest prints
 * "bye bytes=<n> sum=<hex>\n", counting every byte before "quit\n", and
 * exits through 0xF4 with v = 0 (CLI exit code 0).
 * arg0 != 0: exit with v = arg0 instead (to test status passthrough). */
#include "lib/rt.h"

#define LSR_DR 0x01

static u8 getc_poll(void)
{
    while (!(inb(PORT_COM1_LSR) & LSR_DR))
        ;
    return inb(PORT_COM1);
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg1; (void)arg2; (void)arg3;
    static const char quit[] = "quit\n";
    char line[5];
    u32 len = 0;              /* bytes of the current line, up to 5 kept */
    u64 bytes = 0;            /* bytes before the current line */
    u32 sum = 0, line_sum = 0, mul = 1;
    serial_puts("serial_echo ready\n");
    for (;;) {
        u8 c = getc_poll();
        serial_putc((char)c);
        if (len < 5) line[len] = (char)c;
        len++;
        line_sum = line_sum * 31 + c;
        mul *= 31;
        if (c != '\n')
            continue;
        int is_quit = len == 5;
        for (u32 i = 0; is_quit && i < 5; i++)
            if (line[i] != quit[i]) is_quit = 0;
        if (is_quit)
            break;
        /* fold the finished line into the running checksum */
        sum = sum * mul + line_sum;
        bytes += len;
        len = 0;
        line_sum = 0;
        mul = 1;
    }
    kprintf("bye bytes=%u sum=%x\n", (u32)bytes, sum);
    return (int)arg0;
}
