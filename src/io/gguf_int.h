/* io/gguf internals shared by the reader (gguf.c) and the writer (gguf_write.c). Not part of the public API. */
#ifndef MT_GGUF_INT_H
#define MT_GGUF_INT_H

#include "io/gguf.h"

/* One ggml type: its name, elements and bytes per block, and the mt_dtype (MT_GGUF_UNSUPPORTED if none). */
typedef struct mt_gguf_ggml_info {
    const char *name;
    int block_elems;
    size_t block_bytes;
    mt_dtype dtype;
} mt_gguf_ggml_info;

/* NULL for ids unknown or removed from the format. */
const mt_gguf_ggml_info *mt_gguf_ggml_info_of(uint32_t ggml_type);

/* Bytes of a scalar value in the file; 0 for STR and ARRAY. */
size_t mt_gguf_scalar_size(mt_gguf_type t);

#endif
