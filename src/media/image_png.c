/* media/image_png: PNG to RGB8 through libpng, giving the pixels of PIL's Image.open(f).convert("RGB").
 *
 * Reference: Pillow 9.4 src/PIL/PngImagePlugin.py (_MODES), src/libImaging/Unpack.c, Convert.c, Palette.c.
 * libpng only unpacks sub-byte samples (png_set_packing, values kept) and de-interlaces; every other step is
 * done here, the way PIL does it:
 *
 *     | colour type (bit depth) | PIL mode, rawmode    | RGB here                               |
 *     | ----------------------- | -------------------- | -------------------------------------- |
 *     | gray (1)                | "1"                  | 0 or 255                               |
 *     | gray (2, 4, 8)          | "L", "L;2" "L;4" "L" | v * 0x55, v * 0x11, v                  |
 *     | gray (16)               | "I", "I;16B"         | min(v, 255): PIL's I -> RGB clips      |
 *     | palette (1, 2, 4, 8)    | "P"                  | PLTE[v]; past PLTE: (v, v, v)          |
 *     | gray+alpha (8, 16)      | "LA" / "RGBA"        | high byte of gray, alpha dropped       |
 *     | RGB (8, 16)             | "RGB"                | high byte of each sample               |
 *     | RGBA (8, 16)            | "RGBA"               | high byte of each sample, alpha dropped |
 *
 * tRNS, gAMA, sRGB and iCCP change nothing (PIL's convert ignores them). Past-PLTE indices come out gray because
 * PIL's palette starts as a gray ramp and PLTE overwrites its first entries.
 *
 * The IHDR size is read from the bytes before libpng sees them, so an oversized image costs nothing. libpng's
 * errors longjmp back here with their message; its warnings are ignored.
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

#include "media/media_int.h"

typedef struct png_reader {
    const uint8_t *data;
    size_t size, pos;
    char msg[256];
} png_reader;

static void on_read(png_structp png, png_bytep out, size_t n) {
    png_reader *r = png_get_io_ptr(png);
    if (n > r->size - r->pos) png_error(png, "unexpected end of data");
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

static void on_error(png_structp png, png_const_charp msg) {
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->msg, sizeof r->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One decoded row (after packing) to RGB8. pal is the 256-entry palette, used for colour type 3 only. */
static void row_to_rgb(const uint8_t *in, uint8_t *out, int64_t w, int type, int depth, const uint8_t *pal) {
    switch (type) {
    case PNG_COLOR_TYPE_GRAY:
        for (int64_t x = 0; x < w; x++) {
            unsigned v;
            if (depth == 16) v = in[2 * x] ? 255 : in[2 * x + 1];
            else if (depth == 1) v = in[x] ? 255 : 0;
            else if (depth == 2) v = in[x] * 0x55u;
            else if (depth == 4) v = in[x] * 0x11u;
            else v = in[x];
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = (uint8_t)v;
        }
        break;
    case PNG_COLOR_TYPE_PALETTE:
        for (int64_t x = 0; x < w; x++) memcpy(out + 3 * x, pal + 3 * in[x], 3);
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: {
        int step = depth == 16 ? 4 : 2;
        for (int64_t x = 0; x < w; x++) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[step * x];
        break;
    }
    default: { /* RGB, RGBA */
        int ch = type == PNG_COLOR_TYPE_RGB ? 3 : 4, bytes = depth == 16 ? 2 : 1;
        for (int64_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) out[3 * x + c] = in[(x * ch + c) * bytes];
        break;
    }
    }
}

mt_status mt_media_decode_png(const uint8_t *data, size_t size, const char *what, int64_t max_pixels,
                              mt_image *out, mt_err *err) {
    if (size < 8 + 8 + 13) return mt_err_set(err, MT_ERR_FORMAT, "%s: truncated PNG (%zu bytes)", what, size);
    if (be32(data + 8) != 13 || memcmp(data + 12, "IHDR", 4) != 0)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: corrupt PNG: the first chunk is not a 13-byte IHDR", what);
    mt_status st = mt_media_check_size(be32(data + 16), be32(data + 20), max_pixels, "PNG", what, err);
    if (st) return st;

    png_reader rd = {data, size, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &rd, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory starting libpng", what);
    }
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile raw = NULL;
    uint8_t **volatile rows = NULL;
    volatile mt_status fail = MT_ERR_FORMAT;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        mt_free(rgb);
        mt_free(raw);
        mt_free(rows);
        if (fail != MT_ERR_FORMAT) return fail;
        return mt_err_set(err, MT_ERR_FORMAT, "%s: corrupt or truncated PNG: %s", what, rd.msg);
    }
    png_set_read_fn(png, &rd, on_read);
    /* max_pixels is the limit that matters; libpng's default of a million columns would refuse a 1 x 2M strip. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);
    png_uint_32 pw, ph;
    int depth, type, interlace;
    png_get_IHDR(png, info, &pw, &ph, &depth, &type, &interlace, NULL, NULL);
    int64_t w = pw, h = ph;

    uint8_t pal[256 * 3];
    for (int i = 0; i < 256; i++) pal[3 * i] = pal[3 * i + 1] = pal[3 * i + 2] = (uint8_t)i;
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp plte;
        int n = 0;
        png_get_PLTE(png, info, &plte, &n);
        for (int i = 0; i < n && i < 256; i++) {
            pal[3 * i] = plte[i].red;
            pal[3 * i + 1] = plte[i].green;
            pal[3 * i + 2] = plte[i].blue;
        }
    }
    if (depth < 8) png_set_packing(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);

    uint8_t *buf = NULL;
    st = mt_media_alloc_rgb(w, h, what, &buf, err);
    rgb = buf;
    /* A plain file is read a row at a time; Adam7 needs every raw row at once. */
    size_t raw_rows = passes > 1 ? (size_t)h : 1, raw_size;
    if (!st && (!mt_mul_ok(rowbytes, raw_rows, &raw_size) || !(raw = mt_malloc(raw_size))))
        st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for PNG rows", what);
    if (!st && passes > 1 && !(rows = mt_malloc_array(raw_rows, sizeof *rows)))
        st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for PNG rows", what);
    if (st) {
        fail = st;
        png_longjmp(png, 1);
    }
    size_t out_stride = (size_t)w * 3;
    if (passes > 1) {
        for (int64_t y = 0; y < h; y++) rows[y] = raw + (size_t)y * rowbytes;
        png_read_image(png, rows);
        for (int64_t y = 0; y < h; y++) row_to_rgb(rows[y], rgb + (size_t)y * out_stride, w, type, depth, pal);
    } else {
        for (int64_t y = 0; y < h; y++) {
            png_read_row(png, raw, NULL);
            row_to_rgb(raw, rgb + (size_t)y * out_stride, w, type, depth, pal);
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    mt_free(raw);
    mt_free(rows);
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return MT_OK;
}
