/* mitten preprocess: an image as the model's processor makes it - pixel_values.npy (in the shape transformers'
 * processor gives it) and image_grid_thw.npy (int64 [1, 3]) - for comparison with transformers' processor; or a
 * video as qwen-vl-utils and the Qwen2-VL processor make it (media/qwen_video_pre.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/json.h"
#include "cli.h"
#include "io/npy.h"
#include "media/qwen_video_pre.h"
#include "models/assemble.h"
#include "models/internvl_processor.h"

static const char usage[] = "usage: mitten preprocess [-m DIR] --image FILE --out-dir DIR2 [--allow-unused]\n"
                            "       mitten preprocess [-m DIR] --video SRC [--video SRC ...] --out-dir DIR2\n"
                            "                         [--fps N | --nframes N] [--min-frames N] [--max-frames N]\n"
                            "                         [--min-pixels N] [--max-pixels N] [--total-pixels N]\n\n"
                            "Writes DIR2/pixel_values.npy (float32, shaped as transformers' processor gives it: [N, P] with\n"
                            "P = 1176 for Qwen2.5-VL and 1536 for Qwen3-VL; [tiles, 3, 448, 448] for InternVL) and\n"
                            "DIR2/image_grid_thw.npy (int64 [1, 3]; InternVL: tiles and the patches of a tile side), made\n"
                            "by the model's own processor. DIR2 and its parents are created.\n\n"
                            "With --video (Qwen2-VL, Qwen2.5-VL, Qwen3-VL: patch, merge and temporal patch sizes and the\n"
                            "normalisation from DIR's preprocessor_config.json): SRC is a video file FFmpeg reads, a folder of\n"
                            "frames (image files, sorted by name), or, when --video is given several times, the image files\n"
                            "of one clip in order. Frames are sampled and resized as qwen-vl-utils 0.0.14 does:\n"
                            "  --fps N           frames sampled per second (default 2); for images, the rate they were taken at\n"
                            "  --nframes N       sample N frames (rounded to even) instead\n"
                            "  --min-frames N    with --fps: at least N frames (default 4)\n"
                            "  --max-frames N    with --fps: at most N frames (default min(768, frames in the video))\n"
                            "  --min-pixels N    per-frame pixel floor (default 128 * (patch * merge)^2)\n"
                            "  --max-pixels N    per-frame pixel cap (default 768 * (patch * merge)^2, lowered by --total-pixels)\n"
                            "  --total-pixels N  pixel budget of the whole clip (default 128000 * (patch * merge)^2 * 0.9)\n"
                            "Writes DIR2/pixel_values_videos.npy (float32 [grid_t * grid_h * grid_w, 3 * T * P * P]),\n"
                            "video_grid_thw.npy (int64 [1, 3]), second_per_grid_ts.npy (float32 [1], T / sampled fps) and\n"
                            "frame_indices.npy (int64 [frames sampled], before padding to a multiple of T).\n\n"
                            "With --video and an InternVL model (both layouts; its weights are opened): SRC is one video file,\n"
                            "each sampled frame one tile (media/internvl_video_pre.h). --nframes N samples N frames (the\n"
                            "original's num_segments, default 32; transformers' num_frames), --fps N int(frames / video fps * N)\n"
                            "frames, --max-frames N at most N; the other options do not apply. transformers' layout samples\n"
                            "only when one is given or its video_preprocessor_config.json says do_sample_frames, else takes\n"
                            "every frame. Writes DIR2/pixel_values.npy (float32 [frames, 3, S, S], what InternVLProcessor\n"
                            "returns as pixel_values for a video) and frame_indices.npy (int64 [frames]).\n";

enum { MAX_VIDEO_ARGS = 4096 };

typedef struct video_args {
    const char *src[MAX_VIDEO_ARGS];
    int n_src;
    const char *fps, *nframes, *min_frames, *max_frames, *min_pixels, *max_pixels, *total_pixels;
} video_args;

static int parse_video_params(const video_args *va, mt_qwen_video_params *vp) {
    mt_qwen_video_params_default(vp);
    const struct {
        const char *name, *value;
        int64_t *out;
    } ints[] = {{"--nframes", va->nframes, &vp->nframes},          {"--min-frames", va->min_frames, &vp->min_frames},
                {"--max-frames", va->max_frames, &vp->max_frames},  {"--min-pixels", va->min_pixels, &vp->min_pixels},
                {"--max-pixels", va->max_pixels, &vp->max_pixels},  {"--total-pixels", va->total_pixels, &vp->total_pixels}};
    for (size_t i = 0; i < MT_ARRAY_LEN(ints); i++)
        if (ints[i].value && !mt_cli_parse_i64(ints[i].value, 1, (int64_t)1 << 40, ints[i].out))
            return mt_cli_usage(usage, "%s: expected an integer in [1, 2^40], got \"%s\"", ints[i].name,
                                ints[i].value);
    if (va->fps) {
        /* parsed as a double, as Python reads it: a float32 0.3 is above 0.3 and can move floor(total / fps_video *
         * fps) across an even number */
        char *end;
        errno = 0;
        vp->fps = strtod(va->fps, &end);
        if (errno || end == va->fps || *end || !(vp->fps >= 1e-3 && vp->fps <= 1000))
            return mt_cli_usage(usage, "--fps: expected a number in [0.001, 1000], got \"%s\"", va->fps);
    }
    if (va->fps && va->nframes) return mt_cli_usage(usage, "--fps and --nframes exclude each other");
    return MT_EXIT_OK;
}

