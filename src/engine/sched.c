/* engine/sched: continuous batching over the batch-first forward (see sched.h).
 *
 * Threads: callers submit and cancel; the encoder thread turns a request's prompt rows into embeddings (the vision
 * tower for its images); the scheduler thread admits requests, builds each step's batch, runs it and samples. One
 * mutex guards the lists and the flags the threads share; callbacks run on the scheduler thread with it released,
 * so a callback may call mt_sched_cancel. Only the scheduler thread touches the KV memory. */
#include "engine/sched.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>

#include "engine/sampler.h"

#define MT_SCHED_MAX_ACTIVE 256
/* The encoder's nice value: the steps (nice 0) get about nine tenths of a core the two share (CFS weights 1024 and
 * 110), so a request's first token waits little on an image being encoded, and the image still moves while the
 * steps run without pause. */
#define MT_SCHED_ENCODER_NICE 10

typedef enum { JOB_QUEUED, JOB_ENCODE, JOB_READY, JOB_DECODE } job_state;

/* Where an image's rows lie in a prompt, and what the image was. */
typedef struct image_span {
    int64_t start, rows, end; /* end: one past its last row (rows of them are its own) */
    uint64_t hash;
} image_span;

typedef struct job {
    struct job *next; /* in the queue or the encoder's list */
    uint64_t id;
    job_state state;
    bool cancelled;
    mt_sched_request req; /* callbacks, user, max_new, sampling; its pointers are not kept */
    int32_t *tokens;      /* the prompt, then each sampled token */
    int64_t n_tokens, L;
    mt_image_input *images;
    float **pixels;
    image_span *spans;
    int n_images;
    int64_t *pos;     /* [axes][L] */
    int64_t next_pos; /* position of the next decoding row */
    int seq;
    int64_t reused, done; /* prompt rows found in the cache; prompt rows in the KV memory */
    int64_t reserve;      /* KV rows promised to it */
    mt_arena arena;
    mt_batch emb;  /* prompt rows [reused, L) as embeddings (and DeepStack rows) */
    bool embedded; /* emb is made */
    mt_sampler smp;
    int32_t last; /* the token the next decoding row feeds */
    mt_status st; /* a failure while encoding */
    mt_err err;
    mt_gen_stats stats;
    double t_submit, t_first;
} job;

/* A finished sequence kept for prefix reuse. */
typedef struct cached_seq {
    int seq;
    int32_t *tokens; /* the rows it holds */
    int64_t n;
    image_span *spans;
    int n_spans;
    uint64_t last_used;
} cached_seq;

struct mt_sched {
    const mt_model *m;
    mt_sched_params p;
    mt_kv *kv;
    mt_pool *pool, *enc_pool;
    mt_arena arena;
    pthread_t thread, enc_thread;
    bool thread_started, enc_started;
    pthread_mutex_t mu;
    pthread_cond_t wake, enc_wake;
    bool enc_ready;      /* the encoder thread made its pool (or failed: enc_st, enc_err) */
    mt_status enc_st;
    mt_err enc_err;
    double recent_rows, recent_secs; /* rows and seconds of the last steps, each sum decaying by half a step */
    bool stopping;
    bool cancel_pending; /* a cancel since the scheduler last looked */
    bool admit_blocked;  /* the queue's head did not fit; retried when a job ends */
    uint64_t next_id;
    job *queue_head, *queue_tail, *enc_head, *enc_tail;
    int n_queued;
    job **active; /* [max_active] */
    int n_active;
    cached_seq *cache; /* [max_active] */
    int n_cached;
    uint64_t tick;
    int64_t reserved; /* rows promised to active jobs */
    mt_sched_stats stats;
};

static const mt_sched_params defaults = {.max_active = 8, .n_ctx = 4096, .step_rows = 64, .step_ms = 500,
                                         .max_queued = 64};

/* ---- jobs ---- */

static void job_free(job *j) {
    if (!j) return;
    for (int i = 0; i < j->n_images; i++) mt_free(j->pixels[i]);
    mt_free(j->pixels);
    mt_free(j->images);
    mt_free(j->spans);
    mt_free(j->tokens);
    mt_free(j->pos);
    mt_arena_free(&j->arena);
    mt_sampler_release(&j->smp);
    mt_free(j);
}

/* Finds each image's (video's) span of image (video) tokens, in order; every such token must belong to one. A
 * Qwen3-VL video's rows are split by the timestamp text between its frames: its span ends after its last row. */
