/* Online RL speed on stories260K (bench/rl.sh puts a PyTorch loop beside it):
 *
 *  (a) rollout throughput: P prompts x G samples (default 8 x 4 = 32 sequences), N new
 *      tokens each (128), temperature 1, no stop token, through
 *        - the exact decoder as the RL trainer drives it: a mirror of src/rl/rollout.c
 *          (prefill each prompt once, copy its cache to its G sequences, then per step
 *          al_sample + al_logprob for every sequence, spread over the threads, and one
 *          al_decoder_step);
 *        - the same loop with the sampling on one thread, a timer around each phase
 *          (the tokens are checked equal to the first loop's);
 *        - both with the default decoder (al_decoder_set_exact off);
 *        - the decoder alone (exact and default), fed the tokens the first loop sampled,
 *          so no sampling: the forward pass's share;
 *        - al_generate (the default decoder and its parallel sampler), the G copies of
 *          each prompt as separate prompts.
 *      tokens/s = sequences x N / wall time of the whole rollout (decoder set-up and
 *      prefill included, as rollout_tokens_per_s in metrics.jsonl).  Median of --reps runs.
 *  (b) the training side of an RL step through the public API (training contexts, exact
 *      and default forwards, backward, AdamW, the exact KL/entropy pass), on the rows the
 *      trainer would build from (a)'s samples: where time/reference and time/training go.
 *  (c) one full RL step: `align grpo` (the CLI; --align PATH, default the `align` beside
 *      this binary) for --steps steps with fixed settings, and the mean of metrics.jsonl's
 *      time/generation, time/scoring, time/reference, time/training over the steps after
 *      the first.
 *
 * usage: bench_rl [--model BIN] [--tokenizer TOK] [--prompts JSONL] [--prompts-per-step P]
 *                 [--generations G] [--new N] [--reps R] [--no-step | --only-step]
 *                 [--align PATH] [--steps S] [--step-new N] [--reward SPEC] [--beta B]
 *                 [--keep DIR] [--profile exact|default|parts]
 * --profile exact|default runs only the RL loop with that decoder --reps times, --profile
 * parts only (b), for `perf record`.  Prints RESULT lines for bench/rl.sh. */
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "align/model.h"
#include "align/tokenizer.h"
#include "align/train.h"

#define SHARED_MODEL ALIGN_SHARED_DIR "/models/stories260K/stories260K.bin"
#define SHARED_TOK ALIGN_SHARED_DIR "/models/stories260K/tok512.bin"

static void die(const char *what)
{
    fprintf(stderr, "bench_rl: %s: %s\n", what, al_errmsg());
    exit(1);
}

/* ---- prompts ---- */

/* The first n "prompt" strings of a JSONL file, tokenized with BOS (as src/rl/prompts.c
 * does for plain-text prompts). */
static al_ints *load_prompts(const char *path, const al_tokenizer *tok, int n)
{
    al_buf b = {0};
    if (al_read_file(path, &b))
        die(path);
    al_ints *out = calloc((size_t)n, sizeof *out);
    int k = 0;
    for (char *line = b.data, *next; line && *line && k < n; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        json_t *rec = json_loads(line, 0, NULL);
        const char *s = json_string_value(json_object_get(rec, "prompt"));
        if (s && al_tokenizer_encode(tok, s, strlen(s), true, false, &out[k]) == 0)
            k++;
        json_decref(rec);
    }
    al_buf_free(&b);
    if (k < n) {
        fprintf(stderr, "bench_rl: %s: %d prompts, %d needed\n", path, k, n);
        exit(1);
    }
    return out;
}

/* ---- (a) rollouts ---- */

static uint64_t mix64(uint64_t x) /* as src/rl/rollout.c */
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

typedef struct phases {
    double setup;   /* the kept decoder reset, its weights refreshed (al_decoder_set_exact), samplers */
    double prefill; /* prompt tokens through the decoder, cache copies, logits spread */
    double step;    /* al_decoder_step of the sampled tokens */
    double sample;  /* logits row copy + al_sample */
    double logprob; /* al_logprob */
    double copy;    /* logits copied back to each sequence's row */
    double total;
} phases;

/* rl_rollout_sample's loop (src/rl/rollout.c) without stop tokens, timed by phase.
 * parallel: the per-sequence sampling runs in an omp loop (each sequence its own
 * sampler, so the tokens do not change).  ids[n][max_new] receives the samples. */
