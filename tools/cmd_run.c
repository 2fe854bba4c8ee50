/* mitten run / chat: answer prompts about images and videos, streaming the answer to stdout, through the public API
 * (mt_session_chat). chat keeps one session, so each turn reuses the KV cache of the conversation so far.
 *
 * Sampling starts from the model's generation_config.json (mt_model_gen_params) and the flags given override it.
 * stdout holds only the answers; everything else (stats, notices, errors) goes to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/file.h"
#include "cli.h"
#include "media/image.h"
#include "mitten.h"

#define MAX_TURNS 256
#define MAX_IMAGES 64
#define DEFAULT_CTX 4096

static const char run_usage[] =
    "usage: mitten run [-m DIR] [--image FILE | --video FILE]... -p PROMPT [options]\n\n"
    "Answers PROMPT about the images and videos (in the order given, before the text), streaming to stdout.\n"
    "-p - reads the prompt from stdin (its trailing newlines dropped). A video is a file FFmpeg reads or a\n"
    "folder of its frames (image files in name order); its frames are sampled as qwen-vl-utils does.\n\n"
    "options:\n"
    "  -m DIR               Hugging Face checkpoint folder (default: $MITTEN_MODEL, else the shipped model), or a\n"
    "                       GGUF file (llama.cpp's or mitten quantize's) with --mmproj P.gguf for its vision part\n"
    "  --system TEXT        system message (default: the model's own)\n"
    "  --max-tokens N       stop after N new tokens (default 512)\n"
    "  --temperature T      0 = greedy; above 0 samples\n"
    "  --top-k K, --top-p P, --min-p P, --repeat-penalty R\n"
    "                       the sampling defaults are the model's generation_config.json, as in transformers:\n"
    "                       greedy unless it says do_sample (then its temperature, top_k, top_p); flags win\n"
    "  --seed S             sampling seed (default: a random one, printed with the stats so a run can be repeated)\n"
    "  --ctx N              context length in tokens (default 4096, at most the model's maximum)\n"
    "  --max-pixels N       resize each image to at most N pixels (caps the processor's max_pixels): fewer tokens\n"
    "  --fps N              video frames sampled per second (default 2; for a folder, the rate of its frames)\n"
    "  --max-frames N       at most N frames of a video (default min(768, its frames); InternVL: its reference's\n"
    "                       count, 32 segments or every frame, capped at N)\n"
    "  --video-max-pixels N each video frame at most N pixels (default: qwen-vl-utils' 768 * 28^2 within the\n"
    "                       processor's max_pixels, lowered for long videos): fewer tokens\n"
    "  --threads N          threads (default: all CPUs)\n"
    "  --allow-unused       load a checkpoint that holds tensors the model does not read\n"
    "  --mmap               read the weights in place from the file (llama.cpp's default: a faster start, no copy\n"
    "                       beside the page cache) instead of copying them into memory (decode streams them faster)\n";

static const char chat_usage[] =
    "usage: mitten chat [-m DIR] [options]\n\n"
    "A conversation on stdin: each line is a user turn. Commands: /image PATH attaches an image to the next turn\n"
    "(quoted or backslash-escaped paths as terminals paste them), /video PATH a video (a file or a folder of\n"
    "frames), /reset forgets the conversation, /help, /quit.\n"
    "When the conversation outgrows the context, its oldest turns are dropped (with a notice). Options as for\n"
    "mitten run (without -p, --image and --video). Exits 1 when the model did not load or anything failed on the\n"
    "way (each failure is reported when it happens).\n";

static const char chat_help[] =
    "  /image PATH...  attach images to your next message (paths may be quoted, as terminals paste them)\n"
    "  /video PATH...  attach videos (files FFmpeg reads, or folders of frames) to your next message\n"
    "  /reset          forget the conversation\n"
    "  /help           this list\n"
    "  /quit           end (as does end of input)\n"
    "  //TEXT          send a message that starts with /\n";

/* The conversation so far: messages own their text, images own their path; each message's images pointer is
 * into images[] (images in message order, then those waiting for the next user message). */
typedef struct conversation {
    mt_message msgs[MAX_TURNS];
    char *texts[MAX_TURNS];
    mt_image_ref images[MAX_IMAGES];
    char *paths[MAX_IMAGES];
    size_t n_msgs;
    int n_images, pending; /* pending: images attached to the next user message */
} conversation;

