/* Constitutional AI so far: the constitution file (both built-ins parse, a file
 * round-trips, every kind of mistake is an error at its line and column), the
 * critique-and-revise loop, and the label arithmetic (soft labels from known logits,
 * clamping, ensembling, position swaps). */
#include <jansson.h>
#include <math.h>

#include "align/cai.h"
#include "align/train.h"
#include "test.h"


/* The content of key's one-message list with that role (TRL's conversational form), or NULL. */
static const char *turn_text(const json_t *o, const char *key, const char *role)
{
    const json_t *list = json_object_get(o, key), *m = json_array_get(list, 0);
    if (json_array_size(list) != 1 || !json_is_string(json_object_get(m, "role")) ||
        strcmp(json_string_value(json_object_get(m, "role")), role))
        return NULL;
    return json_string_value(json_object_get(m, "content"));
}

static void test_builtins(void)
{
    al_constitution c;
    CHECK_OK(al_constitution_builtin("harmless", &c));
    CHECK(c.n_principles == 16 && !strcmp(c.name, "harmless"));
    for (int i = 0; i < c.n_principles; i++)
        CHECK(c.principles[i].critique[0] && c.principles[i].revision[0] && c.principles[i].question[0]);
    al_constitution_free(&c);

    CHECK_OK(al_constitution_builtin("support", &c));
    const char *rules[] = {"no_internal_details", "actionable", "no_filler", "professional", "no_harm"};
    CHECK(c.n_principles == 5);
    for (int i = 0; i < 5; i++)
        CHECKF(al_constitution_find(&c, rules[i]) == i, "support rule %s", rules[i]);
    CHECK(c.n_examples == 2 && al_constitution_find(&c, c.examples[0].principle) >= 0);
    CHECK(al_constitution_find(&c, "no_such_rule") == -1);
    al_constitution_free(&c);

    CHECK(al_constitution_builtin("nope", &c) != 0 && strstr(al_errmsg(), "harmless, support"));
    CHECK(al_constitution_builtin_yaml("nope") == NULL);
}

