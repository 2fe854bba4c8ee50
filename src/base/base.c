/* base: status messages, allocation with fault injection, logging, clock. */
#include "base/base.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

const char *mt_status_name(mt_status s) {
    switch (s) {
    case MT_OK: return "ok";
    case MT_ERR_INVALID_ARG: return "invalid argument";
    case MT_ERR_IO: return "I/O error";
    case MT_ERR_FORMAT: return "format error";
    case MT_ERR_NOMEM: return "out of memory";
    case MT_ERR_UNSUPPORTED: return "unsupported";
    case MT_ERR_LIMIT: return "over a limit";
    case MT_ERR_INTERNAL: return "internal error";
    case MT_ERR_CONTEXT: return "context full";
    }
    return "unknown status";
}

mt_status mt_err_set(mt_err *err, mt_status code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

mt_status mt_err_prefix(mt_err *err, const char *fmt, ...) {
    if (!err) return MT_ERR_INTERNAL;
    char prefix[MT_ERR_MSG_MAX], old[MT_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t pl = strlen(prefix);
    if (pl + 2 < sizeof err->msg) {
        memcpy(err->msg, prefix, pl);
        memcpy(err->msg + pl, ": ", 2);
        size_t room = sizeof err->msg - pl - 3;
        size_t ol = strnlen(old, room);
        memcpy(err->msg + pl + 2, old, ol);
        err->msg[pl + 2 + ol] = 0;
    }
    return err->code;
}

/* Fault injection: countdown to the allocation that fails; 0 = never. Atomic because kernels allocate their
 * scratch from pool threads; a test that counts allocations runs its code single-threaded. */
static atomic_size_t fail_countdown;
static atomic_size_t alloc_count;

static bool alloc_should_fail(void) {
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    size_t left = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (left != 0) {
        if (atomic_compare_exchange_weak_explicit(&fail_countdown, &left, left - 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return left == 1;
    }
    return false;
}

size_t mt_alloc_fail_after(size_t k) {
    size_t n = atomic_exchange(&alloc_count, 0);
    atomic_store(&fail_countdown, k);
    return n;
}

void *mt_malloc(size_t size) {
    if (alloc_should_fail()) return NULL;
    return malloc(size ? size : 1);
}

void *mt_calloc(size_t n, size_t size) {
    if (alloc_should_fail()) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *mt_malloc_array(size_t n, size_t size) {
    size_t total;
    if (!mt_mul_ok(n, size, &total)) return NULL;
    return mt_malloc(total);
}

void *mt_realloc(void *p, size_t size) {
    if (alloc_should_fail()) return NULL;
    return realloc(p, size ? size : 1);
}

bool mt_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t cap2 = MT_MAX(*cap * 2, MT_MAX(need, (size_t)16));
    size_t bytes;
    if (!mt_mul_ok(cap2, elem, &bytes)) return false;
    void *q = mt_realloc(*p, bytes);
    if (!q) return false;
    *p = q;
    *cap = cap2;
    return true;
}

void *mt_malloc_aligned(size_t size) {
    if (alloc_should_fail()) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 64) != 0) return NULL;
    return p;
}

void mt_free(void *p) { free(p); }

enum { HUGE_PAGE = 2 << 20 };

static size_t pages_length(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = size ? size : 1;
    return n > SIZE_MAX - page ? 0 : (n + page - 1) / page * page; /* 0: no such size */
}

void *mt_malloc_pages(size_t size) {
    if (alloc_should_fail()) return NULL;
    size_t len = pages_length(size), mapped;
    if (!len || !mt_add_ok(len, HUGE_PAGE, &mapped)) return NULL;
    /* over-map by a huge page and trim both ends, so the range starts on a 2 MiB boundary */
    uint8_t *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p) munmap(p, (size_t)(a - p));
    if (p + mapped > a + len) munmap(a + len, (size_t)(p + mapped - (a + len)));
#ifdef MADV_HUGEPAGE
    (void)madvise(a, len, MADV_HUGEPAGE); /* best effort: with THP off the pages stay 4 KiB */
#endif
    return a;
}

void mt_free_pages(void *p, size_t size) {
    if (p) munmap(p, pages_length(size));
}

size_t mt_mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    unsigned long long kib = 0;
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f)) found = sscanf(line, "MemAvailable: %llu kB", &kib) == 1;
    if (f) fclose(f);
    return found && kib < SIZE_MAX / 1024 ? (size_t)kib * 1024 : SIZE_MAX;
}

char *mt_strndup(const char *s, size_t n) {
    char *d = mt_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *mt_strdup(const char *s) { return mt_strndup(s, strlen(s)); }

static mt_log_level log_level = MT_LOG_INFO;

void mt_log_set_level(mt_log_level level) { log_level = level; }
mt_log_level mt_log_get_level(void) { return log_level; }

void mt_log(mt_log_level level, const char *fmt, ...) {
    if (level > log_level) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double mt_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
