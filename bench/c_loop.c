/* c_loop: an independent C reference for bench/run_exit_bench.ts.
 *
 *     c_loop <guest.elf> <out|msi> <port> <count> <rounds> [vector [enter_id exit_id]]
 *
 * No denovmm code: plain /dev/kvm ioctls, the same machine the core builds
 * (in-kernel irqchip, 16 MiB RAM at 0, TSS/identity-map pages at
 * 0xFFFBC000, KVM's supported CPUID with the TSC-deadline bit as the core
 * sets it, 64-bit entry state with the core's GDT at 0x500 and its
 * identity page tables at 0x9000), so that the guest bytes run the same.
 *
 * Each round creates a fresh VM + 1 vCPU, loads the ELF64 guest with
 * arg0 = port, arg1 = count, arg2 = vector, and times the KVM_RUN loop from
 * the first KVM_RUN to the return of the guest's `outl 0xF4` (creation and
 * loading excluded, nothing subtracted):
 *
 *  - `out`: every write to `port` returns here and the loop re-enters
 *    (the `exits` guest: `count` × `outb port`);
 *  - `msi`: every write to `port` is answered with KVM_SIGNAL_MSI to
 *    0xFEE00000 / `vector` before re-entering (the `msi_exits` guest waits
 *    for its handler to run and EOI before the next write).
 *
 * Per round it prints one JSON line: wall ns, exits (every KVM_RUN return),
 * the guest's exit status and this thread's CPU time (`cpu_ns`,
 * CLOCK_THREAD_CPUTIME_ID). Given the raw_syscalls:sys_enter / sys_exit
 * tracepoint ids, each round also measures this thread's userspace time
 * (bench/syscall_gaps.c: `gap_ns`, `gaps`, `median_gap_ns`, `long_gaps`,
 * `lost`) and, with rdtsc around each KVM_RUN, the time outside it
 * (`user_ns`: this loop's own userspace work, which the tracepoint gaps
 * overstate by the tracing's fixed cost); tracing slows the syscalls, so
 * those are not timing rounds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#define MEM_SIZE (16UL << 20)
#define LOAD_MIN 0x100000UL
#define GDT_ADDR 0x500UL
#define PML4_ADDR 0x9000UL
#define BOOT_STACK 0x8ff0UL
#define DEBUG_EXIT_PORT 0xf4
#define MSI_ADDRESS 0xfee00000U

static void die(const char *what)
{
    fprintf(stderr, "c_loop: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void fail(const char *msg)
{
    fprintf(stderr, "c_loop: %s\n", msg);
    exit(1);
}

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* bench/syscall_gaps.c, linked in. */
int sg_open(uint32_t enter_id, uint32_t exit_id);
int sg_start(int h);
int sg_stop(int h, uint64_t out[12]);

struct elf64_ehdr {
    unsigned char ident[16];
    uint16_t type, machine;
    uint32_t version;
    uint64_t entry, phoff, shoff;
    uint32_t flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct elf64_phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

static unsigned char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path);
    struct stat st;
    if (fstat(fd, &st) < 0) die(path);
    unsigned char *b = malloc((size_t)st.st_size);
    if (!b) fail("out of memory");
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
        if (n <= 0) die(path);
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return b;
}

/* Copy the PT_LOAD segments into RAM (bounds-checked); returns the entry. */
static uint64_t load_elf(unsigned char *ram, const unsigned char *f, size_t len)
{
    const struct elf64_ehdr *h = (const void *)f;
    if (len < sizeof *h || memcmp(h->ident, "\177ELF", 4) || h->ident[4] != 2 || h->machine != 62)
        fail("not an ELF64 x86-64 file");
    if (h->phentsize != sizeof(struct elf64_phdr) || h->phoff > len ||
        (uint64_t)h->phnum * sizeof(struct elf64_phdr) > len - h->phoff)
        fail("bad program headers");
    for (unsigned i = 0; i < h->phnum; i++) {
        const struct elf64_phdr *p = (const void *)(f + h->phoff + i * sizeof *p);
        if (p->type != 1) continue; /* PT_LOAD */
        if (p->filesz > p->memsz || p->offset > len || p->filesz > len - p->offset ||
            p->paddr < LOAD_MIN || p->paddr > MEM_SIZE || p->memsz > MEM_SIZE - p->paddr)
            fail("segment outside the file or RAM");
        memcpy(ram + p->paddr, f + p->offset, p->filesz);
        memset(ram + p->paddr + p->filesz, 0, p->memsz - p->filesz);
    }
    return h->entry;
}

