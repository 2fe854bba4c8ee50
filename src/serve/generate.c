/* serve/generate: a completion request from its body to its answer (see serve_int.h).
 *
 * The connection's thread parses the body, renders the chat template, decodes and preprocesses the images and
 * tokenizes (so that work runs beside the scheduler, not in it), then submits to the scheduler. The scheduler's
 * callbacks only append token ids to a shared list (gen); the connection's thread detokenizes, cuts at stop strings,
 * takes out tool calls and writes the answer - at once as server-sent events when streamed, as one JSON object
 * otherwise. While it waits it watches the client's socket, the request's time limit and the server's shutdown,
 * and cancels the generation when any says so. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/json.h"
#include "engine/sampler.h"
#include "serve/serve_int.h"
#include "serve/tool_calls.h"
#include "text/chat_template.h"

/* ---- the token list the scheduler's callbacks fill ---- */

typedef struct gen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t *tok;
    size_t n, cap;
    bool done, oom;
    mt_status st;
    mt_err err;
    mt_gen_stats stats;
    int refs; /* the scheduler's and the request's */
} gen;

static void gen_release(gen *g) {
    pthread_mutex_lock(&g->mu);
    bool last = --g->refs == 0;
    pthread_mutex_unlock(&g->mu);
    if (!last) return;
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    mt_free(g->tok);
    mt_free(g);
}

/* A list the request holds; submitting gives the scheduler its own reference. */
static gen *gen_new(void) {
    gen *g = mt_calloc(1, sizeof *g);
    if (!g) return NULL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->refs = 1;
    return g;
}

static bool gen_on_token(void *user, int32_t t) {
    gen *g = user;
    pthread_mutex_lock(&g->mu);
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        int32_t *p = mt_realloc(g->tok, cap * sizeof *p);
        if (p) g->tok = p, g->cap = cap;
    }
    bool ok = g->n < g->cap;
    if (ok) g->tok[g->n++] = t;
    else g->oom = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return ok;
}

static void gen_on_done(void *user, mt_status st, const mt_err *err, const mt_gen_stats *stats) {
    gen *g = user;
    pthread_mutex_lock(&g->mu);
    g->done = true;
    g->st = st;
    if (st && err) g->err = *err;
    g->stats = *stats;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    gen_release(g);
}

/* ---- a request ---- */

typedef struct request {
    mt_server *s;
    struct MHD_Connection *c;
    char url[32];
    mt_oai_request oai;
    gen *g;
    uint64_t sched_id;
    size_t taken; /* tokens of g handled */
    mt_detok_stream *detok;
    mt_out_filter filter;
    mt_buf content; /* the answer (not streamed) */
    mt_buf sse;     /* events not sent yet (streamed) */
    cJSON *tool_calls;
    char id[48];
    time_t created;
    int64_t prompt_tokens;
    double t0, deadline;
    bool cancelled, stop_string, timed_out, client_gone, finished, ended;
    const char *finish_reason;
} request;

static void request_free(request *q) {
    if (q->g) gen_release(q->g);
    mt_detok_stream_free(q->detok);
    mt_out_filter_free(&q->filter);
    mt_buf_free(&q->content);
    mt_buf_free(&q->sse);
    cJSON_Delete(q->tool_calls);
    mt_oai_request_free(&q->oai);
    mt_free(q);
}

static void cancel(request *q) {
    if (q->cancelled) return;
    q->cancelled = true;
    mt_sched_cancel(q->s->sched, q->sched_id);
}

/* false once the client closed its end (a read would give end-of-file). */
static bool client_alive(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!i) return true;
    char b;
    ssize_t r = recv(i->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR));
}

/* ---- what the client receives ---- */

static cJSON *chunk_base(const request *q) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", q->id);
    cJSON_AddStringToObject(c, "object", q->oai.chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(c, "created", (double)q->created);
    cJSON_AddStringToObject(c, "model", q->s->p.model_id);
    cJSON_AddNullToObject(c, "system_fingerprint");
    return c;
}

static void add_event(request *q, cJSON *v) {
    char *text = mt_json_print(v, false);
    cJSON_Delete(v);
    if (!text) {
        q->sse.oom = true;
        return;
    }
    mt_buf_adds(&q->sse, "data: ");
    mt_buf_adds(&q->sse, text);
    mt_buf_adds(&q->sse, "\n\n");
    mt_free(text);
}

