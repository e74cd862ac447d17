/* ports: echo device at PIO 0x600..0x60F and MMIO 0xD0000000..0xD000000F.
 * Each has its own 16-byte store initialised to 0xA0 + k. A write of size s
 * at offset o stores s little-endian bytes at o..o+s-1; a read returns them.
 * A shadow copy of each store gives the expected value of every read.
 * Exits via 0xF4 with the failure count. */
#include "lib/rt.h"

static u8 pio_shadow[16];
static u8 mmio_shadow[16];

static u64 expect(const u8 *sh, u32 off, u32 size)
{
    u64 v = 0;
    for (u32 i = 0; i < size; i++)
        v |= (u64)sh[off + i] << (8 * i);
    return v;
}

static void shadow_write(u8 *sh, u32 off, u32 size, u64 v)
{
    for (u32 i = 0; i < size; i++)
        sh[off + i] = (u8)(v >> (8 * i));
}

/* ---- PIO ------------------------------------------------------------------ */
static u64 pio_rd(u32 off, u32 size)
{
    u16 port = (u16)(PORT_ECHO + off);
    switch (size) {
    case 1: return inb(port);
    case 2: return inw(port);
    default: return inl(port);
    }
}

static void pio_wr(u32 off, u32 size, u64 v)
{
    u16 port = (u16)(PORT_ECHO + off);
    switch (size) {
    case 1: outb(port, (u8)v); break;
    case 2: outw(port, (u16)v); break;
    default: outl(port, (u32)v); break;
    }
    shadow_write(pio_shadow, off, size, v);
}

static void pio_check(const char *name, u32 off, u32 size)
{
    u64 got = pio_rd(off, size), want = expect(pio_shadow, off, size);
    if (!CHECK(name, got == want))
        kprintf("  pio off=%u size=%u got=0x%lx want=0x%lx\n", off, size, got, want);
}

/* ---- MMIO ----------------------------------------------------------------- */
static u64 mmio_rd(u32 off, u32 size)
{
    u64 a = MMIO_ECHO + off;
    switch (size) {
    case 1: return mmio_read8(a);
    case 2: return mmio_read16(a);
    case 4: return mmio_read32(a);
    default: return mmio_read64(a);
    }
}

static void mmio_wr(u32 off, u32 size, u64 v)
{
    u64 a = MMIO_ECHO + off;
    switch (size) {
    case 1: mmio_write8(a, (u8)v); break;
    case 2: mmio_write16(a, (u16)v); break;
    case 4: mmio_write32(a, (u32)v); break;
    default: mmio_write64(a, v); break;
    }
    shadow_write(mmio_shadow, off, size, v);
}

static void mmio_check(const char *name, u32 off, u32 size)
{
    u64 got = mmio_rd(off, size), want = expect(mmio_shadow, off, size);
    if (!CHECK(name, got == want))
        kprintf("  mmio off=%u size=%u got=0x%lx want=0x%lx\n", off, size, got, want);
}

