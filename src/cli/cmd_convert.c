/* align convert: any supported checkpoint -> Hugging Face safetensors + config.json. */
#include <stdio.h>
#include <string.h>

#include "align/data.h"
#include "align/model.h"
#include "args.h"
#include "commands.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: align convert -m MODEL -o OUTDIR\n"
            "\n"
            "Converts a checkpoint to Hugging Face format: OUTDIR/model.safetensors (float32) and\n"
            "OUTDIR/config.json (LlamaForCausalLM, or Qwen2ForCausalLM when the model has q/k/v biases).\n"
            "MODEL may be a llama2.c .bin checkpoint, a .safetensors file (config.json beside it) or a\n"
            "directory holding model.safetensors + config.json.  llama2.c models use interleaved rotary\n"
            "pairs; their q/k rows are permuted to HF's half-split layout on the way out, so HF\n"
            "transformers computes the same function.  Files are replaced atomically; OUTDIR is created\n"
            "if missing.  The tokenizer found beside MODEL (tokenizer.json, tokenizer.bin, tok512.bin)\n"
            "and its chat template (tokenizer_config.json) are carried into OUTDIR, so that\n"
            "`align chat -m OUTDIR` needs no other flag.\n"
            "\n"
            "options:\n"
            "  -m, --model PATH    checkpoint to read\n"
            "  -o, --output DIR    directory to write\n"
            "  -h, --help          this text\n"
            "\n"
            "example:\n"
            "  align convert -m stories260K.bin -o stories260K-hf\n"
            "  python -c \"import transformers as t; t.AutoModelForCausalLM.from_pretrained('stories260K-hf')\"\n");
}

int cmd_convert(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align convert", argc, argv);
    const char *model = NULL, *outdir = NULL, *arg;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            help(stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-m", "--model")) {
            model = a.value;
        } else if (cli_opt(&a, arg, "-o", "--output")) {
            outdir = a.value;
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
    al_model m;
    if (al_model_load(&m, model)) {
        fprintf(stderr, "align convert: %s\n", al_errmsg());
        return 1;
    }
    bool permuted = m.cfg.rope == AL_ROPE_INTERLEAVED;
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
