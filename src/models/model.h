/* models/model: a loaded model as a composition of parts, and what the engine and trainer drive it with.
 *
 * A model is one entry of the composition table (models/compositions.c), chosen by config.json's "architectures":
 *
 *     | part       | what it does                                                        | files                     |
 *     |------------|---------------------------------------------------------------------|---------------------------|
 *     | decoder    | token embeddings + injections -> hidden states -> logits, over a    | models/decoder.c          |
 *     |            | batch of rows from many sequences and the engine's KV memory        |                           |
 *     | vision     | one image's pixels -> its feature rows (+ DeepStack features)       | models/FAMILY_vision.c    |
 *     | processor  | image -> pixels; placeholder -> token ids; positions; injections   | models/FAMILY_processor.c |
 *
 * Parts never branch on other families and never touch KV memory. The engine and trainer see only mt_model,
 * mt_model_desc and the functions of models/assemble.h.
 *
 * Shapes: L prompt tokens, T rows of a batch, H text hidden, V vocabulary.
 */
#ifndef MT_MODEL_H
#define MT_MODEL_H

#include <cjson/cJSON.h>

#include "base/hashmap.h"
#include "models/gguf_source.h"
#include "io/safetensors.h"
#include "media/image.h"
#include "nn/attention.h"
#include "nn/kv.h"
#include "tensor/tensor.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

#define MT_MAX_EOS 8
#define MT_POS_AXES 3     /* at most: M-RoPE's (t, h, w) */
#define MT_MAX_DEEPSTACK 8

/* Intermediate tensors are handed to a dump hook under stable names (see tests/ref/README.md) so a debug run can
 * be compared with the PyTorch reference. fn is NULL when nobody listens. */
typedef struct mt_dump {
    void (*fn)(void *user, const char *name, const mt_tensor *t);
    void *user;
} mt_dump;

void mt_dump_tensor(const mt_dump *d, const mt_tensor *t, const char *fmt, ...) MT_PRINTF(3, 4);

/* An image's patch grid as its processor made it (t frames, h x w patches). */
typedef struct mt_image_grid {
    int64_t t, h, w;
} mt_image_grid;

/* An image or a video already turned into model input by the processor: pixels [n_patches, patch_dim] and its grid.
 * A video is frames grouped in time (grid.t groups of temporal_patch_size frames); its placeholder is
 * desc.video_token_id, and its time axis in M-RoPE is scaled by seconds_per_grid (transformers'
 * second_per_grid_ts). Prompts take their images and videos in one array, in the order of their placeholders. */
typedef struct mt_image_input {
    const float *pixels;
    int64_t n_patches;
    mt_image_grid grid;
    int64_t patch_dim; /* values per patch, as the processor made them (0 where a caller did not record it) */
    bool video;
    double seconds_per_grid; /* a video's seconds per temporal grid step (finite, >= 0); unused for images */
    /* Qwen3-VL writes each temporal group's time as text ("<1.2 seconds>"): grid.t seconds, each the mean of the
     * group's first and last frame times as its processor computes them, read only while the placeholder is
     * expanded; NULL: frames evenly spaced from 0 s at seconds_per_grid per group. */
    const double *timestamps;
    /* Else, for a video sampled by mitten: frame k of the n sampled is source frame mt_qwen_video_frame_index(k, n,
     * total), shown at its index / fps; the group times follow from these, held by value so that the input may
     * outlive its pixels (the scheduler and the trainer free them and expand placeholders later). n = 0: unknown. */
    struct {
        int64_t total, n;
        double fps;
    } sampled;
} mt_image_input;

/* Which part of a multimodal model a weight belongs to (training freezes and schedules them separately). */
typedef enum mt_model_part { MT_PART_VISION, MT_PART_PROJECTOR, MT_PART_LANGUAGE } mt_model_part;

/* A module tensor that reads a checkpoint tensor, from row row0 on (fused qkv split into q, k, v; a tied LM head
 * reading the embedding). */
typedef struct mt_weight_use {
    mt_tensor *t;
    int64_t row0;
} mt_weight_use;

