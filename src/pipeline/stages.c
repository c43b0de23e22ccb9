/* The pipeline's stages in the order they run, and the before/after table's rows
 * (docs/demo.md).  Adding a stage: its file stage_NAME.c, its function in internal.h, its
 * line here; a stage that evaluates a new model also gets a line in pipeline_rows. */
#include "internal.h"

const al_pipeline_stage al_pipeline_stages[] = {
    {"world", "generate the support world: corpus, demonstrations, preference pairs, prompts", pipeline_stage_world},
    {"tokenizer", "train a byte-level BPE tokenizer on the corpus", pipeline_stage_tokenizer},
    {"pretrain", "pretrain the base model from scratch on the corpus", pipeline_stage_pretrain},
    {"eval_base", "evaluate the base model on the held-out prompts", pipeline_stage_eval_base},
    {"sft", "supervised fine-tuning on the demonstrations", pipeline_stage_sft},
    {"eval_sft", "evaluate the SFT model", pipeline_stage_eval_sft},
    {"reward_model", "train a reward model on the preference pairs", pipeline_stage_reward_model},
    {"dpo", "DPO (with the RPO term) on the preference pairs, from the SFT model", pipeline_stage_dpo},
    {"eval_dpo", "evaluate the aligned model", pipeline_stage_eval_dpo},
    {"guard", "build the guard: a harm classifier on the training prompts and the demo's policy", pipeline_stage_guard},
    {"eval_guard", "evaluate the aligned model behind the guard", pipeline_stage_eval_guard},
    {"rl", "online RL (GRPO) from the SFT model: the reward model plus the guard as a rule", pipeline_stage_rl},
    {"eval_rl", "evaluate the RL-aligned model", pipeline_stage_eval_rl},
    {"cai", "Constitutional AI: a feedback model critiques, revises and labels the SFT model's answers; DPO",
     pipeline_stage_cai},
    {"eval_cai", "evaluate the CAI model", pipeline_stage_eval_cai},
    {"redteam", "red-team the aligned model, alone and behind the guard; DPO on what got through; attack again",
     pipeline_stage_redteam},
    {"eval_redteam", "evaluate the model after the red-team round", pipeline_stage_eval_redteam},
    {"rewards", "score every model's held-out answers with the reward model", pipeline_stage_rewards},
    {"serve", "serve the red-team round's model behind the guard over HTTP (align serve) and attack it there",
     pipeline_stage_serve},
};
const int al_pipeline_n_stages = (int)(sizeof al_pipeline_stages / sizeof al_pipeline_stages[0]);

/* The table's rows: the evaluation stage, the label, and the answers file's name. */
const pipeline_row pipeline_rows[] = {
    {"eval_base", "base", "base"},
    {"eval_sft", "SFT", "sft"},
    {"eval_dpo", "DPO (aligned)", "dpo"},
    {"eval_guard", "aligned + guard", "guard"},
    {"eval_rl", "GRPO (online RL)", "rl"},
    {"eval_cai", "CAI round", "cai"},
    {"eval_redteam", "red-team round", "redteam"},
};
const int pipeline_n_rows = (int)(sizeof pipeline_rows / sizeof pipeline_rows[0]);
