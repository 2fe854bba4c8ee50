/* train/trainer: a whole supervised fine-tuning run - data, labels, trainables, AdamW, schedule, checkpoints,
 * resume and the final model - as `mitten train` drives it.
 *
 * A step takes `batch` samples of the epoch's shuffled order (a pure function of seed and epoch), runs them one by
 * one with the tape on, adding gradients, and then clips and updates. The loss of each sample is divided by the
 * supervised tokens of the whole step, so the step's loss is the mean over its tokens however it is split. The
 * step number alone locates the data (epoch = step / steps_per_epoch), and dropout masks are functions of the
 * step, so resuming from checkpoint-STEP replays exactly what an uninterrupted run would have done.
 *
 * OUT/ holds train_args.json (the options, for --resume), checkpoint-STEP/ folders, loss.svg, and at the end
 * model/ (an HF folder) and, with LoRA, adapter/ (PEFT). A new run needs OUT new or empty (overwrite_output_dir
 * writes into a used one); nothing is written before the model and data loaded; a run removes only what it wrote
 * (train/run_dir.h, train/checkpoint.h).
 *
 * DPO (method MT_TRAIN_DPO): the data are preference pairs (train/dataset.h), each loaded as its chosen and its
 * rejected side, supervising the last turn (the answer) only; a step takes `batch` pairs. Before step 1 one pass
 * over every pair with the initial weights (with LoRA: the base, as the adapter starts at B = 0) gives the
 * reference log-probabilities, kept in OUT/ref_logps.json and read back on resume, so the reference costs one
 * forward per answer per run and no second copy of the weights. Each step logs the rewards, margin and accuracy,
 * and trainer_state.json keeps them per step ("dpo_history").
 *
 * GRPO (method MT_TRAIN_GRPO): the data are prompts (train/dataset.h), a step takes `batch` of them. Each step: G
 * rollouts per prompt through a new scheduler on the weights being trained (train/rollout.h), seeded from (seed,
 * step); their text scored by the rewards (train/reward.h); advantages per group; with beta > 0 the reference
 * log-probabilities (mt_trainable_use_base: the checkpoint's own weights, no copy); with inner_steps > 1 the
 * sampling policy's; then inner_steps updates over all completions (train/grpo.h), each with its own learning rate
 * (the schedule counts updates). trainer_state.json keeps the metrics per step ("grpo_history"); log_completions
 * appends completions to OUT/completions.jsonl. Prompts are split over the processes, each generating for its own.
 *
 * Resume: the options come from train_args.json, whose paths are absolute and which records the run's id and a
 * fingerprint of each data file. Only epochs, max_steps, threads, log_every, save_every, save_minutes and keep may
 * change (more steps re-plan the learning-rate schedule from the new total); a changed data file is refused unless
 * allow_data_change; a checkpoint beyond the run's steps is refused.
 */
#ifndef MT_TRAIN_TRAINER_H
#define MT_TRAIN_TRAINER_H

#include "train/dpo.h"
#include "train/grpo.h"
#include "train/schedule.h"
#include "train/trainable.h"

typedef enum mt_train_method {
    MT_TRAIN_SFT = 0, /* supervised fine-tuning on conversations */
    MT_TRAIN_DPO,     /* direct preference optimisation on pairs (train/dpo.h) */
    MT_TRAIN_GRPO     /* group relative policy optimisation on prompts, with the engine's rollouts (train/grpo.h) */
} mt_train_method;

typedef struct mt_train_opts {
    mt_train_method method;
    mt_dpo_config dpo;       /* with MT_TRAIN_DPO */
    mt_grpo_config grpo;     /* with MT_TRAIN_GRPO */
    const char *model_dir, *data_path, *image_dir, *out_dir, *eval_path;
    mt_train_spec spec;
    int epochs;
    int64_t max_steps;       /* stop after this many steps (0: epochs decide) */
    int batch;               /* samples per optimizer step (all processes together) */
    double lr, vision_lr, projector_lr; /* vision/projector <= 0: lr */
    double weight_decay, warmup, max_grad_norm;
    mt_sched_kind schedule;
    int64_t max_len;
    /* how videos are sampled (fps, max_frames, max_pixels; 0: qwen-vl-utils' defaults): part of the run's settings,
     * so a resumed run decodes the same frames */
    mt_video_params video;
    bool last_turn_only, strict;
    int64_t save_every, log_every, eval_every;
    int64_t eval_tokens;     /* exact-match answers on the eval data get this many new tokens (0: loss only) */
    double save_minutes;     /* also save when this long has passed since the last save (0: steps decide) */
    int keep;
    uint64_t seed;
    int threads;
    bool overwrite_output_dir; /* a new run may write into a non-empty out_dir */
    bool allow_data_change;    /* resume: train on data that changed since the run started */
    const char *run_id;        /* set by the run (train_args.json); NULL for a new run */
    const char *data_fingerprint, *eval_fingerprint; /* recorded by the run; NULL for a new run */
} mt_train_opts;

mt_train_opts mt_train_opts_default(void);

/* Runs (or, with resume, continues from OUT/'s newest checkpoint with OUT/train_args.json's options). */
mt_status mt_train_run(const mt_train_opts *opts, bool resume, mt_err *err);

/* The options a run in out_dir was started with; strings point into *json (the caller deletes it). */
mt_status mt_train_opts_load(const char *out_dir, mt_train_opts *opts, cJSON **json, mt_err *err);

#endif
