/* mitten run / chat: answer prompts about images, streaming the answer to stdout, through the public API
 * (mt_session_chat). chat keeps one session, so each turn reuses the KV cache of the conversation so far. */
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli.h"
#include "mitten.h"

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
    "  --threads N          threads (default: all CPUs)\n"
    "  --allow-unused       load a checkpoint that holds tensors the model does not read\n";

static const char chat_usage[] =
    "usage: mitten chat [-m DIR] [options]\n\n"
    "A conversation on stdin: each line is a user turn. Commands: /image PATH attaches an image to the next turn,\n"
    "/reset forgets the conversation, /quit ends. Options as for mitten run (without -p and --image).\n";

/* The conversation so far: messages own their text; images are kept by path. */
typedef struct conversation {
    mt_message msgs[MAX_TURNS];
    char *texts[MAX_TURNS];
    mt_image_ref images[MAX_IMAGES];
    size_t n_msgs;
    int n_images, pending; /* images attached to the next user message */
} conversation;

typedef struct options {
    const char *model_dir, *prompt, *system;
    const char *images[MAX_IMAGES];
    int n_images;
    mt_session_params sp;
    mt_gen_params gp;
    mt_model_params mp;
} options;

static int parse_options(int argc, char **argv, bool is_run, options *o) {
    const char *usage = is_run ? run_usage : chat_usage, *v;
    *o = (options){.model_dir = mt_cli_default_model(), .gp = mt_gen_params_default()};
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        int64_t n;
        float f;
        if (mt_cli_opt(&a, "-m", &o->model_dir, &bad) || mt_cli_opt(&a, "--system", &o->system, &bad)) continue;
        if (mt_cli_flag(&a, "--allow-unused")) {
            o->mp.allow_unused = true;
            continue;
        }
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
        NUM_OPT("--max-tokens", 1, 1 << 24, o->gp.max_new_tokens)
        NUM_OPT("--top-k", 0, 1 << 24, o->gp.sampling.top_k)
        NUM_OPT("--seed", 0, INT64_MAX, o->gp.sampling.seed)
        NUM_OPT("--ctx", 16, 1 << 24, o->sp.n_ctx)
        NUM_OPT("--threads", 0, 1024, o->sp.n_threads)
        FLOAT_OPT("--temperature", 0, 100, o->gp.sampling.temperature)
        FLOAT_OPT("--top-p", 1e-6f, 1, o->gp.sampling.top_p)
        FLOAT_OPT("--min-p", 0, 1, o->gp.sampling.min_p)
        FLOAT_OPT("--repeat-penalty", 1e-3f, 100, o->gp.sampling.repetition_penalty)
#undef NUM_OPT
#undef FLOAT_OPT
        return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
    }
    if (bad) return MT_EXIT_USAGE;
    if (is_run && !o->prompt) return mt_cli_usage(usage, "-p PROMPT is required");
    return MT_EXIT_OK;
}

static mt_status open_model(const options *o, mt_model **m, mt_session **s, mt_err *err) {
    double t0 = mt_time_now();
    mt_log(MT_LOG_INFO, "loading %s ...", o->model_dir);
    mt_status st = mt_model_open_params(o->model_dir, &o->mp, m, err);
    if (!st) st = mt_session_new(*m, &o->sp, s, err);
    if (!st) mt_log(MT_LOG_INFO, "loaded in %.2f s", mt_time_now() - t0);
    return st;
}

