/* base: status messages, checked size arithmetic, allocation, logging.
 *
 * Every module includes this header. Allocation goes through mt_malloc and friends so that fault-injection tests
 * can make the k-th allocation fail (mt_alloc_fail_after). Size arithmetic on anything that came from outside
 * uses mt_mul_ok / mt_add_ok before an allocation or an offset is formed.
 */
#ifndef MT_BASE_H
#define MT_BASE_H

#include "mitten.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define MT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MT_LIKELY(x) __builtin_expect(!!(x), 1)
#define MT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define MT_PRINTF(a, b)
#define MT_LIKELY(x) (x)
#define MT_UNLIKELY(x) (x)
#endif

#define MT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define MT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Writes code and a formatted message into err (which may be NULL) and returns code, so that a failing path reads
 * `return mt_err_set(err, MT_ERR_FORMAT, "%s: ...", path);`. */
mt_status mt_err_set(mt_err *err, mt_status code, const char *fmt, ...) MT_PRINTF(3, 4);

/* Puts "context: " before the message already in err, keeping its code; returns that code. */
mt_status mt_err_prefix(mt_err *err, const char *fmt, ...) MT_PRINTF(2, 3);

/* Checked size arithmetic: false when the result does not fit in size_t / int64_t. */
static inline bool mt_mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool mt_add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool mt_mul_i64_ok(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }

/* Allocation. All return NULL on failure (never abort); mt_malloc_array checks n*size for overflow; memory from
 * mt_malloc_aligned is 64-byte aligned and freed with mt_free like any other. */
void *mt_malloc(size_t size);
void *mt_calloc(size_t n, size_t size);
void *mt_malloc_array(size_t n, size_t size);
void *mt_realloc(void *p, size_t size);
void *mt_malloc_aligned(size_t size);
void mt_free(void *p);
/* Memory that lives as long as a model and is streamed through again and again (its weights): anonymous pages,
 * 2 MiB-aligned and advised as transparent huge pages, so one TLB entry covers 2 MiB and a first touch faults once
 * per 2 MiB. Freed with mt_free_pages and the same size. */
void *mt_malloc_pages(size_t size);
void mt_free_pages(void *p, size_t size);
/* Memory the kernel could give without swapping (/proc/meminfo's MemAvailable: free memory and reclaimable caches),
 * in bytes; SIZE_MAX where it does not say. */
size_t mt_mem_available(void);
char *mt_strdup(const char *s);
/* Makes *p (an array of *cap elements of elem bytes) hold at least need, doubling (at least 16); false when the size
 * overflows or memory runs out, *p and *cap unchanged. */
bool mt_grow(void **p, size_t *cap, size_t need, size_t elem);
char *mt_strndup(const char *s, size_t n);

/* Fault injection for tests: the k-th allocation from now fails (k >= 1); 0 switches it off. Returns how many
 * allocations were made since the last call. */
size_t mt_alloc_fail_after(size_t k);

/* Logging to stderr. Level 0 = errors only, 1 = progress (default), 2 = debug. */
typedef enum { MT_LOG_ERROR = 0, MT_LOG_INFO = 1, MT_LOG_DEBUG = 2 } mt_log_level;
void mt_log_set_level(mt_log_level level);
mt_log_level mt_log_get_level(void);
void mt_log(mt_log_level level, const char *fmt, ...) MT_PRINTF(2, 3);

/* Monotonic wall clock in seconds. */
double mt_time_now(void);

#endif
