/* align rm: reward models — train one on preference pairs, score answers with it. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "align/train.h"
#include "args.h"
#include "commands.h"
#include "pref_cli.h"

static const char *usage_text =
    "usage: align rm train --data FILE -m MODEL -z TOKENIZER --out DIR [options]\n"
    "       align rm score -m RM_DIR -z TOKENIZER --data FILE [--out FILE]\n"
    "\n"
    "A reward model is MODEL plus a score head read at each sequence's last token, trained\n"
    "with the Bradley-Terry loss -log sigmoid(r_chosen - r_rejected - margin) (TRL's\n"
    "RewardTrainer). It is saved as an HF LlamaForSequenceClassification (score.weight;\n"
    "the LM head is kept too).\n"
    "\n"
    "train: FILE holds pairs in TRL's formats ({\"prompt\", \"chosen\", \"rejected\"}, strings or\n"
    "  message lists; without \"prompt\" the shared prefix is the prompt, as in HH-RLHF;\n"
    "  optional \"margin\" and soft \"label\"). Metrics: loss, accuracy, margin, mean_reward,\n"
    "  min_reward, max_reward, and their eval_ forms, in DIR/metrics.jsonl.\n"
    "  --center-rewards C     add C * mean((r_chosen + r_rejected)^2) (TRL's\n"
    "                         center_rewards_coefficient; 0 = off)\n"
    "  --data FILE  --val-data FILE  --held-out F (0.1)  --max-examples N  --skip-bad-lines\n"
    "  --chat-template chatml|llama2|FILE   -m MODEL  -z TOKENIZER  --out DIR\n"
    "  --batch-size B (4 pairs)  --seq-len T (256)  --grad-accum K  --epochs N (1)  --steps N\n"
    "  runs data-parallel under mpirun -np N, K/N micro-batches per rank (K >= N for a\n"
    "  speedup): docs/distributed.md\n"
    "  --lr X (5e-5)  --schedule linear  --warmup N  --weight-decay X  --grad-clip X (1.0)\n"
    "  --eval-every N (50)  --eval-batches N (20)  --save-every N (100)  --keep N (2)  --seed S\n"
    "  --config FILE  --resume DIR  --quiet\n"
    "\n"
    "score: FILE holds pairs (one line out per pair: score_chosen, score_rejected) or answers\n"
    "  ({\"prompt\", \"completion\"}, {\"text\"} or {\"messages\"}: one \"score\" per line), in\n"
    "  file order, as JSON lines on stdout or in --out FILE.\n"
    "  --batch-size B (8)  --seq-len T (the model's)  --chat-template T (chatml)\n"
    "\n"
    "example:\n"
    "  align rm train --data hh.jsonl.gz -m runs/sft/final -z tok.json --out runs/rm --epochs 2\n"
    "  align rm score -m runs/rm/final -z tok.json --data answers.jsonl > scores.jsonl\n";

typedef struct score_opts {
    const char *model, *tokenizer, *data, *out, *chat_template;
    int batch_size, seq_len;
} score_opts;

/* Token sequences of the records of an SFT-format file (every turn or the whole text). */
static int answer_sequences(const score_opts *o, const al_tokenizer *tok, const al_chat_template *t, al_ints **seqs,
                            int *n)
{
    al_sft_dataset d;
    if (al_sft_load(&d, o->data, NULL))
        return -1;
    *seqs = calloc((size_t)d.n, sizeof **seqs);
    int rc = *seqs ? 0 : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < d.n; i++) {
        const al_sft_example *e = &d.ex[i];
        al_ints mask = {0};
        if (e->text)
            rc = al_tokenizer_encode(tok, e->text, strlen(e->text), al_tokenizer_bos(tok) >= 0,
                                     al_tokenizer_eos(tok) >= 0, &(*seqs)[i]);
        else if (e->prompt)
            rc = al_chat_tokenize_pc(tok, e->prompt, e->completion, true, &(*seqs)[i], &mask);
        else
            rc = al_chat_tokenize(t, tok, e->messages, e->n_messages, AL_MASK_ALL, &(*seqs)[i], &mask);
        al_ints_free(&mask);
        if (rc)
            al_fail_prefix("%s:%ld", o->data, e->line);
    }
    *n = d.n;
    al_sft_free(&d);
    return rc;
}

/* Pairs (or KTO examples): two sequences per record, chosen then rejected. */
static int pair_sequences(const score_opts *o, const al_pref_dataset *d, const al_tokenizer *tok,
                          const al_chat_template *t, int max_len, al_ints **seqs)
{
    *seqs = calloc(2 * (size_t)d->n, sizeof **seqs);
    if (!*seqs)
        return al_fail("out of memory");
    for (int i = 0; i < d->n; i++) {
        al_pref_tokens p;
        if (al_pref_tokenize(&d->ex[i], t, tok, max_len, &p))
            return al_fail_prefix("%s:%ld", o->data, d->ex[i].line);
        (*seqs)[2 * i] = p.chosen;
        (*seqs)[2 * i + 1] = p.rejected;
        al_ints_free(&p.chosen_mask);
        al_ints_free(&p.rejected_mask);
    }
    return 0;
}

