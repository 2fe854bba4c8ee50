/* media/internvl_pre: InternVL's tiling in its original and transformers forms (see internvl_pre.h).
 *
 * The original builds its candidate grids as a Python set of (i, j) tuples and sorts that set by i * j; the sort is
 * stable, so grids of equal i * j keep the set's iteration order, and that order decides a tie between two of
 * them. It is reproduced here from CPython's code (3.8 and later): the tuple hash (Objects/tupleobject.c,
 * tuplehash, the xxHash-based one; a small int hashes to itself) and the set table (Objects/setobject.c:
 * set_add_entry, set_table_resize, set_insert_clean, with LINEAR_PROBES 9 and PERTURB_SHIFT 5).
 */
#include "media/internvl_pre.h"

#include <math.h>
#include <string.h>

#define MAX_TILE_SIZE 4096
#define MAX_CANDIDATES 256 /* pairs (i, j) with i * j <= 40: 168 */
#define PY_SET_MAX_TABLE 1024 /* CPython's table for 168 entries: 1024 slots */

static const float IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f};
static const float IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};

void mt_internvl_pre_cfg_default(mt_internvl_tiling tiling, mt_internvl_pre_cfg *out) {
    *out = (mt_internvl_pre_cfg){.tiling = tiling,
                                 .tile_size = 448,
                                 .min_tiles = 1,
                                 .max_tiles = 12,
                                 .dynamic = true,
                                 .thumbnail = true,
                                 .rescale_factor = 1.0 / 255.0};
    memcpy(out->mean, IMAGENET_MEAN, sizeof IMAGENET_MEAN);
    memcpy(out->std, IMAGENET_STD, sizeof IMAGENET_STD);
}

mt_status mt_internvl_pre_cfg_check(const mt_internvl_pre_cfg *c, mt_err *err) {
    if (c->tile_size < 1 || c->tile_size > MAX_TILE_SIZE)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "internvl preprocess: tile size %lld is outside [1, %d]",
                          (long long)c->tile_size, MAX_TILE_SIZE);
    if (c->min_tiles < 1 || c->min_tiles > MT_INTERNVL_MAX_TILES || c->max_tiles < 1 ||
        c->max_tiles > MT_INTERNVL_MAX_TILES)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "internvl preprocess: tiles %lld..%lld: each must be in [1, %d]",
                          (long long)c->min_tiles, (long long)c->max_tiles, MT_INTERNVL_MAX_TILES);
    if (c->min_tiles > c->max_tiles)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "internvl preprocess: min tiles %lld is more than max tiles %lld",
                          (long long)c->min_tiles, (long long)c->max_tiles);
    for (int i = 0; i < 3; i++)
        if (!(c->std[i] != 0.0f) || !isfinite(c->std[i]) || !isfinite(c->mean[i]))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "internvl preprocess: mean/std of channel %d is unusable", i);
    if (c->tiling == MT_INTERNVL_TILING_HF && !(c->rescale_factor > 0.0 && isfinite(c->rescale_factor)))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "internvl preprocess: rescale factor %g is not positive",
                          c->rescale_factor);
    return MT_OK;
}

typedef struct grid {
    int64_t i, j;
} grid;

/* CPython's hash of the tuple (a, b) of small non-negative ints. */
static uint64_t py_hash_pair(int64_t a, int64_t b) {
    const uint64_t P1 = 11400714785074694791ULL, P2 = 14029467366897019727ULL, P5 = 2870177450012600261ULL;
    uint64_t acc = P5;
    const int64_t lanes[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        acc += (uint64_t)lanes[k] * P2;
        acc = (acc << 31) | (acc >> 33);
        acc *= P1;
    }
    acc += 2 ^ (P5 ^ 3527539ULL);
    return acc == UINT64_MAX ? 1546275796 : acc;
}

typedef struct py_set {
    grid key[PY_SET_MAX_TABLE];
    uint64_t hash[PY_SET_MAX_TABLE];
    bool used[PY_SET_MAX_TABLE];
    size_t mask, fill;
} py_set;

/* The probe sequence both set_add_entry and set_insert_clean walk: slot i, then up to 9 neighbours when they lie
 * inside the table, then a perturbed jump. Returns the first free slot, or the slot holding k when seek_equal. */
