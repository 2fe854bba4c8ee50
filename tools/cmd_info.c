/* mitten info: what a checkpoint folder holds - architecture, sizes, parameters per part, dtypes, memory. */
#include <stdio.h>

#include "cli.h"
#include "models/model.h"

static const char usage[] = "usage: mitten info [-m DIR]\n\nPrints the architecture, parameters per part, dtypes and "
                            "the memory a session needs.\n";

static void print_count(const char *what, size_t n) {
    printf("  %-22s %10.3f M\n", what, (double)n / 1e6);
}

int mt_cmd_info(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", usage), MT_EXIT_OK;
    const char *dir = mt_cli_default_model();
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++)
        if (!mt_cli_opt(&a, "-m", &dir, &bad)) return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
    if (bad) return MT_EXIT_USAGE;
    mt_err err;
    mt_model *m;
    if (mt_model_open(dir, &m, &err)) return mt_cli_fail(&err);
    const mt_model_desc *d = &m->desc;
    printf("model         %s\nfamily        %s\nweights dtype %s\n", dir, m->family->name, mt_dtype_name(d->weight_dtype));
    printf("text          %lld layers, hidden %lld, vocab %lld, KV width %lld, context %lld\n", (long long)d->n_layers,
           (long long)d->hidden_size, (long long)d->vocab_size, (long long)d->kv_width, (long long)d->max_positions);
    printf("vision        patch values %lld, merge %lldx%lld\n", (long long)d->patch_dim, (long long)d->merge_size,
           (long long)d->merge_size);
    printf("parameters\n");
    print_count("vision tower", d->params_vision);
    print_count("projector (merger)", d->params_projector);
    print_count("language model", d->params_language);
    print_count("total", d->params_vision + d->params_projector + d->params_language);
    size_t bytes = mt_safetensors_total_bytes(m->st);
    double kv_per_token = (double)d->n_layers * 2.0 * (double)d->kv_width * sizeof(float);
    printf("memory\n  weights (mapped)       %10.1f MiB\n  KV cache per token     %10.1f KiB (f32)\n"
           "  KV cache at 4096       %10.1f MiB\n",
           (double)bytes / 1048576.0, kv_per_token / 1024.0, kv_per_token * 4096 / 1048576.0);
    mt_model_close(m);
    return MT_EXIT_OK;
}
