/* train/grpo_loss: the objective grpo_loss.h writes out, and its derivative per token. */
#include <math.h>
#include <string.h>

#include "train/grpo_loss.h"

void mt_grpo_advantages(const double *r, int64_t n_groups, int64_t g, bool scale, double *adv) {
    for (int64_t k = 0; k < n_groups; k++) {
        const double *x = r + k * g;
        double mean = 0, ss = 0;
        for (int64_t i = 0; i < g; i++) mean += x[i];
        mean /= (double)g;
        for (int64_t i = 0; i < g; i++) ss += (x[i] - mean) * (x[i] - mean);
        double div = scale ? sqrt(ss / (double)(g - 1)) + 1e-4 : 1;
        for (int64_t i = 0; i < g; i++) adv[k * g + i] = (x[i] - mean) / div;
    }
}

mt_status mt_grpo_loss_type_parse(const char *s, mt_grpo_loss_type *out, mt_err *err) {
    static const char *const names[] = {"grpo", "bnpo", "dr_grpo"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (mt_grpo_loss_type)i;
            return MT_OK;
        }
    return mt_err_set(err, MT_ERR_INVALID_ARG, "--loss-type \"%s\": expected grpo, dr_grpo or bnpo", s);
}

double mt_grpo_weight(const mt_grpo_opts *o, int64_t n, int64_t len, int64_t total) {
    return o->type == MT_GRPO_LOSS_GRPO   ? 1.0 / ((double)n * (double)MT_MAX(len, 1))
           : o->type == MT_GRPO_LOSS_BNPO ? 1.0 / (double)MT_MAX(total, 1)
                                          : 1.0 / ((double)n * (double)o->max_completion_tokens);
}

void mt_grpo_completion_loss(const mt_grpo_opts *o, double w, double a, int64_t len, const double *logp,
                             const double *old, const double *ref, double *grad, mt_grpo_sums *acc) {
    for (int64_t t = 0; t < len; t++) {
        double ratio = exp(logp[t] - old[t]);
        double clip = fmin(fmax(ratio, 1 - o->eps_low), 1 + o->eps_high);
        /* min(ratio A, clip A) takes the clipped term only where clipping lowers the objective; there it is a
         * constant (ratio outside the range), so the gradient is that of ratio A or nothing. */
        bool clipped = clip * a < ratio * a;
        double l = -(clipped ? clip : ratio) * a, g = clipped ? 0 : -ratio * a;
        if (o->beta != 0) {
            double d = ref[t] - logp[t];
            double kl = exp(d) - d - 1;
            l += o->beta * kl;
            g += o->beta * (1 - exp(d));
            acc->kl += kl;
        }
        acc->low += ratio < 1 - o->eps_low && a < 0;
        acc->high += ratio > 1 + o->eps_high && a > 0;
        acc->loss += w * l;
        grad[t] = w * g;
    }
    acc->tokens += len;
}

void mt_grpo_stats_of(const mt_grpo_sums *acc, mt_grpo_stats *st) {
    double tokens = (double)MT_MAX(acc->tokens, 1);
    *st = (mt_grpo_stats){acc->loss, acc->kl / tokens, acc->low / tokens, acc->high / tokens};
}

void mt_grpo_loss(const mt_grpo_opts *o, int64_t n, const int64_t *len, const double *adv, const double *logp,
                  const double *old, const double *ref, double *grad, mt_grpo_stats *st) {
    int64_t total = 0, off = 0;
    for (int64_t i = 0; i < n; i++) total += len[i];
    mt_grpo_sums acc = {0};
    for (int64_t i = 0; i < n; i++) {
        mt_grpo_completion_loss(o, mt_grpo_weight(o, n, len[i], total), adv[i], len[i], logp + off, old + off,
                                o->beta != 0 ? ref + off : NULL, grad + off, &acc);
        off += len[i];
    }
    mt_grpo_stats_of(&acc, st);
}
