/* gentle_eval: the measurements of examples/gentle-stories (README.md there).
 *
 * Three modes, all on stories260K-sized models through align's public API:
 *
 *   gentle_eval --model M [--lora DIR] [--label L --method NAME --setting TEXT]
 *       samples --n stories (prompts cycled, temperature 1, up to --max-new tokens, fixed
 *       seed) and prints one JSON line: the share of stories holding a lexicon word, the
 *       mean reward (minus the sum of the severities, the RL reward term), the mean
 *       per-story KL to the base model and the validation perplexity on TinyStories.
 *   gentle_eval --make-pairs OUT [--model M] [--per-prompt K] [--rounds R]
 *       samples K stories per prompt R times and writes DPO pairs: the best (highest
 *       reward) and the worst sample of each group, skipping groups that all tie.
 *   gentle_eval --svg OUT --results FILE
 *       draws the reward-versus-KL frontier of every method in FILE (the JSON lines of the
 *       first mode) as a hand-written SVG;  --table --results FILE prints them as Markdown.
 *
 * Progress goes to stderr, results to stdout. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/guard.h"
#include "align/model.h"
#include "align/tokenizer.h"

#ifndef ALIGN_SHARED_DIR
#define ALIGN_SHARED_DIR "../shared"
#endif
#ifndef GENTLE_DIR
#define GENTLE_DIR "examples/gentle-stories"
#endif

typedef struct opts {
    const char *model, *lora, *base, *tokenizer, *lexicon, *prompts, *val;
    const char *label, *method, *setting;
    const char *samples_out, *pairs_out, *svg_out, *results;
    int n, max_new, val_stories, per_prompt, rounds;
    unsigned long long seed;
    bool table;
} opts;

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: gentle_eval [--model PATH] [--lora DIR] [options]       evaluate a model (one JSON line)\n"
            "       gentle_eval --make-pairs OUT.jsonl [--model PATH] [--per-prompt K] [--rounds R]\n"
            "       gentle_eval --svg OUT.svg --results RESULTS.jsonl     the frontier plot\n"
            "       gentle_eval --table --results RESULTS.jsonl           the results as a Markdown table\n"
            "\n"
            "  --model PATH        .bin or HF directory (default: the base model)\n"
            "  --lora DIR          LoRA adapters merged into --model first\n"
            "  --base PATH         the KL reference (default %s/models/stories260K/stories260K.bin)\n"
            "  --tokenizer PATH    (default %s/models/stories260K/tok512.bin)\n"
            "  --lexicon FILE      term,severity CSV (default %s/lexicon.csv)\n"
            "  --prompts FILE      JSONL {\"prompt\": ...} (default %s/prompts.jsonl)\n"
            "  --val FILE          TinyStories text for perplexity (default %s/corpora/tinystories/"
            "TinyStories-validation-head.txt)\n"
            "  --n N (256)  --max-new N (128)  --seed S (1)  --val-stories N (200; 0 skips perplexity)\n"
            "  --label L  --method NAME  --setting TEXT   copied into the JSON line\n"
            "  --samples FILE      also write the sampled stories as JSONL\n",
            ALIGN_SHARED_DIR, ALIGN_SHARED_DIR, GENTLE_DIR, GENTLE_DIR, ALIGN_SHARED_DIR);
}

static void die(const char *what)
{
    fprintf(stderr, "gentle_eval: %s: %s\n", what, al_errmsg());
    exit(1);
}

/* ---- prompts and stories ---- */

typedef struct prompt_set {
    char **text;
    al_ints *ids; /* BOS + prompt, as the RL trainer encodes a plain-text prompt */
    int n;
} prompt_set;

static void load_prompts(prompt_set *ps, const char *path, const al_tokenizer *tok)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        perror(path);
        exit(1);
    }
    char line[4096];
    int line_no = 0;
    while (fgets(line, sizeof line, fp)) {
        line_no++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        json_error_t err;
        json_t *rec = json_loads(line, 0, &err);
        const char *p = json_string_value(json_object_get(rec, "prompt"));
        if (!p) {
            fprintf(stderr, "gentle_eval: %s:%d: expected {\"prompt\": \"...\"}\n", path, line_no);
            exit(1);
        }
        ps->text = realloc(ps->text, (size_t)(ps->n + 1) * sizeof *ps->text);
        ps->ids = realloc(ps->ids, (size_t)(ps->n + 1) * sizeof *ps->ids);
        if (!ps->text || !ps->ids || !(ps->text[ps->n] = strdup(p)))
            exit(1);
        ps->ids[ps->n] = (al_ints){0};
        if (al_tokenizer_encode(tok, p, strlen(p), true, false, &ps->ids[ps->n]))
            die(path);
        ps->n++;
        json_decref(rec);
    }
    fclose(fp);
    if (ps->n == 0) {
        fprintf(stderr, "gentle_eval: %s: no prompts\n", path);
        exit(1);
    }
}

