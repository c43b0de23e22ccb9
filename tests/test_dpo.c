/* The preference trainers end to end on stories260K (read in place from ../shared):
 * DPO on the synthetic task (the acceptance), the reference in its three forms,
 * every loss through the trainer, KTO, reward models, the CLI, and kill + resume. */
#include <jansson.h>

#include "align/train.h"
#include "test.h"

static const char *dir;
static char model_path[1024], tok_path[1024];

static const char *path_in(const char *name)
{
    static char buf[8][1400];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 1400, "%s/%s", dir, name);
    return p;
}

/* The metrics line of `step` holding `key` (the train line, or with eval the eval line). */
static double metric(const char *run, long step, const char *key)
{
    char path[1500];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "r");
    double v = NAN;
    char line[8192];
    while (f && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *s = json_object_get(j, "step"), *x = json_object_get(j, key);
        if (s && json_integer_value(s) == step && x)
            v = json_number_value(x);
        json_decref(j);
    }
    if (f)
        fclose(f);
    return v;
}

/* Mean NLL per answer token of prompt/completion records (the held-out SFT loss). */
static double sft_loss(const char *model, const char *data)
{
    al_model m;
    al_tokenizer *tok;
    al_sft_dataset d;
    if (al_model_load(&m, model) || al_tokenizer_load(&tok, tok_path) || al_sft_load(&d, data, NULL))
        return NAN;
    const int T = 48;
    al_train_ctx *ctx = al_train_ctx_new(&m, 1, T);
    int tokens[48], targets[48];
    double sum = 0;
    long count = 0;
    for (int i = 0; i < d.n; i++) {
        al_ints ids = {0}, mask = {0};
        al_chat_tokenize_pc(tok, d.ex[i].prompt, d.ex[i].completion, true, &ids, &mask);
        for (int j = 0; j < T; j++) {
            tokens[j] = j < ids.n - 1 ? ids.v[j] : 0;
            targets[j] = j < ids.n - 1 && mask.v[j + 1] ? ids.v[j + 1] : -1;
        }
        al_forward(ctx, tokens, targets, NULL, NULL);
        for (int j = 0; j < T; j++)
            if (targets[j] >= 0)
                sum -= al_ctx_logp(ctx)[j], count++;
        al_ints_free(&ids);
        al_ints_free(&mask);
    }
    al_train_ctx_free(ctx);
    al_sft_free(&d);
    al_tokenizer_free(tok);
    al_model_free(&m);
    return sum / (double)count;
}

static al_pref_train_opts dpo_opts(const char *data, const char *model, const char *out)
{
    al_pref_train_opts o;
    al_pref_train_defaults(&o, AL_TRAINER_DPO);
    o.data = data;
    o.model = model;
    o.tokenizer = tok_path;
    o.out_dir = out;
    o.batch_size = 8;
    o.seq_len = 40;
    o.quiet = true;
    o.save_every = 0;
    o.eval_every = 0;
    return o;
}

/* The acceptance: SFT on demonstrations that are helpful and rude alike, then DPO
 * on helpful-over-rude pairs: held-out rewards/accuracies >= 0.95, held-out SFT loss up
 * by at most 5%. */
static void test_synthetic_task(void)
{
    CHECK_OK(al_synth_pref_write(path_in("task"), 11, 300, 60));
    al_sft_opts s;
    al_sft_defaults(&s);
    s.data = path_in("task/sft.jsonl");
    s.model = model_path;
    s.tokenizer = tok_path;
    s.out_dir = path_in("sft");
    s.batch_size = 16;
    s.seq_len = 40;
    s.epochs = 2;
    s.sched.peak_lr = 2e-3f;
    s.eval_every = 0;
    s.save_every = 0;
    s.quiet = true;
    CHECK_OK(al_sft_train(&s));
    al_pref_train_opts o = dpo_opts(path_in("task/pref.jsonl"), path_in("sft/final"), path_in("dpo"));
    o.val_data = path_in("task/pref_heldout.jsonl");
    o.sched.peak_lr = 5e-5f;
    o.steps = 30;
    o.eval_every = 30;
    o.precompute_ref = true;
    CHECK_OK(al_pref_train(&o));
    double acc0 = metric(path_in("dpo"), 0, "eval_rewards/accuracies");
    double acc = metric(path_in("dpo"), 30, "eval_rewards/accuracies");
    double before = sft_loss(path_in("sft/final"), path_in("task/sft_heldout.jsonl"));
    double after = sft_loss(path_in("dpo/final"), path_in("task/sft_heldout.jsonl"));
    printf("synthetic task: held-out rewards/accuracies %.3f -> %.3f; held-out SFT loss %.4f -> %.4f (%+.1f%%)\n", acc0,
           acc, before, after, 100 * (after / before - 1));
    CHECKF(acc >= 0.95, "held-out rewards/accuracies %.3f", acc);
    CHECKF(after <= 1.05 * before, "held-out SFT loss %.4f -> %.4f", before, after);
    CHECK(acc0 == 0); /* policy == reference: every margin is exactly 0 */
}

