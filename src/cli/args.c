#include "args.h"

#include <jansson.h>

#include "align/core.h"
#include "align/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv)
{
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
    a->cmd = cmd;
    a->value = NULL;
    a->error = false;
}

const char *cli_next(cli_args *a) { return a->i < a->argc ? a->argv[a->i++] : NULL; }

bool cli_flag(cli_args *a, const char *arg, const char *short_name, const char *long_name)
{
    return (short_name && strcmp(arg, short_name) == 0) || (long_name && strcmp(arg, long_name) == 0);
}

bool cli_opt(cli_args *a, const char *arg, const char *short_name, const char *long_name)
{
    size_t n = long_name ? strlen(long_name) : 0;
    if (long_name && strncmp(arg, long_name, n) == 0 && arg[n] == '=') {
        a->value = arg + n + 1;
        return true;
    }
    if (!cli_flag(a, arg, short_name, long_name))
        return false;
    if (a->i >= a->argc) {
        fprintf(stderr, "%s: %s needs a value (see --help)\n", a->cmd, arg);
        a->error = true;
        a->value = "";
        return true;
    }
    a->value = a->argv[a->i++];
    return true;
}

int cli_int(cli_args *a, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(a->value, &end, 10);
    if (errno || end == a->value || *end || v < min || v > max) {
        fprintf(stderr, "%s: expected an integer in [%ld, %ld], got '%s'\n", a->cmd, min, max, a->value);
        a->error = true;
        return (int)min;
    }
    return (int)v;
}

float cli_float(cli_args *a, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(a->value, &end);
    if (errno || end == a->value || *end || !(v >= min && v <= max)) {
        fprintf(stderr, "%s: expected a number in [%g, %g], got '%s'\n", a->cmd, min, max, a->value);
        a->error = true;
        return (float)min;
    }
    return (float)v;
}

int cli_unknown(cli_args *a, const char *arg)
{
    fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", a->cmd, arg, a->cmd);
    return 2;
}

static char *flag_name(const char *key)
{
    size_t n = strlen(key);
    char *f = malloc(n + 3);
    if (!f)
        return NULL;
    f[0] = f[1] = '-';
    for (size_t i = 0; i <= n; i++)
        f[i + 2] = key[i] == '_' ? '-' : key[i];
    return f;
}

int cli_expand_config(const char *cmd, int *argc, char ***argv, cli_config_args *keep)
{
    memset(keep, 0, sizeof *keep);
    const char *path = NULL;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp((*argv)[i], "--config") && i + 1 < *argc)
            path = (*argv)[i + 1];
        else if (!strncmp((*argv)[i], "--config=", 9))
            path = (*argv)[i] + 9;
    }
    if (!path)
        return 0;
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j || !json_is_object(j)) {
        fprintf(stderr, "%s: %s:%d:%d: %s\n", cmd, path, err.line, err.column, j ? "expected a JSON object" : err.text);
        json_decref(j);
        return 2;
    }
    size_t cap = 2 * json_object_size(j) + (size_t)*argc + 1;
    keep->argv = calloc(cap, sizeof(char *));
    keep->owned = calloc(cap, sizeof(char *));
    if (!keep->argv || !keep->owned) {
        json_decref(j);
        cli_config_free(keep);
        fprintf(stderr, "%s: out of memory\n", cmd);
        return 2;
    }
    int n = 0;
    keep->argv[n++] = (*argv)[0];
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        char num[64], *val = NULL;
        if (json_is_false(v) || json_is_null(v))
            continue;
        if (json_is_string(v))
            val = strdup(json_string_value(v));
        else if (json_is_integer(v))
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), val = strdup(num);
        else if (json_is_real(v))
            snprintf(num, sizeof num, "%.17g", json_real_value(v)), val = strdup(num);
        else if (!json_is_true(v)) {
            fprintf(stderr, "%s: %s: \"%s\": expected a string, number or boolean\n", cmd, path, key);
            json_decref(j);
            cli_config_free(keep);
            return 2;
        }
        char *flag = flag_name(key);
        keep->owned[keep->n_owned++] = flag;
        keep->argv[n++] = flag;
        if (val) {
            keep->owned[keep->n_owned++] = val;
            keep->argv[n++] = val;
        }
    }
    json_decref(j);
    for (int i = 1; i < *argc; i++) {
        if (!strcmp((*argv)[i], "--config")) {
            i++;
            continue;
        }
        if (!strncmp((*argv)[i], "--config=", 9))
            continue;
        keep->argv[n++] = (*argv)[i];
    }
    *argc = n;
    *argv = keep->argv;
    return 0;
}

