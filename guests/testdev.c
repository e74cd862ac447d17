/* testdev: QEMU's pc-testdev as test kernels use it.
 *  - 0xE0..0xE3: a 32-bit scratch register read back at every width and
 *    offset, also through string I/O (rep ins/outs); 0xE8..0xEB the same
 *    register; 0xE4 the flush-page port (4-byte write).
 *  - 0x2000+n: IRQ line n; a 2- or 4-byte write acts byte by byte.
 *  - 0xFF000000: 64 KiB "iomem" that reads back what was written: plain
 *    moves of 1/2/4/8 bytes at every alignment, ALU read-modify-write ops,
 *    and string ops (movs/stos/lods/cmps/scas, with REP, both directions).
 * Each check prints PASS/FAIL; the exit status is the failure count. */
#include "lib/rt.h"

#define TD_PORT   0xE0
#define TD_FLUSH  0xE4
#define TD_BYTE   0xE8
#define IOMEM     0xFF000000UL

static u8 ram_a[64], ram_b[64];
static u8 shadow[64];          /* expected iomem bytes at IOMEM + 0x100 */
#define SH_BASE   (IOMEM + 0x100)

static void fill(u8 *p, u32 n, u8 seed)
{
    for (u32 i = 0; i < n; i++) p[i] = (u8)(seed + i * 7);
}

/* ---- PIO ------------------------------------------------------------------ */
static void rep_outsb(u16 port, const void *src, u64 n) { __asm__ volatile("rep outsb" : "+S"(src), "+c"(n) : "d"(port) : "memory"); }
static void rep_outsw(u16 port, const void *src, u64 n) { __asm__ volatile("rep outsw" : "+S"(src), "+c"(n) : "d"(port) : "memory"); }
static void rep_outsl(u16 port, const void *src, u64 n) { __asm__ volatile("rep outsl" : "+S"(src), "+c"(n) : "d"(port) : "memory"); }
static void rep_insb(u16 port, void *dst, u64 n) { __asm__ volatile("rep insb" : "+D"(dst), "+c"(n) : "d"(port) : "memory"); }
static void rep_insw(u16 port, void *dst, u64 n) { __asm__ volatile("rep insw" : "+D"(dst), "+c"(n) : "d"(port) : "memory"); }
static void rep_insl(u16 port, void *dst, u64 n) { __asm__ volatile("rep insl" : "+D"(dst), "+c"(n) : "d"(port) : "memory"); }

static void pio_tests(void)
{
    outl(TD_PORT, 0x12345678);
    CHECK("pio_l_l", inl(TD_PORT) == 0x12345678);
    CHECK("pio_l_w0", inw(TD_PORT) == 0x5678);
    CHECK("pio_l_w2", inw(TD_PORT + 2) == 0x1234);
    CHECK("pio_l_b0123", inb(TD_PORT) == 0x78 && inb(TD_PORT + 1) == 0x56 &&
                         inb(TD_PORT + 2) == 0x34 && inb(TD_PORT + 3) == 0x12);
    outb(TD_PORT + 1, 0xAB);
    CHECK("pio_b1_l", inl(TD_PORT) == 0x1234AB78);
    outw(TD_PORT + 2, 0xCDEF);
    CHECK("pio_w2_l", inl(TD_PORT) == 0xCDEFAB78);
    outw(TD_PORT + 1, 0x5566);
    CHECK("pio_w1_unaligned_l", inl(TD_PORT) == 0xCD556678);
    CHECK("pio_byte_view_shares", inl(TD_BYTE) == 0xCD556678);
    outl(TD_BYTE, 0x0BADF00D);
    CHECK("pio_byte_view_write", inl(TD_PORT) == 0x0BADF00D && inw(TD_BYTE + 2) == 0x0BAD);

    /* String I/O: every element goes to the same port; the last one stays. */
    static const u8 sb[5] = { 0x11, 0x22, 0x33, 0x44, 0x55 };
    static const u16 sw[3] = { 0x1111, 0x2222, 0xBEEF };
    static const u32 sl[3] = { 0x01010101, 0x02020202, 0xFACEB00C };
    outl(TD_PORT, 0);
    rep_outsb(TD_PORT, sb, 5);
    CHECK("pio_rep_outsb_last", inl(TD_PORT) == 0x55);
    rep_outsw(TD_PORT, sw, 3);
    CHECK("pio_rep_outsw_last", inl(TD_PORT) == 0xBEEF);
    rep_outsl(TD_PORT, sl, 3);
    CHECK("pio_rep_outsl_last", inl(TD_PORT) == 0xFACEB00C);
    {
        u8 b[6]; u16 w[4]; u32 l[3];
        memset(b, 0, sizeof b); memset(w, 0, sizeof w); memset(l, 0, sizeof l);
        rep_insb(TD_PORT + 1, b, 5);
        rep_insw(TD_PORT + 2, w, 3);
        rep_insl(TD_PORT, l, 3);
        int ok = b[5] == 0;
        for (int i = 0; i < 5; i++) ok &= b[i] == 0xB0;
        CHECK("pio_rep_insb", ok);
        CHECK("pio_rep_insw", w[0] == 0xFACE && w[1] == 0xFACE && w[2] == 0xFACE && w[3] == 0);
        CHECK("pio_rep_insl", l[0] == 0xFACEB00C && l[1] == 0xFACEB00C && l[2] == 0xFACEB00C);
    }

    /* Flush port: QEMU drops the page's host mapping; memory stays intact. */
    ram_a[0] = 0x5A;
    outl(TD_FLUSH, (u32)(u64)ram_a);
    CHECK("pio_flush_keeps_memory", ram_a[0] == 0x5A && inl(TD_FLUSH) == 0);

    /* IRQ lines: wide accesses act byte by byte on consecutive lines. */
    outw(PORT_IRQLINE(10), 0x0101);
    CHECK("irq_w_sets_two_lines", inb(PORT_IRQLINE(10)) == 1 && inb(PORT_IRQLINE(11)) == 1);
    outl(PORT_IRQLINE(10), 0x01000000);
    CHECK("irq_l_sets_four_lines", inl(PORT_IRQLINE(10)) == 0x01000000);
    outl(PORT_IRQLINE(10), 0);
    CHECK("irq_l_clears", inl(PORT_IRQLINE(10)) == 0);
}

