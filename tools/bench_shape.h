/* tools/bench_shape: the random checkpoint of a named model shape, cached for `mitten bench --shape NAME`.
 *
 * bench/shapes/NAME.json in the source tree names the cache folder and the command (relative to the source tree,
 * run with /usr/bin/python3 and "--out DIR" appended) that writes a random checkpoint of that shape. The folder is
 * $XDG_CACHE_HOME/mitten/shapes/FOLDER or ~/.cache/mitten/shapes/FOLDER (or dir_opt), generated once. */
#ifndef MT_BENCH_SHAPE_H
#define MT_BENCH_SHAPE_H

#include <stddef.h>

#include "base/base.h"

/* Fills dir with the checkpoint folder of shape `name`, generating it when it has no config.json. */
mt_status mt_bench_shape_checkpoint(const char *name, const char *dir_opt, char *dir, size_t cap, mt_err *err);

#endif
