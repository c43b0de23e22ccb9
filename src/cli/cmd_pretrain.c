/* align pretrain: next-token training from scratch or from a checkpoint. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "align/dist_extra.h"
#include "align/train.h"
#include "args.h"
#include "commands.h"

static const char *usage_text =
    "usage: align pretrain --data FILE --tokenizer TOK --out DIR [--config CFG.json] [options]\n"
    "       align pretrain --resume DIR [--steps N]\n"
    "\n"
    "Trains a Llama-family or GPT-2 model on next-token prediction over a text file. Documents are\n"
    "separated by lines equal to --doc-sep; the token stream is cached (see docs/training.md).\n"
    "Writes DIR/metrics.jsonl (one JSON object per step), DIR/init and DIR/final (HF\n"
    "safetensors + config.json + the tokenizer), DIR/checkpoints/step_N (resumable),\n"
    "DIR/train_args.json.\n"
    "\n"
    "data:\n"
    "  --data FILE            training text (required)\n"
    "  --val-data FILE        validation text (default: the last --val-fraction of --data)\n"
    "  --val-fraction F       share of documents held out (default 0.05)\n"
    "  --doc-sep LINE         document separator line (default <|endoftext|>)\n"
    "  --tokenizer TOK        tokenizer file (required)\n"
    "  --cache-dir DIR        token cache (default ~/.cache/align)\n"
    "model:\n"
    "  --config CFG.json      {\"model\": {HF config.json fields}, and any option below with\n"
    "                         underscores, e.g. \"batch_size\": 16}; flags override it\n"
    "  --arch llama|gpt2      layout of a fresh model (default llama, or the \"model\" section's\n"
    "                         model_type): llama = RMSNorm, rotary positions, SwiGLU; gpt2 =\n"
    "                         GPT2LMHeadModel (LayerNorm, learned positions, GELU MLP, biases).\n"
    "                         With gpt2 the section may give GPT-2's fields (n_embd, n_layer,\n"
    "                         n_head, n_inner, n_positions, layer_norm_epsilon) or Llama's names\n"
    "                         for the same sizes (hidden_size, num_hidden_layers,\n"
    "                         num_attention_heads, intermediate_size, max_position_embeddings,\n"
    "                         rms_norm_eps); checkpoints are HF GPT-2 safetensors\n"
    "  --init MODEL           start from these weights instead of a fresh initialization\n"
    "training:\n"
    "  --batch-size B         rows per micro-batch (default 8)\n"
    "  --seq-len T            tokens per row (default 256)\n"
    "  --grad-accum K         micro-batches per optimizer step (default 1)\n"
    "                         runs data-parallel under mpirun -np N, each rank computing K/N of\n"
    "                         them (K >= N for a speedup): docs/distributed.md\n"
    "  --steps N              optimizer steps (default: one pass over the data)\n"
    "  --tokens N             token budget instead of --steps\n"
    "  --lr X                 peak learning rate (default 3e-4)\n"
    "  --min-lr-ratio R       final lr as a share of the peak (default 0.1)\n"
    "  --warmup N             linear warmup steps (default 100)\n"
    "  --schedule S           constant | linear | cosine | wsd (default cosine)\n"
    "  --wsd-decay F          share of steps spent decaying with wsd (default 0.2)\n"
    "  --weight-decay X       AdamW decoupled weight decay on matrices (default 0.1)\n"
    "  --beta1 X, --beta2 X, --eps X   AdamW (defaults 0.9, 0.95, 1e-8)\n"
    "  --grad-clip X          clip the global gradient norm (default 1.0; 0 = off)\n"
    "  --skip-outliers Z      skip steps whose loss or grad norm is Z sigma above recent\n"
    "                         history (default 0 = off)\n"
    "  --seed S               initialization and sampling seed (default 1337)\n"
    "reporting and checkpoints:\n"
    "  --eval-every N         validation loss every N steps (default 100)\n"
    "  --eval-batches N       validation batches per evaluation (default 20)\n"
    "  --sample-every N       print a sample generation every N steps (default 0 = off)\n"
    "  --save-every N         checkpoint every N steps (default 100)\n"
    "  --keep N               checkpoints kept (default 3)\n"
    "  --resume DIR           continue the run in DIR (its settings are reused)\n"
    "  --quiet                no progress output\n"
    "\n"
    "example:\n"
    "  align pretrain --data ../shared/corpora/tinystories/TinyStories-train-first2MiB.txt \\\n"
    "      --tokenizer ../shared/models/stories260K/tok512.bin --config cfg.json --out runs/tiny\n";

/* Applies one named setting (a flag without its dashes, or a config key) to o. */
static int apply(al_pretrain_opts *o, const char *key, const char *val, cli_args *a)
{
    a->value = val;
#define IS(name) (strcmp(key, name) == 0)
    if (IS("data"))
        o->data = val;
    else if (IS("val_data"))
        o->val_data = val;
    else if (IS("val_fraction"))
        o->val_fraction = cli_float(a, 0, 0.9);
    else if (IS("doc_sep"))
        o->doc_sep = val;
    else if (IS("tokenizer"))
        o->tokenizer = val;
    else if (IS("cache_dir"))
        o->cache_dir = val;
    else if (IS("init"))
        o->init_model = val;
    else if (IS("out"))
        o->out_dir = val;
    else if (IS("batch_size"))
        o->batch_size = cli_int(a, 1, 1 << 20);
    else if (IS("seq_len"))
        o->seq_len = cli_int(a, 1, 1 << 20);
    else if (IS("grad_accum"))
        o->grad_accum = cli_int(a, 1, 1 << 20);
    else if (IS("steps"))
        o->steps = cli_int(a, 1, 1 << 30);
    else if (IS("tokens"))
        o->tokens = cli_float(a, 1, 1e15);
    else if (IS("lr"))
        o->sched.peak_lr = cli_float(a, 0, 10);
    else if (IS("min_lr_ratio"))
        o->min_lr_ratio = cli_float(a, 0, 1);
    else if (IS("warmup"))
        o->sched.warmup = cli_int(a, 0, 1 << 30);
    else if (IS("schedule")) {
        if (al_schedule_parse(val, &o->sched.kind)) {
            fprintf(stderr, "%s: %s\n", a->cmd, al_errmsg());
            a->error = true;
        }
    } else if (IS("wsd_decay"))
        o->sched.wsd_decay = cli_float(a, 0, 1);
    else if (IS("weight_decay"))
        o->adamw.weight_decay = cli_float(a, 0, 10);
    else if (IS("beta1"))
        o->adamw.beta1 = cli_float(a, 0, 0.999999);
    else if (IS("beta2"))
        o->adamw.beta2 = cli_float(a, 0, 0.999999);
    else if (IS("eps"))
        o->adamw.eps = cli_float(a, 0, 1);
    else if (IS("grad_clip"))
        o->grad_clip = cli_float(a, 0, 1e9);
    else if (IS("skip_outliers"))
        o->skip_outliers = cli_float(a, 0, 1e9);
    else if (IS("seed"))
        o->seed = (uint64_t)cli_int(a, 0, 0x7fffffff);
    else if (IS("eval_every"))
        o->eval_every = cli_int(a, 0, 1 << 30);
    else if (IS("eval_batches"))
        o->eval_batches = cli_int(a, 1, 1 << 20);
    else if (IS("sample_every"))
        o->sample_every = cli_int(a, 0, 1 << 30);
    else if (IS("save_every"))
        o->save_every = cli_int(a, 0, 1 << 30);
    else if (IS("keep"))
        o->keep = cli_int(a, 1, 1 << 20);
    else
        return 1;
#undef IS
    return a->error ? -1 : 0;
}

