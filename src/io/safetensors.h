/* io/safetensors: read (mmap, zero-copy) and write Hugging Face safetensors checkpoints, single-file or sharded.
 *
 * Usage:
 *     mt_safetensors *st;  mt_err err;
 *     if (mt_safetensors_open_dir("Qwen2.5-VL-3B-Instruct", &st, &err)) { puts(err.msg); return; }
 *     const mt_st_tensor *t = mt_safetensors_find(st, "model.embed_tokens.weight");   (V, C) bf16
 *     ... t->data points into the mapped file; valid until mt_safetensors_close(st) ...
 *
 * Format (reference: huggingface/safetensors, docs "Format" and safetensors/src/tensor.rs):
 *
 *     | bytes        | content                                                                       |
 *     | ------------ | ----------------------------------------------------------------------------- |
 *     | 0 .. 8       | N, u64 little-endian: the header length                                       |
 *     | 8 .. 8+N     | UTF-8 JSON object, right-padded with spaces:                                  |
 *     |              |   "__metadata__": {"format": "pt", ...}          (optional, string -> string) |
 *     |              |   "<name>": {"dtype": "BF16", "shape": [V, C], "data_offsets": [begin, end]} |
 *     | 8+N .. EOF   | data area; each tensor's bytes are [begin, end) relative to 8+N, row-major    |
 *
 * Sharded checkpoints add model.safetensors.index.json: {"metadata": {"total_size": ...},
 * "weight_map": {"<name>": "model-00001-of-00002.safetensors", ...}}.
 *
 * What the reader checks (each failure names the file and the tensor): header length over 100 MiB (MT_ERR_LIMIT)
 * or past the end of the file; invalid JSON or trailing bytes after it (base/json names the line:column); a header that is not an object; each
 * tensor entry's dtype (a string), shape (at most 8 integers in [0, 2^53]) and data_offsets (exactly two integers
 * in [0, 2^53], begin <= end <= data area size); end - begin equal to the element size times the product of the
 * dims (overflow-checked); no two tensors' byte ranges overlapping; no name twice, within a file or across shards;
 * __metadata__ values strings. Gaps between tensors and bytes after the last one are allowed.
 *
 * dtypes: F32, BF16, F16, I32, I64, U8 map to mt_dtype. The other dtypes of the format (BOOL, I8, I16, U16, U32,
 * U64, F64, C64, F8_E4M3, F8_E5M2, F8_E8M0, F4, F6_E2M3, F6_E3M2) are validated like the rest and kept with
 * dtype = MT_ST_UNSUPPORTED and st_dtype naming them, so a checkpoint that carries, say, an F64 buffer mitten never
 * uses still opens; mt_safetensors_get on such a tensor gives MT_ERR_UNSUPPORTED. A dtype string outside the format
 * is MT_ERR_UNSUPPORTED at open.
 *
 * Alignment: data of a supported dtype is always aligned to its element size. Files from the Rust/Python writers
 * (and from mt_safetensors_write) are: the header is padded so the data area starts at a multiple of 8 and tensors
 * are laid out largest element first. A tensor that is not aligned anyway is copied once at open into an owned
 * 64-byte-aligned buffer, so kernels may load it as its element type; only that tensor costs memory.
 */
#ifndef MT_SAFETENSORS_H
#define MT_SAFETENSORS_H

#include "base/base.h"
#include "base/file.h"
#include "tensor/dtype.h"

#define MT_ST_MAX_DIMS 8
#define MT_ST_MAX_HEADER ((size_t)100 << 20)
#define MT_ST_MAX_SHARDS 10000
/* dtype of a tensor whose safetensors dtype mitten does not compute with (see st_dtype). */
#define MT_ST_UNSUPPORTED MT_DTYPE_COUNT

typedef struct mt_st_tensor {
    const char *name;
    mt_dtype dtype; /* MT_ST_UNSUPPORTED for the dtypes listed above */
    int ndim;
    int64_t shape[MT_ST_MAX_DIMS];
    const void *data; /* row-major bytes; aligned to the element size for supported dtypes */
    size_t nbytes;
    const char *file;     /* the file it lives in (reader); ignored by the writer */
    const char *st_dtype; /* the header's dtype string, e.g. "F64" (reader); ignored by the writer */
} mt_st_tensor;

