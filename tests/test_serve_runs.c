/* The dashboard's pipeline data (al_serve_pipeline_json): runs found where they should be
 * and nowhere else, each in its stage by the trainer's settings file, the lines' own tag,
 * its directory names or its figures; curves thinned to at most 400 points with the first
 * and last kept; bad lines counted, NaN skipped, big files read from their tail; the
 * aligned stage's stand-in; and a missing directory an error naming it. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>

#include "align/serve.h"
#include "test.h"

static char root[128];

/* root/rel, good until the fourth call after */
static char *at(const char *rel)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", root, rel);
    return p;
}

/* root/rel with its directories made; text NULL makes an empty file */
static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s", at(rel));
    char *slash = strrchr(path, '/');
    *slash = 0;
    if (al_mkdir_p(path)) {
        fprintf(stderr, "%s\n", al_errmsg());
        exit(2);
    }
    *slash = '/';
    FILE *f = fopen(path, "wb");
    if (!f || (text && fputs(text, f) < 0) || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

/* n lines of {"step": i, key: scale * i} */
static void put_series(const char *rel, const char *key, int n, double scale)
{
    al_buf b = {0};
    for (int i = 1; i <= n; i++)
        al_buf_printf(&b, "{\"step\":%d,\"%s\":%.17g}\n", i, key, scale * i);
    put(rel, b.data ? b.data : "");
    al_buf_free(&b);
}

static void set_mtime(const char *rel, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    if (utimensat(AT_FDCWD, at(rel), ts, 0))
        perror(at(rel));
}

static json_t *pipeline_serving(const char *dir, const char *served)
{
    al_buf b = {0};
    json_t *j = NULL;
    if (al_serve_pipeline_json(dir, served, &b) == 0) {
        json_error_t err;
        j = json_loadb(b.data, b.len, 0, &err);
        CHECKF(j != NULL, "not JSON: %s (line %d col %d)", err.text, err.line, err.column);
    } else
        CHECKF(0, "al_serve_pipeline_json(%s): %s", dir, al_errmsg());
    al_buf_free(&b);
    return j;
}

static json_t *pipeline(const char *dir) { return pipeline_serving(dir, NULL); }

static const char *const stage_ids[] = {"pretrain", "sft", "reward_model", "rl", "aligned"};
static const char *const stage_titles[] = {"Pretrain", "SFT", "Reward model", "PPO / DPO", "Aligned"};

static json_t *stage(json_t *p, const char *id)
{
    json_t *stages = json_object_get(p, "stages");
    for (size_t i = 0; i < json_array_size(stages); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(stages, i), "stage")), id))
            return json_array_get(stages, i);
    return NULL;
}

/* The run named name, and the stage it is in (NULL: nowhere; aligned stand-ins aside). */
static json_t *find(json_t *p, const char *name, const char **in)
{
    *in = NULL;
    for (int s = 0; s < 4; s++) {
        json_t *runs = json_object_get(stage(p, stage_ids[s]), "runs");
        for (size_t i = 0; i < json_array_size(runs); i++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(runs, i), "name")), name)) {
                *in = stage_ids[s];
                return json_array_get(runs, i);
            }
    }
    json_t *runs = json_object_get(stage(p, "aligned"), "runs");
    for (size_t i = 0; i < json_array_size(runs); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(runs, i), "name")), name)) {
            *in = "aligned";
            return json_array_get(runs, i);
        }
    return NULL;
}

static void check_stage(json_t *p, const char *name, const char *want, const char *by)
{
    const char *in;
    json_t *r = find(p, name, &in);
    CHECKF(r && in && !strcmp(in, want), "%s: in %s, expected %s", name, in ? in : "no stage", want);
    const char *got_by = json_string_value(json_object_get(r, "classified_by"));
    CHECKF(r && got_by && !strcmp(got_by, by), "%s: classified by %s, expected %s", name, got_by ? got_by : "?", by);
}

static int run_count(json_t *p)
{
    int n = 0;
    for (int s = 0; s < 5; s++)
        n += (int)json_array_size(json_object_get(stage(p, stage_ids[s]), "runs"));
    return n;
}

/* x (xy 0) or y (xy 1) of a curve's point i */
static double pt(json_t *curve, size_t i, int xy)
{
    return json_number_value(json_array_get(json_array_get(curve, i), xy));
}

