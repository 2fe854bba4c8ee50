/* mitten info: what a checkpoint folder holds - its composition of parts, their sizes and dtypes, and memory. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "models/decoder.h"

static const char usage[] = "usage: mitten info [-m DIR | -m F.gguf [--mmproj P.gguf]] [--allow-unused]\n\nPrints the composition (parts, "
                            "parameters and dtypes of each) and the memory a session needs.\n"
                            "--allow-unused loads a checkpoint that holds tensors no part reads.\n";

/* The checkpoint dtypes of one part's weights, as "bf16" or "bf16+f32". */
static void part_dtypes(const mt_model *m, mt_model_part part, char *out, size_t cap) {
    bool seen[MT_DTYPE_COUNT + 1] = {0};
    for (size_t i = 0; i < m->n_weights; i++) {
        const mt_st_tensor *t = mt_safetensors_find(m->st, m->weights[i].name);
        if (m->weights[i].part == part && t) seen[t->dtype] = true;
    }
    size_t n = 0;
    out[0] = 0;
    for (int d = 0; d < MT_DTYPE_COUNT && n < cap; d++)
        if (seen[d]) n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "+" : "", mt_dtype_name((mt_dtype)d));
}

static void print_part(const mt_model *m, const char *what, const char *name, mt_model_part part, size_t params) {
    char dtypes[64];
    part_dtypes(m, part, dtypes, sizeof dtypes);
    printf("  %-10s %-24s %14zu  %s\n", what, name, params, dtypes);
}

int mt_cmd_info(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", usage), MT_EXIT_OK;
    const char *dir = mt_cli_default_model();
    mt_model_params mp = {0};
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_opt(&a, "-m", &dir, &bad) || mt_cli_opt(&a, "--mmproj", &mp.mmproj, &bad)) continue;
        if (mt_cli_flag(&a, "--allow-unused")) mp.allow_unused = true;
        else return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
    }
    if (bad) return MT_EXIT_USAGE;
    mt_err err;
    mt_model *m;
    mp.mmap = true; /* the weights are only counted here: copying them would be all the work */
    if (mt_model_open_params(dir, &mp, &m, &err)) return mt_cli_fail(&err);
    const mt_model_desc *d = &m->desc;
    const mt_decoder_cfg *c = mt_decoder_get_cfg(m->decoder);
    printf("model         %s\narchitecture  %s\n", dir, m->comp->name);
    printf("decoder       %s: %lld layers, hidden %lld, %lld heads / %lld KV heads of %lld, vocab %lld, context %lld%s\n",
           m->decoder_kind, (long long)c->n_layers, (long long)c->hidden, (long long)c->n_heads,
           (long long)c->n_kv, (long long)c->head_dim, (long long)c->vocab, (long long)d->max_positions,
           c->tied ? ", tied head" : "");
    if (c->n_experts) {
        int64_t dense = 0;
        for (int64_t l = 0; l < c->n_layers; l++) dense += c->dense_layer[l];
        printf("              MoE: %lld experts of width %lld, top %lld%s, %lld dense layer(s)\n",
               (long long)c->n_experts, (long long)c->moe_inter, (long long)c->top_k,
               c->norm_topk ? " renormalised" : "", (long long)dense);
    }
    printf("parts         %-24s %12s  dtypes\n", "", "parameters");
    if (m->comp->vision) {
        print_part(m, "vision", m->comp->vision->name, MT_PART_VISION, d->params_vision);
        print_part(m, "projector", "", MT_PART_PROJECTOR, d->params_projector);
    }
    print_part(m, "decoder", m->decoder_kind, MT_PART_LANGUAGE, d->params_language);
    if (m->comp->processor) printf("  %-10s %s\n", "processor", m->comp->processor->name);
    printf("  %-10s %-24s %14zu\n", "total", "", d->params_vision + d->params_projector + d->params_language);
    size_t bytes = mt_safetensors_total_bytes(m->st);
    double kv_per_token = (double)d->n_layers * (double)(d->k_width + d->v_width) * sizeof(float);
    printf("memory\n  weights (mapped)       %10.1f MiB\n  KV cache per token     %10.1f KiB (f32)\n"
           "  KV cache at 4096       %10.1f MiB\n",
           (double)bytes / 1048576.0, kv_per_token / 1024.0, kv_per_token * 4096 / 1048576.0);
    mt_model_close(m);
    return MT_EXIT_OK;
}
