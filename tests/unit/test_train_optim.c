/* train: rng, schedules, AdamW, gradient clipping and the loss plot: properties and hand-worked values here;
 * agreement with PyTorch (torch.optim.AdamW, clip_grad_norm_, LambdaLR with transformers' lambdas) and the SVG
 * parsed by Python are checked by the train_optim_ref ctest (tests/train/optim_ref.py), which runs this program
 * as `test_train_optim --ref DIR` to dump what mitten computes:
 *
 *     | file in DIR            | content                                                               |
 *     | ---------------------- | --------------------------------------------------------------------- |
 *     | manifest.json          | parameter table, groups, betas, eps, max_norm, schedule, per-step      |
 *     |                        | grad norms and lrs; schedule checks; the plotted series                |
 *     | init_I.npy             | parameter I before training                                           |
 *     | grad_S_I.npy           | parameter I's gradient at step S, before clipping                     |
 *     | final_I.npy, m_I, v_I  | parameter I, exp_avg, exp_avg_sq after the last step                  |
 *     | loss.svg, loss_big.svg | plots of the manifest's series; a 10000-point series                  |
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/pool.h"
#include "check.h"
#include "io/npy.h"
#include "train/optim.h"
#include "train/plot.h"
#include "train/rng.h"
#include "train/schedule.h"

static void test_rng(void) {
    /* splitmix64 seeded with 0: its first output is the mix of the golden gamma (Vigna's reference table). */
    CHECK(mt_rng_mix64(0x9e3779b97f4a7c15ull) == 0xe220a8397b1dcdafull);
    mt_rng a = mt_rng_stream(42, MT_RNG_SHUFFLE, 0), b = mt_rng_stream(42, MT_RNG_SHUFFLE, 0);
    mt_rng c = mt_rng_stream(42, MT_RNG_SHUFFLE, 1), d = mt_rng_stream(42, MT_RNG_DROPOUT, 0);
    mt_rng e = mt_rng_stream(43, MT_RNG_SHUFFLE, 0);
    int same_c = 0, same_d = 0, same_e = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = mt_rng_u64(&a);
        CHECK(x == mt_rng_u64(&b));
        same_c += x == mt_rng_u64(&c);
        same_d += x == mt_rng_u64(&d);
        same_e += x == mt_rng_u64(&e);
    }
    CHECK(same_c == 0 && same_d == 0 && same_e == 0);

    /* Save mid-stream, restore, and the continuation is the same. */
    cJSON *j = mt_rng_to_json(&a);
    mt_rng r;
    mt_err err;
    CHECK(j && mt_rng_from_json(j, "state", &r, &err) == MT_OK);
    for (int i = 0; i < 100; i++) CHECK(mt_rng_u64(&r) == mt_rng_u64(&a));
    cJSON_Delete(j);
    const char *bad[] = {"[]", "{}", "{\"key\":\"0123456789abcdef\"}", "{\"key\":\"0123456789abcdeg\",\"ctr\":\"0000000000000000\"}",
                         "{\"key\":\"0123\",\"ctr\":\"0000000000000000\"}", "{\"key\":5,\"ctr\":\"0000000000000000\"}"};
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        cJSON *bj = cJSON_Parse(bad[i]);
        mt_rng keep = {7, 9};
        CHECK_MSG(mt_rng_from_json(bj, "state.rng", &keep, &err) == MT_ERR_FORMAT, "accepted %s", bad[i]);
        CHECK(keep.key == 7 && keep.ctr == 9 && strstr(err.msg, "state.rng"));
        cJSON_Delete(bj);
    }

    /* Uniform floats in [0, 1) with the right mean; below(n) unbiased (chi-square, 9 dof, p ~ 1e-6 bound). */
    double sum = 0;
    int64_t counts[10] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        float u = mt_rng_float(&a);
        CHECK(u >= 0 && u < 1);
        sum += u;
        counts[mt_rng_below(&a, 10)]++;
    }
    CHECK_NEAR(sum / n, 0.5, 0.005);
    double chi = 0;
    for (int k = 0; k < 10; k++) chi += (counts[k] - n / 10.0) * (counts[k] - n / 10.0) / (n / 10.0);
    CHECK_MSG(chi < 45, "chi-square %g", chi);
    CHECK(mt_rng_below(&a, 0) == 0 && mt_rng_below(&a, 1) == 0);
    double dsum = 0;
    for (int i = 0; i < 1000; i++) dsum += mt_rng_double(&a);
    CHECK_NEAR(dsum / 1000, 0.5, 0.05);

    /* Shuffle: a permutation, reproducible, and every position reached. */
    int64_t p[50], q[50];
    for (int i = 0; i < 50; i++) p[i] = q[i] = i;
    mt_rng s1 = mt_rng_stream(1, MT_RNG_SHUFFLE, 3), s2 = s1;
    mt_rng_shuffle(&s1, p, 50);
    mt_rng_shuffle(&s2, q, 50);
    int seen[50] = {0}, moved = 0;
    for (int i = 0; i < 50; i++) {
        CHECK(p[i] == q[i] && p[i] >= 0 && p[i] < 50);
        seen[p[i]]++;
        moved += p[i] != i;
    }
    for (int i = 0; i < 50; i++) CHECK(seen[i] == 1);
    CHECK(moved > 30);
    CHECK(s1.ctr == 49);
    mt_rng_shuffle(&s1, p, 0);
    mt_rng_shuffle(&s1, p, 1);
}

