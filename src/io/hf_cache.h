/* io/hf_cache: finds a Hugging Face repo id ("Qwen/Qwen2.5-VL-3B-Instruct") in the local cache that
 * huggingface_hub (and so transformers) fills, and never downloads anything.
 *
 * Reference: huggingface_hub constants.py (the cache folder), file_download.py (repo_folder_name,
 * try_to_load_from_cache, the refs written by _cache_commit_hash_for_specific_revision), utils/_validators.py
 * (validate_repo_id). The cache as huggingface_hub lays it out:
 *
 *     <cache>/models--ORG--NAME/              ("models--NAME" for an id without ORG)
 *         blobs/<sha256 or git sha1>          the files' content, named by hash
 *         refs/<revision>                     a branch or tag ("main", "v1", "refs/pr/1") -> 40-hex commit, no newline
 *         snapshots/<commit>/<file>           symlinks into ../../blobs (copies where symlinks are not possible)
 *
 * The cache folder, first that is set (non-empty here; Python would take an empty value as set):
 *
 *     | variable                 | cache                                    |
 *     | ------------------------ | ---------------------------------------- |
 *     | HF_HUB_CACHE             | $HF_HUB_CACHE                            |
 *     | HUGGINGFACE_HUB_CACHE    | $HUGGINGFACE_HUB_CACHE (legacy name)     |
 *     | HF_HOME                  | $HF_HOME/hub                             |
 *     | XDG_CACHE_HOME           | $XDG_CACHE_HOME/huggingface/hub          |
 *     | (none)                   | ~/.cache/huggingface/hub                 |
 *
 * with "~" / "~user" and $VAR / ${VAR} expanded as Python's os.path.expanduser and os.path.expandvars do
 * (an unknown variable stays as written).
 *
 * A revision is a branch or tag name, looked up in refs/, or a commit: 40 hex digits are the snapshot's name
 * itself, and 7 to 39 hex digits that name no ref pick the one snapshot whose name starts with them. Repo ids and
 * revisions are checked before any path is formed (validate_repo_id's rules, ASCII only; a revision is git-ref-like
 * with no ".." and no component starting with '.'), and a ref file must hold 40 hex digits, so nothing outside
 * <cache>/models--ORG--NAME is ever reached.
 */
#ifndef MT_HF_CACHE_H
#define MT_HF_CACHE_H

#include "base/base.h"

#define MT_HF_NAME_MAX 96 /* characters of NAME, and of ORG */
#define MT_HF_REVISION_MAX 255

/* True when id is NAME or ORG/NAME as huggingface_hub's validate_repo_id accepts it: each part 1 to 96 of
 * A-Z a-z 0-9 - _ ., starting and ending with a letter, digit or '_'; no "--" or ".."; not ending in ".git".
 * Otherwise, when why is not NULL, *why says which rule it breaks. */
bool mt_hf_repo_id_valid(const char *id, const char **why);

/* True when rev can name a ref file or a snapshot: 1 to 255 of A-Z a-z 0-9 - _ . + /, components separated by
 * single '/', none empty or starting with '.'. */
bool mt_hf_revision_valid(const char *rev);

/* The hub cache folder (table above) into out; *source (may be NULL) says what chose it ("$HF_HOME", ...).
 * MT_ERR_LIMIT when it does not fit, MT_ERR_IO when no home folder is known. The folder need not exist. */
mt_status mt_hf_cache_dir(char *out, size_t cap, const char **source, mt_err *err);

/* The snapshot folder of repo_id at revision (NULL: "main") in cache: "<cache>/models--ORG--NAME/snapshots/<commit>",
 * into *out (mt_free). Fails naming the folder looked at when the repo, the ref or the snapshot is not there. */
mt_status mt_hf_cache_snapshot(const char *cache, const char *repo_id, const char *revision, char **out, mt_err *err);

/* What a model argument names. A path that exists, and an absolute path, is itself (*out a copy, and the model
 * loader says what is missing; a revision is then an error: it applies to repo ids only). Otherwise spec must be a repo id, found in the cache of mt_hf_cache_dir at revision
 * (NULL: "main"), and *out is its snapshot folder. The messages name the folders searched and say that mitten
 * downloads nothing, and how to download it. *from_cache (may be NULL) tells which of the two it was. */
mt_status mt_hf_resolve(const char *spec, const char *revision, char **out, bool *from_cache, mt_err *err);

#endif
