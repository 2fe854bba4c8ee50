/* train/plot: SVG loss curve (see plot.h for the elements drawn). */
#include "train/plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/file.h"

enum { W = 800, H = 480, LEFT = 72, RIGHT = 24, TOP = 44, BOTTOM = 56 };
#define PLOT_W (W - LEFT - RIGHT)
#define PLOT_H (H - TOP - BOTTOM)

/* Growable text; an allocation failure sets oom and later appends are dropped. */
typedef struct svgbuf {
    char *s;
    size_t len, cap;
    bool oom;
} svgbuf;

static void put(svgbuf *b, const char *fmt, ...) MT_PRINTF(2, 3);
static void put(svgbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = MT_MAX(b->cap * 2, b->len + (size_t)n + 4096);
        char *s = mt_realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* Text content with &, <, >, " escaped; control bytes dropped (XML 1.0 forbids most of them). */
static void put_text(svgbuf *b, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '&') put(b, "&amp;");
        else if (c == '<') put(b, "&lt;");
        else if (c == '>') put(b, "&gt;");
        else if (c == '"') put(b, "&quot;");
        else if (c >= 0x20) put(b, "%c", c);
    }
}

typedef struct range {
    double lo, hi;
} range;

static void widen(range *r, double v) {
    if (!isfinite(v)) return;
    r->lo = fmin(r->lo, v);
    r->hi = fmax(r->hi, v);
}

static int64_t step_at(const mt_plot_series *s, int64_t i) { return s->step ? s->step[i] : i + 1; }

