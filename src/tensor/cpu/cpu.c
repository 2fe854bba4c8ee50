/* tensor/cpu: CPU feature detection (cpuid + xgetbv, as in the Intel SDM vol. 2A "CPUID" and section 13 on XSAVE
 * state), the level in effect, and the per-thread scratch buffer.
 *
 *   | level  | cpuid bits                                        | OS state (XCR0)            |
 *   |--------|---------------------------------------------------|----------------------------|
 *   | avx2   | 1:ECX FMA(12) OSXSAVE(27) AVX(28) F16C(29); 7:EBX AVX2(5) | SSE+AVX (bits 1,2) |
 *   | avx512 | 7:EBX F(16) DQ(17) BW(30) VL(31)                  | + opmask, zmm (bits 5,6,7) |
 *   | bf16   | 7.1:EAX AVX512_BF16(5)                            | as avx512                  |
 *   | vnni   | 7.1:EAX AVX_VNNI(4); 7:ECX AVX512_VNNI(11)        | as avx2; as avx512         |
 */
#include "tensor/cpu/cpu_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define MT_X86 1
#endif

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static mt_cpu_level g_best;
static bool g_has_bf16, g_has_avxvnni, g_has_avx512vnni;
static atomic_int g_level;
static atomic_int g_bf16_dot = MT_BF16_DOT_AUTO;
static pthread_once_t g_probe_once = PTHREAD_ONCE_INIT;
static double g_bf16_ratio; /* vdpbf16ps over f32 FMA throughput on this core, measured once */
static atomic_bool g_vnni = true;
static int64_t g_l2_bytes;

#if MT_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static char g_env_problem[160]; /* what was wrong with MT_CPU / MT_BF16_DOT, or "" */

static void detect(void) {
    g_best = MT_CPU_SCALAR;
#if MT_X86
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
        uint64_t xcr0 = osxsave ? xgetbv0() : 0;
        unsigned b7 = 0, c7 = 0, a71 = 0;
        if (__get_cpuid_max(0, NULL) >= 7) {
            __cpuid_count(7, 0, a, b7, c7, d);
            __cpuid_count(7, 1, a71, b, c, d);
        }
        bool ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = (xcr0 & 0xe6) == 0xe6;
        if (fma && avx && f16c && ymm_os && (b7 & (1u << 5))) {
            g_best = MT_CPU_AVX2;
            g_has_avxvnni = a71 & (1u << 4);
        }
        unsigned need512 = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
        if (g_best == MT_CPU_AVX2 && zmm_os && (b7 & need512) == need512) {
            g_best = MT_CPU_AVX512;
            g_has_bf16 = a71 & (1u << 5);
            g_has_avx512vnni = c7 & (1u << 11);
        }
    }
#endif
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE); /* glibc reads it from CPUID; 0 or -1 where unknown */
    g_l2_bytes = l2 > 0 ? (int64_t)l2 : (int64_t)1 << 20;
    mt_cpu_level want = g_best;
    const char *env = getenv("MT_CPU");
    if (env && strcmp(env, "scalar") == 0) want = MT_CPU_SCALAR;
    else if (env && strcmp(env, "avx2") == 0) want = MT_CPU_AVX2;
    else if (env && strcmp(env, "avx512") == 0) want = MT_CPU_AVX512;
    else if (env && *env && strcmp(env, "best") != 0)
        snprintf(g_env_problem, sizeof g_env_problem, "MT_CPU=%.40s: expected scalar, avx2, avx512 or best", env);
    if (want > g_best && !g_env_problem[0])
        snprintf(g_env_problem, sizeof g_env_problem, "MT_CPU=%s: this CPU has no %s (best: %s)", env, env,
                 mt_cpu_level_name(g_best));
    atomic_store(&g_level, (int)MT_MIN(want, g_best));
    const char *bf = getenv("MT_BF16_DOT");
    bool auto_bf = !bf || !*bf || strcmp(bf, "auto") == 0;
    if (!auto_bf && strcmp(bf, "0") != 0 && strcmp(bf, "1") != 0 && !g_env_problem[0])
        snprintf(g_env_problem, sizeof g_env_problem, "MT_BF16_DOT=%.40s: expected 0, 1 or auto", bf);
    atomic_store(&g_bf16_dot, auto_bf ? MT_BF16_DOT_AUTO : strcmp(bf, "1") == 0 ? MT_BF16_DOT_ON : MT_BF16_DOT_OFF);
}

