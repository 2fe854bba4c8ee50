/* train parity, in the style of llm.c's test_gpt2: mitten's training step against PyTorch (train_ref.py) on a tiny
 * random model of one variant and one batch of two multi-turn samples (for vision models one with two images of
 * different sizes, one text only; qwen2_5_vl_video: a video and an image, and a video alone, the videos given with
 * s{k}.seconds{j}, their second_per_grid_ts). plan.json lists the runs, each an mt_train_spec: full fine-tuning of some parts
 * (Qwen2.5-VL and Qwen3-VL: vision tower, projector and language model; Qwen3-MoE also once with --train-router)
 * and LoRA (rank 4, alpha 8, the run's targets on the language model, MoE experts included):
 *
 *   | what                                  | tolerance (f32 mitten vs float64 torch) | measured, worst variant |
 *   |---------------------------------------|------------------------------------------|-------------------------|
 *   | batch loss at the start               | 1e-5 relative                            | 7.6e-8                  |
 *   | gradient of every trained tensor      | max |a - b| <= 5e-5 * max |b|, per tensor | 3.4e-6                  |
 *   | weight-decay flag of every tensor     | on exactly for tensors of 2 or more dims | -                       |
 *   | loss before each of 10 AdamW steps    | 2e-5 relative                            | 1.4e-6                  |
 *   | gradient norm before clipping, each   | 5e-5 relative                            | 4.9e-6                  |
 *
 * The step tolerance is tight on purpose: training without weight decay (lr * wd = 1e-5 per step) moves the 10th
 * full fine-tuning loss by 1.8e-4 relative, and a 1% error in the LoRA scale moves the first loss by 2e-4.
 * The set of trained tensors must be the reference's exactly: a router trained without train_router, or a fused
 * expert stack given a master copy, is a tensor the reference has no gradient for. The plan's frozen tensors
 * (fused expert stacks) must stay registered as frozen, read in place from the checkpoint, and unchanged.
 *
 * Each step: zero grads, one forward + backward per sample (gradients accumulate, loss normalised by the batch's
 * supervised tokens), clip to norm 1, AdamW (lr 1e-3, weight decay 0.01). For LoRA's gradients the adapters get
 * train_ref.py's random A and B; the 10 steps start from the same A and B = 0 (PEFT's init).
 *
 * DPO (a plan with "dpo", written by dpo_ref.py): a batch of two preference pairs (s0/s1 chosen/rejected, s2/s3)
 * with given reference log-probabilities; for each run and each loss of the plan (sigmoid with label smoothing,
 * ipo, hinge, sigmoid with an SFT weight) the batch loss (1e-5 relative), each pair's rewards (5e-5 of beta times the
 * reference's size) and every gradient (as above) against TRL's formulas in float64, through mt_dpo_pair_run as the
 * trainer runs it.
 *
 * GRPO (a plan with "grpo", written by grpo_ref.py): fixed rollouts (two groups of two completions, s0..s3), their
 * rewards and the sampling policy's and the reference's log-probabilities given; advantages by mt_grpo_advantages,
 * then for each run and each setting of the plan (grpo, bnpo, dr_grpo; beta 0 and > 0) the loss (1e-5 relative) and
 * every gradient (as above) through mt_grpo_completion_run as the trainer runs it. The reference pass's weights
 * (mt_trainable_use_base, adapters detached) give the checkpoint's own log-probabilities, and taking them back gives
 * the run's again.
 *
 * usage: train_parity WORK_DIR   (WORK_DIR written by train_ref.py: model/, inputs.safetensors, plan.json,
 *                                  lora_init.safetensors, expected.safetensors; see train_ref.py for the layout)
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../unit/check.h"
#include "base/json.h"
#include "io/safetensors.h"
#include "mitten.h"
#include "tensor/autograd.h"
#include "train/dpo.h"
#include "train/grpo.h"
#include "train/step.h"
#include "train/trainable.h"

#define STEPS 10
#define MAX_SAMPLES 4
#define MAX_IMAGES 4
#define LOSS_TOL 1e-5
#define GRAD_TOL 5e-5
#define STEP_TOL 2e-5
#define NORM_TOL 5e-5

typedef struct batch {
    mt_train_sample s[MAX_SAMPLES];
    const float *pixels[MAX_SAMPLES][MAX_IMAGES];
    int64_t n_patches[MAX_SAMPLES][MAX_IMAGES];
    mt_image_grid grids[MAX_SAMPLES][MAX_IMAGES];
    mt_image_input inputs[MAX_SAMPLES][MAX_IMAGES]; /* the same with each video's kind and seconds */
    int n;
    float inv_norm;
} batch;

