/* align cai: Constitutional AI.  `align cai revise` runs the supervised stage (answer,
 * critique under a sampled principle, revise), `align cai label` the AI feedback (soft
 * preference labels from the model as judge), `align cai constitution` prints a built-in
 * constitution to copy and edit or checks a file. */
#include <jansson.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/cai.h"
#include "align/eval.h"
#include "align/model.h"
#include "args.h"
#include "commands.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: align cai revise -m MODEL --prompts FILE.jsonl -o DIR [options]\n"
            "       align cai label -m MODEL --pairs FILE.jsonl -o OUT.jsonl [options]\n"
            "       align cai constitution [NAME | --check FILE.yaml]\n"
            "\n"
            "revise: the supervised stage of Constitutional AI.  For each prompt the model answers;\n"
            "then, for each round, a principle is drawn from the constitution, the model is asked to\n"
            "critique its answer under it (the principle's critique request) and to rewrite the answer\n"
            "(its revision request), the constitution's worked examples shown first as earlier turns.\n"
            "Writes DIR/revisions.jsonl (TRL prompt/completion: the final revisions, for align sft) and\n"
            "DIR/provenance.jsonl (per prompt: the first answer and each round's principle, critique\n"
            "and revision).  The same seed gives the same files, whatever --batch.\n"
            "\n"
            "label: AI feedback.  For each pair ({\"prompt\", \"chosen\", \"rejected\"} strings) the model\n"
            "judges under --principles principles drawn from the seed: the principle's question, the\n"
            "prompt and the two answers as options (A) and (B), its reply begun with \"The better\n"
            "answer is (\"; the soft label is P(A) / (P(A) + P(B)) over the next token.  Each question\n"
            "is asked in both orders (the mean cancels the order's bias; their agreement is the swap\n"
            "consistency) and the principles' labels are averaged.  Writes the pairs with \"label\"\n"
            "(P(chosen is better): the soft label align rm train and align dpo read), \"principles\"\n"
            "and \"swap_consistent\", and prints the mean label and the swap consistency.\n"
            "\n"
            "constitution: prints a built-in constitution's YAML (harmless: 16 principles; support: the\n"
            "customer-support rules), or checks a file and lists its principles (docs/cai.md).\n"
            "\n"
            "options (revise):\n"
            "  -m, --model PATH        the model (a directory with its tokenizer and chat template)\n"
            "  -z, --tokenizer PATH    its tokenizer (default: the one beside the model)\n"
            "      --template NAME     chat template (default: the model's own, else chatml)\n"
            "      --prompts FILE      JSONL with a \"prompt\" field per line\n"
            "  -c, --constitution C    harmless, support or a YAML file (default harmless)\n"
            "  -o, --out DIR           where the two JSONL files go (created if missing)\n"
            "      --rounds N          critique-revision rounds per prompt (default 1)\n"
            "  -n, --max-new N         tokens per generation (default 128)\n"
            "  -t, --temperature T     sampling temperature (default 1.0; 0 = greedy)\n"
            "      --critique-temperature T  of the critiques and revisions (default: -t)\n"
            "  -p, --top-p P           nucleus sampling (default 1.0)\n"
            "  -s, --seed S            principles and sampling (default 1)\n"
            "      --batch N           prompts decoded together (default 16)\n"
            "      --no-few-shot       leave the constitution's examples out\n"
            "\n"
            "options (label; -m, -z, --template, -c, -s, --batch as above):\n"
            "      --pairs FILE        JSONL of {\"prompt\", \"chosen\", \"rejected\"}\n"
            "  -o, --out FILE          the labelled pairs\n"
            "      --principles K      principles per pair, averaged (default 2)\n"
            "      --cot N             chain-of-thought: the judge reasons for up to N tokens (\"Let's\n"
            "                          think step by step.\") before the option is read; labels are\n"
            "                          then clamped to 0.4,0.6 unless --clamp says otherwise\n"
            "      --clamp LO,HI       clamp each principle's label\n"
            "      --skip-long         leave out pairs whose questions do not fit the model's context\n"
            "                          (default: such a pair is an error)\n"
            "  -h, --help              this text\n"
            "\n"
            "examples:\n"
            "  align cai constitution support > support.yaml\n"
            "  align cai revise -m runs/sft --prompts prompts.jsonl -c support.yaml --rounds 2 -o runs/cai\n"
            "  align sft -m runs/sft --data runs/cai/revisions.jsonl -o runs/cai-sft\n"
            "  align cai label -m runs/cai-sft --pairs pairs.jsonl -c support -o runs/cai/labelled.jsonl\n"
            "  align dpo -m runs/cai-sft --data runs/cai/labelled.jsonl -o runs/cai-dpo\n");
}

