/* The subcommands of `align`; each parses its own flags and returns an exit code. */
#ifndef ALIGN_CLI_COMMANDS_H
#define ALIGN_CLI_COMMANDS_H

int cmd_generate(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_lora(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_dpo(int argc, char **argv);
int cmd_ppo(int argc, char **argv);
int cmd_grpo(int argc, char **argv);
int cmd_rloo(int argc, char **argv);
int cmd_reinforce(int argc, char **argv);
int cmd_guard(int argc, char **argv);
int cmd_guard_train(int argc, char **argv); /* `align guard train`, dispatched by cmd_guard */
int cmd_guard_eval(int argc, char **argv);     /* `align guard eval`, dispatched by cmd_guard */
int cmd_guard_generate(int argc, char **argv); /* `align guard generate`, dispatched by cmd_guard */
int cmd_cai(int argc, char **argv);
int cmd_self_reward(int argc, char **argv);
int cmd_review(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_redteam(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
