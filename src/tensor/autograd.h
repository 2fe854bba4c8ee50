/* tensor/autograd: the tape that turns a forward pass into its gradient.
 *
 * Training runs the model's one forward with ctx->tape set. Every op whose input requires a gradient appends a
 * node (its backward, its inputs, what backward needs); mt_backward then walks the nodes newest first and adds
 * each output's gradient into its inputs' gradients:
 *
 *     mt_tape *tape; mt_tape_new(&tape, &err);
 *     ctx.tape = tape;
 *     w->requires_grad = true; w->grad = persistent_grad;      // parameters: f32, gradient buffers kept by caller
 *     mt_tensor *loss = mt_op_cross_entropy(&ctx, model_forward(&ctx, ...), targets, 1.0f / n_supervised);
 *     mt_backward(&ctx, loss);                                 // w->grad += d loss / d w
 *     mt_tape_reset(tape); mt_arena_reset(ctx.arena);          // next micro-batch
 *
 * Gradients are f32 and contiguous in their tensor's logical shape. A parameter's grad buffer is the caller's and
 * only ever added to, which is gradient accumulation across micro-batches for free. Intermediate gradients are
 * allocated in ctx->arena as backward reaches them. Views (rows, reshape, transpose) record a node that maps their
 * gradient back into the viewed tensor's gradient; the viewed tensor must be contiguous.
 *
 * Weights a parameter does not cover (frozen, possibly bf16 in a mapped checkpoint) take part in backward only as
 * constants: linear layers still pass the gradient to their input through them.
 */
#ifndef MT_AUTOGRAD_H
#define MT_AUTOGRAD_H

#include "tensor/tensor.h"

typedef struct mt_tape_node mt_tape_node;

mt_status mt_tape_new(mt_tape **out, mt_err *err);
void mt_tape_free(mt_tape *tape);
/* Forgets every node (after backward, before the next forward); keeps the node array's memory. */
void mt_tape_reset(mt_tape *tape);
size_t mt_tape_count(const mt_tape *tape);

/* Gradient of loss (one element) with respect to every tensor on the tape that requires one. Fails on a loss that
 * is not one element, on an empty tape, on a tape already walked (reset it and run forward again: a second walk
 * would add every gradient again), or when a backward kernel fails (out of scratch memory). */
mt_status mt_backward(mt_ctx *ctx, mt_tensor *loss);

/* For ops: whether an op with these inputs records itself (ctx->tape set and some input requires a gradient). */
bool mt_tape_wants(const mt_ctx *ctx, const mt_tensor *a, const mt_tensor *b, const mt_tensor *c);

/* What a node keeps. Inputs are copied by value (their data must outlive backward; the structs need not) and
 * pointed to when they require a gradient, so backward can reach their grad. */
typedef void (*mt_backward_fn)(mt_ctx *ctx, const mt_tape_node *node);
struct mt_tape_node {
    mt_backward_fn backward;
    mt_tensor *out;
    mt_tensor in[3];
    mt_tensor *src[3]; /* NULL when that input needs no gradient */
    float f[2];
    int64_t i[4];
    const void *aux; /* op-specific, in ctx->arena */
};

/* Appends a node for out with inputs a, b, c (any may be NULL); marks out as requiring a gradient. Returns the
 * node for the op to fill f/i/aux, or NULL (failure recorded in ctx) when the node array cannot grow. */
mt_tape_node *mt_tape_record(mt_ctx *ctx, mt_backward_fn fn, mt_tensor *out, const mt_tensor *a, const mt_tensor *b,
                             const mt_tensor *c);

/* The gradient of t, allocated zeroed in ctx->arena on first use. NULL (failure in ctx) when out of memory. */
mt_tensor *mt_grad_of(mt_ctx *ctx, mt_tensor *t);

#endif
