/* io/hf_cache: a repo id to its snapshot folder in the local Hugging Face cache (layout and rules in hf_cache.h). */
#include "io/hf_cache.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4096
#define COMMIT_LEN 40

static bool is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
static bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static bool all_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_hex(s[i])) return false;
    return true;
}

/* One part of a repo id (NAME or ORG): 1 to 96 of [A-Za-z0-9_.-], starting and ending with [A-Za-z0-9_]. */
static bool part_ok(const char *s, size_t n, const char **why) {
    if (n == 0 || n > MT_HF_NAME_MAX) return *why = "ORG and NAME are 1 to 96 characters each", false;
    for (size_t i = 0; i < n; i++)
        if (!is_word(s[i]) && s[i] != '-' && s[i] != '.')
            return *why = "only letters, digits, '-', '_' and '.' may be in it", false;
    if (!is_word(s[0]) || !is_word(s[n - 1])) return *why = "ORG and NAME cannot start or end with '-' or '.'", false;
    return true;
}

bool mt_hf_repo_id_valid(const char *id, const char **why) {
    const char *dummy;
    if (!why) why = &dummy;
    if (!id || !*id) return *why = "it is empty", false;
    if (strstr(id, "..") || strstr(id, "--")) return *why = "\"..\" and \"--\" are not allowed in it", false;
    const char *slash = strchr(id, '/');
    if (slash && strchr(slash + 1, '/')) return *why = "it is NAME or ORG/NAME, with one '/' at most", false;
    if (slash && !part_ok(id, (size_t)(slash - id), why)) return false;
    const char *name = slash ? slash + 1 : id;
    size_t n = strlen(name);
    if (!part_ok(name, n, why)) return false;
    if (n >= 4 && strcmp(name + n - 4, ".git") == 0) return *why = "it cannot end in \".git\"", false;
    return true;
}

bool mt_hf_revision_valid(const char *rev) {
    size_t n = rev ? strlen(rev) : 0;
    if (n == 0 || n > MT_HF_REVISION_MAX || strstr(rev, "..")) return false;
    for (size_t i = 0; i < n; i++) {
        char c = rev[i];
        bool start = i == 0 || rev[i - 1] == '/';
        if (c == '/' && (start || i + 1 == n)) return false; /* empty component */
        if (start && c == '.') return false;                  /* ".", ".." or a hidden name */
        if (!is_word(c) && c != '-' && c != '.' && c != '+' && c != '/') return false;
    }
    return true;
}

/* ----- the cache folder ----- */

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

typedef struct strbuf {
    char *p;
    size_t n, cap;
    bool over;
} strbuf;

