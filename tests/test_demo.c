/* align demo --quick end to end: every stage ran and recorded itself, the summary has
 * every figure of every row, a second run skips every stage, and a run directory made
 * with other settings is refused.  (Quality figures belong to bench/demo.sh: --quick is
 * too small to reach them.) */
#include <jansson.h>
#include <sys/wait.h>

#include "test.h"

static const char *const stages[] = {"world",    "tokenizer", "pretrain",   "eval_base", "sft",
                                     "eval_sft", "reward_model", "dpo",     "eval_dpo",  "guard",
                                     "eval_guard", "rl",        "eval_rl",    "cai",       "eval_cai",
                                     "redteam",  "eval_redteam", "rewards",     "serve"};
#define N_STAGES ((int)(sizeof stages / sizeof stages[0]))
static const char *const rows[] = {"base", "sft", "dpo", "guard", "rl", "cai", "redteam"};
static const char *const columns[] = {"harmful_refusal_rate",    "benign_compliance_rate", "contrast_compliance_rate",
                                      "benign_all_blocked_rate", "leak_rate",              "whimsical_rate",
                                      "kl_to_base",              "heldout_perplexity",     "mean_reward",
                                      "harmful_answered_rate",   "benign_all_compliance_rate",
                                      /* the correctness judge (issue 11) */
                                      "benign_solved_rate", "contrast_solved_rate", "benign_all_solved_rate",
                                      "wrong_solution_rate", "other_intent_rate",
                                      /* reward hacking signs (issue 12) */
                                      "length_reward_corr", "repetition_rate",
                                      /* the constitution's rules as the judges count them (issue 14) */
                                      "constitution_breach_rate"};
#define N_TARGETS 21