static size_t py_set_probe(const py_set *s, grid k, uint64_t h, bool seek_equal) {
    size_t i = (size_t)(h & s->mask), perturb = (size_t)h;
    for (;;) {
        size_t probes = i + 9 <= s->mask ? 9 : 0;
        for (size_t e = i; e <= i + probes; e++) {
            if (!s->used[e]) return e;
            if (seek_equal && s->hash[e] == h && s->key[e].i == k.i && s->key[e].j == k.j) return e;
        }
        perturb >>= 5;
        i = (i * 5 + 1 + perturb) & s->mask;
    }
}

/* set_table_resize: the smallest power of two (at least 8) above minused, entries moved in table order. */
static void py_set_resize(py_set *s, size_t minused) {
    size_t size = 8;
    while (size <= minused) size <<= 1;
    grid key[MAX_CANDIDATES];
    uint64_t hash[MAX_CANDIDATES];
    size_t n = 0;
    for (size_t e = 0; e <= s->mask; e++)
        if (s->used[e]) {
            key[n] = s->key[e];
            hash[n++] = s->hash[e];
        }
    memset(s->used, 0, sizeof s->used);
    s->mask = size - 1;
    for (size_t k = 0; k < n; k++) {
        size_t e = py_set_probe(s, key[k], hash[k], false);
        s->used[e] = true;
        s->key[e] = key[k];
        s->hash[e] = hash[k];
    }
}

static void py_set_add(py_set *s, grid k) {
    uint64_t h = py_hash_pair(k.i, k.j);
    size_t e = py_set_probe(s, k, h, true);
    if (s->used[e]) return;
    s->used[e] = true;
    s->key[e] = k;
    s->hash[e] = h;
    s->fill++;
    if (s->fill * 5 >= s->mask * 3) py_set_resize(s, s->fill * 4);
}

/* The candidates of dynamic_preprocess in the order of `set(...)` iteration, before the sort. */
static size_t candidates_original(int64_t lo, int64_t hi, grid *out) {
    py_set s = {.mask = 7};
    for (int64_t n = lo; n <= hi; n++)
        for (int64_t i = 1; i <= n; i++)
            for (int64_t j = 1; j <= n; j++)
                if (i * j <= hi && i * j >= lo) py_set_add(&s, (grid){i, j});
    size_t k = 0;
    for (size_t e = 0; e <= s.mask; e++)
        if (s.used[e]) out[k++] = s.key[e];
    return k;
}

/* get_all_supported_aspect_ratios, before the sort. */
static size_t candidates_hf(int64_t lo, int64_t hi, grid *out) {
    size_t k = 0;
    for (int64_t i = 1; i <= hi; i++)
        for (int64_t j = 1; j <= hi; j++)
            if (i * j <= hi && i * j >= lo) out[k++] = (grid){i, j};
    return k;
}

mt_status mt_internvl_grid(int64_t w, int64_t h, const mt_internvl_pre_cfg *cfg, int64_t *cols, int64_t *rows,
                           mt_err *err) {
    mt_status st = mt_internvl_pre_cfg_check(cfg, err);
    if (st) return st;
    if (w < 1 || h < 1 || w > ((int64_t)1 << 30) || h > ((int64_t)1 << 30))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "image size %lldx%lld is outside [1, 2^30] per side", (long long)w,
                          (long long)h);
    if (w > MT_INTERNVL_MAX_ASPECT * h || h > MT_INTERNVL_MAX_ASPECT * w)
        return mt_err_set(err, MT_ERR_LIMIT,
                          "image size %lldx%lld: aspect ratio over %d (no tile grid fits it; crop the image)",
                          (long long)w, (long long)h, MT_INTERNVL_MAX_ASPECT);
    if (!cfg->dynamic) {
        *cols = *rows = 1;
        return MT_OK;
    }
    grid cand[MAX_CANDIDATES], sorted[MAX_CANDIDATES];
    size_t n = cfg->tiling == MT_INTERNVL_TILING_ORIGINAL ? candidates_original(cfg->min_tiles, cfg->max_tiles, cand)
                                                          : candidates_hf(cfg->min_tiles, cfg->max_tiles, cand);
    size_t k = 0;
    for (int64_t p = cfg->min_tiles; p <= cfg->max_tiles; p++) /* the stable sort by i * j */
        for (size_t c = 0; c < n; c++)
            if (cand[c].i * cand[c].j == p) sorted[k++] = cand[c];
    /* Python's arithmetic: true division of ints, abs of a double difference, and an int compared with a double
     * exactly (w * h < 2^61 and the right side is a multiple of 0.5 below 2^53, so double compares the same). */
    double aspect = (double)w / (double)h, best_diff = INFINITY, area = (double)(w * h);
    double S = (double)cfg->tile_size;
    grid best = {1, 1};
    for (size_t c = 0; c < k; c++) {
        double diff = fabs(aspect - (double)sorted[c].i / (double)sorted[c].j);
        if (diff < best_diff) {
            best_diff = diff;
            best = sorted[c];
        } else if (diff == best_diff && area > 0.5 * S * S * (double)sorted[c].i * (double)sorted[c].j) {
            best = sorted[c];
        }
    }
    *cols = best.i;
    *rows = best.j;
    return MT_OK;
}

