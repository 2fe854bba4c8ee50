/* train/grpo: settings, and a completion's log-probabilities and gradient. */
#include "train/grpo.h"

#include "tensor/autograd.h"

mt_grpo_config mt_grpo_config_default(void) {
    return (mt_grpo_config){.group = 8, .max_new = 256, .temperature = 1, .top_p = 1, .scale_rewards = true,
                            .inner_steps = 1, .reward_timeout = 10,
                            .loss = {.type = MT_GRPO_LOSS_GRPO, .beta = 0.04, .eps_low = 0.2, .eps_high = 0.2}};
}

mt_status mt_grpo_rewards_make(const mt_grpo_config *c, mt_rewards **out, mt_err *err) {
    mt_rewards *set = mt_rewards_new();
    if (!set) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_status st = MT_OK;
    for (int i = 0; i < c->n_rewards && !st; i++) st = mt_rewards_add(set, c->rewards[i], err);
    if (st) {
        mt_rewards_free(set);
        return st;
    }
    mt_rewards_set_timeout(set, c->reward_timeout);
    *out = set;
    return MT_OK;
}

mt_status mt_grpo_config_check(const mt_grpo_config *c, mt_err *err) {
    if (c->n_rewards < 1)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "GRPO needs a reward: --reward answer, --reward regex=P, "
                          "--reward format, --reward json[=SCHEMA], --reward iou or --reward-cmd CMD");
    if (c->group < 2)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--group %d: a group needs at least 2 answers (the others are "
                          "each answer's baseline)", c->group);
    if (c->max_new < 1) return mt_err_set(err, MT_ERR_INVALID_ARG, "--max-new %lld: at least 1", (long long)c->max_new);
    if (c->inner_steps < 1)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--inner-steps %d: at least 1", c->inner_steps);
    if (!(c->loss.beta >= 0) || !(c->loss.eps_low >= 0 && c->loss.eps_low < 1) || !(c->loss.eps_high >= 0))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--beta %g, --epsilon %g, --epsilon-high %g: beta >= 0, "
                          "0 <= epsilon < 1, epsilon-high >= 0", c->loss.beta, c->loss.eps_low, c->loss.eps_high);
    if (!(c->reward_timeout > 0))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--reward-timeout %g: more than 0 seconds", c->reward_timeout);
    mt_rewards *set;
    mt_status st = mt_grpo_rewards_make(c, &set, err);
    if (!st) mt_rewards_free(set);
    return st;
}

mt_status mt_grpo_completion_run(const mt_model *m, mt_ctx *ctx, const mt_train_sample *s, int64_t len,
                                 const mt_grpo_opts *o, const mt_grpo_completion *in, double *logp, mt_grpo_sums *acc,
                                 mt_err *err) {
    mt_tensor *logits;
    const int32_t *targets;
    mt_status st = mt_train_sample_logits(m, ctx, s, &logits, &targets, err);
    if (st) return st;
    if (o && o->temperature > 0 && o->temperature != 1 &&
        !(logits = mt_op_scale(ctx, logits, (float)(1 / o->temperature))))
        return mt_err_set(err, ctx->status ? ctx->status : MT_ERR_INTERNAL, "%s", ctx->err.msg);
    if (logits->shape[0] != len)
        return mt_err_set(err, MT_ERR_INTERNAL, "a completion of %lld tokens supervised %lld rows", (long long)len,
                          (long long)logits->shape[0]);
    float *nll = mt_arena_alloc(ctx->arena, (size_t)len * sizeof *nll);
    float *w = mt_arena_alloc(ctx->arena, (size_t)len * sizeof *w);
    double *grad = mt_arena_alloc(ctx->arena, (size_t)len * sizeof *grad);
    if (!nll || !w || !grad)
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory for a %lld-token completion", (long long)len);
    for (int64_t t = 0; t < len; t++) w[t] = 0;
    /* the log-probabilities alone: no node on the tape */
    mt_tape *tape = ctx->tape;
    ctx->tape = NULL;
    mt_tensor *l = mt_op_cross_entropy_weighted(ctx, logits, targets, w, nll);
    ctx->tape = tape;
    if (!l) return mt_err_set(err, ctx->status ? ctx->status : MT_ERR_INTERNAL, "%s", ctx->err.msg);
    for (int64_t t = 0; t < len; t++) logp[t] = -(double)nll[t];
    if (!in || !tape) return MT_OK;
    mt_grpo_completion_loss(o, in->weight, in->adv, len, logp, in->old ? in->old : logp, in->ref, grad, acc);
    for (int64_t t = 0; t < len; t++) w[t] = (float)-grad[t];
    l = mt_op_cross_entropy_weighted(ctx, logits, targets, w, NULL);
    if (!l) return mt_err_set(err, ctx->status ? ctx->status : MT_ERR_INTERNAL, "%s", ctx->err.msg);
    if (l->requires_grad && mt_backward(ctx, l)) return mt_err_set(err, ctx->status, "backward: %s", ctx->err.msg);
    return MT_OK;
}