static void test_file_round_trip(void)
{
    const char *dir = test_tmpdir("cai");
    char path[1200];
    snprintf(path, sizeof path, "%s/support.yaml", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(al_constitution_builtin_yaml("support"), f);
    fclose(f);
    al_constitution a, b;
    CHECK_OK(al_constitution_load(path, &a));
    CHECK_OK(al_constitution_builtin("support", &b));
    CHECK(a.n_principles == b.n_principles && a.n_examples == b.n_examples);
    for (int i = 0; i < a.n_principles && i < b.n_principles; i++)
        CHECK(!strcmp(a.principles[i].name, b.principles[i].name) &&
              !strcmp(a.principles[i].question, b.principles[i].question));
    al_constitution_free(&a);
    al_constitution_free(&b);
    CHECK(al_constitution_load("/nonexistent/c.yaml", &a) != 0);
}

/* Each bad file fails, and the message holds the expected location and words. */
static void expect_error(const char *yaml, const char *where, const char *words)
{
    al_constitution c;
    int rc = al_constitution_parse(yaml, strlen(yaml), "c.yaml", &c);
    CHECKF(rc != 0 && strstr(al_errmsg(), where) && strstr(al_errmsg(), words), "got rc %d: %s (wanted %s ... %s)",
           rc, al_errmsg(), where, words);
    if (rc == 0)
        al_constitution_free(&c);
}

#define P1 "  - name: a\n    critique: c\n    revision: r\n    question: q\n"

static void test_errors(void)
{
    expect_error("version: 1\nname: x\nprinciples:\n" P1 "    colour: red\n", "c.yaml:8:5", "unknown key 'colour'");
    expect_error("version: 1\nname: x\nprinciples:\n  - name: a\n    critique: c\n    question: q\n", "c.yaml:4:5",
                 "lacks 'revision'");
    expect_error("version: 1\nname: x\nprinciples:\n  - name: a\n    critique: '  '\n    revision: r\n    question: q\n",
                 "c.yaml:5:15", "'critique' is empty");
    expect_error("version: 1\nname: x\nprinciples:\n" P1 P1, "c.yaml:8:5", "named twice");
    expect_error("version: 2\nname: x\nprinciples:\n" P1, "c.yaml:1:10", "version must be 1");
    expect_error("name: x\nprinciples:\n" P1, "c.yaml:1:1", "lacks 'version: 1'");
    expect_error("version: 1\nprinciples:\n" P1, "c.yaml", "lacks 'name'");
    expect_error("version: 1\nname: x\n", "c.yaml", "lacks 'principles'");
    expect_error("version: 1\nname: x\nprinciples: []\n", "c.yaml:3:13", "at least one");
    expect_error("version: 1\nname: x\nprinciples: several\n", "c.yaml:3:13", "must be a list");
    expect_error("version: 1\nname: x\nprinciples:\n  - just text\n", "c.yaml:4:5", "must be a mapping");
    expect_error("version: 1\nname: x\nprinciples:\n  - name: [1, 2]\n    critique: c\n    revision: r\n    question: q\n",
                 "c.yaml:4:11", "must be text");
    expect_error("version: 1\nname: x\nprinciples:\n" P1
                 "examples:\n  - principle: b\n    prompt: p\n    response: r\n    critique: c\n    revision: v\n",
                 "example 1", "principle 'b'");
    expect_error("version: 1\nname: x\nmotto: be nice\nprinciples:\n" P1, "c.yaml:3:1", "unknown key 'motto'");
    expect_error("version: 1\nname: [x\n", "c.yaml:", "YAML");
    expect_error("", "c.yaml", "empty file");
    expect_error("- a\n- b\n", "c.yaml:1:1", "expected a mapping");
    /* a valid minimal file, examples optional */
    al_constitution c;
    const char *ok = "version: 1\nname: x\nprinciples:\n" P1;
    CHECK_OK(al_constitution_parse(ok, strlen(ok), "c.yaml", &c));
    CHECK(c.n_principles == 1 && c.n_examples == 0 && !strcmp(c.principles[0].question, "q") && !c.no_issue);
    al_constitution_free(&c);
    /* no_issue: optional text */
    const char *ni = "version: 1\nname: x\nno_issue: Nothing to fix.\nprinciples:\n" P1;
    CHECK_OK(al_constitution_parse(ni, strlen(ni), "c.yaml", &c));
    CHECK(c.no_issue && !strcmp(c.no_issue, "Nothing to fix."));
    al_constitution_free(&c);
    expect_error("version: 1\nname: x\nno_issue: ''\nprinciples:\n" P1, "c.yaml:3:11", "'no_issue' is empty");
}

static void test_labels(void)
{
    float logits[8] = {0.3f, 2.0f, -1.0f, 0.0f, 5.0f, 7.0f, -3.0f, 1.0f};
    /* A = token 1 (logit 2), B = token 3 (logit 0): 1 / (1 + e^-2) */
    CHECK(fabs(al_cai_soft_label(logits, 8, 1, 3) - 1 / (1 + exp(-2.0))) < 1e-15);
    CHECK(fabs(al_cai_soft_label(logits, 8, 3, 1) - (1 - 1 / (1 + exp(-2.0)))) < 1e-15);
    /* the other tokens do not matter */
    float other[8] = {9.0f, 2.0f, 9.0f, 0.0f, 9.0f, 9.0f, 9.0f, 9.0f};
    CHECK(al_cai_soft_label(other, 8, 1, 3) == al_cai_soft_label(logits, 8, 1, 3));
    float same[2] = {1.5f, 1.5f};
    CHECK(al_cai_soft_label(same, 2, 0, 1) == 0.5);
    float far[2] = {1000.0f, -1000.0f};
    CHECK(al_cai_soft_label(far, 2, 0, 1) == 1.0 && al_cai_soft_label(far, 2, 1, 0) == 0.0);
    CHECK(isnan(al_cai_soft_label(logits, 8, 1, 1)) && strstr(al_errmsg(), "two different tokens"));
    CHECK(isnan(al_cai_soft_label(logits, 8, 1, 8)));
    float bad[2] = {NAN, 0.0f};
    CHECK(isnan(al_cai_soft_label(bad, 2, 0, 1)));

    CHECK(al_cai_clamp_label(0.9, 0.4, 0.6) == 0.6 && al_cai_clamp_label(0.1, 0.4, 0.6) == 0.4);
    CHECK(al_cai_clamp_label(0.55, 0.4, 0.6) == 0.55);
    CHECK(isnan(al_cai_clamp_label(0.5, 0.6, 0.4)) && isnan(al_cai_clamp_label(NAN, 0.4, 0.6)));

    double ls[4] = {0.9, 0.6, 0.3, 0.6};
    CHECK(fabs(al_cai_ensemble(ls, 4) - 0.6) < 1e-15);
    double with_nan[2] = {0.5, NAN};
    CHECK(isnan(al_cai_ensemble(with_nan, 2)) && isnan(al_cai_ensemble(ls, 0)));

    CHECK(al_cai_unswap(0.3) == 0.7);
    CHECK(al_cai_swap_consistent(0.8, 0.3));  /* A preferred, then (swapped) the same answer */
    CHECK(!al_cai_swap_consistent(0.8, 0.7)); /* the judge prefers whatever comes first */
    CHECK(!al_cai_swap_consistent(0.5, 0.5)); /* a tie is no preference */
    CHECK(al_cai_swap_consistent(0.2, 0.9));
}

static bool same_revisions(const al_cai_revision *a, const al_cai_revision *b, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(a[i].first, b[i].first) || a[i].n_rounds != b[i].n_rounds)
            return false;
        for (int k = 0; k < a[i].n_rounds; k++)
            if (a[i].rounds[k].principle != b[i].rounds[k].principle ||
                strcmp(a[i].rounds[k].critique, b[i].rounds[k].critique) ||
                strcmp(a[i].rounds[k].revision, b[i].rounds[k].revision))
                return false;
    }
    return true;
}

