/* align lora: work with LoRA adapters (PEFT layout).  `align lora merge` folds adapters
 * into their base model and writes the merged model in HF format. */
#include <stdio.h>
#include <string.h>

#include "align/data.h"
#include "align/model.h"
#include "args.h"
#include "commands.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: align lora merge -m BASE -a ADAPTER_DIR -o OUTDIR\n"
            "\n"
            "Merges LoRA adapters into their base model: every adapted projection becomes\n"
            "W + (lora_alpha / r) B A, and the result is written as OUTDIR/model.safetensors (float32)\n"
            "and OUTDIR/config.json, as `align convert` writes them.  ADAPTER_DIR holds a PEFT adapter:\n"
            "adapter_config.json (peft_type LORA, r, lora_alpha, target_modules among q_proj, k_proj,\n"
            "v_proj, o_proj, gate_proj, up_proj, down_proj; bias \"none\") and adapter_model.safetensors\n"
            "(F32, F16 or BF16) with PEFT's tensor names, e.g.\n"
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight [r, in] and lora_B.weight\n"
            "[out, r].  Adapters are in Hugging Face's half-split rotary row order, as align saves them;\n"
            "a llama2.c BASE (interleaved rotary) is handled.  BASE may be any checkpoint align loads.\n"
            "Files are replaced atomically; OUTDIR is created if missing.  The tokenizer and chat template\n"
            "saved with the adapters (align sft --lora writes them) are carried into OUTDIR, else the\n"
            "tokenizer beside BASE.\n"
            "\n"
            "options:\n"
            "  -m, --model PATH      base model\n"
            "  -a, --adapter DIR     adapter directory\n"
            "  -o, --output DIR      directory to write\n"
            "  -h, --help            this text\n"
            "\n"
            "example:\n"
            "  align lora merge -m stories260K-hf -a run/adapter -o stories260K-merged\n");
}

static int cmd_lora_merge(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align lora merge", argc, argv);
    const char *model = NULL, *adapter = NULL, *outdir = NULL, *arg;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            help(stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-m", "--model")) {
            model = a.value;
        } else if (cli_opt(&a, arg, "-a", "--adapter")) {
            adapter = a.value;
        } else if (cli_opt(&a, arg, "-o", "--output")) {
            outdir = a.value;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!model || !*model || !adapter || !*adapter || !outdir || !*outdir) {
        fprintf(stderr, "align lora merge: needs -m BASE, -a ADAPTER_DIR and -o OUTDIR (see align lora --help)\n");
        return 2;
    }
    al_model m;
    if (al_model_load(&m, model)) {
        fprintf(stderr, "align lora merge: %s\n", al_errmsg());
        return 1;
    }
    int rc = 1;
    if (al_lora_load(&m, adapter)) {
        fprintf(stderr, "align lora merge: %s\n", al_errmsg());
        goto done;
    }
    const al_lora_config c = m.lora->c;
    size_t n_adapter = m.lora->n_params;
    if (al_lora_merge(&m) || al_model_save_safetensors(&m, outdir)) {
        fprintf(stderr, "align lora merge: %s\n", al_errmsg());
        goto done;
    }
    /* the adapters' directory holds the tokenizer the run trained with; the weights are
     * what was asked for, so a tokenizer that cannot be carried only warns */
    bool copied = false;
    if (al_model_dir_copy_tokenizer(adapter, outdir, &copied) ||
        (!copied && al_model_dir_copy_tokenizer(model, outdir, NULL)))
        fprintf(stderr, "align lora merge: warning: tokenizer not carried over: %s\n", al_errmsg());
    printf("merged %zu adapter parameters (r %d, alpha %g) into %zu; wrote %s/model.safetensors and %s/config.json\n",
           n_adapter, c.rank, (double)c.alpha, m.n_params, outdir, outdir);
    rc = 0;
done:
    al_lora_detach(&m);
    al_model_free(&m);
    return rc;
}

int cmd_lora(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "merge"))
        return cmd_lora_merge(argc - 1, argv + 1);
    fprintf(stderr, "align lora: unknown subcommand '%s' (expected merge; see align lora --help)\n", argv[1]);
    return 2;
}
