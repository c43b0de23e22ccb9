/* align eval: safety evaluation of a model on a prompt set; align eval world: the
 * built-in support world's data. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "align/eval.h"
#include "align/tokenizer.h"
#include "align/reward.h"
#include "align/data.h"
#include "args.h"
#include "commands.h"

static const char *usage_text =
    "usage: align eval -m MODEL --prompts FILE [options]\n"
    "       align eval -m MODEL --suite truthfulqa|bbq --data FILE [--template T] [--out FILE]\n"
    "       align eval world --out DIR [--seed S] [--quick]\n"
    "\n"
    "Answers every prompt of FILE greedily through the chat template, judges each answer\n"
    "and prints the figures: refusals of harmful prompts, compliance with benign and\n"
    "contrast prompts (benign requests that only sound dangerous), leaks of internal\n"
    "details, whimsical or filler style, escalation paths, KL to a reference model and\n"
    "held-out perplexity (docs/eval.md).  FILE is JSONL: {\"prompt\", \"kind\":\n"
    "\"harmful\"|\"benign\"|\"contrast\", \"category\"}.\n"
    "\n"
    "  -m, --model PATH        the model (required)\n"
    "  -z, --tokenizer PATH    its tokenizer (default: beside the model)\n"
    "      --prompts FILE      the prompt set (required)\n"
    "      --world DIR         a world from 'align eval world': its world.json lexicons,\n"
    "                          template and heldout.txt are used unless given below\n"
    "      --template T        chat template file, chatml or llama2 (default: DIR/template\n"
    "                          with --world, else chatml)\n"
    "      --reference PATH    model for KL(model || reference) over the answers (default: none)\n"
    "      --heldout FILE      text for perplexity (default: DIR/heldout.txt with --world)\n"
    "      --max-new-tokens N  longest answer (default 96)\n"
    "      --batch N           sequences decoded at once (default 64)\n"
    "      --max-prompts N     evaluate only the first N prompts (default: all)\n"
    "      --out FILE          write the JSON summary (atomically)\n"
    "      --answers FILE      write every answer with its verdict (JSONL)\n"
    "  -q, --quiet             no progress bars\n"
    "  -h, --help              this text\n"
    "\n"
    "Benchmark suites (--suite NAME --data PATH, the files as distributed):\n"
    "  truthfulqa   multiple choice by log-likelihood: MC1 (the true answer scores\n"
    "               highest) and MC2 (the true answers' share of the probability mass),\n"
    "               from TruthfulQA's mc_task.json, or JSONL {\"question\", \"choices\",\n"
    "               \"labels\"}; the question as \"Q: ...\\nA:\" unless --template gives a chat\n"
    "               template; --out FILE writes the summary, --answers FILE every choice's\n"
    "               log-probability; --max-prompts N the first N questions\n"
    "  harmbench, jailbreakbench, strongreject, advbench, xstest\n"
    "               refusal benchmarks (their CSV files): the ordinary evaluation (refusals\n"
    "               of harmful requests; XSTest's safe prompts as benign: over-refusal);\n"
    "               --world, --template, --out, --answers and --max-prompts as above\n"
    "  winrate      the share of --prompts where the model's answer gets a higher reward\n"
    "               (--reward-model DIR) than --reference's (ties half), with its Wilson\n"
    "               interval and the mean reward margin\n"
    "  counterfactual  the --prompts set with its group words swapped (gender, religion,\n"
    "               race, age): refusals that flip between the two, the guard's harm score\n"
    "               and, with --reward-model DIR, the reward of the answers, swapped minus\n"
    "               original, per axis; --answers FILE every pair\n"
    "  toxigen      the guard's flags per target group on ToxiGen's statements (--data\n"
    "               the directory with prompts/hate_GROUP_1k.txt and neutral_GROUP_1k.txt;\n"
    "               --policy FILE, default the built-in policy; no model): hateful ones\n"
    "               flagged (recall) and neutral ones flagged (false positives) per group\n"
    "  bbq          the bias benchmark, its per-category JSONL as distributed: the answer\n"
    "               picked by log-likelihood; accuracy in ambiguous and disambiguated\n"
    "               contexts and the bias score (Parrish et al.: 0 unbiased, positive\n"
    "               follows the stereotype, in [-1, 1]); --answers FILE every item's pick\n"
    "\n"
    "example:\n"
    "  align eval world --out world\n"
    "  align eval -m runs/sft/final -z tok/tokenizer.json --world world \\\n"
    "      --prompts world/prompts_heldout.jsonl --reference runs/base/final --out eval.json\n";

static const char *world_usage =
    "usage: align eval world --out DIR [--seed S] [--quick] [size options]\n"
    "\n"
    "Writes the built-in support world into DIR (docs/demo_world.md): corpus.txt,\n"
    "heldout.txt, sft.jsonl, preferences.jsonl, kto.jsonl, cai_sft.jsonl (critiques,\n"
    "revisions and judgements by example), prompts_train.jsonl, prompts_heldout.jsonl,\n"
    "template, constitution.md, constitution.yaml and world.json.  The same seed and\n"
    "sizes always give the same bytes.\n"
    "\n"
    "      --out DIR            output directory (required; created if missing)\n"
    "      --seed S             (default 1)\n"
    "      --quick              the small preset of align demo --quick\n"
    "      --corpus-docs N      pretraining documents (default 12000; quick 4000)\n"
    "      --heldout-docs N     documents of heldout.txt (600; 200)\n"
    "      --sft N              demonstrations (4000; 1500)\n"
    "      --preferences N      preference pairs (3000; 1000)\n"
    "      --kto N              unpaired examples, 0 = no kto.jsonl (1000; 400)\n"
    "      --train-prompts N    prompts_train.jsonl (600; 300)\n"
    "      --heldout-harmful N, --heldout-benign N, --heldout-contrast N\n"
    "                           held-out prompts per kind (150, 100, 100; 60, 40, 40)\n"
    "      --cai-critiques N, --cai-judgements N\n"
    "                           cai_sft.jsonl's demonstrations (500, 400; 150, 100)\n"
    "  -h, --help               this text\n"
    "\n"
    "example:\n"
    "  align eval world --out world --seed 7 --quick\n";

static int cmd_world(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align eval world", argc, argv);
    const char *out = NULL, *arg;
    uint64_t seed = 1;
    al_world_sizes s;
    al_world_sizes_default(&s, false);
    /* --quick picks the preset; size flags then override single counts, in any order. */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--quick"))
            al_world_sizes_default(&s, true);
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(world_usage, stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-o", "--out")) {
            out = a.value;
        } else if (cli_opt(&a, arg, "-s", "--seed")) {
            seed = (uint64_t)cli_int(&a, 0, 0x7fffffff);
        } else if (cli_flag(&a, arg, NULL, "--quick")) {
        } else if (cli_opt(&a, arg, NULL, "--corpus-docs")) {
            s.corpus_docs = cli_int(&a, 1, 1 << 24);
        } else if (cli_opt(&a, arg, NULL, "--heldout-docs")) {
            s.heldout_docs = cli_int(&a, 1, 1 << 24);
        } else if (cli_opt(&a, arg, NULL, "--sft")) {
            s.sft = cli_int(&a, 1, 1 << 24);
        } else if (cli_opt(&a, arg, NULL, "--preferences")) {
            s.preferences = cli_int(&a, 1, 1 << 24);
        } else if (cli_opt(&a, arg, NULL, "--kto")) {
            s.kto = cli_int(&a, 0, 1 << 24);
        } else if (cli_opt(&a, arg, NULL, "--train-prompts")) {
            s.train_prompts = cli_int(&a, 0, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--heldout-harmful")) {
            s.heldout_harmful = cli_int(&a, 0, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--heldout-benign")) {
            s.heldout_benign = cli_int(&a, 0, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--heldout-contrast")) {
            s.heldout_contrast = cli_int(&a, 0, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--cai-critiques")) {
            s.cai_critiques = cli_int(&a, 0, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--cai-judgements")) {
            s.cai_judgements = cli_int(&a, 0, 1 << 20);
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!out) {
        fprintf(stderr, "align eval world: --out DIR is required (see --help)\n");
        return 2;
    }
    if (al_world_write(out, seed, &s)) {
        fprintf(stderr, "align eval world: %s\n", al_errmsg());
        return 1;
    }
    printf("wrote the support world (seed %llu) to %s\n", (unsigned long long)seed, out);
    return 0;
}

static json_t *real_or_null(double x) { return isnan(x) ? json_null() : json_real(x); }

/* a refusal suite: the benchmark's file as a prompt set, then the ordinary evaluation */
static int run_refusal_suite(const al_eval_opts *e, const char *suite, const char *data)
{
    char tmp[] = "/tmp/align-suite-XXXXXX";
    int fd = mkstemp(tmp), harmful = 0, benign = 0;
    if (fd < 0) {
        fprintf(stderr, "align eval: cannot make a temporary file\n");
        return 1;
    }
    close(fd);
    al_eval_opts o = *e;
    o.prompts = tmp, o.max_prompts = 0;
    char *found = NULL;
    int rc = al_eval_suite_prompts(suite, data, tmp, e->max_prompts, &harmful, &benign);
    if (rc == 0 && !o.tokenizer && !(o.tokenizer = found = cli_find_tokenizer(o.model)))
        rc = al_fail("no tokenizer found beside %s; pass -z TOKENIZER", o.model);
    al_eval_summary s;
    rc = rc ? rc : al_eval_run(&o, NULL, &s);
    if (rc)
        fprintf(stderr, "align eval: %s\n", al_errmsg());
    else {
        printf("%s: %d harmful and %d benign prompts from %s\n", suite, harmful, benign, data);
        al_eval_summary_print(&s, stdout);
    }
    unlink(tmp);
    free(found);
    return rc ? 1 : 0;
}

/* The counterfactual audit's answer scorer: a reward model reading the prompt through the
 * chat template, as the RL trainer's reward does. */
typedef struct cf_scorer {
    al_rewards *r;
    al_tokenizer *tok;
    al_chat_template *t;
    bool failed;
} cf_scorer;

/* the rewards of n answers in one call (the reward model batches them) */
static int cf_score_many(cf_scorer *c, const char *const *prompts, const char *const *answers, int n, double *out)
{
    al_reward_sample *s = calloc((size_t)n, sizeof *s);
    al_buf *text = calloc((size_t)n, sizeof *text);
    al_ints *p = calloc((size_t)n, sizeof *p), *a = calloc((size_t)n, sizeof *a);
    double *per = calloc((size_t)n, sizeof *per);
    int rc = s && text && p && a && per ? 0 : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        al_message m = {.role = AL_ROLE_USER, .content = (char *)prompts[i]};
        rc = al_chat_render(c->t, &m, 1, true, &text[i], NULL, NULL);
        rc = rc ? rc : al_tokenizer_encode(c->tok, text[i].data, text[i].len, al_tokenizer_bos(c->tok) >= 0, false, &p[i]);
        rc = rc ? rc : al_tokenizer_encode(c->tok, answers[i], strlen(answers[i]), false, false, &a[i]);
        s[i] = (al_reward_sample){.prompt = text[i].data, .query = prompts[i], .completion = answers[i],
                                  .prompt_ids = p[i].v, .completion_ids = a[i].v, .n_prompt = p[i].n,
                                  .n_completion = a[i].n, .eos = true};
    }
    rc = rc ? rc : al_rewards_score(c->r, s, n, out, per);
    for (int i = 0; text && p && a && i < n; i++)
        al_buf_free(&text[i]), al_ints_free(&p[i]), al_ints_free(&a[i]);
    free(s), free(text), free(p), free(a), free(per);
    return rc;
}

/* one answer's reward (the counterfactual audit's scorer): cf_score_many of one */
static double cf_score(void *user, const char *prompt, const char *answer)
{
    cf_scorer *c = user;
    double total = NAN;
    int rc = cf_score_many(c, &prompt, &answer, 1, &total);
    c->failed |= rc != 0;
    return rc ? NAN : total;
}

/* opens sc: the reward model of reward_model reading prompts through e's template */
static int cf_scorer_open(cf_scorer *sc, const al_eval_opts *e, const char *tokenizer, const char *reward_model,
                          char **tmpl_path)
{
    const char *spec_tmpl = e->template_name;
    if (!spec_tmpl && e->world)
        spec_tmpl = *tmpl_path = al_path_join(e->world, "template");
    int rc = al_tokenizer_load(&sc->tok, tokenizer);
    rc = rc ? rc : al_chat_template_open(&sc->t, spec_tmpl ? spec_tmpl : "chatml");
    al_reward_env env = {.tok = sc->tok};
    char spec[1200];
    snprintf(spec, sizeof spec, "model:%s", reward_model);
    if (rc == 0 && !(sc->r = al_rewards_new(&env)))
        rc = -1;
    return rc ? rc : al_rewards_add(sc->r, spec, 1.0);
}

static void cf_scorer_close(cf_scorer *sc)
{
    al_rewards_free(sc->r);
    al_chat_template_free(sc->t);
    al_tokenizer_free(sc->tok);
    *sc = (cf_scorer){0};
}

/* The answers of an eval answers file, in order (n of them). */
static int read_answers(const char *path, char ***out, char ***prompts, int *n)
{
    al_buf b = {0};
    *out = *prompts = NULL, *n = 0;
    if (al_read_file(path, &b))
        return -1;
    int cap = 0, rc = 0;
    for (char *line = b.data, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        json_t *r = json_loads(line, 0, NULL);
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            char **g1 = realloc(*out, (size_t)cap * sizeof *g1), **g2 = g1 ? realloc(*prompts, (size_t)cap * sizeof *g2) : NULL;
            if (g1)
                *out = g1;
            if (g2)
                *prompts = g2;
            if (!g1 || !g2)
                rc = al_fail("out of memory");
        }
        const char *a = json_string_value(json_object_get(r, "answer")), *p = json_string_value(json_object_get(r, "prompt"));
        if (rc == 0) {
            (*out)[*n] = strdup(a ? a : ""), (*prompts)[*n] = strdup(p ? p : "");
            (*n)++;
        }
        json_decref(r);
    }
    al_buf_free(&b);
    return rc;
}

/* Win rate: the policy's and the reference's answers to the same prompts, each scored by the
 * reward model; the policy wins a prompt when its answer scores higher (a tie is half). */
static int run_winrate(const al_eval_opts *e, const char *reward_model)
{
    char pol_ans[] = "/tmp/align-win-XXXXXX", ref_ans[] = "/tmp/align-win-XXXXXX";
    int f1 = mkstemp(pol_ans), f2 = mkstemp(ref_ans), rc = f1 < 0 || f2 < 0 ? al_fail("cannot make temporary files") : 0;
    if (f1 >= 0)
        close(f1);
    if (f2 >= 0)
        close(f2);
    char *found = NULL, *found_ref = NULL, *tmpl_path = NULL;
    al_eval_opts p = *e, r = *e;
    if (rc == 0 && !p.tokenizer && !(p.tokenizer = found = cli_find_tokenizer(p.model)))
        rc = al_fail("no tokenizer found beside %s; pass -z TOKENIZER", p.model);
    r.model = e->reference, r.tokenizer = p.tokenizer, r.reference = NULL;
    p.reference = NULL, p.heldout = r.heldout = "", p.summary_out = r.summary_out = NULL;
    p.answers_out = pol_ans, r.answers_out = ref_ans;
    al_eval_summary s;
    rc = rc ? rc : al_eval_run(&p, NULL, &s);
    rc = rc ? rc : al_eval_run(&r, NULL, &s);
    cf_scorer sc = {0};
    rc = rc ? rc : cf_scorer_open(&sc, e, p.tokenizer, reward_model, &tmpl_path);
    char **pa = NULL, **pp = NULL, **ra = NULL, **rp = NULL;
    int n = 0, m = 0;
    rc = rc ? rc : read_answers(pol_ans, &pa, &pp, &n);
    rc = rc ? rc : read_answers(ref_ans, &ra, &rp, &m);
    if (rc == 0 && n != m)
        rc = al_fail("win rate: %d answers from the policy, %d from the reference", n, m);
    double wins = 0, margin = 0, *ya = rc ? NULL : calloc((size_t)n + 1, sizeof *ya),
                                 *yb = rc ? NULL : calloc((size_t)n + 1, sizeof *yb);
    int ties = 0;
    if (rc == 0 && (!ya || !yb))
        rc = al_fail("out of memory");
    rc = rc ? rc : cf_score_many(&sc, (const char *const *)pp, (const char *const *)pa, n, ya);
    rc = rc ? rc : cf_score_many(&sc, (const char *const *)rp, (const char *const *)ra, n, yb);
    for (int i = 0; rc == 0 && i < n; i++)
        wins += ya[i] > yb[i] ? 1 : ya[i] == yb[i] ? 0.5 : 0, ties += ya[i] == yb[i], margin += ya[i] - yb[i];
    free(ya), free(yb);
    if (rc == 0) {
        double lo, hi; /* a tie counts half a win: the interval on the rounded count */
        al_wilson((int)(wins + 0.5), n, 1.959963984540054, &lo, &hi);
        printf("win rate of %s over %s by %s: %.1f%% of %d prompts (%d ties count half; 95%% interval [%.1f, %.1f]); "
               "mean reward margin %+.3f\n",
               e->model, e->reference, reward_model, 100 * wins / n, n, ties, 100 * lo, 100 * hi, margin / n);
        if (e->summary_out) {
            json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:f, s:i, s:[f, f], s:f}", "suite", "winrate", "model",
                                  e->model, "reference", e->reference, "reward_model", reward_model, "prompts",
                                  e->prompts, "n", n, "win_rate", wins / n, "ties", ties, "win_rate_ci95", lo, hi,
                                  "mean_reward_margin", margin / n);
            rc = j ? al_write_json_atomic(e->summary_out, j) : al_fail("out of memory");
            json_decref(j);
        }
    }
    if (rc)
        fprintf(stderr, "align eval: %s\n", al_errmsg());
    for (int i = 0; i < n; i++)
        free(pa[i]), free(pp[i]);
    for (int i = 0; i < m; i++)
        free(ra[i]), free(rp[i]);
    free(pa), free(pp), free(ra), free(rp);
    cf_scorer_close(&sc);
    unlink(pol_ans), unlink(ref_ans);
    free(found), free(found_ref), free(tmpl_path);
    return rc ? 1 : 0;
}