enum { SET_TEMPERATURE = 1, SET_TOP_K = 2, SET_TOP_P = 4, SET_MIN_P = 8, SET_PENALTY = 16, SET_SEED = 32 };

typedef struct options {
    const char *model_dir, *prompt, *system;
    const char *images[MAX_IMAGES];
    mt_media_kind kinds[MAX_IMAGES];
    int n_images;
    mt_session_params sp;
    mt_model_params mp;
    int64_t max_tokens; /* 0: the default */
    mt_sampling given;  /* the sampling flags given (set says which) */
    int set;
    char *stdin_prompt; /* -p -: owned */
} options;

static int parse_options(int argc, char **argv, bool is_run, options *o) {
    const char *usage = is_run ? run_usage : chat_usage, *v;
    *o = (options){.model_dir = mt_cli_default_model()};
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        int64_t n;
        float f;
        if (mt_cli_opt(&a, "-m", &o->model_dir, &bad) || mt_cli_opt(&a, "--system", &o->system, &bad) ||
            mt_cli_opt(&a, "--mmproj", &o->mp.mmproj, &bad))
            continue;
        if (mt_cli_flag(&a, "--allow-unused")) {
            o->mp.allow_unused = true;
            continue;
        }
        if (mt_cli_flag(&a, "--mmap")) {
            o->mp.mmap = true;
            continue;
        }
        if (is_run && mt_cli_opt(&a, "-p", &o->prompt, &bad)) continue;
        bool video = false;
        if (is_run && (mt_cli_opt(&a, "--image", &v, &bad) || (video = mt_cli_opt(&a, "--video", &v, &bad)))) {
            if (o->n_images == MAX_IMAGES) return mt_cli_usage(usage, "at most %d images and videos", MAX_IMAGES);
            if (!bad) {
                o->kinds[o->n_images] = video ? MT_MEDIA_VIDEO : MT_MEDIA_IMAGE;
                o->images[o->n_images++] = v;
            }
            continue;
        }
#define NUM_OPT(name, lo, hi, dst, flag)                                                              \
    if (mt_cli_opt(&a, name, &v, &bad)) {                                                            \
        if (!bad && !mt_cli_parse_i64(v, lo, hi, &n)) return mt_cli_usage(usage, "bad %s %s", name, v); \
        dst = n;                                                                                     \
        o->set |= flag;                                                                              \
        continue;                                                                                    \
    }
#define FLOAT_OPT(name, lo, hi, dst, flag)                                                            \
    if (mt_cli_opt(&a, name, &v, &bad)) {                                                            \
        if (!bad && !mt_cli_parse_f32(v, lo, hi, &f)) return mt_cli_usage(usage, "bad %s %s", name, v); \
        dst = f;                                                                                     \
        o->set |= flag;                                                                              \
        continue;                                                                                    \
    }
        NUM_OPT("--max-tokens", 1, 1 << 24, o->max_tokens, 0)
        NUM_OPT("--top-k", 0, 1 << 24, o->given.top_k, SET_TOP_K)
        NUM_OPT("--seed", 0, INT64_MAX, o->given.seed, SET_SEED)
        NUM_OPT("--ctx", 16, 1 << 24, o->sp.n_ctx, 0)
        NUM_OPT("--max-pixels", 1, (int64_t)1 << 40, o->mp.max_pixels, 0)
        NUM_OPT("--threads", 0, 1024, o->sp.n_threads, 0)
        NUM_OPT("--max-frames", 2, 1 << 20, o->mp.video.max_frames, 0)
        NUM_OPT("--video-max-pixels", 1, (int64_t)1 << 40, o->mp.video.max_pixels, 0)
        FLOAT_OPT("--fps", 1e-3f, 1000, o->mp.video.fps, 0)
        FLOAT_OPT("--temperature", 0, 100, o->given.temperature, SET_TEMPERATURE)
        FLOAT_OPT("--top-p", 1e-6f, 1, o->given.top_p, SET_TOP_P)
        FLOAT_OPT("--min-p", 0, 1, o->given.min_p, SET_MIN_P)
        FLOAT_OPT("--repeat-penalty", 1e-3f, 100, o->given.repetition_penalty, SET_PENALTY)
#undef NUM_OPT
#undef FLOAT_OPT
        return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
    }
    if (bad) return MT_EXIT_USAGE;
    if (is_run && !o->prompt) return mt_cli_usage(usage, "-p PROMPT is required");
    if (is_run && strcmp(o->prompt, "-") == 0) {
        mt_err err;
        size_t len;
        if (mt_file_read_stream(stdin, "stdin", (size_t)1 << 30, &o->stdin_prompt, &len, &err))
            return mt_cli_fail(&err);
        while (len > 0 && (o->stdin_prompt[len - 1] == '\n' || o->stdin_prompt[len - 1] == '\r'))
            o->stdin_prompt[--len] = 0;
        if (len == 0) return mt_cli_usage(usage, "-p -: stdin holds no prompt");
        o->prompt = o->stdin_prompt;
    }
    return MT_EXIT_OK;
}