static void test_schedule(void) {
    mt_schedule cos = mt_schedule_make(MT_SCHED_COSINE, 10, 110);
    CHECK(mt_schedule_scale(&cos, 0) == 0.0);
    CHECK(mt_schedule_scale(&cos, 5) == 0.5);
    CHECK(mt_schedule_scale(&cos, 10) == 1.0);
    CHECK_NEAR(mt_schedule_scale(&cos, 60), 0.5, 1e-15);
    CHECK_NEAR(mt_schedule_scale(&cos, 110), 0.0, 1e-15);
    mt_schedule lin = mt_schedule_make(MT_SCHED_LINEAR, 4, 8);
    CHECK(mt_schedule_scale(&lin, 2) == 0.5 && mt_schedule_scale(&lin, 6) == 0.5);
    CHECK(mt_schedule_scale(&lin, 8) == 0.0 && mt_schedule_scale(&lin, 20) == 0.0);
    mt_schedule cw = mt_schedule_make(MT_SCHED_CONSTANT_WARMUP, 4, 8);
    CHECK(mt_schedule_scale(&cw, 1) == 0.25 && mt_schedule_scale(&cw, 4) == 1.0 && mt_schedule_scale(&cw, 100) == 1.0);
    mt_schedule c = mt_schedule_make(MT_SCHED_CONSTANT, 4, 8);
    CHECK(mt_schedule_scale(&c, 0) == 1.0);
    mt_schedule w0 = mt_schedule_make(MT_SCHED_COSINE, 0, 0); /* degenerate: no division by zero */
    CHECK(isfinite(mt_schedule_scale(&w0, 0)) && isfinite(mt_schedule_scale(&w0, 3)));

    CHECK(mt_schedule_warmup_steps(0.03, 1000) == 30);
    CHECK(mt_schedule_warmup_steps(0.1, 15) == 2);
    CHECK(mt_schedule_warmup_steps(5, 15) == 5 && mt_schedule_warmup_steps(2.7, 15) == 2);
    CHECK(mt_schedule_warmup_steps(0, 15) == 0 && mt_schedule_warmup_steps(-1, 15) == 0);
    CHECK(mt_schedule_warmup_steps(NAN, 15) == 0);
    mt_sched_kind k;
    mt_err err;
    CHECK(mt_schedule_parse_kind("constant_with_warmup", &k, &err) == MT_OK && k == MT_SCHED_CONSTANT_WARMUP);
    CHECK(mt_schedule_parse_kind("cosine", &k, &err) == MT_OK && k == MT_SCHED_COSINE);
    CHECK(mt_schedule_parse_kind("polynomial", &k, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "polynomial"));
    CHECK(strcmp(mt_schedule_kind_name(MT_SCHED_LINEAR), "linear") == 0);
}

