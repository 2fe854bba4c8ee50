/* models/gguf_source: a GGUF language model (and its mmproj file) as the checkpoint folder the compositions load.
 *
 * The weights stay in the mapped GGUF files, under the Hugging Face names the parts read (quantized ones keep their
 * blocks; a vision qkv split by the converter is joined again, the Conv3d patch embedding rebuilt from its two
 * Conv2d halves: those few are copies). The metadata - config.json, tokenizer.json, tokenizer_config.json (special
 * tokens, chat template) and preprocessor_config.json - is written, as transformers would have it, into a private
 * folder made for the model and removed when it closes, so every part reads its files as from a downloaded folder.
 *
 *     | GGUF (general.architecture)          | with --mmproj (clip.projector_type) | composition          |
 *     |--------------------------------------|-------------------------------------|----------------------|
 *     | qwen2vl                              | qwen2.5vl_merger                    | Qwen2.5-VL           |
 *     | qwen2vl                              | qwen2vl_merger                      | Qwen2-VL             |
 *     | qwen2vl (no mmproj), qwen2           | -                                   | Qwen2 (text only)    |
 *     | qwen3                                | -                                   | Qwen3                |
 *     | qwen3vl                              | qwen3vl_merger                      | Qwen3-VL             |
 *     | qwen3vl (no mmproj)                  | -                                   | Qwen3 (text only)    |
 *     | qwen2 / qwen3 / llama / internlm2    | internvl                            | InternVL (original)  |
 *     | llama, internlm2 (q/k un-permuted)   | -                                   | Llama (text only)    |
 *
 * What GGUF does not carry, and what is assumed (each logged when it is assumed): the processor's min_pixels and
 * max_pixels (mitten's files carry them as mitten.* keys; otherwise Qwen2-VL's published 3136 and 12845056) and the
 * window size of Qwen2.5-VL's attention (112, fixed in llama.cpp too); Qwen3-VL's pixel bounds (65536..16777216);
 * InternVL's tile bounds and scale factor when
 * the projector lacks them (llama.cpp's 1..12 and 2). */
#ifndef MT_MODELS_GGUF_SOURCE_H
#define MT_MODELS_GGUF_SOURCE_H

#include "io/safetensors.h"

typedef struct mt_gguf_source mt_gguf_source;

/* Whether path names a GGUF file (by its first four bytes). */
bool mt_gguf_is_file(const char *path);

/* Opens model (and mmproj, or NULL): *folder is the metadata folder, *st the weights under their checkpoint names
 * (the caller closes *st; the source keeps the folder until mt_gguf_source_close). */
mt_status mt_gguf_source_open(const char *model, const char *mmproj, mt_gguf_source **out, const char **folder,
                              mt_safetensors **st, mt_err *err);
/* Rewrites an error that names the metadata folder to name the model file instead ("F.gguf (its metadata as
 * config.json): ..."): the folder is gone once the load fails. */
void mt_gguf_source_name_errors(const mt_gguf_source *s, mt_err *err);
/* The model or mmproj file's mapping when it holds [p, p + n) (not a tensor the source joined or copied), or NULL. */
const mt_mapping *mt_gguf_source_mapping_of(const mt_gguf_source *s, const void *p, size_t n);
/* Removes the metadata folder and what it wrote there. */
void mt_gguf_source_close(mt_gguf_source *s);

#endif
