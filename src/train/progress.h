/* train/progress: the one-line progress bar a training run draws on a terminal, as tqdm draws it under HF Trainer.
 *
 *     step 37/100  37% [#######------------]  loss 2.3456  1234 tok/s  0:00:12<0:00:21
 *
 * | field      | what                                                                  |
 * |------------|-----------------------------------------------------------------------|
 * | step       | optimizer steps done / the run's total                                |
 * | percent    | rounded down, so 100% means done                                      |
 * | bar        | as wide as the terminal leaves room for; dropped below 10 columns     |
 * | loss       | mean loss of the steps since the last log line (the interval's mean)  |
 * | tok/s      | tokens per second since this session started                          |
 * | times      | elapsed<ETA as h:mm:ss                                                |
 *
 * The bar is redrawn in place with \r (at most 10 times a second, plus every step that logs); a log line clears it,
 * prints, and the bar comes back below it. When the stream is not a terminal nothing is drawn: the log stays the
 * plain lines that scripts and tests parse.
 */
#ifndef MT_TRAIN_PROGRESS_H
#define MT_TRAIN_PROGRESS_H

#include <stdio.h>

#include "base/base.h"

typedef struct mt_progress_state {
    int64_t step, total;  /* steps done, of */
    double loss;          /* interval mean; NaN: not shown */
    double tokens_per_s;  /* < 0 or not finite: not shown */
    double elapsed, eta;  /* seconds; an ETA < 0 or not finite shows as ?:??:?? */
} mt_progress_state;

/* secs as h:mm:ss, rounded to the nearest second (hours grow past two digits); "?:??:??" when negative or not
 * finite. Writes at most cap bytes with the terminating NUL. */
void mt_progress_duration(double secs, char *out, size_t cap);

/* The bar line of s in at most width - 1 columns (the last column of a terminal wraps on some), without \r or a
 * newline; the bar shrinks first, then goes, then the line is cut. Returns its length (< cap). */
size_t mt_progress_format(const mt_progress_state *s, int width, char *out, size_t cap);

typedef struct mt_progress {
    FILE *f;
    bool on;          /* drawing: f is a terminal */
    int width;        /* columns */
    size_t shown;     /* length of the bar on screen now, 0: none */
    double last_draw; /* mt_time_now() of the last draw */
} mt_progress;

/* On when f is a terminal; the width comes from the terminal, else $COLUMNS, else 80. */
void mt_progress_start(mt_progress *p, FILE *f);
/* Redraws the bar with s; without force, not sooner than 0.1 s after the last draw. */
void mt_progress_draw(mt_progress *p, const mt_progress_state *s, bool force);
/* Clears the bar, so a line can be printed where it was. */
void mt_progress_clear(mt_progress *p);
/* Leaves the last bar on screen and ends its line. */
void mt_progress_end(mt_progress *p);

#endif