/* Fills buf with uniform values in [-scale, scale). */
static void fill(mt_rng *r, float *buf, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) buf[i] = (2 * mt_rng_float(r) - 1) * scale;
}

static void test_adamw_hand(void) {
    /* One element, one step, worked in double: m = 0.1 g, v = 0.001 g^2, bias-corrected m/sqrt(v) = sign(g). */
    float w = 1.0f, g = 0.5f;
    mt_param p = {.name = "w", .data = &w, .grad = &g, .n = 1, .ndim = 0, .group = 0, .decay = true};
    mt_adamw_config cfg = mt_adamw_config_default();
    cfg.groups[0] = (mt_adamw_group){.lr = 0.1, .weight_decay = 0.01};
    mt_adamw *opt;
    mt_err err;
    CHECK(mt_adamw_new(&p, 1, &cfg, &opt, &err) == MT_OK);
    mt_adamw_step(opt, 1.0, NULL);
    double want = 1.0 * (1 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8);
    CHECK_NEAR(w, want, 1e-7);
    CHECK_NEAR(mt_adamw_exp_avg(opt, 0)[0], 0.05, 1e-9);
    CHECK_NEAR(mt_adamw_exp_avg_sq(opt, 0)[0], 0.00025, 2.5e-10); /* float: about 1e-7 relative */
    CHECK(mt_adamw_t(opt) == 1 && mt_adamw_lr(opt, 0) == 0.1);
    /* decay = false skips weight decay; lr_scale scales the group's lr. */
    p.decay = false;
    float w2 = 1.0f;
    p.data = &w2;
    mt_adamw *o2;
    CHECK(mt_adamw_new(&p, 1, &cfg, &o2, &err) == MT_OK);
    mt_adamw_step(o2, 0.5, NULL);
    CHECK_NEAR(w2, 1.0 - 0.05 * 0.5 / (0.5 + 1e-8), 1e-7);
    CHECK(mt_adamw_lr(o2, 0) == 0.05 && mt_adamw_lr(o2, 5) == 0.0);
    mt_adamw_free(o2);
    mt_adamw_free(opt);
    mt_adamw_free(NULL);

    /* Bad tables and configs are refused, naming the parameter. */
    float d[6] = {0}, gr[6] = {0};
    mt_param bad = {.name = "x", .data = d, .grad = gr, .n = 6, .shape = {2, 3}, .ndim = 2};
    mt_param t = bad;
    t.shape[1] = 4;
    CHECK(mt_adamw_new(&t, 1, &cfg, &opt, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "\"x\""));
    t = bad;
    t.group = 1;
    CHECK(mt_adamw_new(&t, 1, &cfg, &opt, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "group"));
    t = bad;
    t.grad = NULL;
    CHECK(mt_adamw_new(&t, 1, &cfg, &opt, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "grad"));
    t = bad;
    t.ndim = 5;
    CHECK(mt_adamw_new(&t, 1, &cfg, &opt, &err) == MT_ERR_INVALID_ARG);
    t = bad;
    t.shape[0] = -2;
    t.shape[1] = -3;
    CHECK(mt_adamw_new(&t, 1, &cfg, &opt, &err) == MT_ERR_INVALID_ARG);
    mt_adamw_config bc = cfg;
    bc.beta2 = 1.0;
    CHECK(mt_adamw_new(&bad, 1, &bc, &opt, &err) == MT_ERR_INVALID_ARG);
    bc = cfg;
    bc.groups[0].lr = NAN;
    CHECK(mt_adamw_new(&bad, 1, &bc, &opt, &err) == MT_ERR_INVALID_ARG);
    bc = cfg;
    bc.n_groups = 0;
    CHECK(mt_adamw_new(&bad, 1, &bc, &opt, &err) == MT_ERR_INVALID_ARG);
    /* An empty table is a valid (if idle) optimizer. */
    CHECK(mt_adamw_new(NULL, 0, &cfg, &opt, &err) == MT_OK);
    mt_adamw_step(opt, 1.0, NULL);
    mt_adamw_free(opt);

    /* Every allocation failure is reported, never a crash. */
    for (size_t k = 1; k < 10; k++) {
        mt_alloc_fail_after(k);
        mt_status s = mt_adamw_new(&bad, 1, &cfg, &opt, &err);
        mt_alloc_fail_after(0);
        CHECK(s == MT_OK || s == MT_ERR_NOMEM);
        if (s == MT_OK) mt_adamw_free(opt);
    }
}

