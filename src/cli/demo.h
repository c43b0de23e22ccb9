/* align demo: the end-to-end alignment pipeline as a table of stages (docs/demo.md).
 * A stage is a name, a line saying what it does, and a function that does it and returns
 * its figures.  The driver runs the table in order; each finished stage leaves
 * OUT/stages/NAME.json (written atomically), which a rerun takes as done.  Adding a stage
 * means writing one function and adding one line to demo_stages (demo_stages.c). */
#ifndef ALIGN_CLI_DEMO_H
#define ALIGN_CLI_DEMO_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "align/eval.h"

/* Every knob of one run size (the full demo and --quick). */
typedef struct demo_preset {
    const char *name;               /* "full", "quick" */
    bool quick;                     /* world sizes: al_world_sizes_default(quick) */
    int vocab_size;
    const char *model_config;       /* HF config.json fields of the base model */
    int seq_len;
    long pretrain_steps;
    int pretrain_batch;
    float pretrain_lr;
    int sft_epochs, sft_batch;
    float sft_lr;
    long rm_steps;
    int rm_batch;
    float rm_lr;
    long dpo_steps;
    int dpo_batch;
    float dpo_lr, dpo_beta, dpo_rpo_alpha;
    int pref_max_examples;          /* pairs the reward model and DPO load (0: all) */
    int max_new_tokens;             /* answers in the evaluations */
    float guard_threshold;          /* harm classifier: block at or above */
} demo_preset;

typedef struct demo_ctx {
    const char *out;                /* the run directory */
    uint64_t seed;
    int threads;
    const demo_preset *p;
    json_t *stages;                 /* name -> that stage's record (figures, seconds) */
} demo_ctx;

typedef struct demo_stage {
    const char *name;               /* also its file name: OUT/stages/NAME.json */
    const char *what;               /* the header line printed when it runs */
    /* Does the work and adds its figures to `figures`; 0, or -1 with an error recorded.
     * A stage reads earlier stages' outputs from the run directory, never from memory,
     * so that it runs the same in a fresh process after a resume. */
    int (*run)(demo_ctx *c, json_t *figures);
} demo_stage;

extern const demo_stage demo_stages[];
extern const int demo_n_stages;

extern const demo_preset demo_preset_full, demo_preset_quick;

/* OUT/rel (malloc'd; NULL after recording an error). */
char *demo_path(const demo_ctx *c, const char *rel);
/* The evaluation rows of the table: their stage names and labels. */
typedef struct demo_row {
    const char *stage, *label, *model;
} demo_row;
extern const demo_row demo_rows[];
extern const int demo_n_rows;

/* Runs every stage not yet done, then prints the table and writes OUT/summary.json. */
int demo_run(demo_ctx *c);

/* The before/after table on out; OUT/summary.json with every figure, the stage timings
 * and the settings; returns the number of acceptance targets missed (or -1 on error). */
int demo_report(demo_ctx *c, double total_seconds, FILE *out);

/* The guard in front of the aligned model (demo_guard_stage.c). */
int demo_guard_stage(demo_ctx *c, json_t *figures);
int demo_guard_eval(demo_ctx *c, const al_eval_opts *o, al_eval_summary *s);

#endif