/* ---- the tree ---- */

static void make_tree(void)
{
    /* align pretrain's run: settings file beside it; counters and timings are not curves */
    al_buf b = {0};
    for (int i = 1; i <= 1000; i++) {
        al_buf_printf(&b, "{\"step\":%d,\"loss\":%g,\"learning_rate\":0.001,\"tokens\":%d,\"epoch\":%g,"
                          "\"time/step\":0.1,\"skipped\":false}\n",
                      i, 10 - i * 0.005, 512 * i, i / 100.0);
        if (i % 50 == 0)
            al_buf_printf(&b, "{\"step\":%d,\"eval_loss\":%g}\n", i, 9 - i * 0.005);
    }
    put("base/metrics.jsonl", b.data);
    al_buf_free(&b);
    put("base/train_args.json", "{\"data\": \"corpus.txt\"}");
    put("base/notes.txt", "not a run\n");

    /* no settings file: the name decides; bad lines counted, NaN skipped, an unfinished
     * last line ignored */
    put("sft/lora/metrics.jsonl", "{\"step\":1,\"loss\":3.5,\"lr\":0.25}\n"
                                  "this is not JSON\n"
                                  "\n"
                                  "[1, 2]\n"
                                  "{\"step\":2,\"loss\":NaN,\"lr\":0.5,\"note\":\"NaN Infinity\"}\n"
                                  "{\"step\":3,\"loss\":-Infinity,\"lr\":Infinity}\n"
                                  "{\"step\":4,\"loss\":2.5,\"lr\":0.75}\n"
                                  "{\"step\":5,\"lo");
    put("reward_model/metrics.jsonl", "{\"step\":1,\"loss\":0.69,\"accuracy\":0.5,\"margin\":0.1}\n");

    /* the trainers' settings files decide, whatever the name */
    put("prefs/metrics.jsonl", "{\"step\":1,\"loss\":0.6,\"accuracy\":0.7,\"margin\":0.3}\n");
    put("prefs/pref_args.json", "{\"trainer\": 2, \"loss\": \"sigmoid\"}");
    put("dpo/lora/metrics.jsonl", "{\"step\":1,\"loss\":0.69,\"rewards/chosen\":0.1,\"rewards/margins\":0.05}\n");
    put("dpo/lora/pref_args.json", "{\"trainer\": 0, \"loss\": \"sigmoid\"}");
    put("online/metrics.jsonl", "{\"step\":1,\"reward\":0.2,\"kl\":0.01,\"time/generation\":3}\n"
                                "{\"step\":2,\"reward\":0.4,\"kl\":0.02,\"time/generation\":3}\n");
    put("online/rl_args.json", "{\"algo\": \"grpo\"}");
    put("sft-named/metrics.jsonl", "{\"step\":1,\"loss\":5}\n");
    put("sft-named/train_args.json", "{}");

    /* a tag in the lines beats the settings file and the name */
    put("sft-tagged/metrics.jsonl", "{\"step\":1,\"trainer\":\"ppo\",\"loss\":1}\n");
    put("sft-tagged/sft_args.json", "{}");

    /* names: self-rewarding is RL, not a reward model */
    put("self-reward-1/metrics.jsonl",
        "{\"iteration\":1,\"reward_mean\":0.1,\"judge_agreement\":0.5,\"model\":\"iter1/dpo/final\"}\n"
        "{\"iteration\":2,\"reward_mean\":0.3,\"judge_agreement\":0.6,\"model\":\"iter2/dpo/final\"}\n");

    /* figures alone */
    put("exp1/metrics.jsonl", "{\"step\":1,\"eval_accuracy\":0.6,\"eval_margin\":0.2}\n");
    put("exp2/metrics.jsonl", "{\"step\":1,\"loss\":0.6,\"logps/chosen\":-10,\"logps/rejected\":-12}\n");
    put("exp3/metrics.jsonl", "{\"step\":1,\"loss\":2}\n");
    put("exp4/metrics.jsonl", NULL); /* empty */
    put("ordered/metrics.jsonl", "{\"step\":0,\"eval_loss\":3}\n{\"step\":1,\"grad_norm\":1,\"loss\":2}\n");

    /* four levels down is a run; five is too deep */
    put("deep/a/b/c/metrics.jsonl", "{\"step\":7,\"loss\":1}\n");
    put("deep/a/b/c/e/metrics.jsonl", "{\"step\":7,\"loss\":1}\n");

    /* not runs: other names, hidden and model directories */
    put("other/metrics.json", "{\"step\":1,\"loss\":1}\n");
    put("other/metrics.jsonl.bak", "{\"step\":1,\"loss\":1}\n");
    put(".hidden/metrics.jsonl", "{\"step\":1,\"loss\":1}\n");
    put("dpo/lora/final/metrics.jsonl", "{\"step\":1,\"loss\":1}\n");
    put("dpo/lora/checkpoints/step_5/metrics.jsonl", "{\"step\":1,\"loss\":1}\n");

    /* curve lengths around the thinning's edges */
    static const int lengths[] = {1, 2, 399, 400, 401, 799, 800, 801, 802, 1601, 100000};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "len/n%d/metrics.jsonl", lengths[i]);
        put_series(rel, "loss", lengths[i], 0.5);
    }

    /* more keys than the curve cap */
    al_buf w = {0};
    al_buf_printf(&w, "{\"step\":1");
    for (int k = 0; k < 100; k++)
        al_buf_printf(&w, ",\"k%03d\":%d", k, k);
    al_buf_printf(&w, "}\n");
    put("wide/metrics.jsonl", w.data);
    al_buf_free(&w);

    /* a name JSON must escape */
    put("odd \"quoted\"\tname/metrics.jsonl", "{\"step\":1,\"loss\":1}\n");

    /* symlinks: a loop back to the root, and a second name for a run already found */
    if (symlink("../..", at("deep/a/loop")))
        perror("symlink");
    if (symlink(at("reward_model"), at("alias")))
        perror("symlink");

    /* the RL runs' ages: online is the latest */
    set_mtime("dpo/lora/metrics.jsonl", 1700000000);
    set_mtime("online/metrics.jsonl", 1700000500);
    set_mtime("sft-tagged/metrics.jsonl", 1700000100);
    set_mtime("self-reward-1/metrics.jsonl", 1700000200);
    set_mtime("exp2/metrics.jsonl", 1700000300);
}

