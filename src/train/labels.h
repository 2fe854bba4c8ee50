/* train/labels: input ids and loss labels of one training sample, built segment by segment from the model's own
 * chat template, and a summary of a whole data set.
 *
 *     mt_labels_src src = mt_labels_src_from_model(model);
 *     mt_labels_opts o = mt_labels_default_opts();            // every assistant turn, no length limit
 *     mt_sample_tokens s;
 *     st = mt_labels_build(&src, messages, NULL, image_tokens, n_images, &o, &s, &err);
 *     if (st == MT_ERR_LIMIT) ... skip the sample and count it ...
 *     ... s.ids [s.n], s.labels [s.n], first s.n_images images ...
 *     mt_sample_tokens_release(&s);
 *
 * Method. Supervised assistant turns split the conversation. For each such turn i (messages[i].role is "assistant")
 * the template is rendered twice, as transformers' apply_chat_template renders with tokenize=False, and once more at
 * the end:
 *
 *   | rendering                               | the new text it adds                              | labels      |
 *   |-----------------------------------------|---------------------------------------------------|-------------|
 *   | B_i = render(messages[:i], gen = true)  | earlier turns, glue, "<|im_start|>assistant\n"    | -100        |
 *   | A_i = render(messages[:i+1], gen=false) | turn i: its text, "<|im_end|>", "\n"              | = input ids |
 *   | F   = render(messages, gen = false)     | what follows the last supervised turn             | -100        |
 *
 * Each rendering must begin with the one before it (as bytes). The new text of each is tokenized on its own with
 * special tokens parsed and add_special_tokens off: transformers' apply_chat_template(tokenize=True) also encodes
 * with add_special_tokens=False, so a BOS, where a family has one, comes from the template text. The whole string
 * is never re-tokenized to find offsets. Each image placeholder token is then repeated to its image's count, or
 * replaced by the processor's expansion (expand), which may take the vision edges around it too (Qwen3-VL's video:
 * "<t seconds>" text and each frame's own edges replace <|vision_start|><|video_pad|><|vision_end|>, as
 * transformers' Qwen3VLProcessor does in the text before tokenizing).
 *
 * An assistant turn is supervised up to where the next rendering starts: for ChatML templates (Qwen2-VL,
 * Qwen2.5-VL, Qwen3) that is "<|im_end|>" and the "\n" after it, as LLaMA-Factory's qwen2_vl template supervises
 * (its format_assistant "{{content}}<|im_end|>\n" is the whole target in data/processor/supervised.py). Image tokens
 * are -100 wherever they are, even inside an assistant turn (its vision start and end tokens stay supervised,
 * unless the expansion replaced them: every token of an expansion, its text and edges included, is -100).
 *
 * Labels are not shifted: labels[i] is the token expected at position i, so the loss of the logits at position
 * i - 1 is taken against labels[i] (transformers' ForCausalLMLoss shifts the same way); labels[0] never counts.
 *
 * A template whose earlier text changes when later messages are added is not prefix-stable: MT_ERR_INVALID_ARG
 * naming the assistant turn whose text changed. Qwen3's template is one: the last assistant turn carries a
 * "<think>...</think>" block (empty when it has no reasoning) that disappears once any message follows it, unless it
 * has reasoning and comes after the last user query. With it a sample is accepted when it has one supervised turn,
 * which last_turn_only gives (the only boundaries are then around the last assistant turn). With
 * enable_thinking=false its generation prompt ends in the empty "<think>\n\n</think>\n\n", which is then prompt
 * (-100), and an answer with reasoning does not continue it (an error); otherwise the template writes the block
 * into the assistant turn and it is supervised.
 *
 * Truncation to max_len cuts at the end; a cut inside an image span (the vision start token, the image tokens and
 * the vision end token around them) gives MT_ERR_LIMIT, as does a cut that leaves no supervised token: the trainer
 * skips the sample and counts it. Images wholly past the cut are dropped (out->n_images counts those kept).
 *
 * Shape legend: N tokens of the sample after image expansion.
 */
#ifndef MT_TRAIN_LABELS_H
#define MT_TRAIN_LABELS_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "models/model.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

#define MT_LABEL_IGNORE (-100)           /* transformers' ignore_index */
#define MT_LABELS_MAX_TOKENS (1 << 24)   /* a sample longer than this (before max_len) is MT_ERR_LIMIT */
#define MT_LABELS_MAX_MESSAGES 4096
#define MT_LABELS_MAX_IMAGES 4096

/* What the builder reads. The template and tokenizer are borrowed and must outlive the call. A token id of -1 means
 * the model has no such token. */
