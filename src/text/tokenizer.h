/* text/tokenizer: BPE tokenizers read from a Hugging Face tokenizer.json, giving the same ids as the Rust
 * `tokenizers` library that transformers uses: byte-level BPE (Qwen2, Qwen2.5-VL, Qwen3, Llama 3, DeepSeek V3,
 * GPT-OSS) and SentencePiece-style BPE over characters with byte fallback (Llama 2 / Vicuna, Gemma, Mistral).
 *
 *     mt_tokenizer *tok;
 *     if (mt_tokenizer_load("Qwen2.5-VL-3B-Instruct/tokenizer.json", &tok, &err) != MT_OK) ...
 *     int32_t *ids; size_t n;
 *     mt_tokenizer_encode(tok, "<|im_start|>user\nHi<|im_end|>", len, true, &ids, &n, &err);
 *     char *text; size_t text_len;
 *     mt_tokenizer_decode(tok, ids, n, false, &text, &text_len, &err);
 *     mt_free(ids); mt_free(text); mt_tokenizer_free(tok);
 *
 * Pipeline (tokenizers/src/tokenizer/mod.rs, encode_single_sequence), and what is accepted at each stage:
 *
 *   | stage            | tokenizer.json field | accepted                                                        |
 *   |------------------|----------------------|-----------------------------------------------------------------|
 *   | added tokens     | added_tokens         | id, content, special, lstrip, rstrip, single_word, normalized   |
 *   | normalizer       | normalizer           | NFC, NFD, NFKC, NFKD, Prepend, Replace (String or Regex),       |
 *   |                  |                      | Sequence of these, null                                         |
 *   | pre-tokenizer    | pre_tokenizer        | Split (Regex or String, all five behaviors, invert), Digits,    |
 *   |                  |                      | Metaspace (replacement, prepend_scheme, split), ByteLevel       |
 *   |                  |                      | (add_prefix_space, use_regex; last), Sequence, null             |
 *   | model            | model                | BPE: vocab, merges "a b" or ["a","b"], ignore_merges, unk_token,|
 *   |                  |                      | byte_fallback, fuse_unk; over bytes when ByteLevel comes last,  |
 *   |                  |                      | over characters otherwise                                       |
 *   | post-processor   | post_processor       | TemplateProcessing (single), BertProcessing, RobertaProcessing, |
 *   |                  |                      | ByteLevel, Sequence: applied when add_special_tokens is asked   |
 *   | decoder          | decoder              | byte-level: ByteLevel or null; otherwise Replace / Metaspace,   |
 *   |                  |                      | then ByteFallback, Fuse, Strip, in that order                   |
 *
 * Anything else gives MT_ERR_UNSUPPORTED naming the field; a malformed file gives MT_ERR_FORMAT naming the field.
 * mt_tokenizer_encode never adds BOS/EOS (transformers' add_special_tokens=False); mt_tokenizer_encode_with can.
 * Sentence pairs (TemplateProcessing's "pair", the $B of Bert / Roberta) are not encoded: chat templates, generation
 * and training all tokenize one sequence, so the pair template is read past.
 * tokenizer_config.json's clean_up_tokenization_spaces (true for Llama 3, false for Qwen), which transformers
 * applies after decoding, is not applied.
 *
 * SentencePiece's tokenizer.model loads into the same mt_tokenizer (text/spm.h: mt_tokenizer_load_spm) and encodes
 * as SentencePiece does; everything below that speaks of tokenizer.json then means the model's pieces.
 *
 * Behaviour that is mitten's own decision:
 * - Input that is not valid UTF-8 (Rust and JS take only valid strings) is encoded as if every maximal invalid
 *   subsequence (Unicode 15, section 3.9, "U+FFFD substitution of maximal subparts") were U+FFFD.
 * - `\s` and `\S` in tokenizer.json regexes mean Unicode White_Space, as in Oniguruma (which transformers' tokenizers
 *   uses) and Rust regex; PCRE2's own \s also matches U+180E, and JavaScript's adds U+FEFF and drops U+0085.
 * - Unicode tables: PCRE2's for \p{..} in regexes, utf8proc's for normalization.
 * - A run of "<0xXX>" tokens that is not valid UTF-8 decodes to one U+FFFD per byte, as Rust tokenizers'
 *   ByteFallback does (transformers.js substitutes per maximal subpart instead). Decoding an unknown id is an
 *   error here; tokenizers drops it.
 *
 * Any number of threads may encode and decode with one mt_tokenizer at once: after load it changes only in a memo
 * of which vocab tokens BPE leaves whole, filled in by idempotent atomic stores.
 */
#ifndef MT_TOKENIZER_H
#define MT_TOKENIZER_H

#include <stdbool.h>

