/* mitten tokenize / detokenize: text -> ids and ids -> text with a checkpoint's tokenizer.json (or SentencePiece's
 * tokenizer.model, or a GGUF file's vocabulary).
 *
 *   mitten tokenize -m DIR --text "Hello world"        mitten detokenize -m DIR --ids "9707 1879"
 *   9707<TAB>Hello                                     Hello world
 *   1879<TAB>Ġworld
 *
 * Each line of tokenize is an id and its token as tokenizer.json writes it (what transformers' convert_ids_to_tokens
 * gives: "Ġ" / "▁" for a space), with control characters, backslashes and bytes that are not UTF-8 escaped. */
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "cli.h"
#include "models/model.h"
#include "text/spm.h"
#include "text/tokenizer.h"


static const char tok_usage[] =
    "usage: mitten tokenize [-m DIR] (--text TEXT | --file FILE) [--ids-only] [--no-special] [--add-special-tokens]\n"
    "\n"
    "Encodes text with DIR/tokenizer.json or DIR/tokenizer.model (or -m FILE.json, FILE.model, FILE.gguf) and\n"
    "prints one \"id<TAB>token\" line per token.\n"
    "--file - reads the text from stdin.\n"
    "  --ids-only            print only the ids, space-separated, on one line\n"
    "  --no-special          special tokens written in the text stay text (split_special_tokens)\n"
    "  --add-special-tokens  add the post-processor's tokens (BOS / EOS) as transformers does by default\n";

static const char detok_usage[] =
    "usage: mitten detokenize [-m DIR] --ids \"ID ID ...\" [--skip-special]\n"
    "\n"
    "Decodes ids (separated by spaces or commas, or a JSON list such as [9707, 1879]) with DIR/tokenizer.json or\n"
    "DIR/tokenizer.model (or -m FILE.json, FILE.model, FILE.gguf) and prints the text.\n"
    "  --skip-special  leave out special tokens\n";

/* The tokenizer of -m: FILE.json, FILE.model (SentencePiece), FILE.gguf (through the model it opens, kept in *m),
 * or a folder's tokenizer.json, else its tokenizer.model. */
static mt_status load(const char *dir, mt_tokenizer **tok, mt_model **m, mt_err *err) {
    size_t n = strlen(dir);
    *m = NULL;
    if (n > 5 && !strcmp(dir + n - 5, ".json")) return mt_tokenizer_load(dir, tok, err);
    if (n > 6 && !strcmp(dir + n - 6, ".model")) return mt_tokenizer_load_spm(dir, tok, err);
    if (n > 5 && !strcmp(dir + n - 5, ".gguf")) {
        mt_model_params mp = {.mmap = true}; /* only the tokenizer is read */
        mt_status st = mt_model_open_params(dir, &mp, m, err);
        if (!st && !(*tok = (*m)->tok)) {
            mt_model_close(*m);
            *m = NULL;
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: no tokenizer", dir);
        }
        return st;
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= sizeof path)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: path too long", dir);
    if (mt_file_exists(path)) return mt_tokenizer_load(path, tok, err);
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    if (mt_file_exists(path)) return mt_tokenizer_load_spm(path, tok, err);
    return mt_err_set(err, MT_ERR_IO, "%s: neither tokenizer.json nor tokenizer.model", dir);
}

static void unload(mt_tokenizer *tok, mt_model *m) {
    if (m) mt_model_close(m);
    else mt_tokenizer_free(tok);
}

static void print_token(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') fputs("\\\\", stdout);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7F) printf("\\x%02x", c);
        else if (c < 0x80) putchar(c);
        else {
            /* a whole valid UTF-8 character as it is, anything else byte by byte */
            size_t k = 1;
            while (k < 4 && i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80) k++;
            char buf[5] = {0};
            memcpy(buf, s + i, k);
            bool ok = (k == 2 && c >= 0xC2 && c < 0xE0) || (k == 3 && c >= 0xE0 && c < 0xF0) ||
                      (k == 4 && c >= 0xF0 && c < 0xF5);
            if (ok) fputs(buf, stdout), i += k - 1;
            else printf("\\x%02x", c);
        }
    }
}

