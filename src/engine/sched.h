/* engine/sched: many generations over one model at once - continuous batching, the server's engine.
 *
 *     mt_sched *s;  mt_sched_new(model, &params, &s, err);
 *     uint64_t id;  mt_sched_submit(s, &req, &id, err);   // returns at once; callbacks run on the scheduler thread
 *     mt_sched_cancel(s, id);                              // a client went away
 *     mt_sched_free(s);                                    // cancels what is left, then stops
 *
 * Each step is one forward over a batch of rows from many sequences (models/assemble.h): one row per sequence that
 * is decoding, then prompt rows, shortest prompt first (mt_sched_plan). A prompt of at most step_rows rows is read
 * whole in one step; a longer one is read in chunks sized so that a step takes about step_ms (mt_sched_row_budget),
 * alone: a long prompt never stalls the streams already running, and a short request that arrives meanwhile waits
 * for one short step, not for a long chunk. Images are encoded by the vision tower on a thread of their own, at a
 * lower CPU priority than the steps, while decoding goes on. docs/DESIGN.md ("Scheduling") gives the reasons.
 *
 * Prefix reuse: a finished sequence stays in the KV memory (least recently used first out, when its rows or its
 * slot are needed). A new prompt that begins with the same tokens and the same images (compared by a hash of their
 * pixels) takes that sequence over and prefills only what differs - the next turn of a chat repeats the previous
 * one. A prefix never ends inside an image.
 *
 * Memory: a request is admitted only when the rows it may need (prompt + max_new, at most n_ctx) fit in max_rows
 * beside those of the requests running, so a running generation never fails for want of KV rows. The buffers hold
 * up to half as much again plus a block per sequence (they grow ahead of the rows, nn/kv.h).
 */
#ifndef MT_SCHED_H
#define MT_SCHED_H

#include "models/assemble.h"

typedef struct mt_sched mt_sched;

typedef struct mt_sched_params {
    int n_threads;     /* threads of the decoder steps; 0: every CPU */
    int max_active;    /* sequences decoded together (mitten serve --parallel); 0: 8 */
    int64_t n_ctx;     /* rows one sequence may hold (prompt + answer); 0: 4096, at most the model's maximum */
    int64_t max_rows;  /* KV rows of every sequence together, cached prefixes included; 0: max_active * n_ctx */
    int64_t step_rows; /* most prompt rows in one step; a prompt this short is read in one step; 0: 64 */
    int64_t step_ms;   /* a step that reads part of a longer prompt is sized to take about this long; 0: 500 */
    int max_queued;    /* requests waiting for a slot; past it submit is MT_ERR_LIMIT; 0: 64 */
} mt_sched_params;

/* Called with each sampled token (never an end-of-turn token); false ends the generation (MT_STOP_CALLER). */
typedef bool (*mt_sched_token_fn)(void *user, int32_t token);
/* Called once, last: st MT_OK with the stop reason in stats, or the failure. After it the request is forgotten. */
typedef void (*mt_sched_done_fn)(void *user, mt_status st, const mt_err *err, const mt_gen_stats *stats);

typedef struct mt_sched_request {
    const int32_t *ids; /* [n_ids] the prompt, each image placeholder expanded (mt_model_expand_images) */
    int64_t n_ids;
    /* The images in order. On success submit takes pixels[i] (mt_malloc'd, backing images[i].pixels) and frees
     * them once encoded; on failure they stay the caller's. */
    const mt_image_input *images;
    float *const *pixels;
    int n_images;
    int64_t max_new;
    int64_t min_new; /* the end-of-turn tokens are masked until this many tokens came (vLLM's min_tokens); 0: none */
    mt_sampling sampling; /* MT_SEED_RANDOM draws a seed, reported in the stats */
    /* One of a group of answers to one prompt (GRPO's rollouts): a cached prefix is copied rather than taken over,
     * so that the others find it too, and this request's own sequence is dropped at the end rather than cached. A
     * group reads its prompt once when a request for that prompt has finished first. */
    bool share_prefix;
    mt_sched_token_fn on_token;
    mt_sched_done_fn on_done;
    void *user;
} mt_sched_request;

mt_status mt_sched_new(const mt_model *m, const mt_sched_params *p, mt_sched **out, mt_err *err);
/* Cancels every request left (their on_done says MT_STOP_CALLER), joins the threads and frees everything. */
void mt_sched_free(mt_sched *s);

/* Queues a request; *id names it for mt_sched_cancel. Errors: MT_ERR_LIMIT when the queue is full (the caller
 * should retry later), MT_ERR_CONTEXT when the prompt alone fills n_ctx, MT_ERR_INVALID_ARG for token ids outside
 * the vocabulary, images that do not match the prompt's image tokens or bad sampling parameters. */
mt_status mt_sched_submit(mt_sched *s, const mt_sched_request *req, uint64_t *id, mt_err *err);
/* Ends a request at the next step (on_done says MT_STOP_CALLER); an id already done is ignored. */
void mt_sched_cancel(mt_sched *s, uint64_t id);

typedef struct mt_sched_stats {
    int queued, active, cached; /* requests waiting, requests running, finished sequences kept for reuse */
    int64_t rows_used;          /* KV rows held */
    uint64_t steps, step_rows;  /* forwards run and the rows they took */
} mt_sched_stats;

mt_sched_stats mt_sched_get_stats(mt_sched *s);

/* The step policy, pure functions for the tests.
 *
 * mt_sched_row_budget: the prompt rows that keep a step near step_ms beside n_decode decoding rows, from recent steps
 * (rows and seconds, each a decaying sum); step_rows while nothing was measured. At least step_rows / 8 (and 1), so
 * a long prompt still moves when decoding alone fills the time. Steps sized this way converge to step_ms whenever
 * the time of a step grows with its rows (the budget's fixed point is the size that takes step_ms).
 *
 * mt_sched_plan: the rows each ready prompt (left[i] rows still to read) gives the next step, into take[i]. Shortest
 * first: a prompt of at most step_rows rows goes whole - the first always, the next ones while they fit the budget;
 * a longer prompt only alone, budget rows of it (at most step_rows). Returns the rows taken. */
int64_t mt_sched_row_budget(double rows, double seconds, int64_t step_ms, int64_t n_decode, int64_t step_rows);
int64_t mt_sched_plan(const int64_t *left, int n, int64_t step_rows, int64_t budget, int64_t *take);
const mt_sched_params *mt_sched_get_params(const mt_sched *s);

#endif
