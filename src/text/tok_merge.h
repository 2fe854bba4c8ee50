/* text/tok_merge: BPE's merge loop (tok_merge.c), used by tok_bpe.c. */
#ifndef MT_TOK_MERGE_H
#define MT_TOK_MERGE_H

#include "text/text_int.h"

/* Merges the symbols ids[0..m) in place as BPE does and returns how many are left, or SIZE_MAX when out of memory
 * (ids is then left in an unspecified state). */
size_t mt_bpe_merge(const mt_tokenizer *tok, int32_t *ids, size_t m);

#endif
