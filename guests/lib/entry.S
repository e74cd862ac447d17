/* denovmm guest runtime: entry stub + 256 interrupt stubs (64-bit only). */

    .section .text.entry, "ax"
    .code64
    .globl _start
_start:
    cli
    /* Keep the host-provided arguments in callee-saved registers. */
    movq    %rdi, %r12
    movq    %rsi, %r13
    movq    %rdx, %r14
    movq    %rcx, %r15
    movq    $__stack_top, %rsp
    xorl    %ebp, %ebp
    cld
    call    rt_init                 /* zero .bss, mask PICs */
    movq    %r12, %rdi
    movq    %r13, %rsi
    movq    %r14, %rdx
    movq    %r15, %rcx
    call    main
    movl    %eax, %edi
    call    exit_with               /* does not return */
1:  cli
    hlt
    jmp     1b

/* ---- interrupt stubs --------------------------------------------------- */
/* Exceptions that push an error code: 8, 10-14, 17, 21, 29, 30. */

    .text
    .altmacro
    .macro ISR_STUB n
    .p2align 4
isr_stub_\n:
    .if ((\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30))
    .else
    pushq   $0                      /* dummy error code */
    .endif
    pushq   $\n                     /* vector */
    jmp     isr_common
    .endm

    .set    vec, 0
    .rept   256
    ISR_STUB %vec
    .set    vec, vec + 1
    .endr

/* Stack on entry to isr_common (low -> high):
 *   vector, error, rip, cs, rflags, rsp, ss
 * After the pushes below it matches struct frame in rt.h. */
isr_common:
    pushq   %rax
    pushq   %rbx
    pushq   %rcx
    pushq   %rdx
    pushq   %rsi
    pushq   %rdi
    pushq   %rbp
    pushq   %r8
    pushq   %r9
    pushq   %r10
    pushq   %r11
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    cld
    movq    15*8(%rsp), %rdi        /* vector */
    movq    %rsp, %rsi              /* struct frame * */
    /* The CPU aligns RSP to 16 before pushing the 5-word frame; with
     * error+vector+15 GPRs (17 words) RSP is 16-byte aligned here. */
    call    isr_dispatch
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %r11
    popq    %r10
    popq    %r9
    popq    %r8
    popq    %rbp
    popq    %rdi
    popq    %rsi
    popq    %rdx
    popq    %rcx
    popq    %rbx
    popq    %rax
    addq    $16, %rsp               /* vector + error code */
    iretq

/* ---- table of stub addresses, used by idt_init() ----------------------- */
    .macro ISR_ADDR n
    .quad   isr_stub_\n
    .endm

    .section .rodata
    .p2align 3
    .globl  isr_stub_table
isr_stub_table:
    .set    vec, 0
    .rept   256
    ISR_ADDR %vec
    .set    vec, vec + 1
    .endr

    .section .note.GNU-stack, "", @progbits
