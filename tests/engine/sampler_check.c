/* engine: mitten's sampling distribution against transformers' processor order (sampler_ref.py): for each case the
 * tokens left after repetition penalty, temperature, top-k, top-p and min-p, and their probabilities, within 1e-5.
 * usage: sampler_check DIR */
#include <stdio.h>
#include <string.h>

#include "../unit/check.h"
#include "base/json.h"
#include "engine/sampler.h"
#include "io/npy.h"

#define TOL 1e-5f

static bool one_case(const char *dir) {
    char path[4200];
    mt_err err;
    mt_npy logits, history, want;
    snprintf(path, sizeof path, "%s/logits.npy", dir);
    if (mt_npy_read(path, &logits, &err)) return fprintf(stderr, "%s\n", err.msg), false;
    snprintf(path, sizeof path, "%s/history.npy", dir);
    if (mt_npy_read(path, &history, &err)) return fprintf(stderr, "%s\n", err.msg), false;
    snprintf(path, sizeof path, "%s/probs.npy", dir);
    if (mt_npy_read(path, &want, &err)) return fprintf(stderr, "%s\n", err.msg), false;
    snprintf(path, sizeof path, "%s/params.json", dir);
    cJSON *pj;
    if (mt_json_parse_file(path, 1 << 16, &pj, &err)) return fprintf(stderr, "%s\n", err.msg), false;
    mt_sampling sp = mt_sampling_default();
    sp.temperature = (float)cJSON_GetObjectItem(pj, "temperature")->valuedouble;
    sp.top_k = (int64_t)cJSON_GetObjectItem(pj, "top_k")->valuedouble;
    sp.top_p = (float)cJSON_GetObjectItem(pj, "top_p")->valuedouble;
    sp.min_p = (float)cJSON_GetObjectItem(pj, "min_p")->valuedouble;
    sp.repetition_penalty = (float)cJSON_GetObjectItem(pj, "repetition_penalty")->valuedouble;
    cJSON_Delete(pj);
    int64_t V = logits.shape[0], H = history.shape[0];
    int32_t hist[64];
    for (int64_t i = 0; i < H && i < 64; i++) hist[i] = (int32_t)((const int64_t *)history.data)[i];
    mt_sampler s;
    bool ok = mt_sampler_init(&s, &sp, V, &err) == MT_OK;
    float *l = mt_malloc_array((size_t)V, sizeof(float)), *got = mt_calloc((size_t)V, sizeof(float));
    memcpy(l, logits.data, (size_t)V * sizeof(float));
    int64_t keep = ok ? mt_sampler_filter(&s, l, hist, H) : 0;
    for (int64_t i = 0; i < keep; i++) got[s.order[i]] = s.probs[s.order[i]];
    float worst = 0;
    bool same_support = true;
    for (int64_t v = 0; v < V; v++) {
        float w = ((const float *)want.data)[v];
        worst = fmaxf(worst, fabsf(got[v] - w));
        same_support &= (got[v] > 0) == (w > 0);
    }
    CHECK_MSG(ok && same_support && worst <= TOL, "%s: %s, max |p - ref| %g (T %g, k %lld, p %g, min_p %g, rep %g)",
              dir, same_support ? "same tokens kept" : "other tokens kept", worst, sp.temperature,
              (long long)sp.top_k, sp.top_p, sp.min_p, sp.repetition_penalty);
    mt_sampler_release(&s);
    mt_free(l);
    mt_free(got);
    mt_npy_free(&logits);
    mt_npy_free(&history);
    mt_npy_free(&want);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: sampler_check DIR\n"), 2;
    int n = 0;
    char dir[4096];
    for (;; n++) {
        snprintf(dir, sizeof dir, "%s/%03d/params.json", argv[1], n);
        FILE *f = fopen(dir, "r");
        if (!f) break;
        fclose(f);
        snprintf(dir, sizeof dir, "%s/%03d", argv[1], n);
        one_case(dir);
    }
    CHECK_MSG(n > 0, "no cases in %s", argv[1]);
    printf("%d sampling cases against transformers' filter order\n", n);
    return check_report();
}