/* stories260K with its tokenizer, the llama2 template and the support constitution */
static void open_stories(al_model *m, al_tokenizer **tok, al_chat_template **t, al_constitution *c)
{
    CHECK_OK(al_model_load(m, shared_path("models/stories260K/stories260K.bin")));
    CHECK_OK(al_tokenizer_load(tok, shared_path("models/stories260K/tok512.bin")));
    CHECK_OK(al_chat_template_builtin(t, "llama2"));
    CHECK_OK(al_constitution_builtin("support", c));
}

static void close_stories(al_model *m, al_tokenizer *tok, al_chat_template *t, al_constitution *c)
{
    al_constitution_free(c);
    al_chat_template_free(t);
    al_tokenizer_free(tok);
    al_model_free(m);
}

/* The critique-and-revise loop on stories260K (a story model: the texts are stories, the
 * structure is what is checked): every prompt gets a first answer and per round a
 * principle, a critique and a revision; the run is deterministic for a seed and the same
 * whatever the batch; the files hold one JSON object per prompt with the documented
 * fields. */
static void test_revise(void)
{
    al_model m = {0};
    al_tokenizer *tok = NULL;
    al_chat_template *t = NULL;
    al_constitution c;
    open_stories(&m, &tok, &t, &c);
    const char *prompts[] = {"How do I reset my password?", "Where is my parcel?", "Tell me a story about a cat.",
                             "Why was my card charged twice?", "Can I change my delivery address?"};
    const int n = 5;
    al_cai_revise_opts o = al_cai_revise_defaults();
    o.rounds = 2;
    o.max_new_tokens = 12;
    o.batch = 5;
    o.few_shot = false; /* the examples would not fit 512 positions over two rounds */
    o.sampling.temperature = 0.8f;
    o.sampling.seed = 7;
    al_cai_revision *a = NULL, *b = NULL, *d = NULL;
    CHECK_OK(al_cai_revise(&m, tok, t, &c, prompts, n, &o, &a));
    o.batch = 2;
    CHECK_OK(al_cai_revise(&m, tok, t, &c, prompts, n, &o, &b));
    o.sampling.seed = 8;
    CHECK_OK(al_cai_revise(&m, tok, t, &c, prompts, n, &o, &d));
    /* greedy critiques and revisions after sampled first answers: the same first answers,
     * other critiques; two such runs agree */
    o.sampling.seed = 7;
    o.critique_temperature = 0;
    al_cai_revision *g = NULL, *g2 = NULL;
    CHECK_OK(al_cai_revise(&m, tok, t, &c, prompts, n, &o, &g));
    CHECK_OK(al_cai_revise(&m, tok, t, &c, prompts, n, &o, &g2));
    o.critique_temperature = -1;
    if (a && g && g2) {
        int same_first = 0, other_critique = 0;
        for (int i = 0; i < n; i++) {
            same_first += !strcmp(a[i].first, g[i].first);
            other_critique += strcmp(a[i].rounds[0].critique, g[i].rounds[0].critique) != 0;
        }
        CHECK(same_first == n && other_critique > 0 && same_revisions(g, g2, n));
    }
    /* a critique that begins with the constitution's no_issue leaves the answer as it was;
     * the others are revised as before */
    if (g) {
        c.no_issue = strndup(g[0].rounds[0].critique, 2);
        o.critique_temperature = 0;
        al_cai_revision *h = NULL;
        CHECK_OK(al_cai_revise(&m, tok, t, &c, prompts, n, &o, &h));
        int kept = 0;
        for (int i = 0; h && i < n; i++) {
            bool none = !strncmp(h[i].rounds[0].critique, c.no_issue, strlen(c.no_issue));
            kept += none;
            CHECK(!strcmp(h[i].first, g[i].first) && !strcmp(h[i].rounds[0].critique, g[i].rounds[0].critique));
            CHECK(!strcmp(h[i].rounds[0].revision, none ? h[i].first : g[i].rounds[0].revision));
        }
        CHECK(kept >= 1);
        al_cai_revisions_free(h, n);
        free(c.no_issue);
        c.no_issue = NULL;
        o.critique_temperature = -1;
    }
    /* first answers from another model: the same as that model's own first answers, and
     * critiqued by this one */
    if (g) {
        al_model m2 = {0};
        CHECK_OK(al_model_load(&m2, shared_path("models/stories260K/stories260K.bin")));
        uint64_t rng = 3;
        for (size_t i = 0; i < m2.n_params; i++)
            m2.params[i] *= 1.0f + 0.3f * (al_xorshift_f32(&rng) - 0.5f);
        o.critique_temperature = 0;
        al_cai_revision *own = NULL, *mixed = NULL;
        CHECK_OK(al_cai_revise(&m2, tok, t, &c, prompts, n, &o, &own));
        o.answer_model = &m2;
        CHECK_OK(al_cai_revise(&m, tok, t, &c, prompts, n, &o, &mixed));
        o.answer_model = NULL;
        o.critique_temperature = -1;
        int same_first = 0, other_first = 0;
        for (int i = 0; own && mixed && i < n; i++) {
            same_first += !strcmp(own[i].first, mixed[i].first);
            other_first += strcmp(mixed[i].first, g[i].first) != 0;
        }
        CHECK(same_first == n && other_first > 0);
        al_cai_revisions_free(own, n), al_cai_revisions_free(mixed, n);
        al_model_free(&m2);
    }
    al_cai_revisions_free(g, n), al_cai_revisions_free(g2, n);
    if (a && b && d) {
        CHECK(same_revisions(a, b, n));
        CHECK(!same_revisions(a, d, n));
        for (int i = 0; i < n; i++) {
            CHECK(a[i].prompt == prompts[i] && a[i].first && a[i].n_rounds == 2);
            for (int k = 0; k < 2; k++)
                CHECK(a[i].rounds[k].principle >= 0 && a[i].rounds[k].principle < c.n_principles &&
                      a[i].rounds[k].critique && a[i].rounds[k].revision);
            CHECK(al_cai_final(&a[i]) == a[i].rounds[1].revision);
        }
        const char *dir = test_tmpdir("cai-revise");
        char sft[1200], prov[1200];
        snprintf(sft, sizeof sft, "%s/revisions.jsonl", dir);
        snprintf(prov, sizeof prov, "%s/provenance.jsonl", dir);
        CHECK_OK(al_cai_write_revisions(sft, prov, a, n, &c));
        al_buf s = {0}, p = {0};
        CHECK_OK(al_read_file(sft, &s));
        CHECK_OK(al_read_file(prov, &p));
        int lines = 0;
        for (char *line = p.data; line && *line; lines++) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = 0;
            json_t *o2 = json_loads(line, 0, NULL);
            json_t *rounds = json_object_get(o2, "rounds"), *r0 = json_array_get(rounds, 0);
            CHECK(o2 && json_is_string(json_object_get(o2, "prompt")) && json_is_string(json_object_get(o2, "first")) &&
                  json_is_string(json_object_get(o2, "final")) && json_array_size(rounds) == 2 &&
                  al_constitution_find(&c, json_string_value(json_object_get(r0, "principle"))) >= 0 &&
                  json_is_string(json_object_get(r0, "critique")) && json_is_string(json_object_get(r0, "revision")));
            json_decref(o2);
            line = nl ? nl + 1 : NULL;
        }
        CHECK(lines == n);
        json_t *first = json_loads(strtok(s.data, "\n"), 0, NULL);
        const char *fp = turn_text(first, "prompt", "user"), *fc = turn_text(first, "completion", "assistant");
        CHECK(fp && fc && !strcmp(fp, prompts[0]) && !strcmp(fc, al_cai_final(&a[0])));
        json_decref(first);
        al_buf_free(&s);
        al_buf_free(&p);
    }
    al_cai_revisions_free(a, n), al_cai_revisions_free(b, n), al_cai_revisions_free(d, n);
    /* a conversation longer than the context is an error that says so */
    const char *long_prompt[1];
    char big[6000];
    memset(big, 'a', sizeof big - 1);
    for (size_t i = 5; i < sizeof big - 1; i += 6)
        big[i] = ' ';
    big[sizeof big - 1] = 0;
    long_prompt[0] = big;
    o.rounds = 1;
    CHECK(al_cai_revise(&m, tok, t, &c, long_prompt, 1, &o, &a) != 0 && strstr(al_errmsg(), "context holds"));
    o.rounds = 0;
    CHECK(al_cai_revise(&m, tok, t, &c, prompts, n, &o, &a) != 0);
    close_stories(&m, tok, t, &c);
}

