/* base/pool: the one thread pool. A parallel-for over task indices; the calling thread works too.
 *
 *     static void body(void *ctx, int64_t task, int thread) { ... }
 *     mt_pool_run(pool, n_tasks, body, ctx);   // returns when every task is done
 *
 * Tasks are handed out dynamically (an atomic counter), so uneven tasks balance. `thread` is in
 * [0, mt_pool_threads(pool)) and lets a task use per-thread scratch. A NULL pool runs everything on the caller.
 * mt_pool_run is not re-entrant: a task must not call it on the same pool.
 */
#ifndef MT_POOL_H
#define MT_POOL_H

#include "base/base.h"

typedef struct mt_pool mt_pool;
typedef void (*mt_pool_fn)(void *ctx, int64_t task, int thread);

/* n_threads <= 0 picks the number of online CPUs. */
mt_status mt_pool_new(int n_threads, mt_pool **out, mt_err *err);
void mt_pool_free(mt_pool *pool);
int mt_pool_threads(const mt_pool *pool);
void mt_pool_run(mt_pool *pool, int64_t n_tasks, mt_pool_fn fn, void *ctx);

#endif