static const char *flag_names[] = {
    "data", "val_data", "val_fraction", "doc_sep", "tokenizer", "cache_dir", "init", "out", "batch_size",
    "seq_len", "grad_accum", "steps", "tokens", "lr", "min_lr_ratio", "warmup", "schedule", "wsd_decay",
    "weight_decay", "beta1", "beta2", "eps", "grad_clip", "skip_outliers", "seed", "eval_every",
    "eval_batches", "sample_every", "save_every", "keep"};

/* "--batch-size" -> "batch_size" when it names a known setting. */
static const char *flag_key(const char *arg, char *buf, size_t n)
{
    if (strncmp(arg, "--", 2) != 0)
        return NULL;
    snprintf(buf, n, "%s", arg + 2);
    char *eq = strchr(buf, '=');
    if (eq)
        *eq = 0;
    for (char *p = buf; *p; p++)
        if (*p == '-')
            *p = '_';
    for (size_t i = 0; i < sizeof flag_names / sizeof flag_names[0]; i++)
        if (!strcmp(buf, flag_names[i]))
            return flag_names[i];
    return NULL;
}

/* Config file: training keys, then the "model" object parsed as an HF config.json. */
static int apply_config(al_pretrain_opts *o, json_t *cfg, const char *path, cli_args *a, bool *has_model)
{
    const char *key;
    json_t *v;
    char num[64];
    json_object_foreach(cfg, key, v)
    {
        if (!strcmp(key, "model"))
            continue;
        const char *val = json_is_string(v) ? json_string_value(v) : NULL;
        if (json_is_integer(v))
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), val = num;
        else if (json_is_real(v))
            snprintf(num, sizeof num, "%.17g", json_real_value(v)), val = num;
        if (!val) {
            fprintf(stderr, "align pretrain: %s: \"%s\": expected a string or a number\n", path, key);
            return -1;
        }
        int r = apply(o, key, val, a);
        if (r > 0) {
            fprintf(stderr, "align pretrain: %s: unknown setting \"%s\"\n", path, key);
            return -1;
        }
        if (r < 0)
            return -1;
    }
    *has_model = json_object_get(cfg, "model") != NULL;
    return 0;
}