/* The same updates with 1 and 2 threads, and chunked over a parameter bigger than one chunk: bit-identical. */
static void test_threads(void) {
    const int64_t n0 = 3 * MT_OPTIM_CHUNK + 17, n1 = 5;
    float *w[2], *g[2];
    mt_rng r = mt_rng_stream(7, MT_RNG_INIT, 0);
    for (int k = 0; k < 2; k++) {
        w[k] = mt_malloc_array((size_t)(n0 + n1), sizeof(float));
        g[k] = mt_malloc_array((size_t)(n0 + n1), sizeof(float));
    }
    fill(&r, w[0], n0 + n1, 1);
    fill(&r, g[0], n0 + n1, 0.1f);
    memcpy(w[1], w[0], (size_t)(n0 + n1) * 4);
    memcpy(g[1], g[0], (size_t)(n0 + n1) * 4);
    mt_pool *pool;
    mt_err err;
    CHECK(mt_pool_new(2, &pool, &err) == MT_OK);
    mt_adamw_config cfg = mt_adamw_config_default();
    double norms[2];
    for (int k = 0; k < 2; k++) {
        mt_param p[2] = {{.name = "big", .data = w[k], .grad = g[k], .n = n0, .shape = {n0}, .ndim = 1, .decay = true},
                         {.name = "small", .data = w[k] + n0, .grad = g[k] + n0, .n = n1, .shape = {n1}, .ndim = 1}};
        mt_adamw *opt;
        CHECK(mt_adamw_new(p, 2, &cfg, &opt, &err) == MT_OK);
        for (int s = 0; s < 3; s++) {
            CHECK(mt_grad_clip_norm(p, 2, 1.0, k ? pool : NULL, &norms[k], &err) == MT_OK);
            mt_adamw_step(opt, 1.0, k ? pool : NULL);
        }
        mt_adamw_free(opt);
    }
    CHECK(norms[0] == norms[1]);
    CHECK(memcmp(w[0], w[1], (size_t)(n0 + n1) * 4) == 0);
    for (int k = 0; k < 2; k++) {
        mt_free(w[k]);
        mt_free(g[k]);
    }
    mt_pool_free(pool);
}

static void test_clip(void) {
    float g1[2] = {3, 0}, g2[1] = {4}, d[3] = {0};
    mt_param p[2] = {{.name = "a", .data = d, .grad = g1, .n = 2, .shape = {2}, .ndim = 1},
                     {.name = "b", .data = d + 2, .grad = g2, .n = 1, .ndim = 0}};
    double norm;
    mt_err err;
    CHECK(mt_grad_norm(p, 2, NULL, &norm, &err) == MT_OK && norm == 5.0);
    CHECK(mt_grad_clip_norm(p, 2, 10.0, NULL, &norm, &err) == MT_OK && norm == 5.0);
    CHECK(g1[0] == 3 && g2[0] == 4); /* coef >= 1: untouched */
    CHECK(mt_grad_clip_norm(p, 2, 0.0, NULL, &norm, &err) == MT_OK && g1[0] == 3); /* 0: measure only */
    CHECK(mt_grad_clip_norm(p, 2, 1.0, NULL, &norm, &err) == MT_OK && norm == 5.0);
    float coef = (1.0f / (5.0f + 1e-6f)) * 1.0f;
    CHECK(g1[0] == 3 * coef && g2[0] == 4 * coef);
    CHECK(mt_grad_norm(p, 2, NULL, &norm, &err) == MT_OK);
    CHECK_NEAR(norm, 1.0, 1e-6);

    g2[0] = NAN;
    float keep = g1[0];
    CHECK(mt_grad_clip_norm(p, 2, 1.0, NULL, &norm, &err) == MT_ERR_LIMIT && isnan(norm));
    CHECK(strstr(err.msg, "NaN") && strstr(err.msg, "\"b\"") && g1[0] == keep);
    g2[0] = INFINITY;
    CHECK(mt_grad_clip_norm(p, 2, 1.0, NULL, &norm, &err) == MT_ERR_LIMIT && isinf(norm));
    CHECK(strstr(err.msg, "infinite"));
    CHECK(mt_grad_clip_norm(NULL, 0, 1.0, NULL, &norm, &err) == MT_OK && norm == 0.0);
}

