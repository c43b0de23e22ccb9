/* PLACEHOLDER: `align demo` is being built in this session; this file is replaced. */
#include <stdio.h>

#include "commands.h"

int cmd_demo(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "align demo: not built yet\n");
    return 2;
}
