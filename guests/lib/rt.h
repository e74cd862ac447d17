/* denovmm guest runtime (freestanding, 64-bit, general registers only). */
#ifndef DENOVMM_RT_H
#define DENOVMM_RT_H

typedef unsigned char      u8;
typedef unsigned short     u16;
typedef unsigned int       u32;
typedef unsigned long      u64;
typedef signed int         i32;
typedef signed long        i64;
typedef unsigned long      usize;

#define NORETURN __attribute__((noreturn))
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))

/* ---- ports / addresses -------------------------------------------------- */
#define PORT_COM1        0x3F8
#define PORT_COM1_LSR    0x3FD
#define PORT_DEBUG_EXIT  0xF4     /* exit status = (v << 1) | 1            */
#define PORT_PVTIMER     107      /* outl period in us; 0 stops            */
#define PORT_HALT        108      /* any write: guest done                 */
#define PORT_IRQLINE(n)  (0x2000 + (n))
#define PORT_NULL        0x80     /* fast-path ignored port                */
#define PORT_ECHO        0x600    /* 16-byte echo device (TS plugin)       */
#define MMIO_ECHO        0xD0000000UL

#define LAPIC_BASE       0xFEE00000UL
#define IOAPIC_BASE      0xFEC00000UL
#define RESULTS_BASE     0x200000UL

#define LAPIC_ID         0x020
#define LAPIC_VER        0x030
#define LAPIC_TPR        0x080
#define LAPIC_EOI        0x0B0
#define LAPIC_VERSION    0x030
#define LAPIC_SVR        0x0F0
#define LAPIC_ISR0       0x100
#define LAPIC_IRR0       0x200
#define LAPIC_ICR_LO     0x300
#define LAPIC_ICR_HI     0x310
#define LAPIC_LVT_TIMER  0x320
#define LAPIC_TIMER_ICR  0x380
#define LAPIC_TIMER_CCR  0x390
#define LAPIC_TIMER_DCR  0x3E0

#define MSR_APIC_BASE     0x1B
#define MSR_TSC_DEADLINE  0x6E0

#define IOAPIC_REG_ID    0x00
#define IOAPIC_REG_VER   0x01
#define IOAPIC_REG_ARB   0x02
#define IOAPIC_REDTBL(n) (0x10 + 2 * (n))

#define IOAPIC_RTE_MASKED     (1u << 16)
#define IOAPIC_RTE_LEVEL      (1u << 15)
#define IOAPIC_RTE_REMOTE_IRR (1u << 14)
#define IOAPIC_RTE_ACTIVE_LOW (1u << 13)
#define IOAPIC_RTE_DELIVS     (1u << 12)

#define RESULTS_MAGIC    0x4B4349544D564E44UL  /* "DNVMTICK" */

/* ---- CPU primitives ------------------------------------------------------ */
static inline void outb(u16 port, u8 v)  { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port) : "memory"); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port) : "memory"); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port) : "memory"); }
static inline u8  inb(u16 port) { u8 v;  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }

