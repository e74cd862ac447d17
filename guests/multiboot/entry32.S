/* denovmm multiboot v1 test kernel: header + 32-bit entry + switch to long
 * mode, then the guest runtime's 64-bit C (main in multiboot.c).
 *
 * The 32-bit part only uses instructions the host's emulating KVM runs in
 * protected mode: plain moves, rep stosl, lgdt, mov to CRx, rdmsr/wrmsr and
 * one far jump; no int n, no iret.
 *
 * Assembled twice: without MB_AOUT (ELF flavour, header flags 0x3) and with
 * -DMB_AOUT (a.out-kludge flavour, flags 0x10003, address fields used). */

#define MB_MAGIC      0x1BADB002
#define MB_PAGE_ALIGN 0x00000001
#define MB_MEM_INFO   0x00000002
#define MB_AOUT_KLUDGE 0x00010000
#ifdef MB_AOUT
#define MB_FLAGS (MB_PAGE_ALIGN | MB_MEM_INFO | MB_AOUT_KLUDGE)
#else
#define MB_FLAGS (MB_PAGE_ALIGN | MB_MEM_INFO)
#endif

#define PTE_P   0x001
#define PTE_RW  0x002
#define PTE_PWT 0x008
#define PTE_PCD 0x010
#define PTE_PS  0x080

/* ---- multiboot header (first thing in the image, 4-byte aligned) ------- */
    .section .multiboot, "a"
    .p2align 2
mb_header:
    .long   MB_MAGIC
    .long   MB_FLAGS
    .long   -(MB_MAGIC + MB_FLAGS)
    /* a.out-kludge address fields (ignored unless flag bit 16 is set) */
    .long   mb_header               /* header_addr   */
    .long   __image_start           /* load_addr     */
    .long   _edata                  /* load_end_addr */
    .long   __image_end             /* bss_end_addr  */
    .long   mb_start32              /* entry_addr    */

/* ---- 32-bit protected-mode entry --------------------------------------- */
    .section .boot32, "ax"
    .code32
    .globl  mb_start32
mb_start32:
    cli
    /* Stash the loader's values (.data, not .bss: rt_init zeroes .bss). */
    movl    %eax, mb_magic
    movl    %ebx, mb_info
    movl    $boot_stack_top, %esp
    cld

    /* Zero PML4, PDPT, PD0, PD3 (the loader zeroes bss too; be safe). */
    movl    $pml4, %edi
    xorl    %eax, %eax
    movl    $(4 * 4096 / 4), %ecx
    rep stosl

    movl    $(pdpt + PTE_P + PTE_RW), pml4
    movl    $(pd0 + PTE_P + PTE_RW), pdpt
    movl    $(pd3 + PTE_P + PTE_RW), pdpt + 3 * 8

    /* PD0: 0..1 GiB, 2 MiB pages, write-back. */
    movl    $pd0, %edi
    movl    $(PTE_P + PTE_RW + PTE_PS), %eax
    movl    $512, %ecx
1:  movl    %eax, (%edi)
    addl    $0x200000, %eax
    addl    $8, %edi
    decl    %ecx
    jnz     1b

    /* PD3: 3..4 GiB (IOAPIC 0xFEC00000, LAPIC 0xFEE00000), uncached. */
    movl    $pd3, %edi
    movl    $(0xC0000000 + PTE_P + PTE_RW + PTE_PS + PTE_PCD + PTE_PWT), %eax
    movl    $512, %ecx
2:  movl    %eax, (%edi)
    addl    $0x200000, %eax
    addl    $8, %edi
    decl    %ecx
    jnz     2b

    lgdt    gdt64_ptr

    movl    %cr4, %eax
    orl     $0x20, %eax             /* CR4.PAE */
    movl    %eax, %cr4

    movl    $pml4, %eax
    movl    %eax, %cr3

    movl    $0xC0000080, %ecx       /* IA32_EFER */
    rdmsr
    orl     $0x100, %eax            /* LME */
    wrmsr

    movl    %cr0, %eax
    orl     $0x80000000, %eax       /* PG (PE already set) */
    movl    %eax, %cr0

    ljmp    $0x08, $mb_start64

/* ---- 64-bit continuation ------------------------------------------------- */
    .text
    .code64
mb_start64:
    movl    $0x10, %eax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %ss
    movw    %ax, %fs
    movw    %ax, %gs
    movq    $boot_stack_top, %rsp
    xorl    %ebp, %ebp
    call    rt_init                 /* zero .bss, mask PICs */
    movl    mb_magic(%rip), %edi
    movl    mb_info(%rip), %esi
    xorl    %edx, %edx
    xorl    %ecx, %ecx
    call    main
    movl    %eax, %edi
    call    exit_with               /* does not return */
3:  cli
    hlt
    jmp     3b

/* ---- GDT: null, 64-bit code 0x08, flat data 0x10 --------------------------- */
    .section .rodata
    .p2align 3
gdt64:
    .quad   0
    .quad   0x00af9a000000ffff
    .quad   0x00cf92000000ffff
gdt64_end:
    .p2align 2
    .word   0                       /* pad: base at a 4-byte boundary */
gdt64_ptr:
    .word   gdt64_end - gdt64 - 1
    .long   gdt64

/* ---- loader values ----------------------------------------------------------- */
    .data
    .p2align 2
    .globl  mb_magic, mb_info
mb_magic:
    .long   0xDEADBEEF
mb_info:
    .long   0xDEADBEEF

/* ---- page tables and stack: after .bss, so rt_init leaves them alone ---------- */
    .section .bootbss, "aw", @nobits
    .p2align 12
pml4:   .skip 4096
pdpt:   .skip 4096
pd0:    .skip 4096
pd3:    .skip 4096
boot_stack:
    .skip 16384
boot_stack_top:

    .section .note.GNU-stack, "", @progbits
