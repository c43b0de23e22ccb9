/* align tokenizer: encode, decode, inspect and train tokenizers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/tokenizer.h"
#include "args.h"
#include "commands.h"

static const char *usage_text =
    "usage: align tokenizer <encode|decode|info|train> [options]\n"
    "\n"
    "  encode   text -> token ids\n"
    "  decode   token ids -> text\n"
    "  info     kind, vocabulary size and special ids of a tokenizer\n"
    "  train    train a byte-level BPE tokenizer and write tokenizer.json\n"
    "\n"
    "A tokenizer (-z) is a llama2.c tokenizer .bin, an HF tokenizer.json, a GPT-2\n"
    "encoder.json (vocab.bpe beside it), a .gguf file, or a directory holding one.\n"
    "'align tokenizer <sub> --help' explains each sub-command.\n";

static int fail(const char *cmd)
{
    fprintf(stderr, "%s: %s\n", cmd, al_errmsg());
    return 1;
}

static int read_stream(FILE *fp, al_buf *out)
{
    char chunk[65536];
    size_t n;
    if (al_buf_append(out, "", 0))
        return -1;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        if (al_buf_append(out, chunk, n))
            return -1;
    return ferror(fp) ? al_fail("read error on standard input") : 0;
}

/* Prints a piece so that every byte is visible and lines stay one per token. */
static void print_piece(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02X", c);
        else
            putchar(c);
    }
}

/* ---- encode ---- */

static const char *encode_help =
    "usage: align tokenizer encode -z TOKENIZER [-i TEXT] [--bos] [--eos] [--pieces]\n"
    "\n"
    "Encodes text into token ids, printed on one line separated by spaces.\n"
    "\n"
    "  -z, --tokenizer PATH  tokenizer file or directory (required)\n"
    "  -i, --input TEXT      the text; without it, all of standard input is read\n"
    "      --bos             put the BOS id first (if the tokenizer has one)\n"
    "      --eos             put the EOS id last (if the tokenizer has one)\n"
    "      --pieces          print one 'id<TAB>piece' line per token instead\n"
    "      --sentencepiece   SentencePiece kinds: the sentencepiece library's rules\n"
    "      --llama2c         SentencePiece kinds: llama2.c run.c's encode() exactly\n"
    "  -h, --help            this help\n"
    "\n"
    "example:\n"
    "  align tokenizer encode -z ../shared/models/stories260K/tok512.bin -i 'Once upon a time' --bos\n"
    "  1 403 407 261 378\n";

static int tok_encode(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align tokenizer encode", argc, argv);
    const char *tok_path = NULL, *text = NULL, *arg;
    bool bos = false, eos = false, pieces = false;
    int sp_mode = -1;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(encode_help, stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-z", "--tokenizer")) {
            tok_path = a.value;
        } else if (cli_opt(&a, arg, "-i", "--input")) {
            text = a.value;
        } else if (cli_flag(&a, arg, NULL, "--bos")) {
            bos = true;
        } else if (cli_flag(&a, arg, NULL, "--eos")) {
            eos = true;
        } else if (cli_flag(&a, arg, NULL, "--pieces")) {
            pieces = true;
        } else if (cli_flag(&a, arg, NULL, "--sentencepiece")) {
            sp_mode = 1;
        } else if (cli_flag(&a, arg, NULL, "--llama2c")) {
            sp_mode = 0;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!tok_path) {
        fprintf(stderr, "%s: -z TOKENIZER is required (see --help)\n", a.cmd);
        return 2;
    }
    al_tokenizer *t;
    if (al_tokenizer_load(&t, tok_path))
        return fail(a.cmd);
    al_buf input = {0};
    al_ints ids = {0};
    int rc = 0;
    if (sp_mode >= 0 && al_tokenizer_set_sentencepiece(t, sp_mode == 1))
        rc = fail(a.cmd);
    else if (!text && read_stream(stdin, &input))
        rc = fail(a.cmd);
    else if (al_tokenizer_encode(t, text ? text : input.data, text ? strlen(text) : input.len, bos, eos, &ids))
        rc = fail(a.cmd);
    for (int i = 0; rc == 0 && i < ids.n; i++) {
        if (pieces) {
            const char *s;
            size_t n;
            al_tokenizer_piece(t, ids.v[i], &s, &n);
            printf("%d\t", ids.v[i]);
            print_piece(s, n);
            putchar('\n');
        } else {
            printf(i ? " %d" : "%d", ids.v[i]);
        }
    }
    if (rc == 0 && !pieces)
        putchar('\n');
    al_ints_free(&ids);
    al_buf_free(&input);
    al_tokenizer_free(t);
    return rc;
}