/* The model's defaults (generation_config.json), then the flags given. */
static mt_gen_params gen_params(const options *o, const mt_model *m) {
    mt_gen_params gp = mt_model_gen_params(m);
    mt_sampling *s = &gp.sampling;
    if (o->set & SET_TEMPERATURE) s->temperature = o->given.temperature;
    if (o->set & SET_TOP_K) s->top_k = o->given.top_k;
    if (o->set & SET_TOP_P) s->top_p = o->given.top_p;
    if (o->set & SET_MIN_P) s->min_p = o->given.min_p;
    if (o->set & SET_PENALTY) s->repetition_penalty = o->given.repetition_penalty;
    if (o->set & SET_SEED) s->seed = o->given.seed;
    if (o->max_tokens) gp.max_new_tokens = o->max_tokens;
    if (s->temperature == 0 && (o->set & (SET_TOP_K | SET_TOP_P | SET_MIN_P | SET_SEED)))
        fprintf(stderr, "mitten: decoding is greedy (%s): --top-k, --top-p, --min-p and --seed apply only when "
                "--temperature is above 0\n", o->set & SET_TEMPERATURE ? "--temperature 0"
                                                                         : "the model's generation_config.json "
                                                                           "does not sample");
    return gp;
}

static void conversation_clear(conversation *c) {
    for (size_t i = 0; i < c->n_msgs; i++) mt_free(c->texts[i]);
    for (int i = 0; i < c->n_images; i++) mt_free(c->paths[i]);
    c->n_msgs = 0;
    c->n_images = 0;
    c->pending = 0;
}

/* Points each message at its images again after images moved. */
static void relink(conversation *c) {
    size_t at = 0;
    for (size_t i = 0; i < c->n_msgs; i++) {
        c->msgs[i].images = c->images + at;
        at += c->msgs[i].n_images;
    }
}

/* Drops the oldest turn (a user message and the answers after it; the system message stays). False when the only
 * turn left is the one being answered. */
static bool drop_oldest_turn(conversation *c) {
    size_t first = c->n_msgs > 0 && strcmp(c->msgs[0].role, "system") == 0 ? 1 : 0, end = first + 1;
    while (end < c->n_msgs && strcmp(c->msgs[end].role, "user") != 0) end++;
    if (end >= c->n_msgs) return false;
    int images = 0;
    for (size_t i = first; i < end; i++) {
        images += (int)c->msgs[i].n_images;
        mt_free(c->texts[i]);
    }
    for (int i = 0; i < images; i++) mt_free(c->paths[i]); /* a system message has none: they come first */
    size_t gone = end - first;
    memmove(c->msgs + first, c->msgs + end, (c->n_msgs - end) * sizeof c->msgs[0]);
    memmove(c->texts + first, c->texts + end, (c->n_msgs - end) * sizeof c->texts[0]);
    memmove(c->images, c->images + images, (size_t)(c->n_images - images) * sizeof c->images[0]);
    memmove(c->paths, c->paths + images, (size_t)(c->n_images - images) * sizeof c->paths[0]);
    c->n_msgs -= gone;
    c->n_images -= images;
    relink(c);
    return true;
}

/* Appends a message; a user message takes the images attached since the last one. */
static mt_status add_message(conversation *c, const char *role, const char *text, mt_err *err) {
    if (c->n_msgs == MAX_TURNS) return mt_err_set(err, MT_ERR_LIMIT, "at most %d messages", MAX_TURNS);
    size_t k = c->n_msgs;
    c->texts[k] = mt_strdup(text);
    if (!c->texts[k]) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    bool user = strcmp(role, "user") == 0;
    c->msgs[k] = (mt_message){.role = role, .text = c->texts[k], .images = c->images + c->n_images - (user ? c->pending : 0),
                              .n_images = user ? (size_t)c->pending : 0};
    if (user) c->pending = 0;
    c->n_msgs++;
    return MT_OK;
}