/* ---- MMIO: plain moves ---------------------------------------------------- */
static u64 sh_get(u32 off, u32 size)
{
    u64 v = 0;
    for (u32 i = 0; i < size; i++) v |= (u64)shadow[off + i] << (8 * i);
    return v;
}
static void sh_put(u32 off, u32 size, u64 v)
{
    for (u32 i = 0; i < size; i++) shadow[off + i] = (u8)(v >> (8 * i));
}
static u64 rd(u32 off, u32 size)
{
    u64 a = SH_BASE + off;
    switch (size) {
    case 1: return mmio_read8(a);
    case 2: return mmio_read16(a);
    case 4: return mmio_read32(a);
    default: return mmio_read64(a);
    }
}
static void wr(u32 off, u32 size, u64 v)
{
    u64 a = SH_BASE + off;
    switch (size) {
    case 1: mmio_write8(a, (u8)v); break;
    case 2: mmio_write16(a, (u16)v); break;
    case 4: mmio_write32(a, (u32)v); break;
    default: mmio_write64(a, v); break;
    }
    sh_put(off, size, v);
}

static void mov_tests(void)
{
    static const u32 sizes[4] = { 1, 2, 4, 8 };
    u64 pattern = 0x8877665544332211UL;
    for (u32 k = 0; k < 64; k++) wr(k, 1, 0);
    int ok_rw = 1, ok_cross = 1;
    for (u32 s = 0; s < 4; s++) {
        for (u32 off = 0; off < 8; off++) {
            u32 at = 8 * s + off;
            wr(at, sizes[s], pattern ^ ((u64)at * 0x0101010101010101UL));
            if (rd(at, sizes[s]) != sh_get(at, sizes[s])) {
                ok_rw = 0;
                kprintf("  mov size=%u off=%u got=0x%lx want=0x%lx\n", sizes[s], at,
                        rd(at, sizes[s]), sh_get(at, sizes[s]));
            }
        }
    }
    /* Reads at other widths/offsets see the merged bytes. */
    for (u32 s = 0; s < 4; s++)
        for (u32 off = 0; off < 40; off += 3)
            if (rd(off, sizes[s]) != sh_get(off, sizes[s])) ok_cross = 0;
    CHECK("mmio_mov_every_width_and_alignment", ok_rw);
    CHECK("mmio_mov_cross_width_reads", ok_cross);
    CHECK("mmio_movzx_b", ({ u32 v; __asm__ volatile("movzbl (%1), %0" : "=r"(v) : "r"(SH_BASE + 3) : "memory"); v == shadow[3]; }));
    CHECK("mmio_movsx_w", ({ i64 v; __asm__ volatile("movswq (%1), %0" : "=r"(v) : "r"(SH_BASE + 5) : "memory"); v == (i64)(short)sh_get(5, 2); }));
    /* Page-crossing access inside the window (KVM splits it in two). */
    mmio_write64(IOMEM + 0xFFC, 0x0123456789ABCDEFUL);
    CHECK("mmio_mov8_page_crossing", mmio_read64(IOMEM + 0xFFC) == 0x0123456789ABCDEFUL &&
                                     mmio_read32(IOMEM + 0x1000) == 0x01234567);
}

