/* A run's settings as JSON (train_args.json, sft_args.json), from one table per options
 * struct: each entry names a key, its type and where it lives in the struct.  Internal to
 * the train module. */
#ifndef ALIGN_TRAIN_SETTINGS_H
#define ALIGN_TRAIN_SETTINGS_H

#include <jansson.h>
#include <stddef.h>

typedef enum { SET_STR, SET_INT, SET_LONG, SET_FLOAT, SET_DOUBLE, SET_BOOL, SET_U64, SET_SCHEDULE } setting_type;

typedef struct setting {
    const char *key;
    setting_type type;
    size_t offset;
} setting;

#define SETTING(STRUCT, KEY, TYPE, MEMBER) {KEY, TYPE, offsetof(STRUCT, MEMBER)}

/* The settings every fine-tuning run has: al_sft_opts and al_pref_train_opts name these
 * members alike, so one list serves both tables (S is the table's SETTING wrapper). */
#define FINETUNE_SETTINGS(S)                                                                   \
    S("skip_bad_lines", SET_BOOL, skip_bad_lines), S("held_out", SET_DOUBLE, held_out),       \
        S("max_examples", SET_INT, max_examples), S("batch_size", SET_INT, batch_size),       \
        S("seq_len", SET_INT, seq_len), S("grad_accum", SET_INT, grad_accum),                 \
        S("steps", SET_LONG, steps), S("epochs", SET_INT, epochs),                            \
        S("schedule", SET_SCHEDULE, sched.kind), S("lr", SET_FLOAT, sched.peak_lr),           \
        S("warmup", SET_LONG, sched.warmup), S("wsd_decay", SET_FLOAT, sched.wsd_decay),      \
        S("min_lr_ratio", SET_FLOAT, min_lr_ratio), S("beta1", SET_FLOAT, adamw.beta1),       \
        S("beta2", SET_FLOAT, adamw.beta2), S("eps", SET_FLOAT, adamw.eps),                   \
        S("weight_decay", SET_FLOAT, adamw.weight_decay), S("grad_clip", SET_FLOAT, grad_clip), \
        S("skip_outliers", SET_FLOAT, skip_outliers), S("eval_every", SET_INT, eval_every),   \
        S("eval_batches", SET_INT, eval_batches), S("save_every", SET_INT, save_every),       \
        S("keep", SET_INT, keep), S("seed", SET_U64, seed)

json_t *settings_to_json(const void *obj, const setting *table, int n);
/* Keys absent from j keep obj's values (its defaults); strings point into j. */
int settings_from_json(void *obj, json_t *j, const setting *table, int n, const char *origin);
/* DIR/NAME parsed, or NULL with a located error. */
json_t *settings_load(const char *dir, const char *name);

#endif
