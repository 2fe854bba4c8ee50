/* train/export: what a run leaves behind - a Hugging Face model folder and, for LoRA, a PEFT adapter folder.
 *
 *   | folder        | files                                                                               |
 *   |---------------|-------------------------------------------------------------------------------------|
 *   | OUT/model/    | the base folder's config, tokenizer, template and processor files, copied; weights  |
 *   |               | (model.safetensors, or shards + index) with trained tensors from the f32 masters and |
 *   |               | LoRA folded in (W + alpha/r B A), each in the base checkpoint's dtype                |
 *   | OUT/adapter/  | adapter_config.json and adapter_model.safetensors, as PEFT saves them (LoRA only):  |
 *   |               | the adapters, and the weights trained in full beside them (InternVL's projector)    |
 *   |               | whole, with their modules in modules_to_save                                        |
 *
 * Both are written file by file atomically; a failure names the path and leaves earlier files as they were.
 */
#ifndef MT_TRAIN_EXPORT_H
#define MT_TRAIN_EXPORT_H

#include "models/model.h"
#include "train/trainable.h"

/* The model as it is now (trained weights read from the module tensors, adapters folded in) into dir (created,
 * with any missing parents). */
mt_status mt_export_model(const mt_model *m, const char *dir, mt_err *err);
/* The model's LoRA adapters into dir, with spec's rank, alpha, dropout and targets in adapter_config.json. */
mt_status mt_export_adapter(const mt_model *m, const mt_train_spec *spec, const char *dir, mt_err *err);
/* Fills spec (rank, alpha, dropout; targets copied into the caller's buffer) from dir/adapter_config.json. */
mt_status mt_adapter_read_config(const char *dir, mt_train_spec *spec, char *targets, size_t cap, mt_err *err);
/* The parts whose weights dir/adapter_model.safetensors holds whole (PEFT's modules_to_save: "base_model.model."
 * + the module-tree tensor name), set in spec so that mt_trainable_setup gives them f32 copies to load into; a
 * language-model weight held whole is refused. */
mt_status mt_adapter_saved_parts(const mt_model *m, const char *dir, mt_train_spec *spec, mt_err *err);
/* Copies dir/adapter_model.safetensors into the model's adapters, and its whole weights into their f32 copies;
 * every adapter must be there with its shape, and every tensor of the file must be taken. spec: as given to
 * mt_trainable_setup. */
mt_status mt_adapter_load(const mt_model *m, const mt_train_spec *spec, const char *dir, mt_err *err);

#endif
