/* The pipeline's two run sizes (al_pipeline_preset, docs/demo.md "The presets").
 * Tuned on a 2-core machine (docs/demo.md has the measurements): the full demo must reach
 * every acceptance figure in under 10 minutes on seeds 1, 2 and 3, --quick must run every
 * stage in under 2. */
#include "align/data.h"
#include "align/pipeline.h"

#define BASE_MODEL(DIM, HIDDEN, LAYERS, HEADS, VOCAB)                                                   \
    "{\"model_type\": \"llama\", \"hidden_size\": " #DIM ", \"intermediate_size\": " #HIDDEN               \
    ", \"num_hidden_layers\": " #LAYERS ", \"num_attention_heads\": " #HEADS ", \"num_key_value_heads\": " #HEADS \
    ", \"vocab_size\": " #VOCAB ", \"max_position_embeddings\": 256, \"tie_word_embeddings\": true}"

/* 1,000 pretraining steps: at 400 the base model had not learned which solution answers
 * which wording (docs/demo.md); LoRA for SFT and DPO: full fine-tuning raised held-out
 * perplexity 12x and forgot the held-out wordings the base model knew.  150 reward-model
 * steps: at 60 its held-out accuracy on wrong-intent pairs was at chance (45%); 150 reach
 * 62%, 250 67% for 25 s more.  GRPO: 30 steps of 8 prompts x 4 answers from the SFT model,
 * the intent judge at twice the reward model's weight (the reward model tells a
 * neighbouring intent's fix from the right one in 62% of pairs, the judge always), lr 2e-4
 * so the policy stays near SFT: 30 steps do not teach it more solutions (each intent comes
 * up a few times), and larger rates (6e-4, 1.5e-3) traded solved answers for reward-model
 * score on seed 2 or 3 (docs/demo.md).  CAI: the policy (the SFT model) answers and a
 * feedback model critiques, revises and judges: trained on the world's examples alone for
 * 3 epochs at 1e-3 (replaying demonstrations kept it answering but lost the judgement;
 * docs/demo.md "Measured"); 120 prompts and 30 DPO steps keep the stage near 35 s. */
const al_pipeline_preset al_pipeline_preset_full = {
    .name = "full", .quick = false, .vocab_size = 2048, .model_config = BASE_MODEL(128, 352, 4, 4, 2048),
    .seq_len = 256, .pretrain_steps = 1000, .pretrain_batch = 16, .pretrain_lr = 3e-3f,
    .sft_epochs = 2, .sft_batch = 8, .sft_lr = 2e-3f, .sft_mask = AL_MASK_ALL,
    .sft_lora = true, .dpo_lora = true, .lora_r = 16, .lora_alpha = 32,
    .rm_steps = 150, .rm_batch = 8, .rm_lr = 5e-4f,
    .dpo_steps = 100, .dpo_batch = 8, .dpo_lr = 1e-4f, .dpo_beta = 0.5f, .dpo_rpo_alpha = 1.0f,
    .pref_max_examples = 1500, .rl_steps = 30, .rl_prompts = 8, .rl_generations = 4, .rl_lr = 2e-4f,
    .rl_beta = 0.05f, .rl_guard_weight = 2.0f, .rl_intent_weight = 2.0f,
    .cai_critic_epochs = 3, .cai_critic_replay = 0, .cai_critic_lr = 1e-3f, .cai_prompts = 120, .cai_principles = 2,
    .cai_temperature = 1.0f, .cai_steps = 30, .cai_lr = 1e-4f, .redteam_requests = 120, .redteam_heldout = 100,
    .redteam_max_new = 32, .redteam_steps = 30, .redteam_lr = 1.5e-4f, .max_new_tokens = 96, .guard_threshold = 0.5f};

const al_pipeline_preset al_pipeline_preset_quick = {
    .name = "quick", .quick = true, .vocab_size = 1024, .model_config = BASE_MODEL(64, 176, 2, 4, 1024),
    .seq_len = 256, .pretrain_steps = 60, .pretrain_batch = 8, .pretrain_lr = 3e-3f,
    .sft_epochs = 1, .sft_batch = 8, .sft_lr = 2e-3f, .sft_mask = AL_MASK_ALL,
    .sft_lora = true, .dpo_lora = true, .lora_r = 8, .lora_alpha = 16,
    .rm_steps = 20, .rm_batch = 8, .rm_lr = 2e-4f,
    .dpo_steps = 20, .dpo_batch = 8, .dpo_lr = 5e-4f, .dpo_beta = 0.5f, .dpo_rpo_alpha = 1.0f,
    .pref_max_examples = 300, .rl_steps = 3, .rl_prompts = 4, .rl_generations = 2, .rl_lr = 2e-4f,
    .rl_beta = 0.05f, .rl_guard_weight = 2.0f, .rl_intent_weight = 2.0f,
    .cai_critic_epochs = 1, .cai_critic_replay = 200, .cai_critic_lr = 2e-3f, .cai_prompts = 24, .cai_principles = 2,
    .cai_temperature = 1.0f, .cai_steps = 4, .cai_lr = 1e-4f, .redteam_requests = 30, .redteam_heldout = 30,
    .redteam_max_new = 24, .redteam_steps = 4, .redteam_lr = 2e-4f, .max_new_tokens = 48, .guard_threshold = 0.5f};
