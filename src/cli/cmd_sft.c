/* align sft: supervised fine-tuning on TRL-format data. */
#include <stdlib.h>
#include <string.h>

#include "align/dist_extra.h"
#include "align/train.h"
#include "args.h"
#include "commands.h"

static const char *usage_text =
    "usage: align sft --data FILE -m MODEL -z TOKENIZER --out DIR [options]\n"
    "\n"
    "Fine-tunes MODEL on prompt/response data. FILE is JSONL (or a JSON array) in TRL's\n"
    "formats, detected automatically: {\"text\"}, {\"prompt\", \"completion\"},\n"
    "{\"messages\": [{\"role\", \"content\"}...]}, or conversational prompt/completion.\n"
    "Conversations are rendered with a chat template; by default only assistant turns\n"
    "(conversations) or completions (prompt/completion) count in the loss.\n"
    "Writes DIR/metrics.jsonl, DIR/checkpoints/step_N and DIR/final (HF safetensors), each\n"
    "with the tokenizer and chat template (tokenizer_config.json): `align chat -m DIR/final`.\n"
    "\n"
    "data:\n"
    "  --data FILE            training data (required)\n"
    "  --val-data FILE        held-out data (default: --held-out of --data)\n"
    "  --held-out F           share of examples held out (default 0.1)\n"
    "  --skip-bad-lines       skip malformed records (reported with their line numbers)\n"
    "  --max-examples N       read at most N records\n"
    "  --chat-template T      chatml (default), llama2, or a template file (docs/chat_templates.md)\n"
    "  --mask M               assistant | completion | all (default: by the data's format)\n"
    "  --packing              several examples per row, attention blocked between them\n"
    "model:\n"
    "  -m, --model PATH       the model to fine-tune\n"
    "  --model-config FILE    or train a new model with this architecture (an HF config.json);\n"
    "                         the chat template's markers are added to the tokenizer as special\n"
    "                         tokens (the grown tokenizer is saved with the model)\n"
    "  -z, --tokenizer PATH   its tokenizer (required)\n"
    "  --out DIR              output directory (required)\n"
    "training:\n"
    "  --batch-size B (8)  --seq-len T (256)  --grad-accum K (1)\n"
    "  runs data-parallel under mpirun -np N, K/N micro-batches per rank (K >= N for a\n"
    "  speedup): docs/distributed.md\n"
    "  --epochs N (1)      --steps N (overrides --epochs)\n"
    "  --lr X (2e-5)  --min-lr-ratio R (0.1)  --warmup N (0)  --schedule constant|linear|cosine|wsd\n"
    "  --weight-decay X (0)  --grad-clip X (1.0)  --skip-outliers Z (0 = off)  --seed S (42)\n"
    "  --eval-every N (50)  --eval-batches N (20)  --save-every N (100)  --keep N (2)\n"
    "LoRA (only adapters train; DIR/final holds them in PEFT's format; align lora merge):\n"
    "  --lora                 train LoRA adapters instead of the whole model\n"
    "  --lora-r R (8)  --lora-alpha A (16)  --lora-dropout P (0.05)\n"
    "  --lora-targets LIST    of q,k,v,o,gate,up,down or all (default all)\n"
    "  --config FILE          JSON object of these options (\"batch_size\": 8, \"packing\": true);\n"
    "                         flags override it\n"
    "  --resume DIR           continue the run in DIR (its settings are reused; --steps may extend it)\n"
    "  --quiet                no progress output\n"
    "\n"
    "example:\n"
    "  align sft --data support.jsonl -m runs/base/final -z tok512.bin --out runs/sft \\\n"
    "      --packing --epochs 3 --lr 1e-3\n";

static int parse_mask(const char *v)
{
    if (!strcmp(v, "assistant"))
        return AL_MASK_ASSISTANT;
    if (!strcmp(v, "completion"))
        return AL_MASK_COMPLETION;
    if (!strcmp(v, "all"))
        return AL_MASK_ALL;
    return -2;
}

int cmd_sft(int argc, char **argv)
{
    cli_config_args keep;
    int rc = cli_expand_config("align sft", &argc, &argv, &keep);
    if (rc)
        return rc;
    al_sft_opts o;
    al_sft_defaults(&o);
    cli_args a;
    cli_args_init(&a, "align sft", argc, argv);
    const char *arg, *resume = NULL;
    cli_train_fields fields = CLI_FINETUNE_FIELDS(o);
    int known;
    rc = 2;
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(usage_text, stdout);
            rc = 0;
            goto out;
        } else if (cli_opt(&a, arg, NULL, "--mask")) {
            o.mask = parse_mask(a.value);
            if (o.mask == -2) {
                fprintf(stderr, "align sft: --mask takes assistant, completion or all, got '%s'\n", a.value);
                goto out;
            }
        } else if (cli_flag(&a, arg, NULL, "--packing")) {
            o.packing = true;
        } else if (cli_opt(&a, arg, NULL, "--model-config")) {
            o.model_config = a.value;
        } else if (cli_opt(&a, arg, NULL, "--resume")) {
            resume = a.value;
        } else if ((known = cli_train_flag(&a, arg, &fields)) != 0) {
            if (known < 0)
                goto out;
        } else {
            rc = cli_unknown(&a, arg);
            goto out;
        }
    }
    if (a.error)
        goto out;
    if (resume) {
        rc = al_dist_stop_on_error(al_sft_resume(resume, &o) ? 1 : 0, "sft");
        if (rc)
            fprintf(stderr, "align sft: %s\n", al_errmsg());
        goto out;
    }
    if (!o.data || !o.model == !o.model_config || !o.tokenizer || !o.out_dir) {
        fprintf(stderr, "align sft: --data, -z TOKENIZER, --out and one of -m MODEL or --model-config are "
                        "required (see --help)\n");
        goto out;
    }
    rc = al_dist_stop_on_error(al_sft_train(&o) ? 1 : 0, "sft");
    if (rc)
        fprintf(stderr, "align sft: %s\n", al_errmsg());
out:
    cli_config_free(&keep);
    return rc;
}