/* ---- checks ---- */

static void check_shape(json_t *p)
{
    CHECK(json_is_string(json_object_get(p, "dir")) && !strcmp(json_string_value(json_object_get(p, "dir")), root));
    json_t *stages = json_object_get(p, "stages");
    CHECK(json_array_size(stages) == 5);
    for (size_t s = 0; s < 5 && s < json_array_size(stages); s++) {
        json_t *st = json_array_get(stages, s);
        CHECK(!strcmp(json_string_value(json_object_get(st, "stage")), stage_ids[s]));
        CHECK(!strcmp(json_string_value(json_object_get(st, "title")), stage_titles[s]));
        json_t *runs = json_object_get(st, "runs");
        CHECK(json_is_array(runs));
        for (size_t i = 1; i < json_array_size(runs); i++) /* sorted by name */
            CHECK(strcmp(json_string_value(json_object_get(json_array_get(runs, i - 1), "name")),
                         json_string_value(json_object_get(json_array_get(runs, i), "name"))) < 0);
        for (size_t i = 0; i < json_array_size(runs); i++) {
            json_t *r = json_array_get(runs, i);
            CHECK(json_is_string(json_object_get(r, "path")) && json_is_number(json_object_get(r, "steps")));
            CHECK(json_is_object(json_object_get(r, "last")) && json_is_object(json_object_get(r, "curves")));
            CHECK(json_is_integer(json_object_get(r, "skipped_lines")));
        }
    }
    CHECK(json_object_get(p, "truncated") == NULL);
}

