/* mitten logits: runs the language model over given token ids (and images and videos) and writes the logits of every position,
 * so that anyone can compare mitten with another implementation. Optionally dumps the named intermediates
 * (tests/ref/README.md lists them) and greedy-decodes a few tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "cli.h"
#include "engine/session.h"
#include "io/npy.h"
#include "models/assemble.h"

static const char usage[] =
    "usage: mitten logits -m DIR --ids IDS.npy [--image FILE]... [--pixel-values PV.npy [--grid T,H,W]]...\n"
    "                     [--video-pixel-values PV.npy --video-grid T,H,W [--second-per-grid S]\n"
    "                      [--video-timestamps S,S,...]]...\n"
    "                     --out LOGITS.npy [--dump-dir DIR] [--greedy N --greedy-out TOKENS.npy] [--threads N]\n"
    "                     [--allow-unused] [--mmproj P.gguf] [--expand]\n\n"
    "IDS.npy holds int64 or int32 [L] token ids with each image's and video's placeholder already expanded, or with\n"
    "--expand one placeholder each (as a chat template writes them), which mitten expands as the processor does.\n"
    "Images and videos are taken in the order given, which is the order of their placeholders. PV.npy is float32\n"
    "patch rows [N, P] with --grid, or, for towers that take whole tiles (InternVL), the processor's pixel_values\n"
    "[tiles, 3, S, S] without it. A video is pixel_values_videos [T*H*W, P] with its video_grid_thw T,H,W and its\n"
    "second_per_grid_ts (default 1); for InternVL, the frames [frames, 3, S, S] without a grid, one tile each.\n"
    "Qwen3-VL's expansion writes each temporal group's time as text before its\n"
    "frame: --video-timestamps gives the T times in seconds (default: frames evenly spaced from 0 s, S per group).\n"
    "Writes float32 [L, V] logits; --dump-dir writes each intermediate tensor as NAME.npy (the folder and its\n"
    "parents are created);\n"
    "--greedy N continues the prompt greedily and writes the N tokens (int64) to --greedy-out.\n"
    "-m may name a GGUF file (--mmproj for its vision part).\n";

#define MAX_IMAGES 64

typedef struct image_arg {
    const char *file, *pv, *grid, *seconds, *stamps;
    bool video;
    double *times; /* --video-timestamps, owned */
    float *pixels; /* owned when from a file */
    mt_npy npy;
    mt_image_input in;
} image_arg;

/* Dumped tensors by name. A name dumped again (the vision tower runs once per image) gets its rows appended, so
 * the file holds every image's rows in order, as the reference's batched vision tower does. The first failure to
 * keep or write one is kept in st / err, and the command fails with it. */
typedef struct dump_state {
    const char *dir;
    mt_status st;
    mt_err err;
    struct {
        char name[64];
        mt_dtype dtype;
        int64_t rows, cols;
        void *data;
    } items[256];
    int n;
} dump_state;

static void dump_npy(void *user, const char *name, const mt_tensor *t) {
    dump_state *ds = user;
    char path[4096];
    if (ds->st || t->ndim != 2 || !mt_tensor_is_contiguous(t)) return; /* only 2D tensors are dumped */
    if (strlen(name) >= sizeof ds->items[0].name) {
        ds->st = mt_err_set(&ds->err, MT_ERR_LIMIT, "--dump-dir: tensor name \"%s\" is too long", name);
        return;
    }
    int k = 0;
    while (k < ds->n && strcmp(ds->items[k].name, name) != 0) k++;
    if (k == ds->n) {
        if (ds->n == (int)MT_ARRAY_LEN(ds->items)) {
            ds->st = mt_err_set(&ds->err, MT_ERR_LIMIT, "--dump-dir: more than %d tensors (at \"%s\")",
                                (int)MT_ARRAY_LEN(ds->items), name);
            return;
        }
        ds->n++;
        snprintf(ds->items[k].name, sizeof ds->items[k].name, "%s", name);
        ds->items[k].dtype = t->dtype;
        ds->items[k].cols = t->shape[1];
    } else if (ds->items[k].cols != t->shape[1] || ds->items[k].dtype != t->dtype) {
        ds->st = mt_err_set(&ds->err, MT_ERR_INTERNAL, "--dump-dir: \"%s\" was dumped with two widths or dtypes",
                            name);
        return;
    }
    size_t esz = mt_dtype_size(t->dtype), row_bytes = (size_t)ds->items[k].cols * esz;
    int64_t rows = ds->items[k].rows + t->shape[0];
    void *grown = mt_realloc(ds->items[k].data, (size_t)rows * row_bytes);
    if (!grown) {
        ds->st = mt_err_set(&ds->err, MT_ERR_NOMEM, "--dump-dir: out of memory keeping \"%s\"", name);
        return;
    }
    memcpy((char *)grown + (size_t)ds->items[k].rows * row_bytes, t->data, (size_t)t->shape[0] * row_bytes);
    ds->items[k].data = grown;
    ds->items[k].rows = rows;
    int64_t shape[2] = {rows, ds->items[k].cols};
    char file[80];
    snprintf(file, sizeof file, "%s.npy", name);
    ds->st = mt_path_join(path, sizeof path, ds->dir, file, &ds->err);
    if (!ds->st) ds->st = mt_npy_write(path, t->dtype, 2, shape, grown, &ds->err);
}

