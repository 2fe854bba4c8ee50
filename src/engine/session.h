/* engine/session: one conversation's mutable state over an immutable model - its sequence in a KV memory, scratch
 * arena, thread pool, the next position - and the prefill / decode steps over models/assemble.h.
 *
 * Usage:
 *     mt_session *s;  mt_session_new(model, &params, &s, err);
 *     mt_session_prefill(s, ids, L, images, n_images, &opts, &logits, err);   // logits [V] of the last token
 *     tok = mt_sampler_pick(...);  mt_session_decode(s, tok, &logits, err);   // and so on
 */
#ifndef MT_SESSION_H
#define MT_SESSION_H

#include "engine/sampler.h"
#include "models/assemble.h"

typedef struct mt_prefill_opts {
    bool all_logits;     /* logits of every position [L, V] instead of the last */
    const mt_dump *dump; /* intermediate tensors, or NULL */
} mt_prefill_opts;

int64_t mt_session_n_past(const mt_session *s);

/* Runs the prompt: ids [L] with every image's placeholder already expanded (mt_model_expand_images), images in
 * order. *logits points to [V] floats (or [L, V] with all_logits) valid until the next call. Appends to the
 * conversation so far. Errors: token ids outside the vocabulary, image token counts that do not match the images, a
 * full context. */
mt_status mt_session_prefill(mt_session *s, const int32_t *ids, int64_t L, const mt_image_input *images,
                             int n_images, const mt_prefill_opts *opts, const float **logits, mt_err *err);
/* One token after prefill: *logits [V]. */
mt_status mt_session_decode(mt_session *s, int32_t token, const float **logits, mt_err *err);

/* Keeps the longest prefix of ids [L] already in the KV cache (a chat turn repeats the conversation so far),
 * never cutting an image span, keeping an image only when its pixels are the cached one's (same-size images give
 * the same tokens), and always leaving at least the last token to prefill. Returns the tokens kept;
 * *images_kept gets how many of images they hold. The caller then prefills ids + kept with images + *images_kept. */
int64_t mt_session_reuse_prefix(mt_session *s, const int32_t *ids, int64_t L, const mt_image_input *images,
                                int n_images, int *images_kept);

typedef bool (*mt_token_fn)(void *user, int32_t token);

/* Keeps what it can of the KV cache (mt_session_reuse_prefix), prefills the rest, then samples up to max_new
 * tokens, calling on_token for each (false stops); stops at an eos id of the model, or when the context is full
 * (not an error: stats->stop says MT_STOP_CONTEXT). A seed of MT_SEED_RANDOM is drawn here. stats (or NULL) gets
 * the counts, times, seed and stop reason, on failure too. A prompt over the context is MT_ERR_CONTEXT. */
mt_status mt_session_generate(mt_session *s, const int32_t *ids, int64_t L, const mt_image_input *images,
                              int n_images, int64_t max_new, const mt_sampling *sampling, mt_token_fn on_token,
                              void *user, mt_gen_stats *stats, mt_err *err);

const mt_model *mt_session_model(const mt_session *s);

/* engine/chat.c's preprocessed images and videos of the session's last turn (see mt_session_chat), held by the
 * session and freed with it or by mt_session_reset. */
typedef struct mt_chat_media mt_chat_media;
mt_chat_media **mt_session_chat_media(mt_session *s);
void mt_chat_media_free(mt_chat_media *c);

#endif