static void rollout(const al_model *m, const al_ints *ps, int P, int G, int max_new, bool exact, bool parallel,
                    uint64_t seed, int *ids, float *logp, phases *ph, al_decoder **keep)
{
    const int n = P * G, V = m->cfg.vocab_size;
    *ph = (phases){0};
    double t0 = al_now(), t;
    int max_len = 0;
    for (int p = 0; p < P; p++)
        max_len = ps[p].n + max_new > max_len ? ps[p].n + max_new : max_len;
    if (max_len > m->cfg.seq_len) {
        fprintf(stderr, "bench_rl: prompts + %d new tokens exceed the model's %d positions\n", max_new, m->cfg.seq_len);
        exit(2);
    }
    float *cur = malloc((size_t)n * V * sizeof *cur);
    float *scratch = malloc((size_t)n * 2 * V * sizeof *scratch); /* one pair of rows per sequence */
    int *seqs = malloc((size_t)n * sizeof *seqs), *toks = malloc((size_t)n * sizeof *toks);
    int *len = calloc((size_t)n, sizeof *len);
    al_sampler *samplers = calloc((size_t)n, sizeof *samplers);
    /* the trainer keeps its decoder from step to step (rl_decoder): reset, weights refreshed */
    if (*keep)
        al_decoder_reset(*keep, -1);
    else
        *keep = al_decoder_new(m, n, max_len);
    al_decoder *dec = *keep;
    if (!cur || !scratch || !seqs || !toks || !len || !samplers || !dec || al_decoder_set_exact(dec, exact))
        die("rollout set-up");
    al_sampler_opts so = al_sampler_defaults(); /* temperature 1, no truncation */
    for (int i = 0; i < n; i++) {
        so.seed = mix64(seed ^ mix64((uint64_t)i + 1));
        if (al_sampler_init(&samplers[i], V, &so))
            die("sampler");
    }
    t = al_now();
    ph->setup = t - t0;
    /* prefill: every prompt once, all advancing together, into its group's first sequence */
    int longest = 0;
    for (int p = 0; p < P; p++)
        longest = ps[p].n > longest ? ps[p].n : longest;
    for (int s = 0; s < longest; s++) {
        int k = 0;
        for (int p = 0; p < P; p++)
            if (s < ps[p].n)
                seqs[k] = p * G, toks[k] = ps[p].v[s], k++;
        const float *logits = al_decoder_step(dec, seqs, toks, k);
        if (!logits)
            die("prefill");
        for (int j = 0; j < k; j++) {
            int p = seqs[j] / G;
            if (s == ps[p].n - 1)
                memcpy(cur + (size_t)p * V, logits + (size_t)j * V, (size_t)V * sizeof(float));
        }
    }
    for (int p = 0; p < P; p++)
        for (int g = 1; g < G; g++)
            if (al_decoder_copy_seq(dec, p * G + g, p * G))
                die("copy_seq");
    for (int p = P - 1; p >= 0; p--)
        for (int g = G - 1; g >= 0; g--)
            memmove(cur + ((size_t)p * G + g) * V, cur + (size_t)p * V, (size_t)V * sizeof(float));
    double t1 = al_now();
    ph->prefill = t1 - t;
    if (parallel) {
        /* rollout.c's sample_loop without stop tokens (so every share stays the same):
         * one parallel region, each thread samples and decodes its share every step, the
         * same two barriers per step */
#pragma omp parallel
        {
            const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
            const int lo = (int)((long)n * tid / nt), hi = (int)((long)n * (tid + 1) / nt);
            float *sc = scratch + (size_t)lo * 2 * V;
            for (int step = 0; step < max_new; step++) {
#pragma omp barrier
                for (int i = lo; i < hi; i++) {
                    const float *row = cur + (size_t)i * V;
                    int *hist = ids + (size_t)i * max_new;
                    memcpy(sc, row, (size_t)V * sizeof(float));
                    int id = al_sample(&samplers[i], sc, hist, len[i]);
                    logp[(size_t)i * max_new + len[i]] = al_logprob(row, V, 1.0f, id, sc + V);
                    hist[len[i]++] = id;
                    toks[i] = id, seqs[i] = i;
                }
                if (step == max_new - 1)
                    break;
                const float *logits = al_decoder_step_rows(dec, seqs + lo, toks + lo, hi - lo, lo);
                if (!logits)
                    die("decoder step");
                memcpy(cur + (size_t)lo * V, logits, (size_t)(hi - lo) * V * sizeof(float));
#pragma omp barrier
            }
        }
        ph->step = al_now() - t1;
    }
    for (int step = 0; step < max_new && !parallel; step++) {
        const bool last = step == max_new - 1;
        t = al_now();
        for (int i = 0; i < n; i++) {
            const float *row = cur + (size_t)i * V;
            int *hist = ids + (size_t)i * max_new;
            memcpy(scratch, row, (size_t)V * sizeof(float)); /* al_sample rewrites its logits */
            int id = al_sample(&samplers[i], scratch, hist, len[i]);
            double t2 = al_now();
            ph->sample += t2 - t;
            logp[(size_t)i * max_new + len[i]] = al_logprob(row, V, 1.0f, id, scratch + V);
            t = al_now();
            ph->logprob += t - t2;
            hist[len[i]++] = id;
            toks[i] = id, seqs[i] = i;
        }
        if (last)
            break;
        const float *logits = al_decoder_step(dec, seqs, toks, n);
        if (!logits)
            die("decoder step");
        double t2 = al_now();
        ph->step += t2 - t;
        memcpy(cur, logits, (size_t)n * V * sizeof(float)); /* rows in sequence order: one block */
        ph->copy += al_now() - t2;
    }
    for (int i = 0; i < n; i++)
        al_sampler_free(&samplers[i]);
    free(cur), free(scratch), free(seqs), free(toks), free(len), free(samplers);
    ph->total = al_now() - t0;
}

