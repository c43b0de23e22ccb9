/* Reward terms for online RL (include/align/reward.h): every kind on hand-written samples
 * with scores worked out by hand, the weighted sum and per-term scores, unique names,
 * errors that name what is wrong, C plugins (the example, and plugins compiled here to
 * break the ABI), the profanity lexicon from ../shared, and model:DIR against
 * al_reward_score on the same tokens. */
#include <link.h>
#include <sys/stat.h>

#include "align/model.h"
#include "align/reward.h"
#include "align/reward_plugin.h"
#include "align/train.h"
#include "test.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

/* A sample with the given texts and n_completion ids 3, 4, 5, ... (prompt: 1 id). */
static al_reward_sample text_sample(const char *query, const char *completion, int n_completion)
{
    static const int ids[64] = {1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
                                25, 26, 27, 28, 29, 30, 31, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                                19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 3, 4, 5, 6, 7};
    return (al_reward_sample){.prompt = query, .query = query, .completion = completion, .prompt_ids = ids,
                              .completion_ids = ids + 1, .n_prompt = 1, .n_completion = n_completion, .eos = true};
}

static al_rewards *rewards_with(const al_reward_env *env, const char *spec)
{
    al_rewards *r = al_rewards_new(env);
    if (!r || al_rewards_add(r, spec, 1.0)) {
        fprintf(stderr, "%s: %s\n", spec, al_errmsg());
        exit(1);
    }
    return r;
}

/* One term's score of each completion, against the expected values. */
static void expect_scores(const al_reward_env *env, const char *spec, const char *const *completions,
                          const double *want, int n)
{
    al_rewards *r = rewards_with(env, spec);
    al_reward_sample s[16];
    double got[16];
    for (int i = 0; i < n; i++)
        s[i] = text_sample("Can you help me?", completions[i], 4);
    CHECK_OK(al_rewards_score(r, s, n, got, NULL));
    for (int i = 0; i < n; i++)
        CHECKF(NEAR(got[i], want[i]), "%s on \"%s\": %g, expected %g", spec, completions[i], got[i], want[i]);
    al_rewards_free(r);
}

/* al_rewards_add fails and the message holds every piece of want (NULL-terminated). */
static void expect_add_error(const al_reward_env *env, const char *spec, double weight, const char *const *want)
{
    al_rewards *r = al_rewards_new(env);
    int rc = al_rewards_add(r, spec, weight);
    CHECKF(rc == -1, "%s was accepted", spec);
    for (int i = 0; rc && want[i]; i++)
        CHECKF(strstr(al_errmsg(), want[i]) != NULL, "%s: \"%s\" not in: %s", spec, want[i], al_errmsg());
    CHECK(al_rewards_n_terms(r) == 0);
    al_rewards_free(r);
}

#define ERR(env, spec, ...) expect_add_error(env, spec, 1.0, (const char *const[]){__VA_ARGS__, NULL})

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

static void test_patterns(void)
{
    const al_reward_env env = {0};
    const char *c[] = {"Yes, please.", "Please wait.", "I'm sorry.", "caf\xc3", ""};
    /* case-sensitive as Python's re; (?i) turns it off */
    expect_scores(&env, "regex:\\bplease\\b", c, (double[]){1, 0, 0, 0, 0}, 5);
    expect_scores(&env, "regex:(?i)please", c, (double[]){1, 1, 0, 0, 0}, 5);
    expect_scores(&env, "regex_not:sorry", c, (double[]){0, 0, -1, 0, 0}, 5);
    /* '.' is one character; a completion cut inside one (invalid UTF-8) just does not match */
    expect_scores(&env, "regex:^caf.$", (const char *[]){"caf\xc3\xa9", "caf\xc3", "cafe"}, (double[]){1, 0, 1}, 3);
    const char *f[] = {"<answer>42</answer>", "x <answer>42</answer>", "<answer>4\n2</answer>",
                       "<answer>42</answer> and more", "<ANSWER>42</ANSWER>"};
    /* anchored at both ends; '.' crosses lines */
    expect_scores(&env, "format:<answer>.*</answer>", f, (double[]){1, 0, 1, 0, 0}, 5);
    expect_scores(&env, "format:<answer>\\d+</answer>", f, (double[]){1, 0, 0, 0, 0}, 5);
}