/* Takes back the last message (a user turn that got no answer), with its images. */
static void drop_last_message(conversation *c) {
    size_t k = --c->n_msgs;
    for (size_t i = 0; i < c->msgs[k].n_images; i++) mt_free(c->paths[--c->n_images]);
    mt_free(c->texts[k]);
}

static mt_status attach_image(conversation *c, const char *path, mt_media_kind kind, mt_err *err) {
    if (c->n_images == MAX_IMAGES)
        return mt_err_set(err, MT_ERR_LIMIT, "at most %d images and videos in a conversation (/reset starts afresh)",
                          MAX_IMAGES);
    char *copy = mt_strdup(path);
    if (!copy) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    c->paths[c->n_images] = copy;
    c->images[c->n_images++] = (mt_image_ref){.path = copy, .kind = kind};
    c->pending++;
    return MT_OK;
}

typedef struct answer_buf {
    char *text;
    size_t len, cap;
    bool oom;
} answer_buf;

static bool print_piece(void *user, const char *piece, size_t len) {
    answer_buf *a = user;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    if (a->len + len + 1 > a->cap) {
        size_t cap = (a->len + len + 1) * 2;
        char *t = mt_realloc(a->text, cap);
        if (!t) {
            a->oom = true;
            return false;
        }
        a->text = t;
        a->cap = cap;
    }
    memcpy(a->text + a->len, piece, len);
    a->len += len;
    a->text[a->len] = 0;
    return true;
}

/* What run and chat share: the options, the model and session, the conversation and the last answer. */
typedef struct cli_chat {
    options o;
    mt_model *m;
    mt_session *s;
    mt_gen_params gp;
    conversation c;
    answer_buf ans;
    mt_err err;
} cli_chat;

/* How to make a prompt fit: a longer --ctx while the model allows one, smaller images when there are any. */
static void context_hint(const cli_chat *k, const mt_gen_stats *gs, char *buf, size_t cap) {
    int64_t max = mt_model_max_context(k->m);
    size_t n = 0;
    buf[0] = 0;
    if (k->o.sp.n_ctx < max)
        n += (size_t)snprintf(buf, cap, "--ctx N gives more room, up to this model's %lld", (long long)max);
    if (gs->image_tokens > 0 && n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "%s--max-pixels N shrinks the images (%lld tokens now)",
                              n ? "; " : "", (long long)gs->image_tokens);
    if (n == 0) snprintf(buf, cap, "the context is the model's maximum: a shorter prompt is needed");
}

/* Streams the answer to the conversation to stdout (ended by a newline when anything was printed, and always on
 * success), then the stats line on stderr. The text is left in k->ans. */
static mt_status answer(cli_chat *k, mt_gen_stats *gs) {
    answer_buf *ans = &k->ans;
    ans->len = 0;
    ans->oom = false;
    mt_status st = mt_session_chat(k->s, k->c.msgs, k->c.n_msgs, &k->gp, print_piece, ans, gs, &k->err);
    if (!st && ans->oom) st = mt_err_set(&k->err, MT_ERR_NOMEM, "out of memory keeping the answer");
    if (!st || ans->len > 0) putchar('\n');
    fflush(stdout); /* before anything on stderr, so the two interleave right in one pipe */
    if (st) return st;
    const mt_sampling *sm = &k->gp.sampling;
    char how[256];
    size_t n = sm->temperature > 0 ? (size_t)snprintf(how, sizeof how, "sampled: temperature %g", sm->temperature)
                                   : (size_t)snprintf(how, sizeof how, "greedy");
    if (sm->temperature > 0 && sm->top_k > 0) n += (size_t)snprintf(how + n, sizeof how - n, ", top-k %lld", (long long)sm->top_k);
    if (sm->temperature > 0 && sm->top_p < 1) n += (size_t)snprintf(how + n, sizeof how - n, ", top-p %g", sm->top_p);
    if (sm->temperature > 0 && sm->min_p > 0) n += (size_t)snprintf(how + n, sizeof how - n, ", min-p %g", sm->min_p);
    if (sm->repetition_penalty != 1)
        n += (size_t)snprintf(how + n, sizeof how - n, ", repeat-penalty %g", sm->repetition_penalty);
    if (sm->temperature > 0) snprintf(how + n, sizeof how - n, ", seed %llu", (unsigned long long)gs->seed);
    mt_log(MT_LOG_INFO, "[%lld prompt tokens (%lld reused, %lld image), %lld new; prefill %.2f s, %.1f tokens/s; %s]",
           (long long)gs->prompt_tokens, (long long)gs->reused_tokens, (long long)gs->image_tokens,
           (long long)gs->new_tokens, gs->prefill_seconds,
           gs->decode_seconds > 0 ? (double)gs->new_tokens / gs->decode_seconds : 0.0, how);
    if (gs->stop == MT_STOP_CONTEXT) {
        char hint[300];
        context_hint(k, gs, hint, sizeof hint);
        fprintf(stderr, "mitten: the answer was cut where the %lld-token context ends: %s\n",
                (long long)k->o.sp.n_ctx, hint);
    }
    return MT_OK;
}

