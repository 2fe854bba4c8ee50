/* Compares mitten's rotary tables with tests/nn/rope_ref.py, a torch re-implementation of transformers' rope
 * variants (default, linear, dynamic, yarn, llama3, contiguous and interleaved M-RoPE).
 *
 *   usage: rope_check DIR        (DIR/cases.json and the .npy files rope_ref.py wrote)
 *
 * Each case is a config.json fragment. Its rope block goes through mt_cfg_rope (head_dim and max_position_embeddings
 * from the fragment, 32768 when absent, as the decoder config reads them), so config parsing is tested too; then
 *   - a refused case must fail, with a message containing the name of the offending field;
 *   - otherwise mt_rope_inv_freq over the case's largest position must give the reference inv_freq [D/2] within
 *     INV_RTOL (a few f32 ulps: torch's float32 pow is not glibc's powf, they differ by one ulp on ~1% of
 *     entries) and its attention factor within 1e-6 relative; and mt_nn_rope must give cos, sin [T, D/2] within
 *         |got - want| <= scale * (TAB_ATOL + TAB_ARTOL * |angle|),   angle = position * inv_freq,
 *     because an f32 angle carries the relative error of its frequency: a one-ulp frequency moves the angle of
 *     position 100000 by ~0.01. Small angles (low frequencies, early positions) are held to ~2e-6.
 * The 2-D vision rope (mt_nn_rope_2d, Qwen2-VL and Qwen3-VL towers) is held to the same table tolerance.
 * Prints one line per case (worst errors in units of the tolerance) and exits 1 when any case fails.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/json.h"
#include "io/npy.h"
#include "models/config.h"
#include "nn/rope.h"

#define INV_RTOL 5e-7
#define TAB_ATOL 2e-6
#define TAB_ARTOL 5e-7
#define MAX_POS_DEFAULT 32768

static int load(const char *dir, const cJSON *c, const char *key, mt_dtype dt, mt_npy *out) {
    char path[4096];
    mt_err err;
    snprintf(path, sizeof path, "%s/%s", dir, cJSON_GetStringValue(cJSON_GetObjectItem(c, key)));
    if (mt_npy_read(path, out, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    if (out->dtype != dt) return fprintf(stderr, "%s: unexpected dtype\n", path), 1;
    return 0;
}

/* The 2-D vision rope (mt_nn_rope_2d) against the vision towers' tables; 0 when it passes */
static int run_vision(const char *dir, const cJSON *c, const cJSON *v, mt_ctx *ctx) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "name"));
    int64_t hd = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(v, "head_dim"));
    double theta = cJSON_GetNumberValue(cJSON_GetObjectItem(v, "theta"));
    mt_npy rows = {0}, cols = {0}, cos = {0}, sin = {0};
    int bad = load(dir, c, "rows", MT_I64, &rows) || load(dir, c, "cols", MT_I64, &cols) ||
              load(dir, c, "cos", MT_F32, &cos) || load(dir, c, "sin", MT_F32, &sin);
    int64_t N = rows.shape[0], half = hd / 2;
    mt_tensor *tc, *ts;
    mt_arena_mark m = mt_arena_save(ctx->arena);
    if (!bad && (cos.shape[0] != N || cos.shape[1] != half)) bad = 1, printf("FAIL %s: table shape\n", name);
    if (!bad && mt_nn_rope_2d(ctx, rows.data, cols.data, N, hd, theta, &tc, &ts))
        bad = 1, printf("FAIL %s: mt_nn_rope_2d: %s\n", name, ctx->err.msg);
    if (!bad) {
        const int64_t *r = rows.data, *cl = cols.data;
        double worst = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < half; i++) {
                /* angle bound: the larger coordinate at the largest frequency of its quarter */
                double ang = (double)MT_MAX(r[n], cl[n]) * pow(theta, -(double)(2 * (i % (hd / 4))) / (double)half);
                double e = fmax(fabs((double)mt_f32(tc)[n * half + i] - ((float *)cos.data)[n * half + i]),
                                fabs((double)mt_f32(ts)[n * half + i] - ((float *)sin.data)[n * half + i]));
                worst = fmax(worst, e / (TAB_ATOL + TAB_ARTOL * ang));
            }
        bad = worst > 1;
        printf("%s %-36s tables %.3f (of tolerance)\n", bad ? "FAIL" : "ok  ", name, worst);
    }
    mt_arena_restore(ctx->arena, m);
    mt_npy_free(&rows);
    mt_npy_free(&cols);
    mt_npy_free(&cos);
    mt_npy_free(&sin);
    return bad;
}

