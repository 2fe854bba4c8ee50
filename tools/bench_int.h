/* tools/bench_int: what cmd_bench.c measures and bench_report.c prints - the figures of one `mitten bench` run. */
#ifndef MT_BENCH_INT_H
#define MT_BENCH_INT_H

#include "models/model.h"
#include "tensor/cpu/roofline.h"

#define MAX_FIGURES 64

typedef struct figure {
    char name[80];
    double seconds;  /* one timed run */
    double count;    /* images, tokens or calls in that run */
    const char *unit;
    double flop;     /* work of the run */
    double bytes;    /* memory read in the run, for memory-bound cases */
    bool mem_bound;  /* share of read bandwidth rather than bf16 peak */
    double target;   /* share to reach, 0 = none */
    double target_seconds; /* time to stay under instead (work that no roofline bounds, video decoding), 0 = none */
    double peak_rss; /* bytes, 0 = not measured */
    double cpu;      /* CPU time of the process over wall time x threads: under 1 when others shared the cores */
    bool training;   /* a training step: its memory is not held to the inference budget */
    bool peer;       /* another program's figure (PyTorch): no CPU share of mitten's, not in mitten's memory */
} figure;

/* What the FLOP and byte counts need from the checkpoint (see the table above). */
typedef struct work_model {
    double text_params, text_bytes, head_params, head_bytes, q_width; /* q_width: summed over the layers */
    double vis_embed_params, vis_patch_params, vis_unit_params, vis_width; /* embed: the patch embedding alone */
    int64_t patch, merge, depth, full_blocks, window_units; /* window_units 0: every block attends to the image */
    int64_t cls, tile; /* tiled towers (InternViT): class tokens a tile adds, tile side in pixels; else 0 */
} work_model;

typedef struct bench {
    const mt_model *m;
    mt_pool *pool;
    mt_roofline rf;
    work_model w;
    figure fig[MAX_FIGURES];
    int n_fig;
    double kv_bytes;
} bench;

/* The results as a table, or as JSON, with the run's commit, CPU, date and load average. */
void mt_bench_print_table(const bench *b, const char *commit, const char *cpu, const char *date, const char *load);
void mt_bench_print_json(const bench *b, const char *commit, const char *cpu, const char *date, const char *load);

#endif