static int cmd_constitution(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        help(stdout);
        return 0;
    }
    al_constitution c;
    if (argc >= 3 && !strcmp(argv[1], "--check")) {
        if (al_constitution_load(argv[2], &c)) {
            fprintf(stderr, "align cai constitution: %s\n", al_errmsg());
            return 1;
        }
        printf("%s: constitution '%s', %d principles, %d examples\n", argv[2], c.name, c.n_principles, c.n_examples);
        for (int i = 0; i < c.n_principles; i++)
            printf("  %s\n", c.principles[i].name);
        al_constitution_free(&c);
        return 0;
    }
    const char *name = argc >= 2 ? argv[1] : "harmless";
    const char *y = al_constitution_builtin_yaml(name);
    if (!y) {
        fprintf(stderr, "align cai constitution: no built-in '%s' (harmless, support; --check FILE checks a file)\n",
                name);
        return 2;
    }
    fputs(y, stdout);
    return 0;
}

static int load_constitution(const char *spec, al_constitution *c)
{
    return al_constitution_builtin_yaml(spec) ? al_constitution_builtin(spec, c) : al_constitution_load(spec, c);
}

/* What revise and label both take: the model with its tokenizer and chat template, and a
 * constitution. */
typedef struct cai_inputs {
    const char *model, *tok_path, *tmpl_name, *spec;
    al_model m;
    cli_model_files files;
    al_constitution c;
} cai_inputs;

/* true when arg was one of their flags */
static bool inputs_flag(cli_args *a, const char *arg, cai_inputs *in)
{
    if (cli_opt(a, arg, "-m", "--model"))
        in->model = a->value;
    else if (cli_opt(a, arg, "-z", "--tokenizer"))
        in->tok_path = a->value;
    else if (cli_opt(a, arg, NULL, "--template"))
        in->tmpl_name = a->value;
    else if (cli_opt(a, arg, "-c", "--constitution"))
        in->spec = a->value;
    else
        return false;
    return true;
}

static int inputs_open(const char *cmd, cai_inputs *in)
{
    if (load_constitution(in->spec, &in->c) || al_model_load(&in->m, in->model)) {
        fprintf(stderr, "%s: %s\n", cmd, al_errmsg());
        return -1;
    }
    return cli_model_files_load(cmd, in->model, in->tok_path, in->tmpl_name, true, &in->files) ? -1 : 0;
}

static void inputs_close(cai_inputs *in)
{
    al_constitution_free(&in->c);
    cli_model_files_free(&in->files);
    al_model_free(&in->m);
}