/* Whether training may change a weight. */
typedef enum mt_weight_training {
    MT_WEIGHT_TRAINABLE, /* with its part */
    MT_WEIGHT_OPT_IN,    /* only when asked by name of its role (MoE routers: --train-router) */
    MT_WEIGHT_FROZEN,    /* read through transposed views (fused expert stacks): never trained, saved as read */
} mt_weight_training;

/* One checkpoint tensor the model uses, with every module tensor that reads it, so a trainer can swap in f32
 * master weights and gradient buffers without knowing the parts' structures. */
typedef struct mt_weight {
    char *name;
    int64_t rows, cols; /* as the model reads it: vectors have cols 1, a conv patch embedding is a matrix */
    mt_model_part part;
    mt_weight_training training;
    mt_linear *linear; /* the linear layer whose weight this is (LoRA attaches there), or NULL */
    mt_weight_use *uses;
    size_t n_uses;
} mt_weight;

/* Features added to the hidden states after a decoder layer (Qwen3-VL's DeepStack): x[rows[i]] += feat[i]. */
typedef struct mt_injection {
    int64_t layer;
    const int64_t *rows; /* [n] batch rows */
    mt_tensor *feat;     /* [n, H] */
} mt_injection;

/* One forward call: rows from one or more sequences (llama.cpp's llama_batch). */
typedef struct mt_batch {
    int64_t n;               /* T rows */
    const mt_tensor *embeds; /* [T, H] input embeddings (tokens already embedded, image features scattered in) */
    const int64_t *pos;      /* [axes][T] positions, row stride T (axes: mt_model_desc.pos_axes) */
    const int32_t *seq;      /* [T] sequence id of each row in the KV memory, or NULL: all rows are sequence 0 */
    const mt_injection *inject;
    int n_inject;
} mt_batch;

/* The text decoder part (models/decoder.h). */
typedef struct mt_decoder mt_decoder;

/* A vision tower with its projector (models/FAMILY_vision.c). */
typedef struct mt_vision_part {
    const char *name;
    /* Reads config's vision part, loads its weights under prefix; *impl is its state. */
    mt_status (*load)(mt_model *m, const cJSON *config, const char *path, const char *prefix, void **impl,
                      mt_err *err);
    void (*release)(void *impl);
    /* One image -> its feature rows [n, H], and, for towers with DeepStack, deepstack[j] [n, H] for j < *n_deep. */
    mt_tensor *(*encode)(const mt_model *m, const void *impl, mt_ctx *ctx, const mt_image_input *img,
                         mt_tensor **deepstack, int *n_deep, const mt_dump *dump);
    /* How many DeepStack levels encode gives (NULL: none). */
    int (*deepstack_levels)(const void *impl);
    /* Whether a checkpoint tensor (name after the prefix) is the projector's rather than the tower's (NULL: none
     * is; a projector outside the vision prefix is found by the composition's projector_prefixes). */
    bool (*is_projector)(const char *name);
    /* For towers that take whole tiles (InternViT): the input an array pixel_values [tiles, C, S, S] is, as the
     * processor makes it (NULL: the tower takes patch rows, whose grid only the processor knows). */
    mt_status (*tiles_input)(const void *impl, const int64_t shape[4], const float *pixels, mt_image_input *out,
                             mt_err *err);
} mt_vision_part;

