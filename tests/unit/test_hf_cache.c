/* io/hf_cache: repo id and revision rules, the cache folder's environment precedence, and refs / snapshots / commit
 * hashes in a cache laid out by hand in a temporary folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/hf_cache.h"

#define COMMIT_A "0123456789abcdef0123456789abcdef01234567"
#define COMMIT_B "0123456fffffffffffffffffffffffffffffffff"
#define COMMIT_C "89abcdef89abcdef89abcdef89abcdef89abcdef"

static void test_repo_ids(void) {
    static const char *const good[] = {"foo", "foo/bar", "123", "Foo-BAR_foo.bar123", "Qwen/Qwen2.5-VL-3B-Instruct",
                                       "gpt2", "_x/y_", "a/b", "org/name.with.dots"};
    static const char *const bad[] = {"", "datasets/foo/bar", ".repo_id", "foo--bar", "foo.git", "../../etc", "..",
                                      ".", "/etc/passwd", "/foo", "foo/", "foo/../bar", "a/b/c", "-foo", "foo-",
                                      "foo.", "org/-x", "org./x", "a b", "a\\b", "caf\xc3\xa9", "foo..bar", "~/x",
                                      "$HOME", "org/na\nme", "org//name"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK_MSG(mt_hf_repo_id_valid(good[i], NULL), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *why = NULL;
        CHECK_MSG(!mt_hf_repo_id_valid(bad[i], &why) && why && *why, "%s", bad[i]);
    }
    char name[120];
    memset(name, 'a', 96);
    name[96] = 0;
    CHECK(mt_hf_repo_id_valid(name, NULL));
    name[96] = 'a', name[97] = 0;
    CHECK(!mt_hf_repo_id_valid(name, NULL));
    const char *why = NULL;
    CHECK(!mt_hf_repo_id_valid("../../etc", &why) && strstr(why, ".."));
    CHECK(!mt_hf_repo_id_valid(NULL, &why));
}

static void test_revisions(void) {
    static const char *const good[] = {"main", "v1.0", "refs/pr/1", COMMIT_A, "0123456", "release-2024_01", "a+b"};
    static const char *const bad[] = {"", "..", "../main", "a/../b", "/main", "main/", "a//b", ".hidden", "a/.b",
                                      "a b", "a\\b", "x..y", "main\n"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) CHECK_MSG(mt_hf_revision_valid(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK_MSG(!mt_hf_revision_valid(bad[i]), "%s", bad[i]);
    char long_rev[300];
    memset(long_rev, 'r', 256);
    long_rev[256] = 0;
    CHECK(!mt_hf_revision_valid(long_rev));
    CHECK(!mt_hf_revision_valid(NULL));
}

static void clear_env(void) {
    unsetenv("HF_HUB_CACHE");
    unsetenv("HUGGINGFACE_HUB_CACHE");
    unsetenv("HF_HOME");
    unsetenv("XDG_CACHE_HOME");
}

static void expect_cache(const char *want, const char *want_source) {
    char out[4096];
    const char *source = NULL;
    mt_err err = {0};
    mt_status st = mt_hf_cache_dir(out, sizeof out, &source, &err);
    CHECK_MSG(st == MT_OK && strcmp(out, want) == 0, "cache %s, expected %s (%s)", st ? err.msg : out, want,
              want_source);
    CHECK_MSG(source && strcmp(source, want_source) == 0, "source %s, expected %s", source ? source : "-", want_source);
}

static void test_cache_dir(void) {
    clear_env();
    setenv("HOME", "/home/u", 1);
    expect_cache("/home/u/.cache/huggingface/hub", "$HOME, the default");
    setenv("HOME", "/home/u/", 1);
    expect_cache("/home/u/.cache/huggingface/hub", "$HOME, the default");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    expect_cache("/xdg/huggingface/hub", "$XDG_CACHE_HOME");
    setenv("HF_HOME", "/hf/home", 1);
    expect_cache("/hf/home/hub", "$HF_HOME");
    setenv("HF_HOME", "/hf/home/", 1);
    expect_cache("/hf/home/hub", "$HF_HOME");
    setenv("HUGGINGFACE_HUB_CACHE", "/legacy", 1);
    expect_cache("/legacy", "$HUGGINGFACE_HUB_CACHE");
    setenv("HF_HUB_CACHE", "/hub/cache", 1);
    expect_cache("/hub/cache", "$HF_HUB_CACHE");
    setenv("HF_HUB_CACHE", "", 1); /* empty counts as unset */
    expect_cache("/legacy", "$HUGGINGFACE_HUB_CACHE");
    clear_env();
    /* "~" and variables, as os.path.expanduser and os.path.expandvars */
    setenv("HOME", "/home/u", 1);
    setenv("HF_HOME", "~/hf", 1);
    expect_cache("/home/u/hf/hub", "$HF_HOME");
    setenv("MT_TEST_SCRATCH", "/scratch", 1);
    setenv("HF_HOME", "$MT_TEST_SCRATCH/hf", 1);
    expect_cache("/scratch/hf/hub", "$HF_HOME");
    setenv("HF_HOME", "${MT_TEST_SCRATCH}x/hf", 1);
    expect_cache("/scratchx/hf/hub", "$HF_HOME");
    setenv("HF_HOME", "$MT_TEST_UNSET_VARIABLE/hf$", 1);
    expect_cache("$MT_TEST_UNSET_VARIABLE/hf$/hub", "$HF_HOME");
    setenv("HF_HOME", "a~/b", 1); /* only a leading ~ */
    expect_cache("a~/b/hub", "$HF_HOME");
    clear_env();
    setenv("XDG_CACHE_HOME", "~/xdg", 1);
    expect_cache("/home/u/xdg/huggingface/hub", "$XDG_CACHE_HOME");
    clear_env();
    /* too long for the caller's buffer */
    char small[8];
    mt_err err = {0};
    CHECK(mt_hf_cache_dir(small, sizeof small, NULL, &err) == MT_ERR_LIMIT);
}

