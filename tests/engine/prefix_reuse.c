/* engine: a turn that repeats the conversation so far reuses the KV cache, and must give exactly what a fresh
 * session gives on the whole prompt. usage: prefix_reuse MODEL_DIR INPUTS_DIR (from qwen2_vl_ref.py make-inputs
 * --case one_image, or qwen3_ref.py make-inputs --case video: a Qwen3-VL video, whose rows are split by the
 * timestamp text between its frames). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/check.h"
#include "engine/sched.h"
#include "engine/session.h"
#include "io/npy.h"

#define MAXTOK 512

typedef struct collected {
    int32_t t[MAXTOK];
    int64_t n;
} collected;

static bool collect(void *user, int32_t tok) {
    collected *c = user;
    if (c->n < MAXTOK) c->t[c->n++] = tok;
    return true;
}

static void generate(mt_session *s, const int32_t *ids, int64_t n, const mt_image_input *img, int n_img,
                     collected *out) {
    mt_sampling sm = mt_sampling_default();
    mt_err err;
    out->n = 0;
    mt_status st = mt_session_generate(s, ids, n, img, n_img, 8, &sm, collect, out, NULL, &err);
    CHECK_MSG(st == MT_OK, "generate: %s", err.msg);
}

/* A scheduler request's tokens, stats and end. */
typedef struct sched_result {
    collected got; /* first: collect takes the request's user pointer as its own */
    mt_gen_stats stats;
    mt_status st;
    bool done;
} sched_result;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void on_done(void *user, mt_status st, const mt_err *err, const mt_gen_stats *stats) {
    sched_result *r = user;
    if (st) fprintf(stderr, "request failed: %s\n", err ? err->msg : "?");
    pthread_mutex_lock(&mu);
    r->st = st;
    r->stats = *stats;
    r->done = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* The prompt through the scheduler (serve's path), to its end; the scheduler takes a copy of the pixels. */
static void sched_generate(mt_sched *s, const int32_t *ids, int64_t n, const mt_image_input *img, sched_result *r) {
    int64_t values = img->n_patches * img->patch_dim;
    float *pixels = mt_malloc_array((size_t)values, sizeof(float));
    CHECK(pixels != NULL);
    if (!pixels) return;
    memcpy(pixels, img->pixels, (size_t)values * sizeof(float));
    mt_image_input in = *img;
    in.pixels = pixels;
    mt_sched_request req = {.ids = ids, .n_ids = n, .images = &in, .pixels = &pixels, .n_images = 1, .max_new = 8,
                            .sampling = mt_sampling_default(), .on_token = collect, .on_done = on_done,
                            .user = r};
    *r = (sched_result){0};
    mt_err err;
    mt_status st = mt_sched_submit(s, &req, NULL, &err);
    CHECK_MSG(st == MT_OK, "submit: %s", err.msg);
    if (st) {
        mt_free(pixels);
        return;
    }
    pthread_mutex_lock(&mu);
    while (!r->done) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static bool same(const collected *a, const collected *b) {
    return a->n == b->n && memcmp(a->t, b->t, (size_t)a->n * sizeof(int32_t)) == 0;
}

/* Last-token logits of the whole prompt: session a keeps what it can of its cache, b starts afresh. Returns the
 * largest difference. */
static float prompt_logits_gap(const mt_model *m, mt_session *a, mt_session *b, const int32_t *ids, int64_t n,
                               const mt_image_input *img) {
    mt_err err;
    int kept_images;
    int64_t kept = mt_session_reuse_prefix(a, ids, n, img, 1, &kept_images);
    const float *la, *lb;
    mt_session_reset(b);
    if (mt_session_prefill(a, ids + kept, n - kept, img + kept_images, 1 - kept_images, NULL, &la, &err) ||
        mt_session_prefill(b, ids, n, img, 1, NULL, &lb, &err)) {
        fprintf(stderr, "prefill: %s\n", err.msg);
        return INFINITY;
    }
    float gap = 0;
    for (int64_t v = 0; v < m->desc.vocab_size; v++) gap = fmaxf(gap, fabsf(la[v] - lb[v]));
    return gap;
}

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: prefix_reuse MODEL_DIR INPUTS_DIR\n"), 2;
    mt_err err;
    mt_model *m;
    char path[4096];
    mt_npy ids_npy, pv;
    if (mt_model_open(argv[1], &m, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    snprintf(path, sizeof path, "%s/ids.npy", argv[2]);
    if (mt_npy_read(path, &ids_npy, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    snprintf(path, sizeof path, "%s/pv0.npy", argv[2]);
    if (mt_npy_read(path, &pv, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    /* grids.txt: "T,H,W" for an image, "video T,H,W SECONDS" for a video */
    snprintf(path, sizeof path, "%s/grids.txt", argv[2]);
    FILE *gf = fopen(path, "r");
    char word[64] = "";
    long long t = 0, h = 0, w = 0;
    double seconds = 1.0;
    bool video = gf && fscanf(gf, "%63s", word) == 1 && strcmp(word, "video") == 0;
    bool parsed = video ? fscanf(gf, "%lld,%lld,%lld %lf", &t, &h, &w, &seconds) == 4
                        : sscanf(word, "%lld,%lld,%lld", &t, &h, &w) == 3;
    if (gf) fclose(gf);
    if (!parsed) return fprintf(stderr, "%s: expected \"T,H,W\" or \"video T,H,W SECONDS\"\n", path), 1;
    mt_image_input img = {.pixels = pv.data, .n_patches = pv.shape[0], .grid = {t, h, w},
                          .patch_dim = pv.shape[1], .video = video, .seconds_per_grid = seconds};

    int32_t ids[MAXTOK * 2];
    int64_t n = ids_npy.shape[0];
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)((const int64_t *)ids_npy.data)[i];
    mt_session_params sp = {.n_ctx = 1024, .n_threads = 2};
    mt_session *a, *b;
    CHECK(mt_session_new(m, &sp, &a, &err) == MT_OK && mt_session_new(m, &sp, &b, &err) == MT_OK);

    collected first, reused, fresh;
    generate(a, ids, n, &img, 1, &first);
    CHECK(first.n > 0);
    /* next turn: the prompt, the answer, and a few new text tokens */
    int64_t n2 = n;
    for (int64_t i = 0; i < first.n; i++) ids[n2++] = first.t[i];
    ids[n2++] = 11;
    ids[n2++] = 12;
    ids[n2++] = 13;
    generate(a, ids, n2, &img, 1, &reused);
    CHECK(mt_session_n_past(a) > n2); /* kept the cache and went on */
    generate(b, ids, n2, &img, 1, &fresh);
    CHECK_MSG(same(&reused, &fresh), "turn 2 with the cache kept differs from a fresh session");

    /* the scheduler, in prompt chunks of 5 rows: both turns as the sessions gave them, the second on the first's
     * rows */
    mt_sched *sc;
    mt_sched_params scp = {.n_threads = 2, .max_active = 2, .n_ctx = 1024, .step_rows = 5};
    CHECK(mt_sched_new(m, &scp, &sc, &err) == MT_OK);
    sched_result r1, r2;
    sched_generate(sc, ids, n, &img, &r1);
    CHECK_MSG(r1.st == MT_OK && same(&r1.got, &first), "scheduler turn 1: %lld tokens, a session %lld",
              (long long)r1.got.n, (long long)first.n);
    sched_generate(sc, ids, n2, &img, &r2);
    CHECK_MSG(r2.st == MT_OK && same(&r2.got, &fresh), "scheduler turn 2: %lld tokens, a session %lld",
              (long long)r2.got.n, (long long)fresh.n);
    CHECK_MSG(r2.stats.reused_tokens >= n, "scheduler turn 2 reused %lld rows of turn 1's %lld",
              (long long)r2.stats.reused_tokens, (long long)n);
    mt_sched_free(sc);

    /* logits, which see a wrong position where tokens may not: the same conversation with its cache kept, a turn
     * edited after the image (keeps the image's cache), and one edited before it (full prefill) */
    float gap = prompt_logits_gap(m, a, b, ids, n2, &img);
    CHECK_MSG(gap < 1e-4f, "same prompt again: logits differ by %g", gap);
    ids[n2 - 2] = 20;
    gap = prompt_logits_gap(m, a, b, ids, n2, &img);
    CHECK_MSG(gap < 1e-4f, "edit after the image: logits differ by %g", gap);
    ids[1] = ids[1] == 5 ? 6 : 5;
    gap = prompt_logits_gap(m, a, b, ids, n2, &img);
    CHECK_MSG(gap < 1e-4f, "edit before the image: logits differ by %g", gap);
    /* another picture of the same size: the same tokens, so only its pixels can say the cached image is stale */
    int64_t n_values = pv.shape[0] * pv.shape[1];
    float *other = malloc((size_t)n_values * sizeof(float));
    for (int64_t i = 0; i < n_values; i++) other[i] = -((const float *)pv.data)[i];
    mt_image_input img2 = img;
    img2.pixels = other;
    gap = prompt_logits_gap(m, a, b, ids, n2, &img2);
    CHECK_MSG(gap < 1e-4f, "another image of the same size: logits differ by %g", gap);
    int kept_images;
    mt_session_reuse_prefix(a, ids, n2, &img, 1, &kept_images);
    CHECK_MSG(kept_images == 0, "the other image's cache was kept for the first");
    free(other);

    mt_session_free(a);
    mt_session_free(b);
    mt_npy_free(&ids_npy);
    mt_npy_free(&pv);
    mt_model_close(m);
    return check_report();
}
