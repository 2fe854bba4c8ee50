/* text_int: what the tokenizer's files share (loader, UTF-8, pre-tokenizer, BPE, encode, decode).
 *
 * Token strings live in one blob and are addressed by (offset, length) pairs. Per id:
 *
 *   | table       | holds                                                                                  |
 *   |-------------|----------------------------------------------------------------------------------------|
 *   | vname[id]   | the model token as written in tokenizer.json ("Ġthe"): merges and token_id look it up |
 *   | vbytes[id]  | byte-level: the raw bytes it stands for (" the"), for BPE and decoding; otherwise what  |
 *   |             | the decoder's per-token steps make of it ("▁the" -> " the"; "<0x0A>" -> one byte 0x0A)  |
 *   | added_of[id]| index into added[] when the id is an added token (decoded verbatim), else -1           |
 *   | flags[id]   | MT_TOK_F_* below                                                                       |
 *
 * Two kinds of model, told apart by the pre-tokenizer (sp below):
 *
 *   | kind         | pre-tokenizer       | BPE starts from                       | decoder                          |
 *   |--------------|---------------------|---------------------------------------|----------------------------------|
 *   | byte-level   | ... then ByteLevel  | one symbol per byte (byte_id)         | ByteLevel                        |
 *   | SentencePiece| no ByteLevel        | one symbol per character (by_name);   | Replace, ByteFallback, Metaspace,|
 *   | style (sp)   | (Metaspace, Split)  | "<0xXX>" per byte when byte_fallback  | Fuse, Strip (tok_decode.c)       |
 *
 * Byte-level BPE runs on raw bytes rather than on GPT-2's byte-to-unicode characters: the map is a bijection, so
 * merging bytes is the same as merging their characters, and encode never builds the mapped string.
 */
#ifndef MT_TEXT_INT_H
#define MT_TEXT_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/json.h"
#include "text/tokenizer.h"

#define MT_TOK_MAX_ID (1 << 21)   /* ids from here on are refused at load: they size the per-id tables */
#define MT_TOK_MAX_PRE 16         /* pre-tokenizer steps, counting those inside Sequences */
#define MT_TOK_MAX_TOKEN_LEN 4096 /* bytes in one vocab or added token */
#define MT_TOK_MAX_NORM 8         /* normalizer steps, counting those inside Sequences */
#define MT_TOK_MAX_SPAN 64 /* more such tokens than this and sp words are not cut */
#define MT_TOK_MAX_DEC 8          /* decoder steps */
#define MT_TOK_MAX_POST 64        /* ids the post-processor adds */
#define MT_TOK_CHAR_IDS 0xFF80    /* characters U+0080..U+FFFF, which sp models look up by table rather than by hash */

enum {
    MT_TOK_F_VOCAB = 1,     /* in model.vocab */
    MT_TOK_F_BYTELEVEL = 2, /* in model.vocab, and every character of it is in GPT-2's map */
    MT_TOK_F_SPECIAL = 4,   /* in added_tokens with special: true */
    MT_TOK_F_BYTE = 8,      /* "<0xXX>" under a ByteFallback decoder: vbytes is that one byte */
};

/* The one mutable table of a loaded tokenizer: a memo that encode fills in with relaxed atomic stores. Every
 * thread would store the same value, so concurrent encodes stay correct. */
enum { MT_WHOLE_UNKNOWN = 0, MT_WHOLE_YES = 1, MT_WHOLE_NO = 2 };

typedef struct mt_tok_str {
    uint32_t off, len;
} mt_tok_str;

/* A growable byte buffer. */
typedef struct mt_tbuf {
    char *data;
    size_t len, cap;
} mt_tbuf;

bool mt_tbuf_reserve(mt_tbuf *b, size_t extra);
bool mt_tbuf_append(mt_tbuf *b, const void *p, size_t n);

/* Open-addressing map from a byte string to an id. A slot keeps where its key lies in the blob and 32 bits of the
 * key's hash, so a probe reads the key bytes only when the hashes agree. */
typedef struct mt_tok_slot {
    uint32_t tag; /* high half of the hash */
    int32_t id;   /* -1 = empty */
    uint32_t off, len;
} mt_tok_slot;

typedef struct mt_tok_index {
    mt_tok_slot *slots;
    size_t mask;
} mt_tok_index;

bool mt_tok_index_init(mt_tok_index *ix, size_t n_keys);
void mt_tok_index_free(mt_tok_index *ix);
/* Inserts id under the string key of blob; an id already there under an equal string is replaced. */
void mt_tok_index_put(mt_tok_index *ix, const char *blob, mt_tok_str key, int32_t id);
/* The id under key[0..len), or -1. */
int32_t mt_tok_index_get(const mt_tok_index *ix, const char *blob, const char *key, size_t len);