static mt_status find_spans(const mt_model *m, job *j, mt_err *err) {
    int64_t img_id = m->desc.image_token_id, vid_id = m->desc.video_row_id, t = 0;
    for (int i = 0; i < j->n_images; i++) {
        while (t < j->L && j->tokens[t] != img_id && (vid_id < 0 || j->tokens[t] != vid_id)) t++;
        int64_t id = j->images[i].video ? vid_id : img_id, rows = mt_model_input_rows(m, &j->images[i]);
        if (rows <= 0 || t + rows > j->L)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "%s %d does not match the prompt's %s tokens",
                              j->images[i].video ? "video" : "image", i + 1, j->images[i].video ? "video" : "image");
        int64_t end = t;
        for (int64_t r = 0; r < rows; end++) {
            if (end == j->L || (j->tokens[end] != id && (j->tokens[end] == img_id || j->tokens[end] == vid_id)))
                return mt_err_set(err, MT_ERR_INVALID_ARG, "input %d: its %lld placeholder tokens are not all "
                                  "before the next input's", i + 1, (long long)rows);
            r += j->tokens[end] == id;
        }
        j->spans[i] = (image_span){.start = t, .rows = rows, .end = end, .hash = mt_image_input_hash(&j->images[i])};
        t = end;
    }
    for (; t < j->L; t++)
        if ((img_id >= 0 && j->tokens[t] == img_id) || (vid_id >= 0 && j->tokens[t] == vid_id))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "the prompt has more image or video tokens than its %d "
                              "inputs give", j->n_images);
    return MT_OK;
}


/* A job for r: the prompt copied, the images' spans found, the sampler ready. The pixels stay the caller's until
 * submit succeeds. */
static mt_status job_new(mt_sched *s, const mt_sched_request *r, job **out, mt_err *err) {
    const mt_model *m = s->m;
    if (r->n_ids <= 0) return mt_err_set(err, MT_ERR_INVALID_ARG, "empty prompt");
    if (r->n_ids > s->p.n_ctx)
        return mt_err_set(err, MT_ERR_CONTEXT, "a prompt of %lld tokens does not fit the %lld-token context",
                          (long long)r->n_ids, (long long)s->p.n_ctx);
    if (r->n_images < 0 || r->n_images > 4096) return mt_err_set(err, MT_ERR_LIMIT, "%d images", r->n_images);
    if (r->n_images && !m->comp->vision)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s takes no images", m->comp->name);
    if (r->max_new < 1) return mt_err_set(err, MT_ERR_INVALID_ARG, "max_new must be at least 1");
    if (r->min_new < 0 || r->min_new > r->max_new)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "min_new %lld is outside [0, max_new %lld]", (long long)r->min_new,
                          (long long)r->max_new);
    for (int64_t i = 0; i < r->n_ids; i++)
        if (r->ids[i] < 0 || r->ids[i] >= m->desc.vocab_size)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "token id %d at position %lld is outside the vocabulary [0, %lld)",
                              r->ids[i], (long long)i, (long long)m->desc.vocab_size);
    job *j = mt_calloc(1, sizeof *j);
    if (!j) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    j->seq = -1;
    j->req = *r;
    j->L = r->n_ids;
    j->n_images = r->n_images;
    j->reserve = MT_MIN(r->n_ids + r->max_new, s->p.n_ctx);
    mt_arena_init(&j->arena, (size_t)1 << 20);
    j->tokens = mt_malloc_array((size_t)j->reserve + 1, sizeof *j->tokens);
    j->pos = mt_malloc_array((size_t)(j->L * m->desc.pos_axes), sizeof *j->pos);
    j->images = mt_calloc((size_t)r->n_images + 1, sizeof *j->images);
    j->spans = mt_calloc((size_t)r->n_images + 1, sizeof *j->spans);
    j->pixels = mt_calloc((size_t)r->n_images + 1, sizeof *j->pixels);
    mt_status st = j->tokens && j->pos && j->images && j->spans && j->pixels
                       ? MT_OK
                       : mt_err_set(err, MT_ERR_NOMEM, "out of memory for a prompt of %lld tokens", (long long)j->L);
    if (!st) {
        memcpy(j->tokens, r->ids, (size_t)j->L * sizeof *j->tokens);
        j->n_tokens = j->L;
        if (r->n_images) memcpy(j->images, r->images, (size_t)r->n_images * sizeof *j->images);
        st = find_spans(m, j, err);
    }
    mt_sampling sm = r->sampling;
    if (sm.seed == MT_SEED_RANDOM) sm.seed = mt_sampler_draw_seed();
    if (!st) st = mt_sampler_init(&j->smp, &sm, m->desc.vocab_size, err);
    j->smp.output_start = j->L;
    if (st) {
        j->n_images = 0; /* the pixels are not ours yet */
        job_free(j);
        return st;
    }
    for (int i = 0; i < j->n_images; i++) j->stats.image_tokens += j->spans[i].rows;
    j->stats.prompt_tokens = j->L;
    j->stats.seed = sm.seed;
    j->stats.eos_token = -1;
    j->t_submit = mt_time_now();
    *out = j;
    return MT_OK;
}