static mt_status write_video(const char *out_dir, const mt_qwen_video *clip, int64_t cols, mt_err *err) {
    char path[4096];
    float spg = clip->second_per_grid;
    const struct {
        const char *name;
        mt_dtype dtype;
        int ndim;
        int64_t shape[2];
        const void *data;
    } files[] = {{"pixel_values_videos.npy", MT_F32, 2, {clip->n_patches, cols}, clip->pixel_values},
                 {"video_grid_thw.npy", MT_I64, 2, {1, 3}, clip->grid_thw},
                 {"second_per_grid_ts.npy", MT_F32, 1, {1, 0}, &spg},
                 {"frame_indices.npy", MT_I64, 1, {clip->n_frames, 0}, clip->frame_indices}};
    mt_status st = mt_dir_make_all(out_dir, err);
    for (size_t i = 0; i < MT_ARRAY_LEN(files) && !st; i++) {
        st = mt_path_join(path, sizeof path, out_dir, files[i].name, err);
        if (!st) st = mt_npy_write(path, files[i].dtype, files[i].ndim, files[i].shape, files[i].data, err);
    }
    return st;
}

/* Whether config.json in dir names an InternVL architecture (false when it cannot be read: the Qwen path says why). */
static bool is_internvl(const char *dir) {
    char path[4096];
    cJSON *cfg = NULL;
    mt_err err;
    if (mt_path_join(path, sizeof path, dir, "config.json", &err) || !mt_file_exists(path) ||
        mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, &err))
        return false;
    const cJSON *arch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cfg, "architectures"), 0);
    bool yes = cJSON_IsString(arch) && (!strcmp(arch->valuestring, "InternVLChatModel") ||
                                        !strcmp(arch->valuestring, "InternVLForConditionalGeneration"));
    cJSON_Delete(cfg);
    return yes;
}

static int run_internvl_video(const char *dir, const video_args *va, mt_model_params mp, const char *out_dir) {
    if (va->n_src > 1) return mt_cli_usage(usage, "InternVL takes one video file per --video run, not a list of images");
    if (va->min_frames || va->min_pixels || va->max_pixels || va->total_pixels)
        return mt_cli_usage(usage, "--min-frames, --min-pixels, --max-pixels and --total-pixels size Qwen's frames; an "
                                   "InternVL frame is one tile");
    mt_qwen_video_params q;
    int rc = parse_video_params(va, &q);
    if (rc) return rc;
    mp.video = (mt_video_params){.fps = va->fps ? q.fps : 0, .nframes = q.nframes, .max_frames = q.max_frames};
    mt_err err;
    mt_model *m;
    mp.mmap = true; /* only the processor runs */
    if (mt_model_open_params(dir, &mp, &m, &err)) return mt_cli_fail(&err);
    mt_internvl_video clip = {0};
    mt_status st = mt_internvl_video_sample(m->processor, va->src[0], &mp.video, &clip, &err);
    mt_model_close(m);
    char path[4096];
    int64_t S = clip.tile_size, shape[4] = {clip.n_frames, 3, S, S};
    if (!st) st = mt_dir_make_all(out_dir, &err);
    if (!st) st = mt_path_join(path, sizeof path, out_dir, "pixel_values.npy", &err);
    if (!st) st = mt_npy_write(path, MT_F32, 4, shape, clip.pixel_values, &err);
    if (!st) st = mt_path_join(path, sizeof path, out_dir, "frame_indices.npy", &err);
    if (!st) st = mt_npy_write(path, MT_I64, 1, (int64_t[]){clip.n_frames}, clip.frame_indices, &err);
    if (!st)
        fprintf(stderr, "%s: %lld of %lld frames sampled, tiles of %lldx%lld\n", va->src[0], (long long)clip.n_frames,
                (long long)clip.source_frames, (long long)S, (long long)S);
    mt_internvl_video_free(&clip);
    return st ? mt_cli_fail(&err) : MT_EXIT_OK;
}

