/* tensor/backend: the CPU backend's table (the kernels of tensor/cpu) and the op-side helpers that pick a backend. */
#include "tensor/backend.h"

#include "tensor/tensor.h"

const mt_backend mt_backend_cpu = {
    .name = "cpu",
    .device = MT_DEVICE_CPU,
    .linear = mt_cpu_linear,
    .matmul = mt_cpu_matmul,
    .attention = mt_cpu_attention,
    .attention_backward = mt_cpu_attention_backward,
    .gated_linear = mt_cpu_gated_linear,
};

const char *mt_device_name(mt_device d) { return d == MT_DEVICE_CPU ? "cpu" : d == MT_DEVICE_CUDA ? "cuda" : "?"; }

const mt_backend *mt_ctx_backend(const mt_ctx *ctx) { return ctx->backend ? ctx->backend : &mt_backend_cpu; }

mt_tensor *mt_need_device(mt_ctx *ctx, const mt_tensor *x, const char *op) {
    const mt_backend *be = mt_ctx_backend(ctx);
    if (x && (mt_device)x->device != be->device)
        return mt_ctx_fail(ctx, MT_ERR_UNSUPPORTED, "%s: a tensor on %s given to the %s backend", op,
                           mt_device_name((mt_device)x->device), be->name);
    return (mt_tensor *)x;
}

mt_tensor *mt_need_host(mt_ctx *ctx, const mt_tensor *x, const char *op) {
    if (x && (mt_device)x->device != MT_DEVICE_CPU)
        return mt_ctx_fail(ctx, MT_ERR_UNSUPPORTED, "%s has no kernel for tensors on %s yet", op,
                           mt_device_name((mt_device)x->device));
    return (mt_tensor *)x;
}
