/* The CPU kernel paths a unit test runs, and the line that says which ran. The development machines change between
 * AVX2-only and AVX-512 with BF16: each test runs every path its kernels have on the machine it runs on, and says so.
 *
 *   | path        | level         | bf16 dot | the CPU needs             | kernels it selects                        |
 *   |-------------|---------------|----------|---------------------------|-------------------------------------------|
 *   | scalar      | MT_CPU_SCALAR | off      | -                         | cpu_scalar.c, the reference               |
 *   | avx2        | MT_CPU_AVX2   | off      | AVX2, FMA, F16C           | gemm_avx2.c, vec_avx2.c                   |
 *   | avx512      | MT_CPU_AVX512 | off      | AVX-512 F, BW, VL, DQ     | gemm_avx512.c (+ the AVX2 row helpers)    |
 *   | avx512-bf16 | MT_CPU_AVX512 | on       | AVX-512-BF16 as well      | gemm_avx512bf16.c: the GEMM (M > 16)      |
 *
 * Usage:
 *     for (int p = 0; p < CPU_PATHS; p++) {
 *         if (!cpu_path_enter(p, CPU_PATHS_ALL)) continue;     // not on this CPU (or not in the mask)
 *         ... the checks, at this path ...
 *     }
 *     cpu_paths_report("test_kernels", CPU_PATHS_ALL);
 *
 * cpu_path_enter checks that the dispatch table in effect is the path's own (and that the bf16 dot is on exactly on
 * avx512-bf16), so a path reported as run is the one the kernels took; MT_CPU and MT_BF16_DOT do not matter.
 * cpu_paths_report prints `NAME: paths run: ...; not on this CPU: ...` (then `; not used by this test: ...` for paths
 * that select no kernel the test calls) and fails the test when a path it uses and the CPU has did not run.
 */
#ifndef MT_CPU_PATHS_H
#define MT_CPU_PATHS_H

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tensor/cpu/cpu_int.h"

enum { CPU_PATH_SCALAR, CPU_PATH_AVX2, CPU_PATH_AVX512, CPU_PATH_AVX512_BF16, CPU_PATHS };

#define CPU_PATHS_ALL ((1u << CPU_PATHS) - 1)
/* For tests whose kernels the bf16 dot does not change (it only swaps the GEMM of linears). */
#define CPU_PATHS_NO_BF16 (CPU_PATHS_ALL & ~(1u << CPU_PATH_AVX512_BF16))

static const char *const cpu_path_names[CPU_PATHS] = {"scalar", "avx2", "avx512", "avx512-bf16"};
static bool cpu_path_ran[CPU_PATHS];

static inline bool cpu_path_on_cpu(int p) {
    if (p == CPU_PATH_AVX512_BF16) return mt_cpu_detect() >= MT_CPU_AVX512 && mt_cpu_has_avx512bf16();
    return (int)mt_cpu_detect() >= p;
}

/* Puts the kernels on path p; false, changing nothing, when p is not in the mask used or this CPU lacks it. */
static inline bool cpu_path_enter(int p, unsigned used) {
    static const mt_cpu_isa *const isa[CPU_PATHS] = {&mt_cpu_isa_scalar, &mt_cpu_isa_avx2, &mt_cpu_isa_avx512,
                                                     &mt_cpu_isa_avx512};
    if (!(used >> p & 1u) || !cpu_path_on_cpu(p)) return false;
    mt_cpu_level lv = p == CPU_PATH_AVX512_BF16 ? MT_CPU_AVX512 : (mt_cpu_level)p;
    mt_cpu_level got = mt_cpu_set_level(lv);
    bool bf16 = mt_cpu_set_bf16_dot(p == CPU_PATH_AVX512_BF16);
    bool ok = got == lv && mt_cpu_level_get() == lv && mt_cpu_isa_get() == isa[p] &&
              bf16 == (p == CPU_PATH_AVX512_BF16) && mt_cpu_bf16_dot_on() == bf16;
    CHECK_MSG(ok, "path %s did not take effect (level %s, table %s, bf16 dot %d)", cpu_path_names[p],
              mt_cpu_level_name(mt_cpu_level_get()), mt_cpu_isa_get()->name, (int)mt_cpu_bf16_dot_on());
    if (!ok) return false;
    if (!cpu_path_ran[p]) fprintf(stderr, "path %s\n", cpu_path_names[p]);
    cpu_path_ran[p] = true;
    return true;
}

/* Back to the best plain level, bf16 dot off: for the checks after the loop. */
static inline void cpu_path_leave(void) {
    mt_cpu_set_bf16_dot(false);
    mt_cpu_set_level(mt_cpu_detect());
}

static inline void cpu_paths_list(char *out, size_t cap, unsigned used, int kind) {
    out[0] = 0;
    for (int p = 0; p < CPU_PATHS; p++) {
        int k = !(used >> p & 1u) ? 2 : cpu_path_ran[p] ? 0 : 1;
        if (k != kind) continue;
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", n ? " " : "", cpu_path_names[p]);
    }
    if (!out[0] && kind != 2) snprintf(out, cap, "(none)");
}

/* The summary line on stderr; used is the mask of paths the test has kernels for. */
static inline void cpu_paths_report(const char *test, unsigned used) {
    char ran[64], missing[64], unused[64];
    cpu_paths_list(ran, sizeof ran, used, 0);
    cpu_paths_list(missing, sizeof missing, used, 1);
    cpu_paths_list(unused, sizeof unused, used, 2);
    fprintf(stderr, "%s: paths run: %s; not on this CPU: %s%s%s\n", test, ran, missing,
            unused[0] ? "; not used by this test: " : "", unused);
    for (int p = 0; p < CPU_PATHS; p++)
        CHECK_MSG(!(used >> p & 1u) || cpu_path_ran[p] || !cpu_path_on_cpu(p),
                  "%s: path %s is on this CPU but did not run", test, cpu_path_names[p]);
}

#endif
