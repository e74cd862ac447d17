/* multiboot_tiny.elf: the smallest Multiboot v1 kernel that does something
 * observable, for bench/run_start_bench.ts (cold start, process start ->
 * exit). 32-bit protected mode as the loader leaves it: write "hello\n" to
 * COM1 (0x3F8, no LSR polling: every VMM here takes the byte at once),
 * then `outl 0xF4, 0` (isa-debug-exit: status 0 in denovmm, process exit 1
 * in QEMU with -device isa-debug-exit). The same ELF32 boots under
 * denovmm's loader, QEMU's -kernel (microvm or pc) and bench/c_start.c.
 */
    .section .text
    .code32
    .globl _start
    .align 4
mb_header:
    .long 0x1BADB002            /* magic */
    .long 0                     /* flags: ELF program headers, no info asked */
    .long -0x1BADB002           /* checksum */
_start:
    mov $msg, %esi
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    outb %al, %dx
    jmp 1b
2:  mov $0xf4, %dx
    xor %eax, %eax
    outl %eax, %dx
3:  hlt
    jmp 3b
msg:
    .asciz "hello\n"