/* Under --arch gpt2, a section without a model_type of its own may name the sizes as Llama
 * does: the two names GPT2Config has no alias for become GPT-2's (the others are aliases). */
static void rename_key(json_t *m, const char *from, const char *to)
{
    json_t *v = json_object_get(m, from);
    if (v && !json_object_get(m, to)) {
        json_object_set(m, to, v);
        json_object_del(m, from);
    }
}

/* arch: "llama", "gpt2" or NULL (the section's model_type, else llama). */
static int parse_model(al_pretrain_opts *o, json_t *model, const char *path, const char *arch)
{
    if (!json_is_object(model)) {
        fprintf(stderr, "align pretrain: %s: \"model\" must be an object of HF config.json fields\n", path);
        return -1;
    }
    json_t *m = json_deep_copy(model);
    const bool typed = json_object_get(m, "architectures") || json_object_get(m, "model_type");
    if (!typed)
        json_object_set_new(m, "model_type", json_string(arch ? arch : "llama"));
    if (!typed && arch && !strcmp(arch, "gpt2")) {
        rename_key(m, "intermediate_size", "n_inner");
        rename_key(m, "rms_norm_eps", "layer_norm_epsilon");
    }
    /* Sizes the run already knows need not be repeated in the model section. */
    if (!json_object_get(m, "max_position_embeddings"))
        json_object_set_new(m, "max_position_embeddings", json_integer(o->seq_len));
    if (!json_object_get(m, "vocab_size") && o->tokenizer) {
        al_tokenizer *t;
        if (al_tokenizer_load(&t, o->tokenizer) == 0) {
            json_object_set_new(m, "vocab_size", json_integer(al_tokenizer_vocab_size(t)));
            al_tokenizer_free(t);
        }
    }
    char *text = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    char origin[1100];
    snprintf(origin, sizeof origin, "%s: model", path);
    int rc = text ? al_config_from_hf_json(&o->model, text, strlen(text), origin) : -1;
    free(text);
    if (rc) {
        fprintf(stderr, "align pretrain: %s\n", al_errmsg());
        return rc;
    }
    const char *got = o->model.arch == AL_ARCH_GPT2 ? "gpt2" : "llama";
    if (arch && strcmp(arch, got)) {
        fprintf(stderr, "align pretrain: --arch %s, but %s's \"model\" section describes a %s model\n", arch, path,
                got);
        return -1;
    }
    return 0;
}

