/* train/checkpoint: save and restore everything a run needs to continue exactly: trainable weights, AdamW
 * moments and step, and the trainer's own state (RNG streams, data cursor, epoch, loss history) as JSON.
 *
 * Usage:
 *     mt_checkpoint_save("run1", step, params, n, opt, state, 3, &err);           // keeps the newest 3
 *     char dir[4096];  int64_t found;
 *     mt_checkpoint_latest("run1", run_id, dir, sizeof dir, &found, &err);       // found = -1 when none
 *     cJSON *state;  int64_t step;
 *     mt_checkpoint_load(dir, params, n, opt, &state, &step, &err);             // caller cJSON_Deletes state
 *
 * Layout (names follow the HF Trainer's checkpoint-STEP folders; tensors are f32 safetensors, io/safetensors.h):
 *
 *     | file in OUT/checkpoint-STEP/ | content                                                              |
 *     | ---------------------------- | -------------------------------------------------------------------- |
 *     | model.safetensors            | each trainable tensor under its mt_param name, with its shape;       |
 *     |                              | __metadata__ {"format": "pt", "step": "STEP"}                        |
 *     | optimizer.safetensors        | "exp_avg/NAME" and "exp_avg_sq/NAME" for each parameter;             |
 *     |                              | __metadata__ {"optimizer": "adamw", "t": "<AdamW steps taken>"}      |
 *     | trainer_state.json           | the caller's JSON, as given; its "run_id" (a short name, or absent) |
 *     |                              | says which run wrote the checkpoint                                 |
 *
 * While being written the folder is OUT/.tmp-checkpoint-RUNID-STEP-PID/ (.tmp-checkpoint-STEP-PID for a run with no
 * id), which nothing reads.
 *
 * Ownership: a run removes only what it wrote - its own checkpoints beyond keep_last, its own temporary folders,
 * and in them only the files this module writes (a user's file keeps its folder). It never replaces a
 * checkpoint-STEP of another run, and resume picks only checkpoints of the run it continues.
 *
 * Atomicity: everything is written into the temporary sibling folder, each file fsynced, then the folder is
 * fsynced, renamed to checkpoint-STEP (atomically exchanged with an existing one of the same step) and the parent
 * fsynced. Only then are this run's checkpoints beyond its newest keep_last removed, with leftover temporary
 * folders of its crashed saves. A crash or an error at any point leaves every earlier checkpoint as it was, and a checkpoint-STEP
 * folder always holds a complete checkpoint.
 */
#ifndef MT_CHECKPOINT_H
#define MT_CHECKPOINT_H

#include <cjson/cJSON.h>

#include "train/optim.h"

/* Writes OUT/checkpoint-STEP (step >= 0), creating out_dir if it is missing (its parent must exist). opt may be
 * NULL (no optimizer file). state must be non-NULL; its "run_id" names the run (MT_ERR_IO when checkpoint-STEP
 * exists and another run wrote it). keep_last <= 0 keeps every checkpoint. Errors (MT_ERR_IO
 * naming the path and the system's reason, MT_ERR_INVALID_ARG for a bad parameter table, MT_ERR_NOMEM) remove
 * the temporary folder and leave the earlier checkpoints untouched. Failing to remove an old checkpoint is only
 * logged. */
mt_status mt_checkpoint_save(const char *out_dir, int64_t step, const mt_param *params, size_t n,
                             const mt_adamw *opt, const cJSON *state, int keep_last, mt_err *err);

/* The newest complete checkpoint of run run_id (NULL or "": checkpoints that record no run) in out_dir: path gets
 * "out_dir/checkpoint-STEP" and *step its STEP, or path "" and *step -1 when there is none. Only folders named
 * checkpoint-<digits> with all their files count; temporary folders are ignored. MT_ERR_IO when out_dir cannot be
 * read, MT_ERR_LIMIT when the path does not fit in cap. */
mt_status mt_checkpoint_latest(const char *out_dir, const char *run_id, char *path, size_t cap, int64_t *step,
                               mt_err *err);

/* Restores a checkpoint folder into params (data) and opt (moments and t; NULL skips the optimizer file), and
 * returns the trainer state (*state, the caller deletes it) and the saved step. Before anything is copied, every
 * file is validated: each parameter must be present once with dtype F32 and its exact shape, and there must be no
 * tensor the run does not train; a failure is MT_ERR_FORMAT (or MT_ERR_IO, MT_ERR_LIMIT from the readers) naming
 * the file and the tensor, and leaves params, opt and *state unchanged. */
mt_status mt_checkpoint_load(const char *ckpt_dir, const mt_param *params, size_t n, mt_adamw *opt, cJSON **state,
                             int64_t *step, mt_err *err);

#endif
