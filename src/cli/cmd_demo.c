/* align demo: the built-in end-to-end alignment run (docs/demo.md).  The pipeline itself
 * is the library's (align/pipeline.h); this file parses the flags, sets up the threads,
 * runs it with stdout as its log and prints the report. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "align/pipeline.h"
#include "args.h"
#include "commands.h"

static const char *usage_text =
    "usage: align demo [--out DIR] [--quick] [--seed S] [--threads N] [--from-scratch]\n"
    "\n"
    "Aligns a customer-support assistant end to end, from nothing but this program:\n"
    "generates its world (corpus, demonstrations, preference pairs, held-out prompts),\n"
    "trains a tokenizer, pretrains a base model, evaluates it, fine-tunes it (SFT), trains\n"
    "a reward model, runs DPO, evaluates the aligned model, builds a guard (harm classifier\n"
    "and policy) in front of it and evaluates again.  Prints a before/after table with each\n"
    "acceptance target marked PASS or FAIL, and writes DIR/summary.json (docs/demo.md).\n"
    "\n"
    "Each stage records itself in DIR/stages/NAME.json when it finishes; running the same\n"
    "command again skips the finished stages, and a trainer stopped midway resumes from its\n"
    "last checkpoint.  The full demo takes under 10 minutes on 2 cores; --quick under 2.\n"
    "\n"
    "  -o, --out DIR        run directory (default ./align-demo)\n"
    "      --quick          small world, small model, few steps: checks the pipeline, not\n"
    "                       the alignment (for CI)\n"
    "  -s, --seed S         seed of the world and every trainer (default 1)\n"
    "  -t, --threads N      OpenMP threads (default 2)\n"
    "      --from-scratch   delete DIR's previous stages and outputs first\n"
    "  -h, --help           this text\n"
    "\n"
    "example:\n"
    "  align demo                      # the full run in ./align-demo\n"
    "  align demo --quick --out /tmp/demo-ci\n";

/* OpenMP reads its environment once, when the program starts: to use N threads that
 * sleep when idle (spinning threads starve each other on a busy 2-core machine), the
 * demo sets the environment and starts itself again.  A user's own settings win. */
static void reexec_for_threads(int threads, int argc, char **argv)
{
    char n[16];
    snprintf(n, sizeof n, "%d", threads);
    const char *cur = getenv("OMP_NUM_THREADS");
    if (cur && !strcmp(cur, n) && getenv("OMP_WAIT_POLICY"))
        return;
    if (getenv("ALIGN_DEMO_REEXEC")) { /* once only, whatever happened */
        omp_set_num_threads(threads);
        return;
    }
    setenv("OMP_NUM_THREADS", n, 1);
    setenv("OMP_WAIT_POLICY", "passive", 0);
    setenv("ALIGN_DEMO_REEXEC", "1", 1);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (args) {
        args[0] = "align";
        for (int i = 0; i < argc; i++)
            args[i + 1] = argv[i];
        fflush(stdout);
        execv("/proc/self/exe", args);
        free(args); /* exec failed: carry on in this process */
    }
    omp_set_num_threads(threads);
}

int cmd_demo(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align demo", argc, argv);
    const char *out = "align-demo";
    const al_pipeline_preset *preset = &al_pipeline_preset_full;
    uint64_t seed = 1;
    int threads = 2;
    bool scratch = false;
    const char *arg;
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-o", "--out")) {
            out = a.value;
        } else if (cli_flag(&a, arg, NULL, "--quick")) {
            preset = &al_pipeline_preset_quick;
        } else if (cli_opt(&a, arg, "-s", "--seed")) {
            seed = (uint64_t)cli_int(&a, 0, 0x7fffffff);
        } else if (cli_opt(&a, arg, "-t", "--threads")) {
            threads = cli_int(&a, 1, 256);
        } else if (cli_flag(&a, arg, NULL, "--from-scratch")) {
            scratch = true;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    reexec_for_threads(threads, argc, argv);
    /* the trainers' progress bars go to stderr: keep stdout's lines in step with them */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (scratch && al_pipeline_clear(out)) {
        fprintf(stderr, "align demo: %s\n", al_errmsg());
        return 1;
    }
    al_pipeline p;
    if (al_pipeline_init(&p, out, preset)) {
        fprintf(stderr, "align demo: %s\n", al_errmsg());
        return 1;
    }
    p.seed = seed;
    p.threads = threads;
    p.log = stdout;
    double t0 = al_now();
    int rc = al_pipeline_run(&p);
    /* the exit status says whether every stage ran; missed targets are bench/demo.sh's */
    rc = rc ? rc : al_pipeline_report(&p, al_now() - t0, stdout, NULL) < 0 ? -1 : 0;
    if (rc)
        fprintf(stderr, "align demo: %s\n", al_errmsg());
    al_pipeline_free(&p);
    return rc ? 1 : 0;
}
