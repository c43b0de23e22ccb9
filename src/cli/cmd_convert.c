/* align convert: any supported checkpoint -> Hugging Face safetensors + config.json, or a
 * llama.cpp GGUF file (F32, F16, BF16, Q8_0, Q4_0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "align/data.h"
#include "align/model.h"
#include "args.h"
#include "commands.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: align convert -m MODEL -o OUTDIR\n"
            "       align convert -m MODEL -o FILE.gguf [--type f16|f32|bf16|q8_0|q4_0]\n"
            "\n"
            "Converts a checkpoint to Hugging Face format: OUTDIR/model.safetensors (float32) and\n"
            "OUTDIR/config.json (LlamaForCausalLM, Qwen2ForCausalLM when the model has q/k/v biases, or\n"
            "GPT2LMHeadModel for a GPT-2 model, in GPT-2's own names: fused c_attn, Conv1D weights).\n"
            "MODEL may be a llama2.c .bin checkpoint, a .safetensors file (config.json beside it), a\n"
            "directory holding model.safetensors + config.json, or a GGUF file.  llama2.c models use\n"
            "interleaved rotary pairs; their q/k rows are permuted to HF's half-split layout on the way\n"
            "out, so HF transformers computes the same function.  Files are replaced atomically; OUTDIR\n"
            "is created if missing.  The tokenizer found beside MODEL (tokenizer.json, tokenizer.bin,\n"
            "tok512.bin, or the vocabulary inside a GGUF) and its chat template (tokenizer_config.json)\n"
            "are carried into OUTDIR, so that `align chat -m OUTDIR` needs no other flag.\n"
            "\n"
            "With --format gguf, or an output path ending in .gguf, writes one llama.cpp GGUF file (v3):\n"
            "architecture \"llama\" (q/k rows in interleaved rotary order, as llama.cpp's converter\n"
            "stores them), or \"qwen2\" for models with q/k/v biases (not GPT-2 models yet).  --type\n"
            "sets the matrices' type; norms and biases stay float32, and under q8_0/q4_0 a matrix whose\n"
            "rows are not a multiple of 32 values is stored as f16 (as llama.cpp's converter does).  The\n"
            "tokenizer found beside MODEL goes into the file (tokenizer.ggml.*), so\n"
            "`align generate -m FILE.gguf` needs no -z.\n"
            "Accuracy against the float32 model: docs/formats.md, \"GGUF\".\n"
            "\n"
            "options:\n"
            "  -m, --model PATH        checkpoint to read\n"
            "  -o, --output PATH       directory (safetensors) or file (gguf) to write\n"
            "      --format FMT        safetensors (default) or gguf (default when PATH ends in .gguf)\n"
            "      --type TYPE         gguf weight type: f16 (default), f32, bf16, q8_0, q4_0;\n"
            "                          safetensors: f32 only\n"
            "  -h, --help              this text\n"
            "\n"
            "examples:\n"
            "  align convert -m stories260K.bin -o stories260K-hf\n"
            "  python -c \"import transformers as t; t.AutoModelForCausalLM.from_pretrained('stories260K-hf')\"\n"
            "  align convert -m stories260K.bin -o stories260K-q8_0.gguf --type q8_0\n"
            "  align generate -m stories260K-q8_0.gguf -t 0 -i 'Once upon a time'\n");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

static int parse_type(const char *s, al_ggml_type *out)
{
    static const al_ggml_type types[] = {AL_GGML_F32, AL_GGML_F16, AL_GGML_BF16, AL_GGML_Q8_0, AL_GGML_Q4_0};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(s, al_ggml_type_name(types[i]))) {
            *out = types[i];
            return 0;
        }
    return -1;
}

/* The tokenizer beside the model (or inside a GGUF), with its saved specials; NULL when
 * there is none or it does not fit the model: the weights are what was asked for, so
 * that only warns. */
