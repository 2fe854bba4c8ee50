/* tensor/autograd: the tape, the lazily allocated gradients and the reverse walk. */
#include "tensor/autograd.h"

#include <string.h>

struct mt_tape {
    mt_tape_node *nodes;
    size_t n, cap;
    bool walked; /* backward ran: a second walk would add every gradient again */
};

mt_status mt_tape_new(mt_tape **out, mt_err *err) {
    *out = mt_calloc(1, sizeof **out);
    if (!*out) return mt_err_set(err, MT_ERR_NOMEM, "out of memory for the autograd tape");
    return MT_OK;
}

void mt_tape_free(mt_tape *tape) {
    if (!tape) return;
    mt_free(tape->nodes);
    mt_free(tape);
}

void mt_tape_reset(mt_tape *tape) {
    tape->n = 0;
    tape->walked = false;
}

size_t mt_tape_count(const mt_tape *tape) { return tape->n; }

bool mt_tape_wants(const mt_ctx *ctx, const mt_tensor *a, const mt_tensor *b, const mt_tensor *c) {
    if (!ctx->tape) return false;
    return (a && a->requires_grad) || (b && b->requires_grad) || (c && c->requires_grad);
}

mt_tape_node *mt_tape_record(mt_ctx *ctx, mt_backward_fn fn, mt_tensor *out, const mt_tensor *a, const mt_tensor *b,
                             const mt_tensor *c) {
    mt_tape *tape = ctx->tape;
    if (tape->n == tape->cap) {
        size_t cap = tape->cap ? tape->cap * 2 : 256;
        mt_tape_node *grown = mt_realloc(tape->nodes, cap * sizeof *grown);
        if (!grown) {
            mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory for %zu autograd tape nodes", cap);
            return NULL;
        }
        tape->nodes = grown;
        tape->cap = cap;
    }
    mt_tape_node *n = &tape->nodes[tape->n++];
    memset(n, 0, sizeof *n);
    n->backward = fn;
    n->out = out;
    const mt_tensor *ins[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        if (!ins[i]) continue;
        n->in[i] = *ins[i];
        n->src[i] = ins[i]->requires_grad ? (mt_tensor *)ins[i] : NULL;
    }
    out->requires_grad = true;
    out->grad = NULL;
    return n;
}

mt_tensor *mt_grad_of(mt_ctx *ctx, mt_tensor *t) {
    if (t->grad) return t->grad;
    t->grad = mt_tensor_zeros(ctx, MT_F32, t->ndim, t->shape);
    return t->grad;
}

mt_status mt_backward(mt_ctx *ctx, mt_tensor *loss) {
    if (!loss) return ctx->status ? ctx->status : MT_ERR_INTERNAL;
    if (mt_tensor_numel(loss) != 1 || loss->dtype != MT_F32) {
        mt_ctx_fail(ctx, MT_ERR_INTERNAL, "backward: the loss must be one f32 value");
        return ctx->status;
    }
    if (ctx->tape && ctx->tape->walked) {
        mt_ctx_fail(ctx, MT_ERR_INTERNAL, "backward: this tape was already walked; reset it and run forward again");
        return ctx->status;
    }
    if (!ctx->tape || !loss->requires_grad || ctx->tape->n == 0) {
        mt_ctx_fail(ctx, MT_ERR_INTERNAL, "backward: nothing on the tape leads to the loss");
        return ctx->status;
    }
    mt_tensor *g = mt_grad_of(ctx, loss);
    if (!g) return ctx->status;
    mt_f32(g)[0] += 1.0f;
    mt_tape *tape = ctx->tape;
    tape->walked = true;
    for (size_t i = tape->n; i-- > 0;) {
        const mt_tape_node *n = &tape->nodes[i];
        if (!n->out->grad) continue; /* nothing downstream of this op reached the loss */
        n->backward(ctx, n);
        if (ctx->status) return ctx->status;
    }
    return MT_OK;
}
