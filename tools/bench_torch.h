/* tools/bench_torch: the PyTorch peer of `mitten bench --train`: bench/bench_train_ref.py run in its own process
 * on the same model, batch formula and thread count (Debian's python3-torch; OpenBLAS when installed, as
 * bench/bench_train.sh picks it, because the default netlib BLAS would make PyTorch a straw man). */
#ifndef MT_TOOLS_BENCH_TORCH_H
#define MT_TOOLS_BENCH_TORCH_H

#include "base/base.h"

typedef struct mt_torch_train {
    double seconds;     /* the fastest timed step */
    double tokens;      /* of the batch */
    double peak_rss_mib;
    char version[32];   /* torch.__version__ */
    char blas[160];
} mt_torch_train;

/* Runs one warm-up and `steps` timed steps of bench_train_ref.py on model_dir (its own random 448x448 picture). */
mt_status mt_bench_torch_train(const char *model_dir, bool lora, int threads, int batch, int64_t user,
                               int64_t assistant, int steps, mt_torch_train *out, mt_err *err);

#endif