const char *mt_cpu_env_problem(void) {
    pthread_once(&g_once, detect);
    return g_env_problem[0] ? g_env_problem : NULL;
}

mt_cpu_level mt_cpu_detect(void) {
    pthread_once(&g_once, detect);
    return g_best;
}

int64_t mt_cpu_l2_bytes(void) {
    pthread_once(&g_once, detect);
    return g_l2_bytes;
}

bool mt_cpu_has_avx512bf16(void) {
    pthread_once(&g_once, detect);
    return g_has_bf16;
}

mt_cpu_level mt_cpu_level_get(void) {
    pthread_once(&g_once, detect);
    return (mt_cpu_level)atomic_load(&g_level);
}

mt_cpu_level mt_cpu_set_level(mt_cpu_level level) {
    pthread_once(&g_once, detect);
    if (level < MT_CPU_SCALAR) level = MT_CPU_SCALAR;
    atomic_store(&g_level, (int)MT_MIN(level, g_best));
    return (mt_cpu_level)atomic_load(&g_level);
}

const char *mt_cpu_level_name(mt_cpu_level level) {
    switch (level) {
    case MT_CPU_SCALAR: return "scalar";
    case MT_CPU_AVX2: return "avx2";
    case MT_CPU_AVX512: return "avx512";
    }
    return "?";
}

bool mt_cpu_set_bf16_dot(bool on) {
    mt_cpu_set_bf16_dot_mode(on ? MT_BF16_DOT_ON : MT_BF16_DOT_OFF);
    return mt_cpu_bf16_dot_on();
}

void mt_cpu_set_bf16_dot_mode(mt_bf16_dot_mode mode) {
    pthread_once(&g_once, detect);
    atomic_store(&g_bf16_dot, (int)mode);
}

mt_bf16_dot_mode mt_cpu_bf16_dot_mode(void) {
    pthread_once(&g_once, detect);
    return (mt_bf16_dot_mode)atomic_load(&g_bf16_dot);
}

/* Independent chains of each instruction on this core, a few tenths of a millisecond each, the best of three
 * alternating runs (a run interrupted by another process only reads slower). */
static void probe_bf16(void) {
#if MT_X86
    if (!g_has_bf16 || g_best < MT_CPU_AVX512) return;
    double fma = 0, bf = 0;
    float sink;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = mt_time_now(), f = mt_cpu_isa_avx512.fma_loop(4000, &sink);
        double t1 = mt_time_now(), b = mt_cpu_isa_avx512.bf16_loop(4000, &sink);
        double t2 = mt_time_now();
        fma = MT_MAX(fma, f / MT_MAX(t1 - t0, 1e-9));
        bf = MT_MAX(bf, b / MT_MAX(t2 - t1, 1e-9));
    }
    g_bf16_ratio = bf / fma;
#endif
}

double mt_cpu_bf16_dot_ratio(void) {
    pthread_once(&g_once, detect);
    pthread_once(&g_probe_once, probe_bf16);
    return g_bf16_ratio;
}

bool mt_cpu_bf16_dot_on(void) {
    if (!mt_cpu_has_avx512bf16() || mt_cpu_level_get() != MT_CPU_AVX512) return false;
    int mode = atomic_load(&g_bf16_dot);
    return mode == MT_BF16_DOT_ON || (mode == MT_BF16_DOT_AUTO && mt_cpu_bf16_dot_ratio() >= MT_BF16_DOT_PAYS);
}