static int cmd_revise(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align cai revise", argc, argv);
    cai_inputs in = {.spec = "harmless"};
    const char *prompts_path = NULL, *out_dir = NULL, *arg;
    al_cai_revise_opts o = al_cai_revise_defaults();
    o.sampling.seed = 1;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            help(stdout);
            return 0;
        } else if (inputs_flag(&a, arg, &in)) {
        } else if (cli_opt(&a, arg, NULL, "--prompts")) {
            prompts_path = a.value;
        } else if (cli_opt(&a, arg, "-o", "--out")) {
            out_dir = a.value;
        } else if (cli_opt(&a, arg, NULL, "--rounds")) {
            o.rounds = cli_int(&a, 1, 16);
        } else if (cli_opt(&a, arg, "-n", "--max-new")) {
            o.max_new_tokens = cli_int(&a, 1, 1 << 20);
        } else if (cli_opt(&a, arg, "-t", "--temperature")) {
            o.sampling.temperature = cli_float(&a, 0, 100);
        } else if (cli_opt(&a, arg, NULL, "--critique-temperature")) {
            o.critique_temperature = cli_float(&a, 0, 100);
        } else if (cli_opt(&a, arg, "-p", "--top-p")) {
            o.sampling.top_p = cli_float(&a, 0, 1);
        } else if (cli_opt(&a, arg, "-s", "--seed")) {
            o.sampling.seed = (uint64_t)cli_int(&a, 0, 2147483647);
        } else if (cli_opt(&a, arg, NULL, "--batch")) {
            o.batch = cli_int(&a, 1, 4096);
        } else if (cli_flag(&a, arg, NULL, "--no-few-shot")) {
            o.few_shot = false;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!in.model || !prompts_path || !out_dir) {
        fprintf(stderr, "align cai revise: -m MODEL, --prompts FILE and -o DIR are required (see --help)\n");
        return 2;
    }
    al_prompt_set ps = {0};
    al_cai_revision *rev = NULL;
    const char **texts = NULL;
    char *sft = NULL, *prov = NULL;
    int rc = 1;
    if (al_prompt_set_load(&ps, prompts_path)) {
        fprintf(stderr, "align cai revise: %s\n", al_errmsg());
        goto out;
    }
    if (inputs_open("align cai revise", &in) || !(texts = malloc((size_t)(ps.n ? ps.n : 1) * sizeof *texts)))
        goto out;
    for (int i = 0; i < ps.n; i++)
        texts[i] = ps.p[i].prompt;
    fprintf(stderr, "align cai revise: %d prompts, constitution '%s' (%d principles, %d examples), %d round%s\n", ps.n,
            in.c.name, in.c.n_principles, in.c.n_examples, o.rounds, o.rounds == 1 ? "" : "s");
    if (al_mkdir_p(out_dir) || !(sft = al_path_join(out_dir, "revisions.jsonl")) ||
        !(prov = al_path_join(out_dir, "provenance.jsonl")) ||
        al_cai_revise(&in.m, in.files.tok, in.files.tmpl, &in.c, texts, ps.n, &o, &rev) ||
        al_cai_write_revisions(sft, prov, rev, ps.n, &in.c)) {
        fprintf(stderr, "align cai revise: %s\n", al_errmsg());
        goto out;
    }
    printf("wrote %s and %s\n", sft, prov);
    rc = 0;
out:
    al_cai_revisions_free(rev, ps.n);
    free(texts), free(sft), free(prov);
    al_prompt_set_free(&ps);
    inputs_close(&in);
    return rc;
}

/* {"prompt", "chosen", "rejected"} strings per line; errors FILE:LINE */
typedef struct pair_file {
    al_cai_pair *v;
    char **owned;
    int n, n_owned;
} pair_file;