typedef struct runner {
    mt_model *m;
    mt_ctx ctx;
    mt_arena arena;
    const mt_safetensors *expected;
} runner;

static const mt_st_tensor *need(const mt_safetensors *st, const char *name, mt_dtype dtype) {
    const mt_st_tensor *t = mt_safetensors_find(st, name);
    if (t && t->dtype != dtype) t = NULL;
    CHECK_MSG(t != NULL, "reference tensor %s missing or of the wrong dtype", name);
    return t;
}

static int64_t numel(const mt_st_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

/* The samples s0, s1, ... of inputs.safetensors. */
static bool load_batch(const mt_safetensors *in, batch *b) {
    char name[64];
    int64_t sup = 0;
    memset(b, 0, sizeof *b);
    for (int k = 0; k < MAX_SAMPLES; k++) {
        snprintf(name, sizeof name, "s%d.ids", k);
        const mt_st_tensor *ids = mt_safetensors_find(in, name);
        if (!ids) break;
        snprintf(name, sizeof name, "s%d.labels", k);
        const mt_st_tensor *labels = need(in, name, MT_I32);
        if (!labels || ids->dtype != MT_I32 || numel(labels) != numel(ids)) return false;
        mt_train_sample *s = &b->s[k];
        *s = (mt_train_sample){.ids = ids->data, .labels = labels->data, .n = numel(ids), .pixels = b->pixels[k],
                               .n_patches = b->n_patches[k], .grids = b->grids[k]};
        for (int j = 0; j < MAX_IMAGES; j++) {
            snprintf(name, sizeof name, "s%d.pixels%d", k, j);
            const mt_st_tensor *pv = mt_safetensors_find(in, name);
            if (!pv) break;
            snprintf(name, sizeof name, "s%d.grid%d", k, j);
            const mt_st_tensor *g = need(in, name, MT_I64);
            if (!g || pv->dtype != MT_F32 || pv->ndim != 2 || numel(g) != 3) return false;
            const int64_t *thw = g->data;
            b->pixels[k][j] = pv->data;
            b->n_patches[k][j] = pv->shape[0];
            b->grids[k][j] = (mt_image_grid){thw[0], thw[1], thw[2]};
            b->inputs[k][j] = (mt_image_input){.pixels = pv->data, .n_patches = pv->shape[0], .grid = b->grids[k][j],
                                               .patch_dim = pv->shape[1]};
            snprintf(name, sizeof name, "s%d.seconds%d", k, j);
            const mt_st_tensor *sec = mt_safetensors_find(in, name);
            if (sec) {
                if (sec->dtype != MT_F32 || numel(sec) != 1) return false;
                b->inputs[k][j].video = true;
                b->inputs[k][j].seconds_per_grid = ((const float *)sec->data)[0];
                s->inputs = b->inputs[k];
            }
            s->n_images = j + 1;
        }
        sup += mt_train_sample_supervised(s->labels, s->n);
        b->n = k + 1;
    }
    CHECK_MSG((b->n == 2 || b->n == 4) && sup > 0, "inputs: %d samples, %lld supervised tokens", b->n, (long long)sup);
    b->inv_norm = (float)(1.0 / (double)sup);
    return b->n > 0 && sup > 0;
}

/* One forward + backward per sample, gradients accumulating; returns the batch loss (NAN on failure). */
static double run_batch(runner *r, const batch *b) {
    double total = 0;
    for (int k = 0; k < b->n; k++) {
        double loss;
        mt_err err;
        mt_status st = mt_train_sample_run(r->m, &r->ctx, &b->s[k], b->inv_norm, &loss, &err);
        mt_tape_reset(r->ctx.tape);
        mt_arena_reset(&r->arena);
        r->ctx.status = MT_OK;
        CHECK_MSG(st == MT_OK, "sample %d: %s", k, err.msg);
        if (st) return NAN;
        total += loss;
    }
    return total;
}

static float ref_scalar(const mt_safetensors *st, const char *name, int i) {
    const mt_st_tensor *t = need(st, name, MT_F32);
    return t && i < numel(t) ? ((const float *)t->data)[i] : NAN;
}

/* Every parameter's gradient against "<mode>.grad.<name>"; each reference gradient must have a parameter. */
static void compare_grads(runner *r, const char *mode, const mt_param *p, size_t n) {
    char name[512], prefix[64];
    size_t matched = 0;
    snprintf(prefix, sizeof prefix, "%s.grad.", mode);
    double worst = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s.grad.%s", mode, p[i].name);
        const mt_st_tensor *ref = need(r->expected, name, MT_F32);
        if (!ref) continue;
        matched++;
        CHECK_MSG(numel(ref) == p[i].n, "%s: %lld elements, reference %lld", p[i].name, (long long)p[i].n,
                  (long long)numel(ref));
        if (numel(ref) != p[i].n) continue;
        CHECK_MSG(p[i].decay == (ref->ndim >= 2), "%s: weight decay %s, expected %s", p[i].name,
                  p[i].decay ? "on" : "off", ref->ndim >= 2 ? "on" : "off");
        const float *b = ref->data;
        double diff = 0, scale = 0;
        for (int64_t e = 0; e < p[i].n; e++) {
            diff = fmax(diff, fabs((double)p[i].grad[e] - b[e]));
            scale = fmax(scale, fabs((double)b[e]));
        }
        double rel = diff / fmax(scale, 1e-30);
        CHECK_MSG(rel <= GRAD_TOL, "%s: gradient %s max |diff| %.3g = %.3g of max |grad| %.3g", mode, p[i].name, diff,
                  rel, scale);
        if (rel >= worst) worst = rel, worst_name = p[i].name;
    }
    size_t n_ref = 0;
    for (size_t i = 0; i < mt_safetensors_count(r->expected); i++) {
        const char *tn = mt_safetensors_at(r->expected, i)->name;
        n_ref += strncmp(tn, prefix, strlen(prefix)) == 0;
    }
    CHECK_MSG(matched == n && n_ref == n, "%s: %zu trained tensors, %zu reference gradients, %zu matched", mode, n,
              n_ref, matched);
    printf("%s: %zu gradients, worst %.2e of max |grad| (%s)\n", mode, matched, worst, worst_name);
}

