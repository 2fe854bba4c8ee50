/* train/run_dir: what a training run may do with its output folder, and what it records to be resumed safely.
 *
 * A new run writes only into a folder that is new or empty (as HF Trainer and LLaMA-Factory refuse a non-empty
 * output_dir) unless told to write into it anyway; it never deletes what it did not write (train/checkpoint.h).
 * While a run or a resume works in a folder it holds an exclusive lock on it, so two runs cannot interleave. The
 * run's id, absolute paths and a fingerprint of each data file go into train_args.json, so a resume from anywhere
 * finds its files and notices when the data changed.
 */
#ifndef MT_TRAIN_RUN_DIR_H
#define MT_TRAIN_RUN_DIR_H

#include "base/base.h"

#define MT_RUN_ID_LEN 17    /* 16 hex digits and the NUL */
#define MT_FINGERPRINT_LEN 48

/* MT_OK when out_dir does not exist or is empty, or when overwrite; else MT_ERR_INVALID_ARG saying what is there and
 * what to do (--resume for an earlier mitten run, --overwrite-output-dir to write into it anyway). */
mt_status mt_run_dir_check_new(const char *out_dir, bool overwrite, mt_err *err);

/* Takes an exclusive lock on the folder out_dir (which must exist) for as long as *fd stays open (mt_run_dir_unlock).
 * MT_ERR_IO naming the folder when another process holds it. */
mt_status mt_run_dir_lock(const char *out_dir, int *fd, mt_err *err);
void mt_run_dir_unlock(int fd);

/* A fresh random run id: 16 hex digits. */
void mt_run_id_new(char out[MT_RUN_ID_LEN]);

/* The absolute form of path, in a new string the caller frees. The path need not exist yet, nor its parents: the
 * nearest folder that exists is resolved and the rest appended as given. */
mt_status mt_path_absolute(const char *path, char **out, mt_err *err);

/* "size:fnv64" of the file's bytes, which a resume compares. */
mt_status mt_data_fingerprint(const char *path, char out[MT_FINGERPRINT_LEN], mt_err *err);

#endif
