/* mitten run / chat: answer prompts about images, streaming the answer to stdout.
 *
 * Both build the conversation as chat messages, render them with the model's chat format, tokenize, expand each
 * image placeholder to its token count and let the session generate. chat keeps one session, so each turn reuses
 * the KV cache of the conversation so far. */
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "cli.h"
#include "engine/session.h"
#include "media/qwen_vision_pre.h"
#include "text/chat_qwen.h"
#include "text/tokenizer.h"

#define MAX_TURNS 256
#define MAX_IMAGES 64

static const char run_usage[] =
    "usage: mitten run [-m DIR] [--image FILE]... -p PROMPT [options]\n\n"
    "Answers PROMPT about the images (in order, before the text), streaming to stdout.\n\n"
    "options:\n"
    "  -m DIR               Hugging Face checkpoint folder (default: $MITTEN_MODEL, else the shipped model)\n"
    "  --system TEXT        system message (default: the model's own)\n"
    "  --max-tokens N       stop after N new tokens (default 512)\n"
    "  --temperature T      0 = greedy (default 0)\n"
    "  --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S\n"
    "  --ctx N              context length in tokens (default 4096)\n"
    "  --threads N          threads (default: all CPUs)\n";

static const char chat_usage[] =
    "usage: mitten chat [-m DIR] [options]\n\n"
    "A conversation on stdin: each line is a user turn. Commands: /image PATH attaches an image to the next turn,\n"
    "/reset forgets the conversation, /quit ends. Options as for mitten run (without -p and --image).\n";

typedef struct conversation {
    mt_chat_message msgs[MAX_TURNS];
    mt_chat_part parts[MAX_TURNS][MAX_IMAGES + 1];
    char *texts[MAX_TURNS];
    size_t n_msgs;
    float *pixels[MAX_IMAGES];
    mt_image_input images[MAX_IMAGES];
    int n_images;
} conversation;

typedef struct runner {
    mt_model *model;
    mt_tokenizer *tok;
    mt_session *session;
    mt_qwen_preproc_cfg pre;
    mt_sampling sampling;
    int64_t max_tokens;
    mt_detok_stream *detok;
    char *answer; /* the streamed answer, kept for the next turn */
    size_t answer_len, answer_cap;
} runner;

typedef struct options {
    const char *model_dir, *prompt, *system;
    const char *images[MAX_IMAGES];
    int n_images;
    mt_session_params sp;
    mt_sampling sampling;
    int64_t max_tokens;
} options;

static int parse_options(int argc, char **argv, bool is_run, options *o) {
    const char *usage = is_run ? run_usage : chat_usage, *v;
    *o = (options){.model_dir = mt_cli_default_model(), .sampling = mt_sampling_default(), .max_tokens = 512};
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        int64_t n;
        float f;
        if (mt_cli_opt(&a, "-m", &o->model_dir, &bad) || mt_cli_opt(&a, "--system", &o->system, &bad)) continue;
        if (is_run && mt_cli_opt(&a, "-p", &o->prompt, &bad)) continue;
        if (is_run && mt_cli_opt(&a, "--image", &v, &bad)) {
            if (o->n_images == MAX_IMAGES) return mt_cli_usage(usage, "at most %d images", MAX_IMAGES);
            if (!bad) o->images[o->n_images++] = v;
            continue;
        }
#define NUM_OPT(name, lo, hi, dst)                                                                   \
    if (mt_cli_opt(&a, name, &v, &bad)) {                                                            \
        if (!bad && !mt_cli_parse_i64(v, lo, hi, &n)) return mt_cli_usage(usage, "bad %s %s", name, v); \
        dst = n;                                                                                     \
        continue;                                                                                    \
    }
#define FLOAT_OPT(name, lo, hi, dst)                                                                 \
    if (mt_cli_opt(&a, name, &v, &bad)) {                                                            \
        if (!bad && !mt_cli_parse_f32(v, lo, hi, &f)) return mt_cli_usage(usage, "bad %s %s", name, v); \
        dst = f;                                                                                     \
        continue;                                                                                    \
    }
        NUM_OPT("--max-tokens", 1, 1 << 24, o->max_tokens)
        NUM_OPT("--top-k", 0, 1 << 24, o->sampling.top_k)
        NUM_OPT("--seed", 0, INT64_MAX, o->sampling.seed)
        NUM_OPT("--ctx", 16, 1 << 24, o->sp.n_ctx)
        NUM_OPT("--threads", 0, 1024, o->sp.n_threads)
        FLOAT_OPT("--temperature", 0, 100, o->sampling.temperature)
        FLOAT_OPT("--top-p", 1e-6f, 1, o->sampling.top_p)
        FLOAT_OPT("--min-p", 0, 1, o->sampling.min_p)
        FLOAT_OPT("--repeat-penalty", 1e-3f, 100, o->sampling.repetition_penalty)
#undef NUM_OPT
#undef FLOAT_OPT
        return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
    }
    if (bad) return MT_EXIT_USAGE;
    if (is_run && !o->prompt) return mt_cli_usage(usage, "-p PROMPT is required");
    return MT_EXIT_OK;
}

