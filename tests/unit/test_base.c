/* base: arena, pool, json getters, folders, fault injection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/file.h"
#include "base/json.h"
#include "base/pool.h"
#include "check.h"

static void add_task(void *ctx, int64_t task, int thread) {
    int64_t *v = ctx;
    v[task] = task * 2 + (thread >= 0 ? 0 : 1);
}

static void test_pool(void) {
    mt_pool *p;
    mt_err err;
    CHECK(mt_pool_new(3, &p, &err) == MT_OK);
    int64_t v[1000];
    for (int round = 0; round < 50; round++) {
        memset(v, 0xff, sizeof v);
        mt_pool_run(p, 1000, add_task, v);
        int ok = 1;
        for (int i = 0; i < 1000; i++) ok &= v[i] == i * 2;
        CHECK(ok);
    }
    /* Fewer tasks than threads, and runs after the workers went to sleep (past their spin): each must still see
     * every task done once. A lost wake-up hangs here. */
    for (int round = 0; round < 40; round++) {
        int64_t n = 1 + round % 5;
        memset(v, 0xff, sizeof v);
        if (round % 8 == 0) usleep(2000);
        mt_pool_run(p, n, add_task, v);
        int ok = 1;
        for (int i = 0; i < n; i++) ok &= v[i] == i * 2;
        CHECK_MSG(ok, "pool round %d, %lld tasks", round, (long long)n);
    }
    mt_pool_free(p);
    mt_pool_free(NULL);
}

static void nop_task(void *ctx, int64_t task, int thread) { (void)ctx, (void)task, (void)thread; }

/* What dispatching an op costs: an empty parallel-for of 2 tasks on 2 threads, back to back as a decode step's ops
 * are. Printed, not checked (timings are not stable on shared machines). */
static void print_pool_cost(void) {
    mt_pool *p;
    mt_err err;
    CHECK(mt_pool_new(2, &p, &err) == MT_OK);
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = mt_time_now();
        for (int i = 0; i < 20000; i++) mt_pool_run(p, 2, nop_task, NULL);
        best = MT_MIN(best, (mt_time_now() - t0) / 20000);
    }
    printf("empty mt_pool_run, 2 tasks on 2 threads: %.2f us\n", best * 1e6);
    mt_pool_free(p);
}

static void test_arena(void) {
    mt_arena a;
    mt_arena_init(&a, 1024);
    char *x = mt_arena_alloc(&a, 100);
    CHECK(x && ((uintptr_t)x % 64) == 0);
    mt_arena_mark m = mt_arena_save(&a);
    char *big = mt_arena_alloc(&a, 5000);
    CHECK(big != NULL);
    memset(big, 1, 5000);
    mt_arena_restore(&a, m);
    char *y = mt_arena_alloc(&a, 10);
    CHECK(y != NULL);
    mt_arena_reset(&a);
    char *z = mt_arena_alloc(&a, 10);
    CHECK(z != NULL);
    CHECK(mt_arena_alloc(&a, SIZE_MAX - 10) == NULL);
    /* blocks past a few MiB come from mt_malloc_pages: aligned, writable to the end, kept across a restore */
    mt_arena_mark before = mt_arena_save(&a);
    size_t huge = (size_t)9 << 20;
    char *h = mt_arena_alloc(&a, huge);
    CHECK(h && ((uintptr_t)h % 64) == 0);
    if (h) h[0] = 1, h[huge - 1] = 2;
    mt_arena_restore(&a, before);
    CHECK(mt_arena_alloc(&a, huge) == h);
    mt_arena_free(&a);
    mt_arena_init(&a, (size_t)8 << 20);
    mt_alloc_fail_after(1);
    CHECK(mt_arena_alloc(&a, 10) == NULL);
    mt_alloc_fail_after(0);
    CHECK(mt_arena_alloc(&a, 10) != NULL);
    mt_arena_free(&a);
}

