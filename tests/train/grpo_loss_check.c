/* Reads grpo_loss_ref.py's cases and compares mt_grpo_advantages and mt_grpo_loss with them: the loss, the
 * metrics and every d loss / d logp_t within 1e-12 relative to the largest reference value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/grpo_loss.h"

static int failures;

static bool read_doubles(FILE *f, double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (fscanf(f, "%lf", &x[i]) != 1) return false;
    return true;
}

static void compare(const char *what, int c, const double *got, const double *want, int64_t n) {
    double scale = 1e-300, worst = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - want[i]) / scale);
    if (!(worst <= 1e-12)) {
        fprintf(stderr, "case %d: %s differs by %g (relative to max |ref| %g)\n", c, what, worst, scale);
        failures++;
    }
}

int main(int argc, char **argv) {
    FILE *f = argc == 2 ? fopen(argv[1], "r") : NULL;
    int n_cases;
    if (!f || fscanf(f, "%d", &n_cases) != 1) {
        fprintf(stderr, "usage: grpo_loss_check CASES (from grpo_loss_ref.py)\n");
        return 2;
    }
    for (int c = 0; c < n_cases; c++) {
        char kind[16];
        mt_grpo_opts o = {0};
        int scale;
        int64_t n_groups, group;
        if (fscanf(f, "%15s %lf %lf %lf %ld %d %ld %ld", kind, &o.beta, &o.eps_low, &o.eps_high,
                   &o.max_completion_tokens, &scale, &n_groups, &group) != 8 ||
            mt_grpo_loss_type_parse(kind, &o.type, NULL)) {
            fprintf(stderr, "case %d: bad header\n", c);
            return 2;
        }
        int64_t n = n_groups * group, T = 0;
        double *rewards = calloc((size_t)n, sizeof *rewards), *adv = calloc((size_t)n, sizeof *adv);
        double *want_adv = calloc((size_t)n, sizeof *want_adv);
        int64_t *len = calloc((size_t)n, sizeof *len);
        bool ok = read_doubles(f, rewards, n);
        for (int64_t i = 0; ok && i < n; i++) {
            ok = fscanf(f, "%ld", &len[i]) == 1;
            T += len[i];
        }
        double *v = calloc((size_t)(5 * T + 1), sizeof *v);
        double *logp = v, *old = v + T, *ref = v + 2 * T, *want_grad = v + 3 * T, *grad = v + 4 * T;
        double want[4];
        ok = ok && read_doubles(f, logp, T) && read_doubles(f, old, T) && read_doubles(f, ref, T) &&
             read_doubles(f, want_grad, T) && read_doubles(f, want_adv, n) && read_doubles(f, want, 4);
        if (!ok) {
            fprintf(stderr, "case %d: truncated\n", c);
            return 2;
        }
        mt_grpo_advantages(rewards, n_groups, group, scale, adv);
        mt_grpo_stats st;
        mt_grpo_loss(&o, n, len, adv, logp, old, ref, grad, &st);
        compare("advantages", c, adv, want_adv, n);
        compare("d loss / d logp", c, grad, want_grad, T);
        double got[4] = {st.loss, st.kl, st.clip_low, st.clip_high};
        const char *names[4] = {"loss", "kl", "clip_low", "clip_high"};
        for (int k = 0; k < 4; k++) compare(names[k], c, &got[k], &want[k], 1);
        for (int64_t t = 0; t < T; t++)
            if (!isfinite(grad[t])) {
                fprintf(stderr, "case %d: a gradient is not finite\n", c);
                failures++;
                break;
            }
        printf("case %d: %s beta %g eps %g/%g, %ld x %ld completions, %ld tokens: loss %.6f\n", c, kind, o.beta,
               o.eps_low, o.eps_high, n_groups, group, T, st.loss);
        free(rewards);
        free(adv);
        free(want_adv);
        free(len);
        free(v);
    }
    fclose(f);
    printf("%d cases, %d failures\n", n_cases, failures);
    return failures != 0;
}