/* Runs align with args; stdout into out (may be NULL); returns the exit status. */
static int run_align(const char *args, const char *out_path, al_buf *out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s.err </dev/null", ALIGN_BINARY, args, out_path, out_path);
    int st = system(cmd);
    if (out && al_read_file(out_path, out))
        fprintf(stderr, "cannot read %s\n", out_path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void check_stage_files(const char *dir)
{
    for (int i = 0; i < N_STAGES; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/stages/%s.json", dir, stages[i]);
        json_t *rec = json_load_file(path, 0, NULL);
        CHECKF(rec != NULL, "stage file %s", path);
        CHECKF(json_is_number(json_object_get(rec, "seconds")), "%s: seconds", path);
        CHECKF(json_is_object(json_object_get(rec, "figures")), "%s: figures", path);
        json_decref(rec);
    }
}

/* Every model the demo writes is usable alone: its tokenizer and the world's chat
 * template travel with it (tokenizer_config.json), the base model's too. */
static void check_model_dirs(const char *dir)
{
    static const char *const models[] = {"runs/base/final", "runs/sft/final", "runs/dpo/final", "runs/rl/final",
                                         "runs/cai/final", "runs/redteam/final"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s/tokenizer_config.json", dir, models[i]);
        json_t *c = json_load_file(path, 0, NULL);
        CHECKF(c && json_is_object(json_object_get(c, "align_chat_template")), "%s: no saved chat template", path);
        json_decref(c);
        snprintf(path, sizeof path, "%s/%s/tokenizer.json", dir, models[i]);
        CHECKF(al_file_exists(path), "%s missing", path);
    }
}

static void check_summary(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    json_t *s = json_load_file(path, 0, NULL);
    CHECKF(s != NULL, "%s", path);
    const json_t *r = json_object_get(s, "rows");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const json_t *row = json_object_get(r, rows[i]);
        CHECKF(row != NULL, "row %s", rows[i]);
        for (size_t k = 0; k < sizeof columns / sizeof columns[0]; k++) {
            /* a correlation is undefined when every answer has one length (--quick's often do) */
            const json_t *x = json_object_get(row, columns[k]);
            bool ok = json_is_number(x) || (!strcmp(columns[k], "length_reward_corr") && json_is_null(x));
            CHECKF(ok, "row %s: %s is not a number", rows[i], columns[k]);
        }
        CHECKF(json_is_object(json_object_get(row, "eval")), "row %s: eval summary", rows[i]);
    }
    /* the guard row went through the guard: the classifier blocked harmful prompts, and
     * what is blocked counts as refused */
    const json_t *h = json_object_get(json_object_get(json_object_get(json_object_get(r, "guard"), "eval"), "counts"),
                                      "harmful");
    json_int_t n = json_integer_value(json_object_get(h, "n")),
               blocked = json_integer_value(json_object_get(h, "blocked"));
    CHECKF(n > 0 && 2 * blocked >= n, "guard blocked %lld of %lld harmful prompts", (long long)blocked, (long long)n);
    double guard_refused = json_number_value(json_object_get(json_object_get(r, "guard"), "harmful_refusal_rate"));
    CHECK(guard_refused >= (double)blocked / (double)n - 1e-9);
    /* solved can never exceed complied: a refusal or a block solves nothing */
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const json_t *row = json_object_get(r, rows[i]);
        CHECK(json_number_value(json_object_get(row, "benign_all_solved_rate")) <=
              json_number_value(json_object_get(row, "benign_all_compliance_rate")) + 1e-12);
    }
    /* the reward model's held-out accuracy, per pair kind (wrong_intent among them) */
    const json_t *rm = json_object_get(json_object_get(json_object_get(s, "stages"), "reward_model"), "figures");
    CHECK(json_is_number(json_object_get(rm, "heldout_pairs_accuracy")));
    CHECK(json_integer_value(json_object_get(rm, "heldout_pairs")) > 0);
    const json_t *by_kind = json_object_get(rm, "heldout_accuracy_by_kind");
    static const char *const kinds[] = {"wrong_intent", "style", "leak", "over_refusal", "misread",
                                        "harmful_compliance"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        CHECKF(json_is_number(json_object_get(by_kind, kinds[k])), "reward model: no held-out accuracy for %s",
               kinds[k]);
    /* the online-RL stage: where its reward and KL went, its rollouts' speed */
    const json_t *rl = json_object_get(json_object_get(json_object_get(s, "stages"), "rl"), "figures");
    static const char *const rl_figures[] = {"reward_first", "reward_last", "kl_exact_last", "rollout_tokens_per_s"};
    for (size_t k = 0; k < sizeof rl_figures / sizeof rl_figures[0]; k++)
        CHECKF(json_is_number(json_object_get(rl, rl_figures[k])), "rl stage: %s", rl_figures[k]);
    /* the CAI round: the judges' breach shares before and after revising, per rule, the
     * model's labels and its swap consistency; the labels file is the DPO stage's input
     * in TRL's conversational preference form, each with a soft label */
    const json_t *cai = json_object_get(json_object_get(json_object_get(s, "stages"), "cai"), "figures");
    static const char *const cai_figures[] = {"label_mean", "ai_prefers_revision", "judge_swap_consistency"};
    for (size_t k = 0; k < sizeof cai_figures / sizeof cai_figures[0]; k++)
        CHECKF(json_is_number(json_object_get(cai, cai_figures[k])), "cai stage: %s", cai_figures[k]);
    static const char *const sides[] = {"first_answer_breaches", "revision_breaches"};
    static const char *const rules[] = {"any", "internal_details", "actionable", "style", "harm"};
    for (size_t k = 0; k < 2; k++)
        for (size_t q = 0; q < sizeof rules / sizeof rules[0]; q++)
            CHECKF(json_is_number(json_object_get(json_object_get(cai, sides[k]), rules[q])), "cai stage: %s.%s",
                   sides[k], rules[q]);
    json_int_t pairs = json_integer_value(json_object_get(cai, "pairs"));
    CHECK(pairs > 0 && pairs <= json_integer_value(json_object_get(cai, "prompts")));
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t q = 1; q < sizeof rules / sizeof rules[0]; q++)
            CHECKF(json_is_number(json_object_get(json_object_get(json_object_get(r, rows[i]), "constitution_breaches"),
                                                  rules[q])),
                   "row %s: constitution_breaches.%s", rows[i], rules[q]);
    char labels[1200];
    snprintf(labels, sizeof labels, "%s/runs/cai/labels.jsonl", dir);
    al_buf lb = {0};
    CHECK_OK(al_read_file(labels, &lb));
    int lines = 0;
    for (char *line = lb.data ? strtok(lb.data, "\n") : NULL; line; line = strtok(NULL, "\n"), lines++) {
        json_t *o = json_loads(line, 0, NULL);
        double label = json_number_value(json_object_get(o, "label"));
        CHECK(o && json_is_array(json_object_get(o, "prompt")) && json_is_array(json_object_get(o, "chosen")) &&
              json_is_array(json_object_get(o, "rejected")) && label >= 0 && label <= 1);
        json_decref(o);
    }
    CHECK(lines == pairs);
    al_buf_free(&lb);
    /* the red-team round: attack success rates with their intervals on the held-out harmful
     * prompts before, behind the guard and after; the pairs it trained on, attacks and contrast */
    const json_t *rt = json_object_get(json_object_get(json_object_get(s, "stages"), "redteam"), "figures");
    static const char *const rt_runs[] = {"training_prompts", "heldout_dpo", "heldout_dpo_guard", "heldout_round"};
    for (size_t k = 0; k < sizeof rt_runs / sizeof rt_runs[0]; k++) {
        const json_t *run = json_object_get(rt, rt_runs[k]), *ci = json_object_get(run, "asr_ci95");
        double asr = json_number_value(json_object_get(run, "asr"));
        CHECKF(json_integer_value(json_object_get(run, "attempts")) > 0 && asr >= 0 && asr <= 1 &&
                   json_array_size(ci) == 2 && json_number_value(json_array_get(ci, 0)) <= asr &&
                   asr <= json_number_value(json_array_get(ci, 1)),
               "redteam stage: %s", rt_runs[k]);
        CHECKF(json_object_size(json_object_get(run, "by_technique")) == json_array_size(json_object_get(rt, "techniques")),
               "redteam stage: %s by technique", rt_runs[k]);
    }
    json_int_t attack_pairs = json_integer_value(json_object_get(rt, "attack_pairs"));
    CHECK(attack_pairs == json_integer_value(json_object_get(json_object_get(rt, "training_prompts"), "successes")));
    CHECK(json_integer_value(json_object_get(rt, "contrast_pairs")) == attack_pairs);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) { /* the attacks column: three rows have it */
        const bool attacked = !strcmp(rows[i], "dpo") || !strcmp(rows[i], "guard") || !strcmp(rows[i], "redteam");
        CHECKF(json_is_number(json_object_get(json_object_get(r, rows[i]), "attack_success_rate")) == attacked,
               "row %s: attack_success_rate", rows[i]);
    }
    const json_t *acc = json_object_get(s, "acceptance");
    CHECK(json_array_size(acc) == N_TARGETS);
    for (size_t i = 0; i < json_array_size(acc); i++) {
        const json_t *t = json_array_get(acc, i);
        CHECK(json_is_boolean(json_object_get(t, "pass")));
        CHECK(json_is_number(json_object_get(t, "value")));
    }
    const json_t *st = json_object_get(s, "stages");
    for (int i = 0; i < N_STAGES; i++)
        CHECKF(json_is_number(json_object_get(json_object_get(st, stages[i]), "seconds")), "timing of %s", stages[i]);
    CHECK(json_is_number(json_object_get(s, "pipeline_seconds")));
    /* the serve stage: every attack went through the server, none failed */
    const json_t *sv = json_object_get(json_object_get(st, "serve"), "figures");
    const json_t *at = json_object_get(sv, "attacks"), *srv = json_object_get(sv, "server");
    CHECK(json_integer_value(json_object_get(at, "attempts")) > 0);
    CHECK(json_integer_value(json_object_get(srv, "requests")) >= json_integer_value(json_object_get(at, "attempts")));
    CHECK(json_is_integer(json_object_get(srv, "errors")) && json_integer_value(json_object_get(srv, "errors")) == 0);
    CHECK(json_is_number(json_object_get(at, "asr")));
    const char *preset = json_string_value(json_object_get(json_object_get(s, "settings"), "preset"));
    CHECK(preset && !strcmp(preset, "quick"));
    json_decref(s);
}

