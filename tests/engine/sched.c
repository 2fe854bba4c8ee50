/* engine/sched: continuous batching gives every request, greedy, exactly the tokens it gives alone in a session -
 * with more requests than slots (queueing), prompt chunks smaller than the prompts (chunked prefill), images, and a
 * request that repeats an earlier one's prefix (reuse) - and cancellation, the queue bound and the context limit
 * behave as sched.h says. usage: sched MODEL_DIR IMAGE (models/mitten-tiny and docs/example.png). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../unit/check.h"
#include "engine/sched.h"
#include "engine/session.h"
#include "media/image.h"

#define N_REQ 6
#define MAX_NEW 10
#define MAXTOK 64

typedef struct result {
    int32_t t[MAXTOK];
    int64_t n;
    bool done;
    mt_status st;
    mt_gen_stats stats;
    int stop_after; /* cancel from the callback after this many tokens (0: never) */
} result;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static bool on_token(void *user, int32_t tok) {
    result *r = user;
    if (r->n < MAXTOK) r->t[r->n++] = tok;
    return !(r->stop_after && r->n >= r->stop_after);
}

static void on_done(void *user, mt_status st, const mt_err *err, const mt_gen_stats *stats) {
    result *r = user;
    if (st) fprintf(stderr, "request failed: %s\n", err ? err->msg : "?");
    pthread_mutex_lock(&mu);
    r->st = st;
    r->stats = *stats;
    r->done = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void wait_all(result *r, int n) {
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n; i++)
        while (!r[i].done) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

/* A prompt: text, then the image (when img), then more text, expanded. */
typedef struct prompt {
    int32_t *ids;
    int64_t n;
    bool image;
} prompt;

static prompt make_prompt(const mt_model *m, const char *before, bool image, const char *after,
                          const mt_image_input *img) {
    prompt p = {.image = image};
    int32_t *a, *b;
    size_t na, nb;
    mt_err err;
    CHECK(mt_tokenizer_encode(m->tok, before, strlen(before), true, &a, &na, &err) == MT_OK);
    CHECK(mt_tokenizer_encode(m->tok, after, strlen(after), true, &b, &nb, &err) == MT_OK);
    int32_t raw[256];
    int64_t n = 0;
    for (size_t i = 0; i < na; i++) raw[n++] = a[i];
    if (image) raw[n++] = (int32_t)m->desc.image_token_id;
    for (size_t i = 0; i < nb; i++) raw[n++] = b[i];
    CHECK(mt_model_expand_images(m, raw, n, &img->grid, image, &p.ids, &p.n, &err) == MT_OK);
    mt_free(a);
    mt_free(b);
    return p;
}

static void alone(const mt_model *m, const prompt *p, const mt_image_input *img, result *out) {
    mt_session *s;
    mt_err err;
    mt_session_params sp = {.n_ctx = 1024, .n_threads = 2};
    CHECK(mt_session_new(m, &sp, &s, &err) == MT_OK);
    mt_sampling sm = mt_sampling_default();
    *out = (result){0};
    mt_status st = mt_session_generate(s, p->ids, p->n, img, p->image, MAX_NEW, &sm, on_token, out, &out->stats, &err);
    CHECK_MSG(st == MT_OK, "alone: %s", err.msg);
    mt_session_free(s);
}

/* min_new: the end-of-turn tokens are masked until then (a request that must still run when the test looks). */
static mt_status submit_min(mt_sched *s, const mt_model *m, const prompt *p, const mt_image *im, result *r,
                            int64_t min_new, int64_t max_new, uint64_t *id, mt_err *err) {
    float *pixels = NULL;
    mt_image_input in;
    if (p->image) CHECK(mt_model_preprocess_image(m, im, &pixels, &in, err) == MT_OK);
    mt_sched_request req = {.ids = p->ids, .n_ids = p->n, .images = &in, .pixels = &pixels, .n_images = p->image,
                            .max_new = max_new, .min_new = min_new, .sampling = mt_sampling_default(),
                            .on_token = on_token, .on_done = on_done, .user = r};
    mt_status st = mt_sched_submit(s, &req, id, err);
    if (st) mt_free(pixels);
    return st;
}

static mt_status submit(mt_sched *s, const mt_model *m, const prompt *p, const mt_image *im, result *r,
                        int64_t max_new, uint64_t *id, mt_err *err) {
    return submit_min(s, m, p, im, r, 0, max_new, id, err);
}

static bool same(const result *a, const result *b) {
    return a->n == b->n && memcmp(a->t, b->t, (size_t)a->n * sizeof(int32_t)) == 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: sched MODEL_DIR IMAGE\n"), 2;
    mt_err err;
    mt_model *m;
    if (mt_model_open(argv[1], &m, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    mt_image im;
    if (mt_image_load(argv[2], MT_IMAGE_DEFAULT_MAX_PIXELS, &im, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    float *ref_pixels;
    mt_image_input img;
    CHECK(mt_model_preprocess_image(m, &im, &ref_pixels, &img, &err) == MT_OK);

    prompt p[N_REQ] = {
        make_prompt(m, "What is in", true, " this picture?", &img),
        make_prompt(m, "Hello", false, " there, how are you today?", &img),
        make_prompt(m, "A", false, "", &img),
        make_prompt(m, "Describe", true, " the colours, and count the shapes you see in it.", &img),
        make_prompt(m, "Write a short story about a red circle and a blue square that meet", false, ".", &img),
        make_prompt(m, "Is", true, "", &img),
    };
    result ref[N_REQ], got[N_REQ] = {0};
    for (int i = 0; i < N_REQ; i++) alone(m, &p[i], &img, &ref[i]);

    /* three slots for six requests, prompt chunks of 5 rows */
    mt_sched *s;
    mt_sched_params sp = {.n_threads = 2, .max_active = 3, .n_ctx = 1024, .step_rows = 5};
    CHECK(mt_sched_new(m, &sp, &s, &err) == MT_OK);
    for (int i = 0; i < N_REQ; i++) CHECK(submit(s, m, &p[i], &im, &got[i], MAX_NEW, NULL, &err) == MT_OK);
    wait_all(got, N_REQ);
    for (int i = 0; i < N_REQ; i++) {
        CHECK_MSG(got[i].st == MT_OK && same(&got[i], &ref[i]), "request %d: %lld tokens batched, %lld alone", i,
                  (long long)got[i].n, (long long)ref[i].n);
        CHECK(got[i].stats.prompt_tokens == p[i].n && got[i].stats.new_tokens == ref[i].stats.new_tokens);
    }
    mt_sched_stats ss = mt_sched_get_stats(s);
    printf("sched: %d requests in %llu steps of %llu rows; %d sequences cached\n", N_REQ,
           (unsigned long long)ss.steps, (unsigned long long)ss.step_rows, ss.cached);
    CHECK(ss.steps > 0 && ss.cached > 0 && ss.active == 0 && ss.queued == 0);

    /* request 0 again (its rows were evicted: three slots cache three), then the next chat turn: its prompt and
     * answer, then more, which reuses its rows */
    result again = {0};
    CHECK(submit(s, m, &p[0], &im, &again, MAX_NEW, NULL, &err) == MT_OK);
    wait_all(&again, 1);
    CHECK(same(&again, &ref[0]));
    prompt turn = {.image = true};
    int32_t more[3] = {p[1].ids[0], p[1].ids[1], p[1].ids[2]};
    turn.n = p[0].n + got[0].n + 3;
    turn.ids = mt_malloc_array((size_t)turn.n, sizeof(int32_t));
    memcpy(turn.ids, p[0].ids, (size_t)p[0].n * sizeof(int32_t));
    memcpy(turn.ids + p[0].n, got[0].t, (size_t)got[0].n * sizeof(int32_t));
    memcpy(turn.ids + p[0].n + got[0].n, more, sizeof more);
    result turn_ref, turn_got = {0};
    alone(m, &turn, &img, &turn_ref);
    CHECK(submit(s, m, &turn, &im, &turn_got, MAX_NEW, NULL, &err) == MT_OK);
    wait_all(&turn_got, 1);
    CHECK(same(&turn_got, &turn_ref));
    CHECK_MSG(turn_got.stats.reused_tokens >= p[0].n, "reused %lld of a %lld-token prefix",
              (long long)turn_got.stats.reused_tokens, (long long)p[0].n);

    /* a different image never reuses the rows of another */
    mt_image other = im;
    other.rgb = mt_malloc((size_t)(im.width * im.height * 3));
    memcpy(other.rgb, im.rgb, (size_t)(im.width * im.height * 3));
    for (int64_t i = 0; i < im.width * 3 * 8; i++) other.rgb[i] ^= 0xff;
    result diff = {0};
    CHECK(submit(s, m, &turn, &other, &diff, 2, NULL, &err) == MT_OK);
    wait_all(&diff, 1);
    CHECK_MSG(diff.stats.reused_tokens <= turn.n && diff.stats.reused_tokens < 2 + (int64_t)3,
              "a changed image reused %lld rows", (long long)diff.stats.reused_tokens);
    mt_free(other.rgb);

    /* cancellation from the callback, and by id */
    result stop = {.stop_after = 2}, cancel = {0};
    CHECK(submit(s, m, &p[1], &im, &stop, 50, NULL, &err) == MT_OK);
    wait_all(&stop, 1);
    CHECK(stop.st == MT_OK && stop.stats.stop == MT_STOP_CALLER && stop.n == 2);
    uint64_t id;
    CHECK(submit(s, m, &p[4], &im, &cancel, 1000, &id, &err) == MT_OK);
    mt_sched_cancel(s, id);
    wait_all(&cancel, 1);
    CHECK(cancel.st == MT_OK && cancel.stats.stop == MT_STOP_CALLER && cancel.n < 1000);

    /* a prompt over the context; bad ids */
    int32_t *big = mt_calloc(2000, sizeof(int32_t));
    prompt huge = {.ids = big, .n = 2000};
    result unused = {0};
    CHECK(submit(s, m, &huge, &im, &unused, 1, NULL, &err) == MT_ERR_CONTEXT);
    big[0] = -1;
    huge.n = 10;
    CHECK(submit(s, m, &huge, &im, &unused, 1, NULL, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "-1"));
    mt_free(big);
    mt_sched_free(s);

    /* the queue bound: one slot, one waiting, the third refused. The first two cannot end on an end-of-turn token,
     * which the tiny model may give early: the slot would free and the third find room. */
    mt_sched_params tight = {.n_threads = 1, .max_active = 1, .max_queued = 1, .n_ctx = 1024};
    CHECK(mt_sched_new(m, &tight, &s, &err) == MT_OK);
    result q[3] = {0};
    CHECK(submit_min(s, m, &p[4], &im, &q[0], 500, 500, NULL, &err) == MT_OK);
    while (mt_sched_get_stats(s).active == 0 && !q[0].done) nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    CHECK(submit_min(s, m, &p[4], &im, &q[1], 500, 500, NULL, &err) == MT_OK);
    CHECK(submit(s, m, &p[4], &im, &q[2], 500, NULL, &err) == MT_ERR_LIMIT && strstr(err.msg, "busy"));
    mt_sched_free(s); /* cancels the rest: each still gets its on_done */
    CHECK(q[0].done && q[1].done && q[1].stats.stop == MT_STOP_CALLER);

    for (int i = 0; i < N_REQ; i++) mt_free(p[i].ids);
    mt_free(turn.ids);
    mt_free(ref_pixels);
    mt_image_free(&im);
    mt_model_close(m);
    return check_report();
}