int cmd_pretrain(int argc, char **argv)
{
    al_pretrain_opts o;
    al_pretrain_defaults(&o);
    cli_args a;
    cli_args_init(&a, "align pretrain", argc, argv);
    const char *config = NULL, *resume = NULL, *arch = NULL;
    /* The config file is applied first so that flags override it. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    }
    json_t *cfg = NULL;
    bool has_model = false;
    int rc = 2;
    if (config) {
        json_error_t err;
        cfg = json_load_file(config, 0, &err);
        if (!cfg || !json_is_object(cfg)) {
            fprintf(stderr, "align pretrain: %s:%d:%d: %s\n", config, err.line, err.column,
                    cfg ? "expected a JSON object" : err.text);
            goto out;
        }
        if (apply_config(&o, cfg, config, &a, &has_model))
            goto out;
    }
    const char *arg;
    char keybuf[64];
    while ((arg = cli_next(&a)) && !a.error) {
        const char *key;
        if (cli_opt(&a, arg, NULL, "--config")) {
            continue;
        } else if (cli_opt(&a, arg, NULL, "--resume")) {
            resume = a.value;
        } else if (cli_opt(&a, arg, NULL, "--arch")) {
            arch = a.value;
            if (strcmp(arch, "llama") && strcmp(arch, "gpt2")) {
                fprintf(stderr, "align pretrain: --arch must be llama or gpt2, not '%s'\n", arch);
                goto out;
            }
        } else if (cli_flag(&a, arg, "-q", "--quiet")) {
            o.quiet = true;
        } else if ((key = flag_key(arg, keybuf, sizeof keybuf))) {
            char flag[80];
            snprintf(flag, sizeof flag, "--%s", arg + 2);
            char *eq = strchr(flag, '=');
            if (eq)
                *eq = 0;
            if (!cli_opt(&a, arg, NULL, flag) || a.error || apply(&o, key, a.value, &a) < 0)
                goto out;
        } else {
            rc = cli_unknown(&a, arg);
            goto out;
        }
    }
    if (a.error)
        goto out;
    if (!resume) {
        if (!o.data || !o.tokenizer || !o.out_dir) {
            fprintf(stderr, "align pretrain: --data, --tokenizer and --out are required (see --help)\n");
            goto out;
        }
        if (o.init_model && arch) {
            fprintf(stderr, "align pretrain: --arch sets the layout of a fresh model; --init MODEL keeps its own\n");
            goto out;
        }
        if (!o.init_model) {
            if (!has_model) {
                fprintf(stderr, "align pretrain: give the architecture as \"model\" in --config, or --init MODEL\n");
                goto out;
            }
            if (parse_model(&o, json_object_get(cfg, "model"), config, arch))
                goto out;
        }
    } else if (arch) {
        fprintf(stderr, "align pretrain: --arch sets the layout of a fresh model; --resume continues the run's own\n");
        goto out;
    }
    rc = al_dist_stop_on_error(al_pretrain(&o, resume) ? 1 : 0, "pretrain");
    if (rc)
        fprintf(stderr, "align pretrain: %s\n", al_errmsg());
out:
    json_decref(cfg);
    return rc;
}