/* At step 1 the policy is the reference: loss ln 2, rewards 0, for every way of getting the
 * reference.  Cached and on-the-fly reference log-probs train the same model. */
static void test_reference_forms(void)
{
    char data[1400];
    snprintf(data, sizeof data, "%s", path_in("task/pref.jsonl"));
    const char *runs[] = {"ref_cached", "ref_model", "ref_lora"};
    for (int k = 0; k < 3; k++) {
        al_pref_train_opts o = dpo_opts(data, model_path, path_in(runs[k]));
        o.steps = 3;
        o.sched.peak_lr = 1e-3f;
        o.precompute_ref = k == 0;
        o.lora = k == 2;
        CHECK_OK(al_pref_train(&o));
        double loss = metric(path_in(runs[k]), 1, "loss");
        CHECKF(fabs(loss - log(2.0)) < 1e-6, "%s: step-1 loss %.9f", runs[k], loss);
        /* cached log-probs come from other batch layouts: equal up to float rounding */
        double margins = metric(path_in(runs[k]), 1, "rewards/margins");
        CHECKF(fabs(margins) < 1e-5, "%s: step-1 margins %.3g", runs[k], margins);
        CHECKF(metric(path_in(runs[k]), 3, "rewards/margins") > 0, "%s: margins after 3 steps", runs[k]);
    }
    char a[1500], b[1500];
    snprintf(a, sizeof a, "%s/final", path_in("ref_cached"));
    snprintf(b, sizeof b, "%s/final", path_in("ref_model"));
    al_model ma, mb;
    CHECK_OK(al_model_load(&ma, a));
    CHECK_OK(al_model_load(&mb, b));
    double worst = 0;
    for (size_t i = 0; i < ma.n_params; i++)
        worst = fmax(worst, fabs((double)ma.params[i] - mb.params[i]));
    /* AdamW turns rounding-level gradient differences on near-zero gradients into steps of
     * up to lr, so the weights are compared loosely and the losses tightly */
    CHECKF(worst < 1e-3, "cached vs on-the-fly reference: weights differ by %g", worst);
    for (long s = 1; s <= 3; s++)
        CHECKF(fabs(metric(path_in("ref_cached"), s, "loss") - metric(path_in("ref_model"), s, "loss")) < 1e-6,
               "step %ld: cached and on-the-fly losses differ", s);
    al_model_free(&ma);
    al_model_free(&mb);
    CHECK(al_file_exists(path_in("ref_cached/ref_logps.bin")));
}

/* Every loss of the family trains through the trainer (a mix too). */
static void test_every_loss(void)
{
    const char *losses[] = {"sigmoid", "ipo", "hinge", "robust", "bco_pair", "sppo_hard", "nca_pair",
                            "apo_zero", "apo_down", "simpo", "cpo", "orpo", "sigmoid,bco_pair"};
    for (size_t k = 0; k < sizeof losses / sizeof losses[0]; k++) {
        char run[64];
        snprintf(run, sizeof run, "loss_%zu", k);
        al_pref_train_opts o = dpo_opts(path_in("task/pref.jsonl"), model_path, path_in(run));
        o.loss = losses[k];
        o.loss_weights = k == 12 ? "1,0.5" : NULL;
        o.steps = 2;
        o.max_examples = 32;
        o.precompute_ref = true;
        o.pref.label_smoothing = !strcmp(losses[k], "robust") ? 0.1 : 0;
        int rc = al_pref_train(&o);
        CHECKF(rc == 0, "%s: %s", losses[k], al_errmsg());
        double l = metric(path_in(run), 2, "loss");
        CHECKF(isfinite(l), "%s: loss %g", losses[k], l);
    }
}