static void check_rel(const char *what, int step, double got, double want, double tol) {
    double rel = fabs(got - want) / fmax(fabs(want), 1e-30);
    CHECK_MSG(rel <= tol, "%s[%d] = %.8f, reference %.8f (rel %.2e > %.0e)", what, step, got, want, rel, tol);
}

/* 10 steps from the parameters' current values; losses and gradient norms against the reference's. */
static void train_steps(runner *r, const char *mode, mt_trainable *t, const batch *b) {
    size_t n;
    mt_param *p = mt_trainable_params(t, &n);
    mt_adamw_config cfg = mt_adamw_config_default();
    cfg.n_groups = 3; /* one per mt_model_part, all with torch's defaults here */
    for (int g = 0; g < cfg.n_groups; g++) cfg.groups[g] = (mt_adamw_group){1e-3, 0.01};
    mt_adamw *opt;
    mt_err err;
    mt_status st = mt_adamw_new(p, n, &cfg, &opt, &err);
    CHECK_MSG(st == MT_OK, "adamw: %s", err.msg);
    if (st) return;
    char lname[64], nname[64];
    snprintf(lname, sizeof lname, "%s.losses", mode);
    snprintf(nname, sizeof nname, "%s.norms", mode);
    double worst = 0, worst_norm = 0;
    for (int k = 0; k < STEPS; k++) {
        mt_trainable_zero_grad(t);
        double loss = run_batch(r, b), norm;
        st = mt_grad_clip_norm(p, n, 1.0, r->ctx.pool, &norm, &err);
        CHECK_MSG(st == MT_OK, "%s step %d: clip: %s", mode, k, err.msg);
        if (st || isnan(loss)) break;
        mt_adamw_step(opt, 1.0, r->ctx.pool);
        double want = ref_scalar(r->expected, lname, k), want_norm = ref_scalar(r->expected, nname, k);
        check_rel(lname, k, loss, want, STEP_TOL);
        check_rel(nname, k, norm, want_norm, NORM_TOL);
        worst = fmax(worst, fabs(loss - want) / want);
        worst_norm = fmax(worst_norm, fabs(norm - want_norm) / want_norm);
        printf("%s step %d: loss %.6f (torch %.6f)  grad norm %.5f (torch %.5f)\n", mode, k, loss, want, norm,
               want_norm);
    }
    printf("%s: 10-step losses within %.2e relative, gradient norms within %.2e\n", mode, worst, worst_norm);
    mt_adamw_free(opt);
}