typedef struct story {
    int prompt;    /* index into the prompt set */
    al_ints ids;   /* the sampled tokens, the end marker included when the story ended */
    bool ended;    /* reached BOS or EOS before the token limit */
    char *text;    /* the completion's text, without the end marker */
    double sev;    /* sum of the severities of the distinct lexicon terms (reward = -sev) */
    int n_terms;
} story;

/* llama2.c's TinyStories models were trained on stories each preceded by BOS, so a story
 * ends where the model samples BOS (run.c stops there); EOS never occurs in their training
 * data but is a stop too.  al_generate does not say which stop id ended a sequence, and the
 * KL needs the end marker's log-probability, so sampling runs to the token limit and the
 * story is cut here at the first marker.  Sequences sample independently (each its own
 * seeded sampler), so this equals stopping there. */
static void cut_story(story *s, const al_tokenizer *tok)
{
    int bos = al_tokenizer_bos(tok), eos = al_tokenizer_eos(tok);
    for (int j = 0; j < s->ids.n; j++)
        if (s->ids.v[j] == bos || s->ids.v[j] == eos) {
            s->ids.n = j + 1;
            s->ended = true;
            return;
        }
}

/* The completion's text, decoded token by token after the prompt's last token, so the
 * first piece keeps its leading space (al_tokenizer_decode would drop it, as at the start
 * of a text): prompt + text is then the story as sampled. */
static char *story_text(const story *s, const prompt_set *ps, const al_tokenizer *tok)
{
    al_buf b = {0};
    const al_ints *p = &ps->ids[s->prompt];
    int prev = p->v[p->n - 1];
    int n = s->ended ? s->ids.n - 1 : s->ids.n;
    if (al_buf_append(&b, "", 0))
        die("decode");
    for (int j = 0; j < n; j++) {
        if (al_tokenizer_decode_token(tok, prev, s->ids.v[j], &b))
            die("decode");
        prev = s->ids.v[j];
    }
    /* byte-fallback tokens can leave a stray byte; JSON output needs valid UTF-8 */
    for (size_t at; (at = al_utf8_invalid_at(b.data, b.len)) != (size_t)-1;)
        b.data[at] = '?';
    return b.data;
}

/* Samples one story per entry of prompt_of[0..n) with al_generate; sequence i draws from
 * its own sampler seeded seed + i, so every model sees the same random numbers. */
static story *sample_stories(const al_model *m, const al_tokenizer *tok, const prompt_set *ps, const int *prompt_of,
                             int n, int max_new, unsigned long long seed, const al_lexicon *lx)
{
    al_ints *prompts = malloc((size_t)n * sizeof *prompts);
    al_gen_result *res = calloc((size_t)n, sizeof *res);
    story *st = calloc((size_t)n, sizeof *st);
    if (!prompts || !res || !st)
        exit(1);
    for (int i = 0; i < n; i++)
        prompts[i] = ps->ids[prompt_of[i]];
    al_gen_opts go = {.max_new_tokens = max_new, .sampling = al_sampler_defaults()};
    go.sampling.temperature = 1.0f; /* the model's own distribution: the KL estimate needs it */
    go.sampling.top_p = 1.0f;
    go.sampling.top_k = 0;
    go.sampling.min_p = 0.0f;
    go.sampling.seed = seed;
    if (al_generate(m, tok, prompts, n, &go, res, NULL, NULL))
        die("generate");
    for (int i = 0; i < n; i++) {
        st[i].prompt = prompt_of[i];
        st[i].ids = res[i].ids; /* taken over */
        cut_story(&st[i], tok);
        st[i].text = story_text(&st[i], ps, tok);
        if (al_lexicon_severity(lx, st[i].text, strlen(st[i].text), &st[i].sev, &st[i].n_terms))
            die("lexicon");
    }
    free(prompts);
    free(res);
    return st;
}

static void free_stories(story *st, int n)
{
    for (int i = 0; i < n; i++) {
        al_ints_free(&st[i].ids);
        free(st[i].text);
    }
    free(st);
}

/* ---- log-probabilities with the training forward ---- */

