/* Runs a command on cores that were just busy: every core spins for SECONDS, then this
 * process becomes COMMAND (exec, so the command's own clock is not disturbed).
 *
 * Why: on a VM whose vCPUs were idle, the first decode step of a fresh two-thread process
 * often stalls for milliseconds (`bench_generate --first-step`, stories260K, 32 streams: 9
 * of 10 over 1 ms, up to 8.4 ms, against 0.19 ms for a later step; 0 of 10 after this
 * warm-up), while an in-process benchmark's later repetitions run on warm cores.
 * bench/generate.sh starts every timed process (align, run.c) through this so both sides
 * are measured in the same state.
 *
 * usage: bench_warm SECONDS COMMAND [ARGS...]        (SECONDS 0: exec at once) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "align/core.h"

int main(int argc, char **argv)
{
    char *end = NULL;
    double seconds = argc >= 3 ? strtod(argv[1], &end) : -1;
    if (argc < 3 || !end || *end || seconds < 0 || seconds > 10) {
        fprintf(stderr, "usage: bench_warm SECONDS COMMAND [ARGS...]   (0 <= SECONDS <= 10)\n");
        return 2;
    }
    const double until = al_now() + seconds;
#pragma omp parallel num_threads(omp_get_num_procs())
    {
        volatile unsigned long spins = 0;
        while (al_now() < until)
            spins++;
    }
    execvp(argv[2], argv + 2);
    fprintf(stderr, "bench_warm: cannot run %s\n", argv[2]);
    return 127;
}
