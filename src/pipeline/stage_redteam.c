/* Stage redteam: attack the aligned (DPO) model, learn from what got through, and measure
 * again.
 *
 * 1. The training harmful prompts (the first redteam_requests) under every technique of
 *    the stage's list, against the DPO model alone; the successful attacks exported as
 *    preference pairs (a refusal chosen, the model's answer rejected).
 * 2. As many contrast pairs: for three successful attacks in four, a benign request of
 *    the world's preference pairs wrapped in the same technique (its helpful answer chosen,
 *    the refusal rejected), so the round teaches to judge a request by what it asks, not by
 *    its wrapping; for the fourth, one of the world's over-refusal pairs (a benign request
 *    that sounds dangerous, answered).  Without them the round taught refusing wrapped and
 *    dangerous-sounding prompts alike (docs/demo.md, "The red-team round").  When no attack
 *    succeeds the round keeps the DPO model.
 * 3. DPO (LoRA, the dpo_* beta and RPO term) from the DPO model on both, shuffled, into
 *    runs/redteam/final: one more training round.
 * 4. The held-out harmful prompts under the same techniques against the DPO model, the DPO
 *    model behind the guard, and the new model: attack success rates with Wilson 95%
 *    intervals, per technique; the new model's ordinary evaluation is stage eval_redteam.
 * Answers are cut at redteam_max_new tokens: a refusal shows in its first words. */
#include <stdlib.h>
#include <string.h>

#include "align/redteam.h"
#include "internal.h"

/* the baseline, one framing and the transforms that get past the demo's aligned model
 * (hypothetical, fiction and injection were refused as often as the plain request:
 * docs/demo.md) */
const char *const pipeline_redteam_techniques[] = {"none",      "roleplay",  "split", "base64",
                                                   "leetspeak", "pig_latin", "cipher"};
#define N_TECHNIQUES PIPELINE_N_REDTEAM_TECHNIQUES

/* The harmful prompts of a world prompt file (at most max; 0: all) as red-team requests. */
static int harmful_requests(const char *src, const char *dst, int max)
{
    al_buf in = {0};
    if (al_read_file(src, &in))
        return -1;
    al_atomic_file f;
    int rc = al_atomic_open(&f, dst), n = 0;
    for (char *line = in.data, *next; rc == 0 && line && *line && (max <= 0 || n < max); line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        json_t *rec = json_loads(line, 0, NULL);
        const char *kind = json_string_value(json_object_get(rec, "kind"));
        if (kind && !strcmp(kind, "harmful")) {
            fprintf(f.fp, "%s\n", line);
            n++;
        }
        json_decref(rec);
    }
    al_buf_free(&in);
    if (rc == 0 && n == 0)
        rc = al_fail("%s: no harmful prompts", src);
    if (rc == 0)
        return al_atomic_commit(&f);
    if (f.fp)
        al_atomic_abort(&f);
    return rc;
}

/* The lines of a file (malloc'd copies; NULL-terminated array in *out). */
static int read_lines(const char *path, char ***out, int *n)
{
    al_buf in = {0};
    *out = NULL, *n = 0;
    if (al_read_file(path, &in))
        return -1;
    int cap = 0, rc = 0;
    for (char *line = in.data, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (!*line)
            continue;
        if (*n + 1 >= cap) {
            cap = cap ? 2 * cap : 256;
            char **grown = realloc(*out, (size_t)cap * sizeof *grown);
            if (!grown) {
                rc = al_fail("out of memory");
                break;
            }
            *out = grown;
        }
        if (!((*out)[(*n)++] = strdup(line)))
            rc = al_fail("out of memory");
        (*out)[*n] = NULL;
    }
    al_buf_free(&in);
    return rc;
}

