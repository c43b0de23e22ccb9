/* The pipeline as a library (align/pipeline.h), on its cheapest stage: al_pipeline_run_stage
 * returns the world stage's figures without printing anything, records the stage and the
 * settings in the run directory, takes the stage as done the second time, and refuses
 * unknown stages, other settings and a report before the evaluations ran.
 * The whole pipeline through the CLI is tests/test_demo.c. */
#include <fcntl.h>
#include <jansson.h>

#include "align/eval.h"
#include "align/pipeline.h"
#include "test.h"

static json_int_t figure(const json_t *fig, const char *key)
{
    return json_integer_value(json_object_get(fig, key));
}

/* A file or a directory DIR/rel. */
static bool exists_in(const char *dir, const char *rel)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return al_file_exists(path) || al_is_dir(path);
}

int main(void)
{
    char dir[] = "/tmp/align_test_pipeline_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    al_pipeline p;
    CHECK_OK(al_pipeline_init(&p, dir, &al_pipeline_preset_quick));
    CHECK(p.log == NULL && p.seed == 1);

    /* with no log, nothing reaches stdout: catch it in a file while the stage runs */
    char captured[1100];
    snprintf(captured, sizeof captured, "%s/stdout.txt", dir);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), fd = open(captured, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    int rc = al_pipeline_run_stage(&p, "world");
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(fd), close(saved);
    CHECKF(rc == 0, "%s", al_errmsg());
    al_buf out = {0};
    CHECK(al_read_file(captured, &out) == 0 && out.len == 0);
    al_buf_free(&out);

    al_world_sizes s;
    al_world_sizes_default(&s, true);
    const json_t *fig = al_pipeline_figures(&p, "world");
    CHECK(fig != NULL);
    CHECK(figure(fig, "corpus_docs") == s.corpus_docs);
    CHECK(figure(fig, "sft_demonstrations") == s.sft);
    CHECK(figure(fig, "preference_pairs") == s.preferences);
    CHECK(figure(fig, "heldout_prompts") == s.heldout_harmful + s.heldout_benign + s.heldout_contrast);
    CHECK(exists_in(dir, "stages/world.json") && exists_in(dir, "settings.json"));
    CHECK(exists_in(dir, "world/corpus.txt") && exists_in(dir, "world/prompts_heldout.jsonl"));
    CHECK(al_pipeline_figures(&p, "pretrain") == NULL);

    /* the report needs the evaluations' figures */
    CHECK(al_pipeline_report(&p, 0, NULL, NULL) == -1 && strstr(al_errmsg(), "eval_base"));
    CHECK(al_pipeline_run_stage(&p, "no_such_stage") == -1 && strstr(al_errmsg(), "no_such_stage"));
    al_pipeline_free(&p);

    /* a fresh process's view: the stage is done, with the same figures */
    CHECK_OK(al_pipeline_init(&p, dir, &al_pipeline_preset_quick));
    CHECK_OK(al_pipeline_run_stage(&p, "world"));
    CHECK(figure(al_pipeline_figures(&p, "world"), "corpus_docs") == s.corpus_docs);
    al_pipeline_free(&p);

    /* other settings on the same directory are refused */
    CHECK_OK(al_pipeline_init(&p, dir, &al_pipeline_preset_quick));
    p.seed = 2;
    CHECK(al_pipeline_run_stage(&p, "world") == -1 && strstr(al_errmsg(), "--from-scratch"));
    al_pipeline_free(&p);

    /* clearing deletes what the pipeline wrote, and only that */
    CHECK_OK(al_pipeline_clear(dir));
    CHECK(!exists_in(dir, "world") && !exists_in(dir, "stages") && !exists_in(dir, "settings.json"));
    CHECK(exists_in(dir, "stdout.txt"));

    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_report();
}
