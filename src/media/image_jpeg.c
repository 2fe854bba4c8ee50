/* media/image_jpeg: JPEG to RGB8 through libjpeg(-turbo), with the settings PIL uses, so pixels agree exactly.
 *
 * Reference: Pillow 9.4 src/libImaging/JpegDecode.c and src/PIL/JpegImagePlugin.py. PIL leaves libjpeg's
 * defaults alone outside draft mode: accurate integer IDCT (JDCT_ISLOW), fancy (triangle) chroma upsampling,
 * the colour space libjpeg guesses from JFIF / Adobe markers. It asks for:
 *
 *     | components | libjpeg output | PIL mode then convert("RGB")                                  |
 *     | ---------- | -------------- | ------------------------------------------------------------- |
 *     | 1          | JCS_GRAYSCALE  | "L": gray copied to R, G, B                                    |
 *     | 3          | JCS_RGB        | "RGB"                                                         |
 *     | 4          | JCS_CMYK       | "CMYK" read as "CMYK;I" (always Adobe-inverted), then cmyk2rgb |
 *
 * libjpeg's error_exit would call exit(); here it longjmps back with the message. A premature end of data is
 * only a warning to libjpeg (it pads with an EOI); PIL refuses truncated files, so that warning is an error too.
 * Other corrupt-data warnings are ignored, as in PIL. Progressive files are capped at MAX_SCANS scans, since a
 * crafted file with endless tiny scans costs CPU time without bound.
 */
#include <setjmp.h>
#include <stdio.h>

#include <jerror.h>
#include <jpeglib.h>

#include "media/media_int.h"

enum { MAX_SCANS = 1000 };

typedef struct jpeg_guard {
    struct jpeg_error_mgr pub; /* first, so that cinfo->err can be cast back */
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    int code; /* libjpeg's msg_code, or -1 for the scan cap */
    char msg[JMSG_LENGTH_MAX];
} jpeg_guard;

static void on_error(j_common_ptr cinfo) {
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    g->code = cinfo->err->msg_code;
    cinfo->err->format_message(cinfo, g->msg);
    longjmp(g->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) on_error(cinfo);
}

static void on_progress(j_common_ptr cinfo) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > MAX_SCANS) {
        jpeg_guard *g = (jpeg_guard *)cinfo->err;
        g->code = -1;
        snprintf(g->msg, sizeof g->msg, "more than %d scans", MAX_SCANS);
        longjmp(g->jump, 1);
    }
}

/* PIL's cmyk2rgb on inverted samples: with c' = 255 - c stored, nk = 255 - k' = k and each channel is
 * nk - round(c' * nk / 255) in PIL's MULDIV255 arithmetic. */
static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, int64_t width) {
    for (int64_t x = 0; x < width; x++, in += 4, out += 3) {
        int nk = in[3];
        for (int c = 0; c < 3; c++) {
            int ci = 255 - in[c];
            int t = ci * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[c] = (uint8_t)(v < 0 ? 0 : v);
        }
    }
}

mt_status mt_media_decode_jpeg(const uint8_t *data, size_t size, const char *what, int64_t max_pixels,
                               mt_image *out, mt_err *err) {
    struct jpeg_decompress_struct cinfo;
    jpeg_guard g;
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile row = NULL;

    cinfo.err = jpeg_std_error(&g.pub);
    g.pub.error_exit = on_error;
    g.pub.emit_message = on_message;
    g.progress.progress_monitor = on_progress;
    if (setjmp(g.jump)) {
        jpeg_destroy_decompress(&cinfo);
        mt_free(rgb);
        mt_free(row);
        if (g.code == JERR_BAD_PRECISION)
            return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: JPEG: %s (only 8-bit JPEG is handled)", what, g.msg);
        return mt_err_set(err, MT_ERR_FORMAT, "%s: corrupt or truncated JPEG: %s", what, g.msg);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &g.progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    int64_t w = cinfo.image_width, h = cinfo.image_height;
    int comps = cinfo.num_components;
    mt_status st = mt_media_check_size(w, h, max_pixels, "JPEG", what, err);
    if (!st && comps != 1 && comps != 3 && comps != 4)
        st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: JPEG with %d colour components (1, 3 or 4 are handled)", what,
                        comps);
    uint8_t *buf = NULL;
    if (!st) st = mt_media_alloc_rgb(w, h, what, &buf, err);
    rgb = buf;
    if (!st && comps == 4 && !(row = mt_malloc_array((size_t)w, 4)))
        st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for a JPEG row", what);
    if (st) {
        jpeg_destroy_decompress(&cinfo);
        mt_free(rgb);
        return st;
    }

    cinfo.out_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_start_decompress(&cinfo);
    if ((int64_t)cinfo.output_width != w || (int64_t)cinfo.output_height != h || cinfo.output_components != comps) {
        jpeg_destroy_decompress(&cinfo);
        mt_free(rgb);
        mt_free(row);
        return mt_err_set(err, MT_ERR_INTERNAL, "%s: libjpeg changed the output shape", what);
    }
    while ((int64_t)cinfo.output_scanline < h) {
        int64_t y = cinfo.output_scanline;
        uint8_t *dst = rgb + (size_t)y * (size_t)w * 3;
        JSAMPROW target = comps == 4 ? row : dst;
        if (jpeg_read_scanlines(&cinfo, &target, 1) != 1) {
            snprintf(g.msg, sizeof g.msg, "no data for row %lld", (long long)y);
            g.code = -1;
            longjmp(g.jump, 1);
        }
        if (comps == 4) {
            cmyk_row_to_rgb(row, dst, w);
        } else if (comps == 1) {
            /* Spread gray to RGB in place, from the right so no sample is overwritten before it is read. */
            for (int64_t x = w - 1; x >= 0; x--) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = dst[x];
        }
    }
    /* Everything PIL shows has been read; trailing bytes after the last row (even a missing EOI) do not matter. */
    jpeg_destroy_decompress(&cinfo);
    mt_free(row);
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return MT_OK;
}