/* One streamed chunk: a delta (chat) or text (completions), and the finish reason when it is the last. */
static void add_chunk(request *q, const char *text, size_t n, cJSON *delta, const char *finish) {
    cJSON *c = chunk_base(q), *choices = cJSON_AddArrayToObject(c, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", 0);
    if (q->oai.chat) {
        if (!delta) {
            delta = cJSON_CreateObject();
            if (text) cJSON_AddItemToObject(delta, "content", mt_json_string_n(text, n));
        }
        cJSON_AddItemToObject(ch, "delta", delta);
    } else {
        cJSON_AddItemToObject(ch, "text", mt_json_string_n(text ? text : "", n));
    }
    cJSON_AddNullToObject(ch, "logprobs");
    if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
    else cJSON_AddNullToObject(ch, "finish_reason");
    if (q->oai.include_usage) cJSON_AddNullToObject(c, "usage");
    add_event(q, c);
}

static cJSON *usage(const request *q) {
    cJSON *u = cJSON_CreateObject();
    int64_t out = q->g->stats.new_tokens;
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)q->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)out);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(q->prompt_tokens + out));
    cJSON *details = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(details, "cached_tokens", (double)q->g->stats.reused_tokens);
    return u;
}

/* Text of the answer as it comes. */
static void deliver(request *q, const char *text, size_t n) {
    if (!n) return;
    if (q->oai.stream) add_chunk(q, text, n, NULL, NULL);
    else mt_buf_add(&q->content, text, n);
}

static void take_text(request *q, const char *piece, size_t len) {
    mt_buf out = {0};
    if (mt_out_filter_push(&q->filter, piece, len, &out) && !q->stop_string) {
        q->stop_string = true;
        cancel(q);
    }
    deliver(q, out.p, out.n);
    mt_buf_free(&out);
}

/* The end: what the detokenizer and the filter held back, tool calls, the finish reason. */
static void finish(request *q) {
    const char *piece;
    size_t len;
    mt_err err;
    if (!q->stop_string && !mt_detok_stream_flush(q->detok, &piece, &len, &err) && len) take_text(q, piece, len);
    mt_buf rest = {0};
    mt_out_filter_flush(&q->filter, &rest);
    deliver(q, rest.p, rest.n);
    mt_buf_free(&rest);
    if (q->filter.tool.n) {
        uint64_t seed = mt_sampler_draw_seed() << 32 ^ (uint64_t)q->created;
        if (mt_tool_calls_parse(q->filter.tool.p, q->filter.tool.n, seed, &q->tool_calls, &err))
            deliver(q, q->filter.tool.p, q->filter.tool.n); /* not a well-formed call: it is text */
    }
    mt_stop_reason stop = q->g->stats.stop;
    q->finish_reason = q->tool_calls                                    ? "tool_calls"
                       : q->stop_string || stop == MT_STOP_EOS         ? "stop"
                                                                        : "length";
    q->finished = true;
}

/* Waits up to wait seconds for tokens and handles them; true once the answer is complete. */
static bool pump(request *q, double wait) {
    gen *g = q->g;
    int32_t local[256];
    size_t n = 0;
    pthread_mutex_lock(&g->mu);
    if (g->n == q->taken && !g->done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)(wait * 1e9);
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    while (q->taken + n < g->n && n < 256) local[n] = g->tok[q->taken + n], n++;
    bool done = g->done && q->taken + n == g->n;
    pthread_mutex_unlock(&g->mu);
    q->taken += n;
    for (size_t i = 0; i < n && !q->stop_string; i++) {
        const char *piece;
        size_t len;
        mt_err err;
        if (mt_detok_stream_push(q->detok, local[i], &piece, &len, &err)) continue;
        if (len) take_text(q, piece, len);
    }
    if (done) {
        finish(q);
        return true;
    }
    if (!q->cancelled) {
        bool cut;
        pthread_mutex_lock(&q->s->mu);
        cut = q->s->cutting;
        pthread_mutex_unlock(&q->s->mu);
        if (mt_time_now() > q->deadline) q->timed_out = true;
        else if (!client_alive(q->c)) q->client_gone = true;
        if (cut || q->timed_out || q->client_gone) cancel(q);
    }
    return false;
}

