/* train/checkpoint: bit-exact round trip and resume, keep_last, latest, and every failure the issue lists: an
 * unwritable folder, a full disk (RLIMIT_FSIZE makes writes fail with EFBIG, as a full disk fails them with
 * ENOSPC), allocation failure at each step, and bad or truncated checkpoint files. Earlier checkpoints must stay
 * intact and loadable after each failed save, and a failed load must leave the run's buffers untouched. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "check.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/rng.h"

#define NP 4

static char root[64];

/* A run's trainable state: four tensors (2D, 1D, a scalar and an empty one) with gradients. */
typedef struct run {
    float w[6 * 5], b[5], s[1], e[1];
    float gw[6 * 5], gb[5], gs[1], ge[1];
    mt_param p[NP];
    mt_adamw *opt;
} run;

static void run_init(run *r, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->p[0] = (mt_param){.name = "model.layers.0.w", .data = r->w, .grad = r->gw, .n = 30, .shape = {6, 5}, .ndim = 2, .decay = true};
    r->p[1] = (mt_param){.name = "model.layers.0.b", .data = r->b, .grad = r->gb, .n = 5, .shape = {5}, .ndim = 1};
    r->p[2] = (mt_param){.name = "visual.scale", .data = r->s, .grad = r->gs, .n = 1, .ndim = 0, .group = 1, .decay = true};
    r->p[3] = (mt_param){.name = "empty", .data = r->e, .grad = r->ge, .n = 0, .shape = {0, 3}, .ndim = 2};
    mt_rng g = mt_rng_stream(seed, MT_RNG_INIT, 0);
    for (int i = 0; i < 30; i++) r->w[i] = mt_rng_float(&g) - 0.5f;
    for (int i = 0; i < 5; i++) r->b[i] = mt_rng_float(&g);
    r->s[0] = 1.5f;
    mt_adamw_config cfg = mt_adamw_config_default();
    cfg.n_groups = 2;
    cfg.groups[1] = (mt_adamw_group){.lr = 1e-4, .weight_decay = 0};
    mt_err err;
    CHECK(mt_adamw_new(r->p, NP, &cfg, &r->opt, &err) == MT_OK);
}

/* k optimizer steps with gradients from a stream that depends only on (seed, step). */
static void run_steps(run *r, int from, int k) {
    for (int s = from; s < from + k; s++) {
        mt_rng g = mt_rng_stream(99, MT_RNG_SAMPLE, (uint64_t)s);
        for (int i = 0; i < 30; i++) r->gw[i] = mt_rng_float(&g) - 0.5f;
        for (int i = 0; i < 5; i++) r->gb[i] = mt_rng_float(&g) - 0.5f;
        r->gs[0] = mt_rng_float(&g);
        mt_adamw_step(r->opt, 1.0, NULL);
    }
}

static bool same_run(const run *a, const run *b) {
    bool same = memcmp(a->w, b->w, sizeof a->w) == 0 && memcmp(a->b, b->b, sizeof a->b) == 0 &&
                memcmp(a->s, b->s, sizeof a->s) == 0 && mt_adamw_t(a->opt) == mt_adamw_t(b->opt);
    for (size_t i = 0; i < NP; i++) {
        size_t bytes = (size_t)a->p[i].n * sizeof(float);
        same = same && (bytes == 0 || (memcmp(mt_adamw_exp_avg(a->opt, i), mt_adamw_exp_avg(b->opt, i), bytes) == 0 &&
                                       memcmp(mt_adamw_exp_avg_sq(a->opt, i), mt_adamw_exp_avg_sq(b->opt, i), bytes) == 0));
    }
    return same;
}

static cJSON *state_for(int64_t step) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "global_step", (double)step);
    cJSON_AddNumberToObject(s, "epoch", 1);
    mt_rng r = mt_rng_stream(5, MT_RNG_SHUFFLE, 1);
    r.ctr = (uint64_t)step * 1000 + 0xffffffffffull;
    cJSON_AddItemToObject(s, "rng", mt_rng_to_json(&r));
    cJSON *h = cJSON_AddArrayToObject(s, "loss_history");
    for (int i = 0; i < step; i++) cJSON_AddItemToArray(h, cJSON_CreateNumber(2.0 / (i + 1)));
    return s;
}

