/* train/grpo_loss: GRPO's objective on per-token log-probabilities, as DeepSeekMath (arXiv 2402.03300) defines it and
 * TRL's GRPOTrainer (_compute_loss) computes it, with the gradient with respect to each token's log-probability. The
 * trainer gets the model's gradient from that one number per token: d loss / d theta = sum_t g_t d logp_t / d theta,
 * so the backward is the SFT backward with g_t in place of the cross entropy's -1 / count.
 *
 * Per completion i of a batch (tokens t of its completion only; prompts and padding are not counted):
 *     ratio_t = exp(logp_t - old_t)                      old: the policy that sampled the rollouts (no gradient)
 *     clip_t  = clamp(ratio_t, 1 - eps_low, 1 + eps_high)
 *     kl_t    = exp(ref_t - logp_t) - (ref_t - logp_t) - 1       (the k3 estimator; ref: the reference policy)
 *     l_t     = -min(ratio_t * A_i, clip_t * A_i) + beta * kl_t
 * and the loss sums l_t over a batch of n completions of lengths len_i:
 *     | type    | loss                                      |
 *     |---------|-------------------------------------------|
 *     | grpo    | mean_i (sum_t l_t / max(len_i, 1))         |
 *     | bnpo    | sum_i,t l_t / max(sum_i len_i, 1)          |
 *     | dr_grpo | sum_i,t l_t / (n * max_completion_tokens)  |  (Dr. GRPO, arXiv 2503.20783)
 *
 * Advantages within each group of G completions of one prompt: A = r - mean(r), divided by (std(r) + 1e-4) when
 * scaled (std with Bessel's correction, as torch.std). A group whose rewards are all equal gets A = 0 everywhere: no
 * gradient from it but the KL term's, and never a NaN.
 */
#ifndef MT_TRAIN_GRPO_LOSS_H
#define MT_TRAIN_GRPO_LOSS_H

#include "base/base.h"

typedef enum { MT_GRPO_LOSS_GRPO, MT_GRPO_LOSS_BNPO, MT_GRPO_LOSS_DR_GRPO } mt_grpo_loss_type;

typedef struct {
    mt_grpo_loss_type type;
    double beta;                   /* KL weight; 0 leaves ref unread */
    double eps_low, eps_high;      /* the clip range (TRL: 0.2, 0.2) */
    int64_t max_completion_tokens; /* dr_grpo's constant normaliser */
    double temperature;            /* the sampling temperature: log-probabilities are of the logits divided by it,
                                      as TRL takes them (0 or 1: the logits as they are) */
} mt_grpo_opts;

typedef struct {
    double loss;
    double kl;        /* mean kl_t over the tokens (0 when beta is 0) */
    double clip_low;  /* share of tokens with ratio < 1 - eps_low and A < 0 */
    double clip_high; /* share with ratio > 1 + eps_high and A > 0 */
} mt_grpo_stats;

/* adv[n_groups * group] from rewards laid out group by group. group >= 2 (a group of one has no baseline). */
void mt_grpo_advantages(const double *rewards, int64_t n_groups, int64_t group, bool scale, double *adv);

/* Parses "grpo", "bnpo" or "dr_grpo". */
mt_status mt_grpo_loss_type_parse(const char *s, mt_grpo_loss_type *out, mt_err *err);

/* Sums over completions, for the per-completion form: the trainer knows n and the total tokens after the rollouts,
 * then runs one completion at a time. low, high: tokens clipped below and above; kl: sum of kl_t. */
typedef struct {
    double loss, kl, low, high;
    int64_t tokens;
} mt_grpo_sums;

/* The factor turning completion i's sum over its len tokens into its share of the loss of n completions of total
 * tokens (the table above). */
double mt_grpo_weight(const mt_grpo_opts *o, int64_t n, int64_t len, int64_t total);
/* One completion of len tokens with advantage a and weight w (mt_grpo_weight): grad[len] gets d loss / d logp_t,
 * acc adds its loss and counts (ref unread when beta is 0). */
void mt_grpo_completion_loss(const mt_grpo_opts *o, double w, double a, int64_t len, const double *logp,
                             const double *old, const double *ref, double *grad, mt_grpo_sums *acc);
/* The loss and metrics of the sums. */
void mt_grpo_stats_of(const mt_grpo_sums *acc, mt_grpo_stats *st);

/* Tokens of completion i are [off_i, off_i + len_i) in logp, old, ref and grad, with off_i the sum of the lengths
 * before it. grad[t] gets d loss / d logp_t; st the loss and its metrics. */
void mt_grpo_loss(const mt_grpo_opts *o, int64_t n, const int64_t *len, const double *adv, const double *logp,
                  const double *old, const double *ref, double *grad, mt_grpo_stats *st);

#endif
