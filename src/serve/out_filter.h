/* serve/out_filter: the answer's text as a client sees it - cut at the first stop string (which is not sent), and
 * with the model's tool calls taken out of the content.
 *
 *     mt_out_filter f;  mt_out_filter_init(&f, stops, n_stops, "<tool_call>");
 *     for each decoded piece: if (mt_out_filter_push(&f, piece, len, &emit)) break;   // a stop string ended it
 *     send emit as content ...
 *     mt_out_filter_flush(&f, &emit);  f.tool holds the text from the tool-call tag on (empty when none)
 *
 * Text that may be the start of a stop string or of the tool-call tag is held back until it is known not to be,
 * so a streamed answer never shows part of either. */
#ifndef MT_OUT_FILTER_H
#define MT_OUT_FILTER_H

#include "base/buf.h"

#define MT_MAX_STOPS 4

typedef struct mt_out_filter {
    const char *stops[MT_MAX_STOPS];
    size_t stop_len[MT_MAX_STOPS];
    int n_stops;
    const char *tool_tag; /* NULL: tool calls are content */
    mt_buf held;          /* text not sent yet */
    mt_buf tool;          /* from the tool-call tag on */
    bool stopped;
} mt_out_filter;

/* stops and tool_tag must outlive f; empty stop strings are ignored. */
void mt_out_filter_init(mt_out_filter *f, const char *const *stops, int n_stops, const char *tool_tag);
/* Appends to emit what can be sent now. true: a stop string was found (the answer ends; later pushes add nothing). */
bool mt_out_filter_push(mt_out_filter *f, const char *text, size_t len, mt_buf *emit);
/* The end of the answer: what was held back goes to emit. */
void mt_out_filter_flush(mt_out_filter *f, mt_buf *emit);
void mt_out_filter_free(mt_out_filter *f);

#endif