static void check_stages(json_t *p)
{
    check_stage(p, "base", "pretrain", "trainer");
    check_stage(p, "sft/lora", "sft", "name");
    check_stage(p, "reward_model", "reward_model", "name");
    check_stage(p, "prefs", "reward_model", "trainer");
    check_stage(p, "dpo/lora", "rl", "trainer");
    check_stage(p, "online", "rl", "trainer");
    check_stage(p, "sft-named", "pretrain", "trainer");
    check_stage(p, "sft-tagged", "rl", "metrics");
    check_stage(p, "self-reward-1", "rl", "name");
    check_stage(p, "exp1", "reward_model", "figures");
    check_stage(p, "exp2", "rl", "figures");
    check_stage(p, "exp3", "sft", "figures");
    check_stage(p, "exp4", "sft", "default");
    check_stage(p, "deep/a/b/c", "sft", "figures");
    const char *in;
    static const char *const absent[] = {"deep/a/b/c/e", "other", ".hidden", "dpo/lora/final",
                                         "dpo/lora/checkpoints/step_5", "alias", "deep/a/loop/base"};
    for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
        CHECKF(!find(p, absent[i], &in), "%s should not be a run", absent[i]);
    /* 14 above, ordered, 11 lengths, wide, the odd name, the aligned stand-in */
    CHECKF(run_count(p) == 14 + 1 + 11 + 1 + 1 + 1, "%d runs (aligned stand-in included)", run_count(p));
    json_t *odd = find(p, "odd \"quoted\"\tname", &in);
    CHECK(odd && !strcmp(json_string_value(json_object_get(odd, "path")), "odd \"quoted\"\tname"));
}

static void check_curves(json_t *p)
{
    const char *in;
    json_t *base = find(p, "base", &in), *curves = json_object_get(base, "curves");
    CHECK(json_integer_value(json_object_get(base, "steps")) == 1000);
    CHECK(json_integer_value(json_object_get(base, "skipped_lines")) == 0);
    json_t *loss = json_object_get(curves, "loss"), *eval = json_object_get(curves, "eval_loss");
    CHECK(json_array_size(loss) == 400);
    CHECK(pt(loss, 0, 0) == 1 && fabs(pt(loss, 0, 1) - 9.995) < 1e-9);
    CHECK(pt(loss, 399, 0) == 1000 && fabs(pt(loss, 399, 1) - 5) < 1e-9);
    CHECK(json_array_size(eval) == 20 && pt(eval, 0, 0) == 50 && pt(eval, 19, 0) == 1000);
    CHECK(fabs(pt(eval, 19, 1) - 4) < 1e-9);
    CHECK(json_object_get(curves, "tokens") && json_object_get(curves, "learning_rate"));
    CHECK(!json_object_get(curves, "epoch") && !json_object_get(curves, "time/step") &&
          !json_object_get(curves, "step") && !json_object_get(curves, "skipped"));
    json_t *last = json_object_get(base, "last");
    CHECK(fabs(json_number_value(json_object_get(last, "loss")) - 5) < 1e-9);
    CHECK(fabs(json_number_value(json_object_get(last, "eval_loss")) - 4) < 1e-9);
    CHECK(json_number_value(json_object_get(last, "tokens")) == 512000);

    /* bad lines, NaN and infinities */
    json_t *sft = find(p, "sft/lora", &in);
    curves = json_object_get(sft, "curves");
    CHECKF(json_integer_value(json_object_get(sft, "skipped_lines")) == 2, "skipped %lld",
           (long long)json_integer_value(json_object_get(sft, "skipped_lines")));
    loss = json_object_get(curves, "loss");
    json_t *lr = json_object_get(curves, "lr");
    CHECK(json_array_size(loss) == 2 && pt(loss, 0, 1) == 3.5 && pt(loss, 1, 0) == 4 && pt(loss, 1, 1) == 2.5);
    CHECK(json_array_size(lr) == 3 && pt(lr, 1, 0) == 2 && pt(lr, 1, 1) == 0.5 && pt(lr, 2, 0) == 4);
    CHECK(json_integer_value(json_object_get(sft, "steps")) == 4);

    /* self-rewarding's iterations are its x axis, not a curve */
    json_t *self = find(p, "self-reward-1", &in);
    curves = json_object_get(self, "curves");
    CHECK(json_array_size(json_object_get(curves, "reward_mean")) == 2 && !json_object_get(curves, "iteration"));
    CHECK(pt(json_object_get(curves, "reward_mean"), 1, 0) == 2);

    json_t *online = find(p, "online", &in);
    CHECK(!json_object_get(json_object_get(online, "curves"), "time/generation"));
    CHECK(json_integer_value(json_object_get(find(p, "deep/a/b/c", &in), "steps")) == 7);
    json_t *empty = find(p, "exp4", &in);
    CHECK(empty && json_integer_value(json_object_get(empty, "steps")) == 0 &&
          json_object_size(json_object_get(empty, "curves")) == 0);

    /* loss and eval_loss lead, whatever the file's order */
    static const char *const order[] = {"loss", "eval_loss", "grad_norm"};
    json_t *ordered = find(p, "ordered", &in);
    for (int k = 0; k < 2; k++) {
        void *it = json_object_iter(json_object_get(ordered, k ? "curves" : "last"));
        for (int i = 0; i < 3; i++, it = json_object_iter_next(json_object_get(ordered, k ? "curves" : "last"), it))
            CHECK(it && !strcmp(json_object_iter_key(it), order[i]));
    }

    json_t *wide = find(p, "wide", &in), *wide_curves = json_object_get(wide, "curves");
    CHECK(json_object_size(wide_curves) == 64);
    CHECK(json_is_true(json_object_get(wide, "curves_truncated")));
    CHECK(json_object_get(wide_curves, "k063") && !json_object_get(wide_curves, "k064"));
}

