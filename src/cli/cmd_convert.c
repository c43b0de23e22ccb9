/* placeholder until the convert command lands in this session */
#include <stdio.h>
#include "commands.h"
int cmd_convert(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "align convert: not built yet\n"); return 2; }