static const char *path_in(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", root, name);
    return buf;
}

static int64_t latest(const char *out) {
    char dir[4096];
    int64_t step = -2;
    mt_err err;
    CHECK(mt_checkpoint_latest(out, NULL, dir, sizeof dir, &step, &err) == MT_OK);
    return step;
}

static void test_round_trip(void) {
    char out[256], dir[4096], p[4200];
    path_in(out, sizeof out, "run");
    run a, b;
    run_init(&a, 1);
    run_init(&b, 2);
    run_steps(&a, 0, 3);
    cJSON *st = state_for(3);
    mt_err err;
    CHECK(mt_checkpoint_save(out, 3, a.p, NP, a.opt, st, 2, &err) == MT_OK);
    int64_t step;
    CHECK(mt_checkpoint_latest(out, NULL, dir, sizeof dir, &step, &err) == MT_OK && step == 3);
    CHECK(strstr(dir, "/checkpoint-3") != NULL);
    cJSON *got = NULL;
    int64_t saved = -1;
    CHECK(mt_checkpoint_load(dir, b.p, NP, b.opt, &got, &saved, &err) == MT_OK);
    CHECK(saved == 3 && got && cJSON_Compare(st, got, true));
    CHECK(same_run(&a, &b));
    mt_rng r1, r2;
    CHECK(mt_rng_from_json(cJSON_GetObjectItem(got, "rng"), "rng", &r1, &err) == MT_OK);
    CHECK(mt_rng_from_json(cJSON_GetObjectItem(st, "rng"), "rng", &r2, &err) == MT_OK);
    CHECK(r1.key == r2.key && r1.ctr == r2.ctr);
    cJSON_Delete(got);
    cJSON_Delete(st);

    /* Resume: both continue two steps and end bit-identical. */
    run_steps(&a, 3, 2);
    run_steps(&b, 3, 2);
    CHECK(same_run(&a, &b));

    /* The files the layout promises. */
    snprintf(p, sizeof p, "%s/optimizer.safetensors", dir);
    CHECK(mt_file_exists(p));
    mt_safetensors *sf;
    CHECK(mt_safetensors_open_file(p, &sf, &err) == MT_OK);
    CHECK(mt_safetensors_count(sf) == 2 * NP && mt_safetensors_find(sf, "exp_avg_sq/visual.scale"));
    CHECK(strcmp(mt_safetensors_meta(sf, "t"), "3") == 0);
    mt_safetensors_close(sf);
    mt_adamw_free(a.opt);
    mt_adamw_free(b.opt);
}

