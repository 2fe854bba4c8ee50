/* tools/cmd_serve: `mitten serve` - the OpenAI-compatible server and chat page over one model (serve/server.h). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "models/model.h"
#include "serve/server.h"

static const char serve_usage[] =
    "usage: mitten serve [-m DIR] [options]\n"
    "\n"
    "Serves the model behind an OpenAI-compatible API (POST /v1/chat/completions, POST /v1/completions,\n"
    "GET /v1/models, GET /health) and a chat page at /. Point any OpenAI client at http://HOST:PORT/v1.\n"
    "Requests run together: every running answer's next token comes out of one forward pass.\n"
    "\n"
    "  -m DIR                 model folder (default: the shipped model, or $MITTEN_MODEL), or a GGUF file\n"
    "  --mmproj P.gguf        the GGUF model's vision part (llama.cpp's mmproj file)\n"
    "  --host ADDR            numeric address to listen on (default 127.0.0.1: this machine only)\n"
    "  --port N               port (default 8080; 0 picks a free one, printed at start)\n"
    "  --api-key KEY          require Authorization: Bearer KEY (default: $MITTEN_API_KEY, else none)\n"
    "  --model-name NAME      the model's name in the API (default: the folder's name)\n"
    "  --cors ORIGINS         let web pages from these origins call the API from a browser (comma-separated,\n"
    "                         e.g. http://localhost:3000; * allows any page; default: none, so a page a user\n"
    "                         visits cannot use the server)\n"
    "  --parallel N           answers generated at once (default 8); more wait in a queue\n"
    "  --queue N              requests that may wait (default 64); past it a request gets 429\n"
    "  --ctx N                tokens per conversation, prompt and answer (default 4096, at most the model's)\n"
    "  --threads N            threads (default: all CPUs)\n"
    "  --step-rows N          most prompt tokens read per step beside the running answers (default 64); a\n"
    "                         prompt this short is read in one step\n"
    "  --step-ms MS           a longer prompt is read in chunks sized so that a step takes about MS ms (default\n"
    "                         500): less keeps streams smooth and first tokens prompt while it is read, more\n"
    "                         reads it faster\n"
    "  --allow-files DIR      let image_url and video_url name local files under DIR (default: data: URLs only)\n"
    "  --max-body BYTES       largest request body (default 67108864)\n"
    "  --max-images N         images per request (default 8)\n"
    "  --max-image-pixels N   images are resized to at most N pixels, as the processor's max_pixels would\n"
    "                         (default 802816, 1024 tokens on Qwen2.5-VL; images larger than 89 MP are refused)\n"
    "  --max-videos N         videos (video_url parts) per request (default 2); each is decoded by FFmpeg from a\n"
    "                         data:video/...;base64 URL (through a private temporary file) or an allowed file\n"
    "  --max-frames N         most frames sampled from a video (default 64; 2 per second otherwise)\n"
    "  --video-max-pixels N   most pixels per video frame (default: qwen-vl-utils' 768 * 28^2, lowered for long\n"
    "                         videos)\n"
    "  --max-tokens N         most tokens one answer may ask for (default 4096)\n"
    "  --timeout SECONDS      longest one request may take (default 600)\n"
    "  --idle-timeout SECONDS close a connection silent this long while sending its request (default 30)\n"
    "  --allow-unused         load even when the checkpoint holds tensors the model does not read\n"
    "  --mmap                 read the weights in place from the file instead of copying them into memory\n"
    "  --quiet                no log line per request\n"
    "\n"
    "SIGINT or SIGTERM stops it: no new requests, running answers get 30 s to finish.\n"
    "Exit codes: 0 stopped by a signal, 1 the model or the port failed, 2 usage error.\n";

/* The last part of a folder path, without trailing slashes. */
static void folder_name(const char *dir, char *out, size_t cap) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(out, cap, "%.*s", (int)(n - b), dir + b);
}

