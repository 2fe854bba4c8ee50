/* train/dataset: instruction-tuning samples from LLaVA, ShareGPT and LLaMA-Factory files, normalised to the
 * OpenAI messages form that text/chat_template renders, with their image paths resolved and checked.
 *
 *     mt_dataset_opts o = mt_dataset_opts_default();
 *     o.image_dir = "images/";                                   // NULL: relative to the data file's folder
 *     mt_dataset *ds;
 *     if (mt_dataset_load("train.jsonl", &o, &ds, &err) != MT_OK) ...  // err.msg: "train.jsonl:17: ..." etc.
 *     for (size_t i = 0; i < mt_dataset_count(ds); i++) {
 *         const mt_sample *s = mt_dataset_sample(ds, i);         // s->messages, s->images[0 .. s->n_images)
 *     }
 *     mt_dataset_free(ds);
 *
 * References: LLaVA's training JSON (llava/train/train.py, LazySupervisedDataset) and LLaMA-Factory's sharegpt
 * converter (src/llamafactory/data/converter.py, SharegptDatasetConverter) and Qwen2-VL plugin (mm_plugin.py).
 *
 * Files. The first byte that is not whitespace or a UTF-8 BOM decides, whatever the extension:
 *
 *   | first byte | layout                                     | a sample's position                          |
 *   |------------|--------------------------------------------|----------------------------------------------|
 *   | [          | one JSON array of sample objects (.json)   | array index, and the line where it starts    |
 *   | {          | one object per line (.jsonl), blank lines  | the line                                     |
 *   |            | ignored, CRLF accepted                     |                                              |
 *
 * Array elements are found by a scan that tracks strings and brackets and are parsed one by one, so one broken
 * element costs only itself and a file is never held as one cJSON tree. A file that ends inside an element skips
 * that element (truncated); one cut just after an element is logged (strict: an error); text after the closing
 * ']', a missing ',' or an empty element ("[,", ",]") fails the whole load.
 *
 * Samples, told apart by their keys:
 *
 *   | key                              | turns                                        | images                      |
 *   |----------------------------------|----------------------------------------------|-----------------------------|
 *   | "conversations" (LLaVA/ShareGPT) | {"from": ..., "value": ...}                  | "image" or "images": a path |
 *   | "messages" (LLaMA-Factory)       | {"role": ..., "content": ...}                | or an array of paths        |
 *
 * Either key pair is accepted in either list. "content" may also be an OpenAI parts array: {"type": "text",
 * "text"}, {"type": "image"} (takes the next path from "images"), {"type": "image", "image": PATH} or
 * {"type": "image_url", "image_url": {"url": PATH}} (its own path; "file://" is dropped; http and data: URLs are
 * refused). Videos take the same forms: "video" or "videos" (LLaVA-Video, LLaMA-Factory's "videos" column), "<video>"
 * placeholders, {"type": "video"} (the next path from "videos"), {"type": "video", "video": PATH} or
 * {"type": "video_url", "video_url": {"url": PATH}}; a video part is {"type": "video"} in the messages and its path
 * is flagged in mt_sample.videos. Placeholders of each kind must equal the paths of that kind. A video is a file
 * FFmpeg reads or a folder of frames: the load checks only that it is there (it is decoded when the trainer
 * prepares the sample, sampled with the model's video params). "id" is kept when it is a string; other keys are
 * ignored. "audios" skips the sample: audio is not supported yet.
 *
 * Roles, mapped as LLaMA-Factory's sharegpt tags map them (user_tag, assistant_tag, system_tag, function_tag,
 * observation_tag) and then written the way HF chat templates name them:
 *
 *   | in the file            | out         | why                                                              |
 *   |------------------------|-------------|------------------------------------------------------------------|
 *   | human, user            | user        |                                                                  |
 *   | gpt, assistant         | assistant   |                                                                  |
 *   | system                 | system      | only as the first turn (LLaMA-Factory moves it to the system     |
 *   |                        |             | slot; anywhere else it is out of order)                          |
 *   | function_call          | assistant   | a tool call is the model's own output, supervised; its text is   |
 *   |                        |             | kept verbatim (no tool_calls field, which Qwen2.5-VL's template  |
 *   |                        |             | would not render)                                                |
 *   | observation, tool      | tool        | a tool's answer, never supervised                                |
 *   | anything else          | -           | skipped: unknown role                                            |
 *
 * Order, as LLaMA-Factory checks it: after an optional system turn, turns alternate user-side (user, tool) and
 * assistant-side (assistant, function_call), starting user-side and ending assistant-side, so there is at least
 * one assistant turn and the last turn is the assistant's. A tool turn may follow a tool turn (the answers to
 * parallel calls, as OpenAI's messages send them).
 *
 * Tools, in OpenAI's message form, passed to the chat template as transformers' apply_chat_template(messages,
 * tools=...) passes them, so a template that renders tools (Hermes / Qwen2.5 style) trains on what it serves:
 *
 *   | field                          | kept as                                                                 |
 *   |--------------------------------|-------------------------------------------------------------------------|
 *   | "tools" (sample)               | mt_sample.tools: an array of objects as given; a string is parsed as    |
 *   |                                | JSON (LLaMA-Factory's column); absent, null, "" or [] give NULL         |
 *   | "tool_calls" (assistant turn)  | [{"id" when a string, "type": "function", "function": {"name",          |
 *   |                                | "arguments": object}}]; a JSON string of arguments is parsed, as        |
 *   |                                | templates take arguments as a mapping; "content" may then be absent or  |
 *   |                                | null, given as "" (as mitten serve and vLLM give it: templates without  |
 *   |                                | tools, Qwen2-VL's, loop over content)                                   |
 *   | "tool_call_id", "name" (tool)  | kept when strings                                                       |
 *
 * Placeholders. Each "<image>" in a turn's text becomes {"type": "image"} at its place; the text around it becomes
 * {"type": "text", "text": ...} parts (empty ones dropped). Nothing else is removed: LLaMA-Factory's Qwen2-VL plugin
 * replaces each "<image>" in place and keeps the "\n" after a leading "<image>\n". LLaVA's own code moves every
 * image to the front of its turn followed by "\n", which gives the same text for the usual leading "<image>\n" but
 * not for "question\n<image>"; mitten keeps the position, as LLaMA-Factory does. A turn without images keeps a plain
 * string content. Placeholders over the whole sample must equal its image paths.
 *
 * Image paths: absolute ones are kept; relative ones are joined to opts->image_dir when set, else to the data
 * file's folder (LLaMA-Factory's media_dir; unlike it, there is no fallback to the working directory). Each image
 * is checked as opts->check_images says. media/image has no header-only probe, so MT_DATASET_CHECK_DECODE decodes
 * every image in full once at load (opts->pool spreads that over threads); MT_DATASET_CHECK_EXISTS only looks for
 * a regular file. A path holding U+0000 ("\u0000") is a bad sample (no file has such a name).
 *
 * Text keeps U+0000: the strings of messages hold it in base/json's form (C0 80), which the chat template renderer
 * turns back into a 0 byte.
 *
 * InternVL meta files. A file that is one JSON object whose every member is an object with "annotation" lists data
 * sets as InternVL's training scripts take them (--meta_path): name -> {"annotation": a data file, "root": the
 * folder its relative image paths start from, "repeat_time": r, "length": n (checked as a number, not used)}.
 * Each set loads as a data file of its own (root in place of opts->image_dir; no root or "": its file's folder),
 * then r below 1 keeps its first floor(n * r) samples and a whole r above 1 repeats it r times, in the sets'
 * order, as internvl_chat_finetune.py's LazySupervisedDataset cuts or repeats raw_data (it counts the file's lines,
 * mitten the good samples: the same for a file without bad lines). A fractional r above 1, r <= 0, a missing r, an
 * annotation that is itself a meta file, and opts->image_dir are errors naming the file and the set. Relative
 * "annotation" and "root" paths start from the working directory, as InternVL's scripts read them. Keys InternVL
 * reads per set for tiling ("max_dynamic_patch") are logged as not applied.
 *
 * Preference pairs (opts->pref, for DPO). A pair loads as one side: its prompt with the chosen (or the rejected)
 * answer as the last turn, after which every rule above holds for it. The two layouts:
 *
 *   | layout         | prompt                                       | answers "chosen", "rejected"                  |
 *   |----------------|----------------------------------------------|-----------------------------------------------|
 *   | LLaMA-Factory  | "conversations" (from/value) or "messages"   | one turn each ({"from": "gpt", "value": ...}  |
 *   | (ranking: true)| (role/content), ending before the answer     | or {"role": "assistant", ...}) or a string    |
 *   | TRL            | "prompt": a string (one user turn) or a list | a string (one assistant turn), a message, or  |
 *   |                | of messages                                  | a list of exactly one message                 |
 *
 * "images" / "videos" and "<image>" placeholders work as in an SFT sample (TRL's {"type": "image"} parts too).
 * A missing answer, a prompt in both layouts at once or neither, and an answer of the wrong type are bad fields;
 * both answers are checked on either side, so a pair is kept or skipped whole.
 *
 * Prompts (MT_DATASET_PREF_PROMPT, for GRPO): "conversations" / "messages" ending user-side, or TRL's "prompt" (a
 * string or a list of messages), with "images" / "videos" as above. The prompt loads with an empty assistant turn
 * appended, so every rule above holds and the labels builder's prompt part (render with add_generation_prompt) is the
 * prompt the model answers; a prompt that already ends with an assistant turn is out of order. The whole object
 * stays in mt_sample.fields for the rewards ("answer", "box", "schema", anything), checked by opts->check_fields.
 *
 * A bad sample is skipped, counted under its reason and logged (through mt_log) with file:line; the first
 * MT_DATASET_SKIPS_KEPT skips are kept with their messages for mt_dataset_skip_at. With opts->strict the first bad
 * sample in file order fails the load instead, its message naming file:line and the reason.
 */
