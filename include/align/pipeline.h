/* align pipeline: the end-to-end alignment run behind `align demo` (docs/demo.md), as a
 * library.  The pipeline is a table of stages (world, tokenizer, pretrain, eval_base, sft,
 * ...).  A stage is a name, a line saying what it does, and a function that does the work
 * and returns its figures.  The runner goes through the table in order; each finished stage
 * leaves OUT/stages/NAME.json (written atomically), which a later run takes as done, so a
 * stopped run resumes where it stopped.  The report reads only those records: a resumed run
 * reports the same figures as an uninterrupted one.
 *
 * Nothing here writes to stdout on its own: stage headers, the stage's own lines and the
 * evaluation tables go to al_pipeline.log (NULL = silent: the trainers and evaluations then
 * run quiet too), and the before/after table to the FILE * given to al_pipeline_report.
 * The trainers' progress bars and notes stay on stderr, as in every other command.
 *
 * Adding a stage: one file src/pipeline/stage_NAME.c exporting one function, one line in
 * the table in src/pipeline/stages.c (docs/demo.md, "Adding a stage"). */
#ifndef ALIGN_PIPELINE_H
#define ALIGN_PIPELINE_H

#include "align/core.h"

struct json_t;

/* Every knob of one run size: the full demo and --quick (src/pipeline/presets.c). */
typedef struct al_pipeline_preset {
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
    int sft_mask;                   /* al_mask_mode of the SFT loss (all: TRL's default for
                                     * conversations, the customer's turns train too) */
    /* LoRA for SFT and DPO: the adapters train on a frozen model and are merged into
     * RUN/final, so the model keeps what pretraining taught it (held-out perplexity). */
    bool sft_lora, dpo_lora;
    int lora_r;
    float lora_alpha;
    long rm_steps;
    int rm_batch;
    float rm_lr;
    long dpo_steps;
    int dpo_batch;
    float dpo_lr, dpo_beta, dpo_rpo_alpha;
    int pref_max_examples;          /* pairs the reward model and DPO load (0: all) */
    /* online RL (GRPO, LoRA) from the SFT model: reward model + guard_weight x the guard
     * + intent_weight x the intent judge on the training prompts (reward "intent") */
    long rl_steps;
    int rl_prompts, rl_generations;
    float rl_lr, rl_beta, rl_guard_weight, rl_intent_weight;
    /* a Constitutional AI round: the SFT model learns the feedback from cai_sft.jsonl
     * with cai_critic_replay of the demonstrations (cai_critic_epochs at cai_critic_lr,
     * the sft_* batch, LoRA), revises cai_prompts training
     * prompts, labels the (first answer, revision) pairs under cai_principles rules each,
     * then DPO (the dpo_* beta, RPO term and batch; LoRA) for cai_steps at cai_lr */
    int cai_critic_epochs, cai_critic_replay, cai_prompts, cai_principles;
    float cai_critic_lr;
    float cai_temperature;          /* of the first answers (the critiques and revisions: greedy) */
    long cai_steps;
    float cai_lr;
    /* a red-team round: redteam_requests training harmful prompts attacked (answers of
     * redteam_max_new tokens), then DPO (the dpo_* beta, RPO term and batch; LoRA) from the
     * DPO model for redteam_steps at redteam_lr on the successful attacks and as many
     * contrast pairs */
    int redteam_requests, redteam_heldout, redteam_max_new; /* redteam_heldout: held-out harmful prompts attacked */
    long redteam_steps;
    float redteam_lr;
    int max_new_tokens;             /* answers in the evaluations */
    float guard_threshold;          /* harm classifier: block at or above */
} al_pipeline_preset;

extern const al_pipeline_preset al_pipeline_preset_full, al_pipeline_preset_quick;

/* One run: where, with which settings, and what its stages returned so far. */
typedef struct al_pipeline {
    const char *out;                /* the run directory */
    uint64_t seed;                  /* of the world and of every trainer */
    int threads;                    /* recorded in the summary; the caller sets up OpenMP */
    const al_pipeline_preset *preset;
    FILE *log;                      /* progress lines and evaluation tables; NULL = silent */
    struct json_t *stages;          /* stage name -> its record {stage, seconds,
                                     * load_average_1m, figures}, as in OUT/stages/NAME.json */
} al_pipeline;

typedef struct al_pipeline_stage {
    const char *name;               /* also its file name: OUT/stages/NAME.json */
    const char *what;               /* the header line logged when it runs */
    /* Does the work and adds its figures to `figures`; 0, or -1 with an error recorded.
     * A stage reads earlier stages' outputs from the run directory, never from memory,
     * so that it runs the same in a fresh process after a resume. */
    int (*run)(al_pipeline *p, struct json_t *figures);
} al_pipeline_stage;

/* The stages in the order they run (src/pipeline/stages.c). */
extern const al_pipeline_stage al_pipeline_stages[];
extern const int al_pipeline_n_stages;

/* A run in directory out with preset's settings, seed 1, 2 threads, no log.  The
 * caller may change seed, threads and log before running; al_pipeline_free releases. */
int al_pipeline_init(al_pipeline *p, const char *out, const al_pipeline_preset *preset);
void al_pipeline_free(al_pipeline *p);

/* Deletes what a run writes in dir (stages, world, tokenizer, runs, eval, guard,
 * settings.json, summary.json) and nothing else that may live there. */
int al_pipeline_clear(const char *dir);

/* Runs every stage not yet done, in order, after checking that OUT was made with the same
 * preset and seed (OUT/settings.json; a mismatch is an error naming --from-scratch).
 * 0, or -1 with the failing stage's name in the error. */
int al_pipeline_run(al_pipeline *p);
/* The same for one stage, by name; the stages it reads from must have run. */
int al_pipeline_run_stage(al_pipeline *p, const char *name);

/* The figures a stage returned (owned by p), or NULL when it has not run. */
const struct json_t *al_pipeline_figures(const al_pipeline *p, const char *stage);

/* The before/after table and the acceptance targets (PASS or FAIL) on out (NULL: not
 * printed), and OUT/summary.json: settings, a row per evaluated model, the targets,
 * every stage's record, pipeline_seconds, invocation_seconds (given by the caller),
 * all_targets_met, targets_missed.  With summary not NULL, *summary is that object
 * (caller json_decref's).  Returns the number of targets missed, or -1 on error. */
int al_pipeline_report(al_pipeline *p, double invocation_seconds, FILE *out, struct json_t **summary);

#endif