/* min(n, 400) points, first and last kept, x increasing, every y its x's, gaps even */
static void check_thinning(json_t *p)
{
    static const int lengths[] = {1, 2, 399, 400, 401, 799, 800, 801, 802, 1601, 100000};
    for (size_t k = 0; k < sizeof lengths / sizeof *lengths; k++) {
        const int n = lengths[k];
        char name[32];
        snprintf(name, sizeof name, "len/n%d", n);
        const char *in;
        json_t *c = json_object_get(json_object_get(find(p, name, &in), "curves"), "loss");
        size_t m = json_array_size(c);
        CHECKF(m == (size_t)(n < 400 ? n : 400), "%s: %zu points", name, m);
        if (!m)
            continue;
        CHECKF(pt(c, 0, 0) == 1 && pt(c, m - 1, 0) == n, "%s: from %g to %g", name, pt(c, 0, 0), pt(c, m - 1, 0));
        double max_gap = 0;
        bool ok = true;
        for (size_t i = 0; i < m; i++) {
            ok &= pt(c, i, 1) == 0.5 * pt(c, i, 0);
            if (i) {
                ok &= pt(c, i, 0) > pt(c, i - 1, 0);
                max_gap = fmax(max_gap, pt(c, i, 0) - pt(c, i - 1, 0));
            }
        }
        CHECKF(ok, "%s: points out of order or wrong", name);
        double even = m > 1 ? (n - 1.0) / (m - 1.0) : 0;
        CHECKF(max_gap <= 2 * even + 1, "%s: a gap of %g where %g is even", name, max_gap, even);
        CHECK(json_number_value(json_object_get(json_object_get(find(p, name, &in), "last"), "loss")) == 0.5 * n);
    }
}

static void check_aligned(void)
{
    json_t *p = pipeline(root);
    json_t *al = stage(p, "aligned"), *runs = json_object_get(al, "runs");
    CHECK(json_is_string(json_object_get(al, "from")) && !strcmp(json_string_value(json_object_get(al, "from")), "rl"));
    CHECK(json_array_size(runs) == 1 &&
          !strcmp(json_string_value(json_object_get(json_array_get(runs, 0), "name")), "online"));
    const char *in;
    CHECK(find(p, "online", &in) && !strcmp(in, "rl")); /* still in its own stage */
    json_decref(p);

    /* the run that made the served model is the aligned one: the run holding it (the
     * deepest, dpo/lora/final not being a run of its own), or the latest run beside it
     * (a LoRA run in R/lora merged into R/final) */
    put("sft/final/model.bin", "x");
    put("exp2/model.bin", "x");
    const char *served[][2] = {{"sft/final", "sft/lora"},
                               {"exp2/model.bin", "exp2"},
                               {"dpo/lora/final", "dpo/lora"},
                               {"online", "online"}};
    for (size_t k = 0; k < sizeof served / sizeof served[0]; k++) {
        p = pipeline_serving(root, at(served[k][0]));
        al = stage(p, "aligned");
        runs = json_object_get(al, "runs");
        const char *from = json_string_value(json_object_get(al, "from"));
        CHECKF(from && !strcmp(from, "served"), "serving %s: from %s", served[k][0], from ? from : "(none)");
        const char *name = json_string_value(json_object_get(json_array_get(runs, 0), "name"));
        CHECKF(json_array_size(runs) == 1 && name && !strcmp(name, served[k][1]), "serving %s: aligned run %s",
               served[k][0], name ? name : "(none)");
        json_decref(p);
    }
    /* a model outside every run, one in the runs directory itself, or one that does not
     * exist: the latest RL run again */
    put("elsewhere/model.bin", "x");
    put("model.bin", "x");
    const char *outside[] = {"elsewhere/model.bin", "model.bin", "no-such-model"};
    for (size_t k = 0; k < 3; k++) {
        p = pipeline_serving(root, at(outside[k]));
        al = stage(p, "aligned");
        const char *from = json_string_value(json_object_get(al, "from"));
        CHECKF(from && !strcmp(from, "rl"), "serving %s: from %s", outside[k], from ? from : "(none)");
        json_decref(p);
    }
    unlink(at("elsewhere/model.bin"));
    unlink(at("model.bin"));
    rmdir(at("elsewhere"));
    unlink(at("sft/final/model.bin"));
    rmdir(at("sft/final"));
    unlink(at("exp2/model.bin"));

    /* a run named aligned is the aligned model, whatever trained it */
    put("aligned/metrics.jsonl", "{\"step\":1,\"loss\":0.5,\"rewards/chosen\":1}\n");
    put("aligned/pref_args.json", "{\"trainer\": 0}");
    put("v2/final-policy/metrics.jsonl", "{\"step\":1,\"loss\":0.5}\n");
    p = pipeline(root);
    al = stage(p, "aligned");
    runs = json_object_get(al, "runs");
    CHECK(!json_object_get(al, "from"));
    CHECK(json_array_size(runs) == 2);
    check_stage(p, "aligned", "aligned", "name");
    check_stage(p, "v2/final-policy", "aligned", "name");
    json_decref(p);
}