static int run_video(const char *dir, const video_args *va, const char *out_dir) {
    mt_qwen_video_params vp;
    int rc = parse_video_params(va, &vp);
    if (rc) return rc;
    mt_err err;
    mt_qwen_preproc_cfg cfg;
    mt_qwen_video clip = {0};
    struct stat sb;
    mt_status st = mt_qwen_preproc_cfg_load(dir, &cfg, &err);
    bool is_dir = va->n_src == 1 && stat(va->src[0], &sb) == 0 && S_ISDIR(sb.st_mode);
    if ((va->n_src > 1 || is_dir) && (va->nframes || va->min_frames || va->max_frames))
        return mt_cli_usage(usage, "--nframes, --min-frames and --max-frames sample video files; a folder or list "
                                   "of images uses every image");
    if (!st) {
        if (va->n_src > 1)
            st = mt_qwen_video_from_images(va->src, va->n_src, &vp, &cfg, &clip, &err);
        else if (is_dir)
            st = mt_qwen_video_from_dir(va->src[0], &vp, &cfg, &clip, &err);
        else
            st = mt_qwen_video_from_file(va->src[0], &vp, &cfg, &clip, &err);
    }
    if (!st) st = write_video(out_dir, &clip, 3 * cfg.temporal_patch_size * cfg.patch_size * cfg.patch_size, &err);
    if (!st)
        fprintf(stderr, "%s: %lld frames sampled, grid %lldx%lldx%lld, %lld patches, %.4g s per temporal patch\n",
                va->src[0], (long long)clip.n_frames, (long long)clip.grid_thw[0], (long long)clip.grid_thw[1],
                (long long)clip.grid_thw[2], (long long)clip.n_patches, (double)clip.second_per_grid);
    mt_qwen_video_free(&clip);
    return st ? mt_cli_fail(&err) : MT_EXIT_OK;
}

int mt_cmd_preprocess(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", usage), MT_EXIT_OK;
    const char *dir = mt_cli_default_model(), *image = NULL, *out_dir = NULL;
    int bad = 0;
    mt_model_params mp = {0};
    video_args va = {0};
    const char *src;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_flag(&a, "--allow-unused")) {
            mp.allow_unused = true;
        } else if (mt_cli_opt(&a, "--video", &src, &bad)) {
            if (bad) break;
            if (va.n_src == MAX_VIDEO_ARGS) return mt_cli_usage(usage, "more than %d --video", MAX_VIDEO_ARGS);
            va.src[va.n_src++] = src;
        } else if (!mt_cli_opt(&a, "-m", &dir, &bad) && !mt_cli_opt(&a, "--image", &image, &bad) &&
                   !mt_cli_opt(&a, "--out-dir", &out_dir, &bad) && !mt_cli_opt(&a, "--fps", &va.fps, &bad) &&
                   !mt_cli_opt(&a, "--nframes", &va.nframes, &bad) &&
                   !mt_cli_opt(&a, "--min-frames", &va.min_frames, &bad) &&
                   !mt_cli_opt(&a, "--max-frames", &va.max_frames, &bad) &&
                   !mt_cli_opt(&a, "--min-pixels", &va.min_pixels, &bad) &&
                   !mt_cli_opt(&a, "--max-pixels", &va.max_pixels, &bad) &&
                   !mt_cli_opt(&a, "--total-pixels", &va.total_pixels, &bad)) {
            return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
        }
    }
    if (bad) return MT_EXIT_USAGE;
    if (va.n_src && image) return mt_cli_usage(usage, "--image and --video exclude each other");
    if (va.n_src) {
        if (!out_dir) return mt_cli_usage(usage, "--video needs --out-dir");
        return is_internvl(dir) ? run_internvl_video(dir, &va, mp, out_dir) : run_video(dir, &va, out_dir);
    }
    if (!image || !out_dir) return mt_cli_usage(usage, "--image and --out-dir are required");
    mt_err err;
    mt_model *m;
    mt_image img;
    mp.mmap = true; /* only the processor runs */
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