void cli_config_free(cli_config_args *keep)
{
    for (int i = 0; i < keep->n_owned; i++)
        free(keep->owned[i]);
    free(keep->owned);
    free(keep->argv);
    memset(keep, 0, sizeof *keep);
}

char *cli_find_tokenizer(const char *model_path) { return al_model_dir_find_tokenizer(model_path); }

static int load_template(cli_model_files *f, const char *model, const char *tmpl_flag)
{
    if (tmpl_flag) {
        snprintf(f->tmpl_source, sizeof f->tmpl_source, "--chat-template");
        return al_chat_template_open(&f->tmpl, tmpl_flag);
    }
    bool jinja_only;
    if (al_model_dir_load_config(model, NULL, &f->tmpl, &jinja_only))
        return -1;
    if (f->tmpl) {
        snprintf(f->tmpl_source, sizeof f->tmpl_source, "saved with the model");
        return 0;
    }
    snprintf(f->tmpl_source, sizeof f->tmpl_source, "%s",
             jinja_only ? "default: the model's tokenizer_config.json holds only a Jinja template"
                        : "default: none saved with the model");
    return al_chat_template_builtin(&f->tmpl, "chatml");
}

int cli_model_files_load(const char *cmd, const char *model, const char *tok_flag, const char *tmpl_flag, bool want_tmpl,
                         cli_model_files *f)
{
    memset(f, 0, sizeof *f);
    char *found = tok_flag ? NULL : al_model_dir_find_tokenizer(model);
    const char *tok_path = tok_flag ? tok_flag : found;
    if (!tok_path) {
        fprintf(stderr, "%s: no tokenizer found beside %s; pass -z TOKENIZER\n", cmd, model);
        return 1;
    }
    /* the special tokens listed beside the model belong to its own tokenizer, not to -z's */
    int rc = al_tokenizer_load(&f->tok, tok_path) || (!tok_flag && al_model_dir_load_config(model, f->tok, NULL, NULL)) ||
             (want_tmpl && load_template(f, model, tmpl_flag));
    free(found);
    const char **markers;
    int n = 0;
    if (rc == 0 && f->tmpl)
        al_chat_template_specials(f->tmpl, &markers, &n);
    for (int k = 0; rc == 0 && k < n; k++)
        if (al_tokenizer_find(f->tok, markers[k], strlen(markers[k])) >= 0)
            rc = al_tokenizer_add_special(f->tok, markers[k], NULL);
    if (rc) {
        fprintf(stderr, "%s: %s\n", cmd, al_errmsg());
        cli_model_files_free(f);
        return 1;
    }
    return 0;
}

void cli_model_files_free(cli_model_files *f)
{
    al_chat_template_free(f->tmpl);
    al_tokenizer_free(f->tok);
    memset(f, 0, sizeof *f);
}

int cli_clip_new_tokens(const char *cmd, int want, int prompt_len, int seq_len)
{
    int left = seq_len - prompt_len;
    if (left <= 0)
        return 0;
    if (want > left) {
        fprintf(stderr, "%s: -n clipped to %d new tokens: the prompt takes %d of the model's %d positions\n", cmd,
                left, prompt_len, seq_len);
        return left;
    }
    return want;
}

