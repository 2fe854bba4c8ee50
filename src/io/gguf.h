/* io/gguf: read (mmap, zero-copy) and write GGUF files, the model format of llama.cpp and Ollama.
 *
 * Usage:
 *     mt_gguf *g;  mt_err err;
 *     if (mt_gguf_open_file("model.gguf", &g, &err)) { puts(err.msg); return; }
 *     uint32_t n_layer;
 *     if (mt_gguf_get_u32(g, "qwen2.block_count", &n_layer, &err)) ...     wrong type: the message names both
 *     const mt_gguf_tensor *t = mt_gguf_find_tensor(g, "token_embd.weight");  shape (V, C), t->data in the map
 *     mt_gguf_close(g);
 *
 * Format (reference: ggml-org/ggml docs/gguf.md; all numbers little-endian; str = u64 length + bytes, no NUL):
 *
 *     | field            | type                  | content                                                  |
 *     | ---------------- | --------------------- | -------------------------------------------------------- |
 *     | magic            | 4 bytes               | "GGUF"                                                   |
 *     | version          | u32                   | 3 (2 is read too: the same layout, little-endian only)   |
 *     | n_tensors, n_kv  | u64, u64              |                                                          |
 *     | kv[n_kv]         | str key, u32 type,    | type 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32,      |
 *     |                  | value                 | 7 bool (one byte, 0 or 1), 8 str, 9 array, 10 u64,       |
 *     |                  |                       | 11 i64, 12 f64; array = u32 elem type, u64 n, n values   |
 *     | tensor[n_tensors]| str name, u32 n_dims, | dims are ne[0..n_dims): ne[0] is the contiguous one;     |
 *     |                  | u64 ne[n_dims], u32   | type is a ggml type id; offset is from the data section  |
 *     |                  | type, u64 offset      | and a multiple of the alignment                          |
 *     | padding          | zeros                 | to a multiple of general.alignment (u32, default 32)     |
 *     | data section     | bytes                 | each tensor: rows of ne[0] elements, as blocks for the   |
 *     |                  |                       | quantized types (tensor/quant.h), padded to alignment    |
 *
 * Shape order: mitten's shapes are row-major with the contiguous dimension last, as in safetensors and PyTorch, so
 * mt_gguf_tensor.shape is ne reversed: a GGUF matrix with ne = {C, V} is shape (V, C) here; the writer reverses back.
 *
 * What the reader refuses (MT_ERR_FORMAT unless noted; each message names the file, and the key or tensor):
 * a file shorter than its header or any field; another magic; versions other than 2 and 3, and big-endian files
 * (MT_ERR_UNSUPPORTED); counts of keys or tensors that cannot fit in the bytes left; strings past the end; keys over
 * 65535 bytes and tensor names over 64 bytes (the spec's limits); a NUL byte inside a key or name; unknown value
 * types; nested arrays (MT_ERR_UNSUPPORTED); a bool other than 0 or 1; a key or tensor name twice;
 * general.alignment not a u32 power of two; more than 4 or no dims; a dim of 0 or over 2^63-1; element or byte
 * counts that overflow; unknown or removed ggml type ids (MT_ERR_UNSUPPORTED, naming the id and the tensor); a row
 * (ne[0]) that is not a whole number of blocks; offsets not a multiple of the alignment; bytes past the end of the
 * data section; two tensors whose bytes overlap. Gaps between tensors are allowed.
 *
 * Types: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, I32 and I64 map to mt_dtype. The other ggml types a GGUF may hold
 * (Q4_1, Q5_K, IQ..., I8, I16, F64, ...) are validated with their block sizes and kept with dtype =
 * MT_GGUF_UNSUPPORTED, so a file that has them still opens; mt_gguf_get_tensor gives MT_ERR_UNSUPPORTED for them.
 * Tensor data is aligned to its element (2 bytes for the block types); a tensor that is not, in a file whose
 * alignment is below 8 or a buffer that is misaligned, is copied once at open into an owned aligned buffer
 * (unsupported tensors excepted: their data pointer always points into the file).
 */
#ifndef MT_GGUF_H
#define MT_GGUF_H

#include "base/base.h"
#include "base/file.h"
#include "tensor/dtype.h"

#define MT_GGUF_MAX_DIMS 4
#define MT_GGUF_DEFAULT_ALIGNMENT 32
#define MT_GGUF_MAX_KEY 65535
/* The spec allows 64 bytes; llama.cpp reads at most 63 (its names end in a NUL), so the writer keeps to that. */
#define MT_GGUF_MAX_NAME 64
#define MT_GGUF_MAX_NAME_WRITE 63
/* dtype of a tensor whose ggml type mitten does not compute with (see ggml_type). */
#define MT_GGUF_UNSUPPORTED MT_DTYPE_COUNT

