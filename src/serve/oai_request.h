/* serve/oai_request: an OpenAI request body (POST /v1/chat/completions or /v1/completions) checked field by field and
 * turned into what the engine takes: the messages as transformers' chat templates read them, the decoded images and
 * the located videos in order, the sampling settings over the model's defaults, the stop strings and the stream
 * options.
 *
 * Messages for the template: content stays a string, or becomes a list of {"type": "text", "text"},
 * {"type": "image"} and {"type": "video"} parts in the client's order; "developer" is "system"; an assistant's
 * tool_calls keep their arguments as an object when they parse as JSON (templates print them with tojson); tool
 * messages pass as they are.
 *
 * Every refusal names the field (param, as OpenAI's error object has it) and says what is wrong. */
#ifndef MT_OAI_REQUEST_H
#define MT_OAI_REQUEST_H

#include <cjson/cJSON.h>

#include "media/image.h"
#include "serve/out_filter.h"

#define MT_OAI_MAX_IMAGES 64
#define MT_OAI_MAX_VIDEOS 16
#define MT_OAI_MAX_INPUTS (MT_OAI_MAX_IMAGES + MT_OAI_MAX_VIDEOS)

typedef struct mt_oai_limits {
    int max_images;           /* per request */
    int max_videos;           /* per request */
    int64_t max_tokens;       /* the most max_tokens may ask for */
    int64_t max_image_pixels; /* decoded size refused above it */
    const char *allow_files;  /* a real, absolute folder local image and video paths may be under, or NULL: none */
} mt_oai_limits;

/* Why a request is refused, as OpenAI's error object says it. */
typedef struct mt_oai_fail {
    int http;         /* 400, 404, 413, ... */
    const char *type; /* "invalid_request_error", ... */
    const char *code; /* or NULL */
    char param[128];  /* the field, or "" */
} mt_oai_fail;

typedef struct mt_oai_request {
    cJSON *body;
    bool chat;
    cJSON *messages;      /* chat: for the template (owned) */
    const cJSON *tools;   /* chat: the body's tools, or NULL (also when tool_choice is "none") */
    const char *prompt;   /* completions: the body's prompt */
    const char *model;    /* as given, or NULL */
    bool stream, include_usage;
    int64_t max_tokens;   /* 0: not given */
    int64_t min_tokens;   /* vLLM's min_tokens: no end of turn before this many tokens */
    bool ignore_eos;      /* vLLM's ignore_eos: no end of turn before max_tokens */
    mt_sampling sampling;
    const char *stops[MT_MAX_STOPS];
    int n_stops;
    mt_image images[MT_OAI_MAX_IMAGES];
    int n_images;
    /* videos are only located here (the model's processor decodes them): a real path (owned) under allow_files, or
     * a data: URL's bytes (owned); kind is MT_MEDIA_VIDEO */
    mt_image_ref videos[MT_OAI_MAX_VIDEOS];
    char video_param[MT_OAI_MAX_VIDEOS][128]; /* the field each came from, for errors */
    int n_videos;
    bool input_is_video[MT_OAI_MAX_INPUTS]; /* images and videos in the order of their parts */
    int n_inputs;
} mt_oai_request;

/* Parses body [n]; defaults are the model's sampling settings. On failure *fail and err say why; *out is left
 * empty. */
mt_status mt_oai_parse(const char *body, size_t n, bool chat, const mt_sampling *defaults, const mt_oai_limits *lim,
                       mt_oai_request *out, mt_oai_fail *fail, mt_err *err);
void mt_oai_request_free(mt_oai_request *r);

#endif