/* Loss and gradients at the start, then the 10 steps. */
static void check_mode(runner *r, const char *mode, mt_trainable *t, const batch *b) {
    char name[64];
    size_t n;
    mt_param *p = mt_trainable_params(t, &n);
    mt_trainable_zero_grad(t);
    double loss = run_batch(r, b);
    snprintf(name, sizeof name, "%s.loss", mode);
    double want = ref_scalar(r->expected, name, 0);
    check_rel(name, 0, loss, want, LOSS_TOL);
    printf("%s: loss %.7f, torch %.7f (rel %.2e)\n", mode, loss, want, fabs(loss - want) / want);
    compare_grads(r, mode, p, n);
}

/* DPO: for each loss of the plan, the batch loss, the rewards and every gradient against "<run>.<loss>.*". */
static void check_dpo(runner *r, const char *run, mt_trainable *t, const batch *b, const cJSON *losses) {
    size_t n;
    mt_param *p = mt_trainable_params(t, &n);
    const mt_st_tensor *ref_t = need(r->expected, "ref", MT_F32);
    CHECK_MSG(b->n == 4 && ref_t && numel(ref_t) == 4, "DPO needs 4 samples (2 pairs) and ref [4]");
    if (b->n != 4 || !ref_t || numel(ref_t) != 4) return;
    const float *ref = ref_t->data;
    int64_t sup[4];
    for (int k = 0; k < 4; k++) sup[k] = mt_train_sample_supervised(b->s[k].labels, b->s[k].n);
    const cJSON *spec;
    cJSON_ArrayForEach(spec, losses) {
        mt_err err;
        const char *name = NULL, *kind = NULL;
        mt_dpo_config c = mt_dpo_config_default();
        mt_status st = mt_json_str_req(spec, "name", "plan.json", &name, &err);
        if (!st) st = mt_json_str_req(spec, "loss", "plan.json", &kind, &err);
        if (!st) st = mt_dpo_loss_parse(kind, &c.loss, &err);
        if (!st) st = mt_json_num_req(spec, "beta", "plan.json", 0, 1e3, &c.beta, &err);
        if (!st) st = mt_json_num_req(spec, "label_smoothing", "plan.json", 0, 0.5, &c.label_smoothing, &err);
        if (!st) st = mt_json_num_req(spec, "sft_weight", "plan.json", 0, 1e3, &c.sft_weight, &err);
        CHECK_MSG(st == MT_OK, "plan.json dpo: %s", err.msg);
        if (st) return;
        char key[128], what[160];
        snprintf(key, sizeof key, "%s.%s", run, name);
        mt_trainable_zero_grad(t);
        double total = 0, rewards[4];
        double inv_chosen = 1.0 / (double)(sup[0] + sup[2]);
        for (int k = 0; k < 2 && !st; k++) {
            const mt_train_sample *pair[2] = {&b->s[2 * k], &b->s[2 * k + 1]};
            mt_dpo_pair_in in = {.ref = {ref[2 * k], ref[2 * k + 1]}, .n_tokens = {sup[2 * k], sup[2 * k + 1]}};
            mt_dpo_pair_out out;
            st = mt_dpo_pair_run(r->m, &r->ctx, pair, &c, 0.5, inv_chosen, &in, &out, &err);
            mt_tape_reset(r->ctx.tape);
            mt_arena_reset(&r->arena);
            r->ctx.status = MT_OK;
            CHECK_MSG(st == MT_OK, "%s pair %d: %s", key, k, err.msg);
            total += 0.5 * out.loss - c.sft_weight * inv_chosen * in.logp[0];
            rewards[2 * k] = out.reward[0];
            rewards[2 * k + 1] = out.reward[1];
        }
        if (st) continue;
        snprintf(what, sizeof what, "%s.loss", key);
        double want = ref_scalar(r->expected, what, 0);
        check_rel(what, 0, total, want, LOSS_TOL);
        snprintf(what, sizeof what, "%s.rewards", key);
        for (int k = 0; k < 4; k++) {
            double w = ref_scalar(r->expected, what, k), tol = 5e-5 * c.beta * fabs(ref[k]);
            CHECK_MSG(fabs(rewards[k] - w) <= tol, "%s[%d] = %.7f, reference %.7f (tolerance %.1e)", what, k,
                      rewards[k], w, tol);
        }
        printf("%s: loss %.7f, torch %.7f (rel %.2e)\n", key, total, want, fabs(total - want) / fabs(want));
        compare_grads(r, key, p, n);
    }
}