/* --video-timestamps: one time per temporal group of the video's grid. */
static int parse_stamps(image_arg *ia, mt_err *err) {
    int64_t t = ia->in.grid.t;
    if (t < 1 || t > 4096) {
        mt_err_set(err, MT_ERR_INVALID_ARG, "--video-timestamps %s: the video grid's T %lld must be 1 to 4096",
                   ia->stamps, (long long)t);
        return 2;
    }
    if (!(ia->times = mt_malloc_array((size_t)t, sizeof(double)))) {
        mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        return 1;
    }
    const char *c = ia->stamps;
    for (int64_t f = 0; f < t; f++) {
        char *end;
        double v = strtod(c, &end);
        if (end == c || !(v >= 0.0 && v <= 1e9) || (*end != ',' && *end)) {
            mt_err_set(err, MT_ERR_INVALID_ARG, "--video-timestamps %s: value %lld is not a number of seconds from 0 "
                       "to 1e9", ia->stamps, (long long)f + 1);
            return 2;
        }
        if ((*end == ',') != (f + 1 < t)) {
            mt_err_set(err, MT_ERR_INVALID_ARG, "--video-timestamps %s: expected %lld comma-separated seconds (one "
                       "per temporal group of grid T %lld), got %s", ia->stamps, (long long)t, (long long)t,
                       *end ? "more" : "fewer");
            return 2;
        }
        ia->times[f] = v;
        c = end + 1;
    }
    ia->in.timestamps = ia->times;
    return 0;
}

static int load_image_arg(const mt_model *m, image_arg *ia, mt_err *err) {
    if (ia->file) {
        mt_image img;
        if (mt_image_load(ia->file, MT_IMAGE_DEFAULT_MAX_PIXELS, &img, err)) return 1;
        mt_status st = mt_model_preprocess_image(m, &img, &ia->pixels, &ia->in, err);
        mt_image_free(&img);
        return st ? 1 : 0;
    }
    long long t, h, w;
    char tail;
    if (ia->grid && sscanf(ia->grid, "%lld,%lld,%lld%c", &t, &h, &w, &tail) != 3) {
        mt_err_set(err, MT_ERR_INVALID_ARG, "%s %s: expected T,H,W", ia->video ? "--video-grid" : "--grid", ia->grid);
        return 2;
    }
    if (mt_npy_read(ia->pv, &ia->npy, err)) return 1;
    if (!ia->grid && ia->npy.dtype == MT_F32 && ia->npy.ndim == 4) {
        if (!mt_model_tiles_input(m, ia->npy.shape, ia->npy.data, &ia->in, err)) {
            ia->in.video = ia->video; /* InternVL: a video's frames, one tile each */
            return 0;
        }
        mt_err_prefix(err, "%s", ia->pv);
        return 1;
    }
    if (!ia->grid) {
        mt_err_set(err, MT_ERR_INVALID_ARG, "%s %s: patch rows [N, P] need %s T,H,W",
                   ia->video ? "--video-pixel-values" : "--pixel-values", ia->pv, ia->video ? "--video-grid" : "--grid");
        return 2;
    }
    if (ia->npy.dtype != MT_F32 || ia->npy.ndim != 2) {
        mt_err_set(err, MT_ERR_FORMAT, "%s: pixel values must be float32 [N, P]%s", ia->pv,
                   ia->video ? "" : " (with --grid) or [tiles, 3, S, S]");
        return 1;
    }
    ia->in = (mt_image_input){.pixels = ia->npy.data, .n_patches = ia->npy.shape[0], .grid = {t, h, w},
                              .patch_dim = ia->npy.shape[1], .video = ia->video, .seconds_per_grid = 1.0};
    if (ia->seconds) {
        char *end;
        double s = strtod(ia->seconds, &end);
        if (end == ia->seconds || *end || !(s >= 0.0 && s <= 1e6)) {
            mt_err_set(err, MT_ERR_INVALID_ARG, "--second-per-grid %s: expected a number from 0 to 1e6", ia->seconds);
            return 2;
        }
        ia->in.seconds_per_grid = s;
    }
    if (ia->stamps) return parse_stamps(ia, err);
    return 0;
}