static void put(strbuf *b, const char *s, size_t n) {
    if (b->n + n >= b->cap) {
        b->over = true;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* os.path.expanduser: a leading "~" or "~user" becomes that home folder (its trailing '/' dropped); unknown users
 * and a missing home leave the path as it is. */
static void expand_user(const char *in, strbuf *b) {
    if (in[0] != '~') return put(b, in, strlen(in));
    const char *rest = strchr(in, '/');
    if (!rest) rest = in + strlen(in);
    const char *home = NULL;
    if (rest == in + 1) {
        home = getenv("HOME");
        if (!home) {
            const struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
    } else {
        char user[256];
        size_t n = (size_t)(rest - in - 1);
        if (n < sizeof user) {
            memcpy(user, in + 1, n);
            user[n] = 0;
            const struct passwd *pw = getpwnam(user);
            home = pw ? pw->pw_dir : NULL;
        }
    }
    if (!home) return put(b, in, strlen(in));
    size_t hn = strlen(home);
    while (hn > 0 && home[hn - 1] == '/') hn--;
    if (hn == 0 && !*rest) return put(b, "/", 1);
    put(b, home, hn);
    put(b, rest, strlen(rest));
}

/* os.path.expandvars: $NAME (ASCII word characters) and ${NAME} become the variable's value when it is set. */
static void expand_vars(const char *in, strbuf *b) {
    for (const char *p = in; *p;) {
        if (*p != '$') {
            put(b, p++, 1);
            continue;
        }
        const char *name = p + 1, *end;
        size_t len;
        if (*name == '{') {
            end = strchr(name + 1, '}');
            if (!end) {
                put(b, p++, 1);
                continue;
            }
            name++;
            len = (size_t)(end - name);
            end++;
        } else {
            end = name;
            while (is_word(*end)) end++;
            len = (size_t)(end - name);
            if (!len) {
                put(b, p++, 1);
                continue;
            }
        }
        char var[256];
        const char *v = NULL;
        if (len < sizeof var) {
            memcpy(var, name, len);
            var[len] = 0;
            v = getenv(var);
        }
        if (v) put(b, v, strlen(v));
        else put(b, p, (size_t)(end - p));
        p = end;
    }
}

/* expandvars(expanduser(path)), then "/" + tail unless empty (os.path.join: no second '/'). */
static void expand_join(const char *path, const char *tail, strbuf *b) {
    char tmp[PATH_CAP];
    strbuf u = {tmp, 0, sizeof tmp, false};
    tmp[0] = 0;
    expand_user(path, &u);
    b->over |= u.over;
    expand_vars(tmp, b);
    if (*tail) {
        if (b->n == 0 || b->p[b->n - 1] != '/') put(b, "/", 1);
        put(b, tail, strlen(tail));
    }
}

mt_status mt_hf_cache_dir(char *out, size_t cap, const char **source, mt_err *err) {
    static const struct {
        const char *var, *label, *tail;
    } order[] = {{"HF_HUB_CACHE", "$HF_HUB_CACHE", ""},
                 {"HUGGINGFACE_HUB_CACHE", "$HUGGINGFACE_HUB_CACHE", ""},
                 {"HF_HOME", "$HF_HOME", "hub"},
                 {"XDG_CACHE_HOME", "$XDG_CACHE_HOME", "huggingface/hub"}};
    if (cap == 0) return mt_err_set(err, MT_ERR_LIMIT, "Hugging Face cache: no room for the folder name");
    strbuf b = {out, 0, cap, false};
    out[0] = 0;
    const char *src = "$HOME, the default";
    size_t k = 0;
    while (k < MT_ARRAY_LEN(order) && !env(order[k].var)) k++;
    if (k < MT_ARRAY_LEN(order)) {
        src = order[k].label;
        expand_join(env(order[k].var), order[k].tail, &b);
    } else {
        expand_join("~", ".cache/huggingface/hub", &b);
        if (out[0] == '~')
            return mt_err_set(err, MT_ERR_IO, "Hugging Face cache: no home folder ($HOME is not set and the user "
                              "has no entry); set HF_HUB_CACHE or HF_HOME");
    }
    if (b.over) return mt_err_set(err, MT_ERR_LIMIT, "Hugging Face cache: the folder named by %s is too long", src);
    if (source) *source = src;
    return MT_OK;
}

/* ----- the snapshot of a repo id ----- */

static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The ref names directly in refs/, sorted ("gone, main, v2"), for messages. */
static void list_refs(const char *refs, char *out, size_t cap) {
    char *names[64], p[PATH_CAP];
    size_t n = 0;
    bool more = false;
    DIR *d = opendir(refs);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        struct stat sb;
        if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp") ||
            snprintf(p, sizeof p, "%s/%s", refs, e->d_name) >= (int)sizeof p || stat(p, &sb) || !S_ISREG(sb.st_mode))
            continue;
        if (n == MT_ARRAY_LEN(names) || !(names[n] = mt_strdup(e->d_name))) more = true;
        else n++;
    }
    if (d) closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    strbuf b = {out, 0, cap, false};
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) put(&b, ", ", 2);
        put(&b, names[i], strlen(names[i]));
        mt_free(names[i]);
    }
    if (more) put(&b, ", ...", 5);
    if (b.over && cap > 5) snprintf(out + cap - 5, 5, "...");
    if (!out[0]) snprintf(out, cap, "none");
}

