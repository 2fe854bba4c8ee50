/* train/grpo: GRPO's settings and the forward (and backward) of one rollout completion. The run itself (rollouts,
 * rewards, advantages, the reference and old passes, the updates) is the trainer's (trainer.h).
 *
 * A completion trains as a sample whose ids are its prompt's then its own tokens, the completion supervised: the
 * logits of its rows give logp_t = -nll_t (mt_op_cross_entropy_weighted with the tape off), the loss of
 * grpo_loss.h gives g_t = d loss / d logp_t, and the weighted cross entropy with w_t = -g_t, on the same logits and
 * with the tape on, back-propagates exactly sum_t g_t d logp_t / d theta: one forward per completion and update.
 */
#ifndef MT_TRAIN_GRPO_H
#define MT_TRAIN_GRPO_H

#include "train/grpo_loss.h"
#include "train/reward.h"
#include "train/step.h"

typedef struct mt_grpo_config {
    int group;              /* G answers per prompt (default 8) */
    int64_t max_new;        /* tokens per answer at most (default 256) */
    double temperature;     /* default 1 */
    double top_p;           /* default 1 */
    mt_grpo_opts loss;      /* type (grpo), beta (0.04), eps_low and eps_high (0.2); max_completion_tokens = max_new,
                               temperature = temperature (set by the trainer) */
    bool scale_rewards;     /* divide by the group's std (default true: --scale-rewards group) */
    int inner_steps;        /* optimizer updates per batch of rollouts (default 1) */
    int log_completions;    /* completions per step written to OUT/completions.jsonl (default 0) */
    const char *rewards[MT_REWARD_MAX_TERMS]; /* term specs (reward.h) */
    int n_rewards;
    double reward_timeout;  /* seconds per cmd run (default 10) */
} mt_grpo_config;

mt_grpo_config mt_grpo_config_default(void);
/* The settings make sense together: at least one reward (each spec parses), group >= 2, max_new >= 1, ... */
mt_status mt_grpo_config_check(const mt_grpo_config *c, mt_err *err);
/* The reward set of c (mt_rewards_free). */
mt_status mt_grpo_rewards_make(const mt_grpo_config *c, mt_rewards **out, mt_err *err);

/* What one completion's loss needs; old NULL: the current policy detached (ratio 1). */
typedef struct mt_grpo_completion {
    double weight, adv;
    const double *old, *ref; /* [len]; ref unread when beta is 0 */
} mt_grpo_completion;

/* s supervises the completion's len tokens. logp[len] gets their log-probabilities (of the logits divided by
 * o->temperature; o NULL: as they are). With in and ctx->tape: the completion's loss added into acc and its gradient
 * into the trainable parameters (o then required). */
mt_status mt_grpo_completion_run(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, int64_t len,
                                 const mt_grpo_opts *o, const mt_grpo_completion *in, double *logp, mt_grpo_sums *acc,
                                 mt_err *err);

#endif
