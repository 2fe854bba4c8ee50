/* models/decoder: the weights and forward of the text decoder part (see decoder.h for the kinds).
 *
 * Reference: transformers models/qwen2/modeling_qwen2.py, models/qwen3/modeling_qwen3.py and
 * models/qwen3_moe/modeling_qwen3_moe.py (Qwen3DecoderLayer: pre-norm attention with q_norm / k_norm on each head
 * before the rotary, then pre-norm MLP or sparse MoE block); models/qwen2_moe/modeling_qwen2_moe.py 5.0.0.dev0 for
 * the shared expert (mlp.shared_expert.{gate,up,down}_proj, mlp.shared_expert_gate [1, H]); InternLM2's
 * modeling_internlm2.py (OpenGVLab/InternVL internvl_chat/internvl/model/internlm2) for the packed wqkv.
 */
#include "models/decoder.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct dec_layer {
    mt_norm ln1, ln2;
    mt_attn_block attn;
    mt_linear gate, up, down; /* dense FFN */
    mt_moe moe;               /* sparse FFN when moe.experts */
    mt_tensor stacks[2];      /* fused experts: gate_up_proj [E*H, 2I], down_proj [E*I, H] as registered (the weight
                                 table keeps pointers to them, so they live as long as the model) */
} dec_layer;

struct mt_decoder {
    mt_decoder_cfg cfg;
    mt_tensor embed;   /* [V, H] */
    mt_tensor lm_head; /* [V, H]: its own or a view of embed */
    dec_layer *layers;
    mt_norm final_norm;
};

const mt_decoder_cfg *mt_decoder_get_cfg(const mt_decoder *d) { return &d->cfg; }

void mt_decoder_free(mt_decoder *d) {
    if (!d) return;
    for (int64_t l = 0; d->layers && l < d->cfg.n_layers; l++) mt_free(d->layers[l].moe.experts);
    mt_free(d->layers);
    mt_free(d->cfg.dense_layer);
    mt_free(d);
}

/* The linear weight [rows, cols] that is src's columns [c0, c0 + rows) transposed (src [cols, ld] row-major): a
 * view in place, which mt_op_linear reads as stored. */
static mt_linear transposed(const char *src, mt_dtype dtype, int64_t ld, int64_t c0, int64_t rows, int64_t cols) {
    mt_linear lin = {0};
    lin.w = mt_tensor_wrap(dtype, 2, (int64_t[]){rows, cols}, src + (size_t)c0 * mt_dtype_size(dtype));
    lin.w.stride[0] = 1;
    lin.w.stride[1] = ld;
    return lin;
}

/* Qwen3-VL-MoE's stacks: x @ gate_up_proj[e] gives [gate | up] (gate first), then @ down_proj[e] - each expert's
 * Linear weights are their transposes, read in place (a copy would double the memory of the largest part). */
static void load_fused_experts(mt_loader *l, const mt_decoder_cfg *c, mt_moe *moe, mt_tensor stacks[2], const char *p,
                               int64_t i) {
    int64_t H = c->hidden, I = c->moe_inter, E = c->n_experts;
    mt_tensor *gu = &stacks[0], *dn = &stacks[1];
    char name[512];
    snprintf(name, sizeof name, "%slayers.%lld.mlp.experts.gate_up_proj", p, (long long)i);
    if (!l->st) l->st = mt_weight_stack(l->m, name, E, H, 2 * I, gu, l->err);
    snprintf(name, sizeof name, "%slayers.%lld.mlp.experts.down_proj", p, (long long)i);
    if (!l->st) l->st = mt_weight_stack(l->m, name, E, I, H, dn, l->err);
    size_t es = l->st ? 0 : mt_dtype_size(gu->dtype);
    for (int64_t e = 0; e < E && !l->st; e++) {
        const char *g = (const char *)gu->data + (size_t)(e * H * 2 * I) * es;
        const char *d = (const char *)dn->data + (size_t)(e * I * H) * mt_dtype_size(dn->dtype);
        moe->experts[e].gate = transposed(g, gu->dtype, 2 * I, 0, I, H);
        moe->experts[e].up = transposed(g, gu->dtype, 2 * I, I, I, H);
        moe->experts[e].down = transposed(d, dn->dtype, H, 0, H, I);
    }
}