static void test_length(void)
{
    al_rewards *r = rewards_with(NULL, "length:10");
    const int n[] = {0, 5, 10, 11, 15, 30};
    const double want[] = {0, 0, 0, -0.1, -0.5, -2};
    al_reward_sample s[6];
    double got[6];
    for (int i = 0; i < 6; i++)
        s[i] = text_sample("q", "some text", n[i]);
    CHECK_OK(al_rewards_score(r, s, 6, got, NULL));
    for (int i = 0; i < 6; i++)
        CHECKF(NEAR(got[i], want[i]), "length:10 of %d tokens: %g, expected %g", n[i], got[i], want[i]);
    al_rewards_free(r);
}

static void test_lexicon(void)
{
    const al_reward_env env = {0};
    /* built-in severities: damn 1, idiot 1.4, moron 1.6; a term found twice counts once;
     * a leetspeak spelling counts; words inside other words do not */
    const char *c[] = {"You are an idiot.", "damn idiot, IDIOT", "Have a nice day.", "you 1d10t", "hellish idiotic",
                       "moron!"};
    expect_scores(&env, "lexicon:builtin", c, (double[]){-1.4, -2.4, 0, -1.4, -1.2, -1.6}, 6);

    /* a two-column file, relative to base_dir; multi-word terms */
    const char *dir = test_tmpdir("rewards-lexicon");
    char path[1200];
    snprintf(path, sizeof path, "%s/words.csv", dir);
    write_text(path, "term,severity\nfoo,2\nbar baz,1.5\nqux,0.5\n");
    al_reward_env in_dir = {.base_dir = dir};
    expect_scores(&in_dir, "lexicon:words.csv", (const char *[]){"foo and bar baz", "bar qux baz", "BAR BAZ qux"},
                  (double[]){-3.5, -0.5, -2.0}, 3);

    /* ../shared's profanity list: shit 1.2, bastard 1.2 (severity_rating column) */
    char csv[1200];
    snprintf(csv, sizeof csv, "%s/data/safety/toxicity_lexicons/profanity_en.csv", ALIGN_SHARED_DIR);
    if (!al_file_exists(csv)) {
        fprintf(stderr, "skipping the profanity_en.csv lexicon: missing %s (see ../shared/README.md)\n", csv);
        return;
    }
    char spec[1300];
    snprintf(spec, sizeof spec, "lexicon:%s", csv);
    expect_scores(&env, spec,
                  (const char *[]){"This is shit, you bastard. Shit!", "Thank you so much, please let me know."},
                  (double[]){-2.4, 0}, 2);
}

static void test_refusal(void)
{
    const al_reward_env env = {0};
    const char *c[] = {"I'm sorry, but I can't help with that.", "Sure: open Settings, then Reset password.",
                       "I must decline.", "Nope, not doing that."};
    expect_scores(&env, "refusal", c, (double[]){1, 0, 1, 0}, 4);

    /* a world's own refusal patterns: the directory or its world.json */
    const char *dir = test_tmpdir("rewards-world");
    char path[1200];
    snprintf(path, sizeof path, "%s/world.json", dir);
    write_text(path, "{\"refusal_patterns\": [\"\\\\bnope\\\\b\"], \"leak_patterns\": [], \"style_patterns\": [],"
                     " \"escalation_patterns\": []}\n");
    char spec[1300];
    snprintf(spec, sizeof spec, "refusal:%s", dir);
    expect_scores(&env, spec, c, (double[]){0, 0, 0, 1}, 4);
    snprintf(spec, sizeof spec, "refusal:%s", path);
    expect_scores(&env, spec, c, (double[]){0, 0, 0, 1}, 4);
}

/* intent:WORLD reads the prompt record's "category": 1 solved, else 0 (another intent's
 * solution too), and 0 for a record without a known category (or no record). */