static void log_request(request *q, int http) {
    char detail[200];
    const mt_gen_stats *st = &q->g->stats;
    double tps = st->decode_seconds > 0 ? (double)st->new_tokens / st->decode_seconds : 0;
    snprintf(detail, sizeof detail, "prompt %lld (cached %lld) answer %lld tok, first token %.2fs, %.1f tok/s, %s%s%s",
             (long long)q->prompt_tokens, (long long)st->reused_tokens, (long long)st->new_tokens, st->prefill_seconds,
             tps, q->g->st ? "failed" : q->finish_reason ? q->finish_reason : "-",
             q->client_gone ? ", client gone" : "", q->timed_out ? ", time limit" : "");
    mt_serve_log(q->s, "POST", q->url, http, mt_time_now() - q->t0, detail);
}

static void request_end(request *q, int http) {
    log_request(q, http);
    request_free(q);
}

/* ---- streamed answers ---- */

static void stream_end(request *q) {
    if (q->g->st) {
        cJSON *e = cJSON_CreateObject(), *o = cJSON_AddObjectToObject(e, "error");
        cJSON_AddStringToObject(o, "message", q->g->err.msg);
        cJSON_AddStringToObject(o, "type", "server_error");
        add_event(q, e);
    } else {
        if (q->tool_calls) {
            cJSON *delta = cJSON_CreateObject(), *calls = cJSON_Duplicate(q->tool_calls, true);
            int i = 0;
            cJSON *call;
            cJSON_ArrayForEach(call, calls) cJSON_AddNumberToObject(call, "index", i++);
            cJSON_AddItemToObject(delta, "tool_calls", calls);
            add_chunk(q, NULL, 0, delta, NULL);
        }
        add_chunk(q, NULL, 0, q->oai.chat ? cJSON_CreateObject() : NULL, q->finish_reason);
        if (q->oai.include_usage) {
            cJSON *c = chunk_base(q);
            cJSON_AddArrayToObject(c, "choices");
            cJSON_AddItemToObject(c, "usage", usage(q));
            add_event(q, c);
        }
    }
    mt_buf_adds(&q->sse, "data: [DONE]\n\n");
    q->ended = true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    request *q = cls;
    while (!q->sse.n) {
        if (q->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        if (pump(q, 0.1)) stream_end(q);
        if (q->client_gone) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (q->sse.oom) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = MT_MIN(max, q->sse.n);
    memcpy(buf, q->sse.p, n);
    mt_buf_consume(&q->sse, n);
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    request *q = cls;
    if (!q->finished) {
        /* the client went away: cancel, and wait the step or so it takes so the log line has the real counts */
        q->client_gone = true;
        cancel(q);
        double until = mt_time_now() + 5;
        while (!pump(q, 0.1) && mt_time_now() < until) continue;
    }
    request_end(q, 200);
}

/* ---- the whole answer at once ---- */

static enum MHD_Result reply_whole(request *q) {
    while (!pump(q, 0.1)) continue;
    if (q->client_gone) {
        request_end(q, 499);
        return MHD_NO;
    }
    if (q->g->st) {
        enum MHD_Result r = mt_serve_error(q->s, q->c, 500, "server_error", NULL, NULL, q->g->err.msg);
        request_end(q, 500);
        return r;
    }
    cJSON *root = cJSON_CreateObject(), *choices, *ch = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", q->id);
    cJSON_AddStringToObject(root, "object", q->oai.chat ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(root, "created", (double)q->created);
    cJSON_AddStringToObject(root, "model", q->s->p.model_id);
    cJSON_AddNullToObject(root, "system_fingerprint");
    choices = cJSON_AddArrayToObject(root, "choices");
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", 0);
    const char *text = q->content.p ? q->content.p : "";
    if (q->oai.chat) {
        cJSON *msg = cJSON_AddObjectToObject(ch, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        if (q->tool_calls && !q->content.n) cJSON_AddNullToObject(msg, "content");
        else cJSON_AddItemToObject(msg, "content", mt_json_string_n(text, q->content.n));
        if (q->tool_calls) {
            cJSON_AddItemToObject(msg, "tool_calls", q->tool_calls);
            q->tool_calls = NULL;
        }
    } else {
        cJSON_AddItemToObject(ch, "text", mt_json_string_n(text, q->content.n));
    }
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddStringToObject(ch, "finish_reason", q->finish_reason);
    cJSON_AddItemToObject(root, "usage", usage(q));
    char *body = mt_json_print(root, false);
    cJSON_Delete(root);
    enum MHD_Result r = body ? mt_serve_reply(q->s, q->c, 200, "application/json", body, strlen(body), NULL)
                             : mt_serve_error(q->s, q->c, 500, "server_error", NULL, NULL, "out of memory");
    mt_free(body);
    request_end(q, body ? 200 : 500);
    return r;
}

/* ---- from body to submitted ---- */

/* The prompt's ids with the images' placeholders expanded, and the images preprocessed. */
typedef struct prompt {
    int32_t *ids;
    int64_t n;
    float *pixels[MT_OAI_MAX_INPUTS];
    mt_image_input images[MT_OAI_MAX_INPUTS]; /* images and videos in the order of their parts */
    int n_images;
} prompt;

static void prompt_free(prompt *p) {
    mt_free(p->ids);
    for (int i = 0; i < p->n_images; i++) mt_free(p->pixels[i]);
}

/* 400 for what the client can fix, 500 for the rest. */
static int status_of(mt_status st) {
    return st == MT_ERR_NOMEM || st == MT_ERR_INTERNAL || st == MT_ERR_IO ? 500 : 400;
}

/* A video the processor could not take is the client's to fix (400), unless memory ran out. */
static mt_status video_input(const mt_model *m, const mt_oai_request *r, int v, prompt *p, const char **param,
                             mt_err *err) {
    const char *at = r->video_param[v];
    mt_status st = mt_model_preprocess_video(m, &r->videos[v], r->videos[v].path ? r->videos[v].path : at,
                                             &p->pixels[p->n_images], &p->images[p->n_images], err);
    if (!st) {
        p->n_images++;
        return MT_OK;
    }
    *param = at;
    if (st == MT_ERR_NOMEM || st == MT_ERR_INTERNAL) return st;
    /* FFmpeg's read errors on a truncated clip are MT_ERR_FORMAT or MT_ERR_IO: the client's to fix either way */
    char msg[MT_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg);
    bool named = strstr(msg, at) != NULL;
    return mt_err_set(err, MT_ERR_INVALID_ARG, "%s%s%s", named ? "" : at, named ? "" : ": ", msg);
}

static mt_status make_prompt(const mt_server *s, const mt_oai_request *r, prompt *p, const char **param, mt_err *err) {
    const mt_model *m = s->m;
    char *text = NULL;
    size_t len = 0;
    mt_status st = MT_OK;
    if (r->chat) {
        if (!m->chat_template)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "this model has no chat template: use /v1/completions with a "
                              "prompt you format yourself");
        st = mt_chat_template_render(m->chat_template, r->messages, r->tools, true, NULL, &text, &len, err);
    } else if (!(text = mt_json_dup(r->prompt, &len))) {
        st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (!st) st = mt_tokenizer_encode(m->tok, text, len, true, &ids, &n_ids, err);
    mt_free(text);
    for (int i = 0, img = 0, vid = 0; !st && i < r->n_inputs; i++) {
        if (r->input_is_video[i]) {
            st = video_input(m, r, vid++, p, param, err);
            continue;
        }
        int k = p->n_images;
        st = mt_model_preprocess_image(m, &r->images[img], &p->pixels[k], &p->images[k], err);
        if (st) {
            mt_err_prefix(err, "image %d", img + 1);
            break;
        }
        p->images[k].pixels = p->pixels[k];
        p->n_images++;
        img++;
    }
    if (!st) st = mt_model_expand_inputs(m, ids, (int64_t)n_ids, p->images, p->n_images, &p->ids, &p->n, err);
    mt_free(ids);
    return st;
}

enum MHD_Result mt_serve_generate(mt_server *s, struct MHD_Connection *c, const char *url, bool chat, const char *body,
                                  size_t n, double t0) {
    mt_oai_fail fail;
    mt_err err;
    request *q = mt_calloc(1, sizeof *q);
    if (!q) return mt_serve_error(s, c, 500, "server_error", NULL, NULL, "out of memory");
    q->s = s;
    q->c = c;
    q->t0 = t0;
    q->deadline = t0 + s->p.request_seconds;
    q->created = time(NULL);
    snprintf(q->url, sizeof q->url, "%s", url);
    pthread_mutex_lock(&s->mu);
    uint64_t serial = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    snprintf(q->id, sizeof q->id, "%s-%08llx%016llx", chat ? "chatcmpl" : "cmpl", (unsigned long long)serial,
             (unsigned long long)mt_sampler_draw_seed() << 32 ^ (unsigned long long)q->created);
    int http = 400;
    const char *type = "invalid_request_error", *code = NULL, *param = NULL;
    prompt p = {0};
    mt_status st = mt_oai_parse(body, n, chat, &s->m->desc.sampling, &s->p.limits, &q->oai, &fail, &err);
    if (st) {
        http = fail.http, type = fail.type, code = fail.code, param = fail.param;
        if (st == MT_ERR_NOMEM) http = 500, type = "server_error";
    } else if (q->oai.model && strcmp(q->oai.model, s->p.model_id)) {
        http = 404, code = "model_not_found", param = "model";
        st = mt_err_set(&err, MT_ERR_INVALID_ARG, "The model `%.200s` does not exist (this server serves `%.80s`)",
                        q->oai.model, s->p.model_id);
    }
    if (!st && (st = make_prompt(s, &q->oai, &p, &param, &err))) http = status_of(st);
    int64_t n_ctx = mt_sched_get_params(s->sched)->n_ctx;
    if (!st && p.n > n_ctx - 1) {
        code = "context_length_exceeded", param = "messages";
        st = mt_err_set(&err, MT_ERR_CONTEXT, "This model's maximum context length is %lld tokens. However, your "
                        "messages resulted in %lld tokens (images included); shorten them or send smaller images",
                        (long long)n_ctx, (long long)p.n);
    }
    if (!st) {
        q->prompt_tokens = p.n;
        q->g = gen_new();
        st = q->g ? mt_detok_stream_new(s->m->tok, true, &q->detok, &err) : mt_err_set(&err, MT_ERR_NOMEM, "out of memory");
        if (st) http = 500, type = "server_error";
    }
    if (!st) {
        gen *g = q->g;
        g->refs = 2;
        int64_t room = n_ctx - p.n;
        int64_t max_new = q->oai.max_tokens ? q->oai.max_tokens : MT_MIN(room, s->p.limits.max_tokens);
        mt_sched_request req = {.ids = p.ids, .n_ids = p.n, .images = p.images, .pixels = p.pixels,
                                .n_images = p.n_images, .max_new = max_new,
                                .min_new = q->oai.ignore_eos ? max_new : MT_MIN(q->oai.min_tokens, max_new),
                                .sampling = q->oai.sampling, .on_token = gen_on_token, .on_done = gen_on_done,
                                .user = g};
        mt_out_filter_init(&q->filter, q->oai.stops, q->oai.n_stops, q->oai.tools ? MT_TOOL_CALL_TAG : NULL);
        st = mt_sched_submit(s->sched, &req, &q->sched_id, &err);
        if (!st) p.n_images = 0; /* the scheduler has the pixels now */
        else g->refs = 1;
        if (st == MT_ERR_LIMIT) http = 429, type = "rate_limit_error", code = "server_busy";
        else if (st) http = status_of(st);
    }
    prompt_free(&p);
    if (st) {
        enum MHD_Result r = mt_serve_error(s, c, http, type, code, param, err.msg);
        char detail[MT_ERR_MSG_MAX + 8];
        snprintf(detail, sizeof detail, "- %s", err.msg);
        mt_serve_log(s, "POST", q->url, http, mt_time_now() - t0, detail);
        request_free(q);
        return r;
    }
    /* no idle timeout while the answer is made: the request's own time limit applies */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    if (!q->oai.stream) return reply_whole(q);
    if (q->oai.chat) {
        cJSON *delta = cJSON_CreateObject();
        cJSON_AddStringToObject(delta, "role", "assistant");
        cJSON_AddStringToObject(delta, "content", "");
        add_chunk(q, NULL, 0, delta, NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 << 10, stream_read, q, stream_free);
    if (!resp) {
        stream_free(q);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    mt_serve_cors(s, c, resp);
    enum MHD_Result r = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return r;
}