/* out[i] = sum over the story's tokens of log p(token | prompt, earlier tokens), from
 * al_forward on the row prompt + story (prompt positions carry no target). */
static void story_logps(const al_model *m, const story *st, int n, const prompt_set *ps, double *out)
{
    const int B = 16;
    int T = 1;
    for (int i = 0; i < n; i++) {
        int len = ps->ids[st[i].prompt].n + st[i].ids.n - 1;
        T = len > T ? len : T;
    }
    al_train_ctx *ctx = al_train_ctx_new(m, B, T);
    int *tokens = malloc((size_t)B * T * sizeof *tokens), *targets = malloc((size_t)B * T * sizeof *targets);
    if (!ctx || !tokens || !targets)
        die("training context");
    for (int i0 = 0; i0 < n; i0 += B) {
        for (int k = 0; k < B * T; k++)
            tokens[k] = 0, targets[k] = -1;
        for (int r = 0; r < B && i0 + r < n; r++) {
            const story *s = &st[i0 + r];
            const al_ints *p = &ps->ids[s->prompt];
            int len = p->n + s->ids.n;
            for (int t = 0; t + 1 < len; t++) {
                tokens[r * T + t] = t < p->n ? p->v[t] : s->ids.v[t - p->n];
                if (t + 1 >= p->n)
                    targets[r * T + t] = s->ids.v[t + 1 - p->n];
            }
        }
        if (al_forward(ctx, tokens, targets, NULL, NULL))
            die("forward");
        const float *lp = al_ctx_logp(ctx);
        for (int r = 0; r < B && i0 + r < n; r++) {
            double sum = 0;
            for (int t = 0; t < T; t++)
                if (targets[r * T + t] >= 0)
                    sum += lp[r * T + t];
            out[i0 + r] = sum;
        }
    }
    al_train_ctx_free(ctx);
    free(tokens);
    free(targets);
}

/* ---- validation perplexity ---- */

/* TinyStories-validation-head.txt has lost the dataset's story separators: paragraphs are
 * separated by blank lines, and a story begins with the paragraph that starts "Once upon
 * a time" (most TinyStories stories do; the rest stay joined to the story before them,
 * which only lengthens a row).  The text before the first such paragraph is the tail of a
 * story cut by the head and is skipped.  Each story becomes one row, BOS + its tokens, as
 * llama2.c pretokenizes TinyStories, cut to the model's context. */
static int load_val(const char *path, const al_tokenizer *tok, int max_stories, int max_len, al_ints **out)
{
    al_buf b = {0};
    if (al_read_file(path, &b))
        die(path);
    const char *key = "Once upon a time";
    al_ints *rows = NULL;
    int n = 0;
    const char *p = b.data;
    if (strncmp(p, key, strlen(key)) != 0) { /* to the first story start */
        const char *q = strstr(p, "\n\nOnce upon a time");
        p = q ? q + 2 : p + strlen(p);
    }
    while (*p && n < max_stories) {
        const char *end = strstr(p, "\n\nOnce upon a time");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (p[len - 1] == '\n' || p[len - 1] == ' ' || p[len - 1] == '\r'))
            len--;
        rows = realloc(rows, (size_t)(n + 1) * sizeof *rows);
        if (!rows)
            exit(1);
        rows[n] = (al_ints){0};
        if (al_tokenizer_encode(tok, p, len, true, false, &rows[n]))
            die(path);
        if (rows[n].n > max_len)
            rows[n].n = max_len;
        n++;
        p = end ? end + 2 : p + strlen(p);
    }
    al_buf_free(&b);
    *out = rows;
    return n;
}

/* exp(mean next-token NLL) over every position of every row: the same tokens for every
 * model, so the figures compare. */
static double val_perplexity(const al_model *m, al_ints *rows, int n, long *n_tokens)
{
    const int B = 8;
    int T = 1;
    for (int i = 0; i < n; i++)
        T = rows[i].n - 1 > T ? rows[i].n - 1 : T;
    al_train_ctx *ctx = al_train_ctx_new(m, B, T);
    int *tokens = malloc((size_t)B * T * sizeof *tokens), *targets = malloc((size_t)B * T * sizeof *targets);
    if (!ctx || !tokens || !targets)
        die("training context");
    double nll = 0;
    long count = 0;
    for (int i0 = 0; i0 < n; i0 += B) {
        for (int k = 0; k < B * T; k++)
            tokens[k] = 0, targets[k] = -1;
        for (int r = 0; r < B && i0 + r < n; r++)
            for (int t = 0; t + 1 < rows[i0 + r].n; t++) {
                tokens[r * T + t] = rows[i0 + r].v[t];
                targets[r * T + t] = rows[i0 + r].v[t + 1];
            }
        if (al_forward(ctx, tokens, targets, NULL, NULL))
            die("forward");
        const float *lp = al_ctx_logp(ctx);
        for (int k = 0; k < B * T; k++)
            if (targets[k] >= 0)
                nll -= lp[k], count++;
    }
    al_train_ctx_free(ctx);
    free(tokens);
    free(targets);
    *n_tokens = count;
    return exp(nll / (double)count);
}