/* ---- MMIO: ALU read-modify-write and compares ----------------------------- */
#define RMW(name, insn, sfx, T, off, init, src, expect) do {                      \
    wr(off, sizeof(T), (u64)(T)(init));                                           \
    T s_ = (T)(src);                                                              \
    __asm__ volatile(insn sfx " %0, (%1)" : "+r"(s_) : "r"(SH_BASE + (off)) : "memory", "cc"); \
    u64 got_ = rd(off, sizeof(T));                                                \
    sh_put(off, sizeof(T), got_);                                                 \
    if (!CHECK(name, got_ == (u64)(T)(expect)))                                   \
        kprintf("  got=0x%lx want=0x%lx\n", got_, (u64)(T)(expect));              \
} while (0)

#define UNARY(name, insn, T, off, init, expect) do {                              \
    wr(off, sizeof(T), (u64)(T)(init));                                           \
    __asm__ volatile(insn " (%0)" :: "r"(SH_BASE + (off)) : "memory", "cc");      \
    u64 got_ = rd(off, sizeof(T));                                                \
    sh_put(off, sizeof(T), got_);                                                 \
    if (!CHECK(name, got_ == (u64)(T)(expect)))                                   \
        kprintf("  got=0x%lx want=0x%lx\n", got_, (u64)(T)(expect));              \
} while (0)

static void alu_tests(void)
{
    RMW("mmio_add_b", "add", "b", u8, 1, 0xF0, 0x11, 0x01);
    RMW("mmio_add_w_unaligned", "add", "w", u16, 3, 0x1234, 0x1111, 0x2345);
    RMW("mmio_add_l", "add", "l", u32, 8, 0xFFFFFFFF, 2, 1);
    RMW("mmio_add_q_unaligned", "add", "q", u64, 17, 0x00000000FFFFFFFFUL, 1, 0x100000000UL);
    RMW("mmio_sub_q", "sub", "q", u64, 24, 0x100, 0x101, 0xFFFFFFFFFFFFFFFFUL);
    RMW("mmio_and_l", "and", "l", u32, 32, 0xF0F0F0F0, 0x3C3C3C3C, 0x30303030);
    RMW("mmio_or_w", "or", "w", u16, 36, 0x0F00, 0x00F0, 0x0FF0);
    RMW("mmio_xor_q", "xor", "q", u64, 40, 0xAAAAAAAA55555555UL, 0xFFFFFFFFFFFFFFFFUL, 0x55555555AAAAAAAAUL);
    RMW("mmio_adc_l", "stc; adc", "l", u32, 48, 5, 6, 12);
    RMW("mmio_sbb_b", "stc; sbb", "b", u8, 52, 10, 3, 6);
    RMW("mmio_xchg_l", "xchg", "l", u32, 56, 0x11112222, 0x33334444, 0x33334444);
    RMW("mmio_bts_q", "bts", "q", u64, 8, 0, 37, 1UL << 37);
    RMW("mmio_btr_l", "btr", "l", u32, 16, 0xFFFFFFFF, 4, 0xFFFFFFEF);
    UNARY("mmio_inc_q", "incq", u64, 0, 0xFFFFFFFFUL, 0x100000000UL);
    UNARY("mmio_dec_w", "decw", u16, 5, 0, 0xFFFF);
    UNARY("mmio_not_b", "notb", u8, 7, 0x5A, 0xA5);
    UNARY("mmio_neg_l", "negl", u32, 9, 1, 0xFFFFFFFF);
    UNARY("mmio_shl_l", "shll", u32, 20, 0x40000001, 0x80000002);
    UNARY("mmio_sar_q", "sarq", u64, 24, 0x8000000000000000UL, 0xC000000000000000UL);
    UNARY("mmio_rol_b", "rolb", u8, 33, 0x81, 0x03);

    /* Flags from compares and tests against MMIO. */
    wr(40, 8, 0x123456789UL);
    u8 eq, below, zero;
    __asm__ volatile("cmpq %2, (%1); sete %0" : "=q"(eq) : "r"(SH_BASE + 40), "r"(0x123456789UL) : "memory", "cc");
    CHECK("mmio_cmp_q_equal", eq == 1);
    __asm__ volatile("cmpl $0x23456790, (%1); setb %0" : "=q"(below) : "r"(SH_BASE + 40) : "memory", "cc");
    CHECK("mmio_cmp_l_imm_below", below == 1);
    __asm__ volatile("testb $0x40, (%1); setz %0" : "=q"(zero) : "r"(SH_BASE + 40) : "memory", "cc");
    CHECK("mmio_test_b", zero == 1);
    u32 r;
    __asm__ volatile("movl $0x10, %0; addl (%1), %0" : "=&r"(r) : "r"(SH_BASE + 41) : "memory", "cc");
    CHECK("mmio_add_from_mem_unaligned", r == (u32)sh_get(41, 4) + 0x10);
    {
        u64 old = sh_get(40, 8), cur = old, nv = 0xABCDEF;
        u8 ok;
        __asm__ volatile("cmpxchgq %3, (%2); sete %1" : "+a"(cur), "=q"(ok) : "r"(SH_BASE + 40), "r"(nv) : "memory", "cc");
        CHECK("mmio_cmpxchg_q", ok == 1 && rd(40, 8) == 0xABCDEF);
        sh_put(40, 8, 0xABCDEF);
        u32 add = 5, prev = 0;
        wr(48, 4, 100);
        __asm__ volatile("xaddl %0, (%1)" : "+r"(add) : "r"(SH_BASE + 48) : "memory", "cc");
        prev = add;
        CHECK("mmio_xadd_l", prev == 100 && rd(48, 4) == 105);
        sh_put(48, 4, 105);
    }
}

