/* align info: what a checkpoint holds and what running it will cost in memory. */
#include <stdlib.h>
#include <string.h>

#include "align/model.h"
#include "args.h"
#include "commands.h"

static const char *usage_text =
    "usage: align info -m MODEL [-b BATCH] [-T LENGTH] [--tensors]\n"
    "\n"
    "Prints the model's configuration, its parameter count, and the memory plan for\n"
    "training on BATCH rows of LENGTH tokens (parameters, gradients, AdamW moments,\n"
    "activations) and for decoding BATCH sequences of LENGTH tokens with a KV cache.\n"
    "\n"
    "options:\n"
    "  -m, --model PATH   checkpoint (llama2.c .bin, HF directory or .safetensors, .gguf)\n"
    "  -b, --batch B      rows per step (default 8)\n"
    "  -T, --length T     tokens per row (default: the model's context length)\n"
    "      --tensors      list every tensor with its shape and offset\n"
    "  -h, --help         this text\n"
    "\n"
    "example:\n"
    "  align info -m stories260K.bin -b 32 -T 256\n";

static void print_bytes(const char *label, size_t bytes)
{
    double v = (double)bytes;
    const char *unit = "B";
    if (v >= 1 << 30)
        v /= 1 << 30, unit = "GiB";
    else if (v >= 1 << 20)
        v /= 1 << 20, unit = "MiB";
    else if (v >= 1 << 10)
        v /= 1 << 10, unit = "KiB";
    printf("  %-34s %10.2f %s\n", label, v, unit);
}

int cmd_info(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align info", argc, argv);
    const char *model = NULL;
    int B = 8, T = 0;
    bool tensors = false;
    const char *arg;
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-m", "--model")) {
            model = a.value;
        } else if (cli_opt(&a, arg, "-b", "--batch")) {
            B = cli_int(&a, 1, 1 << 20);
        } else if (cli_opt(&a, arg, "-T", "--length")) {
            T = cli_int(&a, 1, 1 << 24);
        } else if (cli_flag(&a, arg, NULL, "--tensors")) {
            tensors = true;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!model) {
        fprintf(stderr, "align info: -m MODEL is required (see align info --help)\n");
        return 2;
    }
    al_model m;
    if (al_model_load(&m, model)) {
        fprintf(stderr, "align info: %s\n", al_errmsg());
        return 1;
    }
    const al_config *c = &m.cfg;
    if (T == 0 || T > c->seq_len)
        T = c->seq_len;
    printf("model %s\n", model);
    al_config_print(c, stdout);
    printf("parameters %zu\n", m.n_params);
    if (tensors) {
        int n = al_tensor_layout(c, NULL, 0);
        al_tensor_desc *d = malloc((size_t)n * sizeof *d);
        al_tensor_layout(c, d, n);
        for (int i = 0; i < n; i++) {
            char shape[48];
            if (d[i].cols)
                snprintf(shape, sizeof shape, "[%d, %d]", d[i].rows, d[i].cols);
            else
                snprintf(shape, sizeof shape, "[%d]", d[i].rows);
            printf("  %-10s layer %3d  %-14s offset %zu\n", d[i].kind, d[i].layer, shape, d[i].offset);
        }
        free(d);
    }
    size_t p = m.n_params * sizeof(float);
    size_t act = al_train_ctx_bytes(c, B, T);
    printf("memory plan, training %d x %d tokens:\n", B, T);
    print_bytes("parameters", p);
    print_bytes("gradients", p);
    print_bytes("AdamW moments (m, v)", 2 * p);
    print_bytes("activations", act);
    print_bytes("total", 4 * p + act);
    printf("memory plan, decoding %d sequences x %d tokens:\n", B, T);
    size_t dec = al_decoder_bytes(c, B, T, AL_KV_F32);
    print_bytes("parameters", p);
    print_bytes("KV cache and scratch", dec);
    print_bytes("total", p + dec);
    al_model_free(&m);
    return 0;
}