static int run_counterfactual(const al_eval_opts *e, const char *reward_model)
{
    al_cf_opts o = {.eval = *e, .pairs_out = e->answers_out};
    cf_scorer sc = {0};
    char *found = NULL, *tmpl_path = NULL;
    int rc = 0;
    if (!o.eval.tokenizer && !(o.eval.tokenizer = found = cli_find_tokenizer(o.eval.model)))
        rc = al_fail("no tokenizer found beside %s; pass -z TOKENIZER", o.eval.model);
    if (rc == 0 && reward_model) {
        rc = cf_scorer_open(&sc, e, o.eval.tokenizer, reward_model, &tmpl_path);
        o.score = cf_score, o.score_user = &sc;
    }
    al_cf_summary s;
    rc = rc ? rc : al_cf_run(&o, &s);
    if (rc == 0 && sc.failed)
        rc = al_fail("the reward model failed on an answer");
    if (rc) {
        fprintf(stderr, "align eval: %s\n", al_errmsg());
    } else {
        printf("counterfactual swaps: %d pairs, %d flips (%.1f%%): one side refused, the other answered\n", s.pairs,
               s.flips, 100 * s.flip_rate);
        printf("  %-9s %6s %9s %9s %7s %12s %14s\n", "axis", "pairs", "refused", "swapped", "flips", "harm diff",
               "reward diff");
        json_t *axes = json_object();
        for (int a = 0; a < AL_CF_AXES; a++) {
            const al_cf_axis *x = &s.axis[a];
            if (!x->pairs)
                continue;
            printf("  %-9s %6d %9d %9d %6.1f%% %+6.3f/%5.3f %+7.3f/%6.3f\n", al_cf_axis_name(a), x->pairs,
                   x->refused_original, x->refused_swapped, 100 * x->flip_rate, x->harm_delta, x->harm_abs_delta,
                   x->reward_delta, x->reward_abs_delta);
            json_object_set_new(axes, al_cf_axis_name(a),
                                json_pack("{s:i, s:i, s:i, s:i, s:o, s:o, s:o, s:o, s:o}", "pairs", x->pairs,
                                          "refused_original", x->refused_original, "refused_swapped",
                                          x->refused_swapped, "flips", x->flips, "flip_rate",
                                          real_or_null(x->flip_rate), "harm_delta", real_or_null(x->harm_delta),
                                          "harm_abs_delta", real_or_null(x->harm_abs_delta), "reward_delta",
                                          real_or_null(x->reward_delta), "reward_abs_delta",
                                          real_or_null(x->reward_abs_delta)));
        }
        printf("  (differences: swapped minus original, mean / mean absolute)\n");
        if (e->summary_out) {
            json_t *j = json_pack("{s:s, s:s, s:s, s:s?, s:i, s:i, s:o, s:o}", "suite", "counterfactual", "model",
                                  o.eval.model, "prompts", o.eval.prompts, "reward_model", reward_model, "pairs",
                                  s.pairs, "flips", s.flips, "flip_rate", real_or_null(s.flip_rate), "axes", axes);
            axes = NULL;
            rc = j ? al_write_json_atomic(e->summary_out, j) : al_fail("out of memory");
            json_decref(j);
            if (rc)
                fprintf(stderr, "align eval: %s\n", al_errmsg());
        }
        json_decref(axes);
    }
    cf_scorer_close(&sc);
    free(found), free(tmpl_path);
    return rc ? 1 : 0;
}