static void test_plot(void) {
    char dir[] = "/tmp/mt_plot_XXXXXX", path[256];
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    double v[5] = {2.5, 2.0, NAN, 1.25, 1.0};
    mt_plot_series tr = {.value = v, .n = 5};
    mt_err err;
    CHECK(mt_plot_loss_svg(path, "a <b> & \"c\"", &tr, NULL, &err) == MT_OK);
    char *text;
    size_t len;
    CHECK(mt_file_read_all(path, 1 << 20, &text, &len, &err) == MT_OK);
    CHECK(strncmp(text, "<?xml", 5) == 0 && strstr(text, "a &lt;b&gt; &amp; &quot;c&quot;") && strstr(text, "</svg>"));
    mt_free(text);
    CHECK(mt_plot_loss_svg(path, NULL, NULL, NULL, &err) == MT_OK); /* empty plot is still a valid file */
    double same[2] = {3, 3};
    mt_plot_series flat = {.value = same, .n = 2};
    CHECK(mt_plot_loss_svg(path, NULL, &flat, &flat, &err) == MT_OK);
    int64_t far[2] = {INT64_MAX - 1, INT64_MAX};
    mt_plot_series huge = {.step = far, .value = same, .n = 2};
    CHECK(mt_plot_loss_svg(path, NULL, &huge, NULL, &err) == MT_OK);
    snprintf(path, sizeof path, "%s/no/such/dir/loss.svg", dir);
    CHECK(mt_plot_loss_svg(path, NULL, &tr, NULL, &err) == MT_ERR_IO && strstr(err.msg, "loss.svg"));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* ---- reference dump for tests/train/optim_ref.py ---- */

#define REF_P 5
#define REF_STEPS 10

static mt_status npy(const char *dir, const char *name, const mt_param *p, const float *data, mt_err *err) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return mt_npy_write(path, MT_F32, p->ndim, p->shape, data, err);
}

/* Doubles as "%.17g" strings: cJSON prints numbers with 15 digits when they compare equal within its epsilon,
 * which loses the last bits the schedule check compares. */
static cJSON *num_array(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    char buf[40];
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%.17g", v[i]);
        cJSON_AddItemToArray(a, cJSON_CreateString(buf));
    }
    return a;
}