/* Reports a failed answer; for a prompt over the context, with what would make it fit. */
static int answer_failed(const cli_chat *k, const mt_gen_stats *gs) {
    if (k->err.code != MT_ERR_CONTEXT) return mt_cli_fail(&k->err);
    char hint[300];
    context_hint(k, gs, hint, sizeof hint);
    fprintf(stderr, "mitten: %s: %s\n", k->err.msg, hint);
    return MT_EXIT_FAIL;
}

/* Parses the options, opens the model and a session, and starts the conversation with --system. Returns
 * MT_EXIT_OK to go on, else the exit code, having said why. */
static int cli_chat_start(int argc, char **argv, bool is_run, cli_chat *k) {
    int rc = parse_options(argc, argv, is_run, &k->o);
    if (rc) return rc;
    options *o = &k->o;
    double t0 = mt_time_now();
    mt_log(MT_LOG_INFO, "loading %s ...", o->model_dir);
    if (mt_model_open_params(o->model_dir, &o->mp, &k->m, &k->err)) return mt_cli_fail(&k->err);
    int64_t max = mt_model_max_context(k->m);
    if (o->sp.n_ctx > max) {
        fprintf(stderr, "mitten: --ctx %lld is over this model's maximum context of %lld tokens "
                "(max_position_embeddings in %s/config.json)\n", (long long)o->sp.n_ctx, (long long)max,
                o->model_dir);
        return MT_EXIT_USAGE;
    }
    if (o->sp.n_ctx == 0) o->sp.n_ctx = MT_MIN(DEFAULT_CTX, max);
    mt_status st = mt_session_new(k->m, &o->sp, &k->s, &k->err);
    if (!st && o->system) st = add_message(&k->c, "system", o->system, &k->err);
    if (st) return mt_cli_fail(&k->err);
    mt_log(MT_LOG_INFO, "loaded in %.2f s", mt_time_now() - t0);
    k->gp = gen_params(o, k->m);
    return MT_EXIT_OK;
}

static int cli_chat_finish(cli_chat *k, int rc) {
    conversation_clear(&k->c);
    mt_free(k->ans.text);
    mt_free(k->o.stdin_prompt);
    mt_session_free(k->s);
    mt_model_close(k->m);
    return rc;
}

int mt_cmd_run(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", run_usage), MT_EXIT_OK;
    static cli_chat k;
    int rc = cli_chat_start(argc, argv, true, &k);
    if (rc) return cli_chat_finish(&k, rc);
    mt_status st = MT_OK;
    for (int i = 0; !st && i < k.o.n_images; i++) st = attach_image(&k.c, k.o.images[i], k.o.kinds[i], &k.err);
    if (!st) st = add_message(&k.c, "user", k.o.prompt, &k.err);
    if (st) return cli_chat_finish(&k, mt_cli_fail(&k.err));
    mt_gen_stats gs;
    if (answer(&k, &gs)) rc = answer_failed(&k, &gs);
    return cli_chat_finish(&k, rc);
}

/* ---- chat ---- */

