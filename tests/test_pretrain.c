/* align pretrain end to end: a run is deterministic, a run killed with SIGKILL at a random
 * moment and resumed ends with bit-identical weights and a metrics.jsonl that reads as if
 * it never stopped, and bad settings are refused with a located message. */
#include <sys/stat.h>
#include <time.h>

#include "test.h"

static char base_args[4096];

static void setup_args(const char *dir)
{
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/cfg.json", dir);
    FILE *f = fopen(cfg, "w");
    fputs("{\"model\": {\"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2,\n"
          "  \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"tie_word_embeddings\": true},\n"
          " \"batch_size\": 4, \"seq_len\": 64, \"lr\": 0.004, \"warmup\": 5}\n",
          f);
    fclose(f);
    snprintf(base_args, sizeof base_args,
             "pretrain --data %s --tokenizer %s --config %s --cache-dir %s/cache --steps 40 --save-every 1 "
             "--eval-every 10 --eval-batches 2 --keep 2 --skip-outliers 8 --quiet",
             shared_path("corpora/tinystories/TinyStories-validation-head.txt"),
             shared_path("models/stories260K/tok512.bin"), cfg, dir);
}

static int run(const char *fmt, const char *out)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s %s%s >/dev/null 2>>%s.log", ALIGN_BINARY, base_args, fmt, out, out);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool same_file(const char *a, const char *b)
{
    al_buf x = {0}, y = {0};
    bool same = al_read_file(a, &x) == 0 && al_read_file(b, &y) == 0 && x.len == y.len &&
                memcmp(x.data, y.data, x.len) == 0;
    al_buf_free(&x), al_buf_free(&y);
    return same;
}

/* Each training step appears once, in order, 1..n. */
static int metric_steps_ok(const char *out, int n)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    al_buf b = {0};
    if (al_read_file(path, &b))
        return 0;
    int expect = 1;
    for (char *line = b.data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (strstr(line, "\"loss\"") && strncmp(line, "{\"step\":", 8) == 0) {
            if (atoi(line + 8) != expect) {
                al_buf_free(&b);
                return 0;
            }
            expect++;
        }
        line = nl ? nl + 1 : NULL;
    }
    al_buf_free(&b);
    return expect == n + 1;
}

static double first_last_loss(const char *out, double *last)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    al_buf b = {0};
    al_read_file(path, &b);
    double first = NAN;
    *last = NAN;
    for (char *p = b.data; p && (p = strstr(p, "\"eval_loss\":")); p++) {
        double v = atof(p + 12);
        if (isnan(first))
            first = v;
        *last = v;
    }
    al_buf_free(&b);
    return first;
}

static void test_determinism_and_kill(const char *dir)
{
    char a[1200], b[1200], c[1200], fa[1300], fb[1300], fc[1300];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    CHECK(run("--out ", a) == 0);
    CHECK(run("--out ", b) == 0);
    snprintf(fa, sizeof fa, "%s/final/model.safetensors", a);
    snprintf(fb, sizeof fb, "%s/final/model.safetensors", b);
    CHECKF(same_file(fa, fb), "two runs with the same seed differ");
    CHECK(metric_steps_ok(a, 40));
    double last, first = first_last_loss(a, &last);
    CHECKF(last < first - 0.5, "eval_loss %.3f -> %.3f did not fall", first, last);

    /* kill at a random moment (announced, so a failure can be replayed), then resume */
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    char cmd[8192], logp[1300];
    snprintf(logp, sizeof logp, "%s/c.log", dir);
    snprintf(cmd, sizeof cmd, "exec %s %s --out %s >/dev/null 2>%s", ALIGN_BINARY, base_args, c, logp);
    /* a random step's checkpoint, then a further random 0-30 ms: the kill lands anywhere in
     * a step or a checkpoint write */
    int target = 2 + rand() % 34;
    long us = rand() % 30000;
    bool killed = kill_at_checkpoint(cmd, c, target, us);
    fprintf(stderr, "kill test: seed %u, SIGKILL %ld us after step %d's checkpoint (%s)\n", seed, us, target,
            killed ? "killed mid-run" : "the run had already finished");
    CHECK(killed);
    snprintf(cmd, sizeof cmd, "%s pretrain --resume %s --quiet >/dev/null 2>>%s/resume.log", ALIGN_BINARY, c, dir);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(fc, sizeof fc, "%s/final/model.safetensors", c);
    CHECKF(same_file(fa, fc), "killed and resumed run differs from the uninterrupted one (seed %u)", seed);
    CHECKF(metric_steps_ok(c, 40), "metrics.jsonl of the resumed run has missing or repeated steps");
    /* checkpoints: only the newest two remain, no temporary directories */
    snprintf(cmd, sizeof cmd, "test $(ls %s/checkpoints | grep -c '^step_') -eq 2 && ! ls %s/checkpoints | grep -q tmp",
             c, c);
    CHECK(system(cmd) == 0);
}