/* GRPO: for each setting of the plan, the loss and every gradient against "<run>.<name>.*"; the reference pass. */
static void check_grpo(runner *r, const char *run, mt_trainable *t, const batch *b, const cJSON *specs) {
    size_t n;
    mt_param *p = mt_trainable_params(t, &n);
    const mt_st_tensor *rw = need(r->expected, "rewards", MT_F32), *old_t = need(r->expected, "old", MT_F32);
    const mt_st_tensor *ref_t = need(r->expected, "ref", MT_F32);
    char what[160];
    snprintf(what, sizeof what, "%s.base_logp", run);
    const mt_st_tensor *base_t = need(r->expected, what, MT_F32);
    int64_t len[4], off[4], total = 0;
    for (int k = 0; k < b->n && k < 4; k++) {
        len[k] = mt_train_sample_supervised(b->s[k].labels, b->s[k].n);
        off[k] = total;
        total += len[k];
    }
    CHECK_MSG(b->n == 4 && rw && numel(rw) == 4 && old_t && ref_t && base_t && numel(old_t) == total &&
              numel(ref_t) == total && numel(base_t) == total, "GRPO needs 4 samples, rewards [4], old, ref [%lld]",
              (long long)total);
    if (b->n != 4 || !rw || numel(rw) != 4 || !old_t || !ref_t || !base_t || numel(old_t) != total ||
        numel(ref_t) != total || numel(base_t) != total)
        return;
    double rewards[4], adv[4], *old = mt_calloc((size_t)total, sizeof *old), *ref = mt_calloc((size_t)total, sizeof *ref);
    double *logp = mt_calloc((size_t)total, sizeof *logp);
    for (int k = 0; k < 4; k++) rewards[k] = ((const float *)rw->data)[k];
    for (int64_t k = 0; k < total; k++) {
        old[k] = ((const float *)old_t->data)[k];
        ref[k] = ((const float *)ref_t->data)[k];
    }
    mt_grpo_advantages(rewards, 2, 2, true, adv);
    mt_err err;
    mt_status st = MT_OK;
    /* the reference pass: the checkpoint's own weights, then the run's back */
    double worst = 0, before = 0, after = 0;
    for (int pass = 0; pass < 2; pass++) {
        mt_trainable_use_base(t, pass == 0);
        for (int k = 0; k < 4 && !st; k++) {
            mt_tape *tape = r->ctx.tape;
            r->ctx.tape = NULL;
            st = mt_grpo_completion_run(r->m, &r->ctx, &b->s[k], len[k], NULL, NULL, logp + off[k], NULL, &err);
            r->ctx.tape = tape;
            mt_arena_reset(&r->arena);
            CHECK_MSG(st == MT_OK, "%s reference pass: %s", run, err.msg);
        }
        for (int64_t k = 0; k < total && !st; k++) {
            double d = fabs(logp[k] - ((const float *)base_t->data)[k]);
            if (pass == 0) worst = fmax(worst, d);
            *(pass == 0 ? &before : &after) += d;
        }
        mt_trainable_use_base(t, false);
    }
    CHECK_MSG(worst <= 1e-4, "%s: the reference pass is %.2e from the checkpoint's log-probabilities", run, worst);
    CHECK_MSG(!mt_trainable_is_lora(t) || after > 1e-3, "%s: back from the reference, the adapters do not apply", run);
    printf("%s: reference pass within %.2e of the checkpoint's log-probabilities\n", run, worst);
    const cJSON *spec;
    cJSON_ArrayForEach(spec, specs) {
        const char *name = NULL, *kind = NULL;
        mt_grpo_opts o = {0};
        int64_t max_tokens = 0;
        st = mt_json_str_req(spec, "name", "plan.json", &name, &err);
        if (!st) st = mt_json_str_req(spec, "loss_type", "plan.json", &kind, &err);
        if (!st) st = mt_grpo_loss_type_parse(kind, &o.type, &err);
        if (!st) st = mt_json_num_req(spec, "beta", "plan.json", 0, 1e3, &o.beta, &err);
        if (!st) st = mt_json_num_req(spec, "eps_low", "plan.json", 0, 1, &o.eps_low, &err);
        if (!st) st = mt_json_num_req(spec, "eps_high", "plan.json", 0, 1e3, &o.eps_high, &err);
        if (!st) st = mt_json_int_req(spec, "max_completion_tokens", "plan.json", 1, 1 << 20, &max_tokens, &err);
        CHECK_MSG(st == MT_OK, "plan.json grpo: %s", err.msg);
        if (st) break;
        o.max_completion_tokens = max_tokens;
        o.temperature = 1;
        if (!st) st = mt_json_num_opt(spec, "temperature", "plan.json", 0.01, 100, &o.temperature, &err);
        CHECK_MSG(st == MT_OK, "plan.json grpo: %s", err.msg);
        char key[128];
        snprintf(key, sizeof key, "%s.%s", run, name);
        mt_trainable_zero_grad(t);
        mt_grpo_sums acc = {0};
        for (int k = 0; k < 4 && !st; k++) {
            mt_grpo_completion in = {.weight = mt_grpo_weight(&o, 4, len[k], total), .adv = adv[k],
                                     .old = old + off[k], .ref = ref + off[k]};
            st = mt_grpo_completion_run(r->m, &r->ctx, &b->s[k], len[k], &o, &in, logp + off[k], &acc, &err);
            mt_tape_reset(r->ctx.tape);
            mt_arena_reset(&r->arena);
            r->ctx.status = MT_OK;
            CHECK_MSG(st == MT_OK, "%s completion %d: %s", key, k, err.msg);
        }
        if (st) continue;
        snprintf(what, sizeof what, "%s.loss", key);
        double want = ref_scalar(r->expected, what, 0);
        check_rel(what, 0, acc.loss, want, LOSS_TOL);
        printf("%s: loss %.7f, torch %.7f (rel %.2e), clipped %.0f low %.0f high of %lld tokens\n", key, acc.loss,
               want, fabs(acc.loss - want) / fabs(want), acc.low, acc.high, (long long)acc.tokens);
        compare_grads(r, key, p, n);
    }
    mt_free(old);
    mt_free(ref);
    mt_free(logp);
}