#ifndef MT_TRAIN_DATASET_H
#define MT_TRAIN_DATASET_H

#include <cjson/cJSON.h>

#include "base/base.h"
#include "base/pool.h"

typedef enum mt_dataset_check {
    MT_DATASET_CHECK_DECODE = 0, /* each image exists and decodes (full decode) */
    MT_DATASET_CHECK_EXISTS = 1, /* each image is a regular file */
    MT_DATASET_CHECK_NONE = 2    /* paths are resolved only (fuzzing, callers that check later) */
} mt_dataset_check;

/* Caps left at 0 take the default of mt_dataset_opts_default. */
/* Images one training sample may hold: the trainer's per-sample limit, so a sample over it is skipped at load (with
 * its file and line), never found mid-run. */
#define MT_DATASET_MAX_IMAGES 64

typedef enum mt_dataset_pref {
    MT_DATASET_PREF_NONE = 0, /* SFT samples */
    MT_DATASET_PREF_CHOSEN,   /* preference pairs, each loaded as its prompt + chosen answer */
    MT_DATASET_PREF_REJECTED, /* preference pairs, each loaded as its prompt + rejected answer */
    MT_DATASET_PREF_PROMPT    /* GRPO prompts, each loaded as its prompt + an empty answer, its object kept */
} mt_dataset_pref;

