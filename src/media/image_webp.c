/* media/image_webp: still WebP (lossy VP8, lossless VP8L, either with alpha) to RGB8 through libwebp.
 *
 * Reference: Pillow 9.4 src/_webp.c and src/PIL/WebPImagePlugin.py. PIL decodes through WebPAnimDecoder with
 * default options: libwebp's default (fancy) chroma upsampling into non-premultiplied RGBA, then convert("RGB")
 * drops alpha. Decoding straight to MODE_RGB with the same default options gives the same R, G, B bytes.
 *
 *     | container           | chunks                  | handled                                  |
 *     | ------------------- | ----------------------- | ---------------------------------------- |
 *     | RIFF size "WEBP"    | VP8  / VP8L             | yes                                      |
 *     | RIFF size "WEBP"    | VP8X [ICCP] [ALPH] VP8  | yes (profile ignored, alpha dropped)     |
 *     | RIFF size "WEBP"    | VP8X ANIM ANMF...       | no: MT_ERR_UNSUPPORTED                   |
 *
 * WebPGetFeatures reads the size from the header before any pixel memory is allocated.
 */
#include <webp/decode.h>

#include "media/media_int.h"

static const char *status_text(VP8StatusCode s) {
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated data";
    default: return "unknown error";
    }
}

mt_status mt_media_decode_webp(const uint8_t *data, size_t size, const char *what, int64_t max_pixels,
                               mt_image *out, mt_err *err) {
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg))
        return mt_err_set(err, MT_ERR_INTERNAL, "%s: libwebp version mismatch", what);
    VP8StatusCode s = WebPGetFeatures(data, size, &cfg.input);
    if (s != VP8_STATUS_OK)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: corrupt or truncated WebP header: %s", what, status_text(s));
    if (cfg.input.has_animation)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: animated WebP is not supported", what);
    int64_t w = cfg.input.width, h = cfg.input.height;
    mt_status st = mt_media_check_size(w, h, max_pixels, "WebP", what, err);
    if (st) return st;
    uint8_t *rgb;
    st = mt_media_alloc_rgb(w, h, what, &rgb, err);
    if (st) return st;

    cfg.output.colorspace = MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = rgb;
    cfg.output.u.RGBA.stride = (int)(w * 3);
    cfg.output.u.RGBA.size = (size_t)(w * h * 3);
    s = WebPDecode(data, size, &cfg);
    WebPFreeDecBuffer(&cfg.output);
    if (s != VP8_STATUS_OK) {
        mt_free(rgb);
        return mt_err_set(err, s == VP8_STATUS_OUT_OF_MEMORY ? MT_ERR_NOMEM : MT_ERR_FORMAT,
                          "%s: corrupt or truncated WebP: %s", what, status_text(s));
    }
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return MT_OK;
}