const char *mt_cpu_paths(char *buf, size_t cap) {
    mt_cpu_level lv = mt_cpu_level_get();
    const char *int8 = !mt_cpu_vnni_on() ? mt_cpu_level_name(lv) : lv == MT_CPU_AVX512 ? "avx512-vnni" : "avx-vnni";
    char bf[120];
    int mode = atomic_load(&g_bf16_dot);
    if (!g_has_bf16) snprintf(bf, sizeof bf, "absent");
    else if (mode != MT_BF16_DOT_AUTO) snprintf(bf, sizeof bf, "%s (MT_BF16_DOT)", mt_cpu_bf16_dot_on() ? "on" : "off");
    else
        snprintf(bf, sizeof bf, "%s (auto: vdpbf16ps at %.2fx the f32 FMA rate here%s)", mt_cpu_bf16_dot_on() ? "on" : "off",
                 mt_cpu_bf16_dot_ratio(), mt_cpu_bf16_dot_on() ? "" : "; MT_BF16_DOT=1 turns them on");
    snprintf(buf, cap, "%s; bf16 dot products %s; int8 dot products %s", mt_cpu_level_name(lv), bf, int8);
    return buf;
}

bool mt_cpu_has_avxvnni(void) {
    pthread_once(&g_once, detect);
    return g_has_avxvnni;
}

bool mt_cpu_has_avx512vnni(void) {
    pthread_once(&g_once, detect);
    return g_has_avx512vnni;
}

bool mt_cpu_set_vnni(bool on) {
    pthread_once(&g_once, detect);
    atomic_store(&g_vnni, on);
    return mt_cpu_vnni_on();
}

bool mt_cpu_vnni_on(void) {
    mt_cpu_level lv = mt_cpu_level_get();
    return atomic_load(&g_vnni) &&
           ((lv == MT_CPU_AVX2 && g_has_avxvnni) || (lv == MT_CPU_AVX512 && g_has_avx512vnni));
}

const mt_cpu_isa *mt_cpu_isa_get(void) {
    switch (mt_cpu_level_get()) {
    case MT_CPU_AVX512: return &mt_cpu_isa_avx512;
    case MT_CPU_AVX2: return &mt_cpu_isa_avx2;
    default: return &mt_cpu_isa_scalar;
    }
}

/* Scratch: one buffer per thread, kept across calls and freed by a thread-specific-data destructor at thread exit. */
typedef struct scratch {
    void *p;
    size_t cap;
} scratch;

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static bool g_key_ok;

static void scratch_destroy(void *v) {
    scratch *s = v;
    mt_free(s->p);
    mt_free(s);
}

static void key_init(void) { g_key_ok = pthread_key_create(&g_key, scratch_destroy) == 0; }

void *mt_cpu_scratch(size_t bytes) {
    pthread_once(&g_key_once, key_init);
    if (!g_key_ok) return NULL;
    scratch *s = pthread_getspecific(g_key);
    if (!s) {
        s = mt_calloc(1, sizeof *s);
        if (!s) return NULL;
        if (pthread_setspecific(g_key, s) != 0) {
            mt_free(s);
            return NULL;
        }
    }
    if (bytes > s->cap) {
        size_t cap = MT_MAX(bytes, s->cap + s->cap / 2);
        void *p = mt_malloc_aligned(cap);
        if (!p) p = mt_malloc_aligned(cap = bytes);
        if (!p) return NULL;
        mt_free(s->p);
        s->p = p;
        s->cap = cap;
    }
    return s->p;
}

void mt_cpu_scratch_release(void) {
    pthread_once(&g_key_once, key_init);
    if (!g_key_ok) return;
    scratch *s = pthread_getspecific(g_key);
    if (!s) return;
    pthread_setspecific(g_key, NULL);
    scratch_destroy(s);
}
