/* nn/moe: routing and the expert loop (see moe.h). */
#include "nn/moe.h"

mt_tensor *mt_nn_moe(mt_ctx *ctx, const mt_moe *moe, const mt_tensor *x, int64_t *chosen) {
    (void)moe;
    (void)x;
    (void)chosen;
    return mt_ctx_fail(ctx, MT_ERR_UNSUPPORTED, "mixture-of-experts layers are not built yet");
}