/* ---- cached sequences ---- */

static void cache_drop(mt_sched *s, int i) {
    mt_kv_seq_drop(s->kv, s->cache[i].seq);
    mt_free(s->cache[i].tokens);
    mt_free(s->cache[i].spans);
    s->cache[i] = s->cache[--s->n_cached];
}

static int64_t cache_rows(const mt_sched *s) {
    int64_t n = 0;
    for (int i = 0; i < s->n_cached; i++) n += s->cache[i].n;
    return n;
}

static int cache_lru(const mt_sched *s, int except) {
    int best = -1;
    for (int i = 0; i < s->n_cached; i++)
        if (i != except && (best < 0 || s->cache[i].last_used < s->cache[best].last_used)) best = i;
    return best;
}

/* The rows of c that j may reuse: the common prefix, cut before any image whose pixels differ or that it would
 * split, and at least one prompt row left to prefill (its logits give the first token). */
static int64_t common_prefix(const job *j, const cached_seq *c) {
    int64_t n = 0, lim = MT_MIN(c->n, j->L - 1);
    while (n < lim && c->tokens[n] == j->tokens[n]) n++;
    for (int i = 0; i < j->n_images && j->spans[i].start < n; i++) {
        const image_span *a = &j->spans[i];
        bool same = i < c->n_spans && c->spans[i].start == a->start && c->spans[i].end == a->end &&
                    c->spans[i].hash == a->hash;
        if (!same || a->end > n) return a->start;
    }
    return n;
}

/* A finished job's sequence kept for reuse (the oldest one goes when all slots are taken). */
static void cache_keep(mt_sched *s, job *j) {
    int64_t rows = mt_kv_seq_len(s->kv, j->seq);
    if (rows <= 0 || s->p.max_active < 1) {
        mt_kv_seq_drop(s->kv, j->seq);
        return;
    }
    if (s->n_cached == s->p.max_active) cache_drop(s, cache_lru(s, -1));
    cached_seq *c = &s->cache[s->n_cached];
    *c = (cached_seq){.seq = j->seq, .tokens = j->tokens, .n = rows, .spans = j->spans, .n_spans = j->n_images,
                      .last_used = ++s->tick};
    s->n_cached++;
    j->tokens = NULL;
    j->spans = NULL;
    j->seq = -1;
}

/* ---- admission ---- */

/* Takes a KV sequence for j - a cached one that shares its prefix, else a new one - when the rows it may need fit
 * beside those promised. false: not now. */
static bool admit(mt_sched *s, job *j, mt_err *err, mt_status *st) {
    int best = -1;
    int64_t best_n = 0;
    for (int i = 0; i < s->n_cached; i++) {
        int64_t n = common_prefix(j, &s->cache[i]);
        if (n > best_n) best_n = n, best = i;
    }
    bool fork = best >= 0 && j->req.share_prefix;
    int64_t cached = cache_rows(s) - (best >= 0 && !fork ? s->cache[best].n : 0);
    while (s->reserved + j->reserve + cached > s->p.max_rows) {
        int victim = cache_lru(s, best);
        if (victim < 0) return false;
        cached -= s->cache[victim].n;
        if (best == s->n_cached - 1) best = victim; /* cache_drop moves the last entry into the hole */
        cache_drop(s, victim);
    }
    *st = MT_OK;
    if (fork) {
        if ((*st = mt_kv_seq_fork(s->kv, s->cache[best].seq, best_n, &j->seq, err))) {
            j->seq = -1;
            return true;
        }
        s->cache[best].last_used = ++s->tick;
        j->reused = best_n;
    } else if (best >= 0) {
        j->seq = s->cache[best].seq;
        mt_kv_seq_truncate(s->kv, j->seq, best_n);
        mt_free(s->cache[best].tokens);
        mt_free(s->cache[best].spans);
        s->cache[best] = s->cache[--s->n_cached];
        j->reused = best_n;
    } else if ((*st = mt_kv_seq_new(s->kv, &j->seq, err))) {
        j->seq = -1;
        return true;
    }
    j->done = j->reused;
    j->stats.reused_tokens = j->reused;
    s->reserved += j->reserve;
    int64_t next;
    *st = mt_model_positions(s->m, j->tokens, j->L, j->images, j->n_images, 0, j->pos, &next, err);
    j->next_pos = next;
    return true;
}