/* Exact-width MMIO accesses (one mov each, any alignment). */
static inline u8  mmio_read8(u64 a)  { u8 v;  __asm__ volatile("movb (%1), %0" : "=q"(v) : "r"(a) : "memory"); return v; }
static inline u16 mmio_read16(u64 a) { u16 v; __asm__ volatile("movw (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline u32 mmio_read32(u64 a) { u32 v; __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline u64 mmio_read64(u64 a) { u64 v; __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline void mmio_write8(u64 a, u8 v)   { __asm__ volatile("movb %0, (%1)" :: "q"(v), "r"(a) : "memory"); }
static inline void mmio_write16(u64 a, u16 v) { __asm__ volatile("movw %0, (%1)" :: "r"(v), "r"(a) : "memory"); }
static inline void mmio_write32(u64 a, u32 v) { __asm__ volatile("movl %0, (%1)" :: "r"(v), "r"(a) : "memory"); }
static inline void mmio_write64(u64 a, u64 v) { __asm__ volatile("movq %0, (%1)" :: "r"(v), "r"(a) : "memory"); }

static inline u64 rdtsc(void)
{
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
    return ((u64)hi << 32) | lo;
}
static inline u64 rdmsr(u32 msr)
{
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
    return ((u64)hi << 32) | lo;
}
static inline void wrmsr(u32 msr, u64 v)
{
    __asm__ volatile("wrmsr" :: "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}
static inline void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
/* STI's one-instruction interrupt shadow covers HLT: no lost wakeup. */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
/* Busy-wait body: compiler barrier only (no special instruction). */
static inline void cpu_relax(void) { __asm__ volatile("" ::: "memory"); }

/* ---- interrupts ---------------------------------------------------------- */
/* Saved state, as laid out by isr_common in entry.S (low -> high). */
struct frame {
    u64 r15, r14, r13, r12, r11, r10, r9, r8;
    u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
    u64 vector, error;
    u64 rip, cs, rflags, rsp, ss;      /* pushed by the CPU */
};
typedef void (*irq_handler_t)(u64 vector, struct frame *f);

void idt_init(void);                                /* load 256-entry IDT   */
/* Bounded interrupt waits for the test guests: interrupts on for
 * RT_WAIT_ITERS `outb 0x80` (each a fast-path exit, so pending interrupts
 * are injected) until *c >= target, then RT_SETTLE_ITERS more to catch
 * duplicates; interrupts off again on return. A broken host makes a guest
 * fail, never hang. */
#define RT_WAIT_ITERS   200
#define RT_SETTLE_ITERS 20
u32 rt_wait_for(volatile u32 *c, u32 target);
void rt_settle(void);                                /* expect nothing */
/* Point IDT entry `v` at a raw handler (which must save what it uses and
 * end with iretq), bypassing the generic stub and C dispatch. */
void idt_set_entry(u8 v, u64 handler);
void irq_register(u8 vector, irq_handler_t h);      /* NULL = unregister    */
void isr_dispatch(u64 vector, struct frame *f);     /* called from entry.S  */
extern volatile u32 unexpected_irqs;

/* ---- serial / printing --------------------------------------------------- */
void serial_putc(char c);                 /* polls LSR.THRE (bounded) */
void serial_puts(const char *s);          /* no newline added */
void put_hex(u64 v);                      /* "0x..." */
void put_dec(u64 v);
void kprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* kprintf supports: %s %c %d %i %u %x %X %p %% with optional 0/width and
 * l/ll/z length modifiers. */

NORETURN void exit_with(u32 code);        /* outl 0xF4; then cli;hlt loop */
NORETURN void halt_done(void);            /* outb 108 (clean halt)         */

/* ---- checks --------------------------------------------------------------- */
extern u32 failures;
int check(const char *name, int cond);    /* prints PASS/FAIL name */
#define CHECK(name, cond) check((name), !!(cond))

/* ---- LAPIC ----------------------------------------------------------------- */
static inline u32 lapic_read(u32 reg) { return *(volatile u32 *)(LAPIC_BASE + reg); }
static inline void lapic_write(u32 reg, u32 v) { *(volatile u32 *)(LAPIC_BASE + reg) = v; }
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
static inline u32 lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }
void lapic_enable(void);                  /* APIC base enable, SVR=0x1FF, TPR=0 */
void lapic_self_ipi(u8 vector);           /* ICR = 0x40000 | vector */
/* Periodic LAPIC timer used as a watchdog wake-up (divide by 1). */
void lapic_watchdog_start(u8 vector, u32 initial_count);
void lapic_watchdog_stop(void);

/* ---- IOAPIC ----------------------------------------------------------------- */
u32  ioapic_read(u32 reg);
void ioapic_write(u32 reg, u32 v);
void ioapic_eoi(u8 vector);               /* write EOI register (+0x40), v0x20 */
/* Program pin: fixed delivery, physical destination dest (APIC id). */
void ioapic_set_redir(u32 pin, u8 vector, int level, int masked, u8 dest);
u32  ioapic_redir_lo(u32 pin);
u32  ioapic_redir_hi(u32 pin);
void ioapic_mask(u32 pin, int masked);

/* IRQ line (GSI) level through port 0x2000 + n. */
static inline void irq_line(u32 gsi, int level) { outb((u16)PORT_IRQLINE(gsi), level ? 1 : 0); }

/* ---- misc --------------------------------------------------------------------- */
void *memset(void *d, int c, usize n);
void *memcpy(void *d, const void *s, usize n);
void *memmove(void *d, const void *s, usize n);
int   memcmp(const void *a, const void *b, usize n);

void rt_init(void);                       /* called by _start before main */
int main(u64 arg0, u64 arg1, u64 arg2, u64 arg3);

#endif