/* Schedules compared against LambdaLR: kind, W, T, min_lr_rate. */
static cJSON *dump_schedules(void) {
    static const struct {
        mt_sched_kind kind;
        int64_t w, t;
        double min_rate;
    } cases[] = {{MT_SCHED_COSINE, 3, 10, 0},  {MT_SCHED_COSINE, 0, 37, 0},  {MT_SCHED_COSINE, 7, 100, 0.1},
                 {MT_SCHED_COSINE, 10, 10, 0}, {MT_SCHED_LINEAR, 5, 40, 0},  {MT_SCHED_LINEAR, 0, 1, 0},
                 {MT_SCHED_CONSTANT_WARMUP, 6, 30, 0}, {MT_SCHED_CONSTANT, 0, 20, 0}};
    cJSON *arr = cJSON_CreateArray();
    for (size_t c = 0; c < MT_ARRAY_LEN(cases); c++) {
        mt_schedule s = mt_schedule_make(cases[c].kind, cases[c].w, cases[c].t);
        s.min_lr_rate = cases[c].min_rate;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", mt_schedule_kind_name(s.kind));
        cJSON_AddNumberToObject(o, "warmup", (double)s.warmup_steps);
        cJSON_AddNumberToObject(o, "total", (double)s.total_steps);
        cJSON_AddNumberToObject(o, "min_lr_rate", s.min_lr_rate);
        const double base_lr = 2e-4;
        int n = (int)s.total_steps + 6;
        double *lr = malloc((size_t)n * sizeof *lr);
        for (int k = 0; k < n; k++) lr[k] = base_lr * mt_schedule_scale(&s, k);
        cJSON_AddNumberToObject(o, "base_lr", base_lr);
        cJSON_AddItemToObject(o, "lr", num_array(lr, n));
        free(lr);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static int dump_plot(const char *dir, cJSON *man, mt_err *err) {
    int64_t steps[57];
    double loss[57];
    mt_rng r = mt_rng_stream(3, MT_RNG_SAMPLE, 0);
    for (int i = 0; i < 57; i++) {
        steps[i] = 10 + 5 * i;
        loss[i] = 3.0 * exp(-i / 20.0) + 0.2 * mt_rng_double(&r);
    }
    loss[20] = NAN;
    int64_t esteps[6] = {10, 60, 110, 160, 210, 290};
    double eloss[6] = {3.1, 2.0, 1.4, 1.1, 0.9, 0.8};
    mt_plot_series tr = {.step = steps, .value = loss, .n = 57}, ev = {.step = esteps, .value = eloss, .n = 6};
    char path[512];
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    if (mt_plot_loss_svg(path, "tiny run", &tr, &ev, err)) return 1;
    cJSON *p = cJSON_AddObjectToObject(man, "plot");
    double ds[57], des[6];
    for (int i = 0; i < 57; i++) ds[i] = (double)steps[i];
    for (int i = 0; i < 6; i++) des[i] = (double)esteps[i];
    cJSON_AddItemToObject(p, "train_step", num_array(ds, 57));
    cJSON_AddItemToObject(p, "train_loss", num_array(loss, 57)); /* NaN as "nan" */
    cJSON_AddItemToObject(p, "eval_step", num_array(des, 6));
    cJSON_AddItemToObject(p, "eval_loss", num_array(eloss, 6));
    double *big = malloc(10000 * sizeof *big);
    for (int i = 0; i < 10000; i++) big[i] = 2.0 + sin(i * 0.01) + mt_rng_double(&r);
    mt_plot_series bs = {.value = big, .n = 10000};
    snprintf(path, sizeof path, "%s/loss_big.svg", dir);
    mt_status s = mt_plot_loss_svg(path, NULL, &bs, NULL, err);
    free(big);
    return s != MT_OK;
}

static int dump_ref(const char *dir) {
    static const int64_t shapes[REF_P][4] = {{7, 5}, {33}, {4, 3, 2, 5}, {70001}, {130, 17}};
    static const int ndims[REF_P] = {2, 1, 4, 1, 2}, groups[REF_P] = {0, 0, 1, 1, 0};
    static const bool decay[REF_P] = {true, false, true, true, false};
    static const char *names[REF_P] = {"lm.w", "lm.b", "vis.conv", "vis.big", "lm.head"};
    mt_param p[REF_P];
    mt_rng r = mt_rng_stream(2024, MT_RNG_INIT, 0);
    int64_t total = 0;
    for (int i = 0; i < REF_P; i++) {
        p[i] = (mt_param){.name = names[i], .ndim = ndims[i], .group = groups[i], .decay = decay[i], .n = 1};
        for (int d = 0; d < ndims[i]; d++) p[i].n *= p[i].shape[d] = shapes[i][d];
        p[i].data = malloc((size_t)p[i].n * 4);
        p[i].grad = malloc((size_t)p[i].n * 4);
        fill(&r, p[i].data, p[i].n, 1.0f);
        total += p[i].n;
    }
    mt_adamw_config cfg = mt_adamw_config_default();
    cfg.beta2 = 0.95;
    cfg.n_groups = 2;
    cfg.groups[0] = (mt_adamw_group){.lr = 1e-3, .weight_decay = 0.1};
    cfg.groups[1] = (mt_adamw_group){.lr = 3e-4, .weight_decay = 0.01};
    mt_schedule sched = mt_schedule_make(MT_SCHED_COSINE, 3, REF_STEPS);
    const double max_norm = 1.0;
    mt_err err;
    mt_adamw *opt;
    mt_pool *pool;
    if (mt_adamw_new(p, REF_P, &cfg, &opt, &err) || mt_pool_new(2, &pool, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char name[64];
    int rc = 0;
    for (int i = 0; i < REF_P && !rc; i++) {
        snprintf(name, sizeof name, "init_%d.npy", i);
        rc = npy(dir, name, &p[i], p[i].data, &err) != MT_OK;
    }
    double norms[REF_STEPS], lrs[2][REF_STEPS];
    for (int s = 0; s < REF_STEPS && !rc; s++) {
        /* Gradient norms from about 0.3 to 2.5, so some steps clip and some do not. */
        float scale = (float)((0.3 + 0.25 * s) * sqrt(3.0 / (double)total));
        for (int i = 0; i < REF_P && !rc; i++) {
            fill(&r, p[i].grad, p[i].n, scale);
            snprintf(name, sizeof name, "grad_%d_%d.npy", s, i);
            rc = npy(dir, name, &p[i], p[i].grad, &err) != MT_OK;
        }
        rc = rc || mt_grad_clip_norm(p, REF_P, max_norm, pool, &norms[s], &err) != MT_OK;
        mt_adamw_step(opt, mt_schedule_scale(&sched, s), pool);
        for (int g = 0; g < 2; g++) lrs[g][s] = mt_adamw_lr(opt, g);
    }
    for (int i = 0; i < REF_P && !rc; i++) {
        snprintf(name, sizeof name, "final_%d.npy", i);
        rc = npy(dir, name, &p[i], p[i].data, &err) != MT_OK;
        snprintf(name, sizeof name, "m_%d.npy", i);
        rc = rc || npy(dir, name, &p[i], mt_adamw_exp_avg(opt, i), &err) != MT_OK;
        snprintf(name, sizeof name, "v_%d.npy", i);
        rc = rc || npy(dir, name, &p[i], mt_adamw_exp_avg_sq(opt, i), &err) != MT_OK;
    }
    cJSON *man = cJSON_CreateObject();
    cJSON *ps = cJSON_AddArrayToObject(man, "params");
    for (int i = 0; i < REF_P; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", names[i]);
        cJSON_AddNumberToObject(o, "group", groups[i]);
        cJSON_AddBoolToObject(o, "decay", decay[i]);
        cJSON_AddItemToArray(ps, o);
    }
    cJSON *gs = cJSON_AddArrayToObject(man, "groups");
    for (int g = 0; g < 2; g++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "lr", cfg.groups[g].lr);
        cJSON_AddNumberToObject(o, "weight_decay", cfg.groups[g].weight_decay);
        cJSON_AddItemToArray(gs, o);
    }
    cJSON_AddItemToObject(man, "betas", num_array((double[]){cfg.beta1, cfg.beta2}, 2));
    cJSON_AddNumberToObject(man, "eps", cfg.eps);
    cJSON_AddNumberToObject(man, "max_norm", max_norm);
    cJSON_AddNumberToObject(man, "steps", REF_STEPS);
    cJSON_AddNumberToObject(man, "warmup", (double)sched.warmup_steps);
    cJSON_AddItemToObject(man, "norms", num_array(norms, REF_STEPS));
    cJSON_AddItemToObject(man, "lr0", num_array(lrs[0], REF_STEPS));
    cJSON_AddItemToObject(man, "lr1", num_array(lrs[1], REF_STEPS));
    cJSON_AddItemToObject(man, "schedules", dump_schedules());
    rc = rc || dump_plot(dir, man, &err);
    char *text = cJSON_Print(man);
    char path[512];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    rc = rc || mt_file_write_atomic(path, text, strlen(text), &err) != MT_OK;
    if (rc) fprintf(stderr, "%s\n", err.msg);
    cJSON_free(text);
    cJSON_Delete(man);
    mt_adamw_free(opt);
    mt_pool_free(pool);
    for (int i = 0; i < REF_P; i++) {
        free(p[i].data);
        free(p[i].grad);
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--ref") == 0) return dump_ref(argv[2]);
    test_rng();
    test_schedule();
    test_adamw_hand();
    test_threads();
    test_clip();
    test_plot();
    return check_report();
}
