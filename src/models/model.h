/* models/model: what every family provides, and the loaded-model object the engine drives.
 *
 * A family file (one per architecture family) fills an mt_family table: how to read its config.json, how to map
 * checkpoint tensors to modules, and four forward entry points. The engine never branches on the family.
 *
 * Shapes: L prompt tokens, T tokens in this step, H hidden size, V vocabulary, P patch width (3*2*14*14 for Qwen).
 */
#ifndef MT_MODEL_H
#define MT_MODEL_H

#include <cjson/cJSON.h>

#include "io/safetensors.h"
#include "media/image.h"
#include "nn/nn.h"
#include "tensor/tensor.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

#define MT_MAX_EOS 8

/* Intermediate tensors are handed to a dump hook under stable names (see tests/ref/README.md) so a debug run can
 * be compared with the PyTorch reference. fn is NULL when nobody listens. */
typedef struct mt_dump {
    void (*fn)(void *user, const char *name, const mt_tensor *t);
    void *user;
} mt_dump;

void mt_dump_tensor(const mt_dump *d, const mt_tensor *t, const char *fmt, ...) MT_PRINTF(3, 4);

/* KV cache of one sequence: per layer K and V rows [capacity, n_kv_heads * head_dim] f32. */
typedef struct mt_kv_cache {
    int n_layers;
    int64_t capacity, width;
    float **k, **v;
    int64_t n_past; /* rows filled */
} mt_kv_cache;

mt_status mt_kv_cache_init(mt_kv_cache *c, int n_layers, int64_t capacity, int64_t width, mt_err *err);
void mt_kv_cache_release(mt_kv_cache *c);

typedef struct mt_image_grid {
    int64_t t, h, w; /* in patches */
} mt_image_grid;

/* Which part of a multimodal model a weight belongs to (training freezes and schedules them separately). */
typedef enum mt_model_part { MT_PART_VISION, MT_PART_PROJECTOR, MT_PART_LANGUAGE } mt_model_part;

/* A module tensor that reads a checkpoint tensor, from row row0 on (fused qkv split into q, k, v; a tied LM head
 * reading the embedding). */
typedef struct mt_weight_use {
    mt_tensor *t;
    int64_t row0;
} mt_weight_use;

/* One checkpoint tensor the model uses, with every module tensor that reads it, so a trainer can swap in f32
 * master weights and gradient buffers without knowing the family's structures. */
typedef struct mt_weight {
    char *name;
    int64_t rows, cols;      /* as the model reads it: vectors have cols 1, a conv patch embedding is a matrix */
    mt_model_part part;
    mt_linear *linear; /* the linear layer whose weight this is (LoRA attaches there), or NULL */
    mt_weight_use *uses;
    size_t n_uses;
} mt_weight;

typedef struct mt_family {
    const char *name;
    const char *const *architectures; /* NULL-terminated config.json "architectures" names */
    mt_status (*load)(mt_model *m, const cJSON *config, const char *config_path, mt_err *err);
    void (*release)(mt_model *m);
    /* pixels [n_patches, P] of one image -> embeddings [n_patches / merge^2, H] */
    mt_tensor *(*encode_image)(const mt_model *m, mt_ctx *ctx, const float *pixels, int64_t n_patches,
                               mt_image_grid grid, const mt_dump *dump);
    /* Position ids [3][L] of a prompt and the offset that decoding adds to cache positions. */
    mt_status (*positions)(const mt_model *m, const int32_t *ids, int64_t L, const mt_image_grid *grids,
                           int n_images, int64_t *pos, int64_t *delta, mt_err *err);
    /* Language model on embeddings [T, H] at positions pos [3][T], appending to cache. Returns logits [T, V] of
     * every row (all_logits) or of the last row [1, V]. With cache NULL the rows attend only to each other (a
     * training or scoring pass; keys and values stay on the autograd tape). */
    mt_tensor *(*forward)(const mt_model *m, mt_ctx *ctx, mt_kv_cache *cache, const mt_tensor *embeds,
                          const int64_t *pos, bool all_logits, const mt_dump *dump);
    /* forward without the LM head: the final hidden states [T, H] after the last norm; and the LM head [V, H].
     * Training takes the logits of the supervised rows only. */
    mt_tensor *(*hidden)(const mt_model *m, mt_ctx *ctx, mt_kv_cache *cache, const mt_tensor *embeds,
                         const int64_t *pos, const mt_dump *dump);
    const mt_tensor *(*lm_head)(const mt_model *m);
    /* Token embeddings [n, H]. */
    mt_tensor *(*embed)(const mt_model *m, mt_ctx *ctx, const int32_t *ids, int64_t n);
    /* An RGB image as its processor makes it: *pixels [n_patches, P] (caller frees with mt_free) and its grid. */
    mt_status (*preprocess_image)(const mt_model *m, const mt_image *img, float **pixels, int64_t *n_patches,
                                  mt_image_grid *grid, mt_err *err);
    /* Jinja chat template for checkpoints that ship none (or NULL). */
    const char *default_chat_template;
    /* The part a checkpoint tensor name belongs to. */
    mt_model_part (*part_of)(const char *name);
    /* NULL-terminated pairs (checkpoint-name prefix, module-path prefix): how the module tree of current
     * transformers (and PEFT adapters made on it) names what older checkpoints call otherwise. NULL: the same. */
    const char *const *module_renames;
} mt_family;

