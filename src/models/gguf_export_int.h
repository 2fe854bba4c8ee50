/* models/gguf_export internals: the plan of a GGUF file's tensors, shared by the language-model file
 * (gguf_export.c), the projector file (gguf_mmproj.c) and the tokenizer keys (gguf_vocab.c). */
#ifndef MT_MODELS_GGUF_EXPORT_INT_H
#define MT_MODELS_GGUF_EXPORT_INT_H

#include "io/gguf.h"
#include "base/pool.h"
#include "io/safetensors.h"
#include "models/gguf_export.h"

/* What a matrix is to llama.cpp's type rules. */
typedef enum mt_gguf_role {
    MT_GGUF_ROLE_OTHER,
    MT_GGUF_ROLE_OUTPUT,   /* output.weight, or token_embd when the head is tied */
    MT_GGUF_ROLE_ATTN_V,   /* Q4_K_M gives some layers more bits */
    MT_GGUF_ROLE_FFN_DOWN, /* likewise */
    MT_GGUF_ROLE_KEEP_F32, /* position embeddings: never quantized */
} mt_gguf_role;

/* One tensor of the file: shape (mitten order) of type, its elements read from src in `count`-element runs, run i
 * starting at element offset + i * stride of src (a whole tensor: one run; a slice of rows or of a conv kernel's
 * temporal axis: several). */
typedef struct mt_gguf_item {
    char name[MT_GGUF_MAX_NAME];
    const mt_st_tensor *src;
    int ndim;
    int64_t shape[MT_GGUF_MAX_DIMS];
    size_t offset, stride, count;
    mt_dtype type;
    /* > 0: the rows (elements of a vector) are llama.cpp's q/k order for this many heads - each head's two rotate-half
     * halves interleaved, what its NORM rope pairs up (llama / internlm2) - taken from the checkpoint's order */
    int64_t perm_heads;
    /* set when written, for progress */
    const mt_gguf_export_opts *o;
    const char *file;
    size_t index, total;
    mt_pool *pool; /* converts a chunk of rows in parallel */
} mt_gguf_item;

typedef struct mt_gguf_plan {
    mt_gguf_item *items;
    size_t n, cap;
} mt_gguf_plan;

mt_status mt_gguf_plan_add(mt_gguf_plan *p, const char *name, const mt_st_tensor *src, int ndim, const int64_t *shape,
                           size_t offset, size_t stride, size_t count, mt_dtype type, mt_err *err);
void mt_gguf_plan_free(mt_gguf_plan *p);
/* The checkpoint tensor name, refusing dtypes other than f32, bf16 and f16. */
mt_status mt_gguf_checkpoint_tensor(const mt_model *m, const char *name, const mt_st_tensor **out, mt_err *err);
/* The type llama.cpp's quantizer gives a matrix of this role whose rows hold cols elements, in a file of file_type
 * (layer of n_layers for the per-layer rules). */
mt_dtype mt_gguf_matrix_type(mt_dtype file_type, mt_gguf_role role, int64_t layer, int64_t n_layers, int64_t cols);
/* src whole under the name gguf: 1-D tensors and KEEP_F32 in F32, matrices by mt_gguf_matrix_type. */
mt_status mt_gguf_plan_whole(mt_gguf_plan *p, const mt_model *m, const char *gguf, const char *src, mt_dtype file_type,
                             mt_gguf_role role, int64_t layer, int64_t n_layers, mt_err *err);
/* Adds every planned tensor (streamed at write time) and writes path. */
mt_status mt_gguf_write_plan(mt_gguf_writer *w, mt_gguf_plan *p, const char *path,
                             const mt_gguf_export_opts *o, mt_err *err);

/* Row r of a q or k projection of `heads` heads of rows/heads rows each, in llama.cpp's order, is the checkpoint's
 * row mt_gguf_unpermute_row(r): llama.cpp's NORM rope rotates adjacent pairs, Hugging Face's the two halves of a
 * head (convert_hf_to_gguf.py's LlamaModel.permute). */
int64_t mt_gguf_unpermute_row(int64_t r, int64_t rows, int64_t heads);

/* One module's names (without ".weight" / ".bias"): llama.cpp's and the checkpoint's (after the text prefix, the
 * "layers.N." or the vision prefix's "blocks.N."); optional ones exist in some families only (Qwen3's q/k norms).
 * Biases are always optional. gguf_names.c. */
typedef struct mt_gguf_name {
    const char *gguf, *hf;
    bool optional;
} mt_gguf_name;
extern const mt_gguf_name mt_gguf_text_layer[];
extern const size_t mt_gguf_n_text_layer;
extern const mt_gguf_name mt_gguf_internlm2_layer[];
extern const size_t mt_gguf_n_internlm2_layer;
/* Qwen2.5-VL's (gated SiLU MLP) or Qwen2-VL's vision block, the fused qkv aside (split in GGUF) */
const mt_gguf_name *mt_gguf_vision_block(bool qwen2_5, size_t *n);
/* the merger after the blocks (names after the vision prefix) */
extern const mt_gguf_name mt_gguf_merger[];
extern const size_t mt_gguf_n_merger;

/* Qwen3-VL's vision block, merger and DeepStack merger (mt_gguf_n_qwen3vl_merger entries each of the last two) */
extern const mt_gguf_name mt_gguf_qwen3vl_block[];
extern const size_t mt_gguf_n_qwen3vl_block;
extern const mt_gguf_name mt_gguf_qwen3vl_merger[], mt_gguf_qwen3vl_deepstack[];
extern const size_t mt_gguf_n_qwen3vl_merger;

/* InternVL's vision tower (names after the vision prefix) and mlp1 projector (after the projector prefix), in the
 * original layout (hf false) or transformers' */
typedef struct mt_gguf_internvit {
    const char *layers, *patch, *cls, *pos, *ls1, *ls2;
    const mt_gguf_name *block;
    size_t n_block;
    const mt_gguf_name *proj;
    size_t n_proj;
} mt_gguf_internvit;
const mt_gguf_internvit *mt_gguf_internvit_names(bool hf);

/* tokenizer.json's Split pattern of each tokenizer.ggml.pre name mitten writes and reads */
typedef struct mt_gguf_pre {
    const char *pattern, *name;
} mt_gguf_pre;
extern const mt_gguf_pre mt_gguf_pre_tokenizers[];
extern const size_t mt_gguf_n_pre_tokenizers;

/* general.architecture, type ("model" / "mmproj"), name (the folder's), file_type, quantization_version. */
mt_status mt_gguf_add_general(mt_gguf_writer *w, const mt_model *m, const char *arch, const char *type,
                              mt_dtype file_type, mt_err *err);
/* The tokenizer.* keys of the model's tokenizer.json or tokenizer.model and tokenizer_config.json (gguf_vocab.c):
 * tokens padded to vocab entries, types, merges or scores, special ids, chat templates; arch picks InternLM2's
 * converter rules. */
mt_status mt_gguf_add_vocab(mt_gguf_writer *w, const mt_model *m, const char *arch, int64_t vocab, mt_err *err);
/* The projector file (gguf_mmproj.c). */
mt_status mt_gguf_write_mmproj(const mt_model *m, const mt_gguf_export_opts *o, mt_err *err);

#endif