/* AI feedback on stories260K: labels are probabilities, the same for any batch, and a
 * pair with its answers exchanged gets the complementary label (both orders are always
 * asked, so the order's bias cancels exactly); the file holds the documented fields. */
static void test_label(void)
{
    al_model m = {0};
    al_tokenizer *tok = NULL;
    al_chat_template *t = NULL;
    al_constitution c;
    open_stories(&m, &tok, &t, &c);
    const al_cai_pair pairs[] = {
        {"Where is my parcel?", "It is on its way and will arrive tomorrow.", "Once upon a time there was a cat."},
        {"How do I reset my password?", "Open settings and tap reset.", "I do not know."},
        {"Hi", "Hello! How can I help?", "Go away."},
    };
    al_cai_pair swapped[3];
    for (int i = 0; i < 3; i++)
        swapped[i] = (al_cai_pair){pairs[i].prompt, pairs[i].b, pairs[i].a};
    al_cai_label_opts o = al_cai_label_defaults();
    o.principles = 3;
    o.seed = 5;
    al_cai_pair_label l1[3], l2[3], l3[3];
    o.batch = 3;
    CHECK_OK(al_cai_label(&m, tok, t, &c, pairs, 3, &o, l1));
    o.batch = 1;
    CHECK_OK(al_cai_label(&m, tok, t, &c, pairs, 3, &o, l2));
    CHECK_OK(al_cai_label(&m, tok, t, &c, swapped, 3, &o, l3));
    for (int i = 0; i < 3; i++) {
        CHECK(l1[i].label > 0 && l1[i].label < 1 && l1[i].swap_consistent >= 0 && l1[i].swap_consistent <= 1);
        CHECKF(l1[i].label == l2[i].label, "batch 3 vs 1: %.17g %.17g", l1[i].label, l2[i].label);
        CHECKF(fabs(l1[i].label + l3[i].label - 1) < 1e-12, "swapped: %.17g + %.17g", l1[i].label, l3[i].label);
        CHECK(l1[i].swap_consistent == l3[i].swap_consistent && l1[i].n_principles == 3);
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < k; j++)
                CHECK(l1[i].principle[k] != l1[i].principle[j]); /* drawn without repeats */
    }
    /* clamped labels stay in the band */
    o.clamp_lo = 0.4, o.clamp_hi = 0.6;
    CHECK_OK(al_cai_label(&m, tok, t, &c, pairs, 3, &o, l2));
    for (int i = 0; i < 3; i++)
        CHECK(l2[i].label >= 0.4 && l2[i].label <= 0.6);
    /* chain-of-thought: the reasoning is sampled per question from the seed, so the labels
     * are the same whatever the batch, and clamped */
    al_cai_pair_label c1[3], c2[3];
    o.cot_tokens = 8;
    o.batch = 3;
    CHECK_OK(al_cai_label(&m, tok, t, &c, pairs, 3, &o, c1));
    o.batch = 2;
    CHECK_OK(al_cai_label(&m, tok, t, &c, pairs, 3, &o, c2));
    for (int i = 0; i < 3; i++)
        CHECK(c1[i].label == c2[i].label && c1[i].label >= 0.4 && c1[i].label <= 0.6);
    o.cot_tokens = 0;
    const char *dir = test_tmpdir("cai-label");
    char path[1200];
    snprintf(path, sizeof path, "%s/labelled.jsonl", dir);
    CHECK_OK(al_cai_write_labels(path, pairs, l1, 3, &c));
    al_buf b = {0};
    CHECK_OK(al_read_file(path, &b));
    json_t *first = json_loads(strtok(b.data, "\n"), 0, NULL);
    const char *fc = turn_text(first, "chosen", "assistant");
    CHECK(first && fc && !strcmp(fc, pairs[0].a) && turn_text(first, "rejected", "assistant") &&
          turn_text(first, "prompt", "user") &&
          fabs(json_real_value(json_object_get(first, "label")) - l1[0].label) < 1e-6 &&
          json_array_size(json_object_get(first, "principles")) == 3 &&
          json_is_real(json_object_get(first, "swap_consistent")));
    json_decref(first);
    al_buf_free(&b);
    /* a pair whose questions cannot fit the context: an error, or with skip_too_long left
     * unlabelled, the others' labels untouched and the file without it */
    {
        al_buf longer = {0};
        for (int k = 0; k < 400; k++)
            al_buf_printf(&longer, "and then the cat sat ");
        al_cai_pair four[4] = {pairs[0], pairs[1], pairs[2], {"Tell me a story", longer.data, "No."}};
        al_cai_pair_label l4[4];
        o.batch = 2;
        CHECK(al_cai_label(&m, tok, t, &c, four, 4, &o, l4) != 0 && strstr(al_errmsg(), "context"));
        o.skip_too_long = true;
        CHECK_OK(al_cai_label(&m, tok, t, &c, four, 4, &o, l4));
        o.skip_too_long = false;
        CHECK(isnan(l4[3].label) && l4[3].n_principles == 0);
        for (int i = 0; i < 3; i++)
            CHECK(l4[i].label == l1[i].label && l4[i].swap_consistent == l1[i].swap_consistent);
        CHECK_OK(al_cai_write_labels(path, four, l4, 4, &c));
        al_buf w = {0};
        CHECK_OK(al_read_file(path, &w));
        int rows = 0;
        for (size_t k = 0; k < w.len; k++)
            rows += w.data[k] == '\n';
        CHECK(rows == 3);
        al_buf_free(&w);
        al_buf_free(&longer);
    }
    o.principles = 6; /* more than the constitution has */
    CHECK(al_cai_label(&m, tok, t, &c, pairs, 3, &o, l1) != 0);
    close_stories(&m, tok, t, &c);
}

