/* hpet: ACPI tables and the HPET as a kernel finds and uses them.
 *   ACPI: scan 0xE0000-0xFFFFF for the RSDP (16-byte steps), check both
 *   RSDP checksums, walk the XSDT checking every table's checksum, find the
 *   FADT (PM timer must advance), MADT (one LAPIC, the IOAPIC) and HPET
 *   (its base address is what the rest uses).
 *   HPET (1 ms periods, counts asserted, not timing):
 *     timer 0 periodic, legacy replacement route -> IRQ0 (IOAPIC pin 0);
 *     timer 2 one-shot, edge, IOAPIC route pin 20: exactly one interrupt;
 *     timer 1 periodic, level, IOAPIC route pin 21, handler clears GINTR_STA;
 *     timer 2 periodic, FSB (MSI) to a vector.
 *   arg0 = 1 in split mode (the level handler also writes the IOAPIC EOI
 *   register, as a directed-EOI kernel does).
 * Ends by writing SLP_TYP 5 | SLP_EN to PM1a_CNT (ACPI soft off), after
 * printing the failure count. */
#include "lib/rt.h"

#define VEC_LEGACY 0x30
#define VEC_ONESHOT 0x31
#define VEC_LEVEL 0x32
#define VEC_FSB 0x33
#define VEC_WD 0x3F

#define HPET_CAP     0x000
#define HPET_CFG     0x010
#define HPET_STS     0x020
#define HPET_CNT     0x0F0
#define TN_CFG(n)    (0x100 + 0x20 * (n))
#define TN_CMP(n)    (0x108 + 0x20 * (n))
#define TN_FSB(n)    (0x110 + 0x20 * (n))
#define TN_LEVEL     (1u << 1)
#define TN_ENABLE    (1u << 2)
#define TN_PERIODIC  (1u << 3)
#define TN_VAL_SET   (1u << 6)
#define TN_ROUTE(p)  ((u32)(p) << 9)
#define TN_FSB_EN    (1u << 14)

static u64 hpet;
static int split;
static volatile u32 n_legacy, n_oneshot, n_level, n_fsb, n_spurious, n_wd;

static u8 sum(const u8 *p, u32 n) { u8 s = 0; while (n--) s += *p++; return s; }
static u32 rd32(u64 a) { return *(volatile u32 *)a; }

static void on_legacy(u64 v, struct frame *f) { n_legacy++; lapic_eoi(); }
static void on_oneshot(u64 v, struct frame *f) { n_oneshot++; lapic_eoi(); }
static void on_fsb(u64 v, struct frame *f) { n_fsb++; lapic_eoi(); }
static void on_wd(u64 v, struct frame *f) { n_wd++; lapic_eoi(); }
/* A level interrupt whose status bit is clear is a re-delivery (this
 * host's nested KVM re-delivers a level line still high at the handler's
 * first exit): counted apart, so the count is of assertions. */
static void on_level(u64 v, struct frame *f)
{
    if (mmio_read32(hpet + HPET_STS) & 2) {
        n_level++;
        mmio_write32(hpet + HPET_STS, 1u << 1);   /* clear: the line drops */
    } else {
        n_spurious++;
    }
    lapic_eoi();
    if (split) ioapic_eoi(VEC_LEVEL);
}

static u64 now(void) { return mmio_read64(hpet + HPET_CNT); }

/* Wait with sti;hlt; a 5 ms LAPIC watchdog makes every hlt end, so a lost
 * interrupt shows as a short count, never a hang. */
static void wait_for(volatile u32 *c, u32 target)
{
    lapic_watchdog_start(VEC_WD, 5000000);
    for (int i = 0; i < 400 && *c < target; i++) { sti_hlt(); cli(); }
    lapic_watchdog_stop();
}

static u64 find_tables(u64 *fadt_out, u64 *madt_out)
{
    u64 rsdp = 0;
    for (u64 a = 0xE0000; a < 0x100000; a += 16)
        if (*(volatile u64 *)a == 0x2052545020445352UL && sum((u8 *)a, 20) == 0) { rsdp = a; break; }
    CHECK("acpi_rsdp_found_by_scan", rsdp != 0);
    if (!rsdp) return 0;
    CHECK("acpi_rsdp_v2_extended_checksum", ((u8 *)rsdp)[15] >= 2 && sum((u8 *)rsdp, 36) == 0);
    u64 xsdt = *(volatile u64 *)(rsdp + 24);
    u32 xlen = rd32(xsdt + 4);
    CHECK("acpi_xsdt_checksum", rd32(xsdt) == 0x54445358 && sum((u8 *)xsdt, xlen) == 0);
    u64 hpet_table = 0;
    int bad = 0;
    for (u32 o = 36; o + 8 <= xlen; o += 8) {
        u64 t = *(volatile u64 *)(xsdt + o);
        if (sum((u8 *)t, rd32(t + 4)) != 0) bad++;
        if (rd32(t) == 0x54455048) hpet_table = t;     /* "HPET" */
        if (rd32(t) == 0x50434146) *fadt_out = t;      /* "FACP" */
        if (rd32(t) == 0x43495041) *madt_out = t;      /* "APIC" */
    }
    CHECK("acpi_every_table_checksum", bad == 0);
    CHECK("acpi_hpet_table", hpet_table != 0);
    return hpet_table ? *(volatile u64 *)(hpet_table + 44) : 0;
}