int main(void)
{
    char dir[] = "/tmp/align_test_demo_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    char args[1024], out[1024];
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    al_buf text = {0};

    snprintf(args, sizeof args, "demo --quick --out %s/run", dir);
    CHECK(run_align(args, out, &text) == 0);
    CHECKF(count(text.data, ": done in") == N_STAGES, "stages run: %d", count(text.data, ": done in"));
    CHECK(count(text.data, "PASS") + count(text.data, "FAIL") == N_TARGETS);
    CHECK(strstr(text.data ? text.data : "", "aligned + guard") != NULL);
    al_buf_free(&text);

    char run[512];
    snprintf(run, sizeof run, "%s/run", dir);
    check_stage_files(run);
    check_summary(run);
    check_model_dirs(run);

    /* a second run finds every stage done and only reports */
    CHECK(run_align(args, out, &text) == 0);
    CHECKF(count(text.data, "done earlier") == N_STAGES, "stages skipped: %d", count(text.data, "done earlier"));
    CHECK(count(text.data, ": done in") == 0);
    CHECK(count(text.data, "PASS") + count(text.data, "FAIL") == N_TARGETS);
    al_buf_free(&text);

    /* other settings on the same directory: refused before anything runs */
    snprintf(args, sizeof args, "demo --quick --seed 2 --out %s/run", dir);
    CHECK(run_align(args, out, NULL) == 1);
    char err_path[1100];
    snprintf(err_path, sizeof err_path, "%s.err", out);
    CHECK(al_read_file(err_path, &text) == 0 && strstr(text.data, "--from-scratch") != NULL);
    al_buf_free(&text);

    snprintf(args, sizeof args, "rm -rf %s", dir);
    if (system(args) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_report();
}