static void test_bad_settings(const char *dir)
{
    char cfg[1200], cmd[4096], log[1300];
    snprintf(cfg, sizeof cfg, "%s/bad.json", dir);
    snprintf(log, sizeof log, "%s/bad.log", dir);
    FILE *f = fopen(cfg, "w");
    fputs("{\"model\": {\"hidden_size\": 32,\n \"num_hidden_layers\": }\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s pretrain --data x --tokenizer y --out %s/o --config %s 2>%s", ALIGN_BINARY, dir,
             cfg, log);
    CHECK(WEXITSTATUS(system(cmd)) == 2);
    al_buf b = {0};
    al_read_file(log, &b);
    CHECKF(b.data && strstr(b.data, "bad.json:2:"), "config syntax error not located: %s", b.data ? b.data : "");
    al_buf_free(&b);
    f = fopen(cfg, "w");
    fputs("{\"model\": {\"hidden_size\": 30, \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
          " \"intermediate_size\": 8}, \"batch_sise\": 3}\n",
          f);
    fclose(f);
    CHECK(WEXITSTATUS(system(cmd)) == 2);
    al_read_file(log, &b);
    CHECKF(b.data && strstr(b.data, "unknown setting \"batch_sise\""), "%s", b.data ? b.data : "");
    al_buf_free(&b);
    snprintf(cmd, sizeof cmd, "%s pretrain --out %s/o 2>%s", ALIGN_BINARY, dir, log);
    CHECK(WEXITSTATUS(system(cmd)) == 2);
    snprintf(cmd, sizeof cmd, "%s pretrain --resume %s/nothing-here 2>%s", ALIGN_BINARY, dir, log);
    CHECK(WEXITSTATUS(system(cmd)) == 1);
    /* a saved setting out of its integer range is refused, not cast (undefined in C) */
    snprintf(cfg, sizeof cfg, "%s/huge", dir);
    CHECK(mkdir(cfg, 0755) == 0);
    snprintf(cfg, sizeof cfg, "%s/huge/train_args.json", dir);
    f = fopen(cfg, "w");
    fputs("{\"data\": \"x\", \"tokenizer\": \"y\", \"steps\": 1e300}\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s pretrain --resume %s/huge 2>%s", ALIGN_BINARY, dir, log);
    CHECK(WEXITSTATUS(system(cmd)) == 1);
    al_read_file(log, &b);
    CHECKF(b.data && strstr(b.data, "\"steps\": expected an integer"), "%s", b.data ? b.data : "");
    al_buf_free(&b);
}

/* --init continues from real weights: the pretrained stories260K starts near its known
 * validation loss (about 1.3 nats), far below a fresh model's ln(512) = 6.2. */
static void test_init(const char *dir)
{
    char cmd[8192], out[1200];
    snprintf(out, sizeof out, "%s/init-run", dir);
    snprintf(cmd, sizeof cmd,
             "%s pretrain --data %s --tokenizer %s --init %s --cache-dir %s/cache --out %s --steps 3 "
             "--batch-size 2 --seq-len 128 --lr 1e-4 --warmup 1 --eval-every 3 --eval-batches 2 --quiet 2>%s.log",
             ALIGN_BINARY, shared_path("corpora/tinystories/TinyStories-validation-head.txt"),
             shared_path("models/stories260K/tok512.bin"), shared_path("models/stories260K/stories260K.bin"), dir,
             out, out);
    CHECK(WEXITSTATUS(system(cmd)) == 0);
    double last, first = first_last_loss(out, &last);
    CHECKF(first < 2.0, "eval_loss from the pretrained init is %.3f", first);
}

int main(void)
{
    const char *dir = test_tmpdir("pretrain");
    setup_args(dir);
    test_determinism_and_kill(dir);
    test_bad_settings(dir);
    test_init(dir);
    return test_report();
}
