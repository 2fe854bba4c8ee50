/* spm_check: compares mitten's SentencePiece tokenizer (tokenizer.model) with ids and decodes written by spm_ref.py
 * from SentencePiece itself. Exact equality.
 *
 * usage: spm_check MODEL REF_JSONL
 * Each line: encode with parse_special off (sp.encode matches no control piece) must give "ids"; decode of those
 * ids must give "decoded_hex" when none is the unknown id (SentencePiece writes " ⁇ " for it, transformers and
 * mitten the unk piece). Prints the first mismatches; exits 1 on any.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/file.h"
#include "base/json.h"
#include "text/spm.h"
#include "text/tokenizer.h"

static size_t unhex(const char *h, char *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: spm_check MODEL REF_JSONL\n");
        return 2;
    }
    mt_err err = {0};
    mt_tokenizer *tok;
    if (mt_tokenizer_load_spm(argv[1], &tok, &err)) {
        fprintf(stderr, "spm_check: %s\n", err.msg);
        return 1;
    }
    char *all;
    size_t len;
    if (mt_file_read_all(argv[2], MT_JSON_MAX_FILE, &all, &len, &err)) {
        fprintf(stderr, "spm_check: %s\n", err.msg);
        return 1;
    }
    int32_t unk = mt_tokenizer_token_id(tok, "<unk>");
    size_t lines = 0, failures = 0, decoded = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *hex = cJSON_GetObjectItem(j, "hex"), *ids = cJSON_GetObjectItem(j, "ids"),
                    *dec = cJSON_GetObjectItem(j, "decoded_hex");
        if (!cJSON_IsString(hex) || !cJSON_IsArray(ids) || !cJSON_IsString(dec)) {
            fprintf(stderr, "spm_check: %s line %zu is not {hex, ids, decoded_hex}\n", argv[2], lines + 1);
            return 1;
        }
        char *text = malloc(strlen(hex->valuestring) / 2 + 1), *want = malloc(strlen(dec->valuestring) / 2 + 1);
        size_t n = unhex(hex->valuestring, text), n_want = unhex(dec->valuestring, want);
        int32_t *got;
        size_t n_got;
        if (mt_tokenizer_encode(tok, text, n, false, &got, &n_got, &err)) {
            fprintf(stderr, "spm_check: line %zu: %s\n", lines + 1, err.msg);
            return 1;
        }
        size_t n_ref = (size_t)cJSON_GetArraySize(ids), k = 0;
        bool same = n_ref == n_got, has_unk = false;
        for (const cJSON *e = ids->child; e; e = e->next, k++) {
            if (k < n_got && got[k] != e->valueint) same = false;
            has_unk = has_unk || e->valueint == unk;
        }
        if (!same && failures++ < 5) {
            fprintf(stderr, "MISMATCH line %zu \"%.*s\"\n  sentencepiece:", lines + 1, (int)MT_MIN(n, 80), text);
            for (const cJSON *e = ids->child; e; e = e->next) fprintf(stderr, " %d", e->valueint);
            fprintf(stderr, "\n  mitten:       ");
            for (size_t i = 0; i < n_got; i++) fprintf(stderr, " %d", got[i]);
            fprintf(stderr, "\n");
        }
        if (same && !has_unk) {
            char *back;
            size_t n_back;
            if (mt_tokenizer_decode(tok, got, n_got, false, &back, &n_back, &err)) {
                fprintf(stderr, "spm_check: line %zu: %s\n", lines + 1, err.msg);
                return 1;
            }
            if ((n_back != n_want || memcmp(back, want, n_back)) && failures++ < 5)
                fprintf(stderr, "DECODE MISMATCH line %zu: sentencepiece \"%.*s\", mitten \"%.*s\"\n", lines + 1,
                        (int)MT_MIN(n_want, 80), want, (int)MT_MIN(n_back, 80), back);
            decoded++;
            mt_free(back);
        }
        mt_free(got);
        free(text);
        free(want);
        cJSON_Delete(j);
    }
    printf("spm_check %s: %zu texts, %zu decodes compared, %zu mismatches\n", argv[1], lines, decoded, failures);
    mt_free(all);
    mt_tokenizer_free(tok);
    return failures ? 1 : 0;
}
