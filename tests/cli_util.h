/* Running the align binary from a test. */
#ifndef ALIGN_TESTS_CLI_UTIL_H
#define ALIGN_TESTS_CLI_UTIL_H

#include <sys/wait.h>

#include "test.h"

typedef struct run_result {
    int code;
    al_buf out, err;
} run_result;

/* Runs `align ARGS` through the shell, capturing stdout and stderr. */
static run_result run_align(const char *args)
{
    run_result r = {0};
    char out_path[256], err_path[256], cmd[8192];
    snprintf(out_path, sizeof out_path, "/tmp/align-cli-%d.out", (int)getpid());
    snprintf(err_path, sizeof err_path, "/tmp/align-cli-%d.err", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s </dev/null", ALIGN_BINARY, args, out_path, err_path);
    int st = system(cmd);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    al_read_file(out_path, &r.out);
    al_read_file(err_path, &r.err);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static void free_result(run_result *r)
{
    al_buf_free(&r->out);
    al_buf_free(&r->err);
}

#endif
