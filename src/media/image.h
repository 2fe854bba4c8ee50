/* media/image: decode JPEG, PNG and WebP into RGB8, and resize it exactly as PIL does (or as torchvision does).
 *
 * Usage:
 *     mt_image img;
 *     if (mt_image_load("cat.jpg", MT_IMAGE_DEFAULT_MAX_PIXELS, &img, &err) != MT_OK) ...   // err.msg names the file
 *     mt_image small;
 *     mt_image_resize_bicubic(&img, 448, 336, &small, &err);                                 // width, height
 *     mt_image_free(&img);  mt_image_free(&small);
 *
 * Reference: what Python gets from `PIL.Image.open(f).convert("RGB")` and `Image.resize((w, h), Image.BICUBIC)`
 * with Pillow 9.4 (Debian 12), which decodes through the same libjpeg-turbo and libwebp that mitten links.
 *
 * Pixel layout of mt_image.rgb (row-major, interleaved, no padding):
 *
 *     | byte offset          | value               |
 *     | -------------------- | ------------------- |
 *     | (y * width + x) * 3  | red   of pixel (x,y) |
 *     | ... + 1              | green               |
 *     | ... + 2              | blue                |
 *
 * Conversion to RGB follows PIL's convert("RGB"):
 *
 *     | source                            | RGB                                                        |
 *     | --------------------------------- | ---------------------------------------------------------- |
 *     | gray 1/2/4/8 bit (JPEG, PNG)      | value scaled to 8 bits by bit replication, copied to R,G,B |
 *     | gray 16 bit PNG                   | min(value, 255) (PIL opens it as mode "I", then clips)     |
 *     | gray+alpha, RGBA, WebP with alpha | alpha dropped, not composited                              |
 *     | 16-bit RGB / RGBA / gray+alpha    | high byte of each sample                                   |
 *     | palette (any depth, tRNS)         | PLTE entry; indices past PLTE give gray (index,index,index) |
 *     | CMYK / YCCK JPEG                  | Adobe-inverted CMYK, then PIL's cmyk2rgb                   |
 *
 * EXIF orientation is not applied (PIL's convert does not; transformers' load_image would). Colour profiles and
 * gamma are ignored, as in PIL. Animated WebP is refused (PIL would give its first frame).
 *
 * Limits: the header dimensions are read first; width * height over max_pixels gives MT_ERR_LIMIT before any
 * pixel memory is allocated. Truncated or corrupt data gives MT_ERR_FORMAT, unknown formats MT_ERR_FORMAT, known
 * but unhandled ones (GIF, BMP, TIFF, animated WebP, 12-bit JPEG) MT_ERR_UNSUPPORTED. Outputs are unchanged on
 * failure.
 */
#ifndef MT_MEDIA_IMAGE_H
#define MT_MEDIA_IMAGE_H

#include "base/base.h"

/* PIL's own decompression-bomb threshold (Image.MAX_IMAGE_PIXELS): a sensible max_pixels for callers. */
#define MT_IMAGE_DEFAULT_MAX_PIXELS ((int64_t)89478485)

typedef struct mt_image {
    int64_t width, height;
    uint8_t *rgb; /* (height, width, 3), owned; free with mt_image_free */
    char *name;   /* what it was decoded from (a path, "image 2"), owned, for the messages of later steps (a processor
                   * refusing its size); NULL for an image made in memory */
} mt_image;

/* Decodes an in-memory JPEG, PNG or WebP, told apart by their magic bytes. what names the data in messages (a
 * path, "request body", ...) and becomes out->name. max_pixels >= 1 caps width * height. */
mt_status mt_image_decode(const uint8_t *data, size_t size, const char *what, int64_t max_pixels, mt_image *out,
                          mt_err *err);

/* Reads path (refusing files larger than any valid image of max_pixels could be) and decodes it. */
mt_status mt_image_load(const char *path, int64_t max_pixels, mt_image *out, mt_err *err);

/* Frees img->rgb and img->name and zeroes img; accepts NULL and an already-freed image. */
void mt_image_free(mt_image *img);

/* PIL's Image.resize((w, h), BICUBIC) on RGB8, bit for bit: separable a = -0.5 cubic widened by the scale when
 * shrinking, coefficients in 22-bit fixed point, horizontal pass first. w, h in [1, 1 << 30]; the same size
 * gives a copy. out has no name. MT_ERR_INVALID_ARG on bad sizes, MT_ERR_NOMEM. */
mt_status mt_image_resize_bicubic(const mt_image *src, int64_t w, int64_t h, mt_image *out, mt_err *err);

/* torchvision's resize(uint8 tensor, (h, w), BICUBIC, antialias=True) on the CPU, as torch 1.13's AVX2 kernel
 * computes it (media/resize_torch.c): the same a = -0.5 cubic widened when shrinking, in float32, the width pass's
 * floats fed unrounded to the height pass, then clamped and rounded half to even. This is what qwen-vl-utils'
 * video frames (and transformers' "Fast" image processors) get; about 10% of its bytes differ from PIL's, mostly by
 * one level, more beside sharp edges. Same arguments, limits and errors as mt_image_resize_bicubic. */
mt_status mt_image_resize_bicubic_torch(const mt_image *src, int64_t w, int64_t h, mt_image *out, mt_err *err);

#endif
