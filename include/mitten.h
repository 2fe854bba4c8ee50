/* mitten: the Multimodal Instruction Tuning ENgine - public C API.
 *
 * Usage:
 *     mt_err err;
 *     mt_model *m = NULL;
 *     if (mt_model_open("Qwen2.5-VL-3B-Instruct/", &m, &err) != MT_OK)
 *         fprintf(stderr, "%s\n", err.msg);
 *
 * Every function that can fail returns an mt_status and, when given a non-NULL mt_err, writes a message that
 * names the file and the field at fault. Outputs are left unchanged on failure. Every *_free accepts NULL.
 * The header compiles as C and as C++.
 */
#ifndef MITTEN_H
#define MITTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MT_VERSION "0.1.0"

typedef enum mt_status {
    MT_OK = 0,
    MT_ERR_INVALID_ARG = 1, /* a caller passed something that cannot work */
    MT_ERR_IO = 2,          /* a file could not be opened, read, mapped or written */
    MT_ERR_FORMAT = 3,      /* a file or body is malformed: header, JSON, image, template */
    MT_ERR_NOMEM = 4,       /* an allocation failed */
    MT_ERR_UNSUPPORTED = 5, /* well-formed, but mitten does not handle it (architecture, dtype, ...) */
    MT_ERR_LIMIT = 6,       /* a size, count or value is over a safety limit */
    MT_ERR_INTERNAL = 7,    /* a bug in mitten */
    MT_ERR_CONTEXT = 8      /* a prompt does not fit the session's context (mt_session_params.n_ctx) */
} mt_status;

#define MT_ERR_MSG_MAX 512

typedef struct mt_err {
    mt_status code;
    char msg[MT_ERR_MSG_MAX];
} mt_err;

/* A short constant name for a status ("format error", ...). */
const char *mt_status_name(mt_status s);

typedef struct mt_model mt_model;
typedef struct mt_session mt_session;

/* How videos are sampled and sized, as qwen-vl-utils' fetch_video takes it (every field 0: its defaults, which
 * transformers users get). InternVL reads nframes (its num_segments / num_frames), fps (int(frames / video fps *
 * fps) frames) and max_frames only: a frame is one tile (media/internvl_video_pre.h). */
typedef struct mt_video_params {
    double fps;           /* frames sampled per second of video (a folder of frames: the rate they were taken at);
                             0: 2 */
    int64_t nframes;      /* > 0: this many frames (rounded to even) instead of fps */
    int64_t min_frames;   /* 0: 4 */
    int64_t max_frames;   /* 0: min(768, the frames in the video) */
    int64_t max_pixels;   /* per frame; 0: 768 * 28^2 for patch 14, lowered to fit total_pixels */
    int64_t total_pixels; /* the whole clip's budget; 0: 128000 * 28^2 * 0.9 for patch 14 */
} mt_video_params;

typedef struct mt_model_params {
    bool allow_unused; /* load even when the checkpoint holds tensors no part reads (they are logged); default false */
    /* 0: images are resized as the processor's config says. N > 0: the processor's max_pixels is at most N, as
     * transformers' processor(images, max_pixels=N) (fewer image tokens for large images); below the processor's
     * min_pixels it is MT_ERR_INVALID_ARG. */
    int64_t max_pixels;
    /* With a GGUF language model as dir: its vision part, the mmproj file llama.cpp's --mmproj takes (NULL: none) */
    const char *mmproj;
    mt_video_params video; /* how videos are sampled and sized */
    /* true: weights stay in the file mapping and are paged in as they are read (llama.cpp's default; less memory
     * when the file is in the page cache anyway, a faster start). false (default): they are copied into huge pages
     * at load, from which decode streams them faster (docs/DESIGN.md, "Where the weights live"). */
    bool mmap;
} mt_model_params;

/* Opens a Hugging Face checkpoint folder, or a GGUF file (with p->mmproj for its vision part; models/gguf_source.h
 * says which): config.json's "architectures" picks the composition of parts; weights are copied into memory
 * (p->mmap: read in place from the file mapping); tokenizer.json and preprocessor_config.json are read when present
 * (chat needs the tokenizer; logits does not). Loading is strict: a tensor that no part reads is an error naming it
 * (MT_ERR_FORMAT) unless p->allow_unused. p may be NULL for the defaults. */
mt_status mt_model_open_params(const char *dir, const mt_model_params *p, mt_model **out, mt_err *err);
/* mt_model_open_params with the defaults. */
mt_status mt_model_open(const char *dir, mt_model **out, mt_err *err);
void mt_model_close(mt_model *m);
/* The longest context the model takes in tokens (config.json's max_position_embeddings): the most n_ctx may be. */
int64_t mt_model_max_context(const mt_model *m);

typedef struct mt_session_params {
    int64_t n_ctx; /* KV cache positions; 0 = 4096, or the model's maximum when that is less */
    int n_threads; /* 0 = all CPUs */
} mt_session_params;

/* p may be NULL for the defaults. An n_ctx over mt_model_max_context is MT_ERR_INVALID_ARG naming the maximum. */
mt_status mt_session_new(const mt_model *m, const mt_session_params *p, mt_session **out, mt_err *err);
void mt_session_free(mt_session *s);
/* Forgets the conversation (the KV cache and the pixels mt_session_chat keeps) but keeps the buffers. */
void mt_session_reset(mt_session *s);

/* mt_sampling.seed: a seed drawn afresh for each generation, reported in mt_gen_stats.seed so the run can be
 * repeated. */