/* ---- models ---- */

static void load_model(al_model *m, const char *path, const char *lora)
{
    if (al_model_load(m, path))
        die(path);
    if (lora) {
        /* adapters are saved in HF's half-split rotary order, which trainers switch the
         * base to first; the switch leaves the function unchanged */
        if (al_model_to_half_rope(m) || al_lora_load(m, lora) || al_lora_merge(m))
            die(lora);
    }
}

/* ---- mode 1: evaluate ---- */

static void json_text_set(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, v ? json_string(v) : json_null());
}

static int evaluate(const opts *o)
{
    al_tokenizer *tok;
    if (al_tokenizer_load(&tok, o->tokenizer))
        die(o->tokenizer);
    al_lexicon *lx = al_lexicon_load(o->lexicon);
    if (!lx)
        die(o->lexicon);
    prompt_set ps = {0};
    load_prompts(&ps, o->prompts, tok);
    for (int i = 0; i < ps.n; i++) { /* a lexicon word in a prompt would not count: warn */
        double sev;
        int k;
        if (al_lexicon_severity(lx, ps.text[i], strlen(ps.text[i]), &sev, &k) == 0 && k > 0)
            fprintf(stderr, "gentle_eval: note: prompt %d holds a lexicon term (only stories are scored)\n", i + 1);
    }
    al_model m = {0}, base = {0};
    const char *path = o->model ? o->model : o->base;
    load_model(&m, path, o->lora);
    load_model(&base, o->base, NULL);
    double t0 = al_now();

    int *prompt_of = malloc((size_t)o->n * sizeof *prompt_of);
    double *lp = malloc((size_t)o->n * sizeof *lp), *lp_base = malloc((size_t)o->n * sizeof *lp_base);
    if (!prompt_of || !lp || !lp_base)
        exit(1);
    for (int i = 0; i < o->n; i++)
        prompt_of[i] = i % ps.n;
    fprintf(stderr, "gentle_eval: %s: sampling %d stories\n", o->label ? o->label : path, o->n);
    story *st = sample_stories(&m, tok, &ps, prompt_of, o->n, o->max_new, o->seed, lx);
    story_logps(&m, st, o->n, &ps, lp);
    story_logps(&base, st, o->n, &ps, lp_base);

    /* per story: KL sample log p(y) - log p_base(y), y drawn from the model; its mean is
     * the Monte-Carlo estimate of KL(model || base) over whole stories */
    double share = 0, sev = 0, kl = 0, kl2 = 0, len = 0, ended = 0;
    for (int i = 0; i < o->n; i++) {
        double d = lp[i] - lp_base[i];
        share += st[i].n_terms > 0;
        sev += st[i].sev;
        kl += d, kl2 += d * d;
        len += st[i].ids.n;
        ended += st[i].ended;
    }
    const double n = o->n;
    share /= n, sev /= n, kl /= n, kl2 /= n, len /= n, ended /= n;
    double kl_se = n > 1 ? sqrt(fmax(kl2 - kl * kl, 0) * n / (n - 1) / n) : 0;

    double ppl = NAN;
    long val_tokens = 0;
    if (o->val_stories > 0) {
        fprintf(stderr, "gentle_eval: validation perplexity on %d stories\n", o->val_stories);
        al_ints *rows;
        int nr = load_val(o->val, tok, o->val_stories, m.cfg.seq_len, &rows);
        ppl = val_perplexity(&m, rows, nr, &val_tokens);
        for (int i = 0; i < nr; i++)
            al_ints_free(&rows[i]);
        free(rows);
    }

    json_t *j = json_object();
    json_text_set(j, "label", o->label ? o->label : path);
    json_text_set(j, "method", o->method ? o->method : "model");
    json_text_set(j, "setting", o->setting);
    json_text_set(j, "model", path);
    json_text_set(j, "lora", o->lora);
    json_object_set_new(j, "n", json_integer(o->n));
    json_object_set_new(j, "share", json_real(share));
    json_object_set_new(j, "share_se", json_real(sqrt(share * (1 - share) / n)));
    json_object_set_new(j, "reward", json_real(sev > 0 ? -sev : 0.0)); /* no "-0" */
    json_object_set_new(j, "kl", json_real(kl));
    json_object_set_new(j, "kl_se", json_real(kl_se));
    json_object_set_new(j, "val_ppl", isnan(ppl) ? json_null() : json_real(ppl));
    json_object_set_new(j, "val_tokens", json_integer(val_tokens));
    json_object_set_new(j, "mean_tokens", json_real(len));
    json_object_set_new(j, "ended", json_real(ended));
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(j);
    fprintf(stderr, "gentle_eval: share %.3f  reward %.3f  KL %.2f +- %.2f nats/story  val ppl %.4f  (%.1f s)\n",
            share, -sev, kl, kl_se, ppl, al_now() - t0);

    if (o->samples_out) {
        FILE *fp = fopen(o->samples_out, "w");
        if (!fp) {
            perror(o->samples_out);
            exit(1);
        }
        for (int i = 0; i < o->n; i++) {
            json_t *r = json_pack("{s:s, s:s, s:f, s:i, s:f, s:b}", "prompt", ps.text[st[i].prompt], "story",
                                  st[i].text, "reward", -st[i].sev, "terms", st[i].n_terms, "kl",
                                  lp[i] - lp_base[i], "ended", st[i].ended);
            char *s = r ? json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
            if (s)
                fprintf(fp, "%s\n", s);
            free(s);
            json_decref(r);
        }
        fclose(fp);
    }

    free_stories(st, o->n);
    free(prompt_of), free(lp), free(lp_base);
    for (int i = 0; i < ps.n; i++)
        free(ps.text[i]), al_ints_free(&ps.ids[i]);
    free(ps.text), free(ps.ids);
    al_model_free(&m);
    al_model_free(&base);
    al_lexicon_free(lx);
    al_tokenizer_free(tok);
    return 0;
}

