/* train/optim: AdamW with fp32 moments, and global gradient-norm clipping.
 *
 * Usage (one optimizer step; `k` = optimizer steps already taken, see train/schedule.h):
 *     mt_adamw_config cfg = mt_adamw_config_default();
 *     cfg.n_groups = 2;  cfg.groups[0] = (mt_adamw_group){1e-5, 0.01};  cfg.groups[1] = (mt_adamw_group){2e-6, 0.01};
 *     mt_adamw *opt;  mt_adamw_new(params, n, &cfg, &opt, &err);
 *     ... forward, backward: params[i].grad filled ...
 *     double norm;  if (mt_grad_clip_norm(params, n, 1.0, pool, &norm, &err)) stop;      // NaN/Inf: stop the run
 *     mt_adamw_step(opt, mt_schedule_scale(&sched, k), pool);
 *
 * References: torch 1.13 torch/optim/adamw.py `_single_tensor_adamw` (foreach=False, amsgrad=False,
 * maximize=False) and torch/nn/utils/clip_grad.py `clip_grad_norm_` (norm_type 2). Per element, in float32 and
 * in torch's order, with the scalars formed in double and rounded to float as torch does with Python numbers:
 *
 *     t      += 1
 *     p      *= 1 - lr * wd                              (wd = the group's weight_decay, 0 when !param.decay)
 *     m       = m * beta1 + (1 - beta1) * g
 *     v       = v * beta2 + (1 - beta2) * g * g
 *     denom   = sqrt(v) / sqrt(1 - beta2^t) + eps
 *     p      += -(lr / (1 - beta1^t)) * m / denom
 *
 * A group's lr for a step is its base lr times the schedule's multiplier, exactly as torch's LambdaLR forms it.
 * torch's vector kernels fuse some multiply-adds, so results agree to about one float rounding per operation
 * (measured against torch: see tests/train/optim_ref.py), not bit for bit.
 *
 * Clipping: total = L2 norm of all gradients together, accumulated in double per chunk and summed in a fixed
 * order (the result does not depend on the thread count); coef = max_norm / (total + 1e-6) in float32 as torch
 * computes it; gradients are scaled only when coef < 1.
 *
 * Work is split into chunks of at most MT_OPTIM_CHUNK elements spread over the pool.
 *
 * Shapes: a parameter is n floats, row-major, of shape[0..ndim) (at most 4 dims, product = n).
 */
#ifndef MT_OPTIM_H
#define MT_OPTIM_H

#include "base/pool.h"

#define MT_OPTIM_MAX_GROUPS 8
#define MT_OPTIM_CHUNK ((int64_t)1 << 15)

/* One trainable tensor, as the trainer lays them out. name, data and grad are borrowed: they must outlive every
 * object built from the array. */
typedef struct mt_param {
    const char *name; /* unique; the checkpoint's tensor name */
    float *data;      /* (shape) fp32 master weights */
    float *grad;      /* (shape) fp32 gradient, same layout */
    int64_t n;        /* element count = product of shape */
    int64_t shape[4];
    int ndim;   /* 0..4 */
    int group;  /* index into mt_adamw_config.groups: learning rate and weight decay */
    bool decay; /* false: no weight decay (biases, norms), whatever the group says */
} mt_param;

typedef struct mt_adamw_group {
    double lr;           /* base learning rate; each step multiplies it by the schedule's lr_scale */
    double weight_decay; /* decoupled, as torch.optim.AdamW */
} mt_adamw_group;

typedef struct mt_adamw_config {
    double beta1, beta2, eps;
    int n_groups; /* 1..MT_OPTIM_MAX_GROUPS */
    mt_adamw_group groups[MT_OPTIM_MAX_GROUPS];
} mt_adamw_config;

/* torch.optim.AdamW's defaults: betas (0.9, 0.999), eps 1e-8, one group with lr 1e-3 and weight_decay 1e-2. */
mt_adamw_config mt_adamw_config_default(void);

typedef struct mt_adamw mt_adamw;

/* Copies the parameter table (names and buffers stay borrowed) and allocates zeroed moments, one allocation
 * each. MT_ERR_INVALID_ARG naming the parameter when: name, data or grad is NULL; ndim outside 0..4; a dim < 0;
 * the product of the dims is not n; group outside 0..n_groups-1; a config value out of range (betas in [0, 1),
 * eps >= 0, lr and weight_decay finite and >= 0). MT_ERR_NOMEM. On success the caller frees *out. */
mt_status mt_adamw_new(const mt_param *params, size_t n, const mt_adamw_config *cfg, mt_adamw **out, mt_err *err);
void mt_adamw_free(mt_adamw *opt);

/* One update of every parameter from its grad; group g uses lr = cfg.groups[g].lr * lr_scale. Cannot fail. */
void mt_adamw_step(mt_adamw *opt, double lr_scale, mt_pool *pool);

/* The lr group g used in the last step (its base lr before the first step). */
double mt_adamw_lr(const mt_adamw *opt, int group);
const mt_adamw_config *mt_adamw_get_config(const mt_adamw *opt);

/* State, for checkpoints. t = steps taken (torch's state["step"]). exp_avg / exp_avg_sq of parameter i have the
 * parameter's n elements. */
int64_t mt_adamw_t(const mt_adamw *opt);
size_t mt_adamw_count(const mt_adamw *opt);
const mt_param *mt_adamw_param(const mt_adamw *opt, size_t i);
const float *mt_adamw_exp_avg(const mt_adamw *opt, size_t i);
const float *mt_adamw_exp_avg_sq(const mt_adamw *opt, size_t i);
/* Restores what the getters above returned (copies the parameter's n elements of each). */
void mt_adamw_restore(mt_adamw *opt, size_t i, const float *exp_avg, const float *exp_avg_sq);
void mt_adamw_set_t(mt_adamw *opt, int64_t t);

/* L2 norm of all gradients together, in double, deterministic for any thread count. MT_ERR_NOMEM only. */
mt_status mt_grad_norm(const mt_param *params, size_t n, mt_pool *pool, double *norm, mt_err *err);

/* torch.nn.utils.clip_grad_norm_(params, max_norm): *norm gets the norm before clipping. When it is NaN or
 * infinite the gradients are left as they are and the result is MT_ERR_LIMIT naming the first parameter whose
 * gradient is not finite (the trainer stops; *norm is still set). max_norm <= 0 measures without clipping.
 * MT_ERR_NOMEM. */
mt_status mt_grad_clip_norm(const mt_param *params, size_t n, double max_norm, mt_pool *pool, double *norm,
                            mt_err *err);

#endif
