/* The flags `align dpo` and `align rm train` share, and their run. */
#ifndef ALIGN_CLI_PREF_H
#define ALIGN_CLI_PREF_H

#include "align/train.h"

/* Parses argv (after the command word) and trains; usage is printed for --help. */
int cli_run_pref(const char *cmd, al_trainer_kind kind, int argc, char **argv, const char *usage);

#endif