/* ---- mode 2: DPO pairs ---- */

static int make_pairs(const opts *o)
{
    al_tokenizer *tok;
    if (al_tokenizer_load(&tok, o->tokenizer))
        die(o->tokenizer);
    al_lexicon *lx = al_lexicon_load(o->lexicon);
    if (!lx)
        die(o->lexicon);
    prompt_set ps = {0};
    load_prompts(&ps, o->prompts, tok);
    al_model m = {0};
    load_model(&m, o->model ? o->model : o->base, o->lora);
    FILE *fp = fopen(o->pairs_out, "w");
    if (!fp) {
        perror(o->pairs_out);
        exit(1);
    }
    const int K = o->per_prompt, n = ps.n * K;
    int *prompt_of = malloc((size_t)n * sizeof *prompt_of);
    if (!prompt_of)
        exit(1);
    for (int i = 0; i < n; i++)
        prompt_of[i] = i / K;
    int written = 0, ties = 0;
    double gap = 0;
    for (int round = 0; round < o->rounds; round++) {
        /* a seed range of its own per round, away from the evaluation's seeds */
        unsigned long long seed = o->seed + 1000003ull * (unsigned long long)(round + 1);
        fprintf(stderr, "gentle_eval: pairs round %d/%d: sampling %d stories (%d per prompt)\n", round + 1, o->rounds,
                n, K);
        story *st = sample_stories(&m, tok, &ps, prompt_of, n, o->max_new, seed, lx);
        for (int p = 0; p < ps.n; p++) {
            const story *g = st + (size_t)p * K;
            int best = 0, worst = 0;
            for (int k = 1; k < K; k++) { /* reward = -sev; the first of equals wins */
                if (g[k].sev < g[best].sev)
                    best = k;
                if (g[k].sev > g[worst].sev)
                    worst = k;
            }
            if (g[best].sev == g[worst].sev) {
                ties++;
                continue;
            }
            json_t *r = json_pack("{s:s, s:s, s:s}", "prompt", ps.text[p], "chosen", g[best].text, "rejected",
                                  g[worst].text);
            char *s = r ? json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
            if (!s)
                die("pairs: out of memory");
            fprintf(fp, "%s\n", s);
            free(s);
            json_decref(r);
            written++;
            gap += g[worst].sev - g[best].sev;
        }
        free_stories(st, n);
    }
    fclose(fp);
    fprintf(stderr, "gentle_eval: %d pairs to %s (%d groups tied), mean reward gap %.2f\n", written, o->pairs_out,
            ties, written ? gap / written : 0.0);
    free(prompt_of);
    for (int i = 0; i < ps.n; i++)
        free(ps.text[i]), al_ints_free(&ps.ids[i]);
    free(ps.text), free(ps.ids);
    al_model_free(&m);
    al_lexicon_free(lx);
    al_tokenizer_free(tok);
    return written > 0 ? 0 : 1;
}

