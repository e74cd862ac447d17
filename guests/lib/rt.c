/* denovmm guest runtime. */
#include "rt.h"

typedef __builtin_va_list va_list;
#define va_start(v, l) __builtin_va_start(v, l)
#define va_end(v)      __builtin_va_end(v)
#define va_arg(v, t)   __builtin_va_arg(v, t)

u32 failures;
volatile u32 unexpected_irqs;

extern char __bss_start[], __bss_end[];

/* ---- mem* (gcc may emit calls to these) ---------------------------------- */
void *memset(void *d, int c, usize n)
{
    u8 *p = d;
    while (n--) *p++ = (u8)c;
    return d;
}
void *memcpy(void *d, const void *s, usize n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--) *p++ = *q++;
    return d;
}
void *memmove(void *d, const void *s, usize n)
{
    u8 *p = d;
    const u8 *q = s;
    if (p < q) { while (n--) *p++ = *q++; }
    else { p += n; q += n; while (n--) *--p = *--q; }
    return d;
}
int memcmp(const void *a, const void *b, usize n)
{
    const u8 *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q) return *p < *q ? -1 : 1;
    return 0;
}

/* ---- init ------------------------------------------------------------------ */
void rt_init(void)
{
    /* .bss is normally already zero (fresh RAM / loader), but be safe:
     * rep stosq, one instruction. */
    u64 n = (u64)(__bss_end - __bss_start) / 8;
    void *d = __bss_start;
    __asm__ volatile("rep stosq" : "+D"(d), "+c"(n) : "a"(0UL) : "memory");
    /* Mask the legacy 8259 PICs. */
    outb(0x21, 0xFF);
    outb(0xA1, 0xFF);
}

/* ---- serial ------------------------------------------------------------------ */
void serial_putc(char c)
{
    for (int i = 0; i < 1000; i++)
        if (inb(PORT_COM1_LSR) & 0x20)
            break;
    outb(PORT_COM1, (u8)c);
}

void serial_puts(const char *s)
{
    while (*s) serial_putc(*s++);
}

static void put_num(u64 v, unsigned base, int upper, int width, char pad, int neg)
{
    char buf[24];
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0;
    do {
        buf[n++] = digits[v % base];
        v /= base;
    } while (v);
    if (neg) {
        if (pad == '0') { serial_putc('-'); width--; }
        else buf[n++] = '-';
    }
    for (int i = n; i < width; i++) serial_putc(pad);
    while (n) serial_putc(buf[--n]);
}

void put_hex(u64 v) { serial_puts("0x"); put_num(v, 16, 0, 0, ' ', 0); }
void put_dec(u64 v) { put_num(v, 10, 0, 0, ' ', 0); }

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') { serial_putc(*p); continue; }
        p++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*p == '0') { pad = '0'; p++; }
        while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
        while (*p == 'l' || *p == 'z') { lng++; p++; }
        switch (*p) {
        case 'd': case 'i': {
            i64 v = lng ? va_arg(ap, i64) : (i64)va_arg(ap, int);
            put_num(v < 0 ? (u64)-v : (u64)v, 10, 0, width, pad, v < 0);
            break;
        }
        case 'u': {
            u64 v = lng ? va_arg(ap, u64) : (u64)va_arg(ap, unsigned);
            put_num(v, 10, 0, width, pad, 0);
            break;
        }
        case 'x': case 'X': {
            u64 v = lng ? va_arg(ap, u64) : (u64)va_arg(ap, unsigned);
            put_num(v, 16, *p == 'X', width, pad, 0);
            break;
        }
        case 'p':
            serial_puts("0x");
            put_num((u64)va_arg(ap, void *), 16, 0, width, pad, 0);
            break;
        case 'c':
            serial_putc((char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            serial_puts(s ? s : "(null)");
            break;
        }
        case '%':
            serial_putc('%');
            break;
        case 0:
            p--;              /* trailing '%' */
            break;
        default:
            serial_putc('%');
            serial_putc(*p);
            break;
        }
    }
    va_end(ap);
}

/* ---- exit ---------------------------------------------------------------------- */
NORETURN void exit_with(u32 code)
{
    outl(PORT_DEBUG_EXIT, code);
    for (;;) __asm__ volatile("cli; hlt" ::: "memory");
}

NORETURN void halt_done(void)
{
    outb(PORT_HALT, 0);
    for (;;) __asm__ volatile("cli; hlt" ::: "memory");
}

/* ---- checks --------------------------------------------------------------------- */
int check(const char *name, int cond)
{
    if (cond) {
        kprintf("PASS %s\n", name);
    } else {
        failures++;
        kprintf("FAIL %s\n", name);
    }
    return cond;
}

/* ---- IDT ------------------------------------------------------------------------ */
struct idt_entry {
    u16 off_lo;
    u16 sel;
    u8  ist;
    u8  type_attr;
    u16 off_mid;
    u32 off_hi;
    u32 zero;
} __attribute__((packed));

struct idt_ptr {
    u16 limit;
    u64 base;
} __attribute__((packed));

extern const u64 isr_stub_table[256];
static struct idt_entry idt[256] __attribute__((aligned(16)));
static irq_handler_t handlers[256];