static void load_moe(mt_loader *l, const mt_decoder_cfg *c, mt_moe *moe, mt_tensor stacks[2], const char *p,
                     int64_t i) {
    int64_t H = c->hidden, I = c->moe_inter, E = c->n_experts;
    *moe = (mt_moe){.n_experts = E, .top_k = c->top_k, .norm_topk = c->norm_topk, .act = c->act};
    mt_load_linear(l, &moe->router, E, H, false, "%slayers.%lld.mlp.gate.", p, (long long)i);
    if (l->st) return;
    mt_weight_of(l->m, &moe->router.w, NULL)->training = MT_WEIGHT_OPT_IN;
    moe->experts = mt_calloc((size_t)E, sizeof *moe->experts);
    if (!moe->experts) {
        l->st = mt_err_set(l->err, MT_ERR_NOMEM, "out of memory");
        return;
    }
    if (c->fused_experts) load_fused_experts(l, c, moe, stacks, p, i);
    for (int64_t e = 0; e < E && !l->st && !c->fused_experts; e++) {
        mt_moe_expert *x = &moe->experts[e];
        mt_load_linear(l, &x->gate, I, H, false, "%slayers.%lld.mlp.experts.%lld.gate_proj.", p, (long long)i,
                       (long long)e);
        mt_load_linear(l, &x->up, I, H, false, "%slayers.%lld.mlp.experts.%lld.up_proj.", p, (long long)i, (long long)e);
        mt_load_linear(l, &x->down, H, I, false, "%slayers.%lld.mlp.experts.%lld.down_proj.", p, (long long)i,
                       (long long)e);
    }
    if (!c->shared_inter) return;
    /* Qwen2-MoE: the shared expert and its gate train like any weight (not opt-in as the router: the gate picks
     * nothing, it scales every row's shared output smoothly) */
    int64_t S = c->shared_inter;
    mt_moe_expert *sh = &moe->shared;
    mt_load_linear(l, &sh->gate, S, H, false, "%slayers.%lld.mlp.shared_expert.gate_proj.", p, (long long)i);
    mt_load_linear(l, &sh->up, S, H, false, "%slayers.%lld.mlp.shared_expert.up_proj.", p, (long long)i);
    mt_load_linear(l, &sh->down, H, S, false, "%slayers.%lld.mlp.shared_expert.down_proj.", p, (long long)i);
    mt_load_linear(l, &moe->shared_gate, 1, H, false, "%slayers.%lld.mlp.shared_expert_gate.", p, (long long)i);
    moe->has_shared = moe->has_shared_gate = !l->st;
}

/* A packed projection whose rows are not the config's heads is refused naming both: a config with other head
 * counts would split the groups wrongly yet could match the shape of a plain [q | k | v] weight. */
static void packed_rows_check(mt_loader *l, const mt_decoder_cfg *c, const char *p, long long li, const char *leaf) {
    char name[512];
    snprintf(name, sizeof name, "%slayers.%lld.%sweight", p, li, leaf);
    const mt_st_tensor *t = l->st ? NULL : mt_safetensors_find(l->m->st, name);
    int64_t want = (c->n_heads + 2 * c->n_kv) * c->head_dim;
    if (t && t->ndim == 2 && t->shape[0] != want)
        l->st = mt_err_set(l->err, MT_ERR_FORMAT, "%s: tensor \"%s\" has %lld rows, but the config's heads give (%lld "
                           "query + 2 x %lld key-value heads) x head_dim %lld = %lld (num_attention_heads, "
                           "num_key_value_heads, hidden_size / heads)", l->m->dir, name, (long long)t->shape[0],
                           (long long)c->n_heads, (long long)c->n_kv, (long long)c->head_dim, (long long)want);
}