static mt_status runner_open(runner *r, const options *o, mt_err *err) {
    *r = (runner){.sampling = o->sampling, .max_tokens = o->max_tokens};
    char path[4096];
    double t0 = mt_time_now();
    mt_log(MT_LOG_INFO, "loading %s ...", o->model_dir);
    mt_status st = mt_model_open(o->model_dir, &r->model, err);
    if (!st) st = mt_path_join(path, sizeof path, o->model_dir, "tokenizer.json", err);
    if (!st) st = mt_tokenizer_load(path, &r->tok, err);
    if (!st) st = mt_qwen_preproc_cfg_load(o->model_dir, &r->pre, err);
    if (!st) st = mt_session_new(r->model, &o->sp, &r->session, err);
    if (!st) st = mt_detok_stream_new(r->tok, true, &r->detok, err);
    if (!st) mt_log(MT_LOG_INFO, "loaded in %.2f s", mt_time_now() - t0);
    return st;
}

static void runner_close(runner *r) {
    mt_detok_stream_free(r->detok);
    mt_session_free(r->session);
    mt_tokenizer_free(r->tok);
    mt_model_close(r->model);
    mt_free(r->answer);
}

static void conversation_clear(conversation *c) {
    for (size_t i = 0; i < c->n_msgs; i++) mt_free(c->texts[i]);
    for (int i = 0; i < c->n_images; i++) mt_free(c->pixels[i]);
    c->n_msgs = 0;
    c->n_images = 0;
}

static mt_status add_image(runner *r, conversation *c, const char *path, mt_err *err) {
    if (c->n_images == MAX_IMAGES) return mt_err_set(err, MT_ERR_LIMIT, "at most %d images", MAX_IMAGES);
    mt_image img;
    mt_status st = mt_image_load(path, MT_IMAGE_DEFAULT_MAX_PIXELS, &img, err);
    if (st) return st;
    int64_t grid[3];
    mt_image_input *in = &c->images[c->n_images];
    st = mt_qwen_preprocess(&img, &r->pre, &c->pixels[c->n_images], &in->n_patches, grid, err);
    mt_image_free(&img);
    if (st) return st;
    in->pixels = c->pixels[c->n_images++];
    in->grid = (mt_image_grid){grid[0], grid[1], grid[2]};
    return MT_OK;
}

/* A message of n_images image parts (the conversation's last ones) followed by text. */
static mt_status add_message(conversation *c, const char *role, const char *text, int n_images, mt_err *err) {
    if (c->n_msgs == MAX_TURNS) return mt_err_set(err, MT_ERR_LIMIT, "at most %d messages", MAX_TURNS);
    size_t k = c->n_msgs;
    c->texts[k] = mt_strdup(text);
    if (!c->texts[k]) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_chat_part *p = c->parts[k];
    for (int i = 0; i < n_images; i++) p[i] = (mt_chat_part){.kind = MT_CHAT_IMAGE};
    p[n_images] = (mt_chat_part){.kind = MT_CHAT_TEXT, .text = c->texts[k]};
    c->msgs[k] = (mt_chat_message){.role = role, .parts = p, .n_parts = (size_t)n_images + 1};
    c->n_msgs++;
    return MT_OK;
}

