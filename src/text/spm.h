/* text/spm: SentencePiece's tokenizer.model (a serialized sentencepiece ModelProto, sentencepiece_model.proto of
 * google/sentencepiece), read into a tokenizer and written back from a vocabulary.
 *
 *     mt_tokenizer *tok;
 *     if (mt_tokenizer_load_spm("internlm2-chat-1_8b/tokenizer.model", &tok, &err) != MT_OK) ...
 *
 * The protobuf fields read (field number: meaning); every other field is skipped:
 *
 *   | message        | fields                                                                                   |
 *   |----------------|------------------------------------------------------------------------------------------|
 *   | ModelProto     | 1 pieces (repeated), 2 trainer_spec, 3 normalizer_spec, 5 denormalizer_spec              |
 *   | SentencePiece  | 1 piece (string), 2 score (float), 3 type (1 normal, 2 unknown, 3 control,              |
 *   |                | 4 user-defined, 5 unused, 6 byte)                                                        |
 *   | TrainerSpec    | 3 model_type (1 unigram, 2 bpe), 24 treat_whitespace_as_suffix, 35 byte_fallback,        |
 *   |                | 40..43 unk / bos / eos / pad id                                                          |
 *   | NormalizerSpec | 1 name, 2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces,          |
 *   |                | 5 escape_whitespaces                                                                     |
 *
 * Refused by name (MT_ERR_UNSUPPORTED): model types WORD and CHAR, treat_whitespace_as_suffix, a denormalizer with a
 * charsmap. Refused as malformed (MT_ERR_FORMAT): a truncated or ill-formed message, an empty or duplicate piece, a
 * score that is not finite, an unknown type, no unknown piece or two, byte pieces without byte_fallback or not all
 * 256 of them with it, a charsmap whose trie does not fit its blob.
 */
#ifndef MT_TEXT_SPM_H
#define MT_TEXT_SPM_H

#include <stdbool.h>

#include "base/base.h"
#include "text/tokenizer.h"

enum {
    MT_SPM_NORMAL = 1,
    MT_SPM_UNKNOWN = 2,
    MT_SPM_CONTROL = 3,
    MT_SPM_USER_DEFINED = 4,
    MT_SPM_UNUSED = 5,
    MT_SPM_BYTE = 6,
};
enum { MT_SPM_UNIGRAM = 1, MT_SPM_BPE = 2 };

#define MT_SPM_MAX_PIECES (1 << 21) /* the tokenizer's id limit (MT_TOK_MAX_ID) */
#define MT_SPM_MAX_PIECE_LEN 4096   /* bytes in one piece (MT_TOK_MAX_TOKEN_LEN) */

typedef struct mt_spm_piece {
    const char *s; /* len bytes, not NUL-terminated */
    uint32_t len;
    float score;
    uint8_t type; /* MT_SPM_* */
} mt_spm_piece;

typedef struct mt_spm_model {
    mt_spm_piece *pieces; /* [n_pieces], owned; the strings point into the parsed bytes */
    size_t n_pieces;
    int model_type;       /* MT_SPM_UNIGRAM or MT_SPM_BPE */
    bool byte_fallback;
    int32_t unk_id, bos_id, eos_id, pad_id; /* trainer_spec's, -1 when disabled */
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    const uint8_t *charsmap; /* precompiled_charsmap, into the parsed bytes; NULL when empty */
    size_t charsmap_len;
} mt_spm_model;

/* Parses len bytes of a ModelProto; `what` names it in messages. out's strings point into data, which must outlive
 * it; free it with mt_spm_model_free. */
mt_status mt_spm_parse(const uint8_t *data, size_t len, const char *what, mt_spm_model *out, mt_err *err);
void mt_spm_model_free(mt_spm_model *m);

/* Serializes m as a ModelProto (the fields above; trainer_spec and normalizer_spec always written) into *out,
 * allocated with mt_malloc. */
mt_status mt_spm_write(const mt_spm_model *m, uint8_t **out, size_t *out_len, mt_err *err);

/* Loads tokenizer.model, and the tokenizer_config.json beside it when there is one: its added_tokens_decoder (tokens
 * transformers' slow tokenizer splits the text on, as for tokenizer.json's added_tokens) and split_special_tokens. */
mt_status mt_tokenizer_load_spm(const char *path, mt_tokenizer **out, mt_err *err);
/* The same from a model in memory, without tokenizer_config.json. */
mt_status mt_tokenizer_load_spm_mem(const uint8_t *data, size_t len, const char *what, mt_tokenizer **out,
                                    mt_err *err);

#endif
