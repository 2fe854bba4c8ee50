/* media: what the format decoders share. Private to src/media.
 *
 * Each decoder reads its header, calls mt_media_check_size before it allocates pixels, and fills an mt_image
 * only on success. Messages start with `what` (the file name or "request body").
 */
#ifndef MT_MEDIA_INT_H
#define MT_MEDIA_INT_H

#include "media/image.h"

/* MT_ERR_FORMAT for zero sizes, MT_ERR_LIMIT when width * height > max_pixels; fmt ("JPEG", ...) goes in the
 * message. */
mt_status mt_media_check_size(int64_t width, int64_t height, int64_t max_pixels, const char *fmt, const char *what,
                              mt_err *err);

/* An uninitialised (height, width, 3) buffer; call only after mt_media_check_size accepted the size. */
mt_status mt_media_alloc_rgb(int64_t width, int64_t height, const char *what, uint8_t **out, mt_err *err);

mt_status mt_media_decode_jpeg(const uint8_t *data, size_t size, const char *what, int64_t max_pixels,
                               mt_image *out, mt_err *err);
mt_status mt_media_decode_png(const uint8_t *data, size_t size, const char *what, int64_t max_pixels,
                              mt_image *out, mt_err *err);
mt_status mt_media_decode_webp(const uint8_t *data, size_t size, const char *what, int64_t max_pixels,
                               mt_image *out, mt_err *err);

/* mt_qwen_patchify_frame's loop with AVX-512 (qwen_patchify_avx512.c), for P <= 16: frame t % T of a (gh P) x
 * (gw P) RGB picture into rows, the first pixel_values row of its temporal group. The same floats. */
void mt_qwen_patchify_frame_avx512(const uint8_t *rgb, int64_t width, int64_t gh, int64_t gw, int64_t P, int64_t T,
                                   int64_t M, int64_t t, const float lut[3][256], float *rows);

#endif