static bool stream_token(void *user, int32_t token) {
    runner *r = user;
    const char *piece;
    size_t len;
    mt_err err;
    if (mt_detok_stream_push(r->detok, token, &piece, &len, &err)) return false;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    if (r->answer_len + len + 1 > r->answer_cap) {
        size_t cap = (r->answer_len + len + 1) * 2;
        char *a = mt_realloc(r->answer, cap);
        if (!a) return false;
        r->answer = a;
        r->answer_cap = cap;
    }
    memcpy(r->answer + r->answer_len, piece, len);
    r->answer_len += len;
    r->answer[r->answer_len] = 0;
    return true;
}

/* Renders, tokenizes and answers the conversation; the answer is streamed and kept in r->answer. */
static mt_status answer(runner *r, conversation *c, mt_err *err) {
    char *prompt = NULL;
    int32_t *ids = NULL, *expanded = NULL;
    size_t n_ids = 0;
    int64_t n_expanded = 0, n_new = 0;
    mt_image_grid grids[MAX_IMAGES];
    for (int i = 0; i < c->n_images; i++) grids[i] = c->images[i].grid;
    r->answer_len = 0;
    mt_status st = mt_chat_format(c->msgs, c->n_msgs, true, &prompt, err);
    if (!st) st = mt_tokenizer_encode(r->tok, prompt, strlen(prompt), true, &ids, &n_ids, err);
    if (!st) st = mt_expand_image_tokens(r->model, ids, (int64_t)n_ids, grids, c->n_images, &expanded, &n_expanded, err);
    double t0 = mt_time_now();
    if (!st)
        st = mt_session_generate(r->session, expanded, n_expanded, c->images, c->n_images, r->max_tokens, &r->sampling,
                                 stream_token, r, &n_new, err);
    const char *piece;
    size_t len;
    if (!st && !mt_detok_stream_flush(r->detok, &piece, &len, err)) fwrite(piece, 1, len, stdout);
    printf("\n");
    double dt = mt_time_now() - t0;
    if (!st) mt_log(MT_LOG_INFO, "[%lld prompt tokens, %lld new, %.2f s]", (long long)n_expanded, (long long)n_new, dt);
    mt_free(prompt);
    mt_free(ids);
    mt_free(expanded);
    return st;
}

int mt_cmd_run(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", run_usage), MT_EXIT_OK;
    options o;
    int rc = parse_options(argc, argv, true, &o);
    if (rc) return rc;
    mt_err err = {0};
    runner r;
    static conversation c;
    mt_status st = runner_open(&r, &o, &err);
    for (int i = 0; !st && i < o.n_images; i++) st = add_image(&r, &c, o.images[i], &err);
    if (!st && o.system) st = add_message(&c, "system", o.system, 0, &err);
    if (!st) st = add_message(&c, "user", o.prompt, o.n_images, &err);
    if (!st) st = answer(&r, &c, &err);
    conversation_clear(&c);
    runner_close(&r);
    return st ? mt_cli_fail(&err) : MT_EXIT_OK;
}

int mt_cmd_chat(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", chat_usage), MT_EXIT_OK;
    options o;
    int rc = parse_options(argc, argv, false, &o);
    if (rc) return rc;
    mt_err err = {0};
    runner r;
    static conversation c;
    mt_status st = runner_open(&r, &o, &err);
    if (!st && o.system) st = add_message(&c, "system", o.system, 0, &err);
    if (st) {
        runner_close(&r);
        return mt_cli_fail(&err);
    }
    char line[65536];
    int pending_images = 0;
    fprintf(stderr, "mitten chat: type a message; /image PATH attaches an image, /reset, /quit\n");
    while (fprintf(stderr, "> "), fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strcmp(line, "/quit") == 0) break;
        if (strcmp(line, "/reset") == 0) {
            conversation_clear(&c);
            mt_session_reset(r.session);
            pending_images = 0;
            if (o.system) add_message(&c, "system", o.system, 0, &err);
            continue;
        }
        if (strncmp(line, "/image ", 7) == 0) {
            if (add_image(&r, &c, line + 7, &err)) mt_cli_fail(&err);
            else pending_images++;
            continue;
        }
        if (!line[0]) continue;
        if (add_message(&c, "user", line, pending_images, &err) || answer(&r, &c, &err) ||
            add_message(&c, "assistant", r.answer ? r.answer : "", 0, &err)) {
            mt_cli_fail(&err);
            break;
        }
        pending_images = 0;
    }
    conversation_clear(&c);
    runner_close(&r);
    return MT_EXIT_OK;
}