int mt_cmd_logits(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", usage), MT_EXIT_OK;
    const char *model_dir = mt_cli_default_model(), *ids_path = NULL, *out = NULL, *dump_dir = NULL,
               *greedy_out = NULL, *v;
    int64_t greedy = 0, threads = 0;
    image_arg images[MAX_IMAGES] = {0};
    int n_images = 0, bad = 0;
    bool expand = false;
    mt_model_params mp = {0};
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_opt(&a, "-m", &model_dir, &bad) || mt_cli_opt(&a, "--ids", &ids_path, &bad) ||
            mt_cli_opt(&a, "--mmproj", &mp.mmproj, &bad) ||
            mt_cli_opt(&a, "--out", &out, &bad) || mt_cli_opt(&a, "--dump-dir", &dump_dir, &bad) ||
            mt_cli_opt(&a, "--greedy-out", &greedy_out, &bad))
            continue;
        if (mt_cli_flag(&a, "--allow-unused")) {
            mp.allow_unused = true;
        } else if (mt_cli_opt(&a, "--greedy", &v, &bad)) {
            if (!bad && !mt_cli_parse_i64(v, 0, 1 << 20, &greedy)) return mt_cli_usage(usage, "bad --greedy %s", v);
        } else if (mt_cli_opt(&a, "--threads", &v, &bad)) {
            if (!bad && !mt_cli_parse_i64(v, 0, 1024, &threads)) return mt_cli_usage(usage, "bad --threads %s", v);
        } else if (mt_cli_opt(&a, "--image", &v, &bad) || mt_cli_opt(&a, "--pixel-values", &v, &bad)) {
            if (n_images == MAX_IMAGES) return mt_cli_usage(usage, "at most %d images", MAX_IMAGES);
            if (strcmp(argv[a.i - 1], "--image") == 0) images[n_images++].file = v;
            else images[n_images++].pv = v;
        } else if (mt_cli_opt(&a, "--video-pixel-values", &v, &bad)) {
            if (bad) break;
            if (n_images == MAX_IMAGES) return mt_cli_usage(usage, "at most %d images and videos", MAX_IMAGES);
            images[n_images].pv = v;
            images[n_images++].video = true;
        } else if (mt_cli_opt(&a, "--grid", &v, &bad) || mt_cli_opt(&a, "--video-grid", &v, &bad)) {
            if (bad) break;
            bool video = strcmp(argv[a.i - 1], "--video-grid") == 0;
            if (n_images == 0 || !images[n_images - 1].pv || images[n_images - 1].video != video)
                return mt_cli_usage(usage, "%s follows %s", argv[a.i - 1],
                                    video ? "--video-pixel-values" : "--pixel-values");
            images[n_images - 1].grid = v;
        } else if (mt_cli_opt(&a, "--second-per-grid", &v, &bad)) {
            if (bad) break;
            if (n_images == 0 || !images[n_images - 1].video)
                return mt_cli_usage(usage, "--second-per-grid follows --video-pixel-values");
            images[n_images - 1].seconds = v;
        } else if (mt_cli_opt(&a, "--video-timestamps", &v, &bad)) {
            if (bad) break;
            if (n_images == 0 || !images[n_images - 1].video)
                return mt_cli_usage(usage, "--video-timestamps follows --video-pixel-values");
            images[n_images - 1].stamps = v;
        } else if (mt_cli_flag(&a, "--expand")) {
            expand = true;
        } else {
            return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
        }
    }
    if (bad) return MT_EXIT_USAGE;
    if (!ids_path || !out) return mt_cli_usage(usage, "--ids and --out are required");
    if (greedy > 0 && !greedy_out) return mt_cli_usage(usage, "--greedy needs --greedy-out");

    mt_err err = {0};
    int rc = MT_EXIT_FAIL;
    mt_model *m = NULL;
    mt_session *s = NULL;
    mt_npy ids_npy = {0};
    int32_t *ids = NULL;
    int64_t *tokens = NULL;
    mt_image_input inputs[MAX_IMAGES];
    static dump_state ds;
    if (mt_model_open_params(model_dir, &mp, &m, &err)) goto done;
    if (dump_dir && mt_dir_make_all(dump_dir, &err)) goto done;
    for (int i = 0; i < n_images; i++) {
        int r = load_image_arg(m, &images[i], &err);
        if (r) {
            rc = r;
            goto done;
        }
        inputs[i] = images[i].in;
    }
    if (mt_npy_read(ids_path, &ids_npy, &err)) goto done;
    if ((ids_npy.dtype != MT_I64 && ids_npy.dtype != MT_I32) || ids_npy.ndim != 1) {
        mt_err_set(&err, MT_ERR_FORMAT, "%s: token ids must be int64 or int32 [L]", ids_path);
        goto done;
    }
    int64_t L = ids_npy.shape[0];
    ids = mt_malloc_array((size_t)MT_MAX(L, 1), sizeof(int32_t));
    if (!ids) goto done;
    for (int64_t i = 0; i < L; i++) {
        int64_t id = ids_npy.dtype == MT_I64 ? ((const int64_t *)ids_npy.data)[i] : ((const int32_t *)ids_npy.data)[i];
        if (id < 0 || id >= m->desc.vocab_size) {
            mt_err_set(&err, MT_ERR_INVALID_ARG, "%s: token id %lld at position %lld is outside the vocabulary [0, %lld)",
                       ids_path, (long long)id, (long long)i, (long long)m->desc.vocab_size);
            goto done;
        }
        ids[i] = (int32_t)id;
    }
    if (expand) {
        int32_t *full;
        if (mt_model_expand_inputs(m, ids, L, inputs, n_images, &full, &L, &err)) {
            mt_err_prefix(&err, "%s", ids_path);
            goto done;
        }
        mt_free(ids);
        ids = full;
    }
    /* room for the prompt and the greedy tokens, up to the model's own limit (a longer prompt fails with it) */
    mt_session_params sp = {.n_ctx = MT_MIN(L + greedy + 1, m->desc.max_positions), .n_threads = (int)threads};
    if (mt_session_new(m, &sp, &s, &err)) goto done;
    ds.dir = dump_dir;
    mt_dump dump = {dump_dir ? dump_npy : NULL, &ds};
    mt_prefill_opts opts = {.all_logits = true, .dump = &dump};
    const float *logits;
    if (mt_session_prefill(s, ids, L, inputs, n_images, &opts, &logits, &err)) goto done;
    if (ds.st) {
        err = ds.err;
        goto done;
    }
    int64_t shape[2] = {L, m->desc.vocab_size};
    if (mt_npy_write(out, MT_F32, 2, shape, logits, &err)) goto done;
    if (greedy > 0) {
        tokens = mt_malloc_array((size_t)greedy, sizeof(int64_t));
        if (!tokens) goto done;
        mt_sampling sm = mt_sampling_default();
        mt_sampler smp;
        if (mt_sampler_init(&smp, &sm, m->desc.vocab_size, &err)) goto done;
        float *last = mt_malloc_array((size_t)m->desc.vocab_size, sizeof(float));
        int64_t n = 0;
        const float *lg = logits + (L - 1) * m->desc.vocab_size;
        mt_status st = last ? MT_OK : mt_err_set(&err, MT_ERR_NOMEM, "out of memory");
        while (!st && n < greedy) {
            memcpy(last, lg, (size_t)m->desc.vocab_size * sizeof(float));
            int32_t t = mt_sampler_pick(&smp, last, NULL, 0);
            tokens[n++] = t;
            bool eos = false;
            for (size_t e = 0; e < m->desc.n_eos; e++) eos |= m->desc.eos_ids[e] == t;
            if (eos || n == greedy) break;
            st = mt_session_decode(s, t, &lg, &err);
        }
        mt_free(last);
        mt_sampler_release(&smp);
        if (st) goto done;
        if (mt_npy_write(greedy_out, MT_I64, 1, &n, tokens, &err)) goto done;
    }
    rc = MT_EXIT_OK;
done:
    if (rc == MT_EXIT_FAIL && err.msg[0]) mt_cli_fail(&err);
    else if (rc == MT_EXIT_USAGE) fprintf(stderr, "mitten: %s\n", err.msg);
    mt_free(tokens);
    mt_free(ids);
    mt_npy_free(&ids_npy);
    for (int i = 0; i < n_images; i++) {
        mt_free(images[i].pixels);
        mt_free(images[i].times);
        mt_npy_free(&images[i].npy);
    }
    for (int i = 0; i < ds.n; i++) mt_free(ds.items[i].data);
    mt_session_free(s);
    mt_model_close(m);
    return rc;
}
