/* models/gguf_export: a model as the GGUF files llama.cpp and Ollama load - the language model (llama-cli -m F.gguf)
 * and the vision part as the projector file its multimodal library (mtmd) reads (--mmproj P.gguf) - with tensor
 * names, metadata keys, tokenizer and chat template as llama.cpp's converter (convert_hf_to_gguf.py) writes them.
 *
 *     | family                    | text file arch | mmproj projector_type | tokenizer.ggml.pre |
 *     |---------------------------|----------------|-----------------------|--------------------|
 *     | Qwen2.5-VL                | qwen2vl        | qwen2.5vl_merger      | qwen2              |
 *     | Qwen2-VL                  | qwen2vl        | qwen2vl_merger        | qwen2              |
 *     | Qwen3-VL (dense)          | qwen3vl        | qwen3vl_merger        | qwen2              |
 *     | Qwen2 / Qwen2.5, Qwen3    | qwen2, qwen3   | (text only)           | qwen2              |
 *     | InternVL (both layouts)   | the LLM's      | internvl              | the tokenizer's    |
 *     | Llama                     | llama          | (text only)           | llama-bpe          |
 *     | InternLM2                 | internlm2      | (text only)           | (BPE only)         |
 *
 * Tensor types, as llama.cpp's quantizer picks them for the file type asked:
 *   - 1-D tensors (norms, biases), position embeddings and the patch embedding stay F32 (the patch embedding is F16
 *     in an F16 file), as the converter leaves them;
 *   - the output matrix (output.weight, or token_embd.weight when the head is tied) is Q6_K in Q4_0, Q4_K and Q6_K
 *     files; Q4_K means llama.cpp's Q4_K_M: attn_v and ffn_down of the layers its use_more_bits rule picks are Q6_K;
 *   - a matrix whose rows are not a whole number of the type's blocks falls back to Q8_0 (llama.cpp: Q6_K -> Q8_0
 *     as here, Q4_K -> Q5_0, which mitten does not write), then to F16 when 32 does not divide them either.
 * Shapes and bytes are the checkpoint's, row-major (GGUF's ne reversed); the Qwen families need no permutation, llama
 * and internlm2 have q and k permuted for llama.cpp's NORM rope (InternLM2's wqkv split into q, k and v first).
 */
#ifndef MT_MODELS_GGUF_EXPORT_H
#define MT_MODELS_GGUF_EXPORT_H

#include "models/model.h"

typedef struct mt_gguf_export_opts {
    mt_dtype type;          /* F32, F16, BF16, Q8_0, Q4_0, Q4_K (Q4_K_M) or Q6_K */
    const char *out;        /* the language model's file */
    const char *mmproj_out; /* the vision part's file, or NULL to write none */
    bool overwrite;         /* replace files that exist (else they are refused, untouched) */
    int threads;            /* for converting rows; 0: one per CPU */
    /* called before each tensor is written: which file, the tensor, its index and the count */
    void (*progress)(void *user, const char *file, const char *tensor, size_t i, size_t n);
    void *progress_user;
} mt_gguf_export_opts;

/* The file-type names mitten quantize takes ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_K", "q6_K"); false when
 * name is none of them. */
bool mt_gguf_export_type_parse(const char *name, mt_dtype *out);

/* Writes o->out (and o->mmproj_out for a model with vision). MT_ERR_UNSUPPORTED naming what is missing for a
 * family, tokenizer or rope llama.cpp's formats have no place for; MT_ERR_IO for files that exist. Nothing is
 * left at either path on failure. */
mt_status mt_model_export_gguf(const mt_model *m, const mt_gguf_export_opts *o, mt_err *err);

#endif
