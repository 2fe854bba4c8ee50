/* train/step: one sample's forward pass, loss and backward through the model's shared assembly - the same forward
 * the engine runs for inference, with the autograd tape on.
 *
 *   ids + images -> mt_model_assemble (embeddings, image features, DeepStack injections) -> forward (no KV memory)
 *   -> logits of the supervised rows -> cross-entropy against labels shifted by one -> backward
 *
 * Shape legend: N tokens of the sample, H hidden size, V vocabulary.
 */
#ifndef MT_TRAIN_STEP_H
#define MT_TRAIN_STEP_H

#include "models/model.h"

typedef struct mt_train_sample {
    const int32_t *ids;    /* [N], image placeholders already expanded */
    const int32_t *labels; /* [N], unshifted (labels[i] is the token expected at i), negative = ignored */
    int64_t n;
    const float *const *pixels;    /* per image [n_patches, P] as the model's processor makes them */
    const int64_t *n_patches;
    const mt_image_grid *grids;
    const mt_image_input *inputs; /* NULL, or [n_images] whole inputs (videos among them) in place of the arrays above */
    int n_images;
} mt_train_sample;

/* Seconds spent in each phase of one sample, added to by mt_train_sample_run_timed (wall clock; every kernel
 * returns before the next phase starts, so the split is exact). */
typedef struct mt_train_timing {
    double vision;   /* token embeddings + the vision tower per image + scatter into the image rows */
    double lm;       /* language model forward to the logits of every row */
    double loss;     /* cross-entropy over the vocabulary */
    double backward; /* the tape walked back: language model, then the vision tower when it trains */
} mt_train_timing;

/* Runs the sample and sets *loss = inv_norm * (sum of the token losses it supervises). With ctx->tape set, also
 * adds the gradient of that loss into every tensor that requires one (the trainable parameters). The caller resets
 * ctx->tape and ctx->arena afterwards; pixels must stay alive until then. */
mt_status mt_train_sample_run(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, float inv_norm, double *loss,
                              mt_err *err);
/* The same, adding each phase's seconds into *timing (NULL: not timed). */
mt_status mt_train_sample_run_timed(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, float inv_norm,
                                    double *loss, mt_train_timing *timing, mt_err *err);

/* The forward alone, tape or not: *nll [1, 1] = the sum of the token losses the sample supervises (minus its answer's
 * log-probability), for losses built from several samples (DPO). MT_ERR_INVALID_ARG when it supervises none. */
mt_status mt_train_sample_nll(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, mt_tensor **nll,
                              mt_err *err);

/* The forward alone to the logits [R, V] of the R rows that have a target (the rows before each supervised token,
 * in order) and those targets [R] (arena memory), for losses built from each token's log-probability (GRPO: with
 * mt_op_cross_entropy_weighted). MT_ERR_INVALID_ARG when the sample supervises none. */
mt_status mt_train_sample_logits(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, mt_tensor **logits,
                                 const int32_t **targets, mt_err *err);

/* Supervised tokens of a sample: labels[i] >= 0 for i >= 1 (the first label has no logits before it). */
int64_t mt_train_sample_supervised(const int32_t *labels, int64_t n);

#endif
