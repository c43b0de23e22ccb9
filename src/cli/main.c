/* align: one command line for the whole alignment pipeline. */
#include <stdio.h>
#include <string.h>

#include "align/core.h"
#include "align/dist.h"
#include "commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"generate", cmd_generate, "generate text from a model (llama2.c-compatible with --compat llama2c)"},
    {"info", cmd_info, "print a model's configuration, parameter count and memory plan"},
    {"convert", cmd_convert, "convert a checkpoint (llama2.c .bin, safetensors) to HF safetensors"},
    {"pretrain", cmd_pretrain, "train a model on next-token prediction (from scratch or --init)"},
    {"sft", cmd_sft, "supervised fine-tuning on prompt/response data (TRL formats, chat templates)"},
    {"chat", cmd_chat, "talk with a model in the terminal through a chat template"},
    {"tokenizer", cmd_tokenizer, "encode, decode, inspect and train tokenizers"},
    {"lora", cmd_lora, "merge LoRA adapters into their base model (align lora merge)"},
    {"rm", cmd_rm, "train a reward model on preference pairs and score answers with it"},
    {"dpo", cmd_dpo, "preference optimization: DPO and its family, SimPO, CPO, ORPO, KTO"},
    {"ppo", cmd_ppo, "online RL with a critic (PPO, RLHF's third stage), from a reward model or rules"},
    {"grpo", cmd_grpo, "online RL with group-normalized advantages (GRPO), from any reward"},
    {"rloo", cmd_rloo, "online RL with leave-one-out baselines (RLOO)"},
    {"reinforce", cmd_reinforce, "online RL with REINFORCE++ (and its group-baseline variant)"},
    {"guard", cmd_guard, "check prompts and answers against a policy; train the harm classifier"},
    {"cai", cmd_cai, "Constitutional AI: critique and revise against a constitution; AI preference labels"},
    {"self-reward", cmd_self_reward, "self-rewarding: the model judges its own samples, DPO on best vs worst"},
    {"review", cmd_review, "the human review queue of escalated decisions"},
    {"eval", cmd_eval, "safety evaluation: refusals, over-refusal, leaks, style, KL, perplexity"},
    {"redteam", cmd_redteam, "attack a model (alone or behind the guard) and report attack success rates"},
    {"serve", cmd_serve, "serve a model over an OpenAI-compatible HTTP API, the guard on both sides, a dashboard"},
    {"report", cmd_report, "one self-contained HTML page from demo, red-team and training run directories"},
    {"demo", cmd_demo, "align the built-in support assistant end to end and show before and after"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: align <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'align <command> --help' explains a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("align 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            /* under mpirun, one rank of a data-parallel job (docs/distributed.md) */
            if (al_dist_init(&argc, &argv)) {
                fprintf(stderr, "align: %s\n", al_errmsg());
                return 1;
            }
            int rc = commands[i].run(argc - 1, argv + 1);
            /* a failed rank must not wait in MPI_Finalize for ranks waiting on it */
            if (rc != 0 && al_dist_size() > 1)
                al_dist_abort("the command failed (its error is above)");
            al_dist_finalize();
            return rc;
        }
    fprintf(stderr, "align: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
