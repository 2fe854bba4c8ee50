/* media/internvl_pre: InternVL's dynamic high-resolution tiling - an image cut into S x S tiles on the grid whose
 * aspect ratio is closest to the image's, plus an S x S thumbnail, each normalised - in its two published forms.
 *
 * Usage:
 *     mt_internvl_pre_cfg cfg;   mt_internvl_pre_cfg_default(MT_INTERNVL_TILING_ORIGINAL, &cfg);
 *     float *pv;  int64_t tiles;
 *     mt_internvl_preprocess(&img, &cfg, &pv, &tiles, &err);   // pv: (tiles, 3, S, S), free with mt_free
 *
 * References:
 *   - original: OpenGVLab/InternVL internvl_chat/internvl/train/dataset.py (dynamic_preprocess,
 *     find_closest_aspect_ratio, build_transform with normalize_type "imagenet"), the code behind the model cards'
 *     load_image and the InternVLChatModel checkpoints;
 *   - hf: transformers 4.57 models/got_ocr2/image_processing_got_ocr2.py (the slow GotOcr2ImageProcessor:
 *     get_all_supported_aspect_ratios, get_optimal_tiled_canvas, crop_image_to_patches, preprocess), which the
 *     "-hf" checkpoints name through InternVLProcessor.
 *
 * Shape legend: S tile side, w x h the image, (c, r) the chosen grid of c columns and r rows, n = c * r tiles,
 * plus one thumbnail when n > 1 and thumbnails are on.
 *
 * Steps (both forms):
 *     candidates = every (i, j) with min <= i * j <= max, in an order that depends on the form (below),
 *                  stably sorted by i * j
 *     a = w / h (double); for each candidate, d = |a - i / j|: a smaller d takes it; an equal d takes it when
 *         w * h > 0.5 * S * S * i * j (a larger grid wins a tie while the image has the pixels for it)
 *     canvas = PIL bicubic resize to (c * S, r * S); tile k is the S x S box at column k % c, row k / c
 *     thumbnail = PIL bicubic resize of the whole image to (S, S), after the tiles
 *     value[ch, y, x] = normalise(byte), in float32, with the form's rounding
 *
 * Where the forms differ:
 *     |                        | original (dynamic_preprocess)               | hf (GotOcr2ImageProcessor)        |
 *     | ---------------------- | ------------------------------------------- | --------------------------------- |
 *     | candidate order        | iteration order of a CPython set of tuples  | i ascending, then j ascending     |
 *     |                        | (it decides ties between grids of equal     |                                   |
 *     |                        | i * j; seen only with min > 1)              |                                   |
 *     | thumbnail              | when config.json's use_thumbnail            | always                            |
 *     | no tiling              | dynamic_image_size false: one S x S resize  | max_patches 1: one S x S resize   |
 *     | rescale                | float32(byte) / 255 in float32 (ToTensor)   | float32(float64(byte) * factor)   |
 *     | normalise              | (x - mean) / std in float32                 | (x - mean) / std in float32       |
 *     | mean, std              | ImageNet                                    | the file's (class default: CLIP)  |
 * The two rescales give the same float for each of the 256 bytes (checked in tests/media/internvl_pre_ref.py's
 * premise); each is written as its reference computes it so that a file's other rescale_factor stays exact.
 * Both resize with PIL bicubic: dynamic_preprocess calls Image.resize without a filter (BICUBIC since Pillow 7),
 * crop_image_to_patches calls resize without one (BICUBIC, whatever the file's `resample`); each tile then goes
 * through a resize to its own size, which PIL answers with a copy.
 *
 * Limits: min and max tiles in [1, 40], min <= max; S in [1, 4096]; an image whose long side is more than 200
 * times its short side is refused (MT_ERR_LIMIT): neither reference refuses it, but no grid of 40 tiles comes
 * within a factor of 5 of its shape, so its tiles would be stretched past recognition.
 */
#ifndef MT_MEDIA_INTERNVL_PRE_H
#define MT_MEDIA_INTERNVL_PRE_H

#include "media/image.h"

#define MT_INTERNVL_MAX_TILES 40
#define MT_INTERNVL_MAX_ASPECT 200

typedef enum mt_internvl_tiling {
    MT_INTERNVL_TILING_ORIGINAL, /* dynamic_preprocess + torchvision ToTensor / Normalize */
    MT_INTERNVL_TILING_HF,       /* GotOcr2ImageProcessor */
} mt_internvl_tiling;

typedef struct mt_internvl_pre_cfg {
    mt_internvl_tiling tiling;
    int64_t tile_size;          /* S */
    int64_t min_tiles, max_tiles;
    bool dynamic;               /* false: the whole image as one S x S tile */
    bool thumbnail;             /* add the thumbnail when the grid has more than one tile */
    float mean[3], std[3];
    double rescale_factor;      /* hf only; the original divides by 255 */
} mt_internvl_pre_cfg;

/* The published values of each form: S 448, tiles 1..12, dynamic, with thumbnail, ImageNet mean and std. */
void mt_internvl_pre_cfg_default(mt_internvl_tiling tiling, mt_internvl_pre_cfg *out);

/* MT_ERR_INVALID_ARG naming the value that is out of range (see Limits). */
mt_status mt_internvl_pre_cfg_check(const mt_internvl_pre_cfg *cfg, mt_err *err);

/* The grid of a w x h image: *cols x *rows tiles, as the form chooses it. MT_ERR_INVALID_ARG for a bad cfg or
 * sizes below 1, MT_ERR_LIMIT for an aspect ratio over MT_INTERNVL_MAX_ASPECT. */
mt_status mt_internvl_grid(int64_t w, int64_t h, const mt_internvl_pre_cfg *cfg, int64_t *cols, int64_t *rows,
                           mt_err *err);

/* pixel_values (tiles, 3, S, S) float32, allocated (free with mt_free); *tiles counts the thumbnail. Errors begin
 * with img->name where the image has one. Outputs are unchanged on failure. */
mt_status mt_internvl_preprocess(const mt_image *img, const mt_internvl_pre_cfg *cfg, float **pixel_values,
                                 int64_t *tiles, mt_err *err);

#endif