/* 0 when the case passes */
static int run_case(const char *dir, const cJSON *c, mt_ctx *ctx) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "name"));
    const cJSON *frag = cJSON_GetObjectItem(c, "config");
    const char *refuse = cJSON_GetStringValue(cJSON_GetObjectItem(c, "refuse"));
    if (cJSON_GetObjectItem(c, "vision")) return run_vision(dir, c, cJSON_GetObjectItem(c, "vision"), ctx);
    const cJSON *hd = cJSON_GetObjectItem(frag, "head_dim"), *mp = cJSON_GetObjectItem(frag, "max_position_embeddings");
    mt_err err = {0};
    mt_cfg r = {.path = "config.json", .what = "", .err = &err};
    mt_rope_cfg rc;
    mt_cfg_rope(&r, frag, (int64_t)cJSON_GetNumberValue(hd), mp ? (int64_t)cJSON_GetNumberValue(mp) : MAX_POS_DEFAULT,
                &rc);
    if (refuse) {
        if (!r.st) return printf("FAIL %s: accepted, the reference refuses it (%s)\n", name, refuse), 1;
        if (!strstr(err.msg, refuse))
            return printf("FAIL %s: refused without naming %s: %s\n", name, refuse, err.msg), 1;
        printf("ok   %-36s refused: %s\n", name, err.msg);
        return 0;
    }
    if (r.st) return printf("FAIL %s: refused: %s\n", name, err.msg), 1;

    mt_npy pos = {0}, inv = {0}, cos = {0}, sin = {0};
    int bad = load(dir, c, "pos", MT_I64, &pos) || load(dir, c, "inv", MT_F32, &inv) ||
              load(dir, c, "cos", MT_F32, &cos) || load(dir, c, "sin", MT_F32, &sin);
    int64_t half = rc.dim / 2, A = pos.shape[0], T = pos.shape[1];
    if (!bad && (pos.ndim != 2 || A != mt_rope_axes(&rc) || inv.shape[0] != half || cos.shape[0] != T ||
                 cos.shape[1] != half)) {
        printf("FAIL %s: shapes: %lld axes (mitten %d), inv_freq %lld, table %lld x %lld for T %lld, D/2 %lld\n", name,
               (long long)A, mt_rope_axes(&rc), (long long)inv.shape[0], (long long)cos.shape[0],
               (long long)cos.shape[1], (long long)T, (long long)half);
        bad = 1;
    }
    if (bad) goto done;
    const int64_t *p = pos.data;
    const float *inv_ref = inv.data, *cos_ref = cos.data, *sin_ref = sin.data;
    double scale_ref = cJSON_GetNumberValue(cJSON_GetObjectItem(c, "scale"));

    int64_t max_pos = 0;
    for (int64_t i = 0; i < A * T; i++) max_pos = MT_MAX(max_pos, p[i]);
    float inv_got[4096], scale;
    mt_rope_inv_freq(&rc, max_pos, inv_got, &scale);
    double inv_worst = 0;
    int inv_inexact = 0; /* entries not bit for bit the reference's */
    for (int64_t i = 0; i < half; i++) inv_inexact += inv_got[i] != inv_ref[i];
    for (int64_t i = 0; i < half; i++)
        inv_worst = fmax(inv_worst, fabs((double)inv_got[i] - inv_ref[i]) / (INV_RTOL * fabs((double)inv_ref[i])));
    double scale_err = fabs(scale - scale_ref) / (1e-6 * scale_ref);

    mt_arena_mark m = mt_arena_save(ctx->arena);
    mt_tensor *tc, *ts;
    if (mt_nn_rope(ctx, &rc, p, T, &tc, &ts)) {
        printf("FAIL %s: mt_nn_rope: %s\n", name, ctx->err.msg);
        bad = 1;
        goto done;
    }
    double tab_worst = 0;
    int64_t wt = 0, wi = 0;
    for (int64_t t = 0; t < T; t++) {
        int64_t pt = 0;
        for (int64_t a = 0; a < A; a++) pt = MT_MAX(pt, p[a * T + t]);
        for (int64_t i = 0; i < half; i++) {
            double tol = scale_ref * (TAB_ATOL + TAB_ARTOL * (double)pt * inv_ref[i]);
            double e = fmax(fabs((double)mt_f32(tc)[t * half + i] - cos_ref[t * half + i]),
                            fabs((double)mt_f32(ts)[t * half + i] - sin_ref[t * half + i])) / tol;
            if (e > tab_worst) tab_worst = e, wt = t, wi = i;
        }
    }
    mt_arena_restore(ctx->arena, m);
    bad = inv_worst > 1 || scale_err > 1 || tab_worst > 1;
    printf("%s %-36s inv_freq %.3f (%d of %lld inexact)  scale %.3f  tables %.3f (of tolerance; worst t %lld, i %lld)\n",
           bad ? "FAIL" : "ok  ", name, inv_worst, inv_inexact, (long long)half, scale_err, tab_worst, (long long)wt,
           (long long)wi);
    if (bad && inv_worst > 1)
        for (int64_t i = 0; i < half; i++)
            if (fabs((double)inv_got[i] - inv_ref[i]) > INV_RTOL * fabs((double)inv_ref[i]))
                printf("       inv_freq[%lld] mitten %.9g reference %.9g\n", (long long)i, inv_got[i], inv_ref[i]);
    if (bad && scale_err > 1) printf("       attention factor mitten %.9g reference %.9g\n", scale, scale_ref);
done:
    mt_npy_free(&pos);
    mt_npy_free(&inv);
    mt_npy_free(&cos);
    mt_npy_free(&sin);
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: rope_check DIR\n"), 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/cases.json", argv[1]);
    mt_err err;
    cJSON *cases;
    if (mt_json_parse_file(path, (size_t)1 << 26, &cases, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    mt_arena arena;
    mt_arena_init(&arena, 1 << 20);
    mt_ctx ctx = {.arena = &arena};
    int n = 0, bad = 0;
    for (const cJSON *c = cases->child; c; c = c->next, n++) bad += run_case(argv[1], c, &ctx);
    mt_arena_free(&arena);
    cJSON_Delete(cases);
    printf("%d cases, %d failed\n", n, bad);
    return bad ? 1 : 0;
}
