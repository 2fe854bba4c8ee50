/* tensor/cpu/roofline: what this machine can do at best, measured, so benchmarks can report a share of it.
 *
 *   | field       | measured by                                                                  |
 *   |-------------|------------------------------------------------------------------------------|
 *   | f32_gflops  | independent FMA chains in registers, best ISA level in effect, every thread  |
 *   | bf16_gflops | vdpbf16ps chains where AVX-512-BF16 exists, else the f32 figure              |
 *   | read_gbs    | summing a buffer far larger than the caches, split over every thread         |
 *
 *     mt_roofline r;
 *     if (mt_roofline_measure(pool, 0, &r, &err) == MT_OK) printf("%.1f GFLOP/s\n", r.f32_gflops);
 *
 * Each figure is the best of three runs. Takes about half a second plus the time to fill the buffer.
 */
#ifndef MT_ROOFLINE_H
#define MT_ROOFLINE_H

#include "tensor/cpu/cpu.h"

typedef struct mt_roofline {
    int threads;       /* mt_pool_threads(pool) */
    const char *isa;   /* level the figures were measured with */
    double f32_gflops; /* 2 flops per FMA lane */
    double bf16_gflops;
    bool bf16_native;  /* false: bf16_gflops is the f32 figure */
    double read_gbs;   /* 1e9 bytes per second */
} mt_roofline;

/* buf_bytes: size of the bandwidth buffer (0 picks 256 MiB). Fails with MT_ERR_NOMEM when it cannot be had. */
mt_status mt_roofline_measure(mt_pool *pool, size_t buf_bytes, mt_roofline *out, mt_err *err);

#endif
