/* Private to src/pipeline: what the stages share — the run directory's layout, the
 * helpers every stage uses, the stage functions the table lists and the table's rows. */
#ifndef ALIGN_PIPELINE_INTERNAL_H
#define ALIGN_PIPELINE_INTERNAL_H

#include <jansson.h>

#include "align/pipeline.h"
#include "align/train.h"

/* The paths every stage shares, relative to the run directory. */
#define WORLD "world"
#define TOKENIZER "tokenizer/tokenizer.json"
#define BASE_RUN "runs/base"
#define SFT_RUN "runs/sft"
#define RM_RUN "runs/reward_model"
#define DPO_RUN "runs/dpo"
/* Where LoRA runs train their adapters; RUN/final is then the merged model. */
#define SFT_LORA_RUN "runs/sft/lora"
#define DPO_LORA_RUN "runs/dpo/lora"
#define RL_RUN "runs/rl"
#define RL_LORA_RUN "runs/rl/lora"
#define CAI_RUN "runs/cai"
#define CAI_LORA_RUN "runs/cai/lora"
#define CAI_CRITIC_RUN "runs/cai/critic"
#define CAI_CRITIC_LORA_RUN "runs/cai/critic/lora"
#define REDTEAM_RUN "runs/redteam"
#define REDTEAM_LORA_RUN "runs/redteam/lora"

/* ---- helpers (helpers.c) ---- */

/* OUT/rel (malloc'd; NULL after recording an error). */
char *pipeline_path(const al_pipeline *p, const char *rel);

/* A stage's paths, freed together at its end. */
typedef struct pipeline_paths {
    char *v[12];
    int n;
} pipeline_paths;
/* OUT/rel, kept in ps until pipeline_paths_free (NULL after recording an error). */
const char *pipeline_at(const al_pipeline *p, pipeline_paths *ps, const char *rel);
void pipeline_paths_free(pipeline_paths *ps);

/* A trainer's state in run: 2 = finished (RUN/final exists), 1 = interrupted after a
 * checkpoint (resume from it), 0 = nothing to keep (start afresh). */
int pipeline_run_state(const char *run);
/* The last value of key in RUN/metrics.jsonl (NaN when no line has it). */
double pipeline_last_metric(const char *run, const char *key);
/* The mean of key over the first (or last) n lines of RUN/metrics.jsonl that have it. */
double pipeline_metric_window(const char *run, const char *key, int n, bool last);
/* o[key] = x, or null when x is NaN. */
void pipeline_set_real(json_t *o, const char *key, double x);
/* Merges the adapters of adapters_dir (a LoRA run's final/) into base and writes the
 * model, with the tokenizer and template the run saved, to out: through out.tmp and a
 * rename, so out exists only complete.  Nothing to do when out exists. */
int pipeline_merge_adapters(const char *base, const char *adapters_dir, const char *out);
/* The model of src (weights, tokenizer, template) to out, as pipeline_merge_adapters writes. */
int pipeline_copy_model(const char *src, const char *out);
/* The run's tokenizer and the world's chat template, as every stage after the tokenizer
 * uses them; on failure both are NULL.  Free with al_tokenizer_free, al_chat_template_free. */
int pipeline_load_text(const al_pipeline *p, al_tokenizer **tok, al_chat_template **tmpl);
/* One user turn and its answer(s) in the template, tokenized as the reward model reads
 * them: out->chosen from chosen, out->rejected from rejected (may be NULL). */
int pipeline_tokenize_turn(const al_tokenizer *tok, const al_chat_template *t, int seq_len, const char *prompt,
                           const char *chosen, const char *rejected, al_pref_tokens *out);
/* Deletes path and everything under it (nothing when it does not exist). */
int pipeline_remove_tree(const char *path);
/* The LoRA settings of the preset, seeded by the run. */
al_lora_config pipeline_lora_config(const al_pipeline *p);
/* rc, with the trainer and its run directory prefixed to the error when it failed. */
int pipeline_trained(const char *what, const char *run, int rc);

/* The preference trainers' common run (pref_train.c): the pairs of OUT/data from the model
 * OUT/model, the preset's example cap and sequence length, a linear schedule, checkpoints
 * every 50 steps; resumes or skips as the run directory says.  o arrives with its trainer
 * kind's defaults and the trainer's own knobs; what names the trainer in errors. */
int pipeline_pref_train(al_pipeline *p, al_pref_train_opts *o, const char *what, const char *data, const char *model,
                        const char *run, long steps, int batch, float lr);

/* ---- the stages (stage_*.c), listed in al_pipeline_stages (stages.c) ---- */
int pipeline_stage_world(al_pipeline *p, json_t *figures);
int pipeline_stage_tokenizer(al_pipeline *p, json_t *figures);
int pipeline_stage_pretrain(al_pipeline *p, json_t *figures);
int pipeline_stage_sft(al_pipeline *p, json_t *figures);
int pipeline_stage_reward_model(al_pipeline *p, json_t *figures);
int pipeline_stage_dpo(al_pipeline *p, json_t *figures);
int pipeline_stage_guard(al_pipeline *p, json_t *figures);
int pipeline_stage_eval_base(al_pipeline *p, json_t *figures);
int pipeline_stage_eval_sft(al_pipeline *p, json_t *figures);
int pipeline_stage_eval_dpo(al_pipeline *p, json_t *figures);
int pipeline_stage_eval_guard(al_pipeline *p, json_t *figures);
int pipeline_stage_rewards(al_pipeline *p, json_t *figures);
int pipeline_stage_rl(al_pipeline *p, json_t *figures);
int pipeline_stage_eval_rl(al_pipeline *p, json_t *figures);
int pipeline_stage_cai(al_pipeline *p, json_t *figures);
int pipeline_stage_eval_cai(al_pipeline *p, json_t *figures);
int pipeline_stage_redteam(al_pipeline *p, json_t *figures);
int pipeline_stage_eval_redteam(al_pipeline *p, json_t *figures);

int pipeline_stage_serve(al_pipeline *p, json_t *figures);

/* The red-team stage's techniques, which the serve stage attacks the server with too. */
#define PIPELINE_N_REDTEAM_TECHNIQUES 7
extern const char *const pipeline_redteam_techniques[PIPELINE_N_REDTEAM_TECHNIQUES];

/* The before/after table's rows (stages.c): the evaluation stage, the label, and the
 * model's name (its answers are OUT/eval/MODEL.answers.jsonl, its row rows.MODEL). */
typedef struct pipeline_row {
    const char *stage, *label, *model;
} pipeline_row;
extern const pipeline_row pipeline_rows[];
extern const int pipeline_n_rows;

#endif
