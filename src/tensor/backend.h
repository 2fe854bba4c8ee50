/* tensor/backend: where tensors live and which kernels compute on them.
 *
 * A tensor's `device` names its storage (the CPU today). The heavy kernels - the products and fused attention that
 * hold nearly all of a model's work - are reached through an mt_backend table, chosen per op context
 * (mt_ctx.backend, NULL = the CPU). The CPU backend is the reference every other backend is tested against. The
 * row-wise ops (norms, activations, rotary, gathers) are written for host memory and refuse a tensor stored elsewhere
 * (mt_need_host) until a backend provides them: a CUDA backend adds its kernels here and the ops that lack one fail
 * with a message naming the op, never silently reading device memory. docs/DESIGN.md says how a CUDA backend plugs
 * in.
 */
#ifndef MT_BACKEND_H
#define MT_BACKEND_H

#include "base/pool.h"
#include "tensor/cpu/cpu.h"

typedef enum mt_device { MT_DEVICE_CPU = 0, MT_DEVICE_CUDA } mt_device;

typedef struct mt_backend {
    const char *name;
    mt_device device;
    /* The signatures and contracts of the mt_cpu_* kernels of tensor/cpu/cpu.h, on this backend's memory. */
    void (*linear)(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                   mt_dtype wt, int64_t ldw, const float *bias, float *C, int64_t ldc, bool accumulate);
    void (*matmul)(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa,
                   const void *B, mt_dtype bt, int64_t rsb, int64_t csb, float *C, int64_t ldc, bool accumulate);
    void (*attention)(mt_pool *pool, const mt_attn_args *a);
    void (*attention_backward)(mt_pool *pool, const mt_attn_args *a, const mt_attn_grad *g);
    /* last, so a table that predates it leaves it NULL; NULL, or a false return: mt_op_gated_linear runs the two
     * linears instead */
    bool (*gated_linear)(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const void *Wg,
                         const void *Wu, mt_dtype wt, int64_t ldw, const float *bg, const float *bu, mt_cpu_gate_fn fn,
                         const void *arg, float *C, int64_t ldc);
} mt_backend;

extern const mt_backend mt_backend_cpu;

const char *mt_device_name(mt_device d);

#endif
