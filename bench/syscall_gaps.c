/* syscall_gaps: how much time one thread spends in userspace, measured
 * exactly, as the gaps between each of its syscall returns and its next
 * syscall entry (perf_event_open on the raw_syscalls:sys_exit / sys_enter
 * tracepoints of the calling thread, timestamps in one ring buffer).
 *
 * For a VMM's run loop every exit is one KVM_RUN return and re-entry, so
 * the gaps are the userspace part of the exit path: for the C loop its
 * loop body, for denovmm the Rust entry, the decode and (forwarded exits)
 * TypeScript. A gap also holds the few kernel instructions between the
 * tracepoints and the user/kernel boundary, the same for every caller.
 * Gaps over GAP_CAP_NS (preemption by another thread) are left out of the
 * sum and counted apart.
 *
 * Used by bench/c_loop.c (compiled in) and, built as
 * bench/out/libsyscall_gaps.so, by bench/run_exit_bench.ts (Deno.dlopen).
 * Tracing slows the syscalls themselves: measured runs are not timing runs.
 * Needs root or perf_event_paranoid <= -1, and the two tracepoint ids
 * (tracefs `events/raw_syscalls/sys_{enter,exit}/id`).
 *
 *   int sg_open(uint32_t enter_id, uint32_t exit_id);   handle, or -errno
 *   int sg_start(int h);                                reset and enable
 *   int sg_stop(int h, uint64_t out[SG_OUT]);           disable and count
 *   void sg_close(int h);
 *
 * out: 0 sum of gaps ns (<= cap), 1 gaps, 2 median gap ns, 3 gaps over the
 * cap, 4 their ns, 5 sys_enter records, 6 sys_exit records, 7 lost records,
 * 8 p90 gap ns, 9 p99 gap ns, 10 gaps over TAIL_NS (<= cap), 11 their ns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SG_OUT 12
#define TAIL_NS 10000
#define SG_MAX 4
#define SG_DATA_PAGES 2048 /* 8 MiB: ~170k syscalls of 48 bytes */
#define GAP_CAP_NS 50000
#define HIST_LEN 65536 /* 1-ns bins for the median */

static struct sg {
    int used;
    int fd_enter, fd_exit;
    uint64_t id_enter, id_exit;
    void *base;
    size_t len;
} sg_slots[SG_MAX];
static uint32_t sg_hist[HIST_LEN];

static int sg_event(uint32_t tp, int group)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_TRACEPOINT;
    a.config = tp;
    a.sample_period = 1;
    a.sample_type = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TIME;
    a.disabled = group < 0;
    a.use_clockid = 1;
    a.clockid = 1; /* CLOCK_MONOTONIC */
    int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, group, PERF_FLAG_FD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void sg_close(int h);

int sg_open(uint32_t enter_id, uint32_t exit_id)
{
    int h = 0;
    while (h < SG_MAX && sg_slots[h].used) h++;
    if (h == SG_MAX) return -EMFILE;
    struct sg *s = &sg_slots[h];
    memset(s, 0, sizeof *s);
    s->fd_enter = s->fd_exit = -1;
    int e = 0;
    s->fd_exit = sg_event(exit_id, -1);
    if (s->fd_exit < 0) return s->fd_exit;
    s->fd_enter = sg_event(enter_id, s->fd_exit);
    if (s->fd_enter < 0) {
        e = s->fd_enter;
        close(s->fd_exit);
        return e;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    s->len = page * (1 + SG_DATA_PAGES);
    s->base = mmap(NULL, s->len, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd_exit, 0);
    if (s->base == MAP_FAILED ||
        ioctl(s->fd_enter, PERF_EVENT_IOC_SET_OUTPUT, s->fd_exit) < 0 ||
        ioctl(s->fd_enter, PERF_EVENT_IOC_ID, &s->id_enter) < 0 ||
        ioctl(s->fd_exit, PERF_EVENT_IOC_ID, &s->id_exit) < 0) {
        e = -errno;
        if (s->base != MAP_FAILED) munmap(s->base, s->len);
        close(s->fd_enter);
        close(s->fd_exit);
        return e;
    }
    s->used = 1;
    return h;
}

static int sg_valid(int h) { return h >= 0 && h < SG_MAX && sg_slots[h].used; }

static void sg_copy(void *dst, const unsigned char *data, uint64_t size, uint64_t at, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)dst)[i] = data[(at + i) % size];
}