/* Merge table slot: left id << 43 | right id << 22 | (rank + 1), one 8-byte word (ids < MT_TOK_MAX_ID = 2^21,
 * ranks < MT_TOK_MAX_MERGES); 0 = empty. The merged id of a rank is in merge_id[rank]. */
typedef uint64_t mt_tok_merge;
#define MT_TOK_MAX_MERGES ((1u << 22) - 1)
#define MT_TOK_NO_RANK UINT32_MAX

typedef struct mt_tok_added {
    mt_tok_str content; /* in blob, as written */
    mt_tok_str match;   /* what is searched for: content, normalized when the token is */
    mt_tok_str piece;   /* sp: content after the decoder's per-token steps */
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} mt_tok_added;

typedef enum {
    MT_SPLIT_REMOVED,
    MT_SPLIT_ISOLATED,
    MT_SPLIT_MERGED_PREV,
    MT_SPLIT_MERGED_NEXT,
    MT_SPLIT_CONTIGUOUS
} mt_split_behavior;

typedef enum { MT_PRE_SPLIT, MT_PRE_BYTELEVEL, MT_PRE_METASPACE } mt_pre_kind;
typedef enum { MT_PREPEND_ALWAYS, MT_PREPEND_FIRST, MT_PREPEND_NEVER } mt_prepend_scheme;

typedef struct mt_tok_pre {
    mt_pre_kind kind;
    pcre2_code *re; /* Split; ByteLevel with use_regex (GPT-2's pattern); Metaspace with split (the replacement) */
    mt_tok_str pattern; /* re's source text, for match errors */
    mt_split_behavior behavior;
    bool invert;
    bool add_prefix_space;     /* ByteLevel */
    char repl[5];              /* Metaspace: the replacement character, UTF-8, NUL-terminated */
    mt_prepend_scheme prepend; /* Metaspace */
} mt_tok_pre;

/* Normalization forms, as utf8proc option sets; 0 = none. */
typedef int mt_tok_norm;

typedef enum { MT_NORM_UNICODE, MT_NORM_PREPEND, MT_NORM_REPLACE } mt_norm_kind;

/* One normalizer step. Replace: every non-overlapping match of `from` (a literal, or re when set) becomes `to`. */
typedef struct mt_tok_nstep {
    mt_norm_kind kind;
    mt_tok_norm form; /* UNICODE */
    mt_tok_str from;  /* PREPEND: the prefix; REPLACE: the literal pattern */
    mt_tok_str to;    /* REPLACE */
    pcre2_code *re;   /* REPLACE with a Regex pattern */
    mt_tok_str pattern; /* re's source text, for match errors */
} mt_tok_nstep;

/* The decoder of an sp model, as tokenizers' decoders/{replace,metaspace,byte_fallback,fuse,strip}.rs run it, in the
 * only order accepted: per-token steps (Replace, Metaspace), then ByteFallback, then Fuse, then Strip. The per-token
 * steps are applied to every id at load and kept in vbytes / added[].piece; the first token of a decode, which a
 * Metaspace step treats apart, is redone by mt_tok_dec_piece. */
typedef struct mt_tok_dstep {
    bool metaspace;  /* Metaspace: from (its replacement) -> " ", and dropped from the first token when first */
    bool first;
    mt_tok_str from; /* Replace: literal pattern */
    mt_tok_str to;
} mt_tok_dstep;