/* A tick spacing of 1, 2 or 5 times a power of ten giving about five ticks over r. */
static double tick_step(range r) {
    double raw = (r.hi - r.lo) / 5;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

typedef struct frame {
    range x, y;
} frame;

static double px(const frame *f, double x) { return LEFT + (x - f->x.lo) / (f->x.hi - f->x.lo) * PLOT_W; }
static double py(const frame *f, double y) { return TOP + (f->y.hi - y) / (f->y.hi - f->y.lo) * PLOT_H; }

static void axes(svgbuf *b, const frame *f) {
    put(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", LEFT, TOP, PLOT_W,
        PLOT_H);
    /* Ticks are counted, not accumulated, so a step below the spacing of doubles near the values cannot loop. */
    double xs = fmax(tick_step(f->x), 1), ys = tick_step(f->y);
    double x0 = ceil(f->x.lo / xs), y0 = ceil(f->y.lo / ys);
    for (int k = 0; k < 20 && (x0 + k) * xs <= f->x.hi + xs * 1e-9; k++) {
        double t = (x0 + k) * xs, x = px(f, t);
        put(b, "<line class=\"grid\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, TOP, x,
            TOP + PLOT_H);
        put(b, "<text class=\"xtick\" x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%.10g</text>\n", x, TOP + PLOT_H + 18,
            fabs(t) < xs * 1e-9 ? 0.0 : t);
    }
    for (int k = 0; k < 20 && (y0 + k) * ys <= f->y.hi + ys * 1e-9; k++) {
        double t = (y0 + k) * ys, y = py(f, t);
        put(b, "<line class=\"grid\" x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"#ddd\"/>\n", LEFT, y,
            LEFT + PLOT_W, y);
        put(b, "<text class=\"ytick\" x=\"%d\" y=\"%.2f\" text-anchor=\"end\" dominant-baseline=\"middle\">%.10g</text>\n",
            LEFT - 6, y, fabs(t) < ys * 1e-9 ? 0.0 : t);
    }
    put(b, "<text class=\"xlabel\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>\n", LEFT + PLOT_W / 2, H - 14);
    put(b, "<text class=\"ylabel\" x=\"16\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 16 %d)\">loss</text>\n",
        TOP + PLOT_H / 2, TOP + PLOT_H / 2);
}

static void vertex(svgbuf *b, const frame *f, double x, double y) { put(b, "%.2f,%.2f ", px(f, x), py(f, y)); }

static void train_line(svgbuf *b, const frame *f, const mt_plot_series *s) {
    put(b, "<polyline id=\"train\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"");
    if (s->n <= MT_PLOT_MAX_VERTICES) {
        for (int64_t i = 0; i < s->n; i++)
            if (isfinite(s->value[i])) vertex(b, f, (double)step_at(s, i), s->value[i]);
    } else {
        /* Per pixel column, the lowest and the highest point, in step order. */
        int64_t i = 0;
        while (i < s->n) {
            long col = lround(px(f, (double)step_at(s, i)));
            int64_t lo = -1, hi = -1, j = i;
            for (; j < s->n && lround(px(f, (double)step_at(s, j))) == col; j++) {
                if (!isfinite(s->value[j])) continue;
                if (lo < 0 || s->value[j] < s->value[lo]) lo = j;
                if (hi < 0 || s->value[j] > s->value[hi]) hi = j;
            }
            if (lo >= 0) {
                int64_t a = MT_MIN(lo, hi), c = MT_MAX(lo, hi);
                vertex(b, f, (double)step_at(s, a), s->value[a]);
                if (c != a) vertex(b, f, (double)step_at(s, c), s->value[c]);
            }
            i = j;
        }
    }
    put(b, "\"/>\n");
}

static void legend(svgbuf *b, int row, const char *label, bool line) {
    int y = TOP + 16 + 18 * row, x = LEFT + PLOT_W - 150;
    put(b, "<g class=\"legend\">");
    if (line) put(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#1f77b4\" stroke-width=\"2\"/>", x, y, x + 20, y);
    else put(b, "<circle cx=\"%d\" cy=\"%d\" r=\"3.5\" fill=\"#ff7f0e\"/>", x + 10, y);
    put(b, "<text x=\"%d\" y=\"%d\" dominant-baseline=\"middle\">", x + 26, y);
    put_text(b, label);
    put(b, "</text></g>\n");
}

mt_status mt_plot_loss_svg(const char *path, const char *title, const mt_plot_series *train,
                           const mt_plot_series *eval, mt_err *err) {
    static const mt_plot_series none = {0};
    if (!train) train = &none;
    if (!eval) eval = &none;
    frame f = {{INFINITY, -INFINITY}, {INFINITY, -INFINITY}};
    const mt_plot_series *all[2] = {train, eval};
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < all[k]->n; i++)
            if (isfinite(all[k]->value[i])) {
                widen(&f.x, (double)step_at(all[k], i));
                widen(&f.y, all[k]->value[i]);
            }
    if (f.x.lo > f.x.hi) f.x = (range){0, 1};
    if (f.y.lo > f.y.hi) f.y = (range){0, 1};
    if (f.x.hi - f.x.lo < 1) f.x.hi = f.x.lo + 1;
    double pad = (f.y.hi - f.y.lo) * 0.05;
    if (!(pad > 1e-12 * fmax(1, fabs(f.y.hi)))) pad = fmax(fabs(f.y.hi) * 0.1, 0.5);
    f.y.lo -= pad;
    f.y.hi += pad;

    svgbuf b = {0};
    put(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    put(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    put(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    put(&b, "<text class=\"title\" x=\"%d\" y=\"26\" text-anchor=\"middle\" font-size=\"15\">", W / 2);
    put_text(&b, title ? title : "loss");
    put(&b, "</text>\n");
    axes(&b, &f);
    if (train->n > 0) train_line(&b, &f, train);
    for (int64_t i = 0; i < eval->n; i++)
        if (isfinite(eval->value[i]))
            put(&b, "<circle class=\"eval\" cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\" fill=\"#ff7f0e\"/>\n",
                px(&f, (double)step_at(eval, i)), py(&f, eval->value[i]));
    int rows = (train->n > 0) + (eval->n > 0);
    if (rows) /* a backdrop, so the legend stays readable over the curve */
        put(&b, "<rect x=\"%d\" y=\"%d\" width=\"152\" height=\"%d\" fill=\"white\" fill-opacity=\"0.85\"/>\n",
            LEFT + PLOT_W - 158, TOP + 5, 18 * rows + 4);
    if (train->n > 0) legend(&b, 0, train->label ? train->label : "train loss", true);
    if (eval->n > 0) legend(&b, train->n > 0, eval->label ? eval->label : "eval loss", false);
    put(&b, "</svg>\n");
    mt_status s = b.oom ? mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory drawing the loss curve", path)
                        : mt_file_write_atomic(path, b.s, b.len, err);
    mt_free(b.s);
    return s;
}