/* The core's GDT (loader.rs) and identity page tables for 0..4 GiB. */
static void write_tables(unsigned char *ram)
{
    static const uint64_t gdt[5] = {
        0, 0x00af9a000000ffffULL, 0x00cf92000000ffffULL, 0x00008b0000000067ULL, 0,
    };
    memcpy(ram + GDT_ADDR, gdt, sizeof gdt);
    uint64_t *pml4 = (uint64_t *)(ram + PML4_ADDR);
    uint64_t pdpt_addr = PML4_ADDR + 0x1000;
    uint64_t *pdpt = (uint64_t *)(ram + pdpt_addr);
    memset(pml4, 0, 0x1000);
    memset(pdpt, 0, 0x1000);
    pml4[0] = pdpt_addr | 3;
    for (uint64_t g = 0; g < 4; g++) {
        uint64_t pd_addr = pdpt_addr + 0x1000 * (g + 1);
        uint64_t *pd = (uint64_t *)(ram + pd_addr);
        pdpt[g] = pd_addr | 3;
        for (uint64_t i = 0; i < 512; i++)
            pd[i] = (g << 30) | (i << 21) | 3 | 0x80 | (g == 3 ? 0x18 : 0);
    }
}

struct vm {
    int vm, vcpu;
    unsigned char *ram;
    struct kvm_run *run;
    size_t run_size;
};

static void set_cpuid(int kvm, int vcpu)
{
    int n = 256;
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof(struct kvm_cpuid_entry2));
    if (!c) fail("out of memory");
    c->nent = n;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) < 0) die("KVM_GET_SUPPORTED_CPUID");
    int deadline = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1) {
            e->ebx &= 0x00ffffff; /* APIC ID 0 */
            if (deadline) e->ecx |= 1u << 24;
        }
        if (e->function == 0xb || e->function == 0x1f) e->edx = 0;
    }
    if (ioctl(vcpu, KVM_SET_CPUID2, c) < 0) die("KVM_SET_CPUID2");
    free(c);
}