int mt_cmd_serve(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", serve_usage), MT_EXIT_OK;
    const char *model_dir = mt_cli_default_model(), *v, *name = NULL;
    mt_server_params p = {.port = 8080, .api_key = getenv("MITTEN_API_KEY"),
                          .limits = {.max_images = 8, .max_videos = 2, .max_tokens = 4096,
                                     .max_image_pixels = MT_IMAGE_DEFAULT_MAX_PIXELS}};
    mt_model_params mp = {.max_pixels = 802816, .video = {.max_frames = 64}};
    if (p.api_key && !*p.api_key) p.api_key = NULL;
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        int64_t n;
        if (mt_cli_opt(&a, "-m", &model_dir, &bad) || mt_cli_opt(&a, "--host", &p.host, &bad) ||
            mt_cli_opt(&a, "--api-key", &p.api_key, &bad) || mt_cli_opt(&a, "--model-name", &name, &bad) ||
            mt_cli_opt(&a, "--cors", &p.cors, &bad) ||
            mt_cli_opt(&a, "--allow-files", &p.limits.allow_files, &bad) || mt_cli_opt(&a, "--mmproj", &mp.mmproj, &bad))
            continue;
        if (mt_cli_flag(&a, "--allow-unused")) {
            mp.allow_unused = true;
            continue;
        }
        if (mt_cli_flag(&a, "--mmap")) {
            mp.mmap = true;
            continue;
        }
        if (mt_cli_flag(&a, "--quiet")) {
            p.quiet = true;
            continue;
        }
#define NUM_OPT(flag, lo, hi, dst)                                                                        \
    if (mt_cli_opt(&a, flag, &v, &bad)) {                                                                 \
        if (!bad && !mt_cli_parse_i64(v, lo, hi, &n)) return mt_cli_usage(serve_usage, "bad %s %s", flag, v); \
        dst = n;                                                                                          \
        continue;                                                                                         \
    }
        NUM_OPT("--port", 0, 65535, p.port)
        NUM_OPT("--parallel", 1, 256, p.sched.max_active)
        NUM_OPT("--queue", 1, 1 << 20, p.sched.max_queued)
        NUM_OPT("--ctx", 16, 1 << 24, p.sched.n_ctx)
        NUM_OPT("--threads", 0, 1024, p.sched.n_threads)
        NUM_OPT("--step-rows", 1, 1 << 16, p.sched.step_rows)
        NUM_OPT("--step-ms", 1, 1 << 24, p.sched.step_ms)
        NUM_OPT("--max-body", 1024, (int64_t)1 << 34, p.max_body)
        NUM_OPT("--max-images", 0, 64, p.limits.max_images)
        NUM_OPT("--max-image-pixels", 1, (int64_t)1 << 40, mp.max_pixels)
        NUM_OPT("--max-videos", 0, MT_OAI_MAX_VIDEOS, p.limits.max_videos)
        NUM_OPT("--max-frames", 2, 1 << 20, mp.video.max_frames)
        NUM_OPT("--video-max-pixels", 1, (int64_t)1 << 40, mp.video.max_pixels)
        NUM_OPT("--max-tokens", 1, 1 << 24, p.limits.max_tokens)
        NUM_OPT("--timeout", 1, 1 << 24, p.request_seconds)
        NUM_OPT("--idle-timeout", 1, 1 << 20, p.idle_seconds)
#undef NUM_OPT
        return mt_cli_usage(serve_usage, "unknown option %s", argv[a.i]);
    }
    if (bad) return MT_EXIT_USAGE;
    mt_err err;
    mt_model *m;
    double t0 = mt_time_now();
    mt_log(MT_LOG_INFO, "loading %s ...", model_dir);
    if (mt_model_open_params(model_dir, &mp, &m, &err)) return mt_cli_fail(&err);
    int64_t max = mt_model_max_context(m);
    if (p.sched.n_ctx > max) {
        fprintf(stderr, "mitten: --ctx %lld is over this model's maximum context of %lld tokens "
                "(max_position_embeddings in %s/config.json)\n", (long long)p.sched.n_ctx, (long long)max, model_dir);
        mt_model_close(m);
        return MT_EXIT_USAGE;
    }
    char folder[256];
    folder_name(m->source, folder, sizeof folder);
    p.model_id = name ? name : folder;
    /* signals are taken by sigwait below; every thread started from here on inherits the mask */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    mt_server *s;
    if (mt_server_start(m, &p, &s, &err)) {
        mt_model_close(m);
        return mt_cli_fail(&err);
    }
    const char *host = p.host ? p.host : "127.0.0.1";
    bool v6 = strchr(host, ':') != NULL;
    const mt_sched_params *sp = mt_server_sched_params(s);
    fprintf(stderr, "mitten serve: listening on http://%s%s%s:%d/ - model %s, %d at once, %lld-token context, "
            "loaded in %.1f s\n", v6 ? "[" : "", host, v6 ? "]" : "", mt_server_port(s), p.model_id, sp->max_active,
            (long long)sp->n_ctx, mt_time_now() - t0);
    int sig;
    sigwait(&stop, &sig);
    fprintf(stderr, "mitten serve: %s: finishing the running requests (30 s at most)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    mt_server_stop(s, 30);
    mt_model_close(m);
    fprintf(stderr, "mitten serve: stopped\n");
    return MT_EXIT_OK;
}
