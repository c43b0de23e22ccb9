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

#endif
