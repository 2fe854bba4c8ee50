/* text/tok_merge: the merge loop of BPE on one word's symbols (tokenizers/src/models/bpe/word.rs, Word::merge_all).
 *
 * While some adjacent pair of symbols is in the merge table, the pair of lowest rank is merged, the leftmost one
 * among equals. Two ways to run that order, with the same result:
 *
 *   | way   | how                                                                   | cost                          |
 *   |-------|-----------------------------------------------------------------------|-------------------------------|
 *   | sweep | find the lowest rank r in an array of pair ranks, then merge every    | one pass over the word per    |
 *   |       | pair of rank r in one left-to-right pass; stop the pass early where a | distinct rank: best on short  |
 *   |       | merge makes a pair of rank below r (that pair goes first)             | words and on repetitive ones  |
 *   | heap  | symbols in a linked list, a min-heap of (rank, position) candidates,  | O(n log n): for long words    |
 *   |       | as tokenizers does; a candidate whose pair has changed is skipped     | where the sweep stops paying  |
 *
 * Why one pass may merge every pair of rank r: the ranks of distinct pairs differ, and a merged symbol is longer
 * than either part, so no merge makes another pair of rank r; pairs it makes of rank above r wait, and one below r
 * ends the pass, so each merge is the one the heap would pop next.
 *
 * A word starts with the sweep; once the passes have read more than SWEEP_BUDGET times its length, the heap
 * takes over from where the sweep left the symbols.
 */
#include "text/tok_merge.h"

#define SWEEP_BUDGET 4
#define STACK_SYMBOLS 64
#define NO_RANK MT_TOK_NO_RANK

/* A heap candidate: key = rank << 32 | position of the left symbol, and the pair it was made for. */
typedef struct cand {
    uint64_t key;
    int32_t left, right;
} cand;

static void sift_down(cand *h, size_t n, size_t i, cand c) {
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t best = l + 1 < n && h[l + 1].key < h[l].key ? l + 1 : l;
        if (c.key <= h[best].key) break;
        h[i] = h[best];
        i = best;
    }
    h[i] = c;
}

static void heap_push(cand *h, size_t *n, cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].key <= c.key) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static void push_pair(const mt_tokenizer *tok, const int32_t *ids, int32_t left, int32_t right, cand *h, size_t *nh) {
    uint32_t rank = mt_tok_merge_rank(tok, ids[left], ids[right]);
    if (rank != NO_RANK) heap_push(h, nh, (cand){(uint64_t)rank << 32 | (uint32_t)left, ids[left], ids[right]});
}

/* Finishes ids[0..m) with the heap, from the pair ranks the sweep has (rank[i]: the pair (i, i + 1)).
 * A merged-away symbol gets id -1, so a candidate is current exactly when both its ids are still in place. */
static size_t merge_heap(const mt_tokenizer *tok, int32_t *ids, size_t m, const uint32_t *rank) {
    int32_t *link = mt_malloc_array(m, 2 * sizeof(int32_t)); /* next[m], prev[m] */
    cand *h = mt_malloc_array(m, 2 * sizeof(cand));           /* m - 1 pairs, and each merge adds at most one */
    if (!link || !h) {
        mt_free(link);
        mt_free(h);
        return SIZE_MAX;
    }
    int32_t *next = link, *prev = link + m;
    size_t nh = 0;
    for (size_t i = 0; i < m; i++) {
        next[i] = i + 1 < m ? (int32_t)i + 1 : -1;
        prev[i] = (int32_t)i - 1;
        if (i + 1 < m && rank[i] != NO_RANK)
            h[nh++] = (cand){(uint64_t)rank[i] << 32 | (uint32_t)i, ids[i], ids[i + 1]};
    }
    for (size_t i = nh / 2; i-- > 0;) sift_down(h, nh, i, h[i]);
    while (nh) {
        cand c = h[0];
        sift_down(h, nh - 1, 0, h[nh - 1]);
        nh--;
        int32_t p = (int32_t)(uint32_t)c.key, q = next[p];
        if (ids[p] != c.left || q < 0 || ids[q] != c.right) continue;
        ids[p] = tok->merge_id[c.key >> 32];
        ids[q] = -1;
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        if (prev[p] >= 0) push_pair(tok, ids, prev[p], p, h, &nh);
        if (next[p] >= 0) push_pair(tok, ids, p, next[p], h, &nh);
    }
    size_t w = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) ids[w++] = ids[i];
    mt_free(link);
    mt_free(h);
    return w;
}

static uint32_t min_rank(const uint32_t *rank, size_t n) {
    uint32_t r = NO_RANK;
    for (size_t i = 0; i < n; i++) r = rank[i] < r ? rank[i] : r;
    return r;
}

/* The sweep on ids[0..m) with rank of room m; hands over to the heap past the budget. */
static size_t sweep(const mt_tokenizer *tok, int32_t *ids, size_t m, uint32_t *rank) {
    for (size_t i = 0; i + 1 < m; i++) rank[i] = mt_tok_merge_rank(tok, ids[i], ids[i + 1]);
    rank[m - 1] = NO_RANK; /* the last symbol has no pair, so a merge never starts there */
    size_t budget = SWEEP_BUDGET * m + 64, work = 0;
    while (m > 1) {
        uint32_t r = min_rank(rank, m - 1);
        if (r == NO_RANK) break;
        work += m;
        if (work > budget) return merge_heap(tok, ids, m, rank);
        /* In place: out[0..w) is done, the input from i on is untouched (w <= i). rank[w] of a copied symbol is
         * its old pair's, and is redone when its right neighbour turns out to be merged. */
        int32_t t = tok->merge_id[r];
        size_t w = 0, i = 0;
        bool stop = false;
        while (i < m) {
            if (stop || rank[i] != r) {
                ids[w] = ids[i];
                rank[w++] = rank[i++];
                continue;
            }
            ids[w] = t;
            if (w > 0) {
                rank[w - 1] = mt_tok_merge_rank(tok, ids[w - 1], t);
                stop = rank[w - 1] < r;
            }
            i += 2;
            rank[w] = i < m ? mt_tok_merge_rank(tok, t, ids[i]) : NO_RANK;
            stop = stop || rank[w] < r;
            w++;
        }
        m = w;
    }
    return m;
}

size_t mt_bpe_merge(const mt_tokenizer *tok, int32_t *ids, size_t m) {
    if (m < 2) return m;
    uint32_t rank_stack[STACK_SYMBOLS];
    if (m <= STACK_SYMBOLS) return sweep(tok, ids, m, rank_stack);
    uint32_t *rank = mt_malloc_array(m, sizeof(uint32_t));
    size_t got = rank ? sweep(tok, ids, m, rank) : SIZE_MAX;
    mt_free(rank);
    return got;
}