static void test_json(void) {
    cJSON *j;
    mt_err err;
    const char *t = "{\"a\": 3, \"b\": 2.5, \"c\": \"s\", \"d\": [1,2,3], \"e\": 7, \"f\": true}";
    CHECK(mt_json_parse(t, strlen(t), "x.json", &j, &err) == MT_OK);
    int64_t a = 0;
    CHECK(mt_json_int_req(j, "a", "x.json", 0, 10, &a, &err) == MT_OK && a == 3);
    CHECK(mt_json_int_req(j, "b", "x.json", 0, 10, &a, &err) == MT_ERR_FORMAT);
    CHECK(strstr(err.msg, "\"b\"") && strstr(err.msg, "x.json"));
    CHECK(mt_json_int_req(j, "zz", "x.json", 0, 10, &a, &err) == MT_ERR_FORMAT);
    CHECK(strstr(err.msg, "missing"));
    CHECK(mt_json_int_req(j, "a", "x.json", 4, 10, &a, &err) == MT_ERR_FORMAT);
    int64_t arr[4];
    size_t n = 0;
    CHECK(mt_json_int_array_opt(j, "d", "x.json", 0, 9, arr, 4, &n, &err) == MT_OK && n == 3 && arr[2] == 3);
    CHECK(mt_json_int_array_opt(j, "e", "x.json", 0, 9, arr, 4, &n, &err) == MT_OK && n == 1 && arr[0] == 7);
    CHECK(mt_json_int_array_opt(j, "d", "x.json", 0, 9, arr, 2, &n, &err) == MT_ERR_LIMIT);
    bool f = false;
    CHECK(mt_json_bool_opt(j, "f", "x.json", &f, &err) == MT_OK && f);
    CHECK(mt_json_bool_opt(j, "a", "x.json", &f, &err) == MT_ERR_FORMAT);
    cJSON_Delete(j);
    CHECK(mt_json_parse("{\n\"a\": ]", 8, "bad.json", &j, &err) == MT_ERR_FORMAT);
    CHECK(strstr(err.msg, "line 2"));
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mt_dir_make_all makes missing parents, accepts what exists, and refuses a file in the way. */
static void test_dir_make_all(void) {
    char root[] = "/tmp/mt_test_dirs_XXXXXX", path[256];
    if (!mkdtemp(root)) return;
    mt_err err;
    snprintf(path, sizeof path, "%s/a/b//c/", root);
    CHECK(mt_dir_make_all(path, &err) == MT_OK);
    snprintf(path, sizeof path, "%s/a/b/c", root);
    CHECK(is_dir(path));
    CHECK(mt_dir_make_all(path, &err) == MT_OK); /* again: nothing to do */
    snprintf(path, sizeof path, "%s/file", root);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/file/d", root);
    CHECK(mt_dir_make_all(path, &err) == MT_ERR_IO && strstr(err.msg, "in the way"));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
}

/* A copy out of a file mapping (by pread) equals the mapped bytes, at any offset; holds() knows the mapping's ends. */
static void test_mapping_copy(void) {
    char path[] = "/tmp/mt_test_map_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    enum { N = 3 * 4096 + 123 };
    static uint8_t data[N], got[N];
    for (int i = 0; i < N; i++) data[i] = (uint8_t)(i * 131 + 7);
    CHECK(write(fd, data, N) == N);
    close(fd);
    mt_mapping m;
    mt_err err;
    CHECK(mt_file_map(path, &m, &err) == MT_OK && m.size == N);
    CHECK(mt_mapping_holds(&m, m.data, N) && mt_mapping_holds(&m, m.data + N, 0));
    CHECK(!mt_mapping_holds(&m, m.data + 1, N) && !mt_mapping_holds(&m, data, 1) && !mt_mapping_holds(NULL, m.data, 1));
    static const size_t offs[] = {0, 1, 4095, 4096, 5000, N - 1}, lens[] = {N, N - 1, 2, 4096, 7000, 1};
    for (size_t i = 0; i < MT_ARRAY_LEN(offs); i++) {
        memset(got, 0, sizeof got);
        mt_mapping_copy(&m, m.data + offs[i], lens[i], got);
        CHECK_MSG(memcmp(got, data + offs[i], lens[i]) == 0, "copy of %zu bytes at %zu", lens[i], offs[i]);
    }
    mt_file_unmap(&m);
    CHECK(m.data == NULL);
    unlink(path);
}

/* Huge-page memory: aligned to 2 MiB, writable to its last byte, counted by the fault injection. */
static void test_pages(void) {
    size_t n = (5 << 20) + 3;
    uint8_t *p = mt_malloc_pages(n);
    CHECK(p && ((uintptr_t)p & ((2u << 20) - 1)) == 0);
    if (p) p[0] = 1, p[n - 1] = 2;
    mt_free_pages(p, n);
    mt_alloc_fail_after(1);
    CHECK(mt_malloc_pages(4096) == NULL);
    mt_alloc_fail_after(0);
    CHECK(mt_mem_available() > 0);
}

static void test_fault_injection(void) {
    mt_alloc_fail_after(2);
    void *a = mt_malloc(10);
    void *b = mt_malloc(10);
    CHECK(a != NULL && b == NULL);
    mt_alloc_fail_after(0);
    mt_free(a);
}

int main(void) {
    test_pool();
    print_pool_cost();
    test_arena();
    test_json();
    test_dir_make_all();
    test_fault_injection();
    test_mapping_copy();
    test_pages();
    return check_report();
}