/* The embeddings of prompt rows [reused, L), with the images in them through the vision tower. */
static mt_status encode(const mt_model *m, mt_pool *pool, job *j, mt_err *err) {
    int first = 0;
    while (first < j->n_images && j->spans[first].start < j->reused) first++;
    mt_ctx ctx = {.arena = &j->arena, .pool = pool};
    mt_status st = mt_model_assemble(m, &ctx, j->tokens + j->reused, j->L - j->reused, j->images + first,
                                     j->n_images - first, NULL, NULL, &j->emb, err);
    for (int i = 0; i < j->n_images; i++) {
        mt_free(j->pixels[i]);
        j->pixels[i] = NULL;
        j->images[i].pixels = NULL;
    }
    return st;
}

static bool needs_vision(const job *j) {
    for (int i = 0; i < j->n_images; i++)
        if (j->spans[i].start >= j->reused) return true;
    return false;
}

/* On Linux the nice value belongs to a thread, and threads inherit it from the one that starts them: niced first,
 * this thread then starts the encoder's pool. Elsewhere it would nice the whole process, so it is not done. Failing
 * to lower it costs only latency. */
static void lower_priority(void) {
#ifdef __linux__
    (void)setpriority(PRIO_PROCESS, 0, MT_SCHED_ENCODER_NICE);
#endif
}