/* Tile (tx, ty) of src (an S-multiple canvas) into dst (3, S, S) through the per-channel byte tables. */
static void put_tile(const mt_image *src, int64_t tx, int64_t ty, int64_t S, const float lut[3][256], float *dst) {
    for (int c = 0; c < 3; c++)
        for (int64_t y = 0; y < S; y++) {
            const uint8_t *s = src->rgb + ((size_t)(ty * S + y) * (size_t)src->width + (size_t)(tx * S)) * 3 + c;
            float *d = dst + ((size_t)c * (size_t)S + (size_t)y) * (size_t)S;
            for (int64_t x = 0; x < S; x++) d[x] = lut[c][s[3 * x]];
        }
}

static mt_status preprocess(const mt_image *img, const mt_internvl_pre_cfg *cfg, float **pixel_values,
                            int64_t *tiles, mt_err *err) {
    if (!img || !img->rgb) return mt_err_set(err, MT_ERR_INVALID_ARG, "internvl preprocess: no image");
    int64_t cols, rows;
    mt_status st = mt_internvl_grid(img->width, img->height, cfg, &cols, &rows, err);
    if (st) return st;
    const int64_t S = cfg->tile_size, n_grid = cols * rows;
    const int64_t n = n_grid + (cfg->thumbnail && n_grid > 1);
    const size_t per_tile = 3 * (size_t)S * (size_t)S;
    float *pv = mt_malloc_array((size_t)n, per_tile * sizeof *pv);
    if (!pv) return mt_err_set(err, MT_ERR_NOMEM, "internvl preprocess: out of memory for %lld tiles", (long long)n);

    /* A value depends only on its byte and channel, so one table per channel holds every result. */
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = cfg->tiling == MT_INTERNVL_TILING_ORIGINAL ? (float)v / 255.0f
                                                                 : (float)((double)v * cfg->rescale_factor);
            lut[c][v] = (x - cfg->mean[c]) / cfg->std[c];
        }

    mt_image canvas = {0};
    st = mt_image_resize_bicubic(img, cols * S, rows * S, &canvas, err);
    for (int64_t t = 0; !st && t < n_grid; t++)
        put_tile(&canvas, t % cols, t / cols, S, lut, pv + (size_t)t * per_tile);
    mt_image_free(&canvas);
    if (!st && n > n_grid) {
        mt_image thumb = {0};
        st = mt_image_resize_bicubic(img, S, S, &thumb, err);
        if (!st) put_tile(&thumb, 0, 0, S, lut, pv + (size_t)n_grid * per_tile);
        mt_image_free(&thumb);
    }
    if (st) {
        mt_free(pv);
        return st;
    }
    *pixel_values = pv;
    *tiles = n;
    return MT_OK;
}

mt_status mt_internvl_preprocess(const mt_image *img, const mt_internvl_pre_cfg *cfg, float **pixel_values,
                                 int64_t *tiles, mt_err *err) {
    mt_status st = preprocess(img, cfg, pixel_values, tiles, err);
    return st && img && img->name ? mt_err_prefix(err, "%s", img->name) : st;
}
