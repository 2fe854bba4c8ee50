/* io/npy: read and write NumPy .npy arrays (test fixtures, reference activations, debugging dumps).
 *
 * Usage:
 *     mt_npy a;  mt_err err;
 *     if (mt_npy_read("logits.npy", &a, &err) == MT_OK) { ... (float *)a.data ...; mt_npy_free(&a); }
 *     mt_npy_write("out.npy", MT_F32, 2, (int64_t[]){T, V}, logits, &err);
 *
 * Format (reference: numpy/lib/format.py, "NPY format" in the NumPy docs):
 *
 *     | bytes              | content                                                                   |
 *     | ------------------ | ------------------------------------------------------------------------- |
 *     | 0 .. 6             | "\x93NUMPY"                                                               |
 *     | 6, 7               | major, minor version: 1.0 (u16 length), 2.0 / 3.0 (u32 length)           |
 *     | 8 .. 10 or 8 .. 12 | H, little-endian header length                                            |
 *     | next H bytes       | Python dict literal, space-padded, ending in '\n':                        |
 *     |                    |   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }             |
 *     | rest               | the array, C order; exactly product(shape) * itemsize bytes               |
 *
 * Supported descr: '<f4' (F32), '<f2' (F16), '<i4' (I32), '<i8' (I64), '|u1' (U8; '<u1' also read). Anything
 * else (big-endian, bool, f8, structured dtypes) and fortran_order True give MT_ERR_UNSUPPORTED; a malformed
 * header, more than 8 dims, or a data size that does not match the shape give MT_ERR_FORMAT / MT_ERR_LIMIT, each
 * naming the file and the field. The writer emits version 1.0, the header padded so
 * the data starts at a multiple of 64 as NumPy does, and writes atomically.
 */
#ifndef MT_NPY_H
#define MT_NPY_H

#include "base/base.h"
#include "tensor/dtype.h"

#define MT_NPY_MAX_DIMS 8

typedef struct mt_npy {
    mt_dtype dtype;
    int ndim;
    int64_t shape[MT_NPY_MAX_DIMS];
    void *data; /* owned, 64-byte aligned; release with mt_npy_free */
    size_t nbytes;
} mt_npy;

/* Reads path into *out (left unchanged on failure). */
mt_status mt_npy_read(const char *path, mt_npy *out, mt_err *err);

/* Parses an in-memory .npy image (the data is copied). name is used in messages. */
mt_status mt_npy_parse(const void *buf, size_t size, const char *name, mt_npy *out, mt_err *err);

/* Frees a->data and zeroes *a; accepts NULL and a zeroed struct. */
void mt_npy_free(mt_npy *a);

/* Writes ndim dims of shape (0 <= ndim <= 8, dims >= 0) of dtype from data (product(shape) elements, C order).
 * MT_ERR_INVALID_ARG for a dtype .npy cannot hold (BF16) or a bad shape; MT_ERR_IO when writing fails. */
mt_status mt_npy_write(const char *path, mt_dtype dtype, int ndim, const int64_t *shape, const void *data,
                       mt_err *err);

#endif