static void test_keep_last(void) {
    char out[256], p[4096];
    path_in(out, sizeof out, "keep");
    run a;
    run_init(&a, 3);
    mt_err err;
    for (int s = 1; s <= 5; s++) {
        run_steps(&a, s - 1, 1);
        cJSON *st = state_for(s);
        CHECK(mt_checkpoint_save(out, s * 10, a.p, NP, a.opt, st, 2, &err) == MT_OK);
        cJSON_Delete(st);
    }
    for (int s = 1; s <= 5; s++) {
        snprintf(p, sizeof p, "%s/checkpoint-%d", out, s * 10);
        CHECK_MSG(mt_file_exists(p) == (s >= 4), "checkpoint-%d", s * 10);
    }
    CHECK(latest(out) == 50);

    /* Saving the same step again replaces it atomically with the new content. */
    a.w[0] = 123.0f;
    cJSON *st = state_for(50);
    CHECK(mt_checkpoint_save(out, 50, a.p, NP, a.opt, st, 2, &err) == MT_OK);
    cJSON_Delete(st);
    run b;
    run_init(&b, 4);
    cJSON *got;
    int64_t step;
    snprintf(p, sizeof p, "%s/checkpoint-50", out);
    CHECK(mt_checkpoint_load(p, b.p, NP, b.opt, &got, &step, &err) == MT_OK && b.w[0] == 123.0f);
    cJSON_Delete(got);

    /* latest ignores temporary, incomplete and misnamed folders; the next save clears leftover temporaries. */
    const char *junk[] = {".tmp-checkpoint-90-1", "checkpoint-70", "checkpoint-8x", "checkpoint-"};
    for (size_t i = 0; i < MT_ARRAY_LEN(junk); i++) {
        snprintf(p, sizeof p, "%s/%s", out, junk[i]);
        CHECK(mkdir(p, 0755) == 0);
    }
    snprintf(p, sizeof p, "%s/.tmp-checkpoint-90-1/model.safetensors", out);
    CHECK(mt_file_write_atomic(p, "x", 1, &err) == MT_OK);
    CHECK(latest(out) == 50);
    st = state_for(60);
    CHECK(mt_checkpoint_save(out, 60, a.p, NP, a.opt, st, 0, &err) == MT_OK);
    cJSON_Delete(st);
    snprintf(p, sizeof p, "%s/.tmp-checkpoint-90-1", out);
    CHECK(!mt_file_exists(p));
    CHECK(latest(out) == 60);

    char empty[256], dir[8];
    path_in(empty, sizeof empty, "none");
    CHECK(mkdir(empty, 0755) == 0 && latest(empty) == -1);
    int64_t s2;
    CHECK(mt_checkpoint_latest(out, NULL, dir, sizeof dir, &s2, &err) == MT_ERR_LIMIT);
    path_in(empty, sizeof empty, "missing");
    CHECK(mt_checkpoint_latest(empty, NULL, p, sizeof p, &s2, &err) == MT_ERR_IO && strstr(err.msg, "missing"));
    mt_adamw_free(a.opt);
    mt_adamw_free(b.opt);
}

/* Loads out's latest checkpoint into a fresh run and checks it equals want. */
static void check_intact(const char *out, int64_t want_step, const run *want) {
    char dir[4096];
    int64_t step;
    mt_err err;
    CHECK(mt_checkpoint_latest(out, NULL, dir, sizeof dir, &step, &err) == MT_OK && step == want_step);
    run b;
    run_init(&b, 77);
    cJSON *st = NULL;
    CHECK(mt_checkpoint_load(dir, b.p, NP, b.opt, &st, &step, &err) == MT_OK);
    CHECK(same_run(want, &b));
    cJSON_Delete(st);
    mt_adamw_free(b.opt);
}

