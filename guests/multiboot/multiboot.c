/* denovmm multiboot v1 test kernel, 64-bit part. Entered from entry32.S
 * with main(eax_at_entry, ebx_at_entry). Checks the multiboot information
 * structure, long mode and the QEMU fw_cfg legacy I/O interface; prints one
 * PASS/FAIL line per check and exits through port 0xF4 with the number of
 * failures. */
#include "../lib/rt.h"

#define EXPECTED_CMDLINE "denovmm-multiboot-test arg=42"
#define MB_BOOTLOADER_MAGIC 0x2BADB002u

#define MBI_MEMORY   (1u << 0)
#define MBI_CMDLINE  (1u << 2)
#define MBI_MODS     (1u << 3)
#define MBI_MMAP     (1u << 6)
#define MBI_LOADER   (1u << 9)

struct mb_info {
    u32 flags;
    u32 mem_lower, mem_upper;
    u32 boot_device;
    u32 cmdline;
    u32 mods_count, mods_addr;
    u32 syms[4];
    u32 mmap_length, mmap_addr;
    u32 drives_length, drives_addr;
    u32 config_table;
    u32 boot_loader_name;
} __attribute__((packed));

struct mb_module {
    u32 mod_start, mod_end, string, reserved;
} __attribute__((packed));

struct mb_mmap {
    u32 size;           /* of the rest of the entry (not counting itself) */
    u64 base, len;
    u32 type;
} __attribute__((packed));

#define FWCFG_SEL  0x510
#define FWCFG_DATA 0x511

static void fwcfg_read(u16 key, void *buf, usize n)
{
    u8 *p = buf;
    outw(FWCFG_SEL, key);
    for (usize i = 0; i < n; i++)
        p[i] = inb(FWCFG_DATA);
}

static usize slen(const char *s)
{
    usize n = 0;
    while (s[n]) n++;
    return n;
}

static int streq(const char *a, const char *b)
{
    usize n = slen(b);
    return slen(a) == n && memcmp(a, b, n) == 0;
}

/* Exactly `want`, or "<kernel path> want" (GRUB and QEMU put the kernel's
 * file name first). */
static int cmdline_ok(const char *s, const char *want)
{
    usize n = slen(s), w = slen(want);
    if (n == w) return memcmp(s, want, w) == 0;
    return n > w && s[n - w - 1] == ' ' && memcmp(s + n - w, want, w) == 0;
}