static char root[256];

static void mkdirs(const char *rel) {
    char p[1024], *s;
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    mkdir(p, 0755);
}

static void write_file(const char *rel, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    CHECK_MSG(f != NULL, "cannot write %s", p);
}

/* Resolves in <root>/hub and checks the snapshot's commit, or the failure's code and a piece of its message. */
static void expect_snapshot(const char *id, const char *rev, const char *commit, mt_status code, const char *msg) {
    char cache[300], *out = NULL;
    snprintf(cache, sizeof cache, "%s/hub", root);
    mt_err err = {0};
    mt_status st = mt_hf_cache_snapshot(cache, id, rev, &out, &err);
    if (commit) {
        char want[600];
        snprintf(want, sizeof want, "%s/models--%s/snapshots/%s", cache, strcmp(id, "org/tiny") ? "solo" : "org--tiny",
                 commit);
        CHECK_MSG(st == MT_OK && strcmp(out, want) == 0, "%s@%s: %s", id, rev ? rev : "-", st ? err.msg : out);
    } else {
        CHECK_MSG(st == code && strstr(err.msg, msg), "%s@%s: status %d, message: %s (expected %d, \"%s\")", id,
                  rev ? rev : "-", st, err.msg, code, msg);
    }
    mt_free(out);
}

static void test_snapshots(void) {
    snprintf(root, sizeof root, "/tmp/mt_hf_cache_XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    mkdirs("hub/models--org--tiny/blobs");
    mkdirs("hub/models--org--tiny/refs/refs/pr");
    mkdirs("hub/models--org--tiny/snapshots/" COMMIT_A);
    mkdirs("hub/models--org--tiny/snapshots/" COMMIT_B);
    write_file("hub/models--org--tiny/refs/main", COMMIT_A);
    write_file("hub/models--org--tiny/refs/v2", COMMIT_B "\n");
    write_file("hub/models--org--tiny/refs/refs/pr/1", COMMIT_B);
    write_file("hub/models--org--tiny/refs/gone", COMMIT_C);
    write_file("hub/models--org--tiny/refs/evil", "../../../../etc");
    write_file("hub/models--org--tiny/refs/short", "0123456");
    mkdirs("hub/models--solo/snapshots/" COMMIT_C);
    mkdirs("hub/models--solo/refs");
    write_file("hub/models--solo/refs/main", COMMIT_C);

    expect_snapshot("org/tiny", NULL, COMMIT_A, MT_OK, NULL);
    expect_snapshot("org/tiny", "main", COMMIT_A, MT_OK, NULL);
    expect_snapshot("org/tiny", "v2", COMMIT_B, MT_OK, NULL);
    expect_snapshot("org/tiny", "refs/pr/1", COMMIT_B, MT_OK, NULL);
    expect_snapshot("org/tiny", COMMIT_B, COMMIT_B, MT_OK, NULL);
    expect_snapshot("org/tiny", "0123456f", COMMIT_B, MT_OK, NULL);  /* a unique start of a commit */
    expect_snapshot("org/tiny", "89abcde", NULL, MT_ERR_IO, "revision 89abcde is not in the Hugging Face cache");
    expect_snapshot("org/tiny", "0123456", NULL, MT_ERR_INVALID_ARG, "several commits");
    expect_snapshot("solo", NULL, COMMIT_C, MT_OK, NULL);
    /* failures, each with its message */
    expect_snapshot("org/tiny", "v3", NULL, MT_ERR_IO, "cached refs: ");
    expect_snapshot("org/tiny", "v3", NULL, MT_ERR_IO, "hf download org/tiny --revision v3");
    expect_snapshot("org/tiny", "gone", NULL, MT_ERR_IO, "is commit " COMMIT_C ", but its snapshot");
    expect_snapshot("org/tiny", COMMIT_C, NULL, MT_ERR_IO, "but its snapshot");
    expect_snapshot("org/tiny", "evil", NULL, MT_ERR_FORMAT, "expected a commit hash");
    expect_snapshot("org/tiny", "short", NULL, MT_ERR_FORMAT, "expected a commit hash");
    expect_snapshot("org/tiny", "../../../etc", NULL, MT_ERR_INVALID_ARG, "is not a branch, tag or commit name");
    expect_snapshot("org/absent", NULL, NULL, MT_ERR_IO, "no folder models--org--absent there");
    expect_snapshot("org/absent", NULL, NULL, MT_ERR_IO, "mitten downloads nothing");
    expect_snapshot("../../etc", NULL, NULL, MT_ERR_INVALID_ARG, "not a Hugging Face repo id");
    expect_snapshot("org/../../x", NULL, NULL, MT_ERR_INVALID_ARG, "not a Hugging Face repo id");

    /* mt_hf_resolve: an existing path wins over the cache, a revision goes with repo ids only */
    char cache[300], *out = NULL, cwd[1024];
    snprintf(cache, sizeof cache, "%s/hub", root);
    clear_env();
    setenv("HF_HUB_CACHE", cache, 1);
    mt_err err = {0};
    bool cached = true;
    CHECK(mt_hf_resolve(cache, NULL, &out, &cached, &err) == MT_OK && strcmp(out, cache) == 0 && !cached);
    mt_free(out);
    out = NULL;
    CHECK(mt_hf_resolve(cache, "main", &out, NULL, &err) == MT_ERR_INVALID_ARG && !out);
    CHECK(mt_hf_resolve("org/tiny", "v2", &out, &cached, &err) == MT_OK && cached && strstr(out, COMMIT_B));
    mt_free(out);
    out = NULL;
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    mkdirs("cwd/org/tiny");
    char here[600];
    snprintf(here, sizeof here, "%s/cwd", root);
    CHECK(chdir(here) == 0);
    CHECK(mt_hf_resolve("org/tiny", NULL, &out, &cached, &err) == MT_OK && !cached && strcmp(out, "org/tiny") == 0);
    mt_free(out);
    out = NULL;
    CHECK(mt_hf_resolve("../../etc", NULL, &out, NULL, &err) == MT_ERR_IO &&
          strstr(err.msg, "no such folder, and not a Hugging Face repo id"));
    CHECK(mt_hf_resolve("org/absent", NULL, &out, NULL, &err) == MT_ERR_IO && strstr(err.msg, "(from $HF_HUB_CACHE)"));
    CHECK(mt_hf_resolve("/nowhere/at/all", NULL, &out, &cached, &err) == MT_OK && !cached &&
          strcmp(out, "/nowhere/at/all") == 0); /* an absolute path is never a repo id: the loader reports it */
    mt_free(out);
    out = NULL;
    CHECK(mt_hf_resolve("/nowhere/at/all", "main", &out, NULL, &err) == MT_ERR_INVALID_ARG && !out);
    CHECK(chdir(cwd) == 0);
    setenv("HF_HUB_CACHE", "/nonexistent-mt-cache", 1);
    CHECK(mt_hf_resolve("org/tiny", NULL, &out, NULL, &err) == MT_ERR_IO &&
          strstr(err.msg, "no Hugging Face cache at /nonexistent-mt-cache"));
    CHECK(!out);
    clear_env();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
}

int main(void) {
    test_repo_ids();
    test_revisions();
    test_cache_dir();
    test_snapshots();
    return check_report();
}