/* A multimodal processor (models/FAMILY_processor.c). */
typedef struct mt_processor_part {
    const char *name;
    mt_status (*load)(mt_model *m, const cJSON *config, const char *path, void **impl, mt_err *err);
    void (*release)(void *impl);
    /* An RGB image as the model takes it: *pixels [n_patches, patch_dim] (caller frees with mt_free) and its grid. */
    mt_status (*preprocess)(const void *impl, const mt_image *img, float **pixels, int64_t *n_patches,
                            mt_image_grid *grid, int64_t *patch_dim, mt_err *err);
    /* Checks a grid and gives the token ids that replace one image placeholder: *n ids into out (cap of them);
     * the feature rows are those holding desc.image_token_id. *n > cap: call again with more room. */
    mt_status (*image_tokens)(const void *impl, mt_image_grid grid, int32_t *out, int64_t cap, int64_t *n,
                              mt_err *err);
    /* Positions [axes][L] of an expanded prompt that starts at position `start`; *next: the first free position. */
    mt_status (*positions)(const mt_model *m, const void *impl, const int32_t *ids, int64_t L,
                           const mt_image_input *images, int n_images, int64_t start, int64_t *pos, int64_t *next,
                           mt_err *err);
    /* The shape transformers' processor gives the same pixels (InternVL: [tiles, 3, S, S]) into shape, returning
     * its rank; NULL: [n_patches, patch_dim]. */
    int (*pixel_shape)(const void *impl, const mt_image_input *img, int64_t shape[4]);
    /* As image_tokens, for one video's placeholder (its rows hold desc.video_row_id); NULL: no videos. An
     * expansion holding desc.vision_start_id writes its own frame edges: it replaces the placeholder together with
     * the vision_start before it and the vision_end after it, where the prompt has them. */
    mt_status (*video_tokens)(const void *impl, const mt_image_input *video, int32_t *out, int64_t cap, int64_t *n,
                              mt_err *err);
    /* A video file FFmpeg reads, or a folder of its frames, sampled as vp says: *pixels (caller frees with mt_free)
     * backs out, whose video, grid, patch_dim and seconds_per_grid it fills. NULL: the family takes no videos. */
    mt_status (*preprocess_video)(const void *impl, const char *path, const mt_video_params *vp, float **pixels,
                                  mt_image_input *out, mt_err *err);
    /* What preprocess_video fills but the pixels (out->pixels NULL), with no frame decoded: what a video's tokens
     * will be, for the trainer, which learns every sample's before it decodes any. NULL: preprocess_video runs and
     * its pixels are dropped. */
    mt_status (*plan_video)(const void *impl, const char *path, const mt_video_params *vp, mt_image_input *out,
                            mt_err *err);
} mt_processor_part;

/* One architecture: which parts, where their tensors live, and what the checkpoint declares unused. */
typedef struct mt_composition {
    const char *name;
    const char *const *architectures; /* NULL-terminated config.json "architectures" names */
    const char *decoder_kind;         /* the decoder variant (models/decoder_config.c); with decoder_kinds, the one
                                         taken when the text config does not say (NULL: it must say) */
    /* A decoder chosen by the text config (InternVL pairs its tower with several LLMs): the text section's field
     * decoder_kind_key ("architectures": its first name; "model_type") looked up in NULL-terminated pairs (value,
     * kind). NULL: always decoder_kind. */
    const char *decoder_kind_key;
    const char *const *decoder_kinds;
    const mt_vision_part *vision;     /* NULL: text only */
    const mt_processor_part *processor;
    const char *text_config_key;      /* nested text config ("text_config"), or NULL: the config itself */
    /* NULL-terminated candidate prefixes; the first under which "embed_tokens.weight" exists is used */
    const char *const *text_prefixes;
    const char *const *vision_prefixes;
    /* NULL-terminated candidate prefixes of a projector kept outside the vision prefix (InternVL's mlp1), or NULL;
     * the first under which any tensor exists is m->projector_prefix */
    const char *const *projector_prefixes;
    const char *lm_head;               /* the LM head's tensor name (NULL: "lm_head.weight") */
    bool untied_head;                  /* the head is never tied to the embedding, whatever the config says */
    /* The image placeholder's text, looked up in tokenizer.json when config.json has no image_token_id (or NULL) */
    const char *image_token_text;
    /* The text that stands for an image in a text-only chat template (InternVL's original repos: "<image>"), made
     * the image_token_text after rendering (mt_chat_template_set_image_text), or NULL: the template writes the
     * image token itself from image parts */
    const char *image_text;
    const char *default_chat_template; /* for folders that ship none, or NULL */
    /* mitten train without --train trains the projector beside the language model (full or LoRA), the vision tower
     * frozen: the family's own fine-tuning recipe (InternVL). false: the language model only. */
    bool trains_projector_by_default;
    /* NULL-terminated pairs (checkpoint-name prefix, module-path prefix): how the module tree of current
     * transformers (and PEFT adapters made on it) names what older checkpoints call otherwise. */
    const char *const *module_renames;
    /* NULL-terminated name suffixes of checkpoint tensors the model does not read on purpose */
    const char *const *ignored_suffixes;
} mt_composition;

