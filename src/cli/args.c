#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv)
{
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
    a->cmd = cmd;
    a->value = NULL;
    a->error = false;
}

const char *cli_next(cli_args *a) { return a->i < a->argc ? a->argv[a->i++] : NULL; }

bool cli_flag(cli_args *a, const char *arg, const char *short_name, const char *long_name)
{
    return (short_name && strcmp(arg, short_name) == 0) || (long_name && strcmp(arg, long_name) == 0);
}

bool cli_opt(cli_args *a, const char *arg, const char *short_name, const char *long_name)
{
    size_t n = long_name ? strlen(long_name) : 0;
    if (long_name && strncmp(arg, long_name, n) == 0 && arg[n] == '=') {
        a->value = arg + n + 1;
        return true;
    }
    if (!cli_flag(a, arg, short_name, long_name))
        return false;
    if (a->i >= a->argc) {
        fprintf(stderr, "%s: %s needs a value (see --help)\n", a->cmd, arg);
        a->error = true;
        a->value = "";
        return true;
    }
    a->value = a->argv[a->i++];
    return true;
}

int cli_int(cli_args *a, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(a->value, &end, 10);
    if (errno || end == a->value || *end || v < min || v > max) {
        fprintf(stderr, "%s: expected an integer in [%ld, %ld], got '%s'\n", a->cmd, min, max, a->value);
        a->error = true;
        return (int)min;
    }
    return (int)v;
}

float cli_float(cli_args *a, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(a->value, &end);
    if (errno || end == a->value || *end || !(v >= min && v <= max)) {
        fprintf(stderr, "%s: expected a number in [%g, %g], got '%s'\n", a->cmd, min, max, a->value);
        a->error = true;
        return (float)min;
    }
    return (float)v;
}

int cli_unknown(cli_args *a, const char *arg)
{
    fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", a->cmd, arg, a->cmd);
    return 2;
}