/* ---- mode 3: the frontier plot ---- */

typedef struct point {
    double kl, share, reward;
    const char *method;
    json_t *rec; /* the whole result line */
} point;

static const char *method_color(const char *method, int k)
{
    static const struct {
        const char *name, *color;
    } known[] = {{"base", "#000000"}, {"ppo", "#1f77b4"}, {"grpo", "#d62728"}, {"rloo", "#2ca02c"},
                 {"dpo", "#9467bd"}};
    static const char *other[] = {"#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(method, known[i].name))
            return known[i].color;
    return other[k % 4];
}

/* A round step for about n ticks over [0, span]: 1, 2 or 5 times a power of ten. */
static double tick_step(double span, int n)
{
    double raw = span / n, p = pow(10, floor(log10(raw)));
    return raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
}

/* One panel at (x0, y0) of size w x h: y is the share (which 0) or the mean reward. */
static void panel(FILE *fp, const point *pt, int n, char **methods, int n_methods, int which, double x0, double y0,
                  double w, double h)
{
    double xmax = 0, ylo = 0, yhi = 0, base_share = -1;
    for (int i = 0; i < n; i++) {
        double y = which == 0 ? pt[i].share : pt[i].reward;
        xmax = fmax(xmax, pt[i].kl);
        ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        if (!strcmp(pt[i].method, "base"))
            base_share = pt[i].share;
    }
    xmax = fmax(xmax * 1.08, 6); /* always show the 5-nat budget */
    double xs = tick_step(xmax, 6);
    xmax = ceil(xmax / xs) * xs;
    double ys = tick_step(yhi - ylo > 0 ? yhi - ylo : 1, 5);
    yhi = which == 0 ? ceil(yhi * 1.05 / ys) * ys : 0;
    ylo = which == 0 ? 0 : floor(ylo * 1.05 / ys) * ys;
    if (yhi <= ylo)
        yhi = ylo + ys;
#define PX(v) (x0 + (v) / xmax * w)
#define PY(v) (y0 + h - ((v) - ylo) / (yhi - ylo) * h)
    fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", x0,
            y0, w, h);
    for (double v = 0; v <= xmax + 1e-9; v += xs) {
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", PX(v), y0, PX(v),
                y0 + h);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(v), y0 + h + 16, v);
    }
    for (double v = ylo; v <= yhi + 1e-9; v += ys) {
        fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", x0, PY(v), x0 + w,
                PY(v));
        if (which == 0)
            fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f%%</text>\n", x0 - 6, PY(v) + 4,
                    v * 100);
        else
            fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", x0 - 6, PY(v) + 4,
                    fabs(v) < 1e-12 ? 0 : v);
    }
    /* the acceptance region: KL below 5 nats, share at most half the base's */
    fprintf(fp,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\" fill=\"#666\" font-size=\"11\">KL = 5</text>\n",
            PX(5), y0, PX(5), y0 + h, PX(5) + 4, y0 + 14);
    if (which == 0 && base_share > 0)
        fprintf(fp,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" fill=\"#666\" font-size=\"11\" text-anchor=\"end\">half the base "
                "share</text>\n",
                x0, PY(base_share / 2), x0 + w, PY(base_share / 2), x0 + w - 4, PY(base_share / 2) - 4);
    /* each method's points in the order of the results file, which run.sh writes in
     * increasing training strength (more steps, lower beta): the line is the path the
     * method takes away from the base model, where every path starts (no steps, or an
     * infinite beta).  Checkpoints need not move monotonically in KL, so sorting by KL
     * would draw zigzags that no run took. */
    const point *base = NULL;
    for (int i = 0; i < n; i++)
        if (!strcmp(pt[i].method, "base"))
            base = &pt[i];
    for (int k = 0; k < n_methods; k++) {
        if (!strcmp(methods[k], "base"))
            continue;
        const char *color = method_color(methods[k], k);
        int m = 0;
        const point **v = malloc((size_t)(n + 1) * sizeof *v);
        if (!v)
            exit(1);
        for (int i = 0; i < n; i++)
            if (!strcmp(pt[i].method, methods[k]))
                v[m++] = &pt[i];
        fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
        if (base)
            fprintf(fp, "%.1f,%.1f ", PX(base->kl), PY(which == 0 ? base->share : base->reward));
        for (int i = 0; i < m; i++)
            fprintf(fp, "%.1f,%.1f ", PX(v[i]->kl), PY(which == 0 ? v[i]->share : v[i]->reward));
        fprintf(fp, "\"/>\n");
        for (int i = 0; i < m; i++)
            fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", PX(v[i]->kl),
                    PY(which == 0 ? v[i]->share : v[i]->reward), color);
        free(v);
    }
    if (base)
        fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"#000\"/>\n", PX(base->kl) - 4.5,
                PY(which == 0 ? base->share : base->reward) - 4.5);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">KL to the base model (nats per story)</text>\n",
            x0 + w / 2, y0 + h + 36);
    fprintf(fp,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
            x0 - 48, y0 + h / 2, x0 - 48, y0 + h / 2,
            which == 0 ? "stories with a lexicon word" : "mean reward (- sum of severities)");
