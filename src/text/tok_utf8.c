/* text/tok_utf8: UTF-8 validation and repair, the few Unicode properties the tokenizer needs, normalization
 * (utf8proc), and GPT-2's byte-to-unicode map.
 *
 * Well-formed UTF-8 (Unicode 15, table 3-7):
 *
 *   | code points        | byte 1 | byte 2 | byte 3 | byte 4 |
 *   |--------------------|--------|--------|--------|--------|
 *   | U+0000..U+007F     | 00..7F |        |        |        |
 *   | U+0080..U+07FF     | C2..DF | 80..BF |        |        |
 *   | U+0800..U+0FFF     | E0     | A0..BF | 80..BF |        |
 *   | U+1000..U+CFFF     | E1..EC | 80..BF | 80..BF |        |
 *   | U+D000..U+D7FF     | ED     | 80..9F | 80..BF |        |
 *   | U+E000..U+FFFF     | EE..EF | 80..BF | 80..BF |        |
 *   | U+10000..U+3FFFF   | F0     | 90..BF | 80..BF | 80..BF |
 *   | U+40000..U+FFFFF   | F1..F3 | 80..BF | 80..BF | 80..BF |
 *   | U+100000..U+10FFFF | F4     | 80..8F | 80..BF | 80..BF |
 *
 * A "maximal subpart" is the longest prefix of an ill-formed sequence that the table still allows; each one
 * becomes one U+FFFD, as Rust's from_utf8_lossy and the WHATWG decoder (JavaScript's TextDecoder) do.
 *
 * GPT-2's map (openai/gpt-2 encoder.py, bytes_to_unicode): the printable bytes 0x21..0x7E, 0xA1..0xAC and
 * 0xAE..0xFF stand for themselves; the other 68 bytes, in increasing order, become U+0100, U+0101, ...
 */
#include <string.h>
#include <utf8proc.h>

#include "text/text_int.h"

bool mt_tbuf_reserve(mt_tbuf *b, size_t extra) {
    size_t need;
    if (!mt_add_ok(b->len, extra, &need)) return false;
    need += 1; /* room for a NUL terminator */
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return false;
        cap *= 2;
    }
    char *p = mt_realloc(b->data, cap);
    if (!p) return false;
    b->data = p;
    b->cap = cap;
    return true;
}

bool mt_tbuf_append(mt_tbuf *b, const void *p, size_t n) {
    if (!mt_tbuf_reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return true;
}

/* Second-byte bounds per lead byte; the others are always 80..BF. */
static bool second_ok(uint8_t lead, uint8_t b) {
    switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return b >= 0x80 && b <= 0xBF;
    }
}

static size_t seq_len(uint8_t lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

/* How many bytes at s agree with the table (at most the sequence length). */
static size_t valid_prefix(const uint8_t *s, size_t n, size_t *want) {
    size_t len = seq_len(s[0]);
    *want = len;
    if (len <= 1) return len;
    size_t k = 1;
    if (k < n && second_ok(s[0], s[1])) {
        k = 2;
        while (k < len && k < n && s[k] >= 0x80 && s[k] <= 0xBF) k++;
    }
    return k;
}

size_t mt_utf8_valid_len(const uint8_t *s, size_t n) {
    if (n == 0) return 0;
    size_t want;
    size_t k = valid_prefix(s, n, &want);
    return (want && k == want) ? want : 0;
}

size_t mt_utf8_bad_len(const uint8_t *s, size_t n) {
    size_t want;
    size_t k = valid_prefix(s, n, &want);
    return k ? k : 1;
}

bool mt_utf8_is_partial(const uint8_t *s, size_t n) {
    size_t want;
    return n > 0 && valid_prefix(s, n, &want) == n && want > n;
}

uint32_t mt_utf8_cp(const uint8_t *s, size_t len) {
    switch (len) {
    case 1: return s[0];
    case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default:
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
               (s[3] & 0x3F);
    }
}

bool mt_utf8_is_valid(const char *str, size_t n) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = mt_utf8_valid_len(s + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

bool mt_utf8_sanitize(const char *str, size_t n, mt_tbuf *out) {
    const uint8_t *s = (const uint8_t *)str;
    out->len = 0;
    if (!mt_tbuf_reserve(out, n)) return false;
    size_t i = 0;
    while (i < n) {
        size_t k = s[i] < 0x80 ? 1 : mt_utf8_valid_len(s + i, n - i);
        if (k) {
            if (!mt_tbuf_append(out, s + i, k)) return false;
            i += k;
        } else {
            if (!mt_tbuf_append(out, "\xEF\xBF\xBD", 3)) return false;
            i += mt_utf8_bad_len(s + i, n - i);
        }
    }
    if (!mt_tbuf_reserve(out, 0)) return false;
    out->data[out->len] = 0;
    return true;
}

bool mt_unicode_is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool mt_unicode_is_word(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c == 0x200C || c == 0x200D) return true;
    /* Letters that are So but Alphabetic: circled, parenthesised and squared Latin letters. */
    if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189))
        return true;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC: return true;
    default: return false;
    }
}