/* The decoder alone: prefill all n sequences' prompts together, then max_new - 1 steps
 * of the given tokens (the sampled ones), no sampling.  Returns seconds; *steps_s the
 * time of the generation steps alone. */
static double decode_only(const al_model *m, const al_ints *ps, int P, int G, int max_new, bool exact, const int *ids,
                          double *steps_s)
{
    const int n = P * G;
    int max_len = 0;
    for (int p = 0; p < P; p++)
        max_len = ps[p].n + max_new > max_len ? ps[p].n + max_new : max_len;
    max_len = max_len > m->cfg.seq_len ? m->cfg.seq_len : max_len;
    double t0 = al_now();
    al_decoder *dec = al_decoder_new(m, n, max_len);
    int *seqs = malloc((size_t)n * sizeof *seqs), *toks = malloc((size_t)n * sizeof *toks);
    if (!dec || !seqs || !toks || al_decoder_set_exact(dec, exact))
        die("decoder");
    int longest = 0;
    for (int p = 0; p < P; p++)
        longest = ps[p].n > longest ? ps[p].n : longest;
    for (int s = 0; s < longest; s++) {
        int k = 0;
        for (int p = 0; p < P; p++)
            if (s < ps[p].n)
                seqs[k] = p * G, toks[k] = ps[p].v[s], k++;
        if (!al_decoder_step(dec, seqs, toks, k))
            die("prefill");
    }
    for (int p = 0; p < P; p++)
        for (int g = 1; g < G; g++)
            al_decoder_copy_seq(dec, p * G + g, p * G);
    double t1 = al_now();
    for (int step = 0; step + 1 < max_new; step++) {
        for (int i = 0; i < n; i++)
            seqs[i] = i, toks[i] = ids[(size_t)i * max_new + step];
        if (!al_decoder_step(dec, seqs, toks, n))
            die("decoder step");
    }
    double t2 = al_now();
    al_decoder_free(dec);
    free(seqs), free(toks);
    *steps_s = t2 - t1;
    return t2 - t0;
}

/* al_generate on the n = P x G prompts (each prompt G times), max_new tokens, temperature 1. */
static double generate(const al_model *m, const al_ints *ps, int P, int G, int max_new, long *tokens)
{
    const int n = P * G;
    al_ints *prompts = malloc((size_t)n * sizeof *prompts);
    al_gen_result *res = calloc((size_t)n, sizeof *res);
    for (int i = 0; i < n; i++)
        prompts[i] = ps[i / G];
    al_gen_opts o = {.max_new_tokens = max_new, .sampling = al_sampler_defaults()};
    o.sampling.seed = 7;
    double t0 = al_now();
    if (al_generate(m, NULL, prompts, n, &o, res, NULL, NULL))
        die("al_generate");
    double dt = al_now() - t0;
    *tokens = 0;
    for (int i = 0; i < n; i++)
        *tokens += res[i].ids.n;
    al_gen_results_free(res, n);
    free(res), free(prompts);
    return dt;
}

/* (b) the training-side parts of an RL step through the public API, on rows laid out as
 * src/rl/batch.c lays them out (prompt + the first C sampled tokens, targets on the
 * completion, T rounded up to 16) in micro-batches of `micro` rows as the trainer runs
 * them.  The trainer's time/reference is two training contexts made, a reference and a
 * policy forward per micro-batch (exact mode) and the exact KL + entropy of every
 * completion token; time/training a policy forward + backward per micro-batch and AdamW. */