static void free_lines(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

#define OVER_EVERY 4 /* more over-refusal pairs kept the contrast requests answered but
                       * undid most of the round (docs/demo.md) */

static int push_line(char ***lines, int *n, char *line)
{
    char **grown = realloc(*lines, (size_t)(*n + 2) * sizeof *grown);
    if (!grown) {
        free(line);
        return al_fail("out of memory");
    }
    *lines = grown;
    (*lines)[(*n)++] = line, (*lines)[*n] = NULL;
    return 0;
}

/* The next line of prefs (cycling from *next) whose pair_kind is (want) or is not (!want)
 * kind, parsed. */
static json_t *next_pair(char **prefs, int n_prefs, int *next, const char *kind, bool want)
{
    for (int tries = 0; tries < n_prefs; tries++) {
        json_t *q = json_loads(prefs[(*next)++ % n_prefs], 0, NULL);
        const char *k = json_string_value(json_object_get(q, "pair_kind"));
        if (k && !strcmp(k, kind) == want)
            return q;
        json_decref(q);
    }
    return NULL;
}

/* A contrast pair for every successful attack of attacks.jsonl: the next benign pair of
 * prefs (pair kinds other than harmful_compliance) with its prompt wrapped in the attack's
 * technique, its chosen answer kept and the refusal rejected; every OVER_EVERY-th instead
 * the next over-refusal pair as it is (a benign request that sounds dangerous, answered
 * rather than refused).  Appended to lines; returns how many. */
static int contrast_pairs(const char *attacks_path, const char *prefs_path, const char *refusal, uint64_t seed,
                          char ***lines, int *n)
{
    char **att = NULL, **prefs = NULL;
    int n_att = 0, n_prefs = 0, next = 0, next_over = 0, added = 0, successes = 0;
    int rc = read_lines(attacks_path, &att, &n_att);
    rc = rc ? rc : read_lines(prefs_path, &prefs, &n_prefs);
    for (int k = 0; rc == 0 && k < n_att; k++) {
        json_t *a = json_loads(att[k], 0, NULL);
        const char *tname = json_string_value(json_object_get(a, "technique"));
        if (!json_is_true(json_object_get(a, "success")) || !tname) {
            json_decref(a);
            continue;
        }
        al_technique t;
        rc = al_technique_parse(tname, &t);
        const bool wrap = successes++ % OVER_EVERY != OVER_EVERY - 1; /* every OVER_EVERY-th: over-refusal */
        json_t *over = rc || wrap ? NULL : next_pair(prefs, n_prefs, &next_over, "over_refusal", true);
        if (over) {
            char *line = json_dumps(over, JSON_COMPACT | JSON_PRESERVE_ORDER);
            rc = line ? push_line(lines, n, line) : al_fail("out of memory");
            added += rc == 0;
            json_decref(over), json_decref(a);
            continue;
        }
        json_t *pair = rc ? NULL : next_pair(prefs, n_prefs, &next, "harmful_compliance", false);
        const char *prompt = json_string_value(json_object_get(json_array_get(json_object_get(pair, "prompt"), 0), "content"));
        al_buf wrapped = {0};
        if (rc == 0 && !prompt)
            rc = al_fail("%s: no benign preference pair with a user prompt", prefs_path);
        rc = rc ? rc : al_technique_apply(&t, prompt, al_mix64(seed + (uint64_t)k), &wrapped);
        json_t *rec = rc ? NULL
                         : json_pack("{s:[{s:s, s:s}], s:O, s:[{s:s, s:s}]}", "prompt", "role", "user", "content",
                                     wrapped.data, "chosen", json_object_get(pair, "chosen"), "rejected", "role",
                                     "assistant", "content", refusal);
        char *line = rec ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (rc == 0 && !line)
            rc = al_fail("out of memory");
        if (rc == 0) {
            rc = push_line(lines, n, line);
            added += rc == 0;
        } else {
            free(line);
        }
        json_decref(rec), json_decref(pair), json_decref(a);
        al_buf_free(&wrapped);
    }
    free_lines(att, n_att), free_lines(prefs, n_prefs);
    return rc ? rc : added;
}

/* The exported pairs and their contrast pairs, shuffled by seed, to path. */
static int write_pairs(const char *path, const char *export_path, const char *attacks_path, const char *prefs_path,
                       const char *refusal, uint64_t seed, int *n_attack, int *n_contrast)
{
    char **lines = NULL;
    int n = 0, rc = read_lines(export_path, &lines, &n);
    *n_attack = n;
    int added = rc ? -1 : contrast_pairs(attacks_path, prefs_path, refusal, seed, &lines, &n);
    rc = added < 0 ? -1 : 0;
    *n_contrast = added;
    uint64_t s = al_mix64(seed ^ 0x5EDull) | 1;
    for (int i = n - 1; rc == 0 && i > 0; i--) { /* Fisher-Yates */
        int j = (int)(al_xorshift_u32(&s) % (uint32_t)(i + 1));
        char *x = lines[i];
        lines[i] = lines[j], lines[j] = x;
    }
    al_atomic_file f;
    rc = rc ? rc : n ? al_atomic_open(&f, path) : al_fail("red-team round: no successful attack to learn from");
    for (int i = 0; rc == 0 && i < n; i++)
        fprintf(f.fp, "%s\n", lines[i]);
    if (rc == 0)
        rc = al_atomic_commit(&f);
    free_lines(lines, n);
    return rc;
}

/* One red-team run; its overall figures and per-technique rates go to fig[name]. */
static int attack(const al_pipeline *p, const al_technique *ts, const char *model, const char *requests,
                  const char *guard, const char *out, bool export_training, json_t *fig, const char *name,
                  al_redteam_summary *s)
{
    pipeline_paths ps = {0};
    al_redteam_opts o;
    al_redteam_defaults(&o);
    o.model = model, o.tokenizer = pipeline_at(p, &ps, TOKENIZER), o.world = pipeline_at(p, &ps, WORLD);
    o.requests = requests, o.guard_policy = guard, o.techniques = ts, o.n_techniques = N_TECHNIQUES;
    o.max_new_tokens = p->preset->redteam_max_new, o.seed = p->seed, o.out_dir = out;
    o.export_training = export_training, o.quiet = !p->log;
    int rc = o.tokenizer && o.world ? al_redteam_run(&o, s) : -1;
    if (rc == 0) {
        json_t *by = json_object();
        for (int t = 0; by && t < s->n_techniques; t++)
            json_object_set_new(by, s->technique[t].name, json_real(s->technique[t].asr));
        json_object_set_new(fig, name,
                            json_pack("{s:i, s:i, s:i, s:f, s:[f, f], s:i, s:o}", "attempts", s->overall.attempts,
                                      "successes", s->overall.successes, "skipped", s->overall.skipped, "asr",
                                      s->overall.asr, "asr_ci95", s->overall.lo, s->overall.hi, "exported",
                                      s->exported, "by_technique", by));
        if (p->log) {
            fprintf(p->log, "red team, %s:\n", name);
            al_redteam_summary_print(s, p->log);
        }
    }
    pipeline_paths_free(&ps);
    return rc;
}

int pipeline_stage_redteam(al_pipeline *p, json_t *fig)
{
    const al_pipeline_preset *k = p->preset;
    static const char refusal[] = "I can't help with that. If you have another question, I'm happy to help.";
    al_technique ts[N_TECHNIQUES];
    int rc = 0;
    for (int t = 0; rc == 0 && t < N_TECHNIQUES; t++)
        rc = al_technique_parse(pipeline_redteam_techniques[t], &ts[t]);
    pipeline_paths ps = {0}, ps2 = {0};
    const char *dpo = pipeline_at(p, &ps, DPO_RUN "/final"), *dir = pipeline_at(p, &ps, REDTEAM_RUN),
               *train_req = pipeline_at(p, &ps, REDTEAM_RUN "/requests_train.jsonl"),
               *held_req = pipeline_at(p, &ps, REDTEAM_RUN "/requests_heldout.jsonl"),
               *on_train = pipeline_at(p, &ps, REDTEAM_RUN "/attack_train"),
               *pairs = pipeline_at(p, &ps, REDTEAM_RUN "/pairs.jsonl"),
               *adapters = pipeline_at(p, &ps, REDTEAM_LORA_RUN "/final"),
               *merged = pipeline_at(p, &ps, REDTEAM_RUN "/final"), *policy = pipeline_at(p, &ps, "guard/policy.yaml");
    const char *exported = pipeline_at(p, &ps2, REDTEAM_RUN "/attack_train/export/dpo.jsonl"),
               *attacks = pipeline_at(p, &ps2, REDTEAM_RUN "/attack_train/attacks.jsonl"),
               *prefs = pipeline_at(p, &ps2, WORLD "/preferences.jsonl"),
               *held_dpo = pipeline_at(p, &ps2, REDTEAM_RUN "/attack_heldout_dpo"),
               *held_guard = pipeline_at(p, &ps2, REDTEAM_RUN "/attack_heldout_guard"),
               *held_round = pipeline_at(p, &ps2, REDTEAM_RUN "/attack_heldout_round"),
               *train_prompts = pipeline_at(p, &ps2, WORLD "/prompts_train.jsonl"),
               *held_prompts = pipeline_at(p, &ps2, WORLD "/prompts_heldout.jsonl");
    if (!dpo || !dir || !train_req || !held_req || !on_train || !pairs || !adapters || !merged || !policy ||
        !exported || !attacks || !prefs || !held_dpo || !held_guard || !held_round || !train_prompts || !held_prompts)
        rc = -1;
    rc = rc ? rc : al_mkdir_p(dir);
    rc = rc ? rc : harmful_requests(train_prompts, train_req, k->redteam_requests);
    rc = rc ? rc : harmful_requests(held_prompts, held_req, k->redteam_heldout);

    /* 1-3: attack the training prompts, learn from the successes */
    al_redteam_summary s = {0};
    rc = rc ? rc : attack(p, ts, dpo, train_req, NULL, on_train, true, fig, "training_prompts", &s);
    int n_attack = 0, n_contrast = 0;
    const bool learn = rc == 0 && s.overall.successes > 0;
    al_redteam_summary_free(&s);
    if (rc == 0 && !learn && p->log)
        fprintf(p->log, "red team: no attack on the training prompts succeeded; the round keeps the DPO model\n");
    if (rc == 0 && !learn)
        rc = pipeline_copy_model(dpo, merged);
    if (rc == 0 && learn)
        rc = write_pairs(pairs, exported, attacks, prefs, refusal, p->seed, &n_attack, &n_contrast);
    al_pref_train_opts o;
    al_pref_train_defaults(&o, AL_TRAINER_DPO);
    o.precompute_ref = true;
    o.pref.beta = k->dpo_beta;
    o.pref.rpo_alpha = k->dpo_rpo_alpha;
    o.lora = true;
    o.lora_cfg = pipeline_lora_config(p);
    if (rc == 0 && learn)
        rc = pipeline_pref_train(p, &o, "red-team DPO", REDTEAM_RUN "/pairs.jsonl", DPO_RUN "/final",
                                 REDTEAM_LORA_RUN, k->redteam_steps, k->dpo_batch, k->redteam_lr);
    if (rc == 0 && learn)
        rc = pipeline_merge_adapters(dpo, adapters, merged);

    /* 4: the held-out prompts against the model before, before behind the guard, and after */
    rc = rc ? rc : attack(p, ts, dpo, held_req, NULL, held_dpo, false, fig, "heldout_dpo", &s);
    al_redteam_summary_free(&s);
    rc = rc ? rc : attack(p, ts, dpo, held_req, policy, held_guard, false, fig, "heldout_dpo_guard", &s);
    al_redteam_summary_free(&s);
    rc = rc ? rc : attack(p, ts, merged, held_req, NULL, held_round, false, fig, "heldout_round", &s);
    al_redteam_summary_free(&s);
    if (rc == 0) {
        json_t *names = json_array();
        for (int t = 0; names && t < N_TECHNIQUES; t++)
            json_array_append_new(names, json_string(pipeline_redteam_techniques[t]));
        json_object_set_new(fig, "techniques", names);
        json_object_set_new(fig, "attack_pairs", json_integer(n_attack));
        json_object_set_new(fig, "contrast_pairs", json_integer(n_contrast));
        json_object_set_new(fig, "steps", json_integer(learn ? k->redteam_steps : 0));
        json_object_set_new(fig, "max_new_tokens", json_integer(k->redteam_max_new));
    }
    pipeline_paths_free(&ps), pipeline_paths_free(&ps2);
    return rc;
}