static void *encoder_main(void *arg) {
    mt_sched *s = arg;
    lower_priority();
    mt_status made = s->m->comp->vision ? mt_pool_new(s->p.n_threads, &s->enc_pool, &s->enc_err) : MT_OK;
    pthread_mutex_lock(&s->mu);
    s->enc_st = made;
    s->enc_ready = true;
    pthread_cond_broadcast(&s->enc_wake);
    for (;;) {
        while (!s->enc_head && !s->stopping) pthread_cond_wait(&s->enc_wake, &s->mu);
        job *j = s->enc_head;
        if (!j) break;
        s->enc_head = j->next;
        if (!s->enc_head) s->enc_tail = NULL;
        bool skip = j->cancelled;
        pthread_mutex_unlock(&s->mu);
        mt_status st = skip ? MT_OK : encode(s->m, s->enc_pool, j, &j->err);
        pthread_mutex_lock(&s->mu);
        j->st = st;
        j->embedded = true;
        j->state = JOB_READY;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- the scheduler thread ---- */

static void remove_active(mt_sched *s, job *j) {
    for (int i = 0; i < s->n_active; i++)
        if (s->active[i] == j) {
            s->active[i] = s->active[--s->n_active];
            return;
        }
}

/* Keeps j's sequence for reuse (a success) or drops it, then reports j's end. */
static void finish(mt_sched *s, job *j, mt_status st, const mt_err *err, mt_stop_reason stop) {
    double now = mt_time_now(), first = j->t_first > 0 ? j->t_first : now;
    j->stats.stop = stop;
    j->stats.prefill_seconds = first - j->t_submit;
    j->stats.decode_seconds = now - first;
    pthread_mutex_lock(&s->mu);
    remove_active(s, j);
    if (j->seq >= 0) {
        s->reserved -= j->reserve;
        if (st || j->req.share_prefix) mt_kv_seq_drop(s->kv, j->seq);
        else cache_keep(s, j);
        j->seq = -1;
    }
    s->admit_blocked = false;
    pthread_mutex_unlock(&s->mu);
    if (j->req.on_done) j->req.on_done(j->req.user, st, st ? err : NULL, &j->stats);
    job_free(j);
}

/* A sampled token: streamed, or the end of j. */
static void take(mt_sched *s, job *j, int32_t tok) {
    j->stats.new_tokens++;
    if (j->t_first <= 0) j->t_first = mt_time_now();
    if (mt_model_is_eos(s->m, tok)) {
        j->stats.eos_token = tok;
        return finish(s, j, MT_OK, NULL, MT_STOP_EOS);
    }
    if (j->req.on_token && !j->req.on_token(j->req.user, tok)) return finish(s, j, MT_OK, NULL, MT_STOP_CALLER);
    j->tokens[j->n_tokens++] = tok;
    if (j->stats.new_tokens >= j->req.max_new) return finish(s, j, MT_OK, NULL, MT_STOP_MAX_TOKENS);
    if (mt_kv_seq_len(s->kv, j->seq) >= s->p.n_ctx) return finish(s, j, MT_OK, NULL, MT_STOP_CONTEXT);
    j->last = tok;
    j->state = JOB_DECODE;
}

typedef struct step_item {
    job *j;
    int64_t row0, n;
    bool sample; /* its last row's logits give a token */
} step_item;

/* Copies the DeepStack rows of a prompt chunk (rows [c0, c0 + n) of j->emb) into level lv's injection. */
static void chunk_injections(const job *j, int lv, int64_t c0, int64_t n, int64_t row0, int64_t H, int64_t *rows,
                             float *feat, int64_t *k) {
    const mt_injection *in = &j->emb.inject[lv];
    int64_t total = in->feat ? in->feat->shape[0] : 0;
    for (int64_t i = 0; i < total; i++) {
        int64_t r = in->rows[i];
        if (r < c0 || r >= c0 + n) continue;
        rows[*k] = row0 + r - c0;
        memcpy(feat + *k * H, mt_f32(in->feat) + i * H, (size_t)H * sizeof(float));
        (*k)++;
    }
}

int64_t mt_sched_row_budget(double rows, double seconds, int64_t step_ms, int64_t n_decode, int64_t step_rows) {
    int64_t least = MT_MAX(1, step_rows / 8);
    if (!(rows > 0 && seconds > 0)) return step_rows;
    double fit = (double)step_ms / 1000 * rows / seconds - (double)n_decode;
    if (!(fit < (double)step_rows)) return step_rows;
    return fit < (double)least ? least : (int64_t)fit;
}

int64_t mt_sched_plan(const int64_t *left, int n, int64_t step_rows, int64_t budget, int64_t *take) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) take[i] = 0;
    for (;;) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!take[i] && left[i] > 0 && (best < 0 || left[i] < left[best])) best = i;
        if (best < 0) return total;
        int64_t r = left[best];
        if (r <= step_rows && (total == 0 || total + r <= budget)) {
            take[best] = r;
            total += r;
            continue;
        }
        if (total == 0) take[best] = total = MT_MAX(1, MT_MIN(r, MT_MIN(budget, step_rows)));
        return total;
    }
}