static void pair_file_free(pair_file *p)
{
    for (int i = 0; i < p->n_owned; i++)
        free(p->owned[i]);
    free(p->owned);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* A pair's field: a string, or TRL's conversational form with one message of role (what
 * align cai label writes). */
static const char *field_text(const json_t *x, const char *role)
{
    if (json_is_string(x))
        return json_string_value(x);
    const json_t *m = json_array_get(x, 0);
    const char *r = json_string_value(json_object_get(m, "role"));
    return json_array_size(x) == 1 && r && !strcmp(r, role) ? json_string_value(json_object_get(m, "content")) : NULL;
}

static int pair_file_load(pair_file *p, const char *path)
{
    al_buf b = {0};
    memset(p, 0, sizeof *p);
    if (al_read_file(path, &b))
        return -1;
    int rc = 0, line_no = 0, cap = 0;
    for (char *line = b.data; rc == 0 && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        line_no++;
        if (line[strspn(line, " \t\r")]) {
            json_error_t err;
            json_t *o = json_loads(line, 0, &err);
            const char *f[3] = {"prompt", "chosen", "rejected"}, *v[3] = {0};
            if (!json_is_object(o))
                rc = al_fail("%s:%d: not a JSON object (%s)", path, line_no, err.text);
            for (int k = 0; rc == 0 && k < 3; k++)
                if (!(v[k] = field_text(json_object_get(o, f[k]), k == 0 ? "user" : "assistant")))
                    rc = al_fail("%s:%d: expected \"%s\" as a string or one %s message (pairs are {\"prompt\", "
                                 "\"chosen\", \"rejected\"})",
                                 path, line_no, f[k], k == 0 ? "user" : "assistant");
            if (rc == 0 && p->n == cap) {
                cap = cap ? 2 * cap : 64;
                al_cai_pair *nv = realloc(p->v, (size_t)cap * sizeof *nv);
                char **no = realloc(p->owned, (size_t)cap * 3 * sizeof *no);
                if (nv)
                    p->v = nv;
                if (no)
                    p->owned = no;
                if (!nv || !no)
                    rc = al_fail("out of memory");
            }
            char *s[3] = {0};
            for (int k = 0; rc == 0 && k < 3; k++)
                if (!(s[k] = strdup(v[k])))
                    rc = al_fail("out of memory");
            for (int k = 0; k < 3; k++)
                if (s[k])
                    p->owned[p->n_owned++] = s[k];
            if (rc == 0)
                p->v[p->n++] = (al_cai_pair){s[0], s[1], s[2]};
            json_decref(o);
        }
        line = nl ? nl + 1 : NULL;
    }
    al_buf_free(&b);
    if (rc == 0 && p->n == 0)
        rc = al_fail("%s: no pairs", path);
    if (rc)
        pair_file_free(p);
    return rc;
}

static int cmd_label(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align cai label", argc, argv);
    cai_inputs in = {.spec = "harmless"};
    const char *pairs_path = NULL, *out = NULL, *arg;
    al_cai_label_opts o = al_cai_label_defaults();
    bool clamp_given = false;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            help(stdout);
            return 0;
        } else if (inputs_flag(&a, arg, &in)) {
        } else if (cli_opt(&a, arg, NULL, "--pairs")) {
            pairs_path = a.value;
        } else if (cli_opt(&a, arg, "-o", "--out")) {
            out = a.value;
        } else if (cli_opt(&a, arg, NULL, "--principles")) {
            o.principles = cli_int(&a, 1, AL_CAI_MAX_PRINCIPLES);
        } else if (cli_opt(&a, arg, "-s", "--seed")) {
            o.seed = (uint64_t)cli_int(&a, 0, 2147483647);
        } else if (cli_opt(&a, arg, NULL, "--batch")) {
            o.batch = cli_int(&a, 1, 4096);
        } else if (cli_opt(&a, arg, NULL, "--cot")) {
            o.cot_tokens = cli_int(&a, 1, 1 << 16);
        } else if (cli_flag(&a, arg, NULL, "--skip-long")) {
            o.skip_too_long = true;
        } else if (cli_opt(&a, arg, NULL, "--clamp")) {
            clamp_given = true;
            if (sscanf(a.value, "%lf,%lf", &o.clamp_lo, &o.clamp_hi) != 2 || !(o.clamp_lo >= 0) ||
                !(o.clamp_hi <= 1) || !(o.clamp_lo <= o.clamp_hi)) {
                fprintf(stderr, "align cai label: --clamp expects LO,HI with 0 <= LO <= HI <= 1, got '%s'\n", a.value);
                return 2;
            }
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!in.model || !pairs_path || !out) {
        fprintf(stderr, "align cai label: -m MODEL, --pairs FILE and -o FILE are required (see --help)\n");
        return 2;
    }
    if (o.cot_tokens > 0 && !clamp_given) /* reasoning makes the judge overconfident */
        o.clamp_lo = 0.4, o.clamp_hi = 0.6;
    pair_file pf = {0};
    al_cai_pair_label *labels = NULL;
    int rc = 1;
    if (pair_file_load(&pf, pairs_path)) {
        fprintf(stderr, "align cai label: %s\n", al_errmsg());
        goto out;
    }
    if (inputs_open("align cai label", &in) || !(labels = calloc((size_t)pf.n, sizeof *labels)))
        goto out;
    if (al_cai_label(&in.m, in.files.tok, in.files.tmpl, &in.c, pf.v, pf.n, &o, labels) ||
        al_cai_write_labels(out, pf.v, labels, pf.n, &in.c)) {
        fprintf(stderr, "align cai label: %s\n", al_errmsg());
        goto out;
    }
    double mean = 0, consistent = 0;
    int prefer_chosen = 0, n = 0;
    for (int i = 0; i < pf.n; i++)
        if (!isnan(labels[i].label))
            n++, mean += labels[i].label, consistent += labels[i].swap_consistent,
                prefer_chosen += labels[i].label > 0.5;
    if (n < pf.n)
        printf("%d of %d pairs left out: their questions do not fit the model's context\n", pf.n - n, pf.n);
    if (n > 0)
        printf("%d pairs under '%s' (%d principles each): mean label %.3f, chosen preferred in %.1f%%, swap "
               "consistency %.1f%%\n",
               n, in.c.name, o.principles, mean / n, 100.0 * prefer_chosen / n, 100.0 * consistent / n);
    printf("wrote %s\n", out);
    rc = 0;
out:
    free(labels);
    pair_file_free(&pf);
    inputs_close(&in);
    return rc;
}