/* Copies the adapters' values from lora_init (B zeroed when zero_b); every adapter must be there. */
static void set_adapters(mt_trainable *t, const mt_safetensors *init, bool zero_b) {
    size_t n;
    mt_param *p = mt_trainable_params(t, &n);
    CHECK_MSG(n == mt_safetensors_count(init), "LoRA: %zu adapter tensors, reference %zu", n,
              mt_safetensors_count(init));
    for (size_t i = 0; i < n; i++) {
        const mt_st_tensor *v = need(init, p[i].name, MT_F32);
        if (!v || numel(v) != p[i].n) {
            CHECK_MSG(v == NULL, "%s: %lld elements, reference %lld", p[i].name, (long long)p[i].n,
                      (long long)numel(v));
            continue;
        }
        bool is_b = strstr(p[i].name, ".lora_B.") != NULL;
        if (zero_b && is_b)
            memset(p[i].data, 0, (size_t)p[i].n * sizeof(float));
        else
            memcpy(p[i].data, v->data, (size_t)p[i].n * sizeof(float));
    }
}

/* The default targets ("all-linear") must name exactly the adapters of lora_init. */
static void check_all_linear(runner *r, mt_train_spec lora, const mt_safetensors *lora_init) {
    mt_trainable *t;
    mt_err err;
    lora.lora_targets = "all-linear";
    mt_status s = mt_trainable_setup(r->m, &lora, &t, &err);
    CHECK_MSG(s == MT_OK, "LoRA all-linear setup: %s", err.msg);
    if (s) return;
    size_t n;
    mt_param *p = mt_trainable_params(t, &n);
    CHECK_MSG(n == mt_safetensors_count(lora_init), "all-linear: %zu adapter tensors, expected %zu", n,
              mt_safetensors_count(lora_init));
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(mt_safetensors_find(lora_init, p[i].name), "all-linear: unexpected %s", p[i].name);
    mt_trainable_free(t);
}