/* What the engine needs to know of any model. */
typedef struct mt_model_desc {
    int64_t vocab_size, hidden_size, n_layers, max_positions;
    int64_t k_width, v_width; /* KV memory row widths */
    int pos_axes;             /* positions per row: 1, or 3 for M-RoPE */
    int64_t image_token_id, vision_start_id, vision_end_id, video_token_id; /* -1 when absent */
    /* The id a video's feature rows hold once its placeholder is expanded: video_token_id, or image_token_id where
     * frames are image tiles (InternVL). A video_token_id equal to image_token_id is a placeholder of either kind:
     * the input it stands for tells which. */
    int64_t video_row_id;
    int64_t eos_ids[MT_MAX_EOS];
    size_t n_eos;
    int64_t bos_id;
    mt_dtype weight_dtype;
    double attention_dropout; /* config.json's; the forward never drops, so training refuses a nonzero one */
    size_t params_vision, params_projector, params_language;
    mt_sampling sampling; /* generation_config.json's sampling defaults (mt_model_gen_params) */
} mt_model_desc;

struct mt_model {
    const mt_composition *comp;
    const char *decoder_kind; /* the composition's, or the one its text config picked */
    char lm_head_name[256];   /* the LM head's tensor name for this decoder kind */
    char *dir;    /* the checkpoint folder the parts read (a GGUF file's: its private metadata folder) */
    char *source; /* what the user named: the folder, or the .gguf file (for reports) */
    mt_model_params params; /* as opened: parts read what concerns them (the processor, max_pixels) */
    mt_safetensors *st;
    mt_gguf_source *gguf; /* a GGUF file opened as a checkpoint folder (dir is then its metadata folder), or NULL */
    mt_model_desc desc;
    mt_decoder *decoder;
    void *vision;    /* the vision part's state, or NULL */
    void *processor; /* the processor's state, or NULL */
    const char *text_prefix; /* where the decoder's tensors are (one of comp->text_prefixes) */
    const char *vision_prefix;
    const char *projector_prefix; /* a projector outside the vision prefix, or NULL */
    mt_tokenizer *tok;               /* NULL when the folder has no tokenizer.json */
    mt_chat_template *chat_template; /* the folder's, else the composition's default, else NULL */
    void **owned;                    /* f32 copies of small weights (norms, biases) */
    size_t n_owned, cap_owned;
    void *pages; /* mt_malloc_pages: the weights mt_weights_place moved out of the file mappings, or repacked */
    size_t pages_bytes;
    mt_weight *weights; /* every checkpoint tensor the model reads, in load order */
    size_t n_weights, cap_weights;
    mt_hashmap weight_by_name, weight_by_tensor; /* -> index into weights; by_tensor: index << 20 | use */
};

/* MT_ERR_INVALID_ARG naming max_position_embeddings when n_ctx is over it (sessions and the scheduler check it). */
mt_status mt_model_check_context(const mt_model *m, int64_t n_ctx, mt_err *err);
/* Whether token is one of the model's end-of-turn ids (generation_config.json's eos_token_id). */
bool mt_model_is_eos(const mt_model *m, int32_t token);

/* The composition by architecture name, or NULL. */
const mt_composition *mt_composition_find(const char *architecture);

/* ---- weight table helpers for part loaders ---- */

/* A 2D weight [rows, cols] used in place. A tensor of more dims whose first dim is rows and whose other dims
 * multiply to cols is accepted too (a Conv3d patch embedding is a matrix). Errors name the tensor and shapes. */
mt_status mt_weight_matrix(mt_model *m, const char *name, int64_t rows, int64_t cols, mt_tensor *out, mt_err *err);
/* A stacked 3D weight [n, rows, cols] (fused MoE experts), registered as read and MT_WEIGHT_FROZEN; out views it as
 * [n * rows, cols] in place. As with every registered tensor, out must live as long as the model (the weight table
 * keeps its address). */