/* Splits an /image argument into paths as a terminal pastes them: the whole text when it names a file (a path
 * with spaces typed as it is), else shell words: '...' literally, "..." with \" \\ \$ \` escapes, and a backslash
 * escaping the next character elsewhere. Returns the count (paths in out[], owned), or -1 with err set. */
static int split_paths(const char *arg, char **out, int cap, const char *cmd, mt_err *err) {
    while (*arg == ' ' || *arg == '\t') arg++;
    size_t len = strlen(arg);
    while (len > 0 && (arg[len - 1] == ' ' || arg[len - 1] == '\t')) len--;
    char *whole = mt_malloc(len + 1), *word = mt_malloc(len + 1);
    int n = 0;
    if (!whole || !word) {
        mt_free(whole);
        mt_free(word);
        mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        return -1;
    }
    memcpy(whole, arg, len);
    whole[len] = 0;
    if (len > 0 && mt_file_exists(whole)) {
        out[n++] = whole;
        mt_free(word);
        return n;
    }
    mt_free(whole);
    const char *p = arg, *end = arg + len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (p == end) break;
        size_t w = 0;
        char quote = 0;
        for (; p < end && (quote || (*p != ' ' && *p != '\t')); p++) {
            if (quote == '\'') {
                if (*p == '\'') quote = 0;
                else word[w++] = *p;
            } else if (quote == '"') {
                if (*p == '"') quote = 0;
                else if (*p == '\\' && p + 1 < end && strchr("\"\\$`", p[1])) word[w++] = *++p;
                else word[w++] = *p;
            } else if (*p == '\'' || *p == '"') {
                quote = *p;
            } else if (*p == '\\' && p + 1 < end) {
                word[w++] = *++p;
            } else {
                word[w++] = *p;
            }
        }
        word[w] = 0;
        if (quote) {
            mt_err_set(err, MT_ERR_INVALID_ARG, "%s: a %s quote is not closed", cmd,
                       quote == '"' ? "double" : "single");
        } else if (n == cap) {
            mt_err_set(err, MT_ERR_LIMIT, "%s: at most %d at once", cmd, cap);
        } else if (!(out[n] = mt_strdup(word))) {
            mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        } else {
            n++;
            continue;
        }
        for (int i = 0; i < n; i++) mt_free(out[i]);
        mt_free(word);
        return -1;
    }
    mt_free(word);
    if (n == 0) mt_err_set(err, MT_ERR_INVALID_ARG, "%s needs a file: %s PATH", cmd, cmd);
    return n ? n : -1;
}

/* /image PATH... and /video PATH...: every image is read now, so a bad one is said at once and none of them is
 * attached; a video is only checked to exist here, as decoding it is the long part of its turn. */
static mt_status image_command(cli_chat *k, const char *arg, mt_media_kind kind) {
    const char *cmd = kind == MT_MEDIA_VIDEO ? "/video" : "/image";
    char *paths[MAX_IMAGES];
    int n = split_paths(arg, paths, MAX_IMAGES, cmd, &k->err);
    if (n < 0) return k->err.code;
    mt_status st = MT_OK;
    int64_t w[MAX_IMAGES], h[MAX_IMAGES];
    for (int i = 0; i < n && !st; i++) {
        mt_image img;
        if (kind == MT_MEDIA_VIDEO) {
            if (!mt_file_exists(paths[i]))
                st = mt_err_set(&k->err, MT_ERR_IO, "%s: no such file or folder", paths[i]);
        } else if (!(st = mt_image_load(paths[i], MT_IMAGE_DEFAULT_MAX_PIXELS, &img, &k->err))) {
            w[i] = img.width;
            h[i] = img.height;
            mt_image_free(&img);
        }
    }
    if (!st && k->c.n_images + n > MAX_IMAGES)
        st = mt_err_set(&k->err, MT_ERR_LIMIT, "at most %d images and videos in a conversation (/reset starts "
                        "afresh)", MAX_IMAGES);
    for (int i = 0; i < n && !st; i++) {
        st = attach_image(&k->c, paths[i], kind, &k->err);
        if (!st && kind == MT_MEDIA_VIDEO)
            fprintf(stderr, "attached video %s; it goes with your next message\n", paths[i]);
        else if (!st)
            fprintf(stderr, "attached %s (%lldx%lld); it goes with your next message\n", paths[i], (long long)w[i],
                    (long long)h[i]);
    }
    if (st) mt_err_prefix(&k->err, "%s (nothing attached)", cmd);
    for (int i = 0; i < n; i++) mt_free(paths[i]);
    return st;
}