/* What the engine needs to know of any model, filled by the family's load. */
typedef struct mt_model_desc {
    int64_t vocab_size, hidden_size, n_layers, kv_width, max_positions;
    int64_t image_token_id, vision_start_id, vision_end_id, video_token_id;
    int64_t merge_size, patch_dim; /* an image of n patches becomes n / merge_size^2 tokens */
    int64_t eos_ids[MT_MAX_EOS];
    size_t n_eos;
    int64_t bos_id;
    mt_dtype weight_dtype;
    size_t params_vision, params_projector, params_language;
} mt_model_desc;

struct mt_model {
    const mt_family *family;
    char *dir;
    mt_safetensors *st;
    mt_model_desc desc;
    void *impl;       /* the family's own structure */
    mt_tokenizer *tok; /* NULL when the folder has no tokenizer.json */
    mt_chat_template *chat_template; /* the folder's, else the family's default, else NULL */
    float **owned;    /* f32 copies of small weights (norms, biases) */
    size_t n_owned, cap_owned;
    mt_weight *weights; /* every checkpoint tensor the model reads, in load order */
    size_t n_weights, cap_weights;
};


/* The family table by architecture name, or NULL. */
const mt_family *mt_family_find(const char *architecture);

/* ---- weight table helpers for family loaders ---- */

/* A 2D weight [rows, cols] used in place. A tensor of more dims whose first dim is rows and whose other dims
 * multiply to cols is accepted too (a Conv3d patch embedding is a matrix). Errors name the tensor and shapes. */
mt_status mt_weight_matrix(mt_model *m, const char *name, int64_t rows, int64_t cols, mt_tensor *out, mt_err *err);
/* A 1D weight of n values, copied to f32 (norm weights, biases). optional: absent -> out->data = NULL, MT_OK. */
mt_status mt_weight_vector(mt_model *m, const char *name, int64_t n, bool optional, mt_tensor *out, mt_err *err);
/* Both register the weight in m->weights. A family declares further module tensors reading a registered one: */
/* view reads the weight registered for `of` from row row0 on (`of` itself or another view of it). */
mt_status mt_weight_alias(mt_model *m, const mt_tensor *of, mt_tensor *view, int64_t row0, mt_err *err);
/* The weight w (registered) is the weight of linear layer lin. */
void mt_weight_set_linear(mt_model *m, const mt_tensor *w, mt_linear *lin);
/* The registered weight a module tensor reads, or NULL; *row0 gets its first row. */
mt_weight *mt_weight_of(const mt_model *m, const mt_tensor *t, int64_t *row0);
/* The module a weight belongs to: its name without ".weight", with the family's module_renames applied when
 * renamed. false when name does not end in ".weight" or the result does not fit in cap. */
bool mt_weight_module(const mt_model *m, const char *name, bool renamed, char *out, size_t cap);
/* The module tensor that reads weight w whole (row 0 on, every row), or NULL. */
const mt_tensor *mt_weight_whole(const mt_weight *w);
/* Weight w as it is now (its whole module tensor, any dtype), as rows x cols f32 in out. */
mt_status mt_weight_read_f32(const mt_weight *w, float *out, mt_err *err);
/* The registered weight called name, or NULL. */
mt_weight *mt_weight_find(const mt_model *m, const char *name);
void mt_weights_release(mt_model *m);
/* Adds out as a use of the checkpoint tensor name (mt_weight_matrix and mt_weight_vector call it). */
mt_status mt_weight_register(mt_model *m, const char *name, mt_tensor *out, mt_err *err);

#endif
