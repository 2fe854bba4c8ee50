/* train/schedule: learning-rate multipliers as a function of the optimizer step, as transformers defines them.
 *
 * Usage (the trainer's loop; k = optimizer steps already taken, 0 for the first update):
 *     mt_schedule sched = mt_schedule_make(MT_SCHED_COSINE, mt_schedule_warmup_steps(0.03, total), total);
 *     for (k = 0; k < total; k++) { ...; mt_adamw_step(opt, mt_schedule_scale(&sched, k), pool); }
 *
 * Reference: transformers src/transformers/optimization.py, the lr_lambda of get_constant_schedule,
 * get_constant_schedule_with_warmup, get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup and
 * get_cosine_with_min_lr_schedule_with_warmup, driven by torch.optim.lr_scheduler.LambdaLR (lr = base_lr *
 * lambda(k)). As in the HF Trainer, the k-th update uses lambda(k), so with warmup the very first update has lr 0.
 * Every formula is evaluated in double in the reference's order, so the lr is the reference's to the last bit.
 *
 *     | kind             | k < W        | k >= W (p = (k - W) / max(1, T - W))                     |
 *     | ---------------- | ------------ | -------------------------------------------------------- |
 *     | constant         | 1            | 1                                                        |
 *     | constant_warmup  | k / max(1,W) | 1                                                        |
 *     | linear           | k / max(1,W) | max(0, (T - k) / max(1, T - W))                          |
 *     | cosine           | k / max(1,W) | max(0, f * (1 - r) + r), f = 0.5 (1 + cos(pi c 2 p))     |
 *
 * W = warmup_steps, T = total_steps, c = num_cycles (0.5: one half cosine down to 0), r = min_lr_rate (0 for
 * plain cosine).
 */
#ifndef MT_SCHEDULE_H
#define MT_SCHEDULE_H

#include "base/base.h"

typedef enum mt_sched_kind {
    MT_SCHED_CONSTANT = 0,
    MT_SCHED_CONSTANT_WARMUP,
    MT_SCHED_LINEAR,
    MT_SCHED_COSINE,
} mt_sched_kind;

typedef struct mt_schedule {
    mt_sched_kind kind;
    int64_t warmup_steps; /* W >= 0 */
    int64_t total_steps;  /* T >= 0 */
    double num_cycles;    /* cosine only */
    double min_lr_rate;   /* cosine only; 0..1 */
} mt_schedule;

/* num_cycles 0.5, min_lr_rate 0 (transformers' defaults). */
mt_schedule mt_schedule_make(mt_sched_kind kind, int64_t warmup_steps, int64_t total_steps);

/* The lr multiplier for the update that follows k completed updates (k >= 0). */
double mt_schedule_scale(const mt_schedule *s, int64_t k);

/* transformers' TrainingArguments.get_warmup_steps: warmup >= 1 is a step count (truncated), below 1 a ratio of
 * total_steps rounded up. Negative or NaN gives 0. */
int64_t mt_schedule_warmup_steps(double warmup, int64_t total_steps);

/* "constant", "constant_with_warmup", "linear", "cosine" (transformers' SchedulerType names). MT_ERR_INVALID_ARG
 * listing the choices otherwise. */
mt_status mt_schedule_parse_kind(const char *name, mt_sched_kind *out, mt_err *err);
const char *mt_schedule_kind_name(mt_sched_kind kind);

#endif
