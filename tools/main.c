/* mitten: the command-line front end. Each subcommand lives in tools/cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tensor/cpu/cpu.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *what;
} commands[] = {
    {"run", mt_cmd_run, "answer one prompt about images, streamed to stdout"},
    {"chat", mt_cmd_chat, "multi-turn conversation; /image PATH attaches an image"},
    {"serve", mt_cmd_serve, "OpenAI-compatible API server and chat page, many requests batched together"},
    {"train", mt_cmd_train, "instruction-tune on image-text conversations (full or LoRA), resumable"},
    {"merge", mt_cmd_merge, "fold a LoRA adapter into a full model folder"},
    {"quantize", mt_cmd_quantize, "write the model as GGUF files for llama.cpp and Ollama (f16 ... q4_K)"},
    {"export", mt_cmd_export, "hand a (fine-tuned) model to llama.cpp and Ollama: --gguf F.gguf, bf16 by default"},
    {"info", mt_cmd_info, "architecture, parameters per part, dtypes, memory"},
    {"logits", mt_cmd_logits, "logits of every position for given token ids (checks against other implementations)"},
    {"perplexity", mt_cmd_perplexity,
     "perplexity of a text; with --base, KL divergence and top-1 agreement against another model"},
    {"template", mt_cmd_template, "the exact prompt the model's chat template makes of a conversation"},
    {"tokenize", mt_cmd_tokenize, "token ids (and pieces) of a text, as the model's tokenizer gives them"},
    {"detokenize", mt_cmd_detokenize, "the text of token ids"},
    {"preprocess", mt_cmd_preprocess, "an image as the model's pixel values and grid (.npy)"},
    {"bench", mt_cmd_bench, "speed of vision encode, prefill, decode and matmul against this machine's limits"},
};

/* Every command takes -m; tools/cli.c resolves a repo id given there before the command runs. */
static const char hub_help[] =
    "-m also takes a Hugging Face repo id (ORG/NAME), found in the local Hugging Face cache ($HF_HUB_CACHE, else\n"
    "$HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub); a folder of that name\n"
    "wins. --revision REV picks its branch, tag or commit (default main). mitten downloads nothing:\n"
    "`hf download ORG/NAME` puts a model there.\n";

static int usage(FILE *f) {
    fprintf(f, "mitten %s - run and fine-tune multimodal LLMs from Hugging Face checkpoints\n\n"
               "usage: mitten COMMAND [options]   (mitten COMMAND --help for its options)\n\ncommands:\n",
            MT_VERSION);
    for (size_t i = 0; i < MT_ARRAY_LEN(commands); i++) fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].what);
    return f == stdout ? MT_EXIT_OK : MT_EXIT_USAGE;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage(stderr);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)
        return usage(stdout);
    if (strcmp(argv[1], "--version") == 0) {
        printf("mitten %s\n", MT_VERSION);
        return MT_EXIT_OK;
    }
    const char *env = mt_cpu_env_problem();
    if (env) {
        fprintf(stderr, "mitten: %s\n", env);
        return MT_EXIT_USAGE;
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(commands); i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        int n = argc - 1;
        if (mt_cli_help(n, argv + 1)) {
            int rc = commands[i].fn(n, argv + 1);
            printf("\n%s", hub_help);
            return rc;
        }
        int rc = mt_cli_resolve_models(&n, argv + 1);
        return rc ? rc : commands[i].fn(n, argv + 1);
    }
    fprintf(stderr, "mitten: unknown command \"%s\"\n\n", argv[1]);
    return usage(stderr);
}