#include "base/base.h"

typedef struct mt_tokenizer mt_tokenizer;

/* Loads tokenizer.json (at most MT_JSON_MAX_FILE bytes), and split_special_tokens from the tokenizer_config.json
 * beside it when there is one (a malformed one is MT_ERR_FORMAT naming it). */
mt_status mt_tokenizer_load(const char *tokenizer_json_path, mt_tokenizer **out, mt_err *err);
/* The same from JSON text in memory; `what` names it in messages. */
mt_status mt_tokenizer_load_json(const char *json, size_t len, const char *what, mt_tokenizer **out, mt_err *err);
void mt_tokenizer_free(mt_tokenizer *tok);

/* Encodes len bytes of text (NUL bytes are text). parse_special: special added tokens in the text become their
 * ids; when false they are encoded as plain text (transformers' split_special_tokens=True), while non-special
 * added tokens still match. A tokenizer whose tokenizer_config.json sets split_special_tokens encodes specials
 * as text whatever parse_special says, as transformers does in every encode (apply_chat_template's included).
 * *ids is allocated with mt_malloc (NULL when *n_ids is 0). */
mt_status mt_tokenizer_encode(const mt_tokenizer *tok, const char *text, size_t len, bool parse_special, int32_t **ids,
                              size_t *n_ids, mt_err *err);

/* Options of mt_tokenizer_encode_with; start from mt_tokenizer_encode_default_opts(). */
typedef struct mt_tokenizer_encode_opts {
    bool parse_special;      /* as in mt_tokenizer_encode; default true */
    bool add_special_tokens; /* wrap in the post-processor's ids (BOS / EOS; transformers' default); default false */
} mt_tokenizer_encode_opts;

mt_tokenizer_encode_opts mt_tokenizer_encode_default_opts(void);
/* mt_tokenizer_encode with options. */
mt_status mt_tokenizer_encode_with(const mt_tokenizer *tok, const char *text, size_t len,
                                   const mt_tokenizer_encode_opts *opts, int32_t **ids, size_t *n_ids, mt_err *err);

/* Decodes ids to UTF-8 text: model tokens through the byte-level inverse map, added tokens verbatim, special ones
 * dropped when skip_special. Byte sequences that are not valid UTF-8 become U+FFFD (maximal subparts), as
 * Rust's String::from_utf8_lossy does. *out is NUL-terminated, allocated with mt_malloc. An id outside
 * [0, vocab_size) or without a token gives MT_ERR_INVALID_ARG naming it. */
mt_status mt_tokenizer_decode(const mt_tokenizer *tok, const int32_t *ids, size_t n, bool skip_special, char **out,
                              size_t *out_len, mt_err *err);

/* The id of a token as written in tokenizer.json ("Ġthe", "<|im_end|>"), added tokens first; -1 when absent. */
int32_t mt_tokenizer_token_id(const mt_tokenizer *tok, const char *token);
/* The token of an id as written in tokenizer.json (added content first), *len bytes, not NUL-terminated and
 * pointing into tok; NULL for an id outside the vocab or without a token. */
const char *mt_tokenizer_id_to_token(const mt_tokenizer *tok, int32_t id, size_t *len);
/* Largest id + 1, counting added tokens. */
int64_t mt_tokenizer_vocab_size(const mt_tokenizer *tok);
/* tokenizer_config.json's split_special_tokens (false when the file or the key is absent). */
bool mt_tokenizer_splits_special(const mt_tokenizer *tok);
/* True when id is an added token marked special (decode's skip_special drops exactly these). */
bool mt_tokenizer_is_special(const mt_tokenizer *tok, int32_t id);

/* Streaming detokenizer for generation: push ids one at a time and get back only complete UTF-8 characters; bytes
 * of a character split across tokens are held until it completes (sp models: a run of "<0xXX>" tokens is held
 * until a token that is not one, since the run is judged whole). The concatenation of every piece and the flush
 * equals mt_tokenizer_decode of all the ids. The stream keeps tok, which must outlive it. */
typedef struct mt_detok_stream mt_detok_stream;

mt_status mt_detok_stream_new(const mt_tokenizer *tok, bool skip_special, mt_detok_stream **out, mt_err *err);
/* *piece (length *len, NUL-terminated, possibly empty) stays valid until the next call on the stream. */
mt_status mt_detok_stream_push(mt_detok_stream *s, int32_t id, const char **piece, size_t *len, mt_err *err);
/* Emits what is held back (an unfinished character becomes U+FFFD) and resets the stream. */
mt_status mt_detok_stream_flush(mt_detok_stream *s, const char **piece, size_t *len, mt_err *err);
void mt_detok_stream_free(mt_detok_stream *s);

#endif