static void conversation_clear(conversation *c) {
    for (size_t i = 0; i < c->n_msgs; i++) mt_free(c->texts[i]);
    c->n_msgs = 0;
    c->n_images = 0;
    c->pending = 0;
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

static mt_status attach_image(conversation *c, const char *path, mt_err *err) {
    if (c->n_images == MAX_IMAGES) return mt_err_set(err, MT_ERR_LIMIT, "at most %d images", MAX_IMAGES);
    c->images[c->n_images++] = (mt_image_ref){.path = path};
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

/* Streams the answer to the conversation to stdout; the text is left in *answer. */
static mt_status answer(mt_session *s, conversation *c, const mt_gen_params *gp, answer_buf *ans, mt_err *err) {
    mt_gen_stats gs;
    ans->len = 0;
    mt_status st = mt_session_chat(s, c->msgs, c->n_msgs, gp, print_piece, ans, &gs, err);
    printf("\n");
    if (!st && ans->oom) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory keeping the answer");
    if (!st)
        mt_log(MT_LOG_INFO, "[%lld prompt tokens (%lld reused, %lld image), %lld new; prefill %.2f s, %.1f tokens/s]",
               (long long)gs.prompt_tokens, (long long)gs.reused_tokens, (long long)gs.image_tokens,
               (long long)gs.new_tokens, gs.prefill_seconds,
               gs.decode_seconds > 0 ? (double)gs.new_tokens / gs.decode_seconds : 0.0);
    return st;
}

/* What run and chat share: the options, the model and session, the conversation and the last answer. */
typedef struct cli_chat {
    options o;
    mt_model *m;
    mt_session *s;
    conversation c;
    answer_buf ans;
    mt_err err;
} cli_chat;

/* Parses the options, opens the model and a session, and starts the conversation with --system. Returns an exit
 * code for a usage error; *st gets the status of the rest. */
static int cli_chat_start(int argc, char **argv, bool is_run, cli_chat *k, mt_status *st) {
    int rc = parse_options(argc, argv, is_run, &k->o);
    if (rc) return rc;
    *st = open_model(&k->o, &k->m, &k->s, &k->err);
    if (!*st && k->o.system) *st = add_message(&k->c, "system", k->o.system, &k->err);
    return MT_EXIT_OK;
}

static int cli_chat_finish(cli_chat *k, mt_status st) {
    conversation_clear(&k->c);
    mt_free(k->ans.text);
    mt_session_free(k->s);
    mt_model_close(k->m);
    return st ? mt_cli_fail(&k->err) : MT_EXIT_OK;
}

int mt_cmd_run(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", run_usage), MT_EXIT_OK;
    static cli_chat k;
    mt_status st = MT_OK;
    int rc = cli_chat_start(argc, argv, true, &k, &st);
    if (rc) return rc;
    for (int i = 0; !st && i < k.o.n_images; i++) st = attach_image(&k.c, k.o.images[i], &k.err);
    if (!st) st = add_message(&k.c, "user", k.o.prompt, &k.err);
    if (!st) st = answer(k.s, &k.c, &k.o.gp, &k.ans, &k.err);
    return cli_chat_finish(&k, st);
}

int mt_cmd_chat(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", chat_usage), MT_EXIT_OK;
    static cli_chat k;
    mt_status st = MT_OK;
    int rc = cli_chat_start(argc, argv, false, &k, &st);
    if (rc || st) return rc ? rc : cli_chat_finish(&k, st);
    conversation *c = &k.c;
    mt_err *err = &k.err;
    /* image paths live as long as the conversation */
    static char paths[MAX_IMAGES][4096];
    char line[65536];
    fprintf(stderr, "mitten chat: type a message; /image PATH attaches an image, /reset, /quit\n");
    while (fprintf(stderr, "> "), fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strcmp(line, "/quit") == 0) break;
        if (strcmp(line, "/reset") == 0) {
            conversation_clear(c);
            mt_session_reset(k.s);
            if (k.o.system) add_message(c, "system", k.o.system, err);
            continue;
        }
        if (strncmp(line, "/image ", 7) == 0) {
            size_t len = strlen(line + 7);
            if (c->n_images == MAX_IMAGES || len >= sizeof paths[0]) {
                fprintf(stderr, "mitten: at most %d images of paths under %zu bytes\n", MAX_IMAGES, sizeof paths[0]);
                continue;
            }
            memcpy(paths[c->n_images], line + 7, len + 1);
            attach_image(c, paths[c->n_images], err);
            continue;
        }
        if (!line[0]) continue;
        if ((st = add_message(c, "user", line, err))) break;
        if (answer(k.s, c, &k.o.gp, &k.ans, err)) {
            /* a bad image or an over-long prompt: drop the turn and its images, keep the conversation */
            mt_cli_fail(err);
            c->n_msgs--;
            c->n_images -= (int)c->msgs[c->n_msgs].n_images;
            mt_free(c->texts[c->n_msgs]);
            continue;
        }
        if ((st = add_message(c, "assistant", k.ans.text ? k.ans.text : "", err))) break;
    }
    cli_chat_finish(&k, st);
    return MT_EXIT_OK;
}
