/* media_ref: command-line driver that ref_media.py runs to compare mitten's image pipeline with PIL and numpy.
 *
 *     media_ref decode FILE OUT                 decoded RGB8
 *     media_ref resize FILE W H OUT             decoded, then bicubic-resized RGB8
 *     media_ref pre FILE MODEL_DIR OUT [FAMILY] Qwen2-VL pixel_values with MODEL_DIR/preprocessor_config.json
 *     media_ref cfg MODEL_DIR [FAMILY]          the config read from MODEL_DIR, one line on stdout
 *     media_ref smart IN OUT                    smart_resize for each line "h w factor min max" of IN
 * FAMILY picks the defaults for a folder without the file: qwen2.5-vl (the default) or qwen3-vl.
 *
 * Output files (little-endian):
 *     | kind  | header                                        | then                       |
 *     | ----- | --------------------------------------------- | -------------------------- |
 *     | image | "MTRGB\0\0\1", int64 width, int64 height      | width*height*3 bytes       |
 *     | pre   | "MTPV\0\0\0\1", int64 rows, cols, t, h, w     | rows*cols float32          |
 *     | smart | one text line a case: "OUT_H OUT_W" or "ERR CODE" |                        |
 * cfg prints "MIN_PIXELS MAX_PIXELS P T M MEAN0 MEAN1 MEAN2 STD0 STD1 STD2 RESCALE" (floats as %.9g, RESCALE %.17g).
 * On failure the driver prints "ERR <status number> <message>" to stdout and exits with status 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/image.h"
#include "media/qwen_vision_pre.h"

static int fail(const mt_err *err) {
    printf("ERR %d %s\n", (int)err->code, err->msg);
    return 2;
}

static int write_all(const char *path, const void *head, size_t head_n, const void *body, size_t body_n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    int bad = fwrite(head, 1, head_n, f) != head_n || (body_n && fwrite(body, 1, body_n, f) != body_n);
    bad |= fclose(f) != 0;
    if (bad) fprintf(stderr, "%s: write failed\n", path);
    return bad;
}

static int write_image(const char *path, const mt_image *img) {
    unsigned char head[24];
    memcpy(head, "MTRGB\0\0\1", 8);
    memcpy(head + 8, &img->width, 8);
    memcpy(head + 16, &img->height, 8);
    return write_all(path, head, sizeof head, img->rgb, (size_t)(img->width * img->height * 3));
}

/* NULL (and a message) for a family name this driver does not know. */
static const mt_qwen_preproc_cfg *family_defaults(const char *name, mt_qwen_preproc_cfg *buf) {
    if (!name || strcmp(name, "qwen2.5-vl") == 0)
        mt_qwen_preproc_cfg_default(buf);
    else if (strcmp(name, "qwen3-vl") == 0)
        mt_qwen3_vl_preproc_cfg_default(buf);
    else {
        fprintf(stderr, "unknown family %s\n", name);
        return NULL;
    }
    return buf;
}

static int print_cfg(const char *dir, const char *family) {
    mt_qwen_preproc_cfg d, c;
    mt_err err;
    if (!family_defaults(family, &d)) return 1;
    if (mt_qwen_preproc_cfg_load_with(dir, &d, &c, &err) != MT_OK) return fail(&err);
    printf("%lld %lld %lld %lld %lld %.9g %.9g %.9g %.9g %.9g %.9g %.17g\n", (long long)c.min_pixels,
           (long long)c.max_pixels, (long long)c.patch_size, (long long)c.temporal_patch_size, (long long)c.merge_size,
           c.mean[0], c.mean[1], c.mean[2], c.std[0], c.std[1], c.std[2], c.rescale_factor);
    return 0;
}

static int smart_batch(const char *in, const char *out) {
    FILE *fi = fopen(in, "r"), *fo = fopen(out, "w");
    if (!fi || !fo) return 1;
    long long h, w, f, lo, hi;
    while (fscanf(fi, "%lld %lld %lld %lld %lld", &h, &w, &f, &lo, &hi) == 5) {
        int64_t oh, ow;
        mt_err err;
        if (mt_qwen_smart_resize(h, w, f, lo, hi, &oh, &ow, &err) == MT_OK)
            fprintf(fo, "%lld %lld\n", (long long)oh, (long long)ow);
        else
            fprintf(fo, "ERR %d\n", (int)err.code);
    }
    fclose(fi);
    return fclose(fo) != 0;
}

int main(int argc, char **argv) {
    mt_err err;
    mt_image img = {0};
    if (argc == 4 && strcmp(argv[1], "smart") == 0) return smart_batch(argv[2], argv[3]);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "cfg") == 0) return print_cfg(argv[2], argc == 4 ? argv[3] : NULL);
    if (argc < 4) {
        fprintf(stderr, "usage: see the comment at the top of tests/media/media_ref.c\n");
        return 1;
    }
    if (mt_image_load(argv[2], MT_IMAGE_DEFAULT_MAX_PIXELS, &img, &err) != MT_OK) return fail(&err);
    int rc = 1;
    if (strcmp(argv[1], "decode") == 0) {
        rc = write_image(argv[3], &img);
    } else if (strcmp(argv[1], "resize") == 0 && argc == 6) {
        mt_image out;
        if (mt_image_resize_bicubic(&img, atoll(argv[3]), atoll(argv[4]), &out, &err) != MT_OK) {
            mt_image_free(&img);
            return fail(&err);
        }
        rc = write_image(argv[5], &out);
        mt_image_free(&out);
    } else if (strcmp(argv[1], "pre") == 0 && (argc == 5 || argc == 6)) {
        mt_qwen_preproc_cfg d, cfg;
        float *pv;
        int64_t n, thw[3];
        if (!family_defaults(argc == 6 ? argv[5] : NULL, &d)) {
            mt_image_free(&img);
            return 1;
        }
        if (mt_qwen_preproc_cfg_load_with(argv[3], &d, &cfg, &err) != MT_OK ||
            mt_qwen_preprocess(&img, &cfg, &pv, &n, thw, &err) != MT_OK) {
            mt_image_free(&img);
            return fail(&err);
        }
        int64_t head[6] = {0, n, 3 * cfg.temporal_patch_size * cfg.patch_size * cfg.patch_size, thw[0], thw[1],
                           thw[2]};
        memcpy(head, "MTPV\0\0\0\1", 8);
        rc = write_all(argv[4], head, sizeof head, pv, (size_t)(n * head[2]) * sizeof(float));
        mt_free(pv);
    }
    mt_image_free(&img);
    return rc;
}
