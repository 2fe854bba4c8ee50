/* internvl_ref: command-line driver that internvl_pre_ref.py runs to compare mitten's InternVL processor with its
 * PIL + torch / numpy re-implementation of the two references.
 *
 *     internvl_ref check MANIFEST      for each line "MODEL_DIR IMAGE EXPECT", loads the processor part from
 *                                      MODEL_DIR (config.json and the files beside it, no weights), preprocesses
 *                                      IMAGE and compares with EXPECT: a .npy [tiles, 3, S, S] float32 that must
 *                                      match bit for bit, or "ERR:<status>", a refusal with that status whose
 *                                      message names IMAGE
 *     internvl_ref grid IN OUT         for each line "FORM S MIN MAX W H" of IN (FORM: original or hf), the grid
 *                                      mt_internvl_grid chooses, one line "COLS ROWS" or "ERR <status>" a case
 *
 * check prints one line per case ("ok ..." or "FAIL ...") and exits 1 when any case failed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "io/npy.h"
#include "media/internvl_pre.h"
#include "models/model.h"

extern const mt_processor_part mt_processor_internvl;

/* The processor part loaded as model loading would: config.json's image_token_id and vocabulary first. */
static mt_status load_part(const char *dir, mt_model *m, void **impl, mt_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *cfg;
    mt_status st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
    if (st) return st;
    *m = (mt_model){.dir = (char *)dir};
    m->desc.image_token_id = m->desc.vision_start_id = m->desc.vision_end_id = -1;
    m->desc.pos_axes = 1;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cfg, "image_token_id");
    if (cJSON_IsNumber(id)) m->desc.image_token_id = (int64_t)id->valuedouble;
    st = mt_processor_internvl.load(m, cfg, path, impl, err);
    cJSON_Delete(cfg);
    return st;
}

static int check_case(const char *dir, const char *image, const char *expect) {
    mt_model m;
    void *impl = NULL;
    mt_err err;
    mt_image img = {0};
    float *pv = NULL;
    int64_t n_patches = 0, patch_dim = 0;
    mt_image_grid grid = {0};
    mt_status st = load_part(dir, &m, &impl, &err);
    if (!st) st = mt_image_load(image, MT_IMAGE_DEFAULT_MAX_PIXELS, &img, &err);
    if (!st) st = mt_processor_internvl.preprocess(impl, &img, &pv, &n_patches, &grid, &patch_dim, &err);
    int bad = 0;
    if (strncmp(expect, "ERR:", 4) == 0) {
        bad = (int)st != atoi(expect + 4) || !strstr(err.msg, image);
        printf("%s %s %s: refused with %d: %s\n", bad ? "FAIL" : "ok", dir, image, (int)st, st ? err.msg : "");
    } else if (st) {
        printf("FAIL %s %s: %s\n", dir, image, err.msg);
        bad = 1;
    } else {
        mt_npy want;
        if (mt_npy_read(expect, &want, &err)) {
            printf("FAIL %s: %s\n", expect, err.msg);
            bad = 1;
        } else {
            int64_t shape[4];
            int rank = mt_processor_internvl.pixel_shape(impl, &(mt_image_input){.grid = grid}, shape);
            int64_t S = shape[2], n = 1;
            for (int i = 0; i < rank; i++) n *= shape[i];
            bad = want.dtype != MT_F32 || want.ndim != rank || memcmp(want.shape, shape, sizeof shape) != 0 ||
                  n_patches != grid.t * grid.h * grid.w || grid.h != grid.w ||
                  n_patches * patch_dim != n || grid.h * grid.h * patch_dim != 3 * S * S;
            int64_t n_diff = 0, first = -1;
            for (int64_t i = 0; !bad && i < n; i++)
                if (memcmp(&pv[i], &((const float *)want.data)[i], sizeof(float)) != 0) {
                    if (first < 0) first = i;
                    n_diff++;
                }
            bad |= n_diff != 0;
            printf("%s %s %s: %lld tiles of %lld, %lld values differ", bad ? "FAIL" : "ok", dir, image,
                   (long long)grid.t, (long long)S, (long long)n_diff);
            if (first >= 0)
                printf(" (first at %lld: %.9g, want %.9g)", (long long)first, pv[first],
                       ((const float *)want.data)[first]);
            if (want.ndim != rank || memcmp(want.shape, shape, sizeof shape) != 0)
                printf(" (shape [%lld, %lld, %lld, %lld], want rank %d [%lld, ...])", (long long)shape[0],
                       (long long)shape[1], (long long)shape[2], (long long)shape[3], want.ndim,
                       (long long)want.shape[0]);
            printf("\n");
            mt_npy_free(&want);
        }
    }
    mt_free(pv);
    mt_image_free(&img);
    if (impl) mt_processor_internvl.release(impl);
    return bad;
}

static int check_manifest(const char *manifest) {
    FILE *f = fopen(manifest, "r");
    if (!f) return fprintf(stderr, "%s: cannot open\n", manifest), 2;
    char dir[2048], image[2048], expect[2048];
    int failed = 0, cases = 0;
    while (fscanf(f, "%2047s %2047s %2047s", dir, image, expect) == 3) {
        failed += check_case(dir, image, expect);
        cases++;
    }
    fclose(f);
    printf("%d cases, %d failed\n", cases, failed);
    return failed || !cases;
}

static int grid_batch(const char *in, const char *out) {
    FILE *fi = fopen(in, "r"), *fo = fopen(out, "w");
    if (!fi || !fo) {
        if (fi) fclose(fi);
        if (fo) fclose(fo);
        return 2;
    }
    char form[32];
    long long S, lo, hi, w, h;
    while (fscanf(fi, "%31s %lld %lld %lld %lld %lld", form, &S, &lo, &hi, &w, &h) == 6) {
        mt_internvl_pre_cfg cfg;
        mt_internvl_pre_cfg_default(strcmp(form, "hf") == 0 ? MT_INTERNVL_TILING_HF : MT_INTERNVL_TILING_ORIGINAL,
                                    &cfg);
        cfg.tile_size = S;
        cfg.min_tiles = lo;
        cfg.max_tiles = hi;
        int64_t c, r;
        mt_err err;
        mt_status st = mt_internvl_grid(w, h, &cfg, &c, &r, &err);
        if (st)
            fprintf(fo, "ERR %d\n", (int)st);
        else
            fprintf(fo, "%lld %lld\n", (long long)c, (long long)r);
    }
    fclose(fi);
    return fclose(fo) != 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "check") == 0) return check_manifest(argv[2]);
    if (argc == 4 && strcmp(argv[1], "grid") == 0) return grid_batch(argv[2], argv[3]);
    fprintf(stderr, "usage: internvl_ref check MANIFEST | grid IN OUT\n");
    return 2;
}