/* One forward: a row for each decoding job, then the prompt rows mt_sched_plan gives. */
static void run_step(mt_sched *s, job **jobs, int n_jobs) {
    const mt_model *m = s->m;
    int64_t H = m->desc.hidden_size, V = m->desc.vocab_size, T = 0;
    int axes = m->desc.pos_axes, n_items = 0, n_dec = 0;
    step_item items[MT_SCHED_MAX_ACTIVE];
    int64_t left[MT_SCHED_MAX_ACTIVE], chunk[MT_SCHED_MAX_ACTIVE];
    for (int i = 0; i < n_jobs; i++) {
        left[i] = jobs[i]->state == JOB_READY ? jobs[i]->L - jobs[i]->done : 0;
        if (jobs[i]->state == JOB_DECODE) items[n_items++] = (step_item){jobs[i], T++, 1, true};
    }
    n_dec = n_items;
    int64_t budget = mt_sched_row_budget(s->recent_rows, s->recent_secs, s->p.step_ms, n_dec, s->p.step_rows);
    mt_sched_plan(left, n_jobs, s->p.step_rows, budget, chunk);
    for (int i = 0; i < n_jobs; i++)
        if (chunk[i] > 0) {
            job *j = jobs[i];
            items[n_items++] = (step_item){j, T, chunk[i], j->done + chunk[i] == j->L};
            T += chunk[i];
        }
    if (T == 0) return;
    double t0 = mt_time_now();
    mt_arena_reset(&s->arena);
    mt_ctx ctx = {.arena = &s->arena, .pool = s->pool};
    mt_tensor *x = mt_tensor_new_2d(&ctx, MT_F32, T, H);
    int64_t *pos = mt_arena_alloc(&s->arena, (size_t)(axes * T) * sizeof *pos);
    int32_t *seq = mt_arena_alloc(&s->arena, (size_t)T * sizeof *seq);
    int32_t *dec_ids = mt_arena_alloc(&s->arena, (size_t)(n_dec + 1) * sizeof *dec_ids);
    int64_t *idx = mt_arena_alloc(&s->arena, (size_t)n_items * sizeof *idx), n_idx = 0;
    mt_injection inj[MT_MAX_DEEPSTACK];
    int n_levels = 0;
    bool ok = x && pos && seq && dec_ids && idx;
    for (int i = 0; ok && i < n_items; i++) {
        const step_item *it = &items[i];
        job *j = it->j;
        for (int64_t r = 0; r < it->n; r++) {
            seq[it->row0 + r] = j->seq;
            for (int a = 0; a < axes; a++)
                pos[a * T + it->row0 + r] = j->state == JOB_DECODE ? j->next_pos : j->pos[a * j->L + j->done + r];
        }
        if (it->sample) idx[n_idx++] = it->row0 + it->n - 1;
        if (j->state == JOB_DECODE) {
            dec_ids[i] = j->last;
            continue;
        }
        int64_t c0 = j->done - j->reused;
        memcpy(mt_f32(x) + it->row0 * H, mt_f32(j->emb.embeds) + c0 * H, (size_t)(it->n * H) * sizeof(float));
        n_levels = MT_MAX(n_levels, j->emb.n_inject);
    }
    mt_tensor *e = ok && n_dec ? mt_model_embed(m, &ctx, dec_ids, n_dec) : NULL;
    if (e) memcpy(mt_f32(x), mt_f32(e), (size_t)(n_dec * H) * sizeof(float));
    ok = ok && (!n_dec || e);
    for (int lv = 0; ok && lv < n_levels; lv++) {
        int64_t *rows = mt_arena_alloc(&s->arena, (size_t)T * sizeof *rows), k = 0;
        mt_tensor *feat = mt_tensor_new_2d(&ctx, MT_F32, T, H);
        ok = rows && feat;
        for (int i = n_dec; ok && i < n_items; i++)
            if (items[i].j->emb.n_inject > lv)
                chunk_injections(items[i].j, lv, items[i].j->done - items[i].j->reused, items[i].n, items[i].row0, H,
                                 rows, mt_f32(feat), &k);
        if (ok) feat->shape[0] = k;
        inj[lv] = (mt_injection){.layer = lv, .rows = rows, .feat = k ? feat : NULL};
    }
    mt_batch b = {.n = T, .embeds = x, .pos = pos, .seq = seq, .inject = inj, .n_inject = n_levels};
    mt_tensor *h = ok ? mt_model_forward(m, &ctx, s->kv, &b, NULL) : NULL;
    mt_tensor *lg = h && n_idx ? mt_model_logits(m, &ctx, h, idx, n_idx) : NULL;
    if (!h || (n_idx && !lg)) {
        mt_err err = ctx.err;
        mt_status st = ctx.status ? ctx.status : mt_err_set(&err, MT_ERR_NOMEM, "out of memory for a step of %lld rows",
                                                           (long long)T);
        for (int i = 0; i < n_items; i++) finish(s, items[i].j, st, &err, MT_STOP_CALLER);
        return;
    }
    s->recent_rows = s->recent_rows / 2 + (double)T;
    s->recent_secs = s->recent_secs / 2 + (mt_time_now() - t0);
    pthread_mutex_lock(&s->mu);
    s->stats.steps++;
    s->stats.step_rows += (uint64_t)T;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0, r = 0; i < n_items; i++) {
        job *j = items[i].j;
        if (j->state == JOB_DECODE) j->next_pos++;
        else j->done += items[i].n;
        if (!items[i].sample) continue;
        float *row = mt_f32(lg) + (int64_t)r++ * V;
        if (j->stats.new_tokens < j->req.min_new)
            for (size_t k = 0; k < s->m->desc.n_eos; k++)
                if (s->m->desc.eos_ids[k] >= 0 && s->m->desc.eos_ids[k] < V) row[s->m->desc.eos_ids[k]] = -INFINITY;
        int32_t tok = mt_sampler_pick(&j->smp, row, j->tokens, j->n_tokens);
        take(s, j, tok);
    }
}

