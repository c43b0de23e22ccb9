/* A minimal test harness: CHECK records a failure and goes on; each test binary
 * prints "N passed, N failed" and exits non-zero on any failure. */
#ifndef ALIGN_TEST_H
#define ALIGN_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "align/core.h"

static int test_passed, test_failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            test_passed++;                                                             \
        } else {                                                                       \
            test_failed++;                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define CHECKF(cond, ...)                                                              \
    do {                                                                               \
        if (cond) {                                                                    \
            test_passed++;                                                             \
        } else {                                                                       \
            test_failed++;                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

/* Fails the check with al_errmsg() when an align call returns non-zero. */
#define CHECK_OK(call)                                                                 \
    do {                                                                               \
        if ((call) == 0) {                                                             \
            test_passed++;                                                             \
        } else {                                                                       \
            test_failed++;                                                             \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,       \
                    al_errmsg());                                                      \
        }                                                                              \
    } while (0)

static inline int test_report(void)
{
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

/* Path of a file under ../shared; exits with a clear message if it is missing. */
static inline const char *shared_path(const char *rel)
{
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 1024, "%s/%s", ALIGN_SHARED_DIR, rel);
    FILE *f = fopen(p, "rb");
    if (!f) {
        fprintf(stderr, "missing shared data: %s (expected ../shared beside the checkout; see ../shared/README.md)\n", p);
        exit(2);
    }
    fclose(f);
    return p;
}

/* Reads a whole binary file of floats; returns the count. */
static inline float *read_floats(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *v = malloc((size_t)sz);
    if (fread(v, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "short read %s\n", path);
        exit(2);
    }
    fclose(f);
    *n = (size_t)sz / sizeof(float);
    return v;
}

/* A scratch directory under the build tree, removed by the caller if wanted. */
static inline const char *test_tmpdir(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "/tmp/align-test-%s-%d", name, (int)getpid());
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", buf);
        exit(2);
    }
    return buf;
}

/* Starts `sh -c cmd` in the background, waits until the run's checkpoints/latest names a
 * step >= target (120 s at most), waits a further extra_us, then SIGKILLs it.  Returns
 * true if the process was killed mid-run (false: it had already finished). */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
static inline bool kill_at_checkpoint(const char *cmd, const char *run_dir, int target, long extra_us)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    char latest[1300];
    snprintf(latest, sizeof latest, "%s/checkpoints/latest", run_dir);
    for (double start = al_now(); al_now() - start < 120;) {
        al_buf l = {0};
        int at = 0;
        if (al_read_file(latest, &l) == 0 && l.data && strncmp(l.data, "step_", 5) == 0)
            at = atoi(l.data + 5);
        al_buf_free(&l);
        if (at >= target)
            break;
        struct timespec poll = {0, 1000000};
        nanosleep(&poll, NULL);
    }
    struct timespec ts = {extra_us / 1000000, (extra_us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status);
}

#endif
