/* io_ref: the C side of the NumPy / hand-written-safetensors cross-check driven by io_ref.py.
 *
 *     io_ref st2npy  FILE.safetensors|MODEL_DIR OUTDIR   each tensor -> OUTDIR/<name>.npy (BF16 widened to F32);
 *                                                       prints "meta KEY VALUE" and "file NAME SHARD" lines
 *     io_ref npy2npy IN.npy OUT.npy                     read and write back
 *     io_ref npy2st  OUT.safetensors IN.npy...          tensors named by file name without ".npy"
 *     io_ref shard   OUTDIR MAX_SHARD_BYTES IN.npy...   the same through the sharded writer
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/npy.h"
#include "io/safetensors.h"

static int fail(const mt_err *err) {
    fprintf(stderr, "io_ref: %s\n", err->msg);
    return 1;
}

static int st2npy(const char *in, const char *outdir) {
    struct stat sb;
    mt_safetensors *st;
    mt_err err;
    bool dir = stat(in, &sb) == 0 && S_ISDIR(sb.st_mode);
    if ((dir ? mt_safetensors_open_dir(in, &st, &err) : mt_safetensors_open_file(in, &st, &err))) return fail(&err);
    for (size_t i = 0; i < mt_safetensors_count(st); i++) {
        const mt_st_tensor *t = mt_safetensors_at(st, i);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.npy", outdir, t->name);
        const char *slash = strrchr(t->file, '/');
        printf("file %s %s\n", t->name, slash ? slash + 1 : t->file);
        if (t->dtype == MT_ST_UNSUPPORTED) continue;
        mt_status s;
        if (t->dtype == MT_BF16) {
            size_t n = t->nbytes / 2;
            float *f = malloc(n * sizeof *f + 1);
            for (size_t k = 0; k < n; k++) f[k] = mt_bf16_to_f32(((const uint16_t *)t->data)[k]);
            s = mt_npy_write(path, MT_F32, t->ndim, t->shape, f, &err);
            free(f);
        } else {
            s = mt_npy_write(path, t->dtype, t->ndim, t->shape, t->data, &err);
        }
        if (s) {
            mt_safetensors_close(st);
            return fail(&err);
        }
    }
    const char *keys[] = {"format", "note"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = mt_safetensors_meta(st, keys[i]);
        if (v) printf("meta %s %s\n", keys[i], v);
    }
    mt_safetensors_close(st);
    return 0;
}

/* Reads the .npy files into tensors named after them; the caller frees names and arrays. */
static int load_npys(char **paths, int n, mt_st_tensor *t, mt_npy *a) {
    mt_err err;
    for (int i = 0; i < n; i++) {
        if (mt_npy_read(paths[i], &a[i], &err)) return fail(&err);
        const char *base = strrchr(paths[i], '/');
        base = base ? base + 1 : paths[i];
        char *name = strdup(base);
        char *dot = strrchr(name, '.');
        if (dot) *dot = 0;
        t[i] = (mt_st_tensor){.name = name, .dtype = a[i].dtype, .ndim = a[i].ndim, .data = a[i].data,
                              .nbytes = a[i].nbytes};
        memcpy(t[i].shape, a[i].shape, sizeof a[i].shape);
    }
    return 0;
}

static int write_st(const char *out, size_t max_shard, bool sharded, char **paths, int n) {
    mt_st_tensor *t = calloc((size_t)n + 1, sizeof *t);
    mt_npy *a = calloc((size_t)n + 1, sizeof *a);
    mt_err err;
    const char *meta[] = {"format", "pt", NULL};
    int rc = load_npys(paths, n, t, a);
    if (!rc) {
        mt_status s = sharded ? mt_safetensors_write_sharded(out, t, (size_t)n, max_shard, meta, &err)
                              : mt_safetensors_write(out, t, (size_t)n, meta, &err);
        if (s) rc = fail(&err);
    }
    for (int i = 0; i < n; i++) {
        free((char *)t[i].name);
        mt_npy_free(&a[i]);
    }
    free(t);
    free(a);
    return rc;
}

int main(int argc, char **argv) {
    mt_err err;
    if (argc == 4 && strcmp(argv[1], "st2npy") == 0) return st2npy(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "npy2npy") == 0) {
        mt_npy a;
        if (mt_npy_read(argv[2], &a, &err)) return fail(&err);
        mt_status s = mt_npy_write(argv[3], a.dtype, a.ndim, a.shape, a.data, &err);
        mt_npy_free(&a);
        return s ? fail(&err) : 0;
    }
    if (argc >= 3 && strcmp(argv[1], "npy2st") == 0) return write_st(argv[2], 0, false, argv + 3, argc - 3);
    if (argc >= 4 && strcmp(argv[1], "shard") == 0)
        return write_st(argv[2], strtoull(argv[3], NULL, 10), true, argv + 4, argc - 4);
    fprintf(stderr, "usage: io_ref st2npy|npy2npy|npy2st|shard ...\n");
    return 2;
}