int cmd_cai(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "revise"))
        return cmd_revise(argc - 1, argv + 1);
    if (!strcmp(argv[1], "label"))
        return cmd_label(argc - 1, argv + 1);
    if (!strcmp(argv[1], "constitution"))
        return cmd_constitution(argc - 1, argv + 1);
    fprintf(stderr, "align cai: unknown subcommand '%s' (expected revise, label or constitution; see align cai --help)\n",
            argv[1]);
    return 2;
}

/* ---- align self-reward ---- */

static void self_reward_help(FILE *out)
{
    fprintf(out,
            "usage: align self-reward -m MODEL --prompts FILE.jsonl -o DIR [options]\n"
            "\n"
            "Self-rewarding: K iterations in which the model answers every prompt --samples times,\n"
            "judges each answer with an additive 5-point rubric (relevant; covers much of the\n"
            "question; answers its core usefully; clear, complete and well organized; excellent),\n"
            "pairs each prompt's best answer over its worst (ties dropped) and trains DPO on the\n"
            "pairs; the DPO model is the next iteration's model, which answers and judges in turn.\n"
            "--judge generate (default): the judge writes its reasoning and ends with \"Score: N\"\n"
            "(the last one counts; judgements without one are left out).  --judge expect: the\n"
            "judge's reply is begun with \"Score: \" and the score is the expected digit under its\n"
            "next-token probabilities over 0..5.  --repeats averages several judgements.\n"
            "Writes DIR/iterK/pairs.jsonl (prompt, chosen, rejected and their scores),\n"
            "DIR/iterK/dpo (the DPO run) and DIR/metrics.jsonl, one line per iteration: reward_mean,\n"
            "reward_best_mean, judge_agreement (share of answers whose repeated judgements agree),\n"
            "judge_parsed (share of judgements that gave a score), pairs, ties_dropped.\n"
            "\n"
            "options:\n"
            "  -m, --model PATH        the starting model (a directory with its tokenizer)\n"
            "  -z, --tokenizer PATH    its tokenizer (default: tokenizer.json or tokenizer.bin beside it)\n"
            "      --template NAME     chat template (chatml, llama2 or a file; default chatml)\n"
            "      --prompts FILE      JSONL with a \"prompt\" field per line\n"
            "  -o, --out DIR           the run directory\n"
            "      --iterations K      (default 1)\n"
            "      --samples N         answers per prompt (default 4)\n"
            "      --repeats R         judgements per answer (default 1)\n"
            "      --judge MODE        generate or expect (default generate)\n"
            "  -n, --max-new N         tokens per answer (default 128)\n"
            "      --judge-max-new N   tokens per judgement (default 96)\n"
            "  -t, --temperature T     sampling temperature (default 1.0)\n"
            "  -s, --seed S            (default 1)\n"
            "      --batch N           sequences decoded together (default 16)\n"
            "      --beta B            DPO beta (default 0.1)\n"
            "      --lr LR             DPO learning rate\n"
            "      --steps N           DPO steps per iteration (default: one epoch)\n"
            "      --batch-size N      DPO pairs per step\n"
            "  -q, --quiet             no progress lines\n"
            "  -h, --help              this text\n"
            "\n"
            "example:\n"
            "  align self-reward -m runs/sft/final --prompts prompts.jsonl --iterations 2 --samples 4 -o runs/sr\n");
}