#define MT_SEED_RANDOM UINT64_MAX

/* How the next token is picked, in transformers' order: repetition penalty (then OpenAI's presence and frequency
 * penalties, as vLLM applies them), temperature, top-k, top-p, min-p. */
typedef struct mt_sampling {
    float temperature;        /* 0 = greedy */
    int64_t top_k;            /* 0 = off */
    float top_p;              /* 1 = off */
    float min_p;              /* 0 = off */
    float repetition_penalty; /* 1 = off; applied to every token already in the sequence */
    float presence_penalty;   /* OpenAI's: 0 = off; subtracted from the logit of every token already in the answer */
    float frequency_penalty;  /* OpenAI's: 0 = off; times the count of each token in the answer, subtracted */
    uint64_t seed;            /* the same seed and settings give the same answer; MT_SEED_RANDOM draws one */
} mt_sampling;

/* Greedy, all filters off, seed 0. */
mt_sampling mt_sampling_default(void);

typedef struct mt_gen_params {
    mt_sampling sampling;
    int64_t max_new_tokens; /* default 512 */
} mt_gen_params;

/* mitten's defaults, whatever the model: greedy, 512 new tokens, seed MT_SEED_RANDOM. */
mt_gen_params mt_gen_params_default(void);

/* The model's own defaults, as transformers' generate takes them from the folder's generation_config.json: greedy
 * unless "do_sample" is true, and then "temperature" (1.0 when absent), "top_k" (50), "top_p" (1.0) and "min_p"
 * (off); "repetition_penalty" (1.0) applies either way. The filters are kept for greedy models too, so a caller that
 * sets a temperature samples as transformers' generate(do_sample=True) would. Seed MT_SEED_RANDOM, 512 new tokens.
 * Start from these and change what the user asked for (mitten run's flags do). */
mt_gen_params mt_model_gen_params(const mt_model *m);

/* What an mt_image_ref holds (a zeroed ref is an image). */
typedef enum mt_media_kind { MT_MEDIA_IMAGE = 0, MT_MEDIA_VIDEO = 1 } mt_media_kind;

/* An image or a video given by file path, or by its encoded bytes when path is NULL. Images: JPEG, PNG, WebP.
 * Videos: a file FFmpeg reads (bytes are written to a private temporary file while they are decoded, since FFmpeg
 * reads files), or by path a folder of frames (image files in name order); they are sampled as
 * mt_model_params.video says. A model whose processor takes no videos refuses one (MT_ERR_UNSUPPORTED). */
typedef struct mt_image_ref {
    const char *path;
    const void *data;
    size_t size;
    mt_media_kind kind;
} mt_image_ref;

/* One chat message: its images and videos (in this order) come before its text, as chat clients send them. */
typedef struct mt_message {
    const char *role; /* "system", "user", "assistant" */
    const char *text;
    const mt_image_ref *images; /* images and videos */
    size_t n_images;
} mt_message;

/* Why generation stopped. */
typedef enum mt_stop_reason {
    MT_STOP_EOS = 0,        /* the model ended its turn */
    MT_STOP_MAX_TOKENS = 1, /* max_new_tokens */
    MT_STOP_CONTEXT = 2,    /* the context is full: the answer is cut (a longer n_ctx, or fewer turns, gives room) */
    MT_STOP_CALLER = 3      /* on_text returned false */
} mt_stop_reason;

typedef struct mt_gen_stats {
    int64_t prompt_tokens, reused_tokens, new_tokens, image_tokens;
    double prefill_seconds, decode_seconds;
    uint64_t seed;       /* the seed sampling used (the drawn one for MT_SEED_RANDOM) */
    mt_stop_reason stop;
    int32_t eos_token;   /* the end-of-turn token that ended the answer (stop MT_STOP_EOS), else -1 */
    int64_t media_decoded, media_reused; /* mt_session_chat: images and videos decoded, and taken as the turn
                                            before left them */
} mt_gen_stats;

/* Receives the answer as it is generated, in whole UTF-8 characters; returning false stops generation. */
typedef bool (*mt_text_fn)(void *user, const char *text, size_t len);

/* Answers a conversation: renders msgs with the model's chat format, tokenizes, turns images and videos into tokens
 * (videos with their progress logged), and generates until an end-of-turn token or max_new_tokens, streaming through
 * on_text. The session keeps the preprocessed pixels of the images and videos given by path (not folders), up to
 * 2 GiB in message order, until its next chat call: one given again there, unchanged on disk (same file, size and
 * modification time), is not decoded again (stats: media_decoded, media_reused); mt_session_reset drops them. When msgs repeats the conversation this session has already seen (a
 * chat turn), the KV cache of that part is reused. stats may be NULL; once the prompt is made it is filled in, on
 * failure too (MT_ERR_CONTEXT: prompt_tokens and image_tokens, videos' included, say how large the prompt was). An
 * answer that reaches the end of the context stops there (stats->stop MT_STOP_CONTEXT). Errors: no tokenizer.json,
 * unreadable images or videos, a video the model does not take (MT_ERR_UNSUPPORTED), a prompt over the context
 * (MT_ERR_CONTEXT), bad sampling parameters. */
mt_status mt_session_chat(mt_session *s, const mt_message *msgs, size_t n_msgs, const mt_gen_params *p,
                          mt_text_fn on_text, void *user, mt_gen_stats *stats, mt_err *err);

#ifdef __cplusplus
}
#endif

#endif
