/* Flag parsing shared by the subcommands: "-x VALUE", "--long VALUE", "--long=VALUE". */
#ifndef ALIGN_CLI_ARGS_H
#define ALIGN_CLI_ARGS_H

#include <stdbool.h>

#include "align/data.h"
#include "align/train.h"

typedef struct cli_args {
    int argc, i;
    char **argv;
    const char *cmd; /* for messages: "align generate" */
    const char *value;
    bool error;
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv);
/* Next argument; returns NULL at the end. */
const char *cli_next(cli_args *a);
/* True if arg is one of the two spellings; a flag that takes a value stores it in a->value
 * (from "--name=V" or the next argument) and reports a missing value. */
bool cli_flag(cli_args *a, const char *arg, const char *short_name, const char *long_name);
bool cli_opt(cli_args *a, const char *arg, const char *short_name, const char *long_name);
int cli_int(cli_args *a, long min, long max);
float cli_float(cli_args *a, double min, double max);
int cli_unknown(cli_args *a, const char *arg); /* prints the error, returns 2 */

/* "--config FILE" (a JSON object) becomes flags: {"batch_size": 8, "packing": true} ->
 * "--batch-size 8 --packing", placed before the command line's own flags so those win.
 * Replaces argc and argv with a new array (free with cli_config_free); returns 0, or 2 with
 * a located message on stderr. */
typedef struct cli_config_args {
    char **argv;
    char **owned;
    int n_owned;
} cli_config_args;
int cli_expand_config(const char *cmd, int *argc, char ***argv, cli_config_args *keep);
void cli_config_free(cli_config_args *keep);

/* The training flags the fine-tuning commands (sft, dpo, rm) share, bound to the fields
 * of their options struct (a NULL field: the command has no such flag). */
typedef struct cli_train_fields {
    const char **data, **val_data, **model, **tokenizer, **out_dir, **chat_template;
    double *held_out;
    bool *skip_bad_lines, *quiet, *lora;
    int *max_examples, *batch_size, *seq_len, *grad_accum, *epochs;
    int *eval_every, *eval_batches, *save_every, *keep;
    long *steps;
    al_schedule *sched;
    float *min_lr_ratio, *grad_clip, *skip_outliers;
    al_adamw_opts *adamw;
    uint64_t *seed;
    al_lora_config *lora_cfg;
} cli_train_fields;
/* All of them, bound to an options struct whose members carry the same names
 * (al_sft_opts, al_pref_train_opts). */
#define CLI_FINETUNE_FIELDS(o)                                                                          \
    {.data = &(o).data, .val_data = &(o).val_data, .model = &(o).model, .tokenizer = &(o).tokenizer,   \
     .out_dir = &(o).out_dir, .chat_template = &(o).chat_template, .held_out = &(o).held_out,          \
     .skip_bad_lines = &(o).skip_bad_lines, .quiet = &(o).quiet, .lora = &(o).lora,                    \
     .max_examples = &(o).max_examples, .batch_size = &(o).batch_size, .seq_len = &(o).seq_len,        \
     .grad_accum = &(o).grad_accum, .epochs = &(o).epochs, .eval_every = &(o).eval_every,              \
     .eval_batches = &(o).eval_batches, .save_every = &(o).save_every, .keep = &(o).keep,              \
     .steps = &(o).steps, .sched = &(o).sched, .min_lr_ratio = &(o).min_lr_ratio,                      \
     .grad_clip = &(o).grad_clip, .skip_outliers = &(o).skip_outliers, .adamw = &(o).adamw,            \
     .seed = &(o).seed, .lora_cfg = &(o).lora_cfg}
/* 1 if arg was one of those flags (its value stored), 0 if not, -1 on a bad value
 * (message printed). */
int cli_train_flag(cli_args *a, const char *arg, const cli_train_fields *f);

/* A tokenizer file beside a model (tokenizer.json, tokenizer.bin, tok512.bin), or NULL.
 * The path is malloc'd. */
char *cli_find_tokenizer(const char *model_path);

/* What a model is used with: the tokenizer (tok_flag, else the one in the model's
 * directory, with the special tokens its tokenizer_config.json lists) and, when want_tmpl,
 * the chat template (tmpl_flag, else the one saved with the model, else ChatML).  The
 * template's markers the tokenizer has become special, so encode splits them out as
 * single ids, as training did.  Errors are printed as "CMD: ..."; returns 0 or 1. */
typedef struct cli_model_files {
    al_tokenizer *tok;
    al_chat_template *tmpl;
    char tmpl_source[1100]; /* where the template came from, for a note */
} cli_model_files;
int cli_model_files_load(const char *cmd, const char *model, const char *tok_flag, const char *tmpl_flag, bool want_tmpl,
                         cli_model_files *f);
void cli_model_files_free(cli_model_files *f);
/* New tokens that fit after a prompt of prompt_len in seq_len positions: want, or what is
 * left (with a one-line note on stderr when that is less); 0 when nothing is left. */
int cli_clip_new_tokens(const char *cmd, int want, int prompt_len, int seq_len);

#endif