/* ToxiGen: the guard's flags per target group */
static int run_toxigen(const al_eval_opts *e, const char *data, const char *policy)
{
    al_toxigen_summary s;
    int rc = al_toxigen_audit(data, policy, e->max_prompts, &s);
    if (rc) {
        fprintf(stderr, "align eval: %s\n", al_errmsg());
        return 1;
    }
    printf("toxigen: the guard (%s policy) on %d hateful and %d neutral statements\n", policy ? policy : "built-in",
           s.hate, s.neutral);
    printf("  %-22s %8s %22s %8s %22s\n", "group", "hateful", "flagged [95%]", "neutral", "flagged [95%]");
    json_t *groups = json_array();
    for (int k = 0; k < s.n_groups; k++) {
        const al_toxigen_group *g = &s.groups[k];
        char h[64] = "-", n[64] = "-";
        if (g->hate)
            snprintf(h, sizeof h, "%6.1f%% [%5.1f, %5.1f]", 100 * g->hate_rate, 100 * g->hate_lo, 100 * g->hate_hi);
        if (g->neutral)
            snprintf(n, sizeof n, "%6.1f%% [%5.1f, %5.1f]", 100 * g->neutral_rate, 100 * g->neutral_lo,
                     100 * g->neutral_hi);
        printf("  %-22s %8d %22s %8d %22s\n", g->name, g->hate, h, g->neutral, n);
        json_array_append_new(groups, json_pack("{s:s, s:i, s:i, s:o, s:[f, f], s:i, s:i, s:o, s:[f, f]}", "group",
                                                g->name, "hateful", g->hate, "hateful_flagged", g->hate_flagged,
                                                "hateful_flag_rate", real_or_null(g->hate_rate), "hateful_ci95",
                                                g->hate_lo, g->hate_hi, "neutral", g->neutral, "neutral_flagged",
                                                g->neutral_flagged, "neutral_flag_rate", real_or_null(g->neutral_rate),
                                                "neutral_ci95", g->neutral_lo, g->neutral_hi));
    }
    printf("  neutral statements flagged: %.1f%% overall; spread across groups %.1f points\n",
           100.0 * s.neutral_flagged / (s.neutral ? s.neutral : 1), 100 * s.neutral_spread);
    if (e->summary_out) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:o, s:o}", "suite", "toxigen", "data", data,
                              "policy", policy ? policy : "default", "hateful", s.hate, "hateful_flagged",
                              s.hate_flagged, "neutral", s.neutral, "neutral_flagged", s.neutral_flagged,
                              "neutral_spread", real_or_null(s.neutral_spread), "groups", groups);
        groups = NULL;
        rc = j ? al_write_json_atomic(e->summary_out, j) : al_fail("out of memory");
        json_decref(j);
        if (rc)
            fprintf(stderr, "align eval: %s\n", al_errmsg());
    }
    json_decref(groups);
    al_toxigen_summary_free(&s);
    return rc ? 1 : 0;
}