typedef struct parts {
    double ctx_new, fwd_exact, fwd_default, stats, bwd, adamw;
} parts;

static double lap(double *t)
{
    double now = al_now(), d = now - *t;
    *t = now;
    return d;
}

static int step_parts(al_model *m, const al_ints *ps, int P, int G, int C, const int *ids, int max_new, int micro,
                      int reps, parts *out)
{
    const int n = P * G, V = m->cfg.vocab_size;
    int longest = 1;
    for (int i = 0; i < n; i++)
        longest = ps[i / G].n + C - 1 > longest ? ps[i / G].n + C - 1 : longest;
    int T = (longest + 15) / 16 * 16;
    T = T < m->cfg.seq_len ? T : m->cfg.seq_len;
    int *tokens = malloc((size_t)n * T * sizeof *tokens), *targets = malloc((size_t)n * T * sizeof *targets);
    float *dlogp = malloc((size_t)micro * T * sizeof *dlogp);
    long n_tok = 0;
    for (int i = 0; i < n; i++) {
        const al_ints *p = &ps[i / G];
        const int *c = ids + (size_t)i * max_new;
        for (int t = 0; t < T; t++) {
            tokens[(size_t)i * T + t] = t < p->n ? p->v[t] : t - p->n < C ? c[t - p->n] : 0;
            targets[(size_t)i * T + t] = t + 1 >= p->n && t + 1 - p->n < C ? c[t + 1 - p->n] : -1;
            n_tok += targets[(size_t)i * T + t] >= 0;
        }
    }
    al_adamw opt;
    al_adamw_opts ao = al_adamw_defaults();
    ao.weight_decay = 0;
    if (!tokens || !targets || !dlogp || al_model_alloc_grads(m) || al_adamw_init(&opt, m, &ao))
        die("step parts");
    *out = (parts){0};
    double sink = 0;
    for (int r = 0; r < reps + 1; r++) { /* the first round warms up */
        parts q = {0};
        double t = al_now();
        al_train_ctx *ctx = al_train_ctx_new(m, micro, T);
        if (!ctx || al_train_ctx_set_exact(ctx, true) || al_train_ctx_set_temperature(ctx, 1.0f))
            die("train ctx");
        q.ctx_new = lap(&t);
        for (int r0 = 0; r0 < n; r0 += micro) {
            if (al_forward(ctx, tokens + (size_t)r0 * T, targets + (size_t)r0 * T, NULL, NULL))
                die("forward");
            q.fwd_exact += lap(&t);
            const float *lg = al_ctx_logits(ctx);
            for (size_t k = 0; k < (size_t)micro * T; k++)
                if (targets[(size_t)r0 * T + k] >= 0) { /* another row stands in for the reference's */
                    double h, kl;
                    al_softmax_entropy_kl(lg + k * V, lg + ((k + 1) % ((size_t)micro * T)) * V, V, &h, &kl);
                    sink += h + kl;
                }
            q.stats += lap(&t);
        }
        al_model_zero_grads(m);
        t = al_now();
        for (int r0 = 0; r0 < n; r0 += micro) {
            if (al_forward(ctx, tokens + (size_t)r0 * T, targets + (size_t)r0 * T, NULL, NULL))
                die("forward");
            lap(&t); /* a forward again, already timed */
            for (size_t k = 0; k < (size_t)micro * T; k++)
                dlogp[k] = targets[(size_t)r0 * T + k] >= 0 ? -1.0f / (float)n_tok : 0.0f;
            al_backward(ctx, m, dlogp);
            q.bwd += lap(&t);
        }
        al_grad_clip(m->grads, m->n_params, 1.0);
        al_adamw_step(&opt, m->params, m->grads, 1e-5f);
        q.adamw = lap(&t);
        al_train_ctx_free(ctx);
        al_train_ctx *plain = al_train_ctx_new(m, micro, T);
        if (!plain)
            die("train ctx");
        t = al_now();
        for (int r0 = 0; r0 < n; r0 += micro)
            if (al_forward(plain, tokens + (size_t)r0 * T, targets + (size_t)r0 * T, NULL, NULL))
                die("forward");
        q.fwd_default = lap(&t);
        al_train_ctx_free(plain);
        if (r > 0)
            for (size_t f = 0; f < sizeof(parts) / sizeof(double); f++)
                ((double *)out)[f] += ((double *)&q)[f] / reps;
    }
    al_adamw_free(&opt);
    free(tokens), free(targets), free(dlogp);
    return sink != sink ? -1 : T; /* sink keeps the statistics from being optimized away */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- (c) align grpo ---- */

static int rm_tree(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int run_argv(char *const *argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "bench_rl: cannot run %s\n", argv[0]);
        _exit(127);
    }
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv)
{
    const char *model = SHARED_MODEL, *tok_path = SHARED_TOK, *prompts_path = NULL, *align_bin = NULL;
    const char *reward = "regex:happy|fun|smile", *keep = NULL, *profile = NULL;
    int P = 8, G = 4, max_new = 128, reps = 5, steps = 5, step_new = 64;
    double beta = 0.04;
    bool do_rollout = true, do_step = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
        if (OPT("--model"))
            model = v;
        else if (OPT("--tokenizer"))
            tok_path = v;
        else if (OPT("--prompts"))
            prompts_path = v;
        else if (OPT("--prompts-per-step"))
            P = atoi(v);
        else if (OPT("--generations"))
            G = atoi(v);
        else if (OPT("--new"))
            max_new = atoi(v);
        else if (OPT("--reps"))
            reps = atoi(v);
        else if (OPT("--align"))
            align_bin = v;
        else if (OPT("--steps"))
            steps = atoi(v);
        else if (OPT("--step-new"))
            step_new = atoi(v);
        else if (OPT("--reward"))
            reward = v;
        else if (OPT("--beta"))
            beta = atof(v);
        else if (OPT("--keep"))
            keep = v;
        else if (OPT("--profile")) /* only the RL loop (exact|default decoder) or the step parts, for perf */
            profile = v;
        else if (!strcmp(a, "--no-step"))
            do_step = false;
        else if (!strcmp(a, "--only-step"))
            do_rollout = false;
        else {
            fprintf(stderr, "bench_rl: unknown argument %s (see the head of bench/bench_rl.c)\n", a);
            return 2;
        }
#undef OPT
    }
    char default_prompts[PATH_MAX], here[PATH_MAX];
    if (!prompts_path) { /* bench/data/rl_prompts.jsonl beside this source file */
        snprintf(here, sizeof here, "%s", __FILE__);
        snprintf(default_prompts, sizeof default_prompts, "%s/data/rl_prompts.jsonl", dirname(here));
        prompts_path = default_prompts;
    }
    if (P < 1 || G < 1 || max_new < 2 || reps < 1 || steps < 2) {
        fprintf(stderr, "bench_rl: bad sizes\n");
        return 2;
    }
    const int threads = omp_get_max_threads(), n = P * G;
    al_tokenizer *tok;
    if (al_tokenizer_load(&tok, tok_path))
        die(tok_path);
    al_ints *ps = load_prompts(prompts_path, tok, P);
    int prompt_tokens = 0;
    for (int p = 0; p < P; p++)
        prompt_tokens += ps[p].n;

    if (profile) {
        al_model m;
        if (al_model_load(&m, model) || al_model_to_half_rope(&m))
            die(model);
        int *ids = malloc((size_t)n * max_new * sizeof *ids);
        float *logp = malloc((size_t)n * max_new * sizeof *logp);
        phases ph;
        double t0 = al_now();
        if (!strcmp(profile, "parts")) { /* the training-side parts alone */
            parts pt;
            al_decoder *keep = NULL;
            rollout(&m, ps, P, G, max_new, true, false, 1, ids, logp, &ph, &keep);
            al_decoder_free(keep);
            t0 = al_now();
            step_parts(&m, ps, P, G, step_new, ids, max_new, 8, reps, &pt);
            printf("parts: %.1f ms per round\n", 1e3 * (al_now() - t0) / (reps + 1));
        } else {
            al_decoder *keep = NULL;
            for (int r = 0; r < reps; r++)
                rollout(&m, ps, P, G, max_new, !strcmp(profile, "exact"), true, 1 + (uint64_t)r, ids, logp, &ph, &keep);
            al_decoder_free(keep);
            printf("%s decoder, RL loop: %.0f tok/s over %d runs\n", profile,
                   (double)reps * n * max_new / (al_now() - t0), reps);
        }
        free(ids), free(logp);
        al_model_free(&m);
        do_rollout = do_step = false;
    }
    if (do_rollout) {
        al_model m;
        if (al_model_load(&m, model) || al_model_to_half_rope(&m)) /* as the RL trainer loads its policy */
            die(model);
        printf("== rollouts: %d prompts (%d tokens in all) x %d samples = %d sequences, %d new tokens each, "
               "temperature 1, no stop token, %d threads; median of %d runs\n",
               P, prompt_tokens, G, n, max_new, threads, reps);
        int *ids = malloc((size_t)n * max_new * sizeof *ids), *ids2 = malloc((size_t)n * max_new * sizeof *ids2);
        float *logp = malloc((size_t)n * max_new * sizeof *logp), *logp2 = malloc((size_t)n * max_new * sizeof *logp2);
        double *tps_exact = calloc((size_t)reps, sizeof(double)), *tps_default = calloc((size_t)reps, sizeof(double));
        double *tps_par = calloc((size_t)reps, sizeof(double)), *tps_gen = calloc((size_t)reps, sizeof(double));
        double *tps_dec_exact = calloc((size_t)reps, sizeof(double)), *tps_dec_default = calloc((size_t)reps, sizeof(double));
        double *step_exact = calloc((size_t)reps, sizeof(double)), *step_default = calloc((size_t)reps, sizeof(double));
        phases *ph_exact = calloc((size_t)reps, sizeof(phases)), *ph_default = calloc((size_t)reps, sizeof(phases));
        const double tokens = (double)n * max_new;
        phases warm;
        al_decoder *keep[2][2] = {{NULL}}; /* [exact][parallel sampling], made by the warm-ups */
        for (int e = 0; e < 2; e++)
            for (int par = 0; par < 2; par++)
                rollout(&m, ps, P, G, max_new, e, par, 1, ids, logp, &warm, &keep[e][par]);
        bool same = true;
        for (int r = 0; r < reps; r++) {
            phases ph;
            rollout(&m, ps, P, G, max_new, true, true, 1 + (uint64_t)r, ids, logp, &ph, &keep[1][1]);
            tps_exact[r] = tokens / ph.total;
            rollout(&m, ps, P, G, max_new, true, false, 1 + (uint64_t)r, ids2, logp2, &ph_exact[r], &keep[1][0]);
            tps_par[r] = tokens / ph_exact[r].total; /* one thread samples: the phases can be timed */
            same = same && !memcmp(ids, ids2, (size_t)n * max_new * sizeof *ids) &&
                   !memcmp(logp, logp2, (size_t)n * max_new * sizeof *logp);
            rollout(&m, ps, P, G, max_new, false, true, 1 + (uint64_t)r, ids2, logp2, &ph, &keep[0][1]);
            tps_default[r] = tokens / ph.total;
            rollout(&m, ps, P, G, max_new, false, false, 1 + (uint64_t)r, ids2, logp2, &ph_default[r], &keep[0][0]);
            double s;
            tps_dec_exact[r] = tokens / decode_only(&m, ps, P, G, max_new, true, ids, &s);
            step_exact[r] = s;
            tps_dec_default[r] = tokens / decode_only(&m, ps, P, G, max_new, false, ids, &s);
            step_default[r] = s;
            long gen_tokens;
            double dt = generate(&m, ps, P, G, max_new, &gen_tokens);
            tps_gen[r] = (double)gen_tokens / dt;
        }
        for (int e = 0; e < 2; e++)
            for (int par = 0; par < 2; par++)
                al_decoder_free(keep[e][par]);
        /* each phase's median over the runs */
        phases pe = {0}, pd = {0};
        for (size_t f = 0; f < sizeof(phases) / sizeof(double); f++) {
            double *te = malloc((size_t)reps * sizeof *te), *td = malloc((size_t)reps * sizeof *td);
            for (int r = 0; r < reps; r++)
                te[r] = ((const double *)&ph_exact[r])[f], td[r] = ((const double *)&ph_default[r])[f];
            ((double *)&pe)[f] = median(te, reps), ((double *)&pd)[f] = median(td, reps);
            free(te), free(td);
        }
        double se = median(step_exact, reps), sd = median(step_default, reps);
        double me = median(tps_exact, reps), mp = median(tps_par, reps), md = median(tps_default, reps);
        double mde = median(tps_dec_exact, reps), mdd = median(tps_dec_default, reps), mg = median(tps_gen, reps);
        printf("RL rollout loop (src/rl/rollout.c), exact decoder:        %9.0f tok/s  (target >= 100,000)\n", me);
        printf("  same loop, sampling on one thread (same tokens: %s):     %9.0f tok/s\n", same ? "yes" : "NO", mp);
        printf("RL rollout loop, default decoder:                         %9.0f tok/s\n", md);
        printf("al_generate (default decoder, parallel sampling):         %9.0f tok/s\n", mg);
        printf("decoder alone, exact (sampled tokens fed back):           %9.0f tok/s\n", mde);
        printf("decoder alone, default:                                   %9.0f tok/s\n", mdd);
        const char *names[] = {"set-up (decoder reset, weights, samplers)", "prefill (prompts, cache copies)",
                               "al_decoder_step x (N - 1)", "al_sample (incl. row copy)", "al_logprob",
                               "logits copy-back"};
        double e[6] = {pe.setup, pe.prefill, pe.step, pe.sample, pe.logprob, pe.copy};
        double d[6] = {pd.setup, pd.prefill, pd.step, pd.sample, pd.logprob, pd.copy};
        printf("time per rollout of %d x %d tokens, sampling on one thread (ms, median run):  exact   default   "
               "(%% of exact)\n", n, max_new);
        for (int k = 0; k < 6; k++)
            printf("  %-44s %8.2f %8.2f   (%4.1f%%)\n", names[k], 1e3 * e[k], 1e3 * d[k], 100 * e[k] / pe.total);
        printf("  %-44s %8.2f %8.2f\n", "total", 1e3 * pe.total, 1e3 * pd.total);
        printf("  per decoder step of %d rows: exact %.1f us, default %.1f us (decoder alone: %.1f / %.1f us); "
               "per sampled token: al_sample %.2f us, al_logprob %.2f us (one thread)\n",
               n, 1e6 * pe.step / (max_new - 1), 1e6 * pd.step / (max_new - 1), 1e6 * se / (max_new - 1),
               1e6 * sd / (max_new - 1), 1e6 * pe.sample / tokens, 1e6 * pe.logprob / tokens);
        printf("RESULT rollout exact=%.1f exact_serial_sampling=%.1f default=%.1f generate=%.1f decoder_exact=%.1f "
               "decoder_default=%.1f step_ms_exact=%.4f step_ms_default=%.4f sample_ms=%.3f logprob_ms=%.3f "
               "prefill_ms=%.3f setup_ms=%.3f copy_ms=%.3f total_ms=%.3f\n",
               me, mp, md, mg, mde, mdd, 1e3 * pe.step / (max_new - 1), 1e3 * pd.step / (max_new - 1),
               1e3 * pe.sample, 1e3 * pe.logprob, 1e3 * pe.prefill, 1e3 * pe.setup, 1e3 * pe.copy, 1e3 * pe.total);
        if (step_new <= max_new) {
            parts pt;
            const int micro = 8; /* the trainer's rows per forward (src/rl/trainer.c) */
            int T = step_parts(&m, ps, P, G, step_new, ids, max_new, micro, reps, &pt);
            /* src/rl/passes.c with one minibatch: the scoring pass runs the reference alone, the
             * update's forward also gives the KL/entropy figures (contexts are reused) */
            double ref_est = pt.fwd_exact;
            double train_est = pt.fwd_exact + pt.stats + pt.bwd + pt.adamw;
            printf("== training-side parts of one RL step: %d rows of T = %d (prompt + %d sampled tokens), "
                   "micro-batches of %d, mean of %d runs (ms)\n", n, T, step_new, micro, reps);
            printf("  training context made (al_train_ctx_new, exact):       %8.2f\n", 1e3 * pt.ctx_new);
            printf("  forward of all rows, exact mode (training's kernels):    %8.2f\n", 1e3 * pt.fwd_exact);
            printf("  forward of all rows, default mode (sgemm):               %8.2f\n", 1e3 * pt.fwd_default);
            printf("  exact KL + entropy over every completion token (float):  %8.2f\n", 1e3 * pt.stats);
            printf("  backward of all rows:                                    %8.2f\n", 1e3 * pt.bwd);
            printf("  grad clip + AdamW:                                       %8.2f\n", 1e3 * pt.adamw);
            printf("  => time/reference ~ the reference's exact forward = %.1f ms; time/training ~ exact forward + "
                   "KL/entropy + backward + AdamW = %.1f ms\n", 1e3 * ref_est, 1e3 * train_est);
            printf("RESULT parts T=%d ctx_new_ms=%.3f fwd_exact_ms=%.3f fwd_default_ms=%.3f stats_ms=%.3f bwd_ms=%.3f "
                   "adamw_ms=%.3f reference_est_ms=%.3f training_est_ms=%.3f\n",
                   T, 1e3 * pt.ctx_new, 1e3 * pt.fwd_exact, 1e3 * pt.fwd_default, 1e3 * pt.stats, 1e3 * pt.bwd,
                   1e3 * pt.adamw, 1e3 * ref_est, 1e3 * train_est);
        }
        free(ids), free(ids2), free(logp), free(logp2), free(tps_exact), free(tps_default), free(tps_par);
        free(tps_gen), free(tps_dec_exact), free(tps_dec_default), free(step_exact), free(step_default);
        free(ph_exact), free(ph_default);
        al_model_free(&m);
    }

    int rc = 0;
    if (do_step) {
        char self[PATH_MAX], bin[PATH_MAX + 8];
        if (!align_bin) {
            ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
            self[k > 0 ? k : 0] = 0;
            snprintf(bin, sizeof bin, "%s/align", dirname(self));
            align_bin = bin;
        }
        char tmpl[] = "/tmp/bench_rl.XXXXXX", out[PATH_MAX];
        const char *dir = keep;
        if (!dir && !(dir = mkdtemp(tmpl)))
            die("mkdtemp");
        snprintf(out, sizeof out, "%s/grpo", dir);
        rm_tree(out);
        char s_p[16], s_g[16], s_n[16], s_steps[16], s_beta[32];
        snprintf(s_p, sizeof s_p, "%d", P), snprintf(s_g, sizeof s_g, "%d", G);
        snprintf(s_n, sizeof s_n, "%d", step_new), snprintf(s_steps, sizeof s_steps, "%d", steps);
        snprintf(s_beta, sizeof s_beta, "%g", beta);
        char *args[] = {(char *)align_bin, "grpo", "--data", (char *)prompts_path, "-m", (char *)model, "-z",
                        (char *)tok_path, "--reward", (char *)reward, "--out", out, "--prompts-per-step", s_p,
                        "--num-generations", s_g, "--max-completion-length", s_n, "--steps", s_steps, "--beta", s_beta,
                        "--epochs", "1", "--minibatches", "1", "--seed", "1", "--quiet", NULL};
        printf("== align grpo: %d prompts x %d generations, up to %d new tokens, beta %g (reference model), 1 epoch "
               "x 1 minibatch, reward %s, %d steps, %d threads\n",
               P, G, step_new, beta, reward, steps, threads);
        double t0 = al_now();
        int st = run_argv(args);
        double wall = al_now() - t0;
        if (st != 0) {
            fprintf(stderr, "bench_rl: %s grpo failed (status %d)\n", align_bin, st);
            rc = 1;
        } else {
            char mpath[PATH_MAX + 32];
            snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", out);
            al_buf b = {0};
            if (al_read_file(mpath, &b))
                die(mpath);
            const char *keys[] = {"time/generation", "time/scoring", "time/reference", "time/training",
                                  "rollout_tokens_per_s", "completions/mean_length"};
            double sum[6] = {0};
            int counted = 0;
            printf("  step  generation   scoring  reference  training     total  rollout tok/s  mean length\n");
            for (char *line = b.data, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                    *next++ = 0;
                json_t *j = json_loads(line, 0, NULL);
                if (!j)
                    continue;
                long step = (long)json_integer_value(json_object_get(j, "step"));
                double v[6];
                for (int k = 0; k < 6; k++)
                    v[k] = json_number_value(json_object_get(j, keys[k]));
                printf("  %4ld %11.4f %9.5f %10.4f %9.4f %9.4f %14.0f %12.1f%s\n", step, v[0], v[1], v[2], v[3],
                       v[0] + v[1] + v[2] + v[3], v[4], v[5], step == 1 ? "  (first: not averaged)" : "");
                if (step > 1) {
                    for (int k = 0; k < 6; k++)
                        sum[k] += v[k];
                    counted++;
                }
                json_decref(j);
            }
            al_buf_free(&b);
            if (counted == 0) {
                fprintf(stderr, "bench_rl: no steps after the first in %s\n", mpath);
                rc = 1;
            } else {
                for (int k = 0; k < 6; k++)
                    sum[k] /= counted;
                double total = sum[0] + sum[1] + sum[2] + sum[3];
                printf("  mean %11.4f %9.5f %10.4f %9.4f %9.4f %14.0f %12.1f  (steps 2..%d; wall %.1f s incl. "
                       "start-up)\n",
                       sum[0], sum[1], sum[2], sum[3], total, sum[4], sum[5], steps, wall);
                printf("RESULT step generation=%.6f scoring=%.6f reference=%.6f training=%.6f total=%.6f "
                       "rollout_tps=%.1f mean_length=%.2f steps=%d\n",
                       sum[0], sum[1], sum[2], sum[3], total, sum[4], sum[5], counted);
            }
        }
        if (!keep)
            rm_tree(dir);
    }
    for (int p = 0; p < P; p++)
        al_ints_free(&ps[p]);
    free(ps);
    al_tokenizer_free(tok);
    return rc;
}
