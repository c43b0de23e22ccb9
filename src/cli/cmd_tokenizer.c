/* placeholder until the tokenizer command lands in this session */
#include <stdio.h>
#include "commands.h"
int cmd_tokenizer(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "align tokenizer: not built yet\n"); return 2; }