/* KTO: unpaired examples (the pairs' answers, labelled) with a KL reference point. */
static void test_kto(void)
{
    al_pref_dataset d;
    CHECK_OK(al_pref_load(&d, path_in("task/pref.jsonl"), NULL));
    FILE *f = fopen(path_in("kto.jsonl"), "w");
    for (int i = 0; i < d.n; i++) {
        json_t *j = json_pack("{s:s,s:s,s:b}", "prompt", d.ex[i].prompt, "completion",
                              i % 2 ? d.ex[i].rejected : d.ex[i].chosen, "label", !(i % 2));
        char *s = json_dumps(j, JSON_COMPACT);
        fprintf(f, "%s\n", s);
        free(s);
        json_decref(j);
    }
    fclose(f);
    al_pref_free(&d);
    al_pref_train_opts o = dpo_opts(path_in("kto.jsonl"), path_in("sft/final"), path_in("kto"));
    o.trainer = AL_TRAINER_KTO;
    o.loss = "kto";
    o.steps = 20;
    o.eval_every = 20;
    o.sched.peak_lr = 5e-5f;
    o.precompute_ref = true;
    CHECK_OK(al_pref_train(&o));
    double l1 = metric(path_in("kto"), 1, "loss"), kl = metric(path_in("kto"), 1, "kl");
    CHECKF(fabs(l1 - 0.5) < 1e-6, "KTO step-1 loss %.9f (policy == reference: 1 - sigmoid(0) = 0.5)", l1);
    CHECKF(fabs(kl) < 1e-5, "KTO step-1 kl %g (policy == reference)", kl);
    double rc = metric(path_in("kto"), 20, "eval_rewards/chosen"), rr = metric(path_in("kto"), 20, "eval_rewards/rejected");
    CHECKF(rc > rr, "KTO eval rewards: desirable %g, undesirable %g", rc, rr);
}

static void test_reward_model(void)
{
    al_pref_train_opts o;
    al_pref_train_defaults(&o, AL_TRAINER_RM);
    o.data = path_in("task/pref.jsonl");
    o.val_data = path_in("task/pref_heldout.jsonl");
    o.model = model_path;
    o.tokenizer = tok_path;
    o.out_dir = path_in("rm");
    o.batch_size = 8;
    o.seq_len = 40;
    o.steps = 30;
    o.sched.peak_lr = 1e-3f;
    o.eval_every = 30;
    o.save_every = 0;
    o.center_rewards = 0.01;
    o.quiet = true;
    CHECK_OK(al_pref_train(&o));
    double acc = metric(path_in("rm"), 30, "eval_accuracy");
    CHECKF(acc >= 0.95, "reward model held-out accuracy %.3f", acc);
    CHECK(isfinite(metric(path_in("rm"), 30, "eval_margin")) && isfinite(metric(path_in("rm"), 30, "max_reward")));
    /* saved as a sequence classifier; loading gives the same rewards */
    al_buf cfg = {0};
    CHECK_OK(al_read_file(path_in("rm/final/config.json"), &cfg));
    CHECK(cfg.data && strstr(cfg.data, "LlamaForSequenceClassification") && strstr(cfg.data, "\"id2label\""));
    al_buf_free(&cfg);
    al_model m;
    CHECK_OK(al_model_load(&m, path_in("rm/final")));
    CHECK(m.cfg.n_labels == 1);
    al_tokenizer *tok;
    CHECK_OK(al_tokenizer_load(&tok, tok_path));
    al_ints seqs[2] = {{0}, {0}}, mask = {0};
    al_chat_tokenize_pc(tok, "Lily asks: can I have the red kite?", " Here is the red kite, Lily.", true, &seqs[0],
                        &mask);
    al_ints_free(&mask);
    al_chat_tokenize_pc(tok, "Lily asks: can I have the red kite?", " No, Lily. Go away.", true, &seqs[1], &mask);
    float r[2], r1[2];
    CHECK_OK(al_reward_score(&m, seqs, 2, 2, 40, r));
    CHECK_OK(al_reward_score(&m, seqs, 2, 1, 40, r1)); /* batch size does not matter */
    CHECK(r[0] > r[1] && fabsf(r[0] - r1[0]) < 1e-5f && fabsf(r[1] - r1[1]) < 1e-5f);
    /* the CLI scores pairs and answers */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s rm score -m %s -z %s --data %s --out %s 2>/dev/null", ALIGN_BINARY,
             path_in("rm/final"), tok_path, path_in("task/pref_heldout.jsonl"), path_in("scores.jsonl"));
    CHECK(system(cmd) == 0);
    al_buf out = {0};
    CHECK_OK(al_read_file(path_in("scores.jsonl"), &out));
    int lines = 0, right = 0;
    for (char *p = out.data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        double c, w;
        if (sscanf(p, "{\"index\": %*d, \"score_chosen\": %lf, \"score_rejected\": %lf", &c, &w) == 2)
            lines++, right += c > w;
    }
    CHECKF(lines == 60 && right >= 57, "%d scored pairs, %d right", lines, right);
    al_buf_free(&out);
    al_ints_free(&mask);
    al_ints_free(&seqs[0]);
    al_ints_free(&seqs[1]);
    al_tokenizer_free(tok);
    al_model_free(&m);
}