int mt_cmd_tokenize(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", tok_usage), MT_EXIT_OK;
    const char *dir = mt_cli_default_model(), *text = NULL, *file = NULL;
    bool ids_only = false;
    mt_tokenizer_encode_opts opts = mt_tokenizer_encode_default_opts();
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_opt(&a, "-m", &dir, &bad) || mt_cli_opt(&a, "--text", &text, &bad) ||
            mt_cli_opt(&a, "--file", &file, &bad))
            continue;
        if (mt_cli_flag(&a, "--ids-only")) ids_only = true;
        else if (mt_cli_flag(&a, "--no-special")) opts.parse_special = false;
        else if (mt_cli_flag(&a, "--add-special-tokens")) opts.add_special_tokens = true;
        else return mt_cli_usage(tok_usage, "unknown option %s", argv[a.i]);
    }
    if (bad) return MT_EXIT_USAGE;
    if (!text == !file) return mt_cli_usage(tok_usage, "give exactly one of --text and --file");
    mt_err err;
    char *data = NULL;
    size_t len = text ? strlen(text) : 0;
    if (file && (strcmp(file, "-") == 0 ? mt_file_read_stream(stdin, "stdin", (size_t)1 << 30, &data, &len, &err)
                                        : mt_file_read_all(file, (size_t)1 << 30, &data, &len, &err)))
        return mt_cli_fail(&err);
    mt_tokenizer *tok;
    mt_model *model;
    if (load(dir, &tok, &model, &err)) {
        mt_free(data);
        return mt_cli_fail(&err);
    }
    int32_t *ids;
    size_t n;
    mt_status st = mt_tokenizer_encode_with(tok, data ? data : text, len, &opts, &ids, &n, &err);
    mt_free(data);
    if (st) {
        unload(tok, model);
        return mt_cli_fail(&err);
    }
    for (size_t i = 0; i < n; i++) {
        if (ids_only) {
            printf(i + 1 < n ? "%d " : "%d", ids[i]);
            continue;
        }
        size_t tn = 0;
        const char *t = mt_tokenizer_id_to_token(tok, ids[i], &tn);
        printf("%d\t", ids[i]);
        print_token(t ? t : "", t ? tn : 0);
        putchar('\n');
    }
    if (ids_only) putchar('\n');
    mt_free(ids);
    unload(tok, model);
    return MT_EXIT_OK;
}

int mt_cmd_detokenize(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", detok_usage), MT_EXIT_OK;
    const char *dir = mt_cli_default_model(), *list = NULL;
    bool skip = false;
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_opt(&a, "-m", &dir, &bad) || mt_cli_opt(&a, "--ids", &list, &bad)) continue;
        if (mt_cli_flag(&a, "--skip-special")) skip = true;
        else return mt_cli_usage(detok_usage, "unknown option %s", argv[a.i]);
    }
    if (bad) return MT_EXIT_USAGE;
    if (!list) return mt_cli_usage(detok_usage, "--ids is required");
    /* a JSON list: the ids between its brackets */
    size_t end = strlen(list);
    const char *p = list + strspn(list, " \t\n");
    while (end > 0 && strchr(" \t\n", list[end - 1])) end--;
    if (*p == '[') {
        if (end == 0 || list[end - 1] != ']') return mt_cli_usage(detok_usage, "--ids: a JSON list must end with ]");
        p++;
        end--;
    }
    size_t cap = strlen(list) / 2 + 1, n = 0;
    int32_t *ids = mt_malloc_array(cap, sizeof(int32_t));
    char word[32];
    for (const char *stop = list + end; ids && p < stop;) {
        p += strspn(p, " ,\t\n");
        size_t k = strcspn(p, " ,\t\n");
        if (p + k > stop) k = (size_t)(stop - p);
        if (!k) break;
        int64_t v;
        snprintf(word, sizeof word, "%.*s", (int)(k < sizeof word ? k : sizeof word - 1), p);
        if (k >= sizeof word || !mt_cli_parse_i64(word, 0, INT32_MAX, &v)) {
            mt_free(ids);
            return mt_cli_usage(detok_usage, "--ids: \"%.*s\" is not an id", (int)(k < 40 ? k : 40), p);
        }
        ids[n++] = (int32_t)v;
        p += k;
    }
    mt_err err;
    if (!ids) return mt_err_set(&err, MT_ERR_NOMEM, "detokenize: out of memory"), mt_cli_fail(&err);
    mt_tokenizer *tok;
    mt_model *model;
    char *text = NULL;
    size_t len;
    mt_status st = load(dir, &tok, &model, &err);
    if (!st) {
        st = mt_tokenizer_decode(tok, ids, n, skip, &text, &len, &err);
        unload(tok, model);
    }
    mt_free(ids);
    if (st) return mt_cli_fail(&err);
    fwrite(text, 1, len, stdout);
    putchar('\n');
    mt_free(text);
    return MT_EXIT_OK;
}