/* ---- decode ---- */

static const char *decode_help =
    "usage: align tokenizer decode -z TOKENIZER [-i IDS]\n"
    "\n"
    "Decodes token ids (separated by spaces, commas or newlines) read from standard\n"
    "input, or given with -i, and prints the text.  SentencePiece kinds drop BOS/EOS and\n"
    "the dummy-prefix space; byte-level kinds print special tokens as their text.\n"
    "\n"
    "  -z, --tokenizer PATH  tokenizer file or directory (required)\n"
    "  -i, --input IDS       the ids; without it, standard input is read\n"
    "  -h, --help            this help\n"
    "\n"
    "example:\n"
    "  echo 1 403 407 261 378 | align tokenizer decode -z ../shared/models/stories260K/tok512.bin\n"
    "  Once upon a time\n";

static int parse_ids(const char *s, al_ints *out)
{
    const char *p = s;
    while (*p) {
        if (strchr(" \t\r\n,[]", *p)) {
            p++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 0x7FFFFFFF)
            return al_fail("expected token ids (non-negative integers), got '%.20s'", p);
        if (al_ints_push(out, (int)v))
            return -1;
        p = end;
    }
    return 0;
}

static int tok_decode(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align tokenizer decode", argc, argv);
    const char *tok_path = NULL, *text = NULL, *arg;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(decode_help, stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-z", "--tokenizer")) {
            tok_path = a.value;
        } else if (cli_opt(&a, arg, "-i", "--input")) {
            text = a.value;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!tok_path) {
        fprintf(stderr, "%s: -z TOKENIZER is required (see --help)\n", a.cmd);
        return 2;
    }
    al_tokenizer *t;
    if (al_tokenizer_load(&t, tok_path))
        return fail(a.cmd);
    al_buf input = {0}, out = {0};
    al_ints ids = {0};
    int rc = 0;
    if ((!text && read_stream(stdin, &input)) || parse_ids(text ? text : input.data, &ids) ||
        al_tokenizer_decode(t, ids.v, ids.n, &out))
        rc = fail(a.cmd);
    else
        fwrite(out.data, 1, out.len, stdout);
    al_ints_free(&ids);
    al_buf_free(&input);
    al_buf_free(&out);
    al_tokenizer_free(t);
    return rc;
}

/* ---- info ---- */

static const char *info_help =
    "usage: align tokenizer info -z TOKENIZER\n"
    "\n"
    "Prints the tokenizer's kind, vocabulary size, BOS/EOS ids, merge count and its\n"
    "special tokens.\n"
    "\n"
    "  -z, --tokenizer PATH  tokenizer file or directory (required)\n"
    "  -h, --help            this help\n"
    "\n"
    "example:\n"
    "  align tokenizer info -z ../shared/models/gpt2-tokenizer\n";

static void print_id(const al_tokenizer *t, const char *label, int id)
{
    printf("%-10s ", label);
    if (id < 0) {
        printf("none\n");
        return;
    }
    const char *s;
    size_t n;
    al_tokenizer_piece(t, id, &s, &n);
    printf("%d \"", id);
    print_piece(s, n);
    printf("\"\n");
}

