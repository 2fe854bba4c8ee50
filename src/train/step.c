/* train/step: a sample through the model's assembly and forward, then the loss. */
#include "train/step.h"

#include "models/assemble.h"
#include "tensor/autograd.h"

int64_t mt_train_sample_supervised(const int32_t *labels, int64_t n) {
    int64_t k = 0;
    for (int64_t i = 1; i < n; i++) k += labels[i] >= 0;
    return k;
}

/* Seconds since *t0 added into *acc (when timing), and *t0 moved to now. */
static void lap(double *acc, double *t0) {
    double now = mt_time_now();
    *acc += now - *t0;
    *t0 = now;
}

/* Forward to the logits of the supervised rows; *logits NULL when nothing is supervised. */
static mt_status forward_logits(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, mt_train_timing *tm,
                                mt_tensor **logits_out, const int32_t **targets_out, mt_err *err) {
    *logits_out = NULL;
    if (s->n < 2) return mt_err_set(err, MT_ERR_INVALID_ARG, "a training sample needs at least 2 tokens");
    int64_t *pos = mt_arena_alloc(ctx->arena, (size_t)(m->desc.pos_axes * s->n) * sizeof *pos), next;
    int32_t *targets = mt_arena_alloc(ctx->arena, (size_t)s->n * sizeof *targets);
    mt_image_input *images = mt_arena_alloc(ctx->arena, (size_t)(s->n_images + 1) * sizeof *images);
    if (!pos || !targets || !images)
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory for a %lld-token sample", (long long)s->n);
    for (int i = 0; i < s->n_images; i++)
        images[i] = s->inputs ? s->inputs[i]
                              : (mt_image_input){.pixels = s->pixels[i], .n_patches = s->n_patches[i], .grid = s->grids[i]};
    mt_status st = mt_model_positions(m, s->ids, s->n, images, s->n_images, 0, pos, &next, err);
    if (st) return st;
    for (int64_t i = 0; i + 1 < s->n; i++) targets[i] = s->labels[i + 1] < 0 ? -1 : s->labels[i + 1];
    targets[s->n - 1] = -1;
    double t0 = mt_time_now();
    mt_batch b;
    if ((st = mt_model_assemble(m, ctx, s->ids, s->n, images, s->n_images, pos, NULL, &b, err))) return st;
    lap(&tm->vision, &t0);
    /* logits only of the rows that have a target: image and prompt rows need none, and the LM head is the widest
     * matrix of the model */
    int64_t *rows = mt_arena_alloc(ctx->arena, (size_t)s->n * sizeof *rows), n_rows = 0;
    if (!rows) return mt_err_set(err, MT_ERR_NOMEM, "out of memory for a %lld-token sample", (long long)s->n);
    for (int64_t i = 0; i < s->n; i++)
        if (targets[i] >= 0) {
            rows[n_rows] = i;
            targets[n_rows++] = targets[i];
        }
    mt_tensor *h = mt_model_forward(m, ctx, NULL, &b, NULL);
    mt_tensor *logits = n_rows ? mt_model_logits(m, ctx, h, rows, n_rows) : NULL;
    lap(&tm->lm, &t0);
    if (!h || (n_rows && !logits))
        return mt_err_set(err, ctx->status ? ctx->status : MT_ERR_INTERNAL, "%s", ctx->err.msg);
    *logits_out = logits;
    *targets_out = targets;
    return MT_OK; /* nothing supervised: no logits and no gradient, but the forward ran (and was checked) */
}

mt_status mt_train_sample_logits(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, mt_tensor **logits,
                                 const int32_t **targets, mt_err *err) {
    mt_train_timing unused = {0};
    mt_status st = forward_logits(m, ctx, s, &unused, logits, targets, err);
    if (!st && !*logits) st = mt_err_set(err, MT_ERR_INVALID_ARG, "the sample supervises no token");
    return st;
}

/* Forward and loss; *out gets the loss tensor, or NULL when nothing is supervised. */
static mt_status forward_loss(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, float inv_norm,
                              mt_train_timing *tm, mt_tensor **out, mt_err *err) {
    *out = NULL;
    mt_tensor *logits;
    const int32_t *targets;
    mt_status st = forward_logits(m, ctx, s, tm, &logits, &targets, err);
    if (st || !logits) return st;
    double t0 = mt_time_now();
    mt_tensor *l = mt_op_cross_entropy(ctx, logits, targets, inv_norm);
    lap(&tm->loss, &t0);
    if (!l) return mt_err_set(err, ctx->status ? ctx->status : MT_ERR_INTERNAL, "%s", ctx->err.msg);
    *out = l;
    return MT_OK;
}

mt_status mt_train_sample_nll(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, mt_tensor **nll,
                              mt_err *err) {
    mt_train_timing unused = {0};
    mt_status st = forward_loss(m, ctx, s, 1.0f, &unused, nll, err);
    if (!st && !*nll) st = mt_err_set(err, MT_ERR_INVALID_ARG, "the sample supervises no token");
    return st;
}

mt_status mt_train_sample_run_timed(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, float inv_norm,
                                    double *loss, mt_train_timing *timing, mt_err *err) {
    mt_train_timing unused = {0};
    mt_train_timing *tm = timing ? timing : &unused;
    mt_tensor *l;
    mt_status st = forward_loss(m, ctx, s, inv_norm, tm, &l, err);
    if (st) return st;
    *loss = l ? mt_f32(l)[0] : 0.0;
    if (!l) return MT_OK;
    double t0 = mt_time_now();
    if (ctx->tape && l->requires_grad && mt_backward(ctx, l))
        return mt_err_set(err, ctx->status, "backward: %s", ctx->err.msg);
    lap(&tm->backward, &t0);
    return MT_OK;
}

mt_status mt_train_sample_run(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, float inv_norm, double *loss,
                              mt_err *err) {
    return mt_train_sample_run_timed(m, ctx, s, inv_norm, loss, NULL, err);
}
