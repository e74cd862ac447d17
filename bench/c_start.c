/* c_start: the C reference for bench/run_start_bench.ts (cold start).
 *
 *     c_start <multiboot-elf32> [mem_mib]
 *
 * One process, one VM, no denovmm code: open /dev/kvm, create the machine
 * the core builds by default (TSS/identity-map pages at 0xFFFBC000, in-kernel
 * irqchip + PIT, `mem_mib` MiB of RAM at 0 (16), 1 vCPU with KVM's supported
 * CPUID), load the PT_LOAD segments of a Multiboot v1 ELF32 kernel, enter it
 * in 32-bit protected mode as a Multiboot loader does (flat CS/DS, paging
 * off, EAX = 0x2BADB002, EBX = 0: the bench kernel reads no boot
 * information) and run to its `outl 0xF4`. COM1 bytes (port 0x3F8 writes)
 * go to stdout; other port writes are ignored and reads return 0xFF, as
 * unclaimed ports do. Exit status: the guest's isa-debug-exit value (0 for
 * the bench kernel); 70 on a VMM failure.
 *
 * On stderr, one JSON line of CLOCK_MONOTONIC ns since main() for each
 * stage: `kvm` (/dev/kvm open), `vm` (VM + irqchip + PIT), `mem` (RAM
 * mapped and registered), `vcpu` (vCPU + CPUID + kvm_run mapped), `load`
 * (kernel loaded, registers set) and `exit` (the debug-exit write seen).
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

#define DEBUG_EXIT_PORT 0xf4
#define COM1 0x3f8

static void die(const char *what)
{
    fprintf(stderr, "c_start: %s: %s\n", what, strerror(errno));
    exit(70);
}

static void fail(const char *msg)
{
    fprintf(stderr, "c_start: %s\n", msg);
    exit(70);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct elf32_ehdr {
    unsigned char ident[16];
    uint16_t type, machine;
    uint32_t version, entry, phoff, shoff, flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct elf32_phdr {
    uint32_t type, offset, vaddr, paddr, filesz, memsz, flags, align;
};

static unsigned char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(path);
    struct stat st;
    if (fstat(fd, &st) < 0) die(path);
    unsigned char *b = malloc((size_t)st.st_size + 1);
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

/* PT_LOAD segments of an i386 ELF32 into RAM at their physical addresses. */
static uint32_t load_elf32(unsigned char *ram, size_t mem, const unsigned char *f, size_t len)
{
    const struct elf32_ehdr *h = (const void *)f;
    if (len < sizeof *h || memcmp(h->ident, "\177ELF", 4) || h->ident[4] != 1 || h->machine != 3)
        fail("not an ELF32 i386 file");
    if (h->phentsize != sizeof(struct elf32_phdr) || h->phoff > len ||
        (uint64_t)h->phnum * sizeof(struct elf32_phdr) > len - h->phoff)
        fail("bad program headers");
    for (unsigned i = 0; i < h->phnum; i++) {
        const struct elf32_phdr *p = (const void *)(f + h->phoff + i * sizeof *p);
        if (p->type != 1) continue; /* PT_LOAD */
        if (p->filesz > p->memsz || p->offset > len || p->filesz > len - p->offset ||
            p->paddr > mem || p->memsz > mem - p->paddr)
            fail("segment outside the file or RAM");
        memcpy(ram + p->paddr, f + p->offset, p->filesz);
        memset(ram + p->paddr + p->filesz, 0, p->memsz - p->filesz);
    }
    return h->entry;
}

static void set_cpuid(int kvm, int vcpu)
{
    int n = 256;
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof(struct kvm_cpuid_entry2));
    if (!c) fail("out of memory");
    c->nent = n;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) < 0) die("KVM_GET_SUPPORTED_CPUID");
    if (ioctl(vcpu, KVM_SET_CPUID2, c) < 0) die("KVM_SET_CPUID2");
    free(c);
}

int main(int argc, char **argv)
{
    uint64_t t0 = now_ns(), t[6];
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: c_start <multiboot-elf32> [mem_mib]\n");
        return 2;
    }
    size_t mem = (size_t)(argc == 3 ? strtoul(argv[2], NULL, 0) : 16) << 20;
    if (mem < (2UL << 20)) fail("mem_mib must be at least 2");
    size_t elf_len;
    unsigned char *elf = read_file(argv[1], &elf_len);

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("/dev/kvm");
    t[0] = now_ns();
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0) die("KVM_SET_TSS_ADDR");
    uint64_t ident = 0xfffbc000UL;
    if (ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0) die("KVM_SET_IDENTITY_MAP_ADDR");
    if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0) die("KVM_CREATE_PIT2");
    t[1] = now_ns();
    unsigned char *ram = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) die("mmap RAM");
    struct kvm_userspace_memory_region r = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = mem, .userspace_addr = (uint64_t)(uintptr_t)ram,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("KVM_SET_USER_MEMORY_REGION");
    t[2] = now_ns();
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    set_cpuid(kvm, vcpu);
    int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (sz <= 0) die("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");
    t[3] = now_ns();

    uint32_t entry = load_elf32(ram, mem, elf, elf_len);
    struct kvm_sregs s;
    if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb, .present = 1,
        .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
    };
    struct kvm_segment data = code;
    data.selector = 0x18;
    data.type = 0x3;
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.cr0 = (s.cr0 | 1) & ~0x80000000ULL; /* PE, paging off */
    if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
    struct kvm_regs regs;
    memset(&regs, 0, sizeof regs);
    regs.rip = entry;
    regs.rflags = 2;
    regs.rax = 0x2badb002;
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");
    t[4] = now_ns();

    int status = -1;
    while (status < 0) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            die("KVM_RUN");
        }
        if (run->exit_reason != KVM_EXIT_IO) {
            fprintf(stderr, "c_start: unexpected exit reason %u\n", run->exit_reason);
            return 70;
        }
        unsigned char *data_p = (unsigned char *)run + run->io.data_offset;
        if (run->io.direction == KVM_EXIT_IO_IN) {
            memset(data_p, 0xff, (size_t)run->io.size * run->io.count);
        } else if (run->io.port == COM1) {
            fwrite(data_p, run->io.size, run->io.count, stdout);
        } else if (run->io.port == DEBUG_EXIT_PORT) {
            uint32_t v = 0;
            memcpy(&v, data_p, run->io.size < 4 ? run->io.size : 4);
            status = (int)(v & 0xff);
        }
    }
    t[5] = now_ns();
    fflush(stdout);
    fprintf(stderr, "{\"kvm\":%llu,\"vm\":%llu,\"mem\":%llu,\"vcpu\":%llu,\"load\":%llu,\"exit\":%llu}\n",
            (unsigned long long)(t[0] - t0), (unsigned long long)(t[1] - t0), (unsigned long long)(t[2] - t0),
            (unsigned long long)(t[3] - t0), (unsigned long long)(t[4] - t0), (unsigned long long)(t[5] - t0));
    return status;
}