static void test_write_failures(void) {
    char out[256], p[4096];
    path_in(out, sizeof out, "fail");
    run a;
    run_init(&a, 5);
    run_steps(&a, 0, 2);
    mt_err err;
    cJSON *st = state_for(2);
    CHECK(mt_checkpoint_save(out, 2, a.p, NP, a.opt, st, 3, &err) == MT_OK);
    run saved; /* the same two steps again: what checkpoint-2 must hold */
    run_init(&saved, 5);
    run_steps(&saved, 0, 2);
    run_steps(&a, 2, 1);

    /* Unwritable: the output folder's parent is a regular file (root ignores permission bits, this it cannot). */
    path_in(p, sizeof p, "plainfile");
    CHECK(mt_file_write_atomic(p, "x", 1, &err) == MT_OK);
    strcat(p, "/out");
    CHECK(mt_checkpoint_save(p, 3, a.p, NP, a.opt, st, 3, &err) == MT_ERR_IO && strstr(err.msg, "plainfile/out"));

    /* Read-only folder (only meaningful when not root). */
    if (geteuid() != 0) {
        char ro[256];
        path_in(ro, sizeof ro, "readonly");
        CHECK(mkdir(ro, 0555) == 0);
        CHECK(mt_checkpoint_save(ro, 3, a.p, NP, a.opt, st, 3, &err) == MT_ERR_IO && strstr(err.msg, "readonly"));
    }

    /* Disk full: writes past 200 bytes fail. Every earlier checkpoint stays, and no temporary folder is left. */
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 200;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    mt_status s = mt_checkpoint_save(out, 3, a.p, NP, a.opt, st, 1, &err);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    CHECK(s == MT_ERR_IO && strstr(err.msg, "fail/.tmp-checkpoint-3") && strstr(err.msg, "large"));
    snprintf(p, sizeof p, "%s/checkpoint-3", out);
    CHECK(!mt_file_exists(p));
    CHECK(latest(out) == 2);
    check_intact(out, 2, &saved);

    /* Allocation failure at each point of save and load: an error or success, never a crash or a broken
     * checkpoint. */
    for (size_t k = 1; k < 60; k++) {
        mt_alloc_fail_after(k);
        s = mt_checkpoint_save(out, 3, a.p, NP, a.opt, st, 1, &err);
        mt_alloc_fail_after(0);
        CHECK(s == MT_OK || s == MT_ERR_NOMEM);
        if (s == MT_OK) break;
        check_intact(out, 2, &saved);
    }
    CHECK(latest(out) == 3);
    /* A failure while pruning only keeps an old checkpoint; a clean save prunes it. */
    CHECK(mt_checkpoint_save(out, 3, a.p, NP, a.opt, st, 1, &err) == MT_OK);
    snprintf(p, sizeof p, "%s/checkpoint-2", out);
    CHECK(!mt_file_exists(p)); /* keep_last 1 removed it, after the new one was in place */
    for (size_t k = 1; k < 60; k++) {
        run b;
        run_init(&b, 8);
        cJSON *got = NULL;
        int64_t step;
        snprintf(p, sizeof p, "%s/checkpoint-3", out);
        mt_alloc_fail_after(k);
        s = mt_checkpoint_load(p, b.p, NP, b.opt, &got, &step, &err);
        mt_alloc_fail_after(0);
        CHECK(s == MT_OK || s == MT_ERR_NOMEM);
        cJSON_Delete(got);
        mt_adamw_free(b.opt);
        if (s == MT_OK) break;
    }

    /* Bad arguments. */
    CHECK(mt_checkpoint_save(out, -1, a.p, NP, a.opt, st, 1, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_checkpoint_save(out, 4, a.p, NP, a.opt, NULL, 1, &err) == MT_ERR_INVALID_ARG);
    mt_param bad = a.p[0];
    bad.n = 7;
    CHECK(mt_checkpoint_save(out, 4, &bad, 1, NULL, st, 1, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "layers.0.w"));
    cJSON_Delete(st);
    mt_adamw_free(a.opt);
    mt_adamw_free(saved.opt);
}

/* Expects load of dir to fail with code and a message containing want, leaving b's buffers as they were. */
static void expect_bad_load(const char *dir, run *b, const mt_param *p, size_t n, mt_status code, const char *want) {
    run before = *b;
    cJSON *got = (cJSON *)&before; /* must stay untouched */
    int64_t step = -7;
    mt_err err;
    mt_status s = mt_checkpoint_load(dir, p, n, b->opt, &got, &step, &err);
    CHECK_MSG(s == code && strstr(err.msg, want), "want %d \"%s\", got %d \"%s\"", code, want, s, err.msg);
    CHECK(got == (cJSON *)&before && step == -7);
    CHECK(memcmp(before.w, b->w, sizeof b->w) == 0 && memcmp(before.b, b->b, sizeof b->b) == 0);
    CHECK(mt_adamw_t(b->opt) == 0 && mt_adamw_exp_avg(b->opt, 0)[0] == 0);
}

static void copy_file(const char *from, const char *to, size_t keep) {
    char *data;
    size_t len;
    mt_err err;
    CHECK(mt_file_read_all(from, 1 << 20, &data, &len, &err) == MT_OK);
    CHECK(mt_file_write_atomic(to, data, MT_MIN(len, keep), &err) == MT_OK);
    mt_free(data);
}

static void test_bad_files(void) {
    char out[256], good[4096], dir[4096], p[4200], q[4200];
    path_in(out, sizeof out, "bad");
    run a, b;
    run_init(&a, 9);
    run_init(&b, 10);
    run_steps(&a, 0, 1);
    mt_err err;
    cJSON *st = state_for(1);
    CHECK(mt_checkpoint_save(out, 1, a.p, NP, a.opt, st, 0, &err) == MT_OK);
    cJSON_Delete(st);
    snprintf(good, sizeof good, "%s/checkpoint-1", out);

    /* The run's table does not match the checkpoint. */
    mt_param p2[NP];
    memcpy(p2, b.p, sizeof p2);
    p2[0].shape[0] = 5;
    p2[0].shape[1] = 6;
    expect_bad_load(good, &b, p2, NP, MT_ERR_FORMAT, "\"model.layers.0.w\" has shape [6, 5], the run needs [5, 6]");
    memcpy(p2, b.p, sizeof p2);
    p2[1].name = "model.layers.0.bias";
    expect_bad_load(good, &b, p2, NP, MT_ERR_FORMAT, "no tensor \"model.layers.0.bias\"");
    expect_bad_load(good, &b, b.p, NP - 1, MT_ERR_FORMAT, "holds 4 tensors, the run trains 3");

    /* Damaged files, one at a time, in a copy of the good checkpoint. */
    snprintf(dir, sizeof dir, "%s/checkpoint-2", out);
    CHECK(mkdir(dir, 0755) == 0);
    const char *files[] = {"model.safetensors", "optimizer.safetensors", "trainer_state.json"};
    for (int f = 0; f < 3; f++) {
        snprintf(p, sizeof p, "%s/%s", good, files[f]);
        snprintf(q, sizeof q, "%s/%s", dir, files[f]);
        copy_file(p, q, SIZE_MAX);
    }
    snprintf(p, sizeof p, "%s/model.safetensors", good);
    snprintf(q, sizeof q, "%s/model.safetensors", dir);
    copy_file(p, q, 100); /* truncated inside the header */
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_FORMAT, "checkpoint-2/model.safetensors");
    copy_file(p, q, 300); /* header complete, data cut */
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_FORMAT, "checkpoint-2/model.safetensors");
    /* dtype and metadata */
    uint16_t bf[30] = {0};
    mt_st_tensor t[NP];
    for (int i = 0; i < NP; i++)
        t[i] = (mt_st_tensor){.name = a.p[i].name, .dtype = MT_F32, .ndim = a.p[i].ndim, .data = a.p[i].data,
                              .nbytes = (size_t)a.p[i].n * 4};
    for (int i = 0; i < NP; i++) memcpy(t[i].shape, a.p[i].shape, sizeof a.p[i].shape);
    const char *meta[] = {"step", "1", NULL};
    t[0].dtype = MT_BF16;
    t[0].data = bf;
    t[0].nbytes = 60;
    CHECK(mt_safetensors_write(q, t, NP, meta, &err) == MT_OK);
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_FORMAT, "\"model.layers.0.w\" is BF16, expected F32");
    t[0] = (mt_st_tensor){.name = a.p[0].name, .dtype = MT_F32, .ndim = 2, .shape = {6, 5}, .data = a.w, .nbytes = 120};
    const char *bad_meta[] = {"step", "-1", NULL};
    CHECK(mt_safetensors_write(q, t, NP, bad_meta, &err) == MT_OK);
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_FORMAT, "\"step\"");
    CHECK(mt_safetensors_write(q, t, NP, meta, &err) == MT_OK); /* good again */

    snprintf(p, sizeof p, "%s/optimizer.safetensors", good);
    snprintf(q, sizeof q, "%s/optimizer.safetensors", dir);
    copy_file(p, q, 50);
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_FORMAT, "checkpoint-2/optimizer.safetensors");
    CHECK(mt_safetensors_write(q, t, NP, (const char *[]){"optimizer", "sgd", "t", "1", NULL}, &err) == MT_OK);
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_FORMAT, "\"optimizer\" is not \"adamw\"");
    CHECK(mt_safetensors_write(q, t, NP, (const char *[]){"optimizer", "adamw", "t", "x", NULL}, &err) == MT_OK);
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_FORMAT, "\"t\"");
    CHECK(mt_safetensors_write(q, t, NP, (const char *[]){"optimizer", "adamw", "t", "1", NULL}, &err) == MT_OK);
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_FORMAT, "expected 2 moments");
    unlink(q);
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_IO, "checkpoint-2/optimizer.safetensors");
    copy_file(p, q, SIZE_MAX);

    snprintf(q, sizeof q, "%s/trainer_state.json", dir);
    CHECK(mt_file_write_atomic(q, "{\"step\": 1,", 11, &err) == MT_OK);
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_FORMAT, "trainer_state.json");
    CHECK(mt_file_write_atomic(q, "[1]", 3, &err) == MT_OK);
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_FORMAT, "trainer_state.json: not a JSON object");
    unlink(q);
    expect_bad_load(dir, &b, b.p, NP, MT_ERR_IO, "trainer_state.json");
    CHECK(latest(out) == 1); /* checkpoint-2 lacks its state: not complete */

    /* Without an optimizer only the weights and the state are read. */
    cJSON *got;
    int64_t step;
    CHECK(mt_checkpoint_load(good, b.p, NP, NULL, &got, &step, &err) == MT_OK && step == 1);
    CHECK(memcmp(a.w, b.w, sizeof a.w) == 0 && mt_adamw_t(b.opt) == 0);
    cJSON_Delete(got);
    mt_adamw_free(a.opt);
    mt_adamw_free(b.opt);
}