static void test_intent(void)
{
    const al_reward_env env = {0};
    const char *dir = test_tmpdir("rewards-intent");
    char path[1200], spec[1300];
    snprintf(path, sizeof path, "%s/world.json", dir);
    write_text(path, "{\"refusal_patterns\": [], \"leak_patterns\": [], \"style_patterns\": [],"
                     " \"escalation_patterns\": [], \"intents\": {\"password\": [\"forgot password\", \"\\\\blink\\\\b\"],"
                     " \"refund\": [\"\\\\brefund\\\\b\", \"orders page\"]}}\n");
    snprintf(spec, sizeof spec, "intent:%s", dir);
    al_rewards *r = rewards_with(&env, spec);
    const char *pw = "{\"prompt\": \"I can't log in\", \"category\": \"password\"}";
    const char *harm = "{\"prompt\": \"how do I pick a lock\", \"kind\": \"harmful\", \"category\": \"theft\"}";
    const char *none = "{\"prompt\": \"hello\"}";
    struct {
        const char *record, *completion;
        double want;
    } cases[] = {
        {pw, "Click Forgot password on the sign-in page and follow the link we email you.", 1},
        {pw, "Click Forgot password on the sign-in page.", 0},            /* one key step missing */
        {pw, "Ask for a refund from the orders page.", 0},                /* the refund intent's fix */
        {harm, "Ask for a refund from the orders page.", 0},             /* the world does not know theft */
        {none, "Click Forgot password and follow the link.", 0},         /* no category */
        {NULL, "Click Forgot password and follow the link.", 0},         /* no record */
    };
    const int n = (int)(sizeof cases / sizeof *cases);
    al_reward_sample s[8];
    double got[8];
    for (int i = 0; i < n; i++) {
        s[i] = text_sample("q", cases[i].completion, 4);
        s[i].record = cases[i].record;
    }
    CHECK_OK(al_rewards_score(r, s, n, got, NULL));
    for (int i = 0; i < n; i++)
        CHECKF(NEAR(got[i], cases[i].want), "intent case %d: %g, expected %g", i, got[i], cases[i].want);
    al_rewards_free(r);
    /* a world without intents is refused when the term is added */
    snprintf(path, sizeof path, "%s/plain.json", dir);
    write_text(path, "{\"refusal_patterns\": [], \"leak_patterns\": [], \"style_patterns\": [],"
                     " \"escalation_patterns\": []}\n");
    snprintf(spec, sizeof spec, "intent:%s", path);
    ERR(&env, spec, "defines no intents");
    ERR(&env, "intent", "expected intent:WORLD");
}

static void test_guard(void)
{
    const al_reward_env env = {0};
    /* built-in policy: PII is redacted, a severe term (fucking 2.6/3 >= 0.6) blocks */
    const char *c[] = {"Reset it from the login page.", "Write to bob.smith@example.com for help.",
                       "You are a fucking idiot."};
    expect_scores(&env, "guard", c, (double[]){0, -0.5, -1}, 3);

    const char *dir = test_tmpdir("rewards-guard");
    char path[1200];
    snprintf(path, sizeof path, "%s/policy.yaml", dir);
    write_text(path, "version: 1\ncategories:\n  toxicity:\n    action: escalate\n");
    al_reward_env in_dir = {.base_dir = dir};
    expect_scores(&in_dir, "guard:policy.yaml", c, (double[]){0, -0.5, -0.5}, 3);
}

/* Three terms, two of one kind: names, weights, per-term scores and the weighted sum. */
static void test_sum_and_names(void)
{
    al_rewards *r = al_rewards_new(NULL);
    CHECK_OK(al_rewards_add(r, "regex:please", 1.0));
    CHECK_OK(al_rewards_add(r, "length:4", 0.5));
    CHECK_OK(al_rewards_add(r, "regex:thank", 2.0));
    CHECK_OK(al_rewards_add(r, "regex_not:sorry", 1.5));
    CHECK_OK(al_rewards_add(r, "regex:x", 0.0));
    CHECK(al_rewards_n_terms(r) == 5);
    const char *names[] = {"regex", "length", "regex_2", "regex_not", "regex_3"};
    const double weights[] = {1, 0.5, 2, 1.5, 0};
    for (int k = 0; k < 5; k++) {
        CHECKF(al_rewards_term_name(r, k) && strcmp(al_rewards_term_name(r, k), names[k]) == 0, "term %d: %s", k,
               al_rewards_term_name(r, k));
        CHECK(al_rewards_term_weight(r, k) == weights[k]);
    }
    CHECK(al_rewards_term_name(r, 5) == NULL && al_rewards_term_name(r, -1) == NULL);

    al_reward_sample s[3] = {text_sample("q", "please, thank you", 2), text_sample("q", "sorry, please", 8),
                             text_sample("q", "x", 6)};
    double total[3], per[15];
    CHECK_OK(al_rewards_score(r, s, 3, total, per));
    /* per term, unweighted: please, length:4, thank, not sorry, x */
    const double want_per[15] = {1, 0, 1, 0, 0, /**/ 1, -1, 0, -1, 0, /**/ 0, -0.5, 0, 0, 1};
    for (int i = 0; i < 15; i++)
        CHECKF(NEAR(per[i], want_per[i]), "per_term[%d] = %g, expected %g", i, per[i], want_per[i]);
    /* 1 + 2 = 3; 1 - 0.5 - 1.5 = -1; -0.25 + 0 * 1 */
    const double want[3] = {3, -1, -0.25};
    for (int i = 0; i < 3; i++)
        CHECKF(NEAR(total[i], want[i]), "total[%d] = %g, expected %g", i, total[i], want[i]);
    double again[3];
    CHECK_OK(al_rewards_score(r, s, 3, again, NULL));
    CHECK(memcmp(again, total, sizeof total) == 0);
    CHECK_OK(al_rewards_score(r, s, 0, total, per));
    al_rewards_free(r);

    al_rewards *empty = al_rewards_new(NULL);
    CHECK(al_rewards_score(empty, s, 1, total, NULL) == -1 && strstr(al_errmsg(), "no terms"));
    al_rewards_free(empty);
}

