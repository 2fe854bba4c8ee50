/* train/prepare: every sample of a data set as token ids, labels and image grids, ready to train. A sample the
 * labels or images reject is skipped with its line logged (or, strict, stops the run). */
#ifndef MT_TRAIN_PREPARE_H
#define MT_TRAIN_PREPARE_H

#include "models/model.h"
#include "train/dataset.h"
#include "train/labels.h"

typedef struct mt_prepared_sample {
    mt_sample_tokens tok;
    mt_image_input *media;     /* [tok.n_images] grid, kind and seconds_per_grid as prepared (no pixels) */
    const char *const *images; /* paths, borrowed from the data set */
    const cJSON *messages;     /* borrowed from the data set */
    const cJSON *fields;       /* the sample object of a GRPO prompt (mt_sample.fields), borrowed; else NULL */
    int64_t line;
} mt_prepared_sample;

typedef struct mt_prepared {
    mt_prepared_sample *samples;
    size_t n;
    mt_labels_stats stats;
} mt_prepared;

mt_status mt_prepare(const mt_model *m, const mt_dataset *ds, const mt_labels_opts *lo, bool strict,
                     mt_prepared **out, mt_err *err);
void mt_prepared_free(mt_prepared *p);
/* Image or video i of s decoded and preprocessed again into *in (*pixels mt_malloc'd, backing it); fails if its
 * grid is not the one prepared. */
mt_status mt_prepared_pixels(const mt_model *m, const mt_prepared_sample *s, int i, float **pixels, mt_image_input *in,
                             mt_err *err);

#endif