static void sg_drain(struct sg *s, uint64_t out[SG_OUT])
{
    struct perf_event_mmap_page *m = s->base;
    unsigned char *data = (unsigned char *)m + m->data_offset;
    uint64_t size = m->data_size;
    uint64_t head = __atomic_load_n(&m->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = m->data_tail;
    uint64_t last_exit = 0;
    int have_exit = 0;
    memset(sg_hist, 0, sizeof sg_hist);
    uint64_t over_hist = 0;
    while (tail + sizeof(struct perf_event_header) <= head) {
        struct perf_event_header hdr;
        sg_copy(&hdr, data, size, tail, sizeof hdr);
        if (hdr.size < sizeof hdr) break;
        if (hdr.type == PERF_RECORD_SAMPLE && hdr.size >= sizeof hdr + 16) {
            uint64_t idt[2];
            sg_copy(idt, data, size, tail + sizeof hdr, 16);
            if (idt[0] == s->id_exit) {
                out[6]++;
                last_exit = idt[1];
                have_exit = 1;
            } else if (idt[0] == s->id_enter) {
                out[5]++;
                if (have_exit && idt[1] >= last_exit) {
                    uint64_t g = idt[1] - last_exit;
                    if (g <= GAP_CAP_NS) {
                        out[0] += g;
                        out[1]++;
                        if (g > TAIL_NS) {
                            out[10]++;
                            out[11] += g;
                        }
                        if (g < HIST_LEN) sg_hist[g]++;
                        else over_hist++;
                    } else {
                        out[3]++;
                        out[4] += g;
                    }
                }
                have_exit = 0;
            }
        } else if (hdr.type == PERF_RECORD_LOST && hdr.size >= sizeof hdr + 16) {
            uint64_t lost[2];
            sg_copy(lost, data, size, tail + sizeof hdr, 16);
            out[7] += lost[1];
            have_exit = 0;
        }
        tail += hdr.size;
    }
    __atomic_store_n(&m->data_tail, head, __ATOMIC_RELEASE);
    /* Percentiles 50, 90, 99 (gaps past the histogram count as its end). */
    static const unsigned pct[3] = {50, 90, 99};
    static const int slot[3] = {2, 8, 9};
    for (int k = 0; k < 3; k++) {
        uint64_t want = (out[1] * pct[k] + 99) / 100, seen = 0;
        out[slot[k]] = out[1] ? HIST_LEN : 0;
        for (uint64_t g = 0; g < HIST_LEN && out[1]; g++) {
            seen += sg_hist[g];
            if (seen >= want) {
                out[slot[k]] = g;
                break;
            }
        }
    }
    (void)over_hist;
}

int sg_start(int h)
{
    if (!sg_valid(h)) return -EBADF;
    struct sg *s = &sg_slots[h];
    uint64_t junk[SG_OUT] = {0};
    sg_drain(s, junk);
    if (ioctl(s->fd_exit, PERF_EVENT_IOC_RESET, PERF_IOC_FLAG_GROUP) < 0) return -errno;
    if (ioctl(s->fd_exit, PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP) < 0) return -errno;
    return 0;
}

int sg_stop(int h, uint64_t out[SG_OUT])
{
    if (!sg_valid(h)) return -EBADF;
    struct sg *s = &sg_slots[h];
    if (ioctl(s->fd_exit, PERF_EVENT_IOC_DISABLE, PERF_IOC_FLAG_GROUP) < 0) return -errno;
    memset(out, 0, SG_OUT * sizeof out[0]);
    sg_drain(s, out);
    return 0;
}

void sg_close(int h)
{
    if (!sg_valid(h)) return;
    struct sg *s = &sg_slots[h];
    munmap(s->base, s->len);
    close(s->fd_enter);
    close(s->fd_exit);
    s->used = 0;
}
