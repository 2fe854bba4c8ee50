/* mitten preprocess: an image as the model's processor makes it - pixel_values.npy (in the shape transformers'
 * processor gives it) and image_grid_thw.npy (int64 [1, 3]) - for comparison with transformers' processor. */
#include <stdio.h>

#include "base/file.h"
#include "cli.h"
#include "io/npy.h"
#include "models/assemble.h"

static const char usage[] = "usage: mitten preprocess [-m DIR] --image FILE --out-dir DIR2 [--allow-unused]\n\n"
                            "Writes DIR2/pixel_values.npy (float32, shaped as transformers' processor gives it: [N, P] with\n"
                            "P = 1176 for Qwen2.5-VL and 1536 for Qwen3-VL; [tiles, 3, 448, 448] for InternVL) and\n"
                            "DIR2/image_grid_thw.npy (int64 [1, 3]; InternVL: tiles and the patches of a tile side), made\n"
                            "by the model's own processor. DIR2 and its parents are created.\n";

int mt_cmd_preprocess(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", usage), MT_EXIT_OK;
    const char *dir = mt_cli_default_model(), *image = NULL, *out_dir = NULL;
    int bad = 0;
    mt_model_params mp = {0};
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_flag(&a, "--allow-unused")) {
            mp.allow_unused = true;
        } else if (!mt_cli_opt(&a, "-m", &dir, &bad) && !mt_cli_opt(&a, "--image", &image, &bad) &&
                   !mt_cli_opt(&a, "--out-dir", &out_dir, &bad)) {
            return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
        }
    }
    if (bad) return MT_EXIT_USAGE;
    if (!image || !out_dir) return mt_cli_usage(usage, "--image and --out-dir are required");
    mt_err err;
    mt_model *m;
    mt_image img;
    if (mt_model_open_params(dir, &mp, &m, &err)) return mt_cli_fail(&err);
    if (mt_image_load(image, MT_IMAGE_DEFAULT_MAX_PIXELS, &img, &err)) {
        mt_model_close(m);
        return mt_cli_fail(&err);
    }
    float *pv = NULL;
    mt_image_input in;
    mt_status st = mt_model_preprocess_image(m, &img, &pv, &in, &err);
    int64_t pv_shape[4] = {0}, grid_shape[2] = {1, 3};
    int rank = st ? 0 : mt_model_pixel_shape(m, &in, pv_shape);
    mt_image_free(&img);
    mt_model_close(m);
    char path[4096];
    int64_t n = in.n_patches, grid[3] = {in.grid.t, in.grid.h, in.grid.w};
    if (!st) st = mt_dir_make_all(out_dir, &err);
    if (!st) st = mt_path_join(path, sizeof path, out_dir, "pixel_values.npy", &err);
    if (!st) st = mt_npy_write(path, MT_F32, rank, pv_shape, pv, &err);
    if (!st) st = mt_path_join(path, sizeof path, out_dir, "image_grid_thw.npy", &err);
    if (!st) st = mt_npy_write(path, MT_I64, 2, grid_shape, grid, &err);
    mt_free(pv);
    if (st) return mt_cli_fail(&err);
    fprintf(stderr, "%s: grid %lldx%lldx%lld, %lld patches\n", image, (long long)grid[0], (long long)grid[1],
            (long long)grid[2], (long long)n);
    return MT_EXIT_OK;
}