int cmd_self_reward(int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "align self-reward", argc, argv);
    const char *prompts_path = NULL, *arg;
    al_self_reward_opts o = al_self_reward_defaults();
    o.sampling.seed = 1;
    o.dpo.save_every = 0;
    o.dpo.eval_every = 0;
    o.dpo.held_out = 0;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            self_reward_help(stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-m", "--model")) {
            o.model = a.value;
        } else if (cli_opt(&a, arg, "-z", "--tokenizer")) {
            o.tokenizer = a.value;
        } else if (cli_opt(&a, arg, NULL, "--template")) {
            o.chat_template = a.value;
        } else if (cli_opt(&a, arg, NULL, "--prompts")) {
            prompts_path = a.value;
        } else if (cli_opt(&a, arg, "-o", "--out")) {
            o.out_dir = a.value;
        } else if (cli_opt(&a, arg, NULL, "--iterations")) {
            o.iterations = cli_int(&a, 1, 100);
        } else if (cli_opt(&a, arg, NULL, "--samples")) {
            o.samples = cli_int(&a, 2, 64);
        } else if (cli_opt(&a, arg, NULL, "--repeats")) {
            o.repeats = cli_int(&a, 1, 16);
        } else if (cli_opt(&a, arg, NULL, "--judge")) {
            if (strcmp(a.value, "generate") && strcmp(a.value, "expect")) {
                fprintf(stderr, "align self-reward: --judge expects generate or expect, got '%s'\n", a.value);
                return 2;
            }
            o.judge = !strcmp(a.value, "expect") ? AL_JUDGE_EXPECT : AL_JUDGE_GENERATE;
        } else if (cli_opt(&a, arg, "-n", "--max-new")) {
            o.max_new_tokens = cli_int(&a, 1, 1 << 20);
        } else if (cli_opt(&a, arg, NULL, "--judge-max-new")) {
            o.judge_max_new_tokens = cli_int(&a, 1, 1 << 20);
        } else if (cli_opt(&a, arg, "-t", "--temperature")) {
            o.sampling.temperature = cli_float(&a, 0, 100);
        } else if (cli_opt(&a, arg, "-s", "--seed")) {
            o.sampling.seed = (uint64_t)cli_int(&a, 0, 2147483647);
            o.dpo.seed = o.sampling.seed;
        } else if (cli_opt(&a, arg, NULL, "--batch")) {
            o.batch = cli_int(&a, 1, 4096);
        } else if (cli_opt(&a, arg, NULL, "--beta")) {
            o.dpo.pref.beta = cli_float(&a, 1e-6, 100);
        } else if (cli_opt(&a, arg, NULL, "--lr")) {
            o.dpo.sched.peak_lr = cli_float(&a, 1e-9, 1);
        } else if (cli_opt(&a, arg, NULL, "--steps")) {
            o.dpo.steps = cli_int(&a, 1, 100000000);
        } else if (cli_opt(&a, arg, NULL, "--batch-size")) {
            o.dpo.batch_size = cli_int(&a, 1, 1 << 16);
        } else if (cli_flag(&a, arg, "-q", "--quiet")) {
            o.quiet = true;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!o.model || !prompts_path || !o.out_dir) {
        fprintf(stderr, "align self-reward: -m MODEL, --prompts FILE and -o DIR are required (see --help)\n");
        return 2;
    }
    char *found = NULL;
    if (!o.tokenizer) {
        const char *names[] = {"tokenizer.json", "tokenizer.bin"};
        for (int i = 0; i < 2 && !found; i++) {
            char *p = al_path_join(o.model, names[i]);
            if (p && al_file_exists(p))
                found = p;
            else
                free(p);
        }
        if (!found) {
            fprintf(stderr, "align self-reward: no tokenizer.json or tokenizer.bin in %s; give one with -z\n",
                    o.model);
            return 2;
        }
        o.tokenizer = found;
    }
    al_prompt_set ps = {0};
    const char **texts = NULL;
    int rc = 1;
    if (al_prompt_set_load(&ps, prompts_path)) {
        fprintf(stderr, "align self-reward: %s\n", al_errmsg());
        goto out;
    }
    if (!(texts = malloc((size_t)(ps.n ? ps.n : 1) * sizeof *texts)))
        goto out;
    for (int i = 0; i < ps.n; i++)
        texts[i] = ps.p[i].prompt;
    if (al_self_reward(&o, texts, ps.n)) {
        fprintf(stderr, "align self-reward: %s\n", al_errmsg());
        goto out;
    }
    printf("wrote %s/metrics.jsonl and %d iteration director%s\n", o.out_dir, o.iterations,
           o.iterations == 1 ? "y" : "ies");
    rc = 0;
out:
    free(texts);
    free(found);
    al_prompt_set_free(&ps);
    return rc;
}
