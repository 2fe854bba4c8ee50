/* mitten quantize / mitten export --gguf: a model folder as the GGUF files llama.cpp and Ollama load
 * (models/gguf_export.h). export is the same writer, named for handing a fine-tuned OUT/model on. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "cli.h"
#include "models/gguf_export.h"

static const char usage[] =
    "usage: mitten quantize [-m DIR] --type TYPE --out F.gguf [--mmproj-out P.gguf | --no-mmproj] [--overwrite]\n"
    "                       [--threads N]\n\n"
    "Writes the model as llama.cpp's converter and quantizer would: the language model to F.gguf (tensor names,\n"
    "metadata, tokenizer and chat template) and, for a model with vision, the vision tower and projector to\n"
    "P.gguf (default: mmproj-F.gguf beside it), the file llama.cpp's --mmproj takes.\n"
    "  --type TYPE   f32, f16, bf16, q8_0, q4_0, q4_K (llama.cpp's Q4_K_M) or q6_K\n"
    "  --threads N   threads converting rows (default: one per CPU)\n"
    "What stays in higher precision: norms, biases and other vectors (F32); the patch embedding (F32, F16 in an f16\n"
    "file); the output matrix (Q6_K in q4_0, q4_K and q6_K files); Q4_K_M's attn_v / ffn_down layers (Q6_K);\n"
    "matrices whose rows are not whole blocks (Q8_0, else F16); the projector file's matrices (Q8_0 below 8 bits).\n"
    "Existing files are refused unless --overwrite.\n";

static const char export_usage[] =
    "usage: mitten export [-m DIR] --gguf F.gguf [--type TYPE] [--mmproj-out P.gguf | --no-mmproj] [--overwrite]\n\n"
    "Hands a model folder (a fine-tuned OUT/model of mitten train, say) to llama.cpp and Ollama: mitten quantize\n"
    "with --gguf for --out and bf16 unless --type says otherwise. mitten quantize --help lists the types and what\n"
    "each keeps in higher precision.\n";

static void progress(void *user, const char *file, const char *tensor, size_t i, size_t n) {
    (void)user;
    fprintf(stderr, "\r%s: tensor %zu/%zu %-48.48s", file, i + 1, n, tensor);
    if (i + 1 == n) fputc('\n', stderr);
}

/* mmproj-NAME beside path. */
static void default_mmproj(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(out, cap, "%.*smmproj-%s", (int)(slash - path + 1), path, slash + 1);
    else snprintf(out, cap, "mmproj-%s", path);
}

static int write_gguf(int argc, char **argv, bool export_cmd) {
    const char *use = export_cmd ? export_usage : usage;
    if (mt_cli_help(argc, argv)) return printf("%s", use), MT_EXIT_OK;
    const char *dir = mt_cli_default_model(), *type = export_cmd ? "bf16" : NULL, *out = NULL, *mmproj = NULL,
               *threads = NULL;
    bool no_mmproj = false, overwrite = false;
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_opt(&a, "-m", &dir, &bad) || mt_cli_opt(&a, "--type", &type, &bad) ||
            mt_cli_opt(&a, export_cmd ? "--gguf" : "--out", &out, &bad) ||
            mt_cli_opt(&a, "--mmproj-out", &mmproj, &bad) || mt_cli_opt(&a, "--threads", &threads, &bad))
            continue;
        if (mt_cli_flag(&a, "--no-mmproj")) no_mmproj = true;
        else if (mt_cli_flag(&a, "--overwrite")) overwrite = true;
        else return mt_cli_usage(use, "unknown option %s", argv[a.i]);
    }
    if (bad) return MT_EXIT_USAGE;
    if (!type || !out) return mt_cli_usage(use, export_cmd ? "--gguf is required" : "--type and --out are required");
    if (mmproj && no_mmproj) return mt_cli_usage(use, "--mmproj-out and --no-mmproj contradict each other");
    mt_gguf_export_opts o = {.out = out, .overwrite = overwrite, .progress = progress};
    if (!mt_gguf_export_type_parse(type, &o.type)) return mt_cli_usage(use, "unknown --type %s", type);
    int64_t n_threads = 0;
    if (threads && !mt_cli_parse_i64(threads, 0, 1024, &n_threads)) return mt_cli_usage(use, "bad --threads %s", threads);
    o.threads = (int)n_threads;
    mt_err err = {0};
    mt_model *m = NULL;
    fprintf(stderr, "loading %s\n", dir);
    mt_model_params mp = {.mmap = true}; /* each weight is read once, to quantize it */
    mt_status st = mt_model_open_params(dir, &mp, &m, &err);
    char mmproj_path[4096];
    if (!st && m->comp->vision && !no_mmproj) {
        if (!mmproj) default_mmproj(out, mmproj_path, sizeof mmproj_path);
        o.mmproj_out = mmproj ? mmproj : mmproj_path;
    }
    if (!st) st = mt_model_export_gguf(m, &o, &err);
    if (!st) fprintf(stderr, "wrote %s%s%s\n", out, o.mmproj_out ? " and " : "", o.mmproj_out ? o.mmproj_out : "");
    mt_model_close(m);
    return st ? mt_cli_fail(&err) : MT_EXIT_OK;
}

int mt_cmd_quantize(int argc, char **argv) { return write_gguf(argc, argv, false); }

int mt_cmd_export(int argc, char **argv) { return write_gguf(argc, argv, true); }
