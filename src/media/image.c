/* media/image: format detection by magic bytes, bounded file reads, shared size checks.
 *
 * Magic bytes (the extension is never consulted):
 *
 *     | format | bytes                                   | handled by         |
 *     | ------ | --------------------------------------- | ------------------ |
 *     | JPEG   | FF D8 FF                                | image_jpeg.c       |
 *     | PNG    | 89 'P' 'N' 'G' 0D 0A 1A 0A              | image_png.c        |
 *     | WebP   | 'R' 'I' 'F' 'F' <size:4> 'W' 'E' 'B' 'P' | image_webp.c       |
 *     | GIF    | 'G' 'I' 'F' '8'                         | MT_ERR_UNSUPPORTED |
 *     | BMP    | 'B' 'M'                                 | MT_ERR_UNSUPPORTED |
 *     | TIFF   | 'I' 'I' 2A 00 or 'M' 'M' 00 2A          | MT_ERR_UNSUPPORTED |
 */
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "media/media_int.h"

mt_status mt_media_check_size(int64_t width, int64_t height, int64_t max_pixels, const char *fmt, const char *what,
                              mt_err *err) {
    if (width <= 0 || height <= 0)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %s header gives an empty image (%lldx%lld)", what, fmt,
                          (long long)width, (long long)height);
    int64_t pixels;
    if (!mt_mul_i64_ok(width, height, &pixels) || pixels > max_pixels)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: %s image is %lldx%lld, more than the %lld pixels allowed", what,
                          fmt, (long long)width, (long long)height, (long long)max_pixels);
    return MT_OK;
}

mt_status mt_media_alloc_rgb(int64_t width, int64_t height, const char *what, uint8_t **out, mt_err *err) {
    size_t n;
    if (!mt_mul_ok((size_t)width, (size_t)height, &n) || !mt_mul_ok(n, 3, &n))
        return mt_err_set(err, MT_ERR_LIMIT, "%s: image of %lldx%lld pixels does not fit in memory", what,
                          (long long)width, (long long)height);
    uint8_t *p = mt_malloc(n);
    if (!p) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for %zu bytes of pixels", what, n);
    *out = p;
    return MT_OK;
}

static bool starts_with(const uint8_t *data, size_t size, const char *magic, size_t n) {
    return size >= n && memcmp(data, magic, n) == 0;
}

static mt_status decode(const uint8_t *data, size_t size, const char *what, int64_t max_pixels, mt_image *out,
                        mt_err *err) {
    if (size == 0) return mt_err_set(err, MT_ERR_FORMAT, "%s: empty image data", what);
    if (starts_with(data, size, "\xff\xd8\xff", 3)) return mt_media_decode_jpeg(data, size, what, max_pixels, out, err);
    if (starts_with(data, size, "\x89PNG\r\n\x1a\n", 8))
        return mt_media_decode_png(data, size, what, max_pixels, out, err);
    if (size >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
        return mt_media_decode_webp(data, size, what, max_pixels, out, err);

    const char *known = NULL;
    if (starts_with(data, size, "GIF8", 4)) known = "GIF";
    else if (starts_with(data, size, "BM", 2)) known = "BMP";
    else if (starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4)) known = "TIFF";
    if (known)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: %s images are not supported (use JPEG, PNG or WebP)", what,
                          known);
    char head[3 * 8 + 1] = "";
    for (size_t i = 0; i < size && i < 8; i++) snprintf(head + 3 * i, 4, "%02x ", data[i]);
    return mt_err_set(err, MT_ERR_FORMAT, "%s: not a JPEG, PNG or WebP image (starts with %s)", what, head);
}

mt_status mt_image_decode(const uint8_t *data, size_t size, const char *what, int64_t max_pixels, mt_image *out,
                          mt_err *err) {
    if (!what) what = "image";
    if (!out || (!data && size > 0) || max_pixels < 1)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: mt_image_decode needs data, an output and max_pixels >= 1",
                          what);
    mt_image img = {0};
    mt_status st = decode(data, size, what, max_pixels, &img, err);
    if (st) return st;
    if (!(img.name = mt_strdup(what))) {
        mt_image_free(&img);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
    }
    *out = img;
    return MT_OK;
}

mt_status mt_image_load(const char *path, int64_t max_pixels, mt_image *out, mt_err *err) {
    if (!path || max_pixels < 1)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "mt_image_load needs a path and max_pixels >= 1");
    /* No valid image of max_pixels is larger than its raw 16-bit RGBA samples (8 bytes a pixel) plus one PNG
     * filter byte a row and container overhead: 10 bytes a pixel and 1 MiB more bound every real file. */
    uint64_t mp = (uint64_t)max_pixels;
    size_t cap = mp > (SIZE_MAX - (1u << 20)) / 10 ? SIZE_MAX : (size_t)(mp * 10 + (1u << 20));
    char *data;
    size_t size;
    mt_status st = mt_file_read_all(path, cap, &data, &size, err);
    if (st) return st;
    st = mt_image_decode((const uint8_t *)data, size, path, max_pixels, out, err);
    mt_free(data);
    return st;
}

void mt_image_free(mt_image *img) {
    if (!img) return;
    mt_free(img->rgb);
    mt_free(img->name);
    *img = (mt_image){0};
}
