/* tools/bench_train_step: one training step of mitten's trainer on a fixed batch, timed by phase, with the work it
 * does - what `mitten bench --train` reports and bench/bench_train (with its PyTorch peer, bench_train_ref.py)
 * prints. A step is what src/train/trainer.c does for one batch: one forward and backward per sample, gradients
 * accumulating, then clip to norm 1 and AdamW (lr 1e-5, weight decay 0.01).
 *
 * Sample k (as bench_train_ref.py builds it): U user ids (masked), <|vision_start|>, the image's merged tokens,
 * <|vision_end|>, A assistant ids (supervised); text id i of sample k = (1000003 (k + 1) + 7919 i) mod
 * min(150000, V - 128) for a vocabulary of V.
 * Every sample carries the same image. full: every weight trained (f32 masters); lora: rank 16, alpha 32 on every
 * linear of the language model, the rest frozen in the checkpoint's dtype.
 *
 * Work counted (FLOPs, 2 per multiply-add): each matrix weight [rows, cols] times the rows it multiplies (patches
 * for the vision tower, merged units for the merger, tokens for the language model and the tied LM head): 2
 * forward, 2 more for the input gradient where one flows back, 2 more for the weight gradient where it trains; LoRA
 * adds its adapters the same way. Attention: 4 x width x (query, key) pairs forward, 8 x backward. Norms, RoPE,
 * activations, the loss and the optimizer are left out. "flop" counts the LM head's backward on every row, as a
 * framework without the zero-row skip does; "executed" only on the supervised rows (what mitten runs). */
#ifndef MT_TOOLS_BENCH_TRAIN_STEP_H
#define MT_TOOLS_BENCH_TRAIN_STEP_H

#include "base/pool.h"
#include "media/image.h"
#include "models/model.h"

typedef struct mt_train_bench_opts {
    const char *model;        /* a checkpoint folder (training needs its safetensors) */
    const char *image;        /* the picture's file, or NULL for `picture` */
    const mt_image *picture;  /* decoded pixels, when image is NULL */
    bool lora;
    int batch;                /* samples, at most MT_TRAIN_BENCH_MAX_BATCH */
    int64_t user, assistant;  /* ids per sample before and after the image */
} mt_train_bench_opts;

#define MT_TRAIN_BENCH_MAX_BATCH 64

typedef struct mt_train_bench_phases {
    double data, vision, lm, loss, backward, optimizer, total; /* seconds */
} mt_train_bench_phases;

typedef struct mt_train_bench_info {
    int64_t tokens, supervised, image_tokens; /* of the whole batch */
    size_t trained_params;
    double flop, executed; /* of one step (see above) */
    mt_dtype weights;
} mt_train_bench_info;

typedef struct mt_train_bench mt_train_bench;

/* Opens its own copy of the model (training attaches adapters and gradients to it) and builds the batch. */
mt_status mt_train_bench_open(const mt_train_bench_opts *o, mt_pool *pool, mt_train_bench **out, mt_err *err);
mt_status mt_train_bench_step(mt_train_bench *b, mt_train_bench_phases *ph, double *loss, mt_err *err);
mt_train_bench_info mt_train_bench_info_of(const mt_train_bench *b);
void mt_train_bench_close(mt_train_bench *b);

#endif