/* The whole loop on a model the test trains: SFT stories260K on the synthetic task, then
 * revise (1 round) -> pairs of final revision over first answer -> AI-feedback labels with
 * the same model as judge -> DPO on the labelled pairs.  Run twice into two directories:
 * every file and the final weights must be identical, and the files have the documented
 * structure. */
static int run_loop(const char *dir, const char *task)
{
    char sft_dir[1100], data[1100], rev[1100], prov[1100], lab[1100], dpo_dir[1100], model[1200];
    snprintf(sft_dir, sizeof sft_dir, "%s/sft", dir);
    snprintf(data, sizeof data, "%s/sft.jsonl", task);
    snprintf(rev, sizeof rev, "%s/revisions.jsonl", dir);
    snprintf(prov, sizeof prov, "%s/provenance.jsonl", dir);
    snprintf(lab, sizeof lab, "%s/labelled.jsonl", dir);
    snprintf(dpo_dir, sizeof dpo_dir, "%s/dpo", dir);
    snprintf(model, sizeof model, "%s/final", sft_dir);
    const char *tokp = shared_path("models/stories260K/tok512.bin");
    al_sft_opts s;
    al_sft_defaults(&s);
    s.data = data;
    s.model = shared_path("models/stories260K/stories260K.bin");
    s.tokenizer = tokp;
    s.out_dir = sft_dir;
    s.batch_size = 8;
    s.seq_len = 40;
    s.steps = 6;
    s.eval_every = 0;
    s.save_every = 0;
    s.quiet = true;
    if (al_sft_train(&s))
        return -1;
    al_model m = {0};
    al_tokenizer *tok = NULL;
    al_chat_template *t = NULL;
    al_constitution c = {0};
    al_cai_revision *r = NULL;
    const char *prompts[6] = {"Where is my parcel?", "How do I reset my password?", "Can I get a refund?",
                              "My app keeps crashing.", "Change my address please.", "Is the shop open today?"};
    al_cai_pair pairs[6];
    al_cai_pair_label labels[6];
    al_cai_revise_opts ro = al_cai_revise_defaults();
    ro.max_new_tokens = 12;
    ro.few_shot = false;
    ro.sampling.seed = 3;
    al_cai_label_opts lo = al_cai_label_defaults();
    lo.principles = 2;
    int rc = al_model_load(&m, model) || al_tokenizer_load(&tok, tokp) || al_chat_template_builtin(&t, "llama2") ||
             al_constitution_builtin("support", &c) || al_cai_revise(&m, tok, t, &c, prompts, 6, &ro, &r) ||
             al_cai_write_revisions(rev, prov, r, 6, &c);
    for (int i = 0; rc == 0 && i < 6; i++)
        pairs[i] = (al_cai_pair){prompts[i], al_cai_final(&r[i]), r[i].first};
    rc = rc || al_cai_label(&m, tok, t, &c, pairs, 6, &lo, labels) || al_cai_write_labels(lab, pairs, labels, 6, &c);
    al_cai_revisions_free(r, 6);
    al_constitution_free(&c);
    al_chat_template_free(t);
    al_tokenizer_free(tok);
    al_model_free(&m);
    if (rc)
        return -1;
    al_pref_train_opts o;
    al_pref_train_defaults(&o, AL_TRAINER_DPO);
    o.data = lab;
    o.model = model;
    o.tokenizer = tokp;
    o.out_dir = dpo_dir;
    o.batch_size = 2;
    o.seq_len = 64;
    o.steps = 3;
    o.held_out = 0;
    o.quiet = true;
    o.save_every = 0;
    o.eval_every = 0;
    return al_pref_train(&o);
}