typedef struct mt_tok_dec {
    mt_tok_dstep step[MT_TOK_MAX_DEC];
    size_t n_step;
    bool first_differs;  /* some Metaspace step has first set */
    bool byte_fallback;
    bool strip;          /* Strip after Fuse: on the whole text */
    uint32_t strip_cp;   /* the character stripped */
    size_t strip_start, strip_stop;
} mt_tok_dec;
struct mt_tokenizer {
    int32_t n_ids; /* largest id + 1 */
    mt_tbuf blob;
    mt_tok_str name; /* the path or name it was loaded from, for encode errors */
    mt_tok_str *vname, *vbytes; /* [n_ids] */
    int32_t *added_of;          /* [n_ids] */
    uint8_t *flags;             /* [n_ids] */
    uint8_t *whole;             /* [n_ids] MT_WHOLE_*: does BPE of this token's bytes give the token itself? */
    mt_tok_index by_name;       /* vocab by vname */
    mt_tok_index by_bytes;      /* byte-level vocab by vbytes */
    int32_t byte_id[256];       /* id of each single byte, -1 when the vocab lacks it */
    mt_tok_merge *merges;       /* [merge_mask + 1] */
    size_t merge_mask;
    int32_t *merge_id;          /* [number of merges] the merged id of each rank */
    bool ignore_merges;
    bool split_special; /* tokenizer_config.json's split_special_tokens: special tokens in text stay text */
    int32_t unk_id;             /* -1 without unk_token */
    bool sp;                    /* SentencePiece-style BPE over characters (see the table above) */
    bool sp_cut;                /* sp: BPE may run on the pieces of a word cut before each "▁" (tok_bpe.c) */
    int32_t sp_span[MT_TOK_MAX_SPAN]; /* sp: vocab tokens with "▁" after another character, which a cut must not split */
    size_t n_sp_span;
    bool byte_fallback, fuse_unk;
    int32_t fallback_id[256];   /* sp with byte_fallback: the id of "<0xXX>" per byte, -1 when absent */
    int32_t *char_id;           /* sp: [MT_TOK_CHAR_IDS] the id of each character U+0080..U+FFFF, -1 when absent */
    mt_tok_dec dec;             /* sp */
    mt_tok_added *added;
    size_t n_added;
    mt_tok_index added_ix[2];   /* added[] by match string, [0] raw-text tokens, [1] normalized ones */
    uint16_t *added_lens[2];    /* distinct match lengths of each index, longest first, 0-terminated */
    bool added_first[2][256];   /* bytes the tokens of each index start with */
    uint8_t *added_pair[2];     /* [8192] bit set of the first two bytes of those tokens, for a quick no */
    mt_tok_nstep norm[MT_TOK_MAX_NORM];
    size_t n_norm;
    int32_t post_ids[MT_TOK_MAX_POST]; /* add_special_tokens: post_ids[0, n_post_prefix) + ids + the rest */
    size_t n_post_prefix, n_post;
    mt_tok_pre pre[MT_TOK_MAX_PRE];
    size_t n_pre;
    /* SentencePiece models read from tokenizer.model (tok_spm.c, tok_spm_encode.c); spm is 0 for tokenizer.json */
    int spm;                    /* MT_SPM_UNIGRAM or MT_SPM_BPE */
    float *spm_score;           /* [n_ids] */
    uint8_t *spm_type;          /* [n_ids] MT_SPM_* */
    float spm_min_score, spm_max_score; /* over normal pieces, for unigram's unknown and user-defined scores */
    uint32_t spm_max_len;       /* bytes in the longest piece BPE or unigram may produce */
    uint16_t *spm_user_lens;    /* distinct lengths of user-defined pieces, longest first, 0-terminated */
    bool spm_dummy, spm_rm_ws, spm_escape; /* add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces */
    uint32_t *spm_trie;         /* the charsmap's double array [n_spm_trie], NULL without one */
    size_t n_spm_trie;
    char *spm_norm;             /* its replacement strings [n_spm_norm], and a NUL after them */
    size_t n_spm_norm;
};

/* tok_utf8.c */
/* Length of the valid UTF-8 sequence at s (at most n bytes available), or 0 when the bytes there are not one. */
size_t mt_utf8_valid_len(const uint8_t *s, size_t n);
/* Length of the maximal subpart at s that is a prefix of some valid sequence, at least 1 (the U+FFFD unit). */
size_t mt_utf8_bad_len(const uint8_t *s, size_t n);
/* True when s[0..n) is a proper prefix of a valid sequence: more bytes could complete it. */
bool mt_utf8_is_partial(const uint8_t *s, size_t n);
/* Decodes the code point of a valid sequence of length len. */
uint32_t mt_utf8_cp(const uint8_t *s, size_t len);
/* Copies src with every maximal invalid subpart replaced by U+FFFD. */
bool mt_utf8_sanitize(const char *src, size_t n, mt_tbuf *out);
bool mt_utf8_is_valid(const char *s, size_t n);
/* Unicode White_Space, Rust char::is_whitespace. */
bool mt_unicode_is_space(uint32_t cp);
/* Rust regex's \w: Alphabetic, marks, decimal digits, connector punctuation, join controls. */
bool mt_unicode_is_word(uint32_t cp);
/* Normalizes valid UTF-8 by the forms in order into out (cleared first). */
mt_status mt_unicode_normalize(const mt_tok_norm *forms, size_t n_forms, const char *s, size_t n, mt_tbuf *out,
                               mt_err *err);

/* tok_normalize.c */
/* Runs the tokenizer's normalizer steps on valid UTF-8 into out (cleared first); tmp is scratch. */
mt_status mt_tok_normalize(const mt_tokenizer *tok, const char *s, size_t n, mt_tbuf *out, mt_tbuf *tmp, mt_err *err);
/* The first occurrence of pat[0..pn) in s[0..n), or NULL (also for an empty pat). */
const char *mt_tok_find(const char *s, size_t n, const char *pat, size_t pn);
/* Appends s with every non-overlapping occurrence of the literal `from` replaced by `to`. */
bool mt_tok_replace_literal(const char *s, size_t n, const char *from, size_t from_len, const char *to, size_t to_len,
                            mt_tbuf *out);
