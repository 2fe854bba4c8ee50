/* base/arena: bump allocation for per-step scratch. A forward pass allocates its activations here and the caller
 * resets the arena afterwards, so the hot loop never calls malloc. Blocks grow geometrically and are kept across
 * resets. Every allocation is 64-byte aligned. */
#ifndef MT_ARENA_H
#define MT_ARENA_H

#include "base/base.h"

typedef struct mt_arena_block mt_arena_block;

typedef struct mt_arena {
    mt_arena_block *head; /* the block being filled; older blocks follow */
    size_t min_block;
    size_t peak;          /* most bytes ever live at once */
    size_t live;
} mt_arena;

typedef struct mt_arena_mark {
    mt_arena_block *block;
    size_t used;
    size_t live;
} mt_arena_mark;

void mt_arena_init(mt_arena *a, size_t min_block);
/* NULL when out of memory or when size overflows. */
void *mt_arena_alloc(mt_arena *a, size_t size);
mt_arena_mark mt_arena_save(const mt_arena *a);
void mt_arena_restore(mt_arena *a, mt_arena_mark m);
void mt_arena_reset(mt_arena *a);
void mt_arena_free(mt_arena *a);

#endif