static bool same_file(const char *a, const char *b)
{
    al_buf x = {0}, y = {0};
    bool same = al_read_file(a, &x) == 0 && al_read_file(b, &y) == 0 && x.len == y.len && x.len > 0 &&
                !memcmp(x.data, y.data, x.len);
    al_buf_free(&x);
    al_buf_free(&y);
    return same;
}

static void test_parse_score(void)
{
    CHECK(al_cai_parse_score("Relevant and clear. Score: 4") == 4);
    CHECK(al_cai_parse_score("Score: 2 at first, but on reflection Score:5") == 5); /* the last one */
    CHECK(al_cai_parse_score("Score: 7") != al_cai_parse_score("Score: 7")); /* out of range: NaN */
    CHECK(isnan(al_cai_parse_score("Score: 45")) && isnan(al_cai_parse_score("no score here")));
    CHECK(isnan(al_cai_parse_score(NULL)) && al_cai_parse_score("Score:\t0.") == 0);
}

/* Self-rewarding on the SFT model of the loop: two iterations with the expected-score
 * judge (always defined), deterministic across two runs; the metrics have one line per
 * iteration with the documented fields; the second iteration starts from the first's DPO
 * model when there were pairs. */
static int run_self_reward(const char *model, const char *out)
{
    const char *prompts[4] = {"Where is my parcel?", "How do I reset my password?", "Can I get a refund?",
                              "Is the shop open today?"};
    al_self_reward_opts o = al_self_reward_defaults();
    o.model = model;
    o.tokenizer = shared_path("models/stories260K/tok512.bin");
    o.chat_template = "llama2";
    o.out_dir = out;
    o.iterations = 2;
    o.samples = 3;
    o.max_new_tokens = 10;
    o.judge = AL_JUDGE_EXPECT;
    o.sampling.seed = 4;
    o.dpo.batch_size = 2;
    o.dpo.seq_len = 64;
    o.dpo.steps = 2;
    o.dpo.held_out = 0;
    o.dpo.save_every = 0;
    o.dpo.eval_every = 0;
    o.quiet = true;
    return al_self_reward(&o, prompts, 4);
}