/* A DPO run killed at a checkpoint and resumed ends bit-identical to an uninterrupted one. */
static void test_kill_resume(void)
{
    char cmd[4096];
    const char *common = "--batch-size 8 --seq-len 40 --steps 40 --save-every 2 --eval-every 0 --lr 1e-4 --quiet";
    snprintf(cmd, sizeof cmd, "%s dpo --data %s -m %s -z %s --out %s %s --precompute-ref", ALIGN_BINARY,
             path_in("task/pref.jsonl"), path_in("sft/final"), tok_path, path_in("whole"), common);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "exec %s dpo --data %s -m %s -z %s --out %s %s --precompute-ref", ALIGN_BINARY,
             path_in("task/pref.jsonl"), path_in("sft/final"), tok_path, path_in("cut"), common);
    CHECKF(kill_at_checkpoint(cmd, path_in("cut"), 6, 1000), "the run ended before it could be killed");
    snprintf(cmd, sizeof cmd, "%s dpo --resume %s --quiet", ALIGN_BINARY, path_in("cut"));
    CHECK(system(cmd) == 0);
    al_model a, b;
    CHECK_OK(al_model_load(&a, path_in("whole/final")));
    CHECK_OK(al_model_load(&b, path_in("cut/final")));
    CHECK(a.n_params == b.n_params && !memcmp(a.params, b.params, a.n_params * sizeof(float)));
    for (long s = 1; s <= 40; s++)
        CHECKF(metric(path_in("whole"), s, "loss") == metric(path_in("cut"), s, "loss"), "step %ld loss differs", s);
    al_model_free(&a);
    al_model_free(&b);
}

static void test_cli_errors(void)
{
    FILE *f = fopen(path_in("bad.jsonl"), "w");
    fputs("{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}\n{\"prompt\": \"a\", \"chosen\": \" b\"}\n", f);
    fclose(f);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s dpo --data %s -m %s -z %s --out %s --quiet 2>%s", ALIGN_BINARY, path_in("bad.jsonl"),
             model_path, tok_path, path_in("bad_run"), path_in("err.txt"));
    int rc = system(cmd);
    CHECK(rc != 0);
    al_buf err = {0};
    CHECK_OK(al_read_file(path_in("err.txt"), &err));
    CHECKF(err.data && strstr(err.data, "bad.jsonl:2:1: missing \"rejected\""), "message: %s", err.data);
    al_buf_free(&err);
    snprintf(cmd, sizeof cmd, "%s dpo --help >/dev/null && %s rm --help >/dev/null", ALIGN_BINARY, ALIGN_BINARY);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    dir = test_tmpdir("dpo");
    snprintf(model_path, sizeof model_path, "%s", shared_path("models/stories260K/stories260K.bin"));
    snprintf(tok_path, sizeof tok_path, "%s", shared_path("models/stories260K/tok512.bin"));
    test_synthetic_task();
    test_reference_forms();
    test_every_loss();
    test_kto();
    test_reward_model();
    test_kill_resume();
    test_cli_errors();
    if (test_failed == 0) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) {
        }
    }
    return test_report();
}
