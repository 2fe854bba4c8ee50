/* models/config: reading config.json as transformers 4.x and 5.x both write it, for part loaders.
 *
 *     | 4.x                                  | 5.x                          | read as        |
 *     |--------------------------------------|------------------------------|----------------|
 *     | rope_theta + rope_scaling{type|...}  | rope_parameters{rope_type,..}| mt_rope_cfg    |
 *     | torch_dtype                          | dtype                        | (informative,  |
 *     |                                      |                              |  name checked) |
 *     | in_chans                             | in_channels                  | an int         |
 *     | flat text fields                     | nested text_config           | the part's obj |
 *
 * A reader carries the first failure, so a part reads its fields as a list and checks once.
 */
#ifndef MT_MODELS_CONFIG_H
#define MT_MODELS_CONFIG_H

#include <cjson/cJSON.h>

#include "nn/rope.h"
#include "tensor/tensor.h"

typedef struct mt_cfg {
    const char *path; /* config.json, for messages */
    const char *what; /* "text_config", "vision_config" or "" */
    mt_err *err;
    mt_status st;
} mt_cfg;

int64_t mt_cfg_int(mt_cfg *r, const cJSON *o, const char *key, int64_t lo, int64_t hi);
int64_t mt_cfg_int_opt(mt_cfg *r, const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t dflt);
/* the first of two keys present (in_chans / in_channels), else dflt */
int64_t mt_cfg_int_either(mt_cfg *r, const cJSON *o, const char *a, const char *b, int64_t lo, int64_t hi,
                          int64_t dflt);
double mt_cfg_num_opt(mt_cfg *r, const cJSON *o, const char *key, double lo, double hi, double dflt);
bool mt_cfg_bool_opt(mt_cfg *r, const cJSON *o, const char *key, bool dflt);
const char *mt_cfg_str_opt(mt_cfg *r, const cJSON *o, const char *key, const char *dflt);
/* An integer list of at most cap values in [lo, hi]; returns the count. */
size_t mt_cfg_int_list(mt_cfg *r, const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out, size_t cap);
/* hidden_act of o (dflt when absent): an activation nn computes (mt_act_parse), else a failure listing them. */
mt_act mt_cfg_act(mt_cfg *r, const cJSON *o, const char *dflt);
/* torch_dtype (4.x) and dtype (5.x) of o, when present and not null, must name a dtype a checkpoint may hold. */
void mt_cfg_dtype(mt_cfg *r, const cJSON *o);
/* Records a failure naming the file and section, unless one is recorded already. */
void mt_cfg_fail(mt_cfg *r, mt_status code, const char *fmt, ...) MT_PRINTF(3, 4);

/* The rotary config of a text config: rope_parameters (5.x) or rope_theta + rope_scaling (4.x), with head_dim and
 * max_position_embeddings given, read as transformers 5.0 reads them (the rules and refusals are listed at its
 * definition in config.c). Checks it (mt_rope_cfg_check); failures name the block and the field. */
void mt_cfg_rope(mt_cfg *r, const cJSON *text, int64_t head_dim, int64_t max_positions, mt_rope_cfg *out);

/* The section object of key in cfg (text_config, vision_config), or cfg itself when key is NULL or the object is
 * absent and flat_ok. */
const cJSON *mt_cfg_section(const cJSON *cfg, const char *key, bool flat_ok);

#endif