/* The commit a ref file holds: 40 hex digits, possibly followed by white space. */
static mt_status read_ref(const char *path, char commit[COMMIT_LEN + 1], mt_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return mt_err_set(err, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char buf[128];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t')) n--;
    if (n != COMMIT_LEN || !all_hex(buf, n))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: expected a commit hash (40 hex digits)", path);
    memcpy(commit, buf, COMMIT_LEN);
    commit[COMMIT_LEN] = 0;
    return MT_OK;
}

/* The one snapshot whose name starts with prefix; 0 found, 1 found, 2 several. */
static int snapshot_by_prefix(const char *snaps, const char *prefix, char commit[COMMIT_LEN + 1]) {
    DIR *d = opendir(snaps);
    struct dirent *e;
    int found = 0;
    size_t n = strlen(prefix);
    while (d && (e = readdir(d)))
        if (strlen(e->d_name) == COMMIT_LEN && all_hex(e->d_name, COMMIT_LEN) && strncmp(e->d_name, prefix, n) == 0) {
            if (found++) break;
            memcpy(commit, e->d_name, COMMIT_LEN + 1);
        }
    if (d) closedir(d);
    return found > 1 ? 2 : found;
}

static void download_hint(char *out, size_t cap, const char *id, const char *rev) {
    char r[MT_HF_REVISION_MAX + 16] = "";
    if (rev) snprintf(r, sizeof r, " --revision %s", rev);
    snprintf(out, cap,
             "mitten downloads nothing: get it with `hf download %s%s` (`huggingface-cli download %s%s` with older "
             "huggingface_hub), or pass the checkpoint folder",
             id, r, id, r);
}

/* The snapshot folder of id at revision in cache. source: the variable that chose the cache when id was given
 * where a folder could have been (mt_hf_resolve), for the messages; NULL otherwise. */
static mt_status snapshot(const char *cache, const char *source, const char *id, const char *revision, char **out,
                          mt_err *err) {
    const char *why = NULL, *rev = revision ? revision : "main";
    if (!mt_hf_repo_id_valid(id, &why))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "\"%s\" is not a Hugging Face repo id: %s", id, why);
    if (!mt_hf_revision_valid(rev))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "revision \"%s\" is not a branch, tag or commit name (letters, "
                          "digits, '-', '_', '.', '+' and '/'; no \"..\", no part starting with '.')", rev);
    char folder[2 * MT_HF_NAME_MAX + 16] = "models--", repo[PATH_CAP], path[PATH_CAP], hint[700];
    size_t n = strlen(folder);
    for (const char *p = id; *p; p++) { /* repo_folder_name: the '/' becomes "--" */
        if (*p == '/') folder[n++] = '-', folder[n++] = '-';
        else folder[n++] = *p;
    }
    folder[n] = 0;
    size_t cl = strlen(cache);
    if (snprintf(repo, sizeof repo, "%s%s%s", cache, cl && cache[cl - 1] == '/' ? "" : "/", folder) >=
        (int)sizeof repo)
        return mt_err_set(err, MT_ERR_LIMIT, "Hugging Face cache %s: path too long", cache);
    download_hint(hint, sizeof hint, id, revision);
    if (!is_dir(repo) && source)
        return mt_err_set(err, MT_ERR_IO, "%s: no such folder, and not in the Hugging Face cache %s (from %s): "
                          "no folder %s there. %s", id, cache, source, folder, hint);
    if (!is_dir(repo))
        return mt_err_set(err, MT_ERR_IO, "%s is not in the Hugging Face cache %s: no folder %s there. %s", id, cache,
                          folder, hint);
    char commit[COMMIT_LEN + 1] = "";
    size_t rl = strlen(rev);
    if (snprintf(path, sizeof path, "%s/refs/%s", repo, rev) >= (int)sizeof path)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: path too long", repo);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        mt_status st = read_ref(path, commit, err);
        if (st) return st;
    } else if (rl == COMMIT_LEN && all_hex(rev, rl)) {
        memcpy(commit, rev, COMMIT_LEN + 1);
    } else {
        int found = 0;
        if (rl >= 7 && rl < COMMIT_LEN && all_hex(rev, rl)) {
            char snaps[PATH_CAP + 16];
            snprintf(snaps, sizeof snaps, "%s/snapshots", repo);
            found = snapshot_by_prefix(snaps, rev, commit);
            if (found == 2)
                return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: revision %s is the start of several commits in %s; "
                                  "give more of it", id, rev, snaps);
        }
        if (!found) {
            char refs[PATH_CAP + 8], names[160];
            snprintf(refs, sizeof refs, "%s/refs", repo);
            list_refs(refs, names, sizeof names);
            return mt_err_set(err, MT_ERR_IO, "%s: revision %s is not in the Hugging Face cache (no %s; cached refs: "
                              "%s). %s", id, rev, path, names, hint);
        }
    }
    if (snprintf(path, sizeof path, "%s/snapshots/%s", repo, commit) >= (int)sizeof path)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: path too long", repo);
    if (!is_dir(path))
        return mt_err_set(err, MT_ERR_IO, "%s at %s is commit %s, but its snapshot %s is not in the cache. %s", id,
                          rev, commit, path, hint);
    if (!(*out = mt_strdup(path))) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    return MT_OK;
}

mt_status mt_hf_cache_snapshot(const char *cache, const char *repo_id, const char *revision, char **out, mt_err *err) {
    return snapshot(cache, NULL, repo_id, revision, out, err);
}

mt_status mt_hf_resolve(const char *spec, const char *revision, char **out, bool *from_cache, mt_err *err) {
    struct stat sb;
    /* a path that is there, or an absolute one (never a repo id: the model loader says what is missing) */
    if (spec[0] == '/' || stat(spec, &sb) == 0 || (errno != ENOENT && errno != ENOTDIR)) {
        if (revision)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "revision %s: %s is a path, not a Hugging Face repo id (a "
                              "revision picks a version of a repo id only)", revision, spec);
        if (!(*out = mt_strdup(spec))) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        if (from_cache) *from_cache = false;
        return MT_OK;
    }
    const char *why = NULL;
    if (!mt_hf_repo_id_valid(spec, &why))
        return mt_err_set(err, MT_ERR_IO, "%s: no such folder, and not a Hugging Face repo id (NAME or ORG/NAME: %s)",
                          spec, why);
    char cache[PATH_CAP], hint[700];
    const char *source;
    mt_status st = mt_hf_cache_dir(cache, sizeof cache, &source, err);
    if (st) return st;
    if (!is_dir(cache)) {
        download_hint(hint, sizeof hint, spec, revision);
        return mt_err_set(err, MT_ERR_IO, "%s: no such folder, and no Hugging Face cache at %s (from %s; "
                          "HF_HUB_CACHE or HF_HOME name another). %s", spec, cache, source, hint);
    }
    st = snapshot(cache, source, spec, revision, out, err);
    if (!st && from_cache) *from_cache = true;
    return st;
}