typedef struct mt_dataset_opts {
    const char *image_dir;        /* relative image paths are under this folder; NULL: the data file's folder */
    bool strict;                  /* the first bad sample fails the load */
    mt_dataset_check check_images;
    mt_pool *pool;                /* threads for image checks; NULL: the calling thread */
    size_t max_file_bytes;        /* default 16 GiB (the file is mapped, not read) */
    size_t max_samples;           /* samples and bad samples together; default 100,000,000 */
    size_t max_sample_bytes;      /* the JSON text of one line or array element; default 16 MiB */
    size_t max_images;            /* per sample; default MT_DATASET_MAX_IMAGES, what a training step takes */
    int64_t max_image_pixels;     /* width * height for CHECK_DECODE; default MT_IMAGE_DEFAULT_MAX_PIXELS */
    mt_dataset_pref pref;         /* default MT_DATASET_PREF_NONE */
    bool quiet_skips;             /* skips are logged at debug level only: a second load of a file whose skips were
                                     already logged (DPO's rejected sides) */
    /* MT_DATASET_PREF_PROMPT: NULL, or whether the sample object has what the run needs of it (GRPO: the fields its
     * rewards read); an error makes it a bad sample (MT_DATASET_BAD_FIELDS) with the message as its detail */
    mt_status (*check_fields)(void *user, const cJSON *sample, mt_err *err);
    void *check_user;
} mt_dataset_opts;

