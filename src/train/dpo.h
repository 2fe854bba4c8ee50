/* train/dpo: direct preference optimisation - the losses of TRL's DPOTrainer over a pair's answer log-probabilities,
 * one pair's forward and backward through the shared training forward, pairing the two sides of a data set, and
 * the reference log-probabilities a run keeps.
 *
 * Per pair, with pc, pr the policy's log-probabilities of the chosen and rejected answers (the sums over the answer
 * tokens labels.c supervises; for ipo their means over those tokens, as TRL's concatenated_forward divides for
 * ipo) and rc, rr the reference's, h = (pc - rc) - (pr - rr):
 *
 *   | --loss  | per-pair loss (TRL's dpo_loss)                                      | label smoothing |
 *   |---------|---------------------------------------------------------------------|-----------------|
 *   | sigmoid | -(1 - ls) * logsigmoid(beta * h) - ls * logsigmoid(-beta * h)       | ls in [0, 0.5)  |
 *   | ipo     | (h - 1 / (2 * beta))^2                                              | refused         |
 *   | hinge   | relu(1 - beta * h)                                                  | refused         |
 *
 * A step's loss is the mean over its pairs, plus sft_weight times the mean token NLL of the chosen answers of the
 * step (TRL's rpo_alpha * nll_loss: the SFT part of MPO and RPO). Logged as TRL logs them: rewards chosen / rejected
 * = beta * (pc - rc), beta * (pr - rr); margin = their difference; accuracy = share of pairs whose chosen reward is
 * above the rejected one.
 *
 * Gradient. The loss is a function of the two sums, which the forward computes one sample at a time: both answers'
 * forwards stay on one tape, their NLLs known, then one backward of a*nll_c + b*nll_r with a, b the loss's
 * derivatives at those values (detached). That is the loss's exact gradient, with one forward per answer.
 */
#ifndef MT_TRAIN_DPO_H
#define MT_TRAIN_DPO_H

#include "train/prepare.h"
#include "train/step.h"

typedef enum mt_dpo_loss_kind { MT_DPO_SIGMOID = 0, MT_DPO_IPO, MT_DPO_HINGE } mt_dpo_loss_kind;

typedef struct mt_dpo_config {
    mt_dpo_loss_kind loss;
    double beta;            /* default 0.1 */
    double label_smoothing; /* sigmoid only; default 0 */
    double sft_weight;      /* default 0 */
} mt_dpo_config;

mt_dpo_config mt_dpo_config_default(void);
/* "sigmoid", "ipo", "hinge"; MT_ERR_INVALID_ARG naming the value otherwise. */
mt_status mt_dpo_loss_parse(const char *name, mt_dpo_loss_kind *out, mt_err *err);
const char *mt_dpo_loss_name(mt_dpo_loss_kind k);
/* beta > 0, label smoothing in [0, 0.5) and only with sigmoid, sft_weight >= 0: else MT_ERR_INVALID_ARG. */
mt_status mt_dpo_config_check(const mt_dpo_config *c, mt_err *err);

/* One pair's numbers. logp and ref are sums over the answer tokens; n_tokens their counts. */
typedef struct mt_dpo_pair_in {
    double logp[2]; /* policy: chosen, rejected */
    double ref[2];
    int64_t n_tokens[2];
} mt_dpo_pair_in;

typedef struct mt_dpo_pair_out {
    double loss;      /* the pair's DPO loss (without the SFT part) */
    double dlogp[2];  /* d loss / d logp (the sums) */
    double reward[2]; /* beta * (policy - reference), chosen and rejected */
} mt_dpo_pair_out;

void mt_dpo_pair_loss(const mt_dpo_config *c, const mt_dpo_pair_in *in, mt_dpo_pair_out *out);

/* Runs a pair (pair[0] chosen, pair[1] rejected) under the model: sets in->logp and *out. With ctx->tape, also adds
 * the gradient of inv_pairs * loss + sft_weight * inv_chosen_tokens * (the chosen answer's NLL sum) into every
 * trained tensor. ref [2] and the token counts come from the caller. The caller resets ctx->tape and ctx->arena. */
mt_status mt_dpo_pair_run(const mt_model *m, mt_ctx *ctx, const mt_train_sample *const pair[2], const mt_dpo_config *c,
                          double inv_pairs, double inv_chosen_tokens, mt_dpo_pair_in *in, mt_dpo_pair_out *out,
                          mt_err *err);

/* Keeps the pairs both sides prepared, so that chosen->samples[i] and rejected->samples[i] are the two sides of
 * one pair (matched by line), dropping (and freeing) a side whose other side was skipped. A pair whose two sides are
 * the same tokens teaches nothing (its h is 0 whatever the weights: no gradient from the DPO loss): it is skipped
 * with a warning naming path:line, or with strict fails with MT_ERR_INVALID_ARG. *identical counts those skipped. */
mt_status mt_dpo_pair_up(mt_prepared *chosen, mt_prepared *rejected, const char *path, bool strict, size_t *identical,
                         mt_err *err);

/* OUT/ref_logps.json: the reference log-probability sums of every pair (the trainer's training pairs, then its eval
 * pairs), computed once with the initial weights before step 1 and read back on resume:
 * {"run_id", "pairs": N, "chosen": [N], "rejected": [N]}, numbers written to round-trip exactly. */
mt_status mt_dpo_ref_save(const char *out_dir, const char *run_id, const double *ref, size_t n_pairs, mt_err *err);
/* *found false (and MT_OK) when there is no file; MT_ERR_FORMAT naming the file when it is of another run or
 * another number of pairs. ref [2 * n_pairs]: chosen, rejected per pair. */
mt_status mt_dpo_ref_load(const char *out_dir, const char *run_id, double *ref, size_t n_pairs, bool *found,
                          mt_err *err);

#endif