typedef struct mt_safetensors mt_safetensors;

/* Maps and validates one .safetensors file. Errors: MT_ERR_IO (open/map), MT_ERR_FORMAT, MT_ERR_LIMIT,
 * MT_ERR_UNSUPPORTED (unknown dtype string), MT_ERR_NOMEM. On success the caller closes *out. */
mt_status mt_safetensors_open_file(const char *path, mt_safetensors **out, mt_err *err);

/* Opens a model directory: model.safetensors if present (as transformers prefers it), else
 * model.safetensors.index.json and every shard it names. Shard names must be plain file names (no '/', not "." or
 * ".."); every tensor in weight_map must be in the shard named for it. MT_ERR_IO when neither file exists. */
mt_status mt_safetensors_open_dir(const char *model_dir, mt_safetensors **out, mt_err *err);

/* Parses a safetensors image already in memory (the fuzz target and tests use it). buf is borrowed: it must
 * outlive the handle. name is used in messages and as each tensor's file. */
mt_status mt_safetensors_open_buffer(const void *buf, size_t size, const char *name, mt_safetensors **out,
                                     mt_err *err);

/* NULL if absent. Binary search over the names: O(log n). */
const mt_st_tensor *mt_safetensors_find(const mt_safetensors *st, const char *name);

/* Like find, for a tensor the model needs: MT_ERR_FORMAT naming the checkpoint when absent, MT_ERR_UNSUPPORTED
 * naming the file, tensor and dtype when its dtype is not one mitten computes with. */
mt_status mt_safetensors_get(const mt_safetensors *st, const char *name, const mt_st_tensor **out, mt_err *err);

/* Tensors in file order (shards sorted by file name), then by data offset within a file. */
size_t mt_safetensors_count(const mt_safetensors *st);
const mt_st_tensor *mt_safetensors_at(const mt_safetensors *st, size_t i);

/* Sum of nbytes over all tensors. */
size_t mt_safetensors_total_bytes(const mt_safetensors *st);

/* A __metadata__ value (first file that has key, in file order), or NULL. */
const char *mt_safetensors_meta(const mt_safetensors *st, const char *key);

void mt_safetensors_close(mt_safetensors *st);

/* The file mapping that holds [p, p + n) wholly, or NULL (an aligned copy, a borrowed buffer, the memory of
 * mt_safetensors_from_tensors). */
const mt_mapping *mt_safetensors_mapping_of(const mt_safetensors *st, const void *p, size_t n);

/* A checkpoint of tensors held elsewhere (a GGUF file read under the names a model loads): names are copied, the
 * bytes borrowed; release(owner) runs at close (on failure too). Duplicate names are MT_ERR_FORMAT. */
mt_status mt_safetensors_from_tensors(const char *where, const mt_st_tensor *tensors, size_t n, void *owner,
                                      void (*release)(void *owner), mt_safetensors **out, mt_err *err);

/* Writes tensors (name, dtype, ndim, shape, data, nbytes are read; nbytes must equal the element size times the
 * product of the dims) to path atomically, streaming each tensor's bytes, so memory use does not grow with the
 * checkpoint. Like the Rust writer, tensors are laid out by element size (largest first) then by name, and the
 * header is padded with spaces to a multiple of 8, so every tensor is aligned in the file. meta_kv is NULL or a
 * NULL-terminated list key, value, key, value, ... written as __metadata__. Errors: MT_ERR_INVALID_ARG (bad tensor,
 * duplicate name, name "__metadata__"), MT_ERR_IO, MT_ERR_NOMEM; path is untouched on error. */
mt_status mt_safetensors_write(const char *path, const mt_st_tensor *tensors, size_t n, const char *const *meta_kv,
                               mt_err *err);

/* Writes tensors into model_dir the way transformers' save_pretrained does: tensors go, in the given order, into
 * shards of at most max_shard_bytes of data (a bigger tensor gets a shard of its own). One shard is written as
 * model.safetensors; several as model-0000i-of-0000n.safetensors plus model.safetensors.index.json with
 * metadata.total_size and a name-sorted weight_map. Each file is written atomically; the index goes last. */
mt_status mt_safetensors_write_sharded(const char *model_dir, const mt_st_tensor *tensors, size_t n,
                                       size_t max_shard_bytes, const char *const *meta_kv, mt_err *err);

#endif