void idt_set_entry(u8 v, u64 a)
{
    idt[v].off_lo = (u16)a;
    idt[v].sel = 0x08;
    idt[v].ist = 0;
    idt[v].type_attr = 0x8E;              /* present, DPL0, 64-bit interrupt gate */
    idt[v].off_mid = (u16)(a >> 16);
    idt[v].off_hi = (u32)(a >> 32);
    idt[v].zero = 0;
}

void idt_init(void)
{
    for (int v = 0; v < 256; v++)
        idt_set_entry((u8)v, isr_stub_table[v]);
    struct idt_ptr p = { sizeof(idt) - 1, (u64)idt };
    __asm__ volatile("lidt %0" :: "m"(p) : "memory");
}

void irq_register(u8 vector, irq_handler_t h)
{
    handlers[vector] = h;
}

void isr_dispatch(u64 vector, struct frame *f)
{
    vector &= 0xFF;
    irq_handler_t h = handlers[vector];
    if (h) {
        h(vector, f);
        return;
    }
    if (vector < 32) {
        kprintf("\nEXCEPTION vector=%lu rip=0x%lx err=0x%lx rsp=0x%lx\n",
                vector, f->rip, f->error, f->rsp);
        exit_with(0x7F);
    }
    if (vector == 0xFF)           /* LAPIC spurious: no EOI */
        return;
    unexpected_irqs++;
    if (unexpected_irqs <= 4)
        kprintf("unexpected interrupt vector 0x%lx\n", vector);
    lapic_eoi();
}

/* ---- LAPIC ----------------------------------------------------------------------- */
void lapic_enable(void)
{
    u64 base = rdmsr(MSR_APIC_BASE);
    if (!(base & (1UL << 11)))
        wrmsr(MSR_APIC_BASE, base | (1UL << 11));
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, 0x100 | 0xFF);      /* enable, spurious vector 0xFF */
}

void lapic_self_ipi(u8 vector)
{
    lapic_write(LAPIC_ICR_LO, 0x40000u | vector);  /* shorthand self, fixed */
}

void lapic_watchdog_start(u8 vector, u32 initial_count)
{
    lapic_write(LAPIC_TIMER_DCR, 0xB);              /* divide by 1 */
    lapic_write(LAPIC_LVT_TIMER, (1u << 17) | vector);  /* periodic */
    lapic_write(LAPIC_TIMER_ICR, initial_count);
}

void lapic_watchdog_stop(void)
{
    lapic_write(LAPIC_TIMER_ICR, 0);
    lapic_write(LAPIC_LVT_TIMER, 1u << 16);         /* masked */
}

/* ---- IOAPIC ----------------------------------------------------------------------- */
u32 ioapic_read(u32 reg)
{
    *(volatile u32 *)(IOAPIC_BASE + 0x00) = reg;
    return *(volatile u32 *)(IOAPIC_BASE + 0x10);
}

void ioapic_write(u32 reg, u32 v)
{
    *(volatile u32 *)(IOAPIC_BASE + 0x00) = reg;
    *(volatile u32 *)(IOAPIC_BASE + 0x10) = v;
}

void ioapic_eoi(u8 vector)
{
    *(volatile u32 *)(IOAPIC_BASE + 0x40) = vector;
}

u32 ioapic_redir_lo(u32 pin) { return ioapic_read(IOAPIC_REDTBL(pin)); }
u32 ioapic_redir_hi(u32 pin) { return ioapic_read(IOAPIC_REDTBL(pin) + 1); }

void ioapic_set_redir(u32 pin, u8 vector, int level, int masked, u8 dest)
{
    u32 lo = vector;                    /* fixed delivery, physical, active high */
    if (level) lo |= IOAPIC_RTE_LEVEL;
    /* Mask while changing, then destination, then final low word. */
    ioapic_write(IOAPIC_REDTBL(pin), lo | IOAPIC_RTE_MASKED);
    ioapic_write(IOAPIC_REDTBL(pin) + 1, (u32)dest << 24);
    ioapic_write(IOAPIC_REDTBL(pin), masked ? (lo | IOAPIC_RTE_MASKED) : lo);
}

void ioapic_mask(u32 pin, int masked)
{
    u32 lo = ioapic_redir_lo(pin);
    /* Keep the writable fields only (vector, mode, polarity, trigger). */
    lo &= ~(IOAPIC_RTE_MASKED | IOAPIC_RTE_REMOTE_IRR | IOAPIC_RTE_DELIVS);
    if (masked) lo |= IOAPIC_RTE_MASKED;
    ioapic_write(IOAPIC_REDTBL(pin), lo);
}

u32 rt_wait_for(volatile u32 *c, u32 target)
{
    sti();
    for (int i = 0; i < RT_WAIT_ITERS && *c < target; i++)
        outb(PORT_NULL, 0);
    for (int i = 0; i < RT_SETTLE_ITERS; i++)
        outb(PORT_NULL, 0);
    cli();
    return *c;
}

void rt_settle(void)
{
    sti();
    for (int i = 0; i < RT_SETTLE_ITERS; i++)
        outb(PORT_NULL, 0);
    cli();
}