static al_tokenizer *tokenizer_for(const char *model, const al_model *m)
{
    char *path = al_model_dir_find_tokenizer(model);
    if (!path)
        return NULL;
    al_tokenizer *tok = NULL;
    if (al_tokenizer_load(&tok, path) || al_model_dir_load_config(model, tok, NULL, NULL)) {
        fprintf(stderr, "align convert: warning: tokenizer not carried over: %s\n", al_errmsg());
        al_tokenizer_free(tok);
        tok = NULL;
    } else if (al_tokenizer_vocab_size(tok) != m->cfg.vocab_size) {
        fprintf(stderr, "align convert: warning: tokenizer not carried over: %s has %d tokens, the model %d\n", path,
                al_tokenizer_vocab_size(tok), m->cfg.vocab_size);
        al_tokenizer_free(tok);
        tok = NULL;
    }
    free(path);
    return tok;
}

static int convert_gguf(const char *model, const char *out, al_ggml_type type)
{
    al_model m;
    if (al_model_load(&m, model)) {
        fprintf(stderr, "align convert: %s\n", al_errmsg());
        return 1;
    }
    al_tokenizer *tok = tokenizer_for(model, &m);
    int rc = al_model_save_gguf(&m, tok, out, type);
    if (rc) {
        fprintf(stderr, "align convert: %s\n", al_errmsg());
    } else {
        int fallback = al_model_gguf_fallback_count(&m.cfg, type);
        printf("wrote %s (%zu parameters, %s matrices", out, m.n_params, al_ggml_type_name(type));
        if (fallback)
            printf(", %d stored as F16: rows not a multiple of 32", fallback);
        printf(", %s%s)\n", m.cfg.qkv_bias ? "qwen2" : "llama",
               tok ? ", with the tokenizer" : ", no tokenizer found beside the model");
    }
    al_tokenizer_free(tok);
    al_model_free(&m);
    return rc ? 1 : 0;
}

int cmd_convert(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align convert", argc, argv);
    const char *model = NULL, *outdir = NULL, *format = NULL, *type_name = NULL, *arg;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            help(stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-m", "--model")) {
            model = a.value;
        } else if (cli_opt(&a, arg, "-o", "--output")) {
            outdir = a.value;
        } else if (cli_opt(&a, arg, NULL, "--format")) {
            format = a.value;
        } else if (cli_opt(&a, arg, NULL, "--type")) {
            type_name = a.value;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!model || !*model || !outdir || !*outdir) {
        fprintf(stderr, "align convert: needs -m MODEL and -o OUTDIR (see align convert --help)\n");
        return 2;
    }
    if (format && strcmp(format, "gguf") && strcmp(format, "safetensors")) {
        fprintf(stderr, "align convert: --format must be safetensors or gguf, not '%s'\n", format);
        return 2;
    }
    bool gguf = format ? !strcmp(format, "gguf") : ends_with(outdir, ".gguf");
    al_ggml_type type = gguf ? AL_GGML_F16 : AL_GGML_F32;
    if (type_name && parse_type(type_name, &type)) {
        fprintf(stderr, "align convert: --type must be f32, f16, bf16, q8_0 or q4_0, not '%s'\n", type_name);
        return 2;
    }
    if (gguf)
        return convert_gguf(model, outdir, type);
    if (type != AL_GGML_F32) {
        fprintf(stderr, "align convert: safetensors output is float32 only (--type %s needs --format gguf)\n",
                type_name);
        return 2;
    }
    al_model m;
    if (al_model_load(&m, model)) {
        fprintf(stderr, "align convert: %s\n", al_errmsg());
        return 1;
    }
    bool permuted = m.cfg.arch == AL_ARCH_LLAMA && m.cfg.rope == AL_ROPE_INTERLEAVED;
    if (al_model_save_safetensors(&m, outdir)) {
        fprintf(stderr, "align convert: %s\n", al_errmsg());
        al_model_free(&m);
        return 1;
    }
    /* the weights are what was asked for: a tokenizer that cannot be carried only warns */
    bool tok_copied = false;
    if (al_model_dir_copy_tokenizer(model, outdir, &tok_copied))
        fprintf(stderr, "align convert: warning: tokenizer not carried over: %s\n", al_errmsg());
    printf("wrote %s/model.safetensors (%zu parameters, float32%s) and %s/config.json%s\n", outdir, m.n_params,
           permuted ? ", q/k rows permuted to half-split rotary" : "", outdir,
           tok_copied ? ", with the tokenizer beside the model" : "");
    al_model_free(&m);
    return 0;
}