/* Two runs in one folder: each prunes and resumes from its own checkpoints only; a user's file keeps its folder;
 * a run never replaces another run's checkpoint. */
static void test_ownership(void) {
    char out[256], dir[4096], p[4200];
    path_in(out, sizeof out, "shared");
    run a;
    run_init(&a, 1);
    mt_err err;
    cJSON *mine = state_for(1), *theirs = state_for(1);
    cJSON_AddStringToObject(mine, "run_id", "aaaa");
    cJSON_AddStringToObject(theirs, "run_id", "bbbb");
    CHECK(mt_checkpoint_save(out, 10, a.p, NP, a.opt, theirs, 1, &err) == MT_OK);
    CHECK(mt_checkpoint_save(out, 1, a.p, NP, a.opt, mine, 1, &err) == MT_OK);
    snprintf(p, sizeof p, "%s/checkpoint-1/notes.txt", out);
    FILE *f = fopen(p, "w");
    if (f) fputs("mine", f), fclose(f);
    CHECK(mt_checkpoint_save(out, 2, a.p, NP, a.opt, mine, 1, &err) == MT_OK);
    CHECK(mt_checkpoint_save(out, 3, a.p, NP, a.opt, mine, 1, &err) == MT_OK);
    snprintf(p, sizeof p, "%s/checkpoint-10/model.safetensors", out);
    CHECK_MSG(mt_file_exists(p), "another run's checkpoint was pruned");
    snprintf(p, sizeof p, "%s/checkpoint-1/notes.txt", out);
    CHECK_MSG(mt_file_exists(p), "a user's file in a pruned checkpoint was removed");
    snprintf(p, sizeof p, "%s/checkpoint-1/model.safetensors", out);
    CHECK_MSG(!mt_file_exists(p), "the pruned checkpoint kept its weights");
    snprintf(p, sizeof p, "%s/checkpoint-2", out);
    CHECK_MSG(!mt_file_exists(p), "the run kept more than keep_last of its checkpoints");
    int64_t step;
    CHECK(mt_checkpoint_latest(out, "aaaa", dir, sizeof dir, &step, &err) == MT_OK && step == 3);
    CHECK(mt_checkpoint_latest(out, "bbbb", dir, sizeof dir, &step, &err) == MT_OK && step == 10);
    CHECK(mt_checkpoint_latest(out, NULL, dir, sizeof dir, &step, &err) == MT_OK && step == -1);
    CHECK(mt_checkpoint_save(out, 10, a.p, NP, a.opt, mine, 1, &err) == MT_ERR_IO && strstr(err.msg, "not written by"));
    cJSON *bad = state_for(1);
    cJSON_AddStringToObject(bad, "run_id", "../x");
    CHECK(mt_checkpoint_save(out, 4, a.p, NP, a.opt, bad, 1, &err) == MT_ERR_INVALID_ARG);
    cJSON_Delete(bad);
    cJSON_Delete(mine);
    cJSON_Delete(theirs);
    mt_adamw_free(a.opt);
}

int main(void) {
    strcpy(root, "/tmp/mt_ckpt_XXXXXX");
    if (!mkdtemp(root)) return 2;
    test_round_trip();
    test_keep_last();
    test_write_failures();
    test_bad_files();
    test_ownership();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return check_report();
}