static void test_errors(void)
{
    const al_reward_env env = {0};
    ERR(&env, "bogus:x", "reward \"bogus:x\": unknown kind \"bogus\"", "model, regex");
    ERR(&env, "", "empty spec");
    ERR(&env, "regex:a(b", "reward \"regex:a(b\"", "bad pattern \"a(b\"", "missing closing parenthesis");
    ERR(&env, "format:[z-a]", "bad pattern \"[z-a]\"", "range out of order");
    ERR(&env, "regex", "expected regex:PATTERN");
    ERR(&env, "regex:", "expected regex:PATTERN");
    ERR(&env, "length:0", "expected length:N");
    ERR(&env, "length:12abc", "expected length:N", "\"12abc\"");
    ERR(&env, "lexicon:/nonexistent/words.csv", "reward \"lexicon:/nonexistent/words.csv\"",
        "/nonexistent/words.csv: cannot open");
    ERR(&env, "refusal:/nonexistent/world.json", "/nonexistent/world.json");
    ERR(&env, "guard:/nonexistent/policy.yaml", "/nonexistent/policy.yaml: cannot open");
    ERR(&env, "model:/nonexistent/rm", "reward \"model:/nonexistent/rm\"", "/nonexistent/rm");
    ERR(&env, "plugin:/nonexistent/p.so", "/nonexistent/p.so");
    expect_add_error(&env, "length:5", NAN, (const char *const[]){"weight must be a finite number", NULL});

    const char *dir = test_tmpdir("rewards-errors");
    char path[1200], spec[1300];
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    write_text(path, "term,severity\nfoo,7\n");
    snprintf(spec, sizeof spec, "lexicon:%s", path);
    ERR(&env, spec, "bad.csv:2: expected \"term,severity\"");
}

/* The shared object holding libc: loaded, and certainly not a reward plugin. */
static int find_libc(struct dl_phdr_info *info, size_t size, void *out)
{
    if (info->dlpi_name && strstr(info->dlpi_name, "/libc.so")) {
        snprintf(out, 1024, "%s", info->dlpi_name);
        return 1;
    }
    return 0;
}

static void test_plugin_example(void)
{
    const al_reward_env env = {0};
    char spec[1300];
    const char *c[] = {"Thank you for waiting.", "Could you PLEASE check?", "Done.", "thanks"};
    snprintf(spec, sizeof spec, "plugin:%s", ALIGN_REWARD_PLUGIN);
    expect_scores(&env, spec, c, (double[]){1, 1, 0, 0}, 4);
    al_rewards *r = rewards_with(&env, spec);
    CHECK(strcmp(al_rewards_term_name(r, 0), "plugin") == 0);
    al_rewards_free(r);
    snprintf(spec, sizeof spec, "plugin:%s:0.25", ALIGN_REWARD_PLUGIN);
    expect_scores(&env, spec, c, (double[]){0.25, 0.25, 0, 0}, 4);
    snprintf(spec, sizeof spec, "plugin:%s:lots", ALIGN_REWARD_PLUGIN);
    ERR(&env, spec, "align_reward_init(\"lots\") failed");

    char libc[1024] = "";
    dl_iterate_phdr(find_libc, libc);
    if (libc[0]) {
        snprintf(spec, sizeof spec, "plugin:%s", libc);
        ERR(&env, spec, "does not export align_reward_score");
    } else {
        fprintf(stderr, "skipping the plugin-without-symbol check: libc's path not found\n");
    }
}

