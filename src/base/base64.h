/* base/base64: standard base64 (RFC 4648 section 4), as data: URLs carry images. */
#ifndef MT_BASE64_H
#define MT_BASE64_H

#include "base/base.h"

/* Decodes text [n] into *out (mt_malloc'd, *out_n bytes). Padding is optional; whitespace is not allowed (data:
 * URLs have none). MT_ERR_FORMAT names the first bad character's offset; what names the text in messages. */
mt_status mt_base64_decode(const char *text, size_t n, const char *what, uint8_t **out, size_t *out_n, mt_err *err);

#endif
