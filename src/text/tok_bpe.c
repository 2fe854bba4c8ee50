/* text/tok_bpe: BPE of one pre-tokenized word (tokenizers/src/models/bpe/model.rs): the symbols it starts from,
 * the merge loop (tok_merge.c), and the shortcuts around it.
 *
 * The word starts as one symbol per byte (byte-level) or per character (sp, with byte fallback and unk as in
 * initial_ids below); mt_bpe_merge then merges adjacent pairs by rank.
 *
 * SentencePiece-style words (a whole text, when no pre-tokenizer splits it) are first cut before each "▁" that
 * follows another character, unless a vocab token spans that place (mt_bpe_word).
 *
 * Two shortcuts skip the merging, both exact:
 * - most words of natural text are one vocab token that BPE leaves whole; which tokens those are is memoised per id
 *   (tok->whole) the first time an encode meets them;
 * - results for other short words are kept in a direct-mapped cache that lives for one encode call.
 */
#include <string.h>

#include "text/tok_merge.h"

#define CACHE_SLOTS_MAX 4096 /* power of two */
#define CACHE_KEY_MAX 22
#define CACHE_IDS_MAX 8
#define STACK_WORD 64 /* bytes of a word whose symbols fit on the stack */

typedef struct cache_entry {
    uint32_t hash;
    uint8_t key_len; /* 0 = empty */
    uint8_t n_ids;
    char key[CACHE_KEY_MAX];
    int32_t ids[CACHE_IDS_MAX];
} cache_entry;

struct mt_bpe_cache {
    size_t mask;
    cache_entry slot[];
};

bool mt_bpe_cache_new(mt_encoder *e, size_t text_len) {
    size_t slots = 64;
    while (slots < CACHE_SLOTS_MAX && slots * 16 < text_len) slots *= 2;
    e->cache = mt_calloc(1, sizeof(struct mt_bpe_cache) + slots * sizeof(cache_entry));
    if (e->cache) e->cache->mask = slots - 1;
    return e->cache != NULL;
}

void mt_bpe_cache_free(mt_encoder *e) {
    mt_free(e->cache);
    e->cache = NULL;
}

bool mt_encoder_push(mt_encoder *e, int32_t id) {
    if (e->n_ids == e->cap_ids) {
        size_t cap = e->cap_ids ? e->cap_ids * 2 : 256;
        int32_t *p = mt_realloc(e->ids, cap * sizeof(int32_t));
        if (!p || cap > SIZE_MAX / (2 * sizeof(int32_t))) {
            if (p) e->ids = p;
            return false;
        }
        e->ids = p;
        e->cap_ids = cap;
    }
    e->ids[e->n_ids++] = id;
    return true;
}

/* The symbols BPE starts from (tokenizers' BPE::merge_word): one per byte (byte-level) or per character (sp). A
 * unit the vocab lacks becomes its "<0xXX>" byte tokens under byte_fallback when the vocab has them all, else unk
 * (adjacent ones fused into one with fuse_unk), else nothing. As in tokenizers, byte-fallback tokens go out before
 * an unk still waiting to be fused. Returns the count, at most n. */
static size_t initial_ids(const mt_tokenizer *tok, const uint8_t *w, size_t n, int32_t *ids) {
    size_t m = 0, k;
    bool unk = false;
    for (size_t i = 0; i < n; i += k) {
        k = tok->sp && w[i] >= 0x80 ? mt_utf8_valid_len(w + i, n - i) : 1;
        if (!k) k = 1; /* encode repairs the text first, so this is only a guard */
        int32_t id = k == 1   ? tok->byte_id[w[i]]
                     : k <= 3 ? tok->char_id[mt_utf8_cp(w + i, k) - 0x80]
                              : mt_tok_index_get(&tok->by_name, tok->blob.data, (const char *)w + i, k);
        if (id >= 0) {
            if (unk) ids[m++] = tok->unk_id;
            unk = false;
            ids[m++] = id;
            continue;
        }
        bool all = tok->byte_fallback;
        for (size_t b = 0; b < k && all; b++) all = tok->fallback_id[w[i + b]] >= 0;
        if (all) {
            for (size_t b = 0; b < k; b++) ids[m++] = tok->fallback_id[w[i + b]];
            continue;
        }
        if (tok->unk_id < 0) continue;
        if (unk && !tok->fuse_unk) ids[m++] = tok->unk_id;
        unk = true;
    }
    if (unk) ids[m++] = tok->unk_id;
    return m;
}

static bool push_ids(mt_encoder *e, const int32_t *ids, size_t m) {
    for (size_t i = 0; i < m; i++)
        if (!mt_encoder_push(e, ids[i])) return false;
    return true;
}