static bool has_work(const mt_sched *s) {
    if (s->cancel_pending) return true;
    if (s->queue_head && s->n_active < s->p.max_active && !s->admit_blocked) return true;
    for (int i = 0; i < s->n_active; i++)
        if (s->active[i]->state != JOB_ENCODE) return true;
    return false;
}

static void *sched_main(void *arg) {
    mt_sched *s = arg;
    job *jobs[MT_SCHED_MAX_ACTIVE], *ending[MT_SCHED_MAX_ACTIVE];
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!has_work(s) && !(s->stopping && !s->queue_head && !s->n_active)) pthread_cond_wait(&s->wake, &s->mu);
        if (s->stopping && !s->queue_head && !s->n_active) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        s->cancel_pending = false;
        /* cancelled while queued: ended here, never admitted */
        job *gone = NULL;
        for (job **pp = &s->queue_head; *pp;) {
            job *j = *pp;
            if (!j->cancelled) {
                s->queue_tail = j;
                pp = &j->next;
                continue;
            }
            *pp = j->next;
            s->n_queued--;
            j->next = gone;
            gone = j;
        }
        if (!s->queue_head) s->queue_tail = NULL;
        while (s->queue_head && s->n_active < s->p.max_active) {
            job *j = s->queue_head;
            mt_status st;
            if (!admit(s, j, &j->err, &st)) {
                s->admit_blocked = true;
                break;
            }
            s->queue_head = j->next;
            if (!s->queue_head) s->queue_tail = NULL;
            s->n_queued--;
            j->next = NULL;
            s->active[s->n_active++] = j;
            j->st = st;
            if (!st && needs_vision(j)) {
                j->state = JOB_ENCODE;
                if (s->enc_tail) s->enc_tail->next = j;
                else s->enc_head = j;
                s->enc_tail = j;
                pthread_cond_signal(&s->enc_wake);
            } else {
                j->state = JOB_READY;
            }
        }
        int n_jobs = 0, n_ending = 0;
        for (int i = 0; i < s->n_active; i++) {
            job *j = s->active[i];
            if (j->state == JOB_ENCODE) continue;
            if (j->cancelled || j->st) ending[n_ending++] = j;
            else jobs[n_jobs++] = j;
        }
        pthread_mutex_unlock(&s->mu);
        while (gone) {
            job *j = gone;
            gone = j->next;
            finish(s, j, MT_OK, NULL, MT_STOP_CALLER);
        }
        for (int i = 0; i < n_ending; i++)
            finish(s, ending[i], ending[i]->st, &ending[i]->err, MT_STOP_CALLER);
        /* prompts without images to encode are embedded here: a table lookup, no tower */
        int kept = 0;
        for (int i = 0; i < n_jobs; i++) {
            job *j = jobs[i];
            if (j->state == JOB_READY && !j->embedded) {
                j->embedded = true;
                mt_status st = encode(s->m, s->pool, j, &j->err);
                if (st) {
                    finish(s, j, st, &j->err, MT_STOP_CALLER);
                    continue;
                }
            }
            jobs[kept++] = j;
        }
        run_step(s, jobs, kept);
    }
}

/* ---- public ---- */

