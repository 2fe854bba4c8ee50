/* train/trainable: which weights a run trains, their f32 master copies and gradient buffers, LoRA adapters.
 *
 * Setting up swaps each trained weight's module tensors (every use in the model's weight table: split qkv rows,
 * tied LM head) onto an f32 master copy with requires_grad and a gradient buffer, so the model's one forward
 * trains them. Freeing restores the model's original tensors.
 *
 *   | mode          | trained                                                          |
 *   |---------------|------------------------------------------------------------------|
 *   | full          | every weight of the chosen parts (vision tower, projector, LM)   |
 *   | LoRA (rank r) | adapters A [r, in], B [out, r] on the target linears of the LM,  |
 *   |               | plus every weight of the other chosen parts (e.g. the projector) |
 *
 * Targets match as PEFT matches a list: an entry equals the module name or a dotted suffix of it.
 * LoRA follows PEFT: A ~ kaiming_uniform(a = sqrt 5) = U(-1/sqrt(in), 1/sqrt(in)), B = 0, scale alpha / r, dropout
 * on the adapter's input; adapter tensors are named as PEFT saves them ("base_model.model.<module>.lora_A.weight").
 */
#ifndef MT_TRAIN_TRAINABLE_H
#define MT_TRAIN_TRAINABLE_H

#include <stdio.h>

#include "models/model.h"
#include "train/optim.h"

typedef struct mt_train_spec {
    bool vision, projector, language; /* parts trained (the LM by adapters when lora_rank > 0) */
    int lora_rank;                    /* 0: full fine-tuning of the chosen parts */
    float lora_alpha;
    float lora_dropout;
    const char *lora_targets;         /* comma-separated module names ("q_proj,v_proj") or "all-linear" */
    bool lora_all_parts;              /* adapters on matching linears of every part, as PEFT applies a config
                                         (merging someone's adapter); training puts them on the LM only */
    bool train_router;                /* MoE routers train with the LM (full) or get adapters (LoRA); default
                                         frozen, as routing drifts easily on small data */
    uint64_t seed;                    /* adapter initialisation */
    bool parts_given;                 /* the parts were chosen (--train, a resumed run); else
                                         mt_train_spec_default_parts picks the composition's */
} mt_train_spec;

mt_train_spec mt_train_spec_default(void); /* language model, full; LoRA alpha 2r when a rank is set later */
/* Unless spec->parts_given: the parts the model's composition trains by default (the LM, and the projector where
 * trains_projector_by_default); the vision tower stays frozen. Sets parts_given. true when it chose them. */
bool mt_train_spec_default_parts(mt_train_spec *spec, const mt_model *m);

typedef struct mt_trainable mt_trainable;

mt_status mt_trainable_setup(mt_model *m, const mt_train_spec *spec, mt_trainable **out, mt_err *err);
/* The parameters, for the optimizer and checkpoints (group: the mt_model_part of each). */
mt_param *mt_trainable_params(mt_trainable *t, size_t *n);
void mt_trainable_zero_grad(mt_trainable *t);
/* Sets a fresh dropout seed on every adapter from (seed, step). */
void mt_trainable_set_step(mt_trainable *t, uint64_t seed, int64_t step);
/* A table: part, tensors, parameters trained / total. */
void mt_trainable_print(const mt_trainable *t, FILE *f);
size_t mt_trainable_count(const mt_trainable *t);
bool mt_trainable_is_lora(const mt_trainable *t);
/* base true: the model runs as the checkpoint it was loaded from - its own weights in place of the masters, no
 * adapters - with no copy (GRPO's and DPO's reference policy); false: back to the weights being trained. */
void mt_trainable_use_base(mt_trainable *t, bool base);
void mt_trainable_free(mt_trainable *t);

/* The name PEFT gives the adapter tensor of weight w (A: which 0, B: which 1), with the module path of the current
 * transformers module tree (module_path) or the checkpoint's own module name. false when it does not fit. */
bool mt_lora_tensor_name(const mt_model *m, const mt_weight *w, bool module_path, int which, char *out, size_t cap);

#endif