/* ---- MMIO: string ops ------------------------------------------------------ */
static void rep_movsb(void *d, const void *s, u64 n) { __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) :: "memory"); }
static void rep_movsq(void *d, const void *s, u64 n) { __asm__ volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(n) :: "memory"); }
static void rep_movsw_back(void *d, const void *s, u64 n) { __asm__ volatile("std; rep movsw; cld" : "+D"(d), "+S"(s), "+c"(n) :: "memory", "cc"); }
static void rep_stosl(void *d, u32 v, u64 n) { __asm__ volatile("rep stosl" : "+D"(d), "+c"(n) : "a"(v) : "memory"); }
/* repe cmpsb: returns the count left in RCX; *zf = ZF at the end. */
static u64 repe_cmpsb(const void *a, const void *b, u64 n, u8 *zf)
{
    __asm__ volatile("repe cmpsb; sete %3" : "+S"(a), "+D"(b), "+c"(n), "=q"(*zf) :: "memory", "cc");
    return n;
}
static u64 repne_scasb(const void *d, u8 v, u64 n)
{
    __asm__ volatile("repne scasb" : "+D"(d), "+c"(n) : "a"(v) : "memory", "cc");
    return n;
}

static void string_tests(void)
{
    u8 *io = (u8 *)(IOMEM + 0x2000);
    fill(ram_a, 40, 0x30);

    rep_movsb(io + 3, ram_a, 37);
    memset(ram_b, 0, sizeof ram_b);
    rep_movsb(ram_b, io + 3, 37);
    CHECK("mmio_rep_movsb_ram_to_io_to_ram_unaligned", memcmp(ram_a, ram_b, 37) == 0);

    rep_movsq(io + 0x100, io + 3, 4);      /* io -> io, 8-byte elements */
    memset(ram_b, 0, sizeof ram_b);
    rep_movsb(ram_b, io + 0x100, 32);
    CHECK("mmio_rep_movsq_io_to_io", memcmp(ram_a, ram_b, 32) == 0);

    rep_movsw_back(io + 0x200 + 2 * 7, ram_a + 2 * 7, 8);   /* DF=1 */
    memset(ram_b, 0, sizeof ram_b);
    rep_movsb(ram_b, io + 0x200, 16);
    CHECK("mmio_std_rep_movsw_backwards", memcmp(ram_a, ram_b, 16) == 0);

    rep_stosl(io + 0x301, 0xDEADBEEF, 5);
    {
        int ok = 1;
        for (int i = 0; i < 5; i++) ok &= mmio_read32((u64)(io + 0x301 + 4 * i)) == 0xDEADBEEF;
        CHECK("mmio_rep_stosl_unaligned", ok && mmio_read8((u64)(io + 0x300)) == 0 &&
                                          mmio_read8((u64)(io + 0x315)) == 0);
    }
    {
        u64 v;
        const void *src = io + 0x301;
        __asm__ volatile("lodsq" : "=a"(v), "+S"(src) :: "memory");
        CHECK("mmio_lodsq", v == 0xDEADBEEFDEADBEEFUL && src == io + 0x309);
    }

    u8 zf = 0;
    u64 left = repe_cmpsb(ram_a, io + 3, 37, &zf);
    CHECK("mmio_repe_cmpsb_equal", left == 0 && zf == 1);
    mmio_write8((u64)(io + 3 + 20), (u8)(ram_a[20] ^ 0xFF));
    left = repe_cmpsb(io + 3, ram_a, 37, &zf);
    CHECK("mmio_repe_cmpsb_mismatch_at_20", left == 37 - 21 && zf == 0);
    left = repne_scasb(io + 3, ram_a[9], 37);
    CHECK("mmio_repne_scasb_finds", left == 37 - 10);
}

int main(u64 a0, u64 a1, u64 a2, u64 a3)
{
    pio_tests();
    mov_tests();
    alu_tests();
    string_tests();
    kprintf("testdev: %u failures\n", failures);
    return (int)failures;
}