/* A frozen tensor: registered as MT_WEIGHT_FROZEN, read in place from the checkpoint file, values as in the file.
 * Called after every run. */
static void check_frozen(runner *r, const char *name, const char *after) {
    const mt_weight *w = mt_weight_find(r->m, name);
    const mt_st_tensor *file = mt_safetensors_find(r->m->st, name);
    const mt_tensor *t = w ? mt_weight_whole(w) : NULL;
    CHECK_MSG(w && file && t, "frozen %s: not a weight of the model", name);
    if (!w || !file || !t) return;
    CHECK_MSG(w->training == MT_WEIGHT_FROZEN, "%s is not registered as frozen", name);
    CHECK_MSG(t->data == file->data, "after %s: %s is no longer read in place from the checkpoint", after, name);
    float *now = mt_malloc_array((size_t)(w->rows * w->cols), sizeof(float));
    mt_err err;
    if (!now || mt_weight_read_f32(w, now, &err)) {
        CHECK_MSG(false, "%s: cannot read", name);
    } else {
        CHECK_MSG(file->dtype == MT_F32 && memcmp(now, file->data, (size_t)(w->rows * w->cols) * sizeof(float)) == 0,
                  "after %s: %s changed", after, name);
    }
    mt_free(now);
}

/* One run of the plan: full (loss and gradients, then 10 steps) or LoRA (gradients with random B, then 10 steps
 * from B = 0). */