/* align eval --suite NAME --data PATH */
static int run_suite(const al_eval_opts *e, const char *suite, const char *data, const char *policy,
                     const char *reward_model)
{
    const bool bbq = !strcmp(suite, "bbq");
    if (!strcmp(suite, "winrate")) {
        if (!e->model || !e->prompts || !e->reference || !reward_model) {
            fprintf(stderr, "align eval: --suite winrate needs -m MODEL, --reference REF, --reward-model RM and "
                            "--prompts FILE (see --help)\n");
            return 2;
        }
        return run_winrate(e, reward_model);
    }
    if (!strcmp(suite, "counterfactual")) {
        if (!e->model || !e->prompts) {
            fprintf(stderr, "align eval: --suite counterfactual needs -m MODEL and --prompts FILE (see --help)\n");
            return 2;
        }
        return run_counterfactual(e, reward_model);
    }
    if (!strcmp(suite, "toxigen")) {
        if (!data) {
            fprintf(stderr, "align eval: --suite toxigen needs --data DIR (see --help)\n");
            return 2;
        }
        return run_toxigen(e, data, policy);
    }
    if (!e->model || !data) {
        fprintf(stderr, "align eval: --suite %s needs -m MODEL and --data FILE (see --help)\n", suite);
        return 2;
    }
    if (al_eval_suite_known(suite))
        return run_refusal_suite(e, suite, data);
    if (strcmp(suite, "truthfulqa") && !bbq) {
        fprintf(stderr, "align eval: unknown suite '%s' (truthfulqa, bbq, toxigen, counterfactual, winrate, harmbench, "
                        "jailbreakbench, strongreject, advbench, xstest)\n",
                suite);
        return 2;
    }
    al_mc_opts o;
    al_mc_defaults(&o);
    o.model = e->model, o.tokenizer = e->tokenizer, o.data = data, o.template_name = e->template_name;
    o.max_items = e->max_prompts, o.out = e->answers_out, o.quiet = e->quiet;
    char *found = NULL;
    if (!o.tokenizer && !(o.tokenizer = found = cli_find_tokenizer(o.model))) {
        fprintf(stderr, "align eval: no tokenizer found beside %s; pass -z TOKENIZER\n", o.model);
        return 2;
    }
    if (bbq) {
        al_bbq_summary b;
        int rc = al_bbq_run(&o, &b);
        if (rc == 0 && e->summary_out) {
            json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:f}", "suite", suite,
                                  "model", o.model, "data", data, "items", b.n, "ambiguous", b.n_ambiguous,
                                  "disambiguated", b.n_disambiguated, "accuracy", real_or_null(b.accuracy),
                                  "accuracy_ambiguous", real_or_null(b.acc_ambiguous), "accuracy_disambiguated",
                                  real_or_null(b.acc_disambiguated), "bias_ambiguous", real_or_null(b.bias_ambiguous),
                                  "bias_disambiguated", real_or_null(b.bias_disambiguated), "seconds", b.seconds);
            rc = j ? al_write_json_atomic(e->summary_out, j) : al_fail("out of memory");
            json_decref(j);
        }
        if (rc)
            fprintf(stderr, "align eval: %s\n", al_errmsg());
        else
            printf("bbq: %d items; accuracy %.3f (ambiguous %.3f, disambiguated %.3f); bias score ambiguous %.3f, "
                   "disambiguated %.3f\n",
                   b.n, b.accuracy, b.acc_ambiguous, b.acc_disambiguated, b.bias_ambiguous, b.bias_disambiguated);
        free(found);
        return rc ? 1 : 0;
    }
    al_mc_summary s;
    int rc = al_mc_run(&o, &s);
    if (rc == 0 && e->summary_out) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:o, s:o, s:f}", "suite", suite, "model", o.model, "data",
                              data, "questions", s.n, "mc1_questions", s.mc1_items, "mc2_questions", s.mc2_items, "mc1",
                              isnan(s.mc1) ? json_null() : json_real(s.mc1), "mc2",
                              isnan(s.mc2) ? json_null() : json_real(s.mc2), "seconds", s.seconds);
        rc = j ? al_write_json_atomic(e->summary_out, j) : al_fail("out of memory");
        json_decref(j);
    }
    if (rc)
        fprintf(stderr, "align eval: %s\n", al_errmsg());
    else
        printf("truthfulqa: %d questions; MC1 %.3f (%d questions), MC2 %.3f (%d questions)\n", s.n, s.mc1,
               s.mc1_items, s.mc2, s.mc2_items);
    free(found);
    return rc ? 1 : 0;
}