/* A demo directory's layout (docs/demo.md, src/pipeline/internal.h) with each trainer's
 * settings file and figures; the cai critic is an SFT run. */
static void check_demo_layout(void)
{
    static const char dpo_line[] = "{\"step\":1,\"loss\":0.6,\"rewards/margins\":0.1}";
    static const struct {
        const char *run, *args, *args_text, *line, *stage;
    } demo[] = {
        {"runs/base", "train_args.json", "{}", "{\"step\":1,\"loss\":6.2,\"eval_loss\":6.1}", "pretrain"},
        {"runs/sft/lora", "sft_args.json", "{}", "{\"step\":1,\"loss\":2.1}", "sft"},
        {"runs/reward_model", "pref_args.json", "{\"trainer\":2}",
         "{\"step\":1,\"loss\":0.6,\"accuracy\":0.7,\"margin\":0.4}", "reward_model"},
        {"runs/dpo/lora", "pref_args.json", "{\"trainer\":0}", dpo_line, "rl"},
        {"runs/rl/lora", "rl_args.json", "{\"algo\":\"grpo\"}", "{\"step\":1,\"reward\":0.3,\"kl\":0.01}", "rl"},
        {"runs/cai/critic/lora", "sft_args.json", "{}", "{\"step\":1,\"loss\":1.5}", "sft"},
        {"runs/cai/lora", "pref_args.json", "{\"trainer\":0}", dpo_line, "rl"},
        {"runs/redteam/lora", "pref_args.json", "{\"trainer\":0}", dpo_line, "rl"},
    };
    const size_t outer = strlen(root); /* root/demo while putting and reading */
    strcat(root, "/demo");
    const int n = sizeof demo / sizeof *demo;
    for (int i = 0; i < n; i++) {
        char path[256], line[256];
        snprintf(path, sizeof path, "%s/metrics.jsonl", demo[i].run);
        snprintf(line, sizeof line, "%s\n", demo[i].line);
        put(path, line);
        set_mtime(path, 1700000000 + i);
        snprintf(path, sizeof path, "%s/%s", demo[i].run, demo[i].args);
        put(path, demo[i].args_text);
    }
    json_t *p = pipeline(root);
    for (int i = 0; i < n; i++)
        check_stage(p, demo[i].run, demo[i].stage, "trainer");
    json_t *al = json_object_get(stage(p, "aligned"), "runs");
    CHECK(json_array_size(al) == 1 &&
          !strcmp(json_string_value(json_object_get(json_array_get(al, 0), "name")), "runs/redteam/lora"));
    json_decref(p);
    root[outer] = 0;
}