#undef PX
#undef PY
}

/* Reads the JSON lines of mode 1; *keep owns the strings the points borrow. */
static int load_results(const char *path, point **out, char ***methods_out, int *n_methods_out, json_t **keep)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        perror(path);
        exit(1);
    }
    point *pt = NULL;
    char **methods = NULL;
    int n = 0, n_methods = 0;
    char line[8192];
    *keep = json_array();
    while (fgets(line, sizeof line, in)) {
        json_error_t err;
        json_t *r = json_loads(line, 0, &err);
        if (!r)
            continue;
        json_array_append_new(*keep, r);
        const char *method = json_string_value(json_object_get(r, "method"));
        json_t *kl = json_object_get(r, "kl"), *share = json_object_get(r, "share"),
               *reward = json_object_get(r, "reward");
        if (!method || !json_is_number(kl) || !json_is_number(share) || !json_is_number(reward))
            continue;
        pt = realloc(pt, (size_t)(n + 1) * sizeof *pt);
        if (!pt)
            exit(1);
        pt[n++] = (point){json_number_value(kl), json_number_value(share), json_number_value(reward), method, r};
        int k = 0;
        while (k < n_methods && strcmp(methods[k], method))
            k++;
        if (k == n_methods) {
            methods = realloc(methods, (size_t)(n_methods + 1) * sizeof *methods);
            if (!methods)
                exit(1);
            methods[n_methods++] = (char *)method;
        }
    }
    fclose(in);
    if (n == 0) {
        fprintf(stderr, "gentle_eval: %s: no results\n", path);
        exit(1);
    }
    *out = pt, *methods_out = methods, *n_methods_out = n_methods;
    return n;
}

/* The README's table (Markdown) of a results file. */
static int print_table(const opts *o)
{
    point *pt;
    char **methods;
    int n_methods;
    json_t *keep;
    int n = load_results(o->results, &pt, &methods, &n_methods, &keep);
    double base_share = -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(pt[i].method, "base"))
            base_share = pt[i].share;
    printf("| model | setting | stories with a lexicon word | mean reward | KL to base (nats/story) | val ppl | "
           "share halved at KL < 5 |\n|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const json_t *r = pt[i].rec;
        const char *label = json_string_value(json_object_get(r, "label"));
        const char *setting = json_string_value(json_object_get(r, "setting"));
        json_t *ppl = json_object_get(r, "val_ppl");
        const bool base = !strcmp(pt[i].method, "base");
        printf("| %s | %s | %.1f%% ± %.1f | %.3f | %.2f ± %.2f | %s%.3f | %s |\n", label ? label : "?",
               setting ? setting : "", 100 * pt[i].share, 100 * json_number_value(json_object_get(r, "share_se")),
               pt[i].reward, pt[i].kl, json_number_value(json_object_get(r, "kl_se")), json_is_number(ppl) ? "" : "n/a ",
               json_is_number(ppl) ? json_number_value(ppl) : 0.0,
               base ? "" : pt[i].share <= base_share / 2 && pt[i].kl < 5 ? "yes" : "no");
    }
    free(pt);
    free(methods);
    json_decref(keep);
    return 0;
}

