/* base/base64: decoding, strict (see base64.h). */
#include "base/base64.h"

static int digit(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

mt_status mt_base64_decode(const char *text, size_t n, const char *what, uint8_t **out, size_t *out_n, mt_err *err) {
    size_t body = n;
    while (body > 0 && n - body < 2 && text[body - 1] == '=') body--;
    if (body % 4 == 1)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: base64 of %zu characters is cut short", what, body);
    uint8_t *p = mt_malloc(body / 4 * 3 + 3);
    if (!p) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for %zu bytes of base64", what, n);
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < body; i++) {
        int d = digit((unsigned char)text[i]);
        if (d < 0) {
            mt_free(p);
            unsigned char c = (unsigned char)text[i];
            return c >= 0x20 && c < 0x7f
                       ? mt_err_set(err, MT_ERR_FORMAT, "%s: '%c' at offset %zu is not base64", what, c, i)
                       : mt_err_set(err, MT_ERR_FORMAT, "%s: byte 0x%02x at offset %zu is not base64", what, c, i);
        }
        acc = acc << 6 | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            p[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = p;
    *out_n = k;
    return MT_OK;
}