int cli_train_flag(cli_args *a, const char *arg, const cli_train_fields *f)
{
#define OPT(FIELD, SHORT, LONG) (f->FIELD && cli_opt(a, arg, SHORT, LONG))
#define FLAG(FIELD, LONG) (f->FIELD && cli_flag(a, arg, NULL, LONG))
    if (OPT(data, NULL, "--data"))
        *f->data = a->value;
    else if (OPT(val_data, NULL, "--val-data"))
        *f->val_data = a->value;
    else if (OPT(held_out, NULL, "--held-out"))
        *f->held_out = cli_float(a, 0, 0.9);
    else if (FLAG(skip_bad_lines, "--skip-bad-lines"))
        *f->skip_bad_lines = true;
    else if (OPT(max_examples, NULL, "--max-examples"))
        *f->max_examples = cli_int(a, 0, 1 << 30);
    else if (OPT(chat_template, NULL, "--chat-template"))
        *f->chat_template = a->value;
    else if (OPT(model, "-m", "--model"))
        *f->model = a->value;
    else if (OPT(tokenizer, "-z", "--tokenizer"))
        *f->tokenizer = a->value;
    else if (OPT(out_dir, NULL, "--out"))
        *f->out_dir = a->value;
    else if (OPT(batch_size, NULL, "--batch-size"))
        *f->batch_size = cli_int(a, 1, 1 << 20);
    else if (OPT(seq_len, NULL, "--seq-len"))
        *f->seq_len = cli_int(a, 2, 1 << 20);
    else if (OPT(grad_accum, NULL, "--grad-accum"))
        *f->grad_accum = cli_int(a, 1, 1 << 20);
    else if (OPT(epochs, NULL, "--epochs"))
        *f->epochs = cli_int(a, 1, 1 << 20);
    else if (OPT(steps, NULL, "--steps"))
        *f->steps = cli_int(a, 1, 1 << 30);
    else if (OPT(sched, NULL, "--lr"))
        f->sched->peak_lr = cli_float(a, 0, 10);
    else if (OPT(min_lr_ratio, NULL, "--min-lr-ratio"))
        *f->min_lr_ratio = cli_float(a, 0, 1);
    else if (OPT(sched, NULL, "--warmup"))
        f->sched->warmup = cli_int(a, 0, 1 << 30);
    else if (OPT(sched, NULL, "--schedule")) {
        if (al_schedule_parse(a->value, &f->sched->kind)) {
            fprintf(stderr, "%s: %s\n", a->cmd, al_errmsg());
            return -1;
        }
    } else if (OPT(adamw, NULL, "--weight-decay"))
        f->adamw->weight_decay = cli_float(a, 0, 10);
    else if (OPT(grad_clip, NULL, "--grad-clip"))
        *f->grad_clip = cli_float(a, 0, 1e9);
    else if (OPT(skip_outliers, NULL, "--skip-outliers"))
        *f->skip_outliers = cli_float(a, 0, 1e9);
    else if (OPT(seed, NULL, "--seed"))
        *f->seed = (uint64_t)cli_int(a, 0, 0x7fffffff);
    else if (OPT(eval_every, NULL, "--eval-every"))
        *f->eval_every = cli_int(a, 0, 1 << 30);
    else if (OPT(eval_batches, NULL, "--eval-batches"))
        *f->eval_batches = cli_int(a, 1, 1 << 20);
    else if (OPT(save_every, NULL, "--save-every"))
        *f->save_every = cli_int(a, 0, 1 << 30);
    else if (OPT(keep, NULL, "--keep"))
        *f->keep = cli_int(a, 1, 1 << 20);
    else if (f->quiet && cli_flag(a, arg, "-q", "--quiet"))
        *f->quiet = true;
    else if (FLAG(lora, "--lora"))
        *f->lora = true;
    else if (OPT(lora_cfg, NULL, "--lora-r"))
        f->lora_cfg->rank = cli_int(a, 1, 4096);
    else if (OPT(lora_cfg, NULL, "--lora-alpha"))
        f->lora_cfg->alpha = cli_float(a, 0, 1e6);
    else if (OPT(lora_cfg, NULL, "--lora-dropout"))
        f->lora_cfg->dropout = cli_float(a, 0, 0.99);
    else if (OPT(lora_cfg, NULL, "--lora-targets")) {
        if (al_lora_parse_targets(a->value, &f->lora_cfg->targets)) {
            fprintf(stderr, "%s: --lora-targets: %s\n", a->cmd, al_errmsg());
            return -1;
        }
    } else
        return 0;
#undef OPT
#undef FLAG
    return a->error ? -1 : 1;
}
