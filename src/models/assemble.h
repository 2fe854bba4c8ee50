/* models/assemble: what the engine and the trainer do with any model, whatever its parts - one multimodal assembly
 * for inference and training alike.
 *
 *     ids (placeholders expanded) + images --processor--> positions [axes][L]
 *                                          --vision-----> feature rows (+ DeepStack levels)
 *     embed(ids), features scattered into the rows of image_token_id ---> mt_batch (+ injections) ---> decoder
 *                 (a video's: of video_token_id)
 *
 * Shapes: L prompt tokens, H hidden, V vocabulary.
 */
#ifndef MT_MODELS_ASSEMBLE_H
#define MT_MODELS_ASSEMBLE_H

#include "models/model.h"

/* An RGB image as the model's processor makes it; *pixels (caller frees with mt_free) backs out->pixels.
 * MT_ERR_UNSUPPORTED for a model without vision. */
mt_status mt_model_preprocess_image(const mt_model *m, const mt_image *img, float **pixels, mt_image_input *out,
                                    mt_err *err);
/* A video as the model's processor makes it, sampled as m->params.video says: ref->path is a file FFmpeg reads or a
 * folder of frames; without a path, ref->data [ref->size] is written to a private temporary file ($TMPDIR, else
 * /tmp; mode 0600) that is removed before returning. *pixels (caller frees with mt_free) backs out (video set).
 * name names the video in errors and in the progress logged (MT_LOG_INFO) around the decoding, which may be long.
 * MT_ERR_UNSUPPORTED naming the model when its processor takes no videos. pixels NULL: out without pixels, what the
 * video's grid, sampling and so its tokens will be, no frame decoded where the processor can plan (plan_video). */
mt_status mt_model_preprocess_video(const mt_model *m, const mt_image_ref *ref, const char *name, float **pixels,
                                    mt_image_input *out, mt_err *err);
/* The input an array pixel_values [tiles, C, S, S] (pixels, shape) is for a tower that takes whole tiles
 * (InternViT); MT_ERR_UNSUPPORTED for a model whose tower takes patch rows with a grid, or none. */
mt_status mt_model_tiles_input(const mt_model *m, const int64_t shape[4], const float *pixels, mt_image_input *out,
                               mt_err *err);

/* The shape of transformers' pixel_values for an image the processor made (out: up to 4 dims); returns the rank:
 * 4 for InternVL's [tiles, 3, S, S], 2 for [n_patches, patch_dim]. */
int mt_model_pixel_shape(const mt_model *m, const mt_image_input *img, int64_t shape[4]);
/* The token ids one image placeholder becomes for an image of this grid (the processor's wrapper and feature
 * tokens); *ids is the caller's to mt_free. */
mt_status mt_model_image_tokens(const mt_model *m, mt_image_grid g, int32_t **ids, int64_t *n, mt_err *err);
/* The same for an image or a video (its placeholder is desc.video_token_id). */
mt_status mt_model_input_tokens(const mt_model *m, const mt_image_input *in, int32_t **ids, int64_t *n, mt_err *err);
/* The feature rows an image of this grid becomes (the image_token_id rows of its expansion); -1 for a grid the
 * processor refuses or a model without vision. */
int64_t mt_model_image_rows(const mt_model *m, mt_image_grid g);
/* The same for an image or a video: the rows of its kind's placeholder. */
int64_t mt_model_input_rows(const mt_model *m, const mt_image_input *in);
/* A hash of an image's grid and pixels (FNV-1a over their bytes; a video's kind and seconds too): what says that a
 * cached prefix holds the same image, where equal tokens say only that it had the same size. */
uint64_t mt_image_input_hash(const mt_image_input *img);
/* The ids the placeholder ids[i] (of input in's kind) becomes in the prompt ids [n], in a new array (*out, the caller's
 * to mt_free), and how many prompt ids next to it the expansion replaces: *before = *after = 1 when the expansion
 * writes its own frame edges (it holds desc.vision_start_id, as Qwen3-VL's timestamped video does; see
 * mt_processor_part.video_tokens) and ids[i - 1] and ids[i + 1] are the vision_start and vision_end the template
 * wrote around the placeholder, else 0. What mt_model_expand_inputs does at each placeholder; the trainer's labels,
 * which see a prompt a segment at a time, ask it with the tokens around the placeholder. */
mt_status mt_model_placeholder_expansion(const mt_model *m, const int32_t *ids, int64_t n, int64_t i,
                                        const mt_image_input *in, int32_t **out, int64_t *len, int64_t *before,
                                        int64_t *after, mt_err *err);
/* Copies ids [n] into a new array where each image placeholder (desc.image_token_id) becomes the processor's
 * expansion of that image, in order. Errors: more or fewer placeholders than images, a refused grid. */
mt_status mt_model_expand_images(const mt_model *m, const int32_t *ids, int64_t n, const mt_image_grid *grids,
                                 int n_images, int32_t **out, int64_t *out_n, mt_err *err);
/* The same for images and videos in the order of their placeholders (desc.image_token_id, desc.video_token_id);
 * errors also when an input's kind differs from its placeholder's. */
mt_status mt_model_expand_inputs(const mt_model *m, const int32_t *ids, int64_t n, const mt_image_input *inputs,
                                 int n_inputs, int32_t **out, int64_t *out_n, mt_err *err);
/* Positions [desc.pos_axes][L] of expanded ids continuing from position start; *next: the position after them. */
mt_status mt_model_positions(const mt_model *m, const int32_t *ids, int64_t L, const mt_image_input *images,
                             int n_images, int64_t start, int64_t *pos, int64_t *next, mt_err *err);

/* The inputs of one sequence as a decoder batch: token embeddings with every image's (video's) features in the rows
 * of its image (video) tokens, inputs in the order of their placeholders, and the DeepStack injections of the vision tower, positions from mt_model_positions.
 * Everything lives in ctx->arena. In training (ctx->tape) the features stay differentiable; in inference each
 * image's tower scratch is freed once its features are copied out. */
mt_status mt_model_assemble(const mt_model *m, mt_ctx *ctx, const int32_t *ids, int64_t L, const mt_image_input *images,
                            int n_images, const int64_t *pos, const mt_dump *dump, mt_batch *out, mt_err *err);

/* One image through the vision tower: its feature rows [n, H] (benchmarks time this alone). */
mt_tensor *mt_model_encode_image(const mt_model *m, mt_ctx *ctx, const mt_image_input *img, const mt_dump *dump);

/* The decoder over a batch: hidden states [T, H] (see mt_decoder_forward). */
mt_tensor *mt_model_forward(const mt_model *m, mt_ctx *ctx, mt_kv *kv, const mt_batch *b, const mt_dump *dump);
/* Logits [n, V] of rows idx [n] of hidden (idx NULL: every row). */
mt_tensor *mt_model_logits(const mt_model *m, mt_ctx *ctx, const mt_tensor *hidden, const int64_t *idx, int64_t n);
/* A KV memory sized for this model (nothing allocated until sequences grow). max_rows 0: no limit. */
mt_status mt_model_kv_new(const mt_model *m, int max_seqs, int64_t max_rows, mt_kv **out, mt_err *err);
/* The LM head [V, H] and token embeddings, for training and scoring code that needs them alone. */
const mt_tensor *mt_model_lm_head(const mt_model *m);
mt_tensor *mt_model_embed(const mt_model *m, mt_ctx *ctx, const int32_t *ids, int64_t n);

#endif
