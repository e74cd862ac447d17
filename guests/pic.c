/* pic: checks the 8259A PIC pair of the split irqchip, delivered as ExtINT
 * through LAPIC LINT0 (our TypeScript PIC + KVM_INTERRUPT at interrupt-
 * window exits). Lines are driven through the pc-testdev ports 0x2000 + n.
 * arg0 = 2 (a VM with 2 vCPUs) adds: AP 1 raises IRQ 1 AP_ROUNDS times
 * while the BSP halts in `sti; hlt`, so each ExtINT is raised by another
 * vCPU's exit while vCPU 0 sleeps in KVM (the run loop must get vCPU 0
 * out to inject it).
 * Prints PASS/FAIL lines and exits through 0xF4 with the failure count. */
#include "lib/rt.h"
#include "lib/smp_boot.h"

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xA0
#define PIC2_DATA 0xA1
#define ELCR1     0x4D0
#define OCW2_EOI  0x20      /* non-specific EOI */
#define OCW3_IRR  0x0A
#define OCW3_ISR  0x0B
#define LAPIC_LVT0 0x350
#define BASE1 0x30
#define BASE2 0x38

static volatile u32 cnt[256];
static volatile u32 isr_in_handler[256];
static int level_retrigger;

static u8 read_isr1(void) { outb(PIC1_CMD, OCW3_ISR); return inb(PIC1_CMD); }
static u8 read_irr1(void) { outb(PIC1_CMD, OCW3_IRR); return inb(PIC1_CMD); }

static void pic_init(u8 icw4_master)
{
    outb(PIC1_CMD, 0x11);  outb(PIC1_DATA, BASE1); outb(PIC1_DATA, 0x04); outb(PIC1_DATA, icw4_master);
    outb(PIC2_CMD, 0x11);  outb(PIC2_DATA, BASE2); outb(PIC2_DATA, 0x02); outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, 0xFF); /* all masked */
    outb(PIC2_DATA, 0xFF);
}

static void unmask(u8 irq)
{
    if (irq < 8) outb(PIC1_DATA, inb(PIC1_DATA) & ~(1u << irq));
    else {
        outb(PIC2_DATA, inb(PIC2_DATA) & ~(1u << (irq - 8)));
        outb(PIC1_DATA, inb(PIC1_DATA) & ~(1u << 2));
    }
}

static void mask(u8 irq)
{
    if (irq < 8) outb(PIC1_DATA, inb(PIC1_DATA) | (1u << irq));
    else outb(PIC2_DATA, inb(PIC2_DATA) | (1u << (irq - 8)));
}

static void h_master(u64 v, struct frame *f)     /* edge, EOI */
{
    (void)f;
    cnt[v]++;
    isr_in_handler[v] = read_isr1();
    outb(PIC1_CMD, OCW2_EOI);
}

static void h_slave(u64 v, struct frame *f)
{
    (void)f;
    cnt[v]++;
    outb(PIC2_CMD, OCW2_EOI);
    outb(PIC1_CMD, OCW2_EOI);
}

static void h_level(u64 v, struct frame *f)      /* IRQ 5, level via ELCR */
{
    (void)f;
    u32 c = ++cnt[v];
    if (!level_retrigger || c >= 3)
        irq_line(5, 0);
    outb(PIC1_CMD, OCW2_EOI);
}

static void h_aeoi(u64 v, struct frame *f)       /* auto-EOI: no EOI */
{
    (void)f;
    cnt[v]++;
    isr_in_handler[v] = read_isr1();
}

#define AP_ROUNDS 20
static volatile u32 ap_go;

static void ap_entry(void)
{
    smp_ap_online();
    while (!__atomic_load_n(&ap_go, __ATOMIC_ACQUIRE))
        cpu_relax();
    for (u32 i = 1; i <= AP_ROUNDS; i++) {
        irq_line(1, 1);
        for (u32 s = 0; s < 100000000 && cnt[BASE1 + 1] < i; s++)
            cpu_relax();
        irq_line(1, 0);
    }
    for (;;)
        sti_hlt();
}