/* Plugins compiled here with the C compiler, from one source: each MODE breaks one rule. */
static const char plugin_src[] =
    "#include <math.h>\n"
    "#include <string.h>\n"
    "#include \"align/reward_plugin.h\"\n"
    "#if MODE == 1\n" /* a stale build */
    "ALIGN_REWARD_EXPORT int align_reward_abi_version(void) { return ALIGN_REWARD_PLUGIN_ABI + 1; }\n"
    "#endif\n"
    "ALIGN_REWARD_EXPORT int align_reward_score(void *st, const align_reward_plugin_sample *s, int n, double *out)\n"
    "{\n"
    "    if (MODE == 2) return 7;\n"
    "    for (int i = 0; i < n; i++) {\n" /* MODE 0: every field, read back */
    "        int sum = 0;\n"
    "        for (int j = 0; j < s[i].n_completion; j++) sum += s[i].completion_ids[j];\n"
    "        out[i] = MODE == 3 ? NAN : st == 0 ? s[i].n_prompt + 10.0 * s[i].n_completion + 100.0 * s[i].eos\n"
    "                 + 1000.0 * strlen(s[i].completion) + 1e4 * strlen(s[i].query) + 1e5 * strlen(s[i].prompt)\n"
    "                 + 1e6 * (s[i].prompt_ids[0] + sum) : -1;\n"
    "    }\n"
    "    return 0;\n"
    "}\n";

static bool build_plugin(const char *dir, int mode, char *out, size_t out_len)
{
    snprintf(out, out_len, "%s/mode%d.so", dir, mode);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "${CC:-cc} -std=c17 -Wall -Wextra -Werror -pedantic -shared -fPIC -fvisibility=hidden -DMODE=%d "
             "-I'%s/include' -o '%s' '%s/plugin.c' -lm",
             mode, ALIGN_SOURCE_DIR, out, dir);
    return system(cmd) == 0;
}

static void test_plugin_abi(void)
{
    if (system("command -v \"${CC:-cc}\" >/dev/null 2>&1") != 0) {
        fprintf(stderr, "skipping the compiled plugin checks: no C compiler (cc or $CC)\n");
        return;
    }
    const char *dir = test_tmpdir("rewards-plugin");
    char src[1200], so[4][1200], spec[1300];
    snprintf(src, sizeof src, "%s/plugin.c", dir);
    write_text(src, plugin_src);
    for (int m = 0; m < 4; m++)
        CHECKF(build_plugin(dir, m, so[m], sizeof so[m]), "plugin mode %d did not compile", m);
    const al_reward_env env = {0};

    /* no init, no ABI function: state NULL; the sample's fields arrive intact */
    snprintf(spec, sizeof spec, "plugin:%s", so[0]);
    al_rewards *r = rewards_with(&env, spec);
    al_reward_sample s[2] = {text_sample("ab", "xyz", 2), text_sample("ab", "", 0)};
    s[0].prompt = "<p>ab</p>";
    s[1].eos = false;
    s[1].query = NULL; /* the prompt stands in */
    double got[2];
    CHECK_OK(al_rewards_score(r, s, 2, got, NULL));
    /* ids: prompt {1}, completion {3, 4} */
    CHECKF(NEAR(got[0], 1 + 20 + 100 + 3000 + 2e4 + 9e5 + 1e6 * 8), "fields: %.17g", got[0]);
    CHECKF(NEAR(got[1], 1 + 0 + 0 + 0 + 2e4 + 2e5 + 1e6 * 1), "fields: %.17g", got[1]);
    al_rewards_free(r);

    snprintf(spec, sizeof spec, "plugin:%s", so[1]);
    char want[96];
    snprintf(want, sizeof want, "built for reward plugin ABI %d, this align uses ABI %d", ALIGN_REWARD_PLUGIN_ABI + 1,
             ALIGN_REWARD_PLUGIN_ABI);
    ERR(&env, spec, want, "rebuild");

    for (int m = 2; m <= 3; m++) {
        snprintf(spec, sizeof spec, "plugin:%s", so[m]);
        r = rewards_with(&env, spec);
        CHECK(al_rewards_score(r, s, 2, got, NULL) == -1);
        const char *want = m == 2 ? "align_reward_score returned 7" : "sample 0: the score is not finite";
        CHECKF(strstr(al_errmsg(), want) && strstr(al_errmsg(), spec), "%s", al_errmsg());
        al_rewards_free(r);
    }
}

