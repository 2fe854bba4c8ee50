/* base/arena: blocks in a list, newest first; reset rewinds to the oldest and keeps the memory. */
#include "base/arena.h"

struct mt_arena_block {
    mt_arena_block *next; /* older */
    mt_arena_block *prev; /* newer, kept after a restore for reuse */
    size_t cap, used;
    _Alignas(64) unsigned char data[];
};

void mt_arena_init(mt_arena *a, size_t min_block) {
    *a = (mt_arena){0};
    a->min_block = min_block ? min_block : (size_t)1 << 20;
}

static size_t round_up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Blocks of a few MiB and up (a vision tower's activations) come as huge pages: a first touch of 4 KiB pages faulted
 * on 4% of a 4096-patch encode's time in a VM (PERFORMANCE.md, session 14), once per 4 KiB. */
#define PAGES_FROM ((size_t)4 << 20)

static mt_arena_block *block_new(size_t cap) {
    size_t bytes = sizeof(mt_arena_block) + cap;
    return bytes >= PAGES_FROM ? mt_malloc_pages(bytes) : mt_malloc_aligned(bytes);
}

static void block_free(mt_arena_block *b) {
    size_t bytes = sizeof(mt_arena_block) + b->cap;
    if (bytes >= PAGES_FROM) mt_free_pages(b, bytes);
    else mt_free(b);
}

void *mt_arena_alloc(mt_arena *a, size_t size) {
    if (size > SIZE_MAX / 2) return NULL;
    size = round_up64(size ? size : 1);
    mt_arena_block *b = a->head;
    while (b && b->cap - b->used < size) {
        /* a newer, emptied block left by restore/reset may fit */
        if (b->prev && b->prev->used == 0) {
            b = b->prev;
            a->head = b;
            continue;
        }
        b = NULL;
    }
    if (!b) {
        size_t cap = MT_MAX(size, a->min_block);
        if (a->head && a->head->cap * 2 > cap && a->head->cap < ((size_t)1 << 40)) cap = a->head->cap * 2;
        b = block_new(cap);
        if (!b) return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        b->prev = NULL;
        if (a->head) {
            /* drop any emptied newer blocks: this one replaces them */
            mt_arena_block *n = a->head->prev;
            while (n) {
                mt_arena_block *nn = n->prev;
                block_free(n);
                n = nn;
            }
            a->head->prev = b;
        }
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    a->live += size;
    if (a->live > a->peak) a->peak = a->live;
    return p;
}

mt_arena_mark mt_arena_save(const mt_arena *a) {
    return (mt_arena_mark){a->head, a->head ? a->head->used : 0, a->live};
}

void mt_arena_restore(mt_arena *a, mt_arena_mark m) {
    mt_arena_block *b = a->head;
    while (b && b != m.block) {
        b->used = 0;
        b = b->next;
    }
    if (b) b->used = m.used;
    a->head = b ? b : a->head;
    if (!m.block) {
        /* rewind to the oldest block */
        while (a->head && a->head->next) a->head = a->head->next;
        if (a->head) a->head->used = 0;
    }
    a->live = m.live;
}

void mt_arena_reset(mt_arena *a) { mt_arena_restore(a, (mt_arena_mark){0}); }

void mt_arena_free(mt_arena *a) {
    mt_arena_block *b = a->head;
    while (b && b->prev) b = b->prev;
    while (b) {
        mt_arena_block *n = b->next;
        block_free(b);
        b = n;
    }
    a->head = NULL;
    a->live = 0;
}