/* The byte GPT-2's map sends to code point cp, or -1 when cp stands for no byte. */
int mt_bytelevel_byte(uint32_t cp);

/* tok_pretok.c */
typedef struct mt_tok_loader mt_tok_loader;
/* Compiles the len bytes of a tokenizer.json regex (Oniguruma syntax) or, when literal, a plain string
 * (pattern[len] is 0), and keeps its text in the blob (*text) for match errors. step names the normalizer or
 * pre-tokenizer step in errors. */
mt_status mt_pretok_compile(mt_tok_loader *L, const char *step, const char *pattern, size_t len, bool literal,
                            pcre2_code **out, mt_tok_str *text);
mt_status mt_pretok_gpt2_regex(mt_tok_loader *L, pcre2_code **out, mt_tok_str *text);
/* MT_ERR_LIMIT for a match that PCRE2 gave up on (rc < 0, its match or depth limit on a piece of n bytes), naming
 * the tokenizer, the step and its pattern. */
mt_status mt_tok_match_failed(const mt_tokenizer *tok, const char *step, mt_tok_str pattern, int rc, size_t n,
                              mt_err *err);

/* The per-call state of encode: output ids, a word cache, scratch. */
typedef struct mt_encoder mt_encoder;
/* Runs pre-tokenizer steps [step, n_pre) on one piece and hands each final word to mt_bpe_word. */
mt_status mt_pretok_run(mt_encoder *e, size_t step, const char *s, size_t n);

/* tok_decode.c */
/* Appends what the sp decoder's per-token steps make of token s[0..n) (first: it is the first token decoded). */
bool mt_tok_dec_piece(const mt_tokenizer *tok, const char *s, size_t n, bool first, mt_tbuf *out);

/* tok_load.c, tok_config.c: reading tokenizer.json */
struct mt_tok_loader {
    mt_tokenizer *tok;
    const char *path;
    mt_err *err;
};

mt_status mt_tok_blob_add(mt_tok_loader *L, const char *s, size_t n, mt_tok_str *out);
/* A string of the parsed tokenizer.json into the blob as its bytes, U+0000 included (base/json). */
mt_status mt_tok_blob_add_json(mt_tok_loader *L, const char *s, mt_tok_str *out);
/* Compiles a pattern string of the parsed tokenizer.json, U+0000 included. */
mt_status mt_tok_compile_json(mt_tok_loader *L, const char *step, const char *pattern, bool literal, pcre2_code **out,
                             mt_tok_str *text);
mt_status mt_tok_read_normalizer(mt_tok_loader *L, const cJSON *n, int depth);
mt_status mt_tok_read_pre(mt_tok_loader *L, const cJSON *p, int depth);
/* Decides byte-level or sp from the pre-tokenizer, checks the layout and reads the decoder. */
mt_status mt_tok_read_decoder(mt_tok_loader *L, const cJSON *root);
/* Reads post_processor; needs the vocab and added tokens. */
mt_status mt_tok_read_post(mt_tok_loader *L, const cJSON *p, int depth);

/* tok_bpe.c */
struct mt_encoder {
    const mt_tokenizer *tok;
    pcre2_match_data *md;
    int32_t *ids;
    size_t n_ids, cap_ids;
    struct mt_bpe_cache *cache;
    mt_tbuf scratch; /* add_prefix_space copies */
    bool at_origin;  /* the piece being handled starts at byte 0 of the text (Metaspace prepend_scheme first) */
    mt_err *err;
};

mt_status mt_bpe_word(mt_encoder *e, const uint8_t *w, size_t n);
bool mt_encoder_push(mt_encoder *e, int32_t id);
/* A word cache sized for text_len bytes of input. */
bool mt_bpe_cache_new(mt_encoder *e, size_t text_len);
void mt_bpe_cache_free(mt_encoder *e);

/* tok_spm_encode.c: normalizes s[0..n) as SentencePiece does (into norm, scratch) and pushes its ids. */
mt_status mt_spm_encode(mt_encoder *e, const char *s, size_t n, mt_tbuf *norm);

/* tok_index.c: the merge table */
mt_status mt_tok_merges_init(mt_tokenizer *tok, size_t n_merges, mt_err *err);
void mt_tok_merges_put(mt_tokenizer *tok, int32_t left, int32_t right, uint32_t rank, int32_t id);
/* The rank of the pair, MT_TOK_NO_RANK when it is not in the table. */
uint32_t mt_tok_merge_rank(const mt_tokenizer *tok, int32_t left, int32_t right);

#endif