typedef enum mt_gguf_type {
    MT_GGUF_U8 = 0,
    MT_GGUF_I8 = 1,
    MT_GGUF_U16 = 2,
    MT_GGUF_I16 = 3,
    MT_GGUF_U32 = 4,
    MT_GGUF_I32 = 5,
    MT_GGUF_F32 = 6,
    MT_GGUF_BOOL = 7,
    MT_GGUF_STR = 8,
    MT_GGUF_ARRAY = 9,
    MT_GGUF_U64 = 10,
    MT_GGUF_I64 = 11,
    MT_GGUF_F64 = 12,
    MT_GGUF_TYPE_COUNT
} mt_gguf_type;

/* "u32", "str", "array"...; "?" outside the enum. */
const char *mt_gguf_type_name(mt_gguf_type t);

/* A string value: s is NUL-terminated and owned by the handle; len counts its bytes (a value may hold NULs). */
typedef struct mt_gguf_str {
    const char *s;
    uint64_t len;
} mt_gguf_str;

typedef struct mt_gguf_kv {
    const char *key;
    mt_gguf_type type;
    mt_gguf_type elem; /* arrays: the element type (never MT_GGUF_ARRAY) */
    uint64_t n;        /* arrays: the element count */
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f32;
        double f64;
        bool b;
        mt_gguf_str str;
    } v; /* scalars and strings */
    /* arrays: n values of the C type of elem, aligned (bool as bool), or n mt_gguf_str for strings; NULL when n is 0 */
    const void *arr;
} mt_gguf_kv;

typedef struct mt_gguf_tensor {
    const char *name;
    mt_dtype dtype;     /* MT_GGUF_UNSUPPORTED for the types listed above */
    uint32_t ggml_type; /* the file's type id */
    int ndim;
    int64_t shape[MT_GGUF_MAX_DIMS]; /* mitten order: shape[ndim - 1] is GGUF's ne[0], the contiguous one */
    const void *data;
    size_t nbytes;
    uint64_t offset; /* in the data section, as the file gives it */
} mt_gguf_tensor;

typedef struct mt_gguf mt_gguf;

/* Maps and validates a .gguf file. Errors: MT_ERR_IO (open/map), MT_ERR_FORMAT, MT_ERR_UNSUPPORTED, MT_ERR_NOMEM.
 * On success the caller closes *out. */
mt_status mt_gguf_open_file(const char *path, mt_gguf **out, mt_err *err);
/* Parses a GGUF image in memory (the fuzz target and tests). buf is borrowed and must outlive the handle; name is
 * used in messages. */
mt_status mt_gguf_open_buffer(const void *buf, size_t size, const char *name, mt_gguf **out, mt_err *err);
void mt_gguf_close(mt_gguf *g);
/* g's file mapping when it holds [p, p + n) wholly, else NULL (always for a borrowed buffer). */
const mt_mapping *mt_gguf_mapping_of(const mt_gguf *g, const void *p, size_t n);

uint32_t mt_gguf_version(const mt_gguf *g);
size_t mt_gguf_alignment(const mt_gguf *g);
/* Byte offset of the data section in the file. */
size_t mt_gguf_data_offset(const mt_gguf *g);

/* Keys in file order. */
size_t mt_gguf_kv_count(const mt_gguf *g);
const mt_gguf_kv *mt_gguf_kv_at(const mt_gguf *g, size_t i);
/* NULL if absent; O(log n). */
const mt_gguf_kv *mt_gguf_find_kv(const mt_gguf *g, const char *key);

/* Typed lookup: copies the value of key into out, whose C type is that of type (mt_gguf_str for MT_GGUF_STR).
 * Errors (MT_ERR_FORMAT): no such key; the key holds another type (the message names the key, the type asked for
 * and the type found); MT_ERR_INVALID_ARG for type MT_GGUF_ARRAY (use mt_gguf_get_array). */
mt_status mt_gguf_get(const mt_gguf *g, const char *key, mt_gguf_type type, void *out, mt_err *err);
/* An array of elem: *data as in mt_gguf_kv.arr, *n its length. Errors as mt_gguf_get, naming "array of <elem>". */
mt_status mt_gguf_get_array(const mt_gguf *g, const char *key, mt_gguf_type elem, const void **data, uint64_t *n,
                            mt_err *err);
/* Any integer type (the spec lets counts be u32 or u64) as int64_t; a u64 over INT64_MAX is MT_ERR_FORMAT. */
mt_status mt_gguf_get_int(const mt_gguf *g, const char *key, int64_t *out, mt_err *err);

#define MT_GGUF_GETTER(suffix, ctype, tag)                                                                             \
    static inline mt_status mt_gguf_get_##suffix(const mt_gguf *g, const char *key, ctype *out, mt_err *err) {         \
        return mt_gguf_get(g, key, tag, out, err);                                                                     \
    }
