/* train/plot: the loss curve of a run as a self-contained SVG file (no dependencies, opens in any browser).
 *
 * Usage:
 *     mt_plot_series train = {.step = steps, .value = losses, .n = n, .label = "train loss"};
 *     mt_plot_series eval = {.step = eval_steps, .value = eval_losses, .n = n_eval, .label = "eval loss"};
 *     mt_plot_loss_svg("run1/loss.svg", "Qwen2.5-VL-3B, LoRA 16", &train, &eval, &err);
 *
 * Drawing (reference: SVG 1.1, W3C; 800 x 480 user units):
 *
 *     | element                         | what                                                        |
 *     | ------------------------------- | ----------------------------------------------------------- |
 *     | <text class="title">            | the title                                                   |
 *     | <line class="grid">             | one per tick, across the plot area                          |
 *     | <text class="xtick"/"ytick">    | tick labels: x = step, y = loss; nice steps (1, 2, 5 x 10^k)|
 *     | <text class="xlabel"/"ylabel">  | "step", "loss"                                              |
 *     | <polyline id="train">           | the train series, one vertex per point ("x,y" with 2 decimals)|
 *     | <circle class="eval">           | one per eval point                                          |
 *     | <g class="legend">              | series labels                                               |
 *
 * Train series with more than MT_PLOT_MAX_VERTICES points are reduced to the minimum and maximum of each pixel
 * column, so the envelope of a noisy curve stays visible. Points whose value is not finite are left out. Both
 * series are scaled together; x spans the steps of both.
 */
#ifndef MT_PLOT_H
#define MT_PLOT_H

#include "base/base.h"

#define MT_PLOT_MAX_VERTICES 4000

typedef struct mt_plot_series {
    const int64_t *step; /* (n) x values; NULL means 1, 2, ..., n */
    const double *value; /* (n) */
    int64_t n;
    const char *label; /* legend text; NULL for "train loss" / "eval loss" */
} mt_plot_series;

/* Writes the SVG atomically (mt_file_write_atomic: temporary file, fsync, rename). train and eval may be NULL
 * or empty; title may be NULL. MT_ERR_IO naming path, MT_ERR_NOMEM. */
mt_status mt_plot_loss_svg(const char *path, const char *title, const mt_plot_series *train,
                           const mt_plot_series *eval, mt_err *err);

#endif