mt_dataset_opts mt_dataset_opts_default(void);

/* Why a sample was skipped. */
typedef enum mt_dataset_reason {
    MT_DATASET_BAD_JSON = 0,     /* a line or element that does not parse, or a truncated one */
    MT_DATASET_BAD_FIELDS,       /* not an object, no turns, a field of the wrong type */
    MT_DATASET_BAD_ROLE,         /* a role outside the table above */
    MT_DATASET_BAD_ORDER,        /* turns out of order, no assistant turn, last turn not the assistant's */
    MT_DATASET_BAD_PLACEHOLDERS, /* "<image>" count differs from the image count */
    MT_DATASET_IMAGE_MISSING,    /* no such file */
    MT_DATASET_IMAGE_BAD,        /* the file does not decode as an image, or is over max_image_pixels */
    MT_DATASET_UNSUPPORTED,      /* audio, image and video URLs */
    MT_DATASET_TOO_LARGE,        /* over max_sample_bytes or max_images, or a path over PATH_MAX */
    MT_DATASET_N_REASONS
} mt_dataset_reason;

/* A short name ("missing image", ...) for summaries. */
const char *mt_dataset_reason_name(mt_dataset_reason r);

typedef struct mt_sample {
    const cJSON *messages;     /* [{"role", "content": string | [{"type": "image"} | {"type": "text", "text"}]}] */
    const cJSON *tools;        /* the tools array for the chat template, or NULL */
    const char *const *images; /* n_images resolved paths, in the order of the image and video parts */
    const bool *videos;        /* [n_images]: path i is a video; NULL when none is */
    size_t n_images;
    int64_t line;  /* 1-based line where the sample starts in the data file */
    int64_t index; /* 0-based: the array index (.json), or the count of non-blank lines before it (.jsonl) */
    const char *id; /* the sample's "id" when it is a string, else NULL */
    const cJSON *fields; /* MT_DATASET_PREF_PROMPT: the sample's object as the file holds it; else NULL */
} mt_sample;

typedef struct mt_dataset_skip {
    int64_t line, index;
    mt_dataset_reason reason;
    const char *msg; /* "file:line: reason: detail" */
} mt_dataset_skip;

#define MT_DATASET_SKIPS_KEPT 1000

typedef struct mt_dataset mt_dataset;

/* Loads and validates every sample of path. opts may be NULL for the defaults. Errors (nothing is returned in
 * *out): MT_ERR_IO for an unreadable file, MT_ERR_LIMIT over max_file_bytes or max_samples, MT_ERR_FORMAT for a
 * file that is not an array or JSON lines at all, MT_ERR_NOMEM; with opts->strict, the first bad sample's code
 * (MT_ERR_FORMAT, MT_ERR_IO for a missing image, MT_ERR_UNSUPPORTED, MT_ERR_LIMIT). A file with no good sample
 * loads with a count of 0. */
mt_status mt_dataset_load(const char *path, const mt_dataset_opts *opts, mt_dataset **out, mt_err *err);

/* The same over data[0 .. size) in memory; name stands for the file in messages and base_dir for its folder. */
mt_status mt_dataset_load_buffer(const char *data, size_t size, const char *name, const char *base_dir,
                                 const mt_dataset_opts *opts, mt_dataset **out, mt_err *err);

size_t mt_dataset_count(const mt_dataset *ds);
/* NULL when i >= mt_dataset_count(ds). The sample lives as long as ds. */
const mt_sample *mt_dataset_sample(const mt_dataset *ds, size_t i);

/* Skipped samples in all, or under one reason. */
size_t mt_dataset_skipped(const mt_dataset *ds);
size_t mt_dataset_skipped_for(const mt_dataset *ds, mt_dataset_reason r);
/* The i-th skip in file order, for i < MIN(mt_dataset_skipped(ds), MT_DATASET_SKIPS_KEPT); else NULL. */
const mt_dataset_skip *mt_dataset_skip_at(const mt_dataset *ds, size_t i);

/* One line at MT_LOG_INFO: "NAME: N samples, M images, K skipped (missing image 2, ...)". */
void mt_dataset_log_summary(const mt_dataset *ds);

void mt_dataset_free(mt_dataset *ds);

#endif
