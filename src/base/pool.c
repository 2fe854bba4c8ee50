/* base/pool: persistent worker threads woken per parallel-for by a generation counter. */
#include "base/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

struct mt_pool {
    int n_threads; /* including the caller */
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t generation;
    bool quit;
    /* the job in flight */
    mt_pool_fn fn;
    void *ctx;
    int64_t n_tasks;
    atomic_int_fast64_t next;
    int busy; /* workers still inside the current job */
};

typedef struct {
    mt_pool *pool;
    int index;
} worker_arg;

static void drain(mt_pool *p, int thread) {
    for (;;) {
        int64_t t = atomic_fetch_add(&p->next, 1);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    mt_pool *p = wa->pool;
    int index = wa->index;
    mt_free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        drain(p, index);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

mt_status mt_pool_new(int n_threads, mt_pool **out, mt_err *err) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > 1024) return mt_err_set(err, MT_ERR_LIMIT, "thread pool: %d threads is too many", n_threads);
    mt_pool *p = mt_calloc(1, sizeof *p);
    if (!p) return mt_err_set(err, MT_ERR_NOMEM, "thread pool: out of memory");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->workers = mt_calloc((size_t)n_threads - 1, sizeof(pthread_t));
        if (!p->workers) {
            mt_pool_free(p);
            return mt_err_set(err, MT_ERR_NOMEM, "thread pool: out of memory");
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = mt_malloc(sizeof *wa);
        if (wa) *wa = (worker_arg){p, i};
        if (!wa || pthread_create(&p->workers[i - 1], NULL, worker_main, wa) != 0) {
            mt_free(wa);
            p->n_threads = i;
            mt_pool_free(p);
            return mt_err_set(err, MT_ERR_INTERNAL, "thread pool: cannot start thread %d", i);
        }
    }
    *out = p;
    return MT_OK;
}

void mt_pool_free(mt_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    mt_free(p->workers);
    mt_free(p);
}

int mt_pool_threads(const mt_pool *p) { return p ? p->n_threads : 1; }

void mt_pool_run(mt_pool *p, int64_t n_tasks, mt_pool_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->busy = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