/* One user turn: when the conversation no longer fits the context, its oldest turns go first, with a notice.
 * A turn that gets no answer is taken back with its images. *fatal: the chat cannot go on. */
static mt_status chat_turn(cli_chat *k, const char *text, bool *fatal) {
    conversation *c = &k->c;
    if (c->n_msgs + 2 > MAX_TURNS && drop_oldest_turn(c))
        fprintf(stderr, "mitten: at most %d messages: the oldest turn is dropped\n", MAX_TURNS);
    mt_status st = add_message(c, "user", text, &k->err);
    if (st) {
        *fatal = true;
        return st;
    }
    mt_gen_stats gs;
    while ((st = answer(k, &gs)) == MT_ERR_CONTEXT && drop_oldest_turn(c)) {
        char hint[300];
        context_hint(k, &gs, hint, sizeof hint);
        fprintf(stderr, "mitten: the conversation is over the %lld-token context, so its oldest turn is dropped; "
                "%s\n", (long long)k->o.sp.n_ctx, hint);
    }
    if (st) {
        answer_failed(k, &gs);
        fprintf(stderr, "mitten: that message got no answer and is not kept\n");
        drop_last_message(c);
        return st;
    }
    if ((st = add_message(c, "assistant", k->ans.text ? k->ans.text : "", &k->err))) *fatal = true;
    return st;
}

int mt_cmd_chat(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", chat_usage), MT_EXIT_OK;
    static cli_chat k;
    int rc = cli_chat_start(argc, argv, false, &k);
    if (rc) return cli_chat_finish(&k, rc);
    conversation *c = &k.c;
    char *line = NULL; /* whole lines, however long (getline) */
    size_t cap = 0;
    int failures = 0;
    bool fatal = false;
    fprintf(stderr, "mitten chat: type a message; /image PATH attaches an image, /video PATH a video, /help lists "
            "the commands\n");
    while (!fatal && (fprintf(stderr, "> "), getline(&line, &cap, stdin)) >= 0) {
        line[strcspn(line, "\r\n")] = 0;
        mt_status st = MT_OK;
        const char *text = line;
        if (line[0] == '/' && line[1] != '/') {
            size_t cmd = strcspn(line, " \t");
            if (cmd == 5 && strncmp(line, "/quit", cmd) == 0) break;
            if ((cmd == 5 && strncmp(line, "/help", cmd) == 0) || (cmd == 2 && strncmp(line, "/?", cmd) == 0)) {
                fprintf(stderr, "%s", chat_help);
            } else if (cmd == 6 && strncmp(line, "/reset", cmd) == 0) {
                conversation_clear(c);
                mt_session_reset(k.s);
                if (k.o.system && (st = add_message(c, "system", k.o.system, &k.err))) fatal = true;
                if (!st) fprintf(stderr, "the conversation is forgotten\n");
            } else if (cmd == 6 && strncmp(line, "/image", cmd) == 0) {
                st = image_command(&k, line + cmd, MT_MEDIA_IMAGE);
            } else if (cmd == 6 && strncmp(line, "/video", cmd) == 0) {
                st = image_command(&k, line + cmd, MT_MEDIA_VIDEO);
            } else {
                st = mt_err_set(&k.err, MT_ERR_INVALID_ARG, "unknown command %.*s (/help lists them; //TEXT sends "
                                "a message that starts with /)", (int)MT_MIN(cmd, 64), line);
            }
            if (st && !fatal) mt_cli_fail(&k.err);
            failures += st != MT_OK;
            continue;
        }
        if (line[0] == '/') text = line + 1; /* "//TEXT" */
        if (!text[strspn(text, " \t")]) continue;
        if (chat_turn(&k, text, &fatal)) failures++;
    }
    if (!fatal && ferror(stdin)) {
        mt_err_set(&k.err, MT_ERR_IO, "stdin: read error");
        fatal = true;
        failures++;
    }
    if (fatal) mt_cli_fail(&k.err);
    if (c->pending) fprintf(stderr, "mitten: %d attached image(s) or video(s) went with no message\n", c->pending);
    free(line);
    return cli_chat_finish(&k, failures ? MT_EXIT_FAIL : MT_EXIT_OK);
}
