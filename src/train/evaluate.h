/* train/evaluate: exact-match generation on held-out samples. The prompt is the sample's own token ids up to its
 * last supervised span (so it is byte for byte what training saw, images included); the model answers greedily
 * through the engine `mitten run` uses, and the answer counts when its text equals the span's text (special tokens
 * left out, surrounding whitespace trimmed). */
#ifndef MT_TRAIN_EVALUATE_H
#define MT_TRAIN_EVALUATE_H

#include "models/model.h"
#include "train/prepare.h"

/* *matched of *total samples answered exactly; at most max_new_tokens per answer. Samples whose last span holds
 * an image are not counted. */
mt_status mt_eval_exact_match(const mt_model *m, const mt_prepared *eval, int64_t max_new_tokens, int n_threads,
                              int64_t *matched, int64_t *total, mt_err *err);

#endif