mt_status mt_weight_stack(mt_model *m, const char *name, int64_t n, int64_t rows, int64_t cols, mt_tensor *out,
                          mt_err *err);
/* A 1D weight of n values, copied to f32 (norm weights, biases). optional: absent -> out->data = NULL, MT_OK. */
mt_status mt_weight_vector(mt_model *m, const char *name, int64_t n, bool optional, mt_tensor *out, mt_err *err);
/* view reads the weight registered for `of` from row row0 on (`of` itself or another view of it). */
mt_status mt_weight_alias(mt_model *m, const mt_tensor *of, mt_tensor *view, int64_t row0, mt_err *err);
/* The registered weight w is the weight of linear layer lin. */
void mt_weight_set_linear(mt_model *m, const mt_tensor *w, mt_linear *lin);
/* The registered weight a module tensor reads, or NULL; *row0 gets its first row. */
mt_weight *mt_weight_of(const mt_model *m, const mt_tensor *t, int64_t *row0);
/* The module a weight belongs to: its name without ".weight", with the composition's module_renames applied when
 * renamed. false when name does not end in ".weight" or the result does not fit in cap. */
bool mt_weight_module(const mt_model *m, const char *name, bool renamed, char *out, size_t cap);
/* The module tensor that reads weight w whole (row 0 on, every row), or NULL. */
const mt_tensor *mt_weight_whole(const mt_weight *w);
/* Weight w as it is now (its whole module tensor, any dtype), as rows x cols f32 in out. */
mt_status mt_weight_read_f32(const mt_weight *w, float *out, mt_err *err);
/* The flat index (row-major, rows x cols) of the first NaN or Inf in weight w as it is now, with that value in
 * *value; -1 when every value is finite, or no module tensor in host memory covers w whole. */
int64_t mt_weight_first_nonfinite(const mt_weight *w, float *value);
/* The registered weight called name, or NULL. */
mt_weight *mt_weight_find(const mt_model *m, const char *name);
void mt_weights_release(mt_model *m);
/* Moves the weights into the model's pages (m->pages): every Q4_K weight read as one whole linear layer (no embedding
 * table, tied head or row views), with rows in groups of 8, as Q4_K_R8 (tensor/quant.h); every such Q8_0 weight of 8
 * rows or more as Q8_0_R8; every other weight in a file mapping as a copy, unless m->params.mmap. Module tensors then
 * read there and the mapped pages are dropped. MT_ERR_NOMEM saying how much was needed. */
mt_status mt_weights_place(mt_model *m, mt_err *err);
/* Adds out as a use of the checkpoint tensor name (mt_weight_matrix and mt_weight_vector call it). */
mt_status mt_weight_register(mt_model *m, const char *name, mt_tensor *out, mt_err *err);
/* The part a checkpoint tensor name belongs to. */
mt_model_part mt_model_part_of(const mt_model *m, const char *name);

/* Loader conveniences: each does nothing once *st is set, so a part's weight table reads as a list. */
typedef struct mt_loader {
    mt_model *m;
    mt_err *err;
    mt_status st;
} mt_loader;
void mt_load_matrix(mt_loader *l, mt_tensor *out, int64_t rows, int64_t cols, const char *fmt, ...) MT_PRINTF(5, 6);
void mt_load_vector(mt_loader *l, mt_tensor *out, int64_t n, bool optional, const char *fmt, ...) MT_PRINTF(5, 6);
/* prefix "weight" and, with bias (or optional_bias, when present), prefix "bias" */
void mt_load_linear(mt_loader *l, mt_linear *lin, int64_t out, int64_t in, bool bias, const char *fmt, ...)
    MT_PRINTF(6, 7);
/* RMSNorm (weight) or LayerNorm (weight, bias) */
void mt_load_norm(mt_loader *l, mt_norm *n, int64_t width, bool layer_norm, float eps, const char *fmt, ...)
    MT_PRINTF(6, 7);
/* dst reads rows [r0, r0 + n) of src, registered so training finds both */
void mt_load_split(mt_loader *l, const mt_linear *src, mt_linear *dst, int64_t r0, int64_t n);

#endif