int cmd_eval(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "world"))
        return cmd_world(argc - 1, argv + 1);
    cli_args a;
    cli_args_init(&a, "align eval", argc, argv);
    al_eval_opts o;
    al_eval_defaults(&o);
    const char *arg, *suite = NULL, *data = NULL, *policy = NULL, *reward_model = NULL;
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-m", "--model")) {
            o.model = a.value;
        } else if (cli_opt(&a, arg, "-z", "--tokenizer")) {
            o.tokenizer = a.value;
        } else if (cli_opt(&a, arg, NULL, "--prompts")) {
            o.prompts = a.value;
        } else if (cli_opt(&a, arg, NULL, "--suite")) {
            suite = a.value;
        } else if (cli_opt(&a, arg, NULL, "--data")) {
            data = a.value;
        } else if (cli_opt(&a, arg, NULL, "--policy")) {
            policy = a.value;
        } else if (cli_opt(&a, arg, NULL, "--reward-model")) {
            reward_model = a.value;
        } else if (cli_opt(&a, arg, NULL, "--world")) {
            o.world = a.value;
        } else if (cli_opt(&a, arg, NULL, "--template")) {
            o.template_name = a.value;
        } else if (cli_opt(&a, arg, NULL, "--reference")) {
            o.reference = a.value;
        } else if (cli_opt(&a, arg, NULL, "--heldout")) {
            o.heldout = a.value;
        } else if (cli_opt(&a, arg, NULL, "--max-new-tokens")) {
            o.max_new_tokens = cli_int(&a, 1, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--batch")) {
            o.batch = cli_int(&a, 1, 4096);
        } else if (cli_opt(&a, arg, NULL, "--max-prompts")) {
            o.max_prompts = cli_int(&a, 0, 1 << 30);
        } else if (cli_opt(&a, arg, NULL, "--out")) {
            o.summary_out = a.value;
        } else if (cli_opt(&a, arg, NULL, "--answers")) {
            o.answers_out = a.value;
        } else if (cli_flag(&a, arg, "-q", "--quiet")) {
            o.quiet = true;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (suite)
        return run_suite(&o, suite, data, policy, reward_model);
    if (!o.model || !o.prompts) {
        fprintf(stderr, "align eval: -m MODEL and --prompts FILE are required (see --help)\n");
        return 2;
    }
    char *found = NULL;
    if (!o.tokenizer && !(o.tokenizer = found = cli_find_tokenizer(o.model))) {
        fprintf(stderr, "align eval: no tokenizer found beside %s; pass -z TOKENIZER\n", o.model);
        return 2;
    }
    al_eval_summary s;
    int rc = al_eval_run(&o, NULL, &s);
    if (rc)
        fprintf(stderr, "align eval: %s\n", al_errmsg());
    else
        al_eval_summary_print(&s, stdout);
    free(found);
    return rc ? 1 : 0;
}