static int tok_info(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align tokenizer info", argc, argv);
    const char *tok_path = NULL, *arg;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(info_help, stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-z", "--tokenizer")) {
            tok_path = a.value;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!tok_path) {
        fprintf(stderr, "%s: -z TOKENIZER is required (see --help)\n", a.cmd);
        return 2;
    }
    al_tokenizer *t;
    if (al_tokenizer_load(&t, tok_path))
        return fail(a.cmd);
    printf("%-10s %s\n", "kind", al_tokenizer_kind(t));
    printf("%-10s %d\n", "vocab", al_tokenizer_vocab_size(t));
    print_id(t, "bos", al_tokenizer_bos(t));
    print_id(t, "eos", al_tokenizer_eos(t));
    printf("%-10s %d\n", "merges", al_tokenizer_n_merges(t));
    int ns = al_tokenizer_n_specials(t);
    printf("%-10s %d%s\n", "specials", ns, ns ? " (split out of the text before encoding)" : "");
    for (int i = 0; i < ns && i < 20; i++)
        print_id(t, "", al_tokenizer_special(t, i));
    if (ns > 20)
        printf("%-10s ... %d more\n", "", ns - 20);
    al_tokenizer_free(t);
    return 0;
}

/* ---- train ---- */

static const char *train_help =
    "usage: align tokenizer train --data FILE[,FILE...] --vocab-size N [--special TOK]... --out PATH\n"
    "\n"
    "Trains a byte-level BPE tokenizer (GPT-2 style): the text is split on the special\n"
    "tokens, then into pre-tokens with GPT-2's regex; the most frequent adjacent pair is\n"
    "merged until the vocabulary holds N tokens (specials + 256 bytes + merges).  Ties go\n"
    "to the lexicographically greater pair of byte strings.  Writes an HF tokenizer.json\n"
    "that 'align tokenizer encode -z PATH' (and Hugging Face tokenizers) can load.\n"
    "\n"
    "  --data FILES        comma-separated text files (or repeat --data)\n"
    "  --vocab-size N      final vocabulary size, at least 256 + number of specials\n"
    "  --special TOK       a special token, e.g. \"<|endoftext|>\" (repeatable); it is\n"
    "                      removed from the training text and gets the first ids\n"
    "  --out PATH          where to write tokenizer.json (replaced atomically)\n"
    "  -h, --help          this help\n"
    "\n"
    "example:\n"
    "  align tokenizer train --data ../shared/corpora/cs336-bpe-fixtures/corpus.en \\\n"
    "      --vocab-size 500 --special '<|endoftext|>' --out /tmp/tok/tokenizer.json\n";

typedef struct train_progress {
    al_progress bar;
    const char *stage;
} train_progress;

static void on_progress(void *ctx, const char *stage, long done, long total)
{
    train_progress *p = ctx;
    if (!p->stage || strcmp(p->stage, stage)) {
        if (p->stage)
            al_progress_end(&p->bar);
        p->stage = stage;
        al_progress_begin(&p->bar, !strcmp(stage, "count") ? "pre-tokenize (bytes)" : "merge", total);
    }
    al_progress_update(&p->bar, done, NULL);
}

typedef struct train_args {
    const char *data[64];
    int n_data;
    const char *specials[256];
    int n_specials;
    const char *out;
    int vocab_size;
} train_args;

static int split_files(cli_args *a, train_args *ta, char *list)
{
    for (char *save = NULL, *f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        if (ta->n_data == 64) {
            fprintf(stderr, "%s: at most 64 data files\n", a->cmd);
            return 2;
        }
        ta->data[ta->n_data++] = f;
    }
    return 0;
}