MT_GGUF_GETTER(u8, uint8_t, MT_GGUF_U8)
MT_GGUF_GETTER(i8, int8_t, MT_GGUF_I8)
MT_GGUF_GETTER(u16, uint16_t, MT_GGUF_U16)
MT_GGUF_GETTER(i16, int16_t, MT_GGUF_I16)
MT_GGUF_GETTER(u32, uint32_t, MT_GGUF_U32)
MT_GGUF_GETTER(i32, int32_t, MT_GGUF_I32)
MT_GGUF_GETTER(u64, uint64_t, MT_GGUF_U64)
MT_GGUF_GETTER(i64, int64_t, MT_GGUF_I64)
MT_GGUF_GETTER(f32, float, MT_GGUF_F32)
MT_GGUF_GETTER(f64, double, MT_GGUF_F64)
MT_GGUF_GETTER(bool, bool, MT_GGUF_BOOL)
MT_GGUF_GETTER(str, mt_gguf_str, MT_GGUF_STR)
#undef MT_GGUF_GETTER

/* Tensors in file order. */
size_t mt_gguf_tensor_count(const mt_gguf *g);
const mt_gguf_tensor *mt_gguf_tensor_at(const mt_gguf *g, size_t i);
/* NULL if absent; O(log n). */
const mt_gguf_tensor *mt_gguf_find_tensor(const mt_gguf *g, const char *name);
/* Like find, for a tensor the model needs: MT_ERR_FORMAT when absent, MT_ERR_UNSUPPORTED naming the tensor and its
 * ggml type when mitten does not compute with it. */
mt_status mt_gguf_get_tensor(const mt_gguf *g, const char *name, const mt_gguf_tensor **out, mt_err *err);

/* ggml's name of a type id ("Q4_K", "IQ2_XXS"), NULL for ids unknown or removed from the format. */
const char *mt_gguf_ggml_type_name(uint32_t ggml_type);
/* The ggml type id of an mt_dtype; false for U8, which GGUF has no type for. */
bool mt_gguf_ggml_type_of(mt_dtype dtype, uint32_t *ggml_type);

/* Writer: collect keys and tensors, then mt_gguf_write streams a GGUF v3 file. Keys are written in the order
 * added, tensors in the order added, each at the next multiple of the alignment (general.alignment when it was
 * added, as a u32 power of two, else 32). Every add copies what it is given except tensor data, which is read at
 * write time. Errors of the adds: MT_ERR_INVALID_ARG naming the key or tensor (a key or name added twice, empty or
 * too long, a bad shape, a dtype GGUF has no type for, a row not a whole number of blocks, nbytes not matching the
 * shape), MT_ERR_NOMEM. */
typedef struct mt_gguf_writer mt_gguf_writer;

mt_status mt_gguf_writer_new(mt_gguf_writer **out, mt_err *err);
void mt_gguf_writer_free(mt_gguf_writer *w);

/* A scalar of type (not MT_GGUF_STR or MT_GGUF_ARRAY) read from *value, whose C type is that of type. */
mt_status mt_gguf_writer_add(mt_gguf_writer *w, const char *key, mt_gguf_type type, const void *value, mt_err *err);
/* A string of len bytes (it may hold NULs). */
mt_status mt_gguf_writer_add_str(mt_gguf_writer *w, const char *key, const char *s, size_t len, mt_err *err);
/* An array of n scalars of elem (not STR or ARRAY) in their C type (bool as bool). */
mt_status mt_gguf_writer_add_array(mt_gguf_writer *w, const char *key, mt_gguf_type elem, const void *data, size_t n,
                                   mt_err *err);
/* An array of n NUL-terminated strings. */
mt_status mt_gguf_writer_add_str_array(mt_gguf_writer *w, const char *key, const char *const *strs, size_t n,
                                       mt_err *err);

/* A tensor of shape (mitten order, 1..4 dims, each > 0) whose nbytes bytes are at data; data is borrowed until
 * mt_gguf_write returns. */
mt_status mt_gguf_writer_add_tensor(mt_gguf_writer *w, const char *name, mt_dtype dtype, int ndim, const int64_t *shape,
                                    const void *data, size_t nbytes, mt_err *err);

/* Streamed tensors: at write time fill is called once and must pass exactly the tensor's bytes, in order, to
 * mt_gguf_sink_write (in as many calls as it likes), so a model is converted one tensor at a time. An error it
 * returns stops the write. */
typedef struct mt_gguf_sink mt_gguf_sink;
typedef mt_status (*mt_gguf_fill_fn)(void *user, const char *name, mt_gguf_sink *sink, mt_err *err);
mt_status mt_gguf_sink_write(mt_gguf_sink *sink, const void *data, size_t n, mt_err *err);
mt_status mt_gguf_writer_add_tensor_fill(mt_gguf_writer *w, const char *name, mt_dtype dtype, int ndim,
                                         const int64_t *shape, mt_gguf_fill_fn fill, void *user, mt_err *err);

/* Writes the file through a temporary file beside path, renamed at the end (io_int.h), so path never holds half a
 * file. An existing path is MT_ERR_IO ("exists") unless overwrite. Errors: MT_ERR_IO, MT_ERR_FORMAT (a fill that
 * wrote too few or too many bytes), and any error a fill returns; path is untouched on error. The writer can be
 * written again or freed. */
mt_status mt_gguf_write(mt_gguf_writer *w, const char *path, bool overwrite, mt_err *err);

#endif