static al_config tiny_cfg(void)
{
    return (al_config){.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4,
                       .vocab_size = 32, .seq_len = 16, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                       .rope = AL_ROPE_HALF, .tied_embeddings = true, .bos_id = 1, .eos_id = 2};
}

/* model:DIR scores prompt ids then completion ids, as al_reward_score does on the
 * concatenation: batches of env.batch (3 samples in batches of 2: one padded), the
 * sequence longer than env.seq_len keeping its end. */
static void test_model(void)
{
    al_config c = tiny_cfg();
    al_model lm, rm;
    CHECK_OK(al_model_init(&lm, &c));
    al_model_init_weights(&lm, 11);
    CHECK_OK(al_reward_model_from_lm(&rm, &lm, 7));
    for (int i = 0; i < c.dim; i++)
        rm.w.score[i] *= 50; /* rewards of order 1, so a wrong token would show */
    const char *dir = test_tmpdir("rewards-model");
    char rm_dir[1200], lm_dir[1200], spec[1300];
    snprintf(rm_dir, sizeof rm_dir, "%s/rm", dir);
    snprintf(lm_dir, sizeof lm_dir, "%s/lm", dir);
    CHECK_OK(al_model_save_safetensors(&rm, rm_dir));
    CHECK_OK(al_model_save_safetensors(&lm, lm_dir));

    static const int p0[] = {1, 5, 9}, c0[] = {12, 7, 2};
    static const int p1[] = {1, 30, 4, 4, 8, 21, 6, 3}, c1[] = {17, 17, 5, 9, 10, 11, 12, 2}; /* 16 > 12 */
    static const int p2[] = {1}, c2[] = {25};
    al_reward_sample s[3] = {
        {"p", "q", "c", p0, c0, 3, 3, true, NULL}, {"p", "q", "c", p1, c1, 8, 8, true, NULL}, {"p", "q", "c", p2, c2, 1, 1, false, NULL}};
    al_ints seqs[3] = {0};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < s[i].n_prompt; j++)
            al_ints_push(&seqs[i], s[i].prompt_ids[j]);
        for (int j = 0; j < s[i].n_completion; j++)
            al_ints_push(&seqs[i], s[i].completion_ids[j]);
    }
    float want[3];
    CHECK_OK(al_reward_score(&rm, seqs, 3, 2, 12, want));

    al_reward_env env = {.seq_len = 12, .batch = 2, .base_dir = dir};
    al_rewards *r = rewards_with(&env, "model:rm");
    CHECK(strcmp(al_rewards_term_name(r, 0), "model") == 0);
    double got[3];
    CHECK_OK(al_rewards_score(r, s, 3, got, NULL));
    for (int i = 0; i < 3; i++)
        CHECKF(fabs(got[i] - want[i]) < 1e-4 * (1 + fabs(want[i])), "model reward %d: %g, al_reward_score %g", i,
               got[i], want[i]);
    CHECK(fabs(want[0] - want[1]) > 1e-3 && fabs(want[1] - want[2]) > 1e-3); /* the check can tell samples apart */

    /* a token past the vocabulary is an error, not a read outside the embeddings */
    static const int bad[] = {40};
    al_reward_sample oov = {"p", "q", "c", p2, bad, 1, 1, true, NULL};
    CHECK(al_rewards_score(r, &oov, 1, got, NULL) == -1 && strstr(al_errmsg(), "token id 40 is outside"));
    al_rewards_free(r);

    ERR(&env, "model:lm", "reward \"model:lm\"", "without a score head");
    for (int i = 0; i < 3; i++)
        al_ints_free(&seqs[i]);
    al_model_free(&lm);
    al_model_free(&rm);
    snprintf(spec, sizeof spec, "rm -rf '%s'", dir);
    CHECK(system(spec) == 0);
}

int main(void)
{
    test_patterns();
    test_length();
    test_lexicon();
    test_refusal();
    test_intent();
    test_guard();
    test_sum_and_names();
    test_errors();
    test_plugin_example();
    test_plugin_abi();
    test_model();
    return test_report();
}