int main(u64 a0, u64 a1, u64 a2, u64 a3)
{
    split = (int)a0;
    idt_init();
    irq_register(VEC_LEGACY, on_legacy);
    irq_register(VEC_ONESHOT, on_oneshot);
    irq_register(VEC_LEVEL, on_level);
    irq_register(VEC_FSB, on_fsb);
    irq_register(VEC_WD, on_wd);
    lapic_enable();
    u8 me = (u8)lapic_id();

    u64 fadt = 0, madt = 0;
    hpet = find_tables(&fadt, &madt);
    CHECK("hpet_base_0xfed00000", hpet == 0xFED00000UL);
    if (!hpet || !fadt || !madt) return (int)failures;
    u16 pm_tmr = (u16)rd32(fadt + 76), pm_cnt = (u16)rd32(fadt + 64);
    u32 p0 = inl(pm_tmr), p1 = inl(pm_tmr);
    CHECK("acpi_pm_timer_advances", p1 != p0);
    u32 lapics = 0, ioapics = 0;
    for (u32 o = 44; o < rd32(madt + 4); o += ((u8 *)madt)[o + 1]) {
        if (((u8 *)madt)[o] == 0) lapics++;
        if (((u8 *)madt)[o] == 1) ioapics += rd32(madt + o + 4) == IOAPIC_BASE;
    }
    CHECK("acpi_madt_one_lapic_one_ioapic", lapics == 1 && ioapics == 1);

    u64 cap = mmio_read64(hpet + HPET_CAP);
    u32 period_fs = (u32)(cap >> 32);
    u32 ticks_1ms = (u32)(1000000000000UL / period_fs);
    CHECK("hpet_caps", ((cap >> 8) & 0x1F) == 2 && (cap & (1u << 15)) && period_fs > 0);
    mmio_write32(hpet + HPET_CFG, 0);
    mmio_write64(hpet + HPET_CNT, 0);
    mmio_write32(hpet + HPET_CFG, 1);                     /* enable */
    u64 c0 = now();
    for (int i = 0; i < 100; i++) cpu_relax();
    CHECK("hpet_counter_runs", now() > c0);

    /* ---- timer 0, periodic, legacy replacement -> IRQ0 / pin 0 ---- */
    ioapic_set_redir(0, VEC_LEGACY, 0, 0, me);
    mmio_write32(hpet + TN_CFG(0), TN_ENABLE | TN_PERIODIC | TN_VAL_SET);
    mmio_write64(hpet + TN_CMP(0), now() + ticks_1ms);
    mmio_write64(hpet + TN_CMP(0), ticks_1ms);            /* period only */
    mmio_write32(hpet + HPET_CFG, 3);                     /* enable + legacy */
    wait_for(&n_legacy, 10);
    mmio_write32(hpet + TN_CFG(0), 0);
    mmio_write32(hpet + HPET_CFG, 1);
    ioapic_mask(0, 1);
    CHECK("hpet_legacy_periodic_irq0", n_legacy >= 10);

    /* ---- timer 2, one-shot, edge, IOAPIC pin 20 ---- */
    ioapic_set_redir(20, VEC_ONESHOT, 0, 0, me);
    mmio_write32(hpet + TN_CFG(2), TN_ENABLE | TN_ROUTE(20));
    mmio_write64(hpet + TN_CMP(2), now() + ticks_1ms);
    wait_for(&n_oneshot, 1);
    rt_settle();                                          /* no second one */
    CHECK("hpet_oneshot_ioapic_exactly_once", n_oneshot == 1);
    mmio_write32(hpet + TN_CFG(2), 0);
    ioapic_mask(20, 1);

    /* ---- timer 1, periodic, level, IOAPIC pin 21 ---- */
    ioapic_set_redir(21, VEC_LEVEL, 1, 0, me);
    mmio_write32(hpet + TN_CFG(1), TN_ENABLE | TN_PERIODIC | TN_VAL_SET | TN_LEVEL | TN_ROUTE(21));
    mmio_write64(hpet + TN_CMP(1), now() + ticks_1ms);
    mmio_write64(hpet + TN_CMP(1), ticks_1ms);
    wait_for(&n_level, 10);
    mmio_write32(hpet + TN_CFG(1), 0);
    ioapic_mask(21, 1);
    CHECK("hpet_level_periodic_ioapic", n_level >= 10);
    CHECK("hpet_level_status_clear", (mmio_read32(hpet + HPET_STS) & 2) == 0);

    /* ---- timer 2, periodic, FSB (MSI) ---- */
    mmio_write64(hpet + TN_FSB(2), (LAPIC_BASE | ((u64)me << 12)) << 32 | VEC_FSB);
    mmio_write32(hpet + TN_CFG(2), TN_ENABLE | TN_PERIODIC | TN_VAL_SET | TN_FSB_EN);
    mmio_write64(hpet + TN_CMP(2), now() + ticks_1ms);
    mmio_write64(hpet + TN_CMP(2), ticks_1ms);
    wait_for(&n_fsb, 10);
    mmio_write32(hpet + TN_CFG(2), 0);
    CHECK("hpet_fsb_msi_periodic", n_fsb >= 10);
    mmio_write32(hpet + HPET_CFG, 0);

    kprintf("hpet: legacy %u oneshot %u level %u (re-delivered %u) fsb %u, watchdog %u, %u failures\n",
            n_legacy, n_oneshot, n_level, n_spurious, n_fsb, n_wd, failures);
    *(volatile u32 *)RESULTS_BASE = failures;
    outw(pm_cnt, (u16)((5 << 10) | (1 << 13)));          /* S5: soft off */
    return 100 + (int)failures;                           /* not reached */
}