/* A file past 64 MiB is read from its tail: the first lines are gone, the rest is there. */
static void check_big_file(void)
{
    put("big/metrics.jsonl", "{\"step\":1,\"loss\":100}\n{\"pad\":\"");
    FILE *f = fopen(at("big/metrics.jsonl"), "ab");
    static char pad[1 << 20];
    memset(pad, 'x', sizeof pad);
    for (int i = 0; f && i < 65; i++)
        fwrite(pad, 1, sizeof pad, f);
    if (f) {
        fputs("\"}\n{\"step\":2,\"loss\":1}\n{\"step\":3,\"loss\":0.5}\n", f);
        fclose(f);
    }
    json_t *p = pipeline(root);
    const char *in;
    json_t *big = find(p, "big", &in), *loss = json_object_get(json_object_get(big, "curves"), "loss");
    CHECK(json_is_true(json_object_get(big, "partial")));
    CHECK(json_integer_value(json_object_get(big, "skipped_lines")) == 0);
    CHECK(json_array_size(loss) == 2 && pt(loss, 0, 0) == 2 && pt(loss, 1, 1) == 0.5);
    CHECK(!json_object_get(json_object_get(big, "curves"), "pad"));
    json_decref(p);
    unlink(at("big/metrics.jsonl"));

    /* the last 64 MiB starting exactly on a line: that line is kept */
    static const char l1[] = "{\"step\":1,\"loss\":9}\n", l2[] = "{\"step\":2,\"loss\":1}\n",
                      l3[] = "{\"step\":3,\"loss\":0.5}\n", pad_open[] = "{\"pad\":\"", pad_close[] = "\"}\n";
    size_t fill = ((size_t)64 << 20) - strlen(l2) - strlen(pad_open) - strlen(pad_close) - strlen(l3);
    put("big/metrics.jsonl", l1);
    f = fopen(at("big/metrics.jsonl"), "ab");
    if (f) {
        fputs(l2, f);
        fputs(pad_open, f);
        for (size_t left = fill; left; left -= left < sizeof pad ? left : sizeof pad)
            fwrite(pad, 1, left < sizeof pad ? left : sizeof pad, f);
        fputs(pad_close, f);
        fputs(l3, f);
        fclose(f);
    }
    p = pipeline(root);
    big = find(p, "big", &in);
    loss = json_object_get(json_object_get(big, "curves"), "loss");
    CHECK(json_is_true(json_object_get(big, "partial")));
    CHECKF(json_array_size(loss) == 2 && pt(loss, 0, 0) == 2 && pt(loss, 1, 0) == 3, "%zu points from %g",
           json_array_size(loss), pt(loss, 0, 0));
    json_decref(p);
    unlink(at("big/metrics.jsonl"));
}

static void check_errors(void)
{
    const char *missing = at("no-such-dir");
    al_buf b = {0};
    CHECK(al_serve_pipeline_json(missing, NULL, &b) == -1);
    CHECKF(strstr(al_errmsg(), missing) != NULL, "message: %s", al_errmsg());
    CHECK(b.len == 0);
    const char *file = at("base/notes.txt");
    CHECK(al_serve_pipeline_json(file, NULL, &b) == -1 && strstr(al_errmsg(), file));
    al_buf_free(&b);

    /* an unreadable metrics.jsonl is a run with an error, not a failed response */
    if (geteuid() != 0) {
        char *path = at("exp3/metrics.jsonl");
        chmod(path, 0);
        json_t *p = pipeline(root);
        const char *in;
        CHECK(json_is_string(json_object_get(find(p, "exp3", &in), "error")));
        json_decref(p);
        chmod(path, 0644);
    }

    /* a directory that is itself a run goes by its own name */
    json_t *p = pipeline(at("online"));
    json_t *runs = json_object_get(stage(p, "rl"), "runs");
    CHECK(json_array_size(runs) == 1);
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(runs, 0), "name")), "online"));
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(runs, 0), "path")), "."));
    json_decref(p);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/align-test-serve-runs-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 2;
    }
    make_tree();
    json_t *p = pipeline(root);
    check_shape(p);
    check_stages(p);
    check_curves(p);
    check_thinning(p);
    json_decref(p);
    check_errors();
    check_big_file();
    check_aligned();
    check_demo_layout();
    if (test_failed == 0) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    }
    return test_report();
}