/* IRQ 1 raised by AP 1 while the BSP halts (see the header). */
static void ap_raises_extint(void)
{
    pic_init(0x01);
    unmask(1);
    CHECK("smp_ap_started", smp_start_aps(2, ap_entry) == 1);
    __atomic_store_n(&ap_go, 1, __ATOMIC_RELEASE);
    for (u32 s = 0; s < 10000000; s++) {
        cli();
        if (cnt[BASE1 + 1] >= AP_ROUNDS)
            break;
        sti_hlt();
    }
    cli();
    CHECK("smp_ap_extint_to_halted_bsp", cnt[BASE1 + 1] == AP_ROUNDS);
}

int main(u64 a0, u64 a1, u64 a2, u64 a3)
{
    (void)a1; (void)a2; (void)a3;
    cli();
    idt_init();
    lapic_enable();
    lapic_write(LAPIC_LVT0, 0x700);      /* LINT0: ExtINT, unmasked */
    pic_init(0x01);
    for (int v = BASE1; v < BASE1 + 8; v++) irq_register((u8)v, h_master);
    for (int v = BASE2; v < BASE2 + 8; v++) irq_register((u8)v, h_slave);

    CHECK("imr_readback", inb(PIC1_DATA) == 0xFF && inb(PIC2_DATA) == 0xFF);

    /* edge on IRQ 3 */
    unmask(3);
    irq_line(3, 1);
    CHECK("edge_irq3_delivered_once", rt_wait_for(&cnt[BASE1 + 3], 1) == 1);
    CHECK("isr_bit3_in_handler", (isr_in_handler[BASE1 + 3] & (1u << 3)) != 0);
    CHECK("isr_clear_after_eoi", (read_isr1() & (1u << 3)) == 0);
    rt_settle();
    CHECK("edge_held_high_no_repeat", cnt[BASE1 + 3] == 1);
    irq_line(3, 0);
    irq_line(3, 1);
    CHECK("edge_second_rising_delivered", rt_wait_for(&cnt[BASE1 + 3], 2) == 2);
    irq_line(3, 0);

    /* masked edge is latched in IRR, delivered on unmask */
    irq_line(4, 1);
    rt_settle();
    CHECK("masked_irq4_not_delivered", cnt[BASE1 + 4] == 0);
    CHECK("masked_irq4_in_irr", (read_irr1() & (1u << 4)) != 0);
    unmask(4);
    CHECK("unmask_irq4_delivered", rt_wait_for(&cnt[BASE1 + 4], 1) == 1);
    irq_line(4, 0);
    mask(4);

    /* slave IRQ 10 through the cascade */
    unmask(10);
    irq_line(10, 1);
    CHECK("slave_irq10_delivered_once", rt_wait_for(&cnt[BASE2 + 2], 1) == 1);
    irq_line(10, 0);
    mask(10);

    /* level-triggered IRQ 5 (ELCR) */
    outb(ELCR1, inb(ELCR1) | (1u << 5));
    CHECK("elcr_readback", (inb(ELCR1) & (1u << 5)) != 0);
    irq_register(BASE1 + 5, h_level);
    unmask(5);
    irq_line(5, 1);
    CHECK("level_irq5_delivered_once", rt_wait_for(&cnt[BASE1 + 5], 1) == 1);
    level_retrigger = 1;
    irq_line(5, 1);
    CHECK("level_retrigger_while_high", rt_wait_for(&cnt[BASE1 + 5], 3) == 3);
    mask(5);

    /* auto-EOI */
    pic_init(0x03);
    irq_register(BASE1 + 6, h_aeoi);
    unmask(6);
    irq_line(6, 1);
    CHECK("aeoi_delivered", rt_wait_for(&cnt[BASE1 + 6], 1) == 1);
    CHECK("aeoi_isr_clear_in_handler", (isr_in_handler[BASE1 + 6] & (1u << 6)) == 0);
    irq_line(6, 0);

    if (a0 == 2)
        ap_raises_extint();

    kprintf("pic: %u failures, %u unexpected interrupts\n", failures, unexpected_irqs);
    return (int)(failures + unexpected_irqs);
}