mt_status mt_decoder_load(mt_model *m, const mt_decoder_cfg *cfg, const char *p, const char *lm_head_name,
                          mt_decoder **out, mt_err *err) {
    mt_decoder *d = mt_calloc(1, sizeof *d);
    if (d) d->layers = mt_calloc((size_t)cfg->n_layers, sizeof *d->layers);
    if (!d || !d->layers) {
        mt_free(d);
        mt_free(cfg->dense_layer);
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    d->cfg = *cfg;
    const mt_decoder_cfg *c = &d->cfg;
    int64_t H = c->hidden, D = c->head_dim, qw = c->n_heads * D, kvw = c->n_kv * D;
    mt_loader l = {m, err, MT_OK};
    const mt_decoder_names *nm = c->names;
    mt_load_matrix(&l, &d->embed, c->vocab, H, "%s%sweight", p, nm->embed);
    for (int64_t i = 0; i < c->n_layers && !l.st; i++) {
        dec_layer *y = &d->layers[i];
        long long li = (long long)i;
        mt_load_norm(&l, &y->ln1, H, false, c->rms_eps, "%slayers.%lld.%s", p, li, nm->ln1);
        mt_load_norm(&l, &y->ln2, H, false, c->rms_eps, "%slayers.%lld.%s", p, li, nm->ln2);
        mt_attn_block *a = &y->attn;
        *a = (mt_attn_block){.n_heads = (int)c->n_heads, .n_kv_heads = (int)c->n_kv, .head_dim = D,
                             .scale = 1.0f / sqrtf((float)D), .window = c->window_layer[i] ? c->window : 0};
        if (nm->qkv) {
            a->packed_qkv = true;
            packed_rows_check(&l, c, p, li, nm->qkv);
            mt_load_linear(&l, &a->qkv, qw + 2 * kvw, H, c->qkv_bias, "%slayers.%lld.%s", p, li, nm->qkv);
        } else {
            mt_load_linear(&l, &a->q, qw, H, c->qkv_bias, "%slayers.%lld.%s", p, li, nm->q);
            mt_load_linear(&l, &a->k, kvw, H, c->qkv_bias, "%slayers.%lld.%s", p, li, nm->k);
            mt_load_linear(&l, &a->v, kvw, H, c->qkv_bias, "%slayers.%lld.%s", p, li, nm->v);
        }
        mt_load_linear(&l, &a->o, H, qw, c->o_bias, "%slayers.%lld.%s", p, li, nm->o);
        if (c->qk_norm) {
            mt_load_norm(&l, &a->q_norm, D, false, c->rms_eps, "%slayers.%lld.self_attn.q_norm.", p, li);
            mt_load_norm(&l, &a->k_norm, D, false, c->rms_eps, "%slayers.%lld.self_attn.k_norm.", p, li);
        }
        if (c->n_experts && !c->dense_layer[i]) {
            load_moe(&l, c, &y->moe, y->stacks, p, i);
        } else {
            mt_load_linear(&l, &y->gate, c->inter, H, false, "%slayers.%lld.%s", p, li, nm->gate);
            mt_load_linear(&l, &y->up, c->inter, H, false, "%slayers.%lld.%s", p, li, nm->up);
            mt_load_linear(&l, &y->down, H, c->inter, false, "%slayers.%lld.%s", p, li, nm->down);
        }
    }
    mt_load_norm(&l, &d->final_norm, H, false, c->rms_eps, "%snorm.", p);
    if (!l.st && c->tied) {
        d->lm_head = d->embed;
        l.st = mt_weight_alias(m, &d->embed, &d->lm_head, 0, err);
    } else if (!l.st) {
        if (!mt_safetensors_find(m->st, lm_head_name))
            l.st = mt_err_set(err, MT_ERR_FORMAT, "%s: the checkpoint has no \"%s\" and the config does not tie "
                              "the embeddings (tie_word_embeddings is false)", m->dir, lm_head_name);
        else
            mt_load_matrix(&l, &d->lm_head, c->vocab, H, "%s", lm_head_name);
    }
    if (l.st) {
        mt_decoder_free(d);
        return l.st;
    }
    *out = d;
    return MT_OK;
}

mt_tensor *mt_decoder_embed(const mt_decoder *d, mt_ctx *ctx, const int32_t *ids, int64_t n) {
    return mt_op_embedding(ctx, &d->embed, ids, n);
}

const mt_tensor *mt_decoder_lm_head(const mt_decoder *d) { return &d->lm_head; }

mt_tensor *mt_decoder_forward(const mt_decoder *d, mt_ctx *ctx, mt_kv *kv, const mt_batch *b, const mt_dump *dump) {
    const mt_decoder_cfg *c = &d->cfg;
    if (!b->embeds) return NULL;
    int64_t T = b->n;
    if (b->embeds->shape[0] != T || b->embeds->shape[1] != c->hidden)
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "decoder: batch embeddings are not [%lld, %lld]", (long long)T,
                           (long long)c->hidden);
    mt_kv_plan plan;
    mt_err perr;
    if (mt_kv_plan_batch(kv, ctx, b->seq, T, &plan, &perr)) {
        ctx->err = perr;
        return mt_ctx_fail(ctx, perr.code, "%s", perr.msg);
    }
    mt_tensor *cos, *sin;
    if (mt_nn_rope(ctx, &c->rope, b->pos, T, &cos, &sin)) return NULL;
    mt_tensor *res = mt_tensor_new_2d(ctx, MT_F32, T, c->hidden);
    mt_tensor *x = mt_ctx_rewind_keep(ctx, mt_arena_save(ctx->arena), res, b->embeds);
    for (int64_t l = 0; l < c->n_layers; l++) {
        const dec_layer *y = &d->layers[l];
        mt_arena_mark mark = mt_arena_save(ctx->arena);
        mt_tensor *h = mt_nn_norm(ctx, x, &y->ln1);
        x = mt_op_add(ctx, x, mt_nn_self_attention(ctx, &y->attn, h, cos, sin, &plan, (int)l));
        h = mt_nn_norm(ctx, x, &y->ln2);
        if (y->moe.experts) {
            /* the chosen experts are an intermediate too: routing is compared with the reference's exactly */
            int64_t k = y->moe.top_k, *chosen = dump && dump->fn ? mt_arena_alloc(ctx->arena, (size_t)(T * k) * 8) : NULL;
            h = mt_nn_moe(ctx, &y->moe, h, chosen);
            if (chosen) {
                mt_tensor ct = mt_tensor_wrap(MT_I64, 2, (int64_t[]){T, k}, chosen);
                mt_dump_tensor(dump, &ct, "router_topk_%lld", (long long)l);
            }
        } else {
            h = mt_nn_gated_mlp(ctx, h, &y->gate, &y->up, &y->down, c->act);
        }
        x = mt_op_add(ctx, x, h);
        for (int i = 0; i < b->n_inject; i++)
            if (b->inject[i].layer == l && b->inject[i].feat)
                x = mt_op_index_add_rows_inplace(ctx, x, b->inject[i].rows, b->inject[i].feat);
        mt_dump_tensor(dump, x, "decoder_layer_%lld", (long long)l);
        x = mt_ctx_rewind_keep(ctx, mark, res, x);
    }
    x = mt_nn_norm(ctx, x, &d->final_norm);
    mt_dump_tensor(dump, x, "final_norm");
    if (x) mt_kv_commit(&plan);
    return x;
}