static int write_scores(const score_opts *o, const float *r, int n, bool pairs)
{
    al_atomic_file f = {0};
    FILE *fp = stdout;
    if (o->out) {
        if (al_atomic_open(&f, o->out))
            return -1;
        fp = f.fp;
    }
    int correct = 0;
    for (int i = 0; i < n; i++) {
        if (pairs) {
            fprintf(fp, "{\"index\": %d, \"score_chosen\": %.8g, \"score_rejected\": %.8g}\n", i,
                    (double)r[2 * i], (double)r[2 * i + 1]);
            correct += r[2 * i] > r[2 * i + 1];
        } else {
            fprintf(fp, "{\"index\": %d, \"score\": %.8g}\n", i, (double)r[i]);
        }
    }
    if (pairs)
        fprintf(stderr, "align rm score: %d pairs, chosen scored higher in %d (accuracy %.4f)\n", n, correct,
                n ? (double)correct / n : 0.0);
    if (!o->out)
        return fflush(stdout) ? al_fail("writing the scores failed") : 0;
    return al_atomic_commit(&f);
}

static int rm_score(const score_opts *o)
{
    al_model m = {0};
    al_tokenizer *tok = NULL;
    al_chat_template *t = NULL;
    al_pref_dataset d = {0};
    al_ints *seqs = NULL;
    float *r = NULL;
    int n_seqs = 0, n_records = 0, rc = -1;
    bool builtin = !strcmp(o->chat_template, "chatml") || !strcmp(o->chat_template, "llama2");
    if (al_model_load(&m, o->model) || al_tokenizer_load(&tok, o->tokenizer) ||
        (builtin ? al_chat_template_builtin(&t, o->chat_template) : al_chat_template_load(&t, o->chat_template)))
        goto done;
    if (m.cfg.n_labels < 1) {
        al_fail("%s: not a reward model (no score head; train one with align rm train)", o->model);
        goto done;
    }
    int T = o->seq_len > 0 && o->seq_len < m.cfg.seq_len ? o->seq_len : m.cfg.seq_len;
    /* pairs if the first record is one; otherwise answers */
    al_sft_load_opts first = {.max_examples = 1};
    bool pairs = al_pref_load(&d, o->data, &first) == 0;
    al_pref_free(&d);
    al_clear_error();
    if (pairs) {
        if (al_pref_load(&d, o->data, NULL) || pair_sequences(o, &d, tok, t, T, &seqs))
            goto done;
        n_records = d.n;
        n_seqs = 2 * d.n;
    } else {
        if (answer_sequences(o, tok, t, &seqs, &n_seqs))
            goto done;
        n_records = n_seqs;
    }
    r = malloc((size_t)(n_seqs ? n_seqs : 1) * sizeof *r);
    if (!r) {
        al_fail("out of memory");
        goto done;
    }
    if (al_reward_score(&m, seqs, n_seqs, o->batch_size, T, r) || write_scores(o, r, n_records, pairs))
        goto done;
    rc = 0;
done:
    for (int i = 0; seqs && i < n_seqs; i++)
        al_ints_free(&seqs[i]);
    free(seqs);
    free(r);
    al_pref_free(&d);
    al_chat_template_free(t);
    al_tokenizer_free(tok);
    al_model_free(&m);
    return rc;
}

static int cmd_rm_score(int argc, char **argv)
{
    score_opts o = {.chat_template = "chatml", .batch_size = 8};
    cli_args a;
    cli_args_init(&a, "align rm score", argc, argv);
    const char *arg;
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (cli_opt(&a, arg, "-m", "--model")) {
            o.model = a.value;
        } else if (cli_opt(&a, arg, "-z", "--tokenizer")) {
            o.tokenizer = a.value;
        } else if (cli_opt(&a, arg, NULL, "--data")) {
            o.data = a.value;
        } else if (cli_opt(&a, arg, NULL, "--out")) {
            o.out = a.value;
        } else if (cli_opt(&a, arg, NULL, "--chat-template")) {
            o.chat_template = a.value;
        } else if (cli_opt(&a, arg, NULL, "--batch-size")) {
            o.batch_size = cli_int(&a, 1, 1 << 16);
        } else if (cli_opt(&a, arg, NULL, "--seq-len")) {
            o.seq_len = cli_int(&a, 1, 1 << 20);
        } else {
            return cli_unknown(&a, arg);
        }
    }
    if (a.error)
        return 2;
    if (!o.model || !o.tokenizer || !o.data) {
        fprintf(stderr, "align rm score: -m RM, -z TOKENIZER and --data are required (see --help)\n");
        return 2;
    }
    if (rm_score(&o)) {
        fprintf(stderr, "align rm score: %s\n", al_errmsg());
        return 1;
    }
    return 0;
}

int cmd_rm(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "train"))
        return cli_run_pref("align rm train", AL_TRAINER_RM, argc - 1, argv + 1, usage_text);
    if (argc >= 2 && !strcmp(argv[1], "score"))
        return cmd_rm_score(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(usage_text, stdout);
        return 0;
    }
    fprintf(stderr, "align rm: expected 'train' or 'score'\n\n%s", usage_text);
    return 2;
}
