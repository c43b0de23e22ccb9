/* align grpo / rloo / reinforce: online RL from a reward (src/rl/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/rl.h"
#include "args.h"
#include "commands.h"

static const char *usage_head =
    "usage: align %s --data PROMPTS -m MODEL --reward SPEC [--reward SPEC ...] --out DIR [options]\n"
    "\n"
    "%s\n"
    "\n"
    "Each step takes --prompts-per-step prompts from PROMPTS (JSONL: {\"prompt\": \"...\"} or a\n"
    "message list, or {\"messages\": [...]}), samples --num-generations completions of each,\n"
    "scores them with the reward, and updates the policy with the clipped policy-gradient\n"
    "loss, --epochs passes of --minibatches updates over the batch.  Sampling and training\n"
    "run the same exact kernels: the probability ratio of the first minibatch is checked to\n"
    "be exactly 1, and the run stops if it is not.  DIR/final holds the policy (or its LoRA\n"
    "adapters) with its tokenizer and chat template; DIR/metrics.jsonl one line per step\n"
    "(reward, reward_std, rewards/NAME/mean, kl, kl_exact, entropy, clip_ratio/..., time/...).\n"
    "\n"
    "reward (docs/rewards.md), weighted sum of terms:\n"
    "  --reward SPEC          model:DIR, regex:PAT, regex_not:PAT, lexicon:FILE|builtin,\n"
    "                         length:N, refusal[:WORLD], format:PAT, guard[:POLICY],\n"
    "                         plugin:PATH.so[:ARG]; repeat for several terms\n"
    "  --reward-weights W,... one weight per --reward (TRL's reward_weights; default 1 each)\n"
    "  --missing-eos-penalty X  subtracted from completions cut at the length limit (0)\n"
    "  --mask-truncated-completions  no loss on completions without EOS\n"
    "sampling:\n"
    "  --prompts-per-step P (8)  --num-generations G (8)  --max-completion-length N (64)\n"
    "  --max-prompt-length N (128)  --temperature X (1)  --top-k K  --top-p X  --min-p X\n"
    "  --rollout-weights f32|bf16|int8  the policy's matrices in sampling and in the training\n"
    "                         forward (and the reference's), rounded alike so the ratio stays\n"
    "                         exactly 1; updates go to the float weights (f32)\n"
    "policy update:\n"
    "  --beta X               KL coefficient (%s); 0 loads no reference\n"
    "  --kl-estimator k1|k2|k3  (%s)  --kl-target X --kl-horizon N  adaptive KL controller\n"
    "  --epsilon X (0.2)      clip range; --epsilon-high X for DAPO's asymmetric clip\n"
    "  --epochs N (1)  --minibatches N (1)%s\n"
    "  --lr X (1e-5)  --schedule constant  --warmup N  --weight-decay X  --grad-clip X (1.0)\n"
    "  --steps N (100)  --seq-len T (the model's)  --seed S  --max-prompts N\n"
    "  --lora --lora-r R --lora-alpha A --lora-targets LIST   train adapters; the reference\n"
    "                         is the model with them off\n"
    "  --ref-model DIR        the reference (default: MODEL)\n"
    "  --dump-steps N         DIR/dumps/step_K.jsonl for steps 1..N: tokens, log-probs,\n"
    "                         reference log-probs, advantages and masks per sequence\n"
    "  --save-every N         a checkpoint every N steps (DIR/checkpoints, the newest --keep)\n"
    "  --resume               continue the run in --out from its newest checkpoint, bit for\n"
    "                         bit as if never stopped (same settings; --steps may grow)\n"
    "  -z TOKENIZER  --chat-template T   (default: those saved with the model)\n"
    "  --config FILE  --quiet\n"
    "\n"
    "example:\n"
    "  align %s --data prompts.jsonl -m runs/sft/final --reward model:runs/rm/final \\\n"
    "      --reward guard --reward-weights 1,0.5 --out runs/%s --steps 50\n";

static int parse_weights(const char *list, double **out, int *n)
{
    *n = 0;
    *out = NULL;
    for (const char *p = list; p && *p;) {
        char *end;
        double w = strtod(p, &end);
        if (end == p || (*end && *end != ','))
            return al_fail("--reward-weights: expected numbers separated by commas, got '%s'", list);
        double *grown = realloc(*out, (size_t)(*n + 1) * sizeof *grown);
        if (!grown)
            return al_fail("out of memory");
        *out = grown;
        (*out)[(*n)++] = w;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int run_rl(const char *name, al_rl_algo algo, int argc, char **argv)
{
    char cmd[32];
    snprintf(cmd, sizeof cmd, "align %s", name);
    cli_config_args keep;
    int rc = cli_expand_config(cmd, &argc, &argv, &keep);
    if (rc)
        return rc;
    al_rl_opts o;
    al_rl_defaults(&o, algo);
    const char **rewards = calloc((size_t)argc + 1, sizeof *rewards);
    double *weights = NULL;
    int n_weights = -1;
    cli_train_fields fields = {.data = &o.data, .model = &o.model, .tokenizer = &o.tokenizer, .out_dir = &o.out_dir,
                               .chat_template = &o.chat_template, .quiet = &o.quiet, .lora = &o.lora,
                               .max_examples = &o.max_prompts, .seq_len = &o.seq_len, .epochs = &o.ppo_epochs,
                               .save_every = &o.save_every, .keep = &o.keep, .steps = &o.steps, .sched = &o.sched,
                               .min_lr_ratio = &o.min_lr_ratio, .grad_clip = &o.grad_clip, .adamw = &o.adamw,
                               .seed = &o.seed, .lora_cfg = &o.lora_cfg};
    cli_args a;
    cli_args_init(&a, cmd, argc, argv);
    const char *arg;
    int known;
    rc = 2;
    if (!rewards) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        goto out;
    }
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            const char *what =
                algo == AL_RL_GRPO ? "GRPO (DeepSeekMath): advantages are each completion's reward normalized within "
                                     "its prompt's group; the KL penalty is in the loss."
                : algo == AL_RL_RLOO ? "RLOO: each completion's baseline is the mean reward of the other completions "
                                       "of its prompt (leave-one-out); the KL penalty is in the reward."
                : algo == AL_RL_PPO
                    ? "PPO (Ziegler et al., TRL's PPOTrainer): per-token rewards -beta KL, the score at the last\n"
                      "token, GAE on a critic's values (--value-model: a reward model, as TRL starts it; default:\n"
                      "the policy with a fresh score head), whitened advantages, clipped policy and value losses.\n"
                      "  --gae-lambda X (0.95)  --gamma X (1)  --vf-coef X (0.1)  --cliprange-value X (0.2)"
                    : "REINFORCE++: per-token KL rewards, the score at the last token, returns whitened over the "
                      "batch\n(--baseline subtracts the group mean first; --gamma X discounts).";
            printf(usage_head, name, what, algo == AL_RL_GRPO ? "0.04" : "0.05", algo == AL_RL_GRPO ? "k3" : "k1",
                   algo == AL_RL_GRPO ? "\n  --scale-rewards group|batch|none (group)  --loss-type "
                                        "grpo|bnpo|dr_grpo|dapo (grpo)"
                                      : "",
                   name, name);
            rc = 0;
            goto out;
        } else if (cli_opt(&a, arg, NULL, "--reward")) {
            rewards[o.n_rewards++] = a.value;
        } else if (cli_opt(&a, arg, NULL, "--reward-weights")) {
            if (parse_weights(a.value, &weights, &n_weights)) {
                fprintf(stderr, "%s: %s\n", cmd, al_errmsg());
                goto out;
            }
        } else if (cli_opt(&a, arg, NULL, "--num-generations")) {
            o.num_generations = cli_int(&a, 1, 1024);
        } else if (cli_opt(&a, arg, NULL, "--prompts-per-step")) {
            o.prompts_per_step = cli_int(&a, 1, 4096);
        } else if (cli_opt(&a, arg, NULL, "--max-completion-length")) {
            o.max_completion_length = cli_int(&a, 1, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--max-prompt-length")) {
            o.max_prompt_length = cli_int(&a, 1, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--temperature")) {
            o.sampling.temperature = cli_float(&a, 1e-6, 100);
        } else if (cli_opt(&a, arg, NULL, "--top-k")) {
            o.sampling.top_k = cli_int(&a, 0, 1 << 24);
        } else if (cli_opt(&a, arg, NULL, "--top-p")) {
            o.sampling.top_p = cli_float(&a, 1e-6, 1);
        } else if (cli_opt(&a, arg, NULL, "--min-p")) {
            o.sampling.min_p = cli_float(&a, 0, 1);
        } else if (cli_opt(&a, arg, NULL, "--rollout-weights")) {
            if (al_weight_type_parse(a.value, &o.rollout_weights)) {
                fprintf(stderr, "%s: --rollout-weights: %s\n", cmd, al_errmsg());
                goto out;
            }
        } else if (cli_opt(&a, arg, NULL, "--missing-eos-penalty")) {
            o.missing_eos_penalty = cli_float(&a, -1e9, 1e9);
        } else if (cli_flag(&a, arg, NULL, "--mask-truncated-completions")) {
            o.mask_truncated = true;
        } else if (cli_opt(&a, arg, NULL, "--beta")) {
            o.beta = cli_float(&a, 0, 1e9);
        } else if (cli_opt(&a, arg, NULL, "--kl-estimator")) {
            if (al_kl_parse(a.value, &o.kl_estimator)) {
                fprintf(stderr, "%s: %s\n", cmd, al_errmsg());
                goto out;
            }
        } else if (cli_opt(&a, arg, NULL, "--kl-target")) {
            o.kl_target = cli_float(&a, 0, 1e9);
        } else if (cli_opt(&a, arg, NULL, "--kl-horizon")) {
            o.kl_horizon = cli_float(&a, 1, 1e12);
        } else if (cli_opt(&a, arg, NULL, "--epsilon")) {
            o.epsilon_low = o.epsilon_high = cli_float(&a, 0, 10);
        } else if (cli_opt(&a, arg, NULL, "--epsilon-high")) {
            o.epsilon_high = cli_float(&a, 0, 10);
        } else if (cli_opt(&a, arg, NULL, "--minibatches")) {
            o.minibatches = cli_int(&a, 1, 1 << 20);
        } else if (algo == AL_RL_GRPO && cli_opt(&a, arg, NULL, "--scale-rewards")) {
            const char *v = a.value;
            if (!strcmp(v, "group"))
                o.scale_rewards = AL_ADV_GRPO_GROUP;
            else if (!strcmp(v, "batch"))
                o.scale_rewards = AL_ADV_GRPO_BATCH;
            else if (!strcmp(v, "none"))
                o.scale_rewards = AL_ADV_GRPO_NONE;
            else {
                fprintf(stderr, "%s: --scale-rewards: expected group, batch or none, got '%s'\n", cmd, v);
                goto out;
            }
        } else if (algo == AL_RL_GRPO && cli_opt(&a, arg, NULL, "--loss-type")) {
            if (al_loss_agg_parse(a.value, &o.loss_type)) {
                fprintf(stderr, "%s: %s\n", cmd, al_errmsg());
                goto out;
            }
        } else if (algo == AL_RL_REINFORCE_PP && cli_flag(&a, arg, NULL, "--baseline")) {
            o.algo = AL_RL_REINFORCE_PP_BASELINE;
        } else if ((algo == AL_RL_REINFORCE_PP || algo == AL_RL_PPO) && cli_opt(&a, arg, NULL, "--gamma")) {
            o.gamma = cli_float(&a, 0, 1);
        } else if (algo == AL_RL_PPO && cli_opt(&a, arg, NULL, "--value-model")) {
            o.value_model = a.value;
        } else if (algo == AL_RL_PPO && cli_opt(&a, arg, NULL, "--gae-lambda")) {
            o.gae_lambda = cli_float(&a, 0, 1);
        } else if (algo == AL_RL_PPO && cli_opt(&a, arg, NULL, "--vf-coef")) {
            o.vf_coef = cli_float(&a, 1e-9, 1e9);
        } else if (algo == AL_RL_PPO && cli_opt(&a, arg, NULL, "--cliprange-value")) {
            o.cliprange_value = cli_float(&a, 1e-9, 1e9);
        } else if (cli_opt(&a, arg, NULL, "--ref-model")) {
            o.ref_model = a.value;
        } else if (cli_flag(&a, arg, NULL, "--resume")) {
            o.resume = true;
        } else if (cli_opt(&a, arg, NULL, "--dump-steps")) {
            o.dump_steps = cli_int(&a, 0, 1 << 30);
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
    if (n_weights >= 0 && n_weights != o.n_rewards) {
        fprintf(stderr, "%s: --reward-weights has %d weights for %d rewards\n", cmd, n_weights, o.n_rewards);
        goto out;
    }
    o.rewards = rewards;
    o.reward_weights = weights;
    rc = al_rl_train(&o) ? 1 : 0;
    if (rc)
        fprintf(stderr, "%s: %s\n", cmd, al_errmsg());
out:
    free(rewards);
    free(weights);
    cli_config_free(&keep);
    return rc;
}

int cmd_grpo(int argc, char **argv) { return run_rl("grpo", AL_RL_GRPO, argc, argv); }
int cmd_rloo(int argc, char **argv) { return run_rl("rloo", AL_RL_RLOO, argc, argv); }
int cmd_reinforce(int argc, char **argv) { return run_rl("reinforce", AL_RL_REINFORCE_PP, argc, argv); }
int cmd_ppo(int argc, char **argv) { return run_rl("ppo", AL_RL_PPO, argc, argv); }