static u64 read_cr0(void) { u64 v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static u64 read_cr4(void) { u64 v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }

int main(u64 magic, u64 info_addr, u64 a2, u64 a3)
{
    kprintf("multiboot kernel: eax=0x%lx ebx=0x%lx\n", magic, info_addr);
    CHECK("multiboot_magic", magic == MB_BOOTLOADER_MAGIC);

    /* The info structure lies below 1 GiB (identity-mapped by entry32.S). */
    const struct mb_info *mbi = (const struct mb_info *)info_addr;
    int info_ok = info_addr != 0 && info_addr < (1UL << 30);
    u32 flags = info_ok ? mbi->flags : 0;
    kprintf("flags=0x%x\n", flags);

    /* ---- memory ---- */
    CHECK("mb_flags_mem", flags & MBI_MEMORY);
    u32 mem_upper = (flags & MBI_MEMORY) ? mbi->mem_upper : 0;
    u64 ram = 0x100000UL + (u64)mem_upper * 1024;   /* multiboot-derived RAM size */
    u64 above_1m = 0;                                /* RAM entry at 1 MiB */
    int mmap_ok = 0;
    if (flags & MBI_MMAP) {
        u64 p = mbi->mmap_addr, end = p + mbi->mmap_length;
        int n = 0;
        while (p + 4 <= end && n < 64) {
            const struct mb_mmap *e = (const struct mb_mmap *)p;
            kprintf("mmap base=0x%lx len=0x%lx type=%u\n", e->base, e->len, e->type);
            if (e->type == 1 && e->base <= 0x100000 && e->base + e->len > 0x100000) {
                above_1m = e->base + e->len - 0x100000;
                mmap_ok = 1;
            }
            p += (u64)e->size + 4;
            n++;
        }
    }
    kprintf("mem_lower=%u KiB mem_upper=%u KiB ram=0x%lx\n",
            (flags & MBI_MEMORY) ? mbi->mem_lower : 0, mem_upper, ram);
    CHECK("mb_mmap_has_ram_above_1m", mmap_ok && above_1m >= 0x100000);
    /* mem_upper is the RAM from 1 MiB to the first hole: at most the mmap
     * entry, and within 1 MiB of it. */
    u64 up = (u64)mem_upper * 1024;
    CHECK("mb_mem_upper", mem_upper > 0 && mmap_ok && up <= above_1m && above_1m - up < 0x100000);

    /* ---- command line ---- */
    const char *cmdline = (flags & MBI_CMDLINE) ? (const char *)(u64)mbi->cmdline : "";
    kprintf("cmdline=\"%s\"\n", cmdline);
    CHECK("mb_cmdline", (flags & MBI_CMDLINE) && cmdline_ok(cmdline, EXPECTED_CMDLINE));

    if (flags & MBI_LOADER)
        kprintf("boot_loader_name=\"%s\"\n", (const char *)(u64)mbi->boot_loader_name);

    /* ---- modules ---- */
    u32 nmods = (flags & MBI_MODS) ? mbi->mods_count : 0;
    kprintf("mods_count=%u\n", nmods);
    CHECK("mb_module_count", nmods >= 1);
    int content = 0, aligned = 0;
    if (nmods >= 1) {
        const struct mb_module *m = (const struct mb_module *)(u64)mbi->mods_addr;
        kprintf("module0 [0x%x, 0x%x) \"%s\"\n", m->mod_start, m->mod_end,
                m->string ? (const char *)(u64)m->string : "");
        content = m->mod_end >= m->mod_start + 7 && m->mod_end < (1u << 30) &&
                  memcmp((const void *)(u64)m->mod_start, "MODULE0", 7) == 0;
        aligned = (m->mod_start & 0xFFF) == 0;   /* header flag bit 0 */
    }
    CHECK("mb_module_content", content);
    CHECK("mb_module_page_aligned", aligned);

    /* ---- long mode ---- */
    u64 efer = rdmsr(0xC0000080);
    kprintf("efer=0x%lx cr0=0x%lx cr4=0x%lx\n", efer, read_cr0(), read_cr4());
    CHECK("long_mode_entered", (efer & 0x500) == 0x500 && (read_cr0() & 0x80000001UL) == 0x80000001UL &&
                               (read_cr4() & 0x20));

    /* ---- fw_cfg (legacy I/O) ---- */
    char sig[5] = { 0 };
    fwcfg_read(0x0000, sig, 4);
    kprintf("fw_cfg signature \"%s\"\n", sig);
    CHECK("fwcfg_signature", memcmp(sig, "QEMU", 4) == 0);

    u32 id = 0;
    fwcfg_read(0x0001, &id, 4);
    kprintf("fw_cfg id=0x%x\n", id);
    CHECK("fwcfg_id", id & 1);

    u64 fram = 0;
    fwcfg_read(0x0003, &fram, 8);
    kprintf("fw_cfg ram_size=0x%lx (multiboot 0x%lx)\n", fram, ram);
    CHECK("fwcfg_ram_size", mem_upper > 0 && (fram > ram ? fram - ram : ram - fram) < 0x100000);

    u16 ncpus = 0;
    fwcfg_read(0x0005, &ncpus, 2);
    CHECK("fwcfg_nb_cpus", ncpus == 1);

    u32 csize = 0;
    fwcfg_read(0x0014, &csize, 4);
    char cbuf[64];
    memset(cbuf, 0, sizeof cbuf);
    if (csize > 0 && csize <= sizeof cbuf)
        fwcfg_read(0x0015, cbuf, csize);
    kprintf("fw_cfg cmdline size=%u \"%s\"\n", csize, cbuf);
    CHECK("fwcfg_cmdline", csize == slen(EXPECTED_CMDLINE) + 1 && streq(cbuf, EXPECTED_CMDLINE));

    u8 unk[8];
    memset(unk, 0xAA, sizeof unk);
    fwcfg_read(0x1234, unk, sizeof unk);
    int zero = 1;
    for (usize i = 0; i < sizeof unk; i++)
        zero &= unk[i] == 0;
    CHECK("fwcfg_unknown_key_zero", zero);

    kprintf("multiboot: %u failure(s)\n", failures);
    return (int)failures;
}
