/* train/dataset: what the file scanner (dataset.c) and the per-sample normaliser (dataset_norm.c) share. */
#ifndef MT_TRAIN_DATASET_INT_H
#define MT_TRAIN_DATASET_INT_H

#include "train/dataset.h"

/* One sample as the loader holds it: pub's pointers alias the owned fields below. */
typedef struct mt_ds_item {
    mt_sample pub;
    cJSON *msgs;
    cJSON *tools;  /* NULL when the sample has none */
    char **images; /* n_images paths, each mt_malloc'd */
    bool *videos;  /* [n_images]: path i is a video; NULL when none is */
    char *id;
    cJSON *fields; /* MT_DATASET_PREF_PROMPT: the sample object */
} mt_ds_item;

/* Turns the sample object obj into it->msgs, it->images and it->id, relative image paths joined to base_dir
 * (which is never NULL). Images are not looked at here. Returns MT_OK; MT_ERR_NOMEM, which fails the load; or the
 * code of a bad sample with *reason set and err->msg giving the detail without a file:line prefix. On any error
 * it holds nothing (mt_ds_item_clear has been called). */
mt_status mt_ds_normalize(const cJSON *obj, const char *base_dir, const mt_dataset_opts *o, mt_ds_item *it,
                          mt_dataset_reason *reason, mt_err *err);

/* The SFT sample object of one side (0 chosen, 1 rejected) of the preference pair obj, in *out (the caller deletes
 * it). MT_ERR_FORMAT with the detail (no file:line prefix) for a pair that is not one; MT_ERR_NOMEM. */
mt_status mt_ds_pref_side(const cJSON *obj, int side, cJSON **out, mt_err *err);

/* The SFT sample object of the GRPO prompt obj (dataset.h): its turns with an empty assistant turn appended. */
mt_status mt_ds_prompt_sample(const cJSON *obj, cJSON **out, mt_err *err);

/* Frees what it owns and zeroes it. */
void mt_ds_item_clear(mt_ds_item *it);

#endif