typedef struct mt_labels_src {
    const mt_tokenizer *tok;
    const mt_chat_template *tmpl;
    /* Each image or video placeholder takes the next of the n_images inputs (in text order, whatever its kind; the
     * expand callback gives a video's own tokens) and is expanded to its count, always -100. */
    int32_t image_token_id;
    int32_t video_token_id;
    int32_t vision_start_id; /* with vision_end_id, the edges of an image span truncation must not cut */
    int32_t vision_end_id;
    /* The ids image i's placeholder becomes (the model processor's wrapper and feature tokens; *out mt_malloc'd,
     * freed by the builder), or NULL: the placeholder repeated image_tokens[i] times. ids [n] is the placeholder at
     * ids[at] with the token before it (when the sample has one) and the one after it (when its segment has one);
     * *before and *after say how many of those the expansion replaces (at most at and n - 1 - at): the vision edges
     * the template wrote around a placeholder whose expansion writes its own (Qwen3-VL's video frames). */
    mt_status (*expand)(const void *user, int image, const int32_t *ids, int64_t n, int64_t at, int32_t **out,
                        int64_t *len, int64_t *before, int64_t *after, mt_err *err);
    const void *expand_user;
} mt_labels_src;

/* The model's tokenizer, its chat template (the folder's, else the composition's default) and its vision token ids. */
mt_labels_src mt_labels_src_from_model(const mt_model *m);

typedef struct mt_labels_opts {
    bool last_turn_only;          /* supervise only the last assistant turn; default false (every turn) */
    int64_t max_len;              /* truncate to this many tokens; 0: no limit (default) */
    const cJSON *template_kwargs; /* extra template variables ({"enable_thinking": false}) or NULL (default) */
} mt_labels_opts;

mt_labels_opts mt_labels_default_opts(void);

typedef struct mt_sample_tokens {
    int32_t *ids;           /* [N] input ids, image placeholders expanded */
    int32_t *labels;        /* [N] ids[i] where supervised, MT_LABEL_IGNORE elsewhere; not shifted */
    int64_t n;              /* N */
    int64_t n_supervised;   /* labels != MT_LABEL_IGNORE */
    int64_t n_image_tokens; /* ids == image_token_id or video_token_id */
    int n_images;           /* images whose tokens are in ids: the first n_images given */
    int64_t n_truncated;    /* tokens cut from the end by max_len */
} mt_sample_tokens;

/* Builds one sample. messages: an array of {role, content, ...} as mt_chat_template_render takes them (content a
 * string or a list of parts such as {"type": "image"} and {"type": "text", "text": ...}); tools: an array or NULL;
 * image_tokens [n_images]: the placeholder count of each image in order of appearance (mt_model_image_rows).
 * On MT_OK *out owns two mt_malloc'd arrays (release with mt_sample_tokens_release); on failure *out is zeroed.
 * Errors: MT_ERR_INVALID_ARG for malformed messages, no assistant turn to supervise, a template that is not
 * prefix-stable (naming the message), a template raise_exception, or a placeholder count that differs from
 * n_images; MT_ERR_LIMIT for too many messages, images or tokens and for a truncation that would cut an image span
 * or every supervised token; MT_ERR_NOMEM; errors of mt_chat_template_render, mt_tokenizer_encode and expand. */
mt_status mt_labels_build(const mt_labels_src *src, const cJSON *messages, const cJSON *tools,
                          const int64_t *image_tokens, int n_images, const mt_labels_opts *opts,
                          mt_sample_tokens *out, mt_err *err);

/* Frees the arrays and zeroes *s; NULL is fine. */
void mt_sample_tokens_release(mt_sample_tokens *s);

/* Per-sample counts of a data set, for the summary printed before training. Start from {0}. */
typedef struct mt_labels_stats {
    int64_t samples, skipped;
    int64_t tokens, tokens_min, tokens_max;
    int64_t image_tokens, supervised, truncated_samples;
} mt_labels_stats;

/* Adds one built sample. */
void mt_labels_stats_add(mt_labels_stats *st, const mt_sample_tokens *s);
/* Counts a sample that was skipped (MT_ERR_LIMIT or a bad sample). */
void mt_labels_stats_skip(mt_labels_stats *st);
/* Writes the summary to f as a two-column table: samples, skipped, truncated, tokens per sample min / mean / max,
 * tokens, image tokens (share of tokens), supervised tokens (share of tokens). */
void mt_labels_stats_print(const mt_labels_stats *st, FILE *f);

#endif