mt_status mt_sched_new(const mt_model *m, const mt_sched_params *p, mt_sched **out, mt_err *err) {
    mt_sched_params q = p ? *p : defaults;
    if (q.max_active <= 0) q.max_active = defaults.max_active;
    if (q.max_active > MT_SCHED_MAX_ACTIVE)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "at most %d requests may run at once, not %d", MT_SCHED_MAX_ACTIVE,
                          q.max_active);
    if (q.n_ctx <= 0) q.n_ctx = MT_MIN(defaults.n_ctx, m->desc.max_positions);
    mt_status ctx_st = mt_model_check_context(m, q.n_ctx, err);
    if (ctx_st) return ctx_st;
    if (q.max_rows <= 0) q.max_rows = q.n_ctx * q.max_active;
    if (q.max_rows < q.n_ctx)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%lld KV rows in all cannot hold one %lld-token context",
                          (long long)q.max_rows, (long long)q.n_ctx);
    if (q.step_rows <= 0) q.step_rows = defaults.step_rows;
    if (q.step_ms <= 0) q.step_ms = defaults.step_ms;
    if (q.max_queued <= 0) q.max_queued = defaults.max_queued;
    mt_sched *s = mt_calloc(1, sizeof *s);
    if (!s) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    s->m = m;
    s->p = q;
    mt_arena_init(&s->arena, (size_t)64 << 20);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->enc_wake, NULL);
    s->active = mt_calloc((size_t)q.max_active, sizeof *s->active);
    s->cache = mt_calloc((size_t)q.max_active, sizeof *s->cache);
    mt_status st = s->active && s->cache ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    if (!st) st = mt_pool_new(q.n_threads, &s->pool, err);
    /* no row limit in the KV memory itself: it counts capacity, which grows ahead of the rows, so its limit could
     * refuse rows the reservations here already promised */
    if (!st) st = mt_model_kv_new(m, 2 * q.max_active, 0, &s->kv, err);
    if (!st && pthread_create(&s->enc_thread, NULL, encoder_main, s))
        st = mt_err_set(err, MT_ERR_NOMEM, "cannot start the image encoder thread");
    s->enc_started = !st;
    if (!st) {
        pthread_mutex_lock(&s->mu);
        while (!s->enc_ready) pthread_cond_wait(&s->enc_wake, &s->mu);
        pthread_mutex_unlock(&s->mu);
        if ((st = s->enc_st)) *err = s->enc_err;
    }
    if (!st && pthread_create(&s->thread, NULL, sched_main, s))
        st = mt_err_set(err, MT_ERR_NOMEM, "cannot start the scheduler thread");
    s->thread_started = !st;
    if (st) {
        mt_sched_free(s);
        return st;
    }
    *out = s;
    return MT_OK;
}

void mt_sched_free(mt_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    for (job *j = s->queue_head; j; j = j->next) j->cancelled = true;
    for (int i = 0; i < s->n_active; i++) s->active[i]->cancelled = true;
    s->cancel_pending = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mu);
    if (s->thread_started) pthread_join(s->thread, NULL);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->enc_wake);
    pthread_mutex_unlock(&s->mu);
    if (s->enc_started) pthread_join(s->enc_thread, NULL);
    while (s->n_cached) cache_drop(s, s->n_cached - 1);
    mt_kv_free(s->kv);
    mt_pool_free(s->pool);
    mt_pool_free(s->enc_pool);
    mt_arena_free(&s->arena);
    mt_free(s->active);
    mt_free(s->cache);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->enc_wake);
    pthread_mutex_destroy(&s->mu);
    mt_free(s);
}

mt_status mt_sched_submit(mt_sched *s, const mt_sched_request *req, uint64_t *id, mt_err *err) {
    job *j = NULL;
    mt_status st = job_new(s, req, &j, err);
    if (st) return st;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) st = mt_err_set(err, MT_ERR_LIMIT, "shutting down");
    else if (s->n_queued >= s->p.max_queued)
        st = mt_err_set(err, MT_ERR_LIMIT, "busy: %d requests are waiting already", s->n_queued);
    if (!st) {
        j->id = ++s->next_id;
        for (int i = 0; i < j->n_images; i++) j->pixels[i] = req->pixels[i];
        if (s->queue_tail) s->queue_tail->next = j;
        else s->queue_head = j;
        s->queue_tail = j;
        s->n_queued++;
        if (id) *id = j->id;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->mu);
    if (st) {
        j->n_images = 0;
        job_free(j);
    }
    return st;
}

void mt_sched_cancel(mt_sched *s, uint64_t id) {
    pthread_mutex_lock(&s->mu);
    for (job *j = s->queue_head; j; j = j->next)
        if (j->id == id) j->cancelled = true;
    for (int i = 0; i < s->n_active; i++)
        if (s->active[i]->id == id) s->active[i]->cancelled = true;
    s->cancel_pending = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

mt_sched_stats mt_sched_get_stats(mt_sched *s) {
    pthread_mutex_lock(&s->mu);
    mt_sched_stats st = s->stats;
    st.queued = s->n_queued;
    st.active = s->n_active;
    st.cached = s->n_cached;
    st.rows_used = mt_kv_rows_used(s->kv);
    pthread_mutex_unlock(&s->mu);
    return st;
}

const mt_sched_params *mt_sched_get_params(const mt_sched *s) { return &s->p; }
