/* A tiny byte-level BPE tokenizer.json for the tokenizer's unit tests, built with cJSON so each test can change a
 * field. Ids are readable: byte b is id b (its GPT-2 character, so ' ' is "Ġ" = 32); merges give ids from 256 on;
 * added tokens have ids from 300 on.
 *
 *   | id  | token            | merge   | rank |     | id  | added token | flags                         |
 *   |-----|------------------|---------|------|     |-----|-------------|-------------------------------|
 *   | 256 | he               | h e     | 1    |     | 300 | <|end|>     | special                       |
 *   | 257 | ll               | l l     | 2    |     | 301 | <tool>      | -                             |
 *   | 258 | hell             | he ll   | 3    |     | 302 | <mask>      | lstrip, rstrip, single_word   |
 *   | 259 | hello            | hell o  | 4    |     | 303 | <|end|>xx   | special (longest match wins)  |
 *   | 260 | Ġh               | Ġ h     | 5    |
 *   | 261 | Ġhello           | Ġ hello | 6    |
 *   | 262 | aa               | a a     | 7    |
 *   | 263 | bc               | b c     | 0    |
 *   | 264 | ab               | a b     | 8    |
 *   | 265 | Ã© (bytes of é)  | Ã ©     | 9    |
 *
 * Normalizer NFC; pre-tokenizer ByteLevel(add_prefix_space=false, use_regex=true), i.e. GPT-2's regex; decoder
 * ByteLevel.
 */
#ifndef TEST_TOKENIZER_TINY_H
#define TEST_TOKENIZER_TINY_H

#include <cjson/cJSON.h>
#include <string.h>

#include <stdio.h>

#include "text/tokenizer.h"

/* GPT-2's character for byte b, as UTF-8. */
static inline void tiny_byte_char(int b, char out[4]) {
    unsigned cp;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) cp = (unsigned)b;
    else if (b <= 0x20) cp = 256u + (unsigned)b;
    else if (b <= 0xA0) cp = 256u + 33u + (unsigned)(b - 0x7F);
    else cp = 256u + 67u;
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
    }
}

static inline void tiny_added(cJSON *arr, int id, const char *content, bool special, bool strip, bool single_word) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "id", id);
    cJSON_AddStringToObject(t, "content", content);
    cJSON_AddBoolToObject(t, "single_word", single_word);
    cJSON_AddBoolToObject(t, "lstrip", strip);
    cJSON_AddBoolToObject(t, "rstrip", strip);
    cJSON_AddBoolToObject(t, "normalized", false);
    cJSON_AddBoolToObject(t, "special", special);
    cJSON_AddItemToArray(arr, t);
}

/* merges_as_pairs: write merges as ["a", "b"] (newer files) instead of "a b". */
static inline cJSON *tiny_tokenizer(bool merges_as_pairs) {
    cJSON *root = cJSON_CreateObject();
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    tiny_added(added, 300, "<|end|>", true, false, false);
    tiny_added(added, 301, "<tool>", false, false, false);
    tiny_added(added, 302, "<mask>", false, true, true);
    tiny_added(added, 303, "<|end|>xx", true, false, false);
    cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
    cJSON_AddStringToObject(norm, "type", "NFC");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", false);
    cJSON_AddBoolToObject(pre, "use_regex", true);
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    char c[4];
    for (int b = 0; b < 256; b++) {
        tiny_byte_char(b, c);
        cJSON_AddNumberToObject(vocab, c, b);
    }
    static const char *merged[][3] = {
        {"h", "e", "he"},  {"l", "l", "ll"}, {"he", "ll", "hell"}, {"hell", "o", "hello"}, {"Ġ", "h", "Ġh"},
        {"Ġ", "hello", "Ġhello"}, {"a", "a", "aa"}, {"b", "c", "bc"}, {"a", "b", "ab"}, {"Ã", "©", "Ã©"},
    };
    /* "b c" comes first in the list (rank 0), the rest keep table order. */
    static const int order[] = {7, 0, 1, 2, 3, 4, 5, 6, 8, 9};
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (size_t i = 0; i < 10; i++) {
        cJSON_AddNumberToObject(vocab, merged[i][2], 256 + (int)i);
        const char **m = merged[order[i]];
        if (merges_as_pairs) {
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(m[0]));
            cJSON_AddItemToArray(pair, cJSON_CreateString(m[1]));
            cJSON_AddItemToArray(merges, pair);
        } else {
            char line[64];
            snprintf(line, sizeof line, "%s %s", m[0], m[1]);
            cJSON_AddItemToArray(merges, cJSON_CreateString(line));
        }
    }
    return root;
}

/* Loads root (which it frees). */
static inline mt_status tiny_load(cJSON *root, mt_tokenizer **out, mt_err *err) {
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    mt_status st = mt_tokenizer_load_json(text, strlen(text), "tiny.json", out, err);
    cJSON_free(text);
    return st;
}

/* Replaces root.pre_tokenizer with the JSON text pre. */
static inline cJSON *tiny_with_pre(cJSON *root, const char *pre) {
    cJSON_ReplaceItemInObject(root, "pre_tokenizer", cJSON_Parse(pre));
    return root;
}

#endif