static struct vm create_vm(int kvm, const unsigned char *elf, size_t elf_len, const uint64_t args[4])
{
    struct vm v;
    v.vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (v.vm < 0) die("KVM_CREATE_VM");
    if (ioctl(v.vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0) die("KVM_SET_TSS_ADDR");
    uint64_t ident = 0xfffbc000UL;
    if (ioctl(v.vm, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0) die("KVM_SET_IDENTITY_MAP_ADDR");
    if (ioctl(v.vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
    v.ram = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (v.ram == MAP_FAILED) die("mmap RAM");
    struct kvm_userspace_memory_region r = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)(uintptr_t)v.ram,
    };
    if (ioctl(v.vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("KVM_SET_USER_MEMORY_REGION");
    v.vcpu = ioctl(v.vm, KVM_CREATE_VCPU, 0);
    if (v.vcpu < 0) die("KVM_CREATE_VCPU");
    set_cpuid(kvm, v.vcpu);
    int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (sz <= 0) die("KVM_GET_VCPU_MMAP_SIZE");
    v.run_size = (size_t)sz;
    v.run = mmap(NULL, v.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v.vcpu, 0);
    if (v.run == MAP_FAILED) die("mmap kvm_run");

    uint64_t entry = load_elf(v.ram, elf, elf_len);
    write_tables(v.ram);
    struct kvm_sregs s;
    if (ioctl(v.vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 0xb, .present = 1,
        .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
    };
    struct kvm_segment data = code;
    data.selector = 0x10;
    data.type = 0x3;
    data.db = 1;
    data.l = 0;
    struct kvm_segment tss = code;
    tss.selector = 0x18;
    tss.type = 0xb;
    tss.s = 0;
    tss.db = 0;
    tss.l = 0;
    tss.g = 0;
    tss.limit = 0x67;
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.tr = tss;
    s.gdt.base = GDT_ADDR;
    s.gdt.limit = 8 * 5 - 1;
    s.idt.base = 0;
    s.idt.limit = 0;
    s.cr0 = 0x80010033;
    s.cr3 = PML4_ADDR;
    s.cr4 = 0x20;
    s.efer = 0x500;
    if (ioctl(v.vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
    struct kvm_regs regs;
    memset(&regs, 0, sizeof regs);
    regs.rip = entry;
    regs.rsp = BOOT_STACK;
    regs.rflags = 2;
    regs.rdi = args[0];
    regs.rsi = args[1];
    regs.rdx = args[2];
    regs.rcx = args[3];
    if (ioctl(v.vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");
    return v;
}

static void destroy_vm(struct vm *v)
{
    munmap(v->run, v->run_size);
    close(v->vcpu);
    close(v->vm);
    munmap(v->ram, MEM_SIZE);
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7 && argc != 9) {
        fprintf(stderr, "usage: c_loop <guest.elf> <out|msi> <port> <count> <rounds> [vector [enter_id exit_id]]\n");
        return 2;
    }
    int msi = !strcmp(argv[2], "msi");
    if (!msi && strcmp(argv[2], "out")) fail("mode must be out or msi");
    uint64_t port = strtoull(argv[3], NULL, 0);
    uint64_t count = strtoull(argv[4], NULL, 0);
    uint64_t rounds = strtoull(argv[5], NULL, 0);
    uint64_t vector = argc >= 7 ? strtoull(argv[6], NULL, 0) : 0x40;
    int sampler = -1;
    if (argc == 9) {
        sampler = sg_open((uint32_t)strtoul(argv[7], NULL, 0), (uint32_t)strtoul(argv[8], NULL, 0));
        if (sampler < 0) {
            errno = -sampler;
            die("perf_event_open (raw_syscalls tracepoints)");
        }
    }
    if (port > 0xffff || (port >= DEBUG_EXIT_PORT && port < DEBUG_EXIT_PORT + 4)) fail("bad port");
    if (vector < 16 || vector > 255) fail("vector must be 16..255");
    size_t elf_len;
    unsigned char *elf = read_file(argv[1], &elf_len);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("/dev/kvm");
    const uint64_t args[4] = {port, count, vector, 0};
    struct kvm_msi m = {.address_lo = MSI_ADDRESS, .address_hi = 0, .data = (uint32_t)vector};

    for (uint64_t round = 0; round < rounds; round++) {
        struct vm v = create_vm(kvm, elf, elf_len, args);
        struct kvm_run *run = v.run;
        uint64_t exits = 0, handled = 0, blocked = 0, status = 0;
        uint64_t gaps[12] = {0};
        if (sampler >= 0 && sg_start(sampler) < 0) fail("syscall gaps start");
        uint64_t cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        uint64_t in_run = 0;
        uint64_t start = now_ns(CLOCK_MONOTONIC);
        uint64_t tsc0 = __rdtsc();
        for (;;) {
            int rc;
            if (sampler >= 0) {
                uint64_t a = __rdtsc();
                rc = ioctl(v.vcpu, KVM_RUN, 0);
                in_run += __rdtsc() - a;
            } else {
                rc = ioctl(v.vcpu, KVM_RUN, 0);
            }
            if (rc < 0) {
                if (errno == EINTR || errno == EAGAIN) continue;
                die("KVM_RUN");
            }
            exits++;
            if (run->exit_reason != KVM_EXIT_IO) {
                fprintf(stderr, "c_loop: unexpected exit reason %u\n", run->exit_reason);
                return 1;
            }
            if (run->io.direction != KVM_EXIT_IO_OUT) fail("unexpected port read");
            if (run->io.port == port) {
                handled++;
                if (msi) {
                    int rc = ioctl(v.vm, KVM_SIGNAL_MSI, &m);
                    if (rc < 0) die("KVM_SIGNAL_MSI");
                    if (rc == 0) blocked++;
                }
            } else if (run->io.port == DEBUG_EXIT_PORT) {
                uint32_t val;
                memcpy(&val, (unsigned char *)run + run->io.data_offset, 4);
                status = ((uint64_t)val << 1) | 1;
                break;
            } else {
                fprintf(stderr, "c_loop: unexpected port 0x%x\n", run->io.port);
                return 1;
            }
        }
        uint64_t tsc = __rdtsc() - tsc0;
        uint64_t ns = now_ns(CLOCK_MONOTONIC) - start;
        uint64_t user_ns = sampler >= 0 && tsc ? (uint64_t)((double)(tsc - in_run) * ns / tsc) : 0;
        uint64_t cpu = now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
        if (sampler >= 0 && sg_stop(sampler, gaps) < 0) fail("syscall gaps stop");
        printf("{\"mode\":\"%s\",\"round\":%llu,\"count\":%llu,\"ns\":%llu,\"exits\":%llu,"
               "\"handled\":%llu,\"blocked\":%llu,\"status\":%llu,\"cpu_ns\":%llu,"
               "\"gap_ns\":%llu,\"gaps\":%llu,\"median_gap_ns\":%llu,\"long_gaps\":%llu,\"long_gap_ns\":%llu,"
               "\"sys_enters\":%llu,\"sys_exits\":%llu,\"lost\":%llu,\"user_ns\":%llu,"
               "\"p90_gap_ns\":%llu,\"p99_gap_ns\":%llu,\"tail_gaps\":%llu,\"tail_gap_ns\":%llu}\n",
               msi ? "msi" : "out", (unsigned long long)round, (unsigned long long)count,
               (unsigned long long)ns, (unsigned long long)exits, (unsigned long long)handled,
               (unsigned long long)blocked, (unsigned long long)status, (unsigned long long)cpu,
               (unsigned long long)gaps[0], (unsigned long long)gaps[1], (unsigned long long)gaps[2],
               (unsigned long long)gaps[3], (unsigned long long)gaps[4], (unsigned long long)gaps[5],
               (unsigned long long)gaps[6], (unsigned long long)gaps[7], (unsigned long long)user_ns,
               (unsigned long long)gaps[8], (unsigned long long)gaps[9], (unsigned long long)gaps[10],
               (unsigned long long)gaps[11]);
        fflush(stdout);
        destroy_vm(&v);
        if (status != 1) {
            fprintf(stderr, "c_loop: guest exit status %llu (expected 1)\n", (unsigned long long)status);
            return 1;
        }
        if (handled != count) fail("handled writes != count");
    }
    return 0;
}