static int parse_train(int argc, char **argv, train_args *ta, char ***owned, int *n_owned)
{
    cli_args a;
    cli_args_init(&a, "align tokenizer train", argc, argv);
    const char *arg;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(train_help, stdout);
            return -1;
        } else if (cli_opt(&a, arg, NULL, "--data")) {
            char *copy = strdup(a.value);
            char **grown = realloc(*owned, (size_t)(*n_owned + 1) * sizeof *grown);
            if (!copy || !grown) {
                free(copy);
                fprintf(stderr, "%s: out of memory\n", a.cmd);
                return 1;
            }
            *owned = grown;
            grown[(*n_owned)++] = copy;
            if (split_files(&a, ta, copy))
                return 2;
        } else if (cli_opt(&a, arg, NULL, "--vocab-size")) {
            ta->vocab_size = cli_int(&a, 256, 1 << 22);
        } else if (cli_opt(&a, arg, NULL, "--special")) {
            if (ta->n_specials == 256) {
                fprintf(stderr, "%s: at most 256 special tokens\n", a.cmd);
                return 2;
            }
            ta->specials[ta->n_specials++] = a.value;
        } else if (cli_opt(&a, arg, "-o", "--out")) {
            ta->out = a.value;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!ta->n_data || !ta->vocab_size || !ta->out) {
        fprintf(stderr, "%s: --data, --vocab-size and --out are required (see --help)\n", a.cmd);
        return 2;
    }
    return 0;
}

/* So --out can name a new directory. */
static int make_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    char *dir = strndup(path, (size_t)(slash - path));
    if (!dir)
        return al_fail("out of memory");
    int rc = al_mkdir_p(dir);
    free(dir);
    return rc;
}

static int train(const train_args *ta)
{
    const char *cmd = "align tokenizer train";
    al_buf texts[64] = {{0}};
    const char *ptrs[64];
    size_t lens[64];
    int rc = 0;
    for (int i = 0; i < ta->n_data && rc == 0; i++) {
        if (al_read_file(ta->data[i], &texts[i]))
            rc = fail(cmd);
        ptrs[i] = texts[i].data;
        lens[i] = texts[i].len;
    }
    train_progress prog = {0};
    al_bpe_train_opts o = {ta->vocab_size, ta->specials, ta->n_specials, on_progress, &prog};
    al_tokenizer *t = NULL;
    double t0 = al_now();
    if (rc == 0 && al_bpe_train(&t, ptrs, lens, ta->n_data, &o))
        rc = fail(cmd);
    if (prog.stage)
        al_progress_end(&prog.bar);
    if (rc == 0 && (make_parent(ta->out) || al_tokenizer_save_json(t, ta->out)))
        rc = fail(cmd);
    if (rc == 0)
        fprintf(stderr, "%s: %d tokens (%d merges) in %.2fs -> %s\n", cmd, al_tokenizer_vocab_size(t),
                al_tokenizer_n_merges(t), al_now() - t0, ta->out);
    al_tokenizer_free(t);
    for (int i = 0; i < ta->n_data; i++)
        al_buf_free(&texts[i]);
    return rc;
}

static int tok_train(int argc, char **argv)
{
    train_args ta = {0};
    char **owned = NULL;
    int n_owned = 0;
    int rc = parse_train(argc, argv, &ta, &owned, &n_owned);
    if (rc == 0)
        rc = train(&ta);
    else if (rc < 0)
        rc = 0; /* --help */
    for (int i = 0; i < n_owned; i++)
        free(owned[i]);
    free(owned);
    return rc;
}

int cmd_tokenizer(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "encode"))
        return tok_encode(argc - 1, argv + 1);
    if (!strcmp(sub, "decode"))
        return tok_decode(argc - 1, argv + 1);
    if (!strcmp(sub, "info"))
        return tok_info(argc - 1, argv + 1);
    if (!strcmp(sub, "train"))
        return tok_train(argc - 1, argv + 1);
    fprintf(stderr, "align tokenizer: unknown sub-command '%s'\n\n%s", sub, usage_text);
    return 2;
}