int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3)
{
    (void)arg0; (void)arg1; (void)arg2; (void)arg3;
    for (u32 k = 0; k < 16; k++) {
        pio_shadow[k] = (u8)(0xA0 + k);
        mmio_shadow[k] = (u8)(0xA0 + k);
    }

    /* ---- PIO: initial pattern ---- */
    {
        int ok = 1;
        for (u32 k = 0; k < 16; k++)
            if (inb((u16)(PORT_ECHO + k)) != (u8)(0xA0 + k)) ok = 0;
        CHECK("pio_init_r1_all16", ok);
    }
    pio_check("pio_init_r2_off0", 0, 2);
    pio_check("pio_init_r2_off5_unaligned", 5, 2);
    pio_check("pio_init_r2_off14", 14, 2);
    pio_check("pio_init_r4_off0", 0, 4);
    pio_check("pio_init_r4_off3_unaligned", 3, 4);
    pio_check("pio_init_r4_off12", 12, 4);
    CHECK("pio_init_r4_off0_literal", inl(PORT_ECHO) == 0xA3A2A1A0u);

    /* ---- PIO: writes and read-back ---- */
    pio_wr(1, 1, 0x11);
    pio_check("pio_w1_off1_r1", 1, 1);
    pio_check("pio_w1_off1_r2_off0", 0, 2);
    pio_check("pio_w1_off1_r4_off0", 0, 4);

    pio_wr(2, 2, 0x2233);
    pio_check("pio_w2_off2_r2", 2, 2);
    pio_check("pio_w2_off2_r1_lo", 2, 1);
    pio_check("pio_w2_off2_r1_hi", 3, 1);
    pio_check("pio_w2_off2_r4_off0", 0, 4);

    pio_wr(4, 4, 0x44556677);
    pio_check("pio_w4_off4_r4", 4, 4);
    pio_check("pio_w4_off4_r2_lo", 4, 2);
    pio_check("pio_w4_off4_r2_hi", 6, 2);
    pio_check("pio_w4_off4_r1_byte3", 7, 1);
    pio_check("pio_w4_off4_r4_off3_straddle", 3, 4);

    pio_wr(9, 4, 0xDEADBEEF);
    pio_check("pio_w4_off9_unaligned_r4", 9, 4);
    pio_check("pio_w4_off9_r1_first", 9, 1);
    pio_check("pio_w4_off9_r1_last", 12, 1);
    pio_check("pio_w4_off9_neighbour_below", 8, 1);
    pio_check("pio_w4_off9_neighbour_above", 13, 1);

    pio_wr(15, 1, 0x5A);
    pio_check("pio_w1_off15_r1", 15, 1);
    pio_wr(13, 2, 0xCAFE);
    pio_check("pio_w2_off13_unaligned_r2", 13, 2);
    pio_check("pio_r4_off12_after_writes", 12, 4);
    {
        int ok = 1;
        for (u32 k = 0; k < 16; k++)
            if (inb((u16)(PORT_ECHO + k)) != pio_shadow[k]) ok = 0;
        CHECK("pio_final_r1_all16", ok);
    }

    /* ---- MMIO: separate store, initial pattern ---- */
    {
        int ok = 1;
        for (u32 k = 0; k < 16; k++)
            if (mmio_read8(MMIO_ECHO + k) != (u8)(0xA0 + k)) ok = 0;
        CHECK("mmio_init_r1_all16_separate_store", ok);
    }
    mmio_check("mmio_init_r2_off0", 0, 2);
    mmio_check("mmio_init_r2_off7_unaligned", 7, 2);
    mmio_check("mmio_init_r4_off0", 0, 4);
    mmio_check("mmio_init_r4_off6_unaligned", 6, 4);
    mmio_check("mmio_init_r8_off0", 0, 8);
    mmio_check("mmio_init_r8_off8", 8, 8);
    mmio_check("mmio_init_r8_off3_unaligned", 3, 8);
    CHECK("mmio_init_r8_off0_literal", mmio_read64(MMIO_ECHO) == 0xA7A6A5A4A3A2A1A0ul);

    /* ---- MMIO: writes and read-back ---- */
    mmio_wr(0, 1, 0x01);
    mmio_check("mmio_w1_off0_r1", 0, 1);
    mmio_check("mmio_w1_off0_r2", 0, 2);

    mmio_wr(2, 2, 0x0302);
    mmio_check("mmio_w2_off2_r2", 2, 2);
    mmio_check("mmio_w2_off2_r4_off0", 0, 4);

    mmio_wr(4, 4, 0x07060504);
    mmio_check("mmio_w4_off4_r4", 4, 4);
    mmio_check("mmio_w4_off4_r2_lo", 4, 2);
    mmio_check("mmio_w4_off4_r2_hi", 6, 2);
    mmio_check("mmio_w4_off4_r8_off0", 0, 8);

    mmio_wr(8, 8, 0x1122334455667788ul);
    mmio_check("mmio_w8_off8_r8", 8, 8);
    mmio_check("mmio_w8_off8_r4_lo", 8, 4);
    mmio_check("mmio_w8_off8_r4_hi", 12, 4);
    mmio_check("mmio_w8_off8_r1_last", 15, 1);

    mmio_wr(5, 4, 0xFEEDFACE);
    mmio_check("mmio_w4_off5_unaligned_r4", 5, 4);
    mmio_check("mmio_w4_off5_r8_off2_straddle", 2, 8);
    mmio_check("mmio_w4_off5_neighbour_below", 4, 1);
    mmio_check("mmio_w4_off5_neighbour_above", 9, 1);

    mmio_wr(11, 2, 0xBEEF);
    mmio_check("mmio_w2_off11_unaligned_r2", 11, 2);
    mmio_check("mmio_r8_off8_after_writes", 8, 8);
    {
        int ok = 1;
        for (u32 k = 0; k < 16; k++)
            if (mmio_read8(MMIO_ECHO + k) != mmio_shadow[k]) ok = 0;
        CHECK("mmio_final_r1_all16", ok);
    }

    /* The PIO store must not have been touched by the MMIO writes. */
    pio_check("pio_unchanged_after_mmio_r4_off0", 0, 4);
    pio_check("pio_unchanged_after_mmio_r4_off4", 4, 4);

    kprintf("ports: %u failures\n", failures);
    return (int)failures;
}