static int draw_svg(const opts *o)
{
    point *pt;
    char **methods;
    int n_methods;
    json_t *keep;
    int n = load_results(o->results, &pt, &methods, &n_methods, &keep);
    FILE *fp = fopen(o->svg_out, "w");
    if (!fp) {
        perror(o->svg_out);
        return 1;
    }
    const double W = 1010, H = 430, pw = 360, ph = 300;
    fprintf(fp,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
            "<text x=\"%.0f\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">gentle stories: violent and "
            "frightening words versus KL to the base model (stories260K)</text>\n",
            W, H, W, H, W / 2);
    panel(fp, pt, n, methods, n_methods, 0, 80, 50, pw, ph);
    panel(fp, pt, n, methods, n_methods, 1, 80 + pw + 90, 50, pw, ph);
    /* legend */
    double lx = 80 + 2 * pw + 90 + 24, ly = 60;
    for (int k = 0; k < n_methods; k++, ly += 22) {
        const char *color = method_color(methods[k], k);
        if (!strcmp(methods[k], "base"))
            fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"#000\"/>\n", lx + 7.5, ly - 4.5);
        else
            fprintf(fp,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n"
                    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n",
                    lx, ly, lx + 24, ly, color, lx + 12, ly, color);
        char name[32];
        snprintf(name, sizeof name, "%s", methods[k]);
        for (char *c = name; *c; c++) /* method names are lower case in results.jsonl */
            if (*c >= 'a' && *c <= 'z' && strcmp(methods[k], "base"))
                *c = (char)(*c - 'a' + 'A');
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", lx + 32, ly + 4, name);
    }
    fprintf(fp,
            "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#444\">each point: %lld sampled stories; "
            "each line joins a method's settings from the base model in order of increasing training strength"
            "</text>\n</svg>\n",
            W / 2, H - 12, (long long)json_integer_value(json_object_get(pt[0].rec, "n")));
    fclose(fp);
    fprintf(stderr, "gentle_eval: %d points of %d methods to %s\n", n, n_methods, o->svg_out);
    free(pt);
    free(methods);
    json_decref(keep);
    return 0;
}

/* ---- command line ---- */

static long parse_int(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "gentle_eval: %s: expected an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, v);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv)
{
    opts o = {.base = ALIGN_SHARED_DIR "/models/stories260K/stories260K.bin",
              .tokenizer = ALIGN_SHARED_DIR "/models/stories260K/tok512.bin",
              .lexicon = GENTLE_DIR "/lexicon.csv",
              .prompts = GENTLE_DIR "/prompts.jsonl",
              .val = ALIGN_SHARED_DIR "/corpora/tinystories/TinyStories-validation-head.txt",
              .n = 256,
              .max_new = 128,
              .val_stories = 200,
              .per_prompt = 8,
              .rounds = 1,
              .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--table")) {
            o.table = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gentle_eval: unknown flag or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "--lora")) o.lora = v;
        else if (!strcmp(a, "--base")) o.base = v;
        else if (!strcmp(a, "--tokenizer")) o.tokenizer = v;
        else if (!strcmp(a, "--lexicon")) o.lexicon = v;
        else if (!strcmp(a, "--prompts")) o.prompts = v;
        else if (!strcmp(a, "--val")) o.val = v;
        else if (!strcmp(a, "--label")) o.label = v;
        else if (!strcmp(a, "--method")) o.method = v;
        else if (!strcmp(a, "--setting")) o.setting = v;
        else if (!strcmp(a, "--samples")) o.samples_out = v;
        else if (!strcmp(a, "--make-pairs")) o.pairs_out = v;
        else if (!strcmp(a, "--svg")) o.svg_out = v;
        else if (!strcmp(a, "--results")) o.results = v;
        else if (!strcmp(a, "--n")) o.n = (int)parse_int(a, v, 1, 1 << 20);
        else if (!strcmp(a, "--max-new")) o.max_new = (int)parse_int(a, v, 1, 1 << 16);
        else if (!strcmp(a, "--val-stories")) o.val_stories = (int)parse_int(a, v, 0, 1 << 20);
        else if (!strcmp(a, "--per-prompt")) o.per_prompt = (int)parse_int(a, v, 2, 4096);
        else if (!strcmp(a, "--rounds")) o.rounds = (int)parse_int(a, v, 1, 4096);
        else if (!strcmp(a, "--seed")) o.seed = (unsigned long long)parse_int(a, v, 0, 1L << 62);
        else {
            fprintf(stderr, "gentle_eval: unknown flag: %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.svg_out || o.table) {
        if (!o.results) {
            fprintf(stderr, "gentle_eval: --svg and --table need --results FILE\n");
            return 2;
        }
        return o.svg_out ? draw_svg(&o) : print_table(&o);
    }
    if (o.pairs_out)
        return make_pairs(&o);
    return evaluate(&o);
}
