/* libFuzzer target for SentencePiece's tokenizer.model (text/spm.h): the protobuf reader, the tokenizer made of it
 * (the charsmap trie walked by the normalizer, BPE, unigram) and the writer.
 *
 * The input is a ModelProto. When mt_spm_parse accepts it: writing it back and parsing that gives the same model;
 * when the tokenizer loads it, a fixed text and the input's own bytes (as text) are encoded, every id is inside the
 * vocab, and the ids decode. Broken promises trap. Seeds: two tiny trained models (unigram with a charsmap of custom
 * rules and a user-defined piece; BPE with byte fallback).
 */
#include <string.h>

#include "text/spm.h"
#include "text/tokenizer.h"

static void encode_and_check(const mt_tokenizer *tok, const char *text, size_t len) {
    int32_t *ids;
    size_t n;
    mt_err err;
    if (mt_tokenizer_encode(tok, text, len, false, &ids, &n, &err) != MT_OK) return;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= mt_tokenizer_vocab_size(tok)) __builtin_trap();
    char *out;
    size_t out_len;
    if (mt_tokenizer_decode(tok, ids, n, false, &out, &out_len, &err) == MT_OK) mt_free(out);
    mt_free(ids);
}

static void round_trip(const mt_spm_model *m) {
    uint8_t *bytes;
    size_t len;
    mt_err err;
    mt_spm_model back;
    if (mt_spm_write(m, &bytes, &len, &err) != MT_OK) return;
    if (mt_spm_parse(bytes, len, "written", &back, &err) != MT_OK) __builtin_trap();
    if (back.n_pieces != m->n_pieces || back.model_type != m->model_type || back.byte_fallback != m->byte_fallback ||
        back.charsmap_len != m->charsmap_len || back.add_dummy_prefix != m->add_dummy_prefix)
        __builtin_trap();
    for (size_t i = 0; i < m->n_pieces; i++) {
        const mt_spm_piece *a = &m->pieces[i], *b = &back.pieces[i];
        if (a->len != b->len || memcmp(a->s, b->s, a->len) || a->type != b->type ||
            memcmp(&a->score, &b->score, sizeof a->score))
            __builtin_trap();
    }
    mt_spm_model_free(&back);
    mt_free(bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_spm_model m;
    mt_err err;
    if (mt_spm_parse(data, size, "fuzz.model", &m, &err) != MT_OK) return 0;
    round_trip(&m);
    mt_spm_model_free(&m);
    mt_tokenizer *tok;
    if (mt_tokenizer_load_spm_mem(data, size, "fuzz.model", &tok, &err) != MT_OK) return 0;
    static const char sample[] =
        "  Hello,\xEF\xBC\xA1\xEF\xBC\xA2 w\xEF\xAC\x81rld! 123 caf\xc3\xa9 <u> \xF0\x9F\x98\x80\n x";
    encode_and_check(tok, sample, sizeof sample - 1);
    encode_and_check(tok, (const char *)data, size < 512 ? size : 512);
    mt_tokenizer_free(tok);
    return 0;
}