static void test_self_reward(const char *model)
{
    char a[1000], b[1000];
    snprintf(a, sizeof a, "%s", test_tmpdir("self-reward-1"));
    snprintf(b, sizeof b, "%s", test_tmpdir("self-reward-2"));
    CHECK_OK(run_self_reward(model, a));
    CHECK_OK(run_self_reward(model, b));
    char pa[1200], pb[1200];
    for (int k = 1; k <= 2; k++) { /* the expected score is continuous: no ties, pairs in both */
        snprintf(pa, sizeof pa, "%s/iter%d/pairs.jsonl", a, k);
        snprintf(pb, sizeof pb, "%s/iter%d/pairs.jsonl", b, k);
        CHECKF(same_file(pa, pb), "iteration %d's pairs differ between two runs (or are empty)", k);
    }
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", a);
    al_buf m = {0};
    CHECK_OK(al_read_file(pa, &m));
    int lines = 0;
    for (char *line = strtok(m.data, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *o = json_loads(line, 0, NULL);
        double reward = json_real_value(json_object_get(o, "reward_mean"));
        CHECK(o && json_integer_value(json_object_get(o, "iteration")) == lines + 1 && reward >= 0 && reward <= 5 &&
              json_real_value(json_object_get(o, "judge_parsed")) == 1.0 &&
              json_real_value(json_object_get(o, "judge_agreement")) == 1.0 &&
              json_integer_value(json_object_get(o, "pairs")) +
                      json_integer_value(json_object_get(o, "ties_dropped")) ==
                  4);
        if (lines == 1 && json_integer_value(json_object_get(o, "pairs")) > 0)
            CHECK(strstr(json_string_value(json_object_get(o, "model")), "iter1/dpo/final") != NULL);
        json_decref(o);
    }
    CHECK(lines == 2);
    al_buf_free(&m);
}

static void test_loop(void)
{
    char task[1000], d1[1000], d2[1000]; /* test_tmpdir reuses its buffer */
    snprintf(task, sizeof task, "%s", test_tmpdir("cai-task"));
    CHECK_OK(al_synth_pref_write(task, 11, 80, 10));
    snprintf(d1, sizeof d1, "%s", test_tmpdir("cai-loop-1"));
    snprintf(d2, sizeof d2, "%s", test_tmpdir("cai-loop-2"));
    CHECK_OK(run_loop(d1, task));
    CHECK_OK(run_loop(d2, task));
    const char *files[] = {"revisions.jsonl", "provenance.jsonl", "labelled.jsonl", "dpo/final/model.safetensors"};
    for (int i = 0; i < 4; i++) {
        char a[1400], b[1400];
        snprintf(a, sizeof a, "%s/%s", d1, files[i]);
        snprintf(b, sizeof b, "%s/%s", d2, files[i]);
        CHECKF(same_file(a, b), "%s differs between two runs (or is missing)", files[i]);
    }
    char lab[1400];
    snprintf(lab, sizeof lab, "%s/labelled.jsonl", d1);
    al_buf b = {0};
    CHECK_OK(al_read_file(lab, &b));
    int lines = 0;
    for (char *line = strtok(b.data, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *o = json_loads(line, 0, NULL);
        double label = json_real_value(json_object_get(o, "label"));
        CHECK(o && turn_text(o, "chosen", "assistant") && turn_text(o, "rejected", "assistant") && label > 0 && label < 1 && json_array_size(json_object_get(o, "principles")) == 2);
        json_decref(o);
    }
    CHECK(lines == 6);
    al_buf_free(&b);
    char sft[1100];
    snprintf(sft, sizeof sft, "%s/sft/final", d1);
    test_self_reward(sft);
}

int main(void)
{
    test_builtins();
    test_parse_score();
    test_loop();
    test_revise();
    test_label();
    test_file_round_trip();
    test_errors();
    test_labels();
    return test_report();
}