/* ASCII text is left as it is by every normalization form, and is the common case. */
static bool all_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] >= 0x80) return false;
    return true;
}

static mt_status normalize_once(mt_tok_norm form, const char *s, size_t n, mt_tbuf *out, mt_err *err) {
    utf8proc_option_t opt = (utf8proc_option_t)form;
    utf8proc_ssize_t cap = (utf8proc_ssize_t)n + 1;
    utf8proc_int32_t *cps = NULL;
    for (;;) {
        size_t bytes;
        if (!mt_mul_ok((size_t)cap + 1, sizeof(utf8proc_int32_t), &bytes))
            return mt_err_set(err, MT_ERR_LIMIT, "normalizer: text of %zu bytes is too long", n);
        utf8proc_int32_t *p = mt_realloc(cps, bytes);
        if (!p) {
            mt_free(cps);
            return mt_err_set(err, MT_ERR_NOMEM, "normalizer: out of memory for %zu bytes of text", n);
        }
        cps = p;
        utf8proc_ssize_t got = utf8proc_decompose_custom((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, cps, cap,
                                                         opt, NULL, NULL);
        if (got < 0) {
            mt_free(cps);
            return mt_err_set(err, MT_ERR_INTERNAL, "normalizer: utf8proc: %s", utf8proc_errmsg(got));
        }
        if (got <= cap) {
            utf8proc_ssize_t len = utf8proc_reencode(cps, got, opt);
            if (len < 0) {
                mt_free(cps);
                return mt_err_set(err, MT_ERR_INTERNAL, "normalizer: utf8proc: %s", utf8proc_errmsg(len));
            }
            out->len = 0;
            bool ok = mt_tbuf_append(out, cps, (size_t)len);
            mt_free(cps);
            return ok ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "normalizer: out of memory");
        }
        cap = got;
    }
}

mt_status mt_unicode_normalize(const mt_tok_norm *forms, size_t n_forms, const char *s, size_t n, mt_tbuf *out,
                               mt_err *err) {
    out->len = 0;
    if (n_forms == 0 || all_ascii(s, n)) {
        return mt_tbuf_append(out, s, n) ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "normalizer: out of memory");
    }
    mt_tbuf tmp = {0};
    mt_status st = MT_OK;
    for (size_t i = 0; i < n_forms && st == MT_OK; i++) {
        if (i == 0) {
            st = normalize_once(forms[i], s, n, out, err);
        } else {
            mt_tbuf t = tmp;
            tmp = *out;
            *out = t;
            st = normalize_once(forms[i], tmp.data, tmp.len, out, err);
        }
    }
    mt_free(tmp.data);
    return st;
}

int mt_bytelevel_byte(uint32_t cp) {
    if (cp < 256) {
        uint8_t b = (uint8_t)cp;
        return ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) ? (int)b : -1;
    }
    if (cp < 256 + 33) return (int)(cp - 256);
    if (cp < 256 + 67) return (int)(cp - 256 - 33 + 0x7F);
    if (cp == 256 + 67) return 0xAD;
    return -1;
}