static void run_plan_entry(runner *r, const cJSON *run, const batch *b, const mt_safetensors *lora_init,
                           const cJSON *dpo, const cJSON *grpo) {
    mt_err err;
    const char *name = NULL, *targets = NULL;
    int64_t rank = 0;
    double alpha = 0;
    bool all_linear_same = false;
    mt_train_spec spec = mt_train_spec_default();
    mt_status s = mt_json_str_req(run, "name", "plan.json", &name, &err);
    if (!s) s = mt_json_bool_opt(run, "vision", "plan.json", &spec.vision, &err);
    if (!s) s = mt_json_bool_opt(run, "projector", "plan.json", &spec.projector, &err);
    if (!s) s = mt_json_bool_opt(run, "language", "plan.json", &spec.language, &err);
    if (!s) s = mt_json_bool_opt(run, "train_router", "plan.json", &spec.train_router, &err);
    if (!s) s = mt_json_bool_opt(run, "all_linear_same", "plan.json", &all_linear_same, &err);
    if (!s) s = mt_json_int_req(run, "lora_rank", "plan.json", 0, 64, &rank, &err);
    if (!s) s = mt_json_num_req(run, "lora_alpha", "plan.json", 0, 1e3, &alpha, &err);
    if (!s) s = mt_json_str_req(run, "lora_targets", "plan.json", &targets, &err);
    CHECK_MSG(s == MT_OK, "plan.json: %s", err.msg);
    if (s) return;
    spec.lora_rank = (int)rank;
    spec.lora_alpha = (float)alpha;
    if (rank) spec.lora_targets = targets;
    mt_trainable *t;
    s = mt_trainable_setup(r->m, &spec, &t, &err);
    CHECK_MSG(s == MT_OK, "%s setup: %s", name, err.msg);
    if (s) return;
    if (rank) set_adapters(t, lora_init, false);
    if (dpo || grpo) {
        if (dpo) check_dpo(r, name, t, b, dpo);
        else check_grpo(r, name, t, b, grpo);
        mt_trainable_free(t);
        return;
    }
    check_mode(r, name, t, b);
    if (rank) set_adapters(t, lora_init, true);
    train_steps(r, name, t, b);
    mt_trainable_free(t);
    if (rank && all_linear_same) check_all_linear(r, spec, lora_init);
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: train_parity WORK_DIR\n"), 2;
    char path[4096];
    mt_err err;
    mt_safetensors *in = NULL, *expected = NULL, *lora_init = NULL;
    runner r = {0};
    const char *files[3] = {"inputs", "expected", "lora_init"};
    mt_safetensors **st[3] = {&in, &expected, &lora_init};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", argv[1], files[i]);
        if (mt_safetensors_open_file(path, st[i], &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    }
    cJSON *plan = NULL;
    snprintf(path, sizeof path, "%s/plan.json", argv[1]);
    if (mt_json_parse_file(path, MT_JSON_MAX_FILE, &plan, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(plan, "runs");
    const cJSON *frozen = cJSON_GetObjectItemCaseSensitive(plan, "frozen");
    const cJSON *variant = cJSON_GetObjectItemCaseSensitive(plan, "variant");
    const cJSON *dpo = cJSON_GetObjectItemCaseSensitive(plan, "dpo");
    const cJSON *grpo = cJSON_GetObjectItemCaseSensitive(plan, "grpo");
    if (!cJSON_IsArray(runs) || !cJSON_IsArray(frozen) || !cJSON_IsString(variant))
        return fprintf(stderr, "%s: needs variant, runs and frozen\n", path), 1;
    printf("variant %s\n", variant->valuestring);
    snprintf(path, sizeof path, "%s/model", argv[1]);
    mt_tape *tape = NULL;
    mt_pool *pool = NULL;
    /* mmap: the weights stay in the file mapping, so check_frozen can tell that training made no copy of them */
    mt_model_params mp = {.mmap = true};
    if (mt_model_open_params(path, &mp, &r.m, &err) || mt_tape_new(&tape, &err) || mt_pool_new(2, &pool, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    mt_arena_init(&r.arena, (size_t)1 << 22);
    r.ctx = (mt_ctx){.arena = &r.arena, .pool = pool, .tape = tape};
    r.expected = expected;
    batch b;
    if (load_batch(in, &b)) {
        const cJSON *run, *f;
        cJSON_ArrayForEach(run, runs) {
            run_plan_entry(&r, run, &b, lora_init, cJSON_IsArray(dpo) ? dpo : NULL, cJSON_IsArray(grpo) ? grpo : NULL);
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(run, "name");
            cJSON_ArrayForEach(f, frozen) {
                if (cJSON_IsString(f) && cJSON_IsString(name)) check_frozen(&r, f->valuestring, name->valuestring);
            }
        }
        if (cJSON_GetArraySize(frozen)) printf("%d frozen tensors unchanged and read in place\n",
                                               cJSON_GetArraySize(frozen));
    }
    cJSON_Delete(plan);
    mt_arena_free(&r.arena);
    mt_pool_free(pool);
    mt_tape_free(tape);
    mt_model_close(r.m);
    for (int i = 0; i < 3; i++) mt_safetensors_close(*st[i]);
    return check_report();
}