static uint32_t hash_word(const uint8_t *w, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ w[i]) * 16777619u;
    return h;
}

static mt_status bpe_piece(mt_encoder *e, const uint8_t *w, size_t n) {
    const mt_tokenizer *tok = e->tok;
    int32_t vocab_id = n <= 1 ? -1
                       : tok->sp ? mt_tok_index_get(&tok->by_name, tok->blob.data, (const char *)w, n)
                                 : mt_tok_index_get(&tok->by_bytes, tok->blob.data, (const char *)w, n);
    uint8_t whole = vocab_id >= 0 ? __atomic_load_n(&tok->whole[vocab_id], __ATOMIC_RELAXED) : MT_WHOLE_NO;
    if (vocab_id >= 0 && (tok->ignore_merges || whole == MT_WHOLE_YES))
        return mt_encoder_push(e, vocab_id) ? MT_OK : mt_err_set(e->err, MT_ERR_NOMEM, "encode: out of memory");
    cache_entry *ce = NULL;
    uint32_t hash = 0;
    if (e->cache && n <= CACHE_KEY_MAX) {
        hash = hash_word(w, n);
        ce = &e->cache->slot[hash & e->cache->mask];
        if (ce->key_len == n && ce->hash == hash && memcmp(ce->key, w, n) == 0) {
            for (size_t i = 0; i < ce->n_ids; i++)
                if (!mt_encoder_push(e, ce->ids[i])) return mt_err_set(e->err, MT_ERR_NOMEM, "encode: out of memory");
            return MT_OK;
        }
    }
    size_t before = e->n_ids;
    int32_t stack_ids[STACK_WORD];
    int32_t *ids = n <= STACK_WORD ? stack_ids : mt_malloc_array(n, sizeof(int32_t));
    size_t m = ids ? mt_bpe_merge(tok, ids, initial_ids(tok, w, n, ids)) : SIZE_MAX;
    bool ok = m != SIZE_MAX && push_ids(e, ids, m);
    if (ids != stack_ids) mt_free(ids);
    if (!ok) return mt_err_set(e->err, MT_ERR_NOMEM, "encode: out of memory for a word of %zu bytes", n);
    size_t got = e->n_ids - before;
    if (whole == MT_WHOLE_UNKNOWN) {
        /* Every encode that gets here computes the same answer, so racing stores are harmless. */
        uint8_t v = got == 1 && e->ids[before] == vocab_id ? MT_WHOLE_YES : MT_WHOLE_NO;
        __atomic_store_n(&((mt_tokenizer *)tok)->whole[vocab_id], v, __ATOMIC_RELAXED);
    }
    if (ce && got <= CACHE_IDS_MAX) {
        ce->hash = hash;
        ce->key_len = (uint8_t)n;
        ce->n_ids = (uint8_t)got;
        memcpy(ce->key, w, n);
        if (got) memcpy(ce->ids, e->ids + before, got * sizeof(int32_t));
    }
    return MT_OK;
}

static bool is_meta(const uint8_t *p) { return p[0] == 0xE2 && p[1] == 0x96 && p[2] == 0x81; }

/* True when a vocab token could cover w[at - 1 .. at + 3), the "▁" at `at` after another character: one of
 * tok->sp_span written in w across that place. */
static bool spanned(const mt_tokenizer *tok, const uint8_t *w, size_t n, size_t at) {
    for (size_t k = 0; k < tok->n_sp_span; k++) {
        const mt_tok_str *t = &tok->vname[tok->sp_span[k]];
        const uint8_t *p = (const uint8_t *)tok->blob.data + t->off;
        for (size_t q = 1; q + 3 <= t->len; q++)
            if (is_meta(p + q) && q <= at && at - q + t->len <= n && memcmp(w + at - q, p, t->len) == 0) return true;
    }
    return false;
}

mt_status mt_bpe_word(mt_encoder *e, const uint8_t *w, size_t n) {
    const mt_tokenizer *tok = e->tok;
    if (!tok->sp_cut || n <= STACK_WORD) return bpe_piece(e, w, n);
    /* Llama 2 and Gemma 3 have no pre-tokenizer that splits words: a whole text is one word. Merging its pieces
     * apart gives the same ids (no merge crosses a cut), lets the memo and the cache serve each piece, and keeps
     * the heap small. */
    size_t start = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        if (w[i] != 0xE2 || !is_meta(w + i) || (i >= 3 && is_meta(w + i - 3))) continue;
        if (tok->n_sp_span && spanned(tok, w, n, i)) continue;
        mt_status st = bpe_piece(e, w + start, i - start);
        if (st) return st;
        start = i;
    }
    return bpe_piece(e, w + start, n - start);
}
