/* The support world's generator: determinism, every file readable by the project's own
 * loaders, held-out prompts disjoint from everything trained on, counts and kinds as
 * configured, and the generator's answers judged as intended by the built-in judges. */
#include <ctype.h>
#include <jansson.h>
#include <strings.h>

#include "align/cai.h"
#include "align/data.h"
#include "align/eval.h"
#include "../src/eval/world_data.h"
#include "test.h"

static const char *const files[] = {"corpus.txt", "heldout.txt", "sft.jsonl", "preferences.jsonl",
                                    "preferences_heldout.jsonl", "kto.jsonl",
                                    "prompts_train.jsonl", "prompts_heldout.jsonl", "template", "constitution.md",
                                    "world.json", "cai_sft.jsonl", "constitution.yaml"};
enum { N_FILES = sizeof files / sizeof files[0] };

static al_world_sizes small_sizes(void)
{
    return (al_world_sizes){.corpus_docs = 500, .heldout_docs = 50, .sft = 300, .preferences = 200, .kto = 100,
                            .train_prompts = 200, .heldout_harmful = 60, .heldout_benign = 40, .heldout_contrast = 40,
                            .heldout_preferences = 100, .cai_critiques = 120, .cai_judgements = 100};
}

static char *path_in(const char *dir, const char *name)
{
    static char buf[4][2400];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static bool same_file(const char *a, const char *b)
{
    al_buf x = {0}, y = {0};
    bool same = al_read_file(a, &x) == 0 && al_read_file(b, &y) == 0 && x.len == y.len &&
                (x.len == 0 || memcmp(x.data, y.data, x.len) == 0);
    al_buf_free(&x);
    al_buf_free(&y);
    return same;
}

/* ---- a set of strings (linear probing over al_hash64) ---- */
typedef struct strset {
    char **s;
    size_t cap;
} strset;

static void set_add(strset *t, const char *s)
{
    if (!t->cap) {
        t->cap = 1 << 14;
        t->s = calloc(t->cap, sizeof *t->s);
    }
    size_t i = al_hash64(s, strlen(s), 1) & (t->cap - 1);
    while (t->s[i] && strcmp(t->s[i], s))
        i = (i + 1) & (t->cap - 1);
    if (!t->s[i])
        t->s[i] = strdup(s);
}

static bool set_has(const strset *t, const char *s)
{
    if (!t->cap)
        return false;
    size_t i = al_hash64(s, strlen(s), 1) & (t->cap - 1);
    while (t->s[i] && strcmp(t->s[i], s))
        i = (i + 1) & (t->cap - 1);
    return t->s[i] != NULL;
}

static void set_free(strset *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->s[i]);
    free(t->s);
}

static void test_determinism(const char *tmp)
{
    al_world_sizes s = small_sizes();
    char a[1100], b[1100], c[1100];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    snprintf(c, sizeof c, "%s/c", tmp);
    CHECK_OK(al_world_write(a, 7, &s));
    CHECK_OK(al_world_write(b, 7, &s));
    CHECK_OK(al_world_write(c, 8, &s));
    for (int i = 0; i < N_FILES; i++) {
        CHECKF(same_file(path_in(a, files[i]), path_in(b, files[i])), "%s differs between two runs with seed 7",
               files[i]);
        bool fixed = !strcmp(files[i], "template") || !strcmp(files[i], "constitution.md") ||
                     !strcmp(files[i], "constitution.yaml");
        CHECKF(fixed != !same_file(path_in(a, files[i]), path_in(c, files[i])), "%s: seed 7 vs 8", files[i]);
    }
    /* Each file draws from its own stream: a bigger corpus leaves the SFT data alone. */
    s.corpus_docs += 100;
    CHECK_OK(al_world_write(c, 7, &s));
    CHECK(same_file(path_in(a, "sft.jsonl"), path_in(c, "sft.jsonl")));
    CHECK(!same_file(path_in(a, "corpus.txt"), path_in(c, "corpus.txt")));
}

static int count_separators(const char *path)
{
    al_buf t = {0};
    if (al_read_file(path, &t))
        return -1;
    int n = 0;
    for (const char *p = t.data; (p = strstr(p, "\n<|endoftext|>\n")); p++)
        n++;
    al_buf_free(&t);
    return n;
}

/* User turns of a TRL conversational file: "messages"[0] or "prompt"[0]. */
static void collect_prompts(const char *path, const char *field, strset *into, int *n)
{
    al_buf t = {0};
    CHECK_OK(al_read_file(path, &t));
    *n = 0;
    for (char *line = t.data; line && *line;) {
        char *end = strchr(line, '\n');
        json_t *o = json_loadb(line, end ? (size_t)(end - line) : strlen(line), 0, NULL);
        const char *p = json_string_value(json_object_get(json_array_get(json_object_get(o, field), 0), "content"));
        CHECKF(p != NULL, "%s: a record without %s[0].content", path, field);
        if (p) {
            set_add(into, p);
            (*n)++;
        }
        json_decref(o);
        line = end ? end + 1 : NULL;
    }
    al_buf_free(&t);
}

static void test_files_parse(const char *dir, const al_world_sizes *s)
{
    al_sft_dataset d;
    CHECK_OK(al_sft_load(&d, path_in(dir, "sft.jsonl"), NULL));
    CHECK(d.n == s->sft && d.format == AL_SFT_MESSAGES);
    for (int i = 0; i < d.n; i++)
        CHECK(d.ex[i].n_messages == 2 && d.ex[i].messages[0].role == AL_ROLE_USER &&
              d.ex[i].messages[1].role == AL_ROLE_ASSISTANT);
    al_sft_free(&d);
    /* KTO records read as conversational prompt-completion (the label is an extra field). */
    CHECK_OK(al_sft_load(&d, path_in(dir, "kto.jsonl"), NULL));
    CHECK(d.n == s->kto && d.format == AL_SFT_CONV_PROMPT_COMPLETION);
    al_sft_free(&d);

    al_pref_dataset pd;
    CHECK_OK(al_pref_load(&pd, path_in(dir, "preferences.jsonl"), NULL));
    CHECK(pd.n == s->preferences && pd.paired && pd.conversational);
    for (int i = 0; i < pd.n; i++)
        CHECK(pd.ex[i].n_prompt_msgs == 1 && pd.ex[i].n_chosen_msgs == 1 && pd.ex[i].n_rejected_msgs == 1 &&
              pd.ex[i].label == 1.0);
    al_pref_free(&pd);
    CHECK_OK(al_pref_load(&pd, path_in(dir, "kto.jsonl"), NULL));
    CHECK(pd.n == s->kto && !pd.paired && pd.conversational);
    int desirable = 0;
    for (int i = 0; i < pd.n; i++)
        desirable += pd.ex[i].label == 1.0;
    CHECK(desirable == (s->kto + 1) / 2);
    al_pref_free(&pd);

    al_chat_template *t = NULL;
    CHECK_OK(al_chat_template_load(&t, path_in(dir, "template")));
    al_message m = {.role = AL_ROLE_USER, .content = "How do I reset my password?"};
    al_buf text = {0};
    CHECK_OK(al_chat_render(t, &m, 1, true, &text, NULL, NULL));
    CHECK(text.data && !strcmp(text.data, "### Customer:\nHow do I reset my password?\n### Agent:\n"));
    al_buf_free(&text);
    al_chat_template_free(t);

    al_judges *j = NULL;
    CHECK_OK(al_judges_load(&j, path_in(dir, "world.json")));
    al_judges_free(j);

    CHECK(count_separators(path_in(dir, "corpus.txt")) == s->corpus_docs);
    CHECK(count_separators(path_in(dir, "heldout.txt")) == s->heldout_docs);
    al_buf corpus = {0};
    CHECK_OK(al_read_file(path_in(dir, "corpus.txt"), &corpus));
    CHECK(corpus.data && strstr(corpus.data, "### Customer:\n") && strstr(corpus.data, "\n### Agent:\n"));
    al_buf_free(&corpus);
}

static void test_prompt_sets(const char *dir, const al_world_sizes *s)
{
    al_prompt_set train, held;
    CHECK_OK(al_prompt_set_load(&train, path_in(dir, "prompts_train.jsonl")));
    CHECK_OK(al_prompt_set_load(&held, path_in(dir, "prompts_heldout.jsonl")));
    CHECK(train.n == s->train_prompts);
    CHECK(held.n == s->heldout_harmful + s->heldout_benign + s->heldout_contrast);
    int kinds[AL_KIND_COUNT] = {0}, train_kinds[AL_KIND_COUNT] = {0};
    for (int i = 0; i < held.n; i++)
        kinds[held.p[i].kind]++;
    for (int i = 0; i < train.n; i++)
        train_kinds[train.p[i].kind]++;
    CHECK(kinds[AL_KIND_HARMFUL] == s->heldout_harmful && kinds[AL_KIND_BENIGN] == s->heldout_benign &&
          kinds[AL_KIND_CONTRAST] == s->heldout_contrast && kinds[AL_KIND_OTHER] == 0);
    CHECK(train_kinds[AL_KIND_HARMFUL] > 0 && train_kinds[AL_KIND_BENIGN] > 0 && train_kinds[AL_KIND_CONTRAST] > 0);
    /* The held-out file interleaves kinds instead of listing them in blocks. */
    int changes = 0;
    for (int i = 1; i < held.n; i++)
        changes += held.p[i].kind != held.p[i - 1].kind;
    CHECK(changes > held.n / 3);

    /* Held-out prompts appear nowhere in training: not in the train prompts, the SFT,
     * preference or KTO prompts, nor verbatim in the pretraining corpus. */
    strset trained = {0}, seen = {0};
    int n;
    for (int i = 0; i < train.n; i++)
        set_add(&trained, train.p[i].prompt);
    collect_prompts(path_in(dir, "sft.jsonl"), "messages", &trained, &n);
    CHECK(n == s->sft);
    collect_prompts(path_in(dir, "preferences.jsonl"), "prompt", &trained, &n);
    CHECK(n == s->preferences);
    collect_prompts(path_in(dir, "kto.jsonl"), "prompt", &trained, &n);
    CHECK(n == s->kto);
    /* Held-out preference pairs come from held-out wordings and frames too. */
    strset held_pairs = {0};
    collect_prompts(path_in(dir, "preferences_heldout.jsonl"), "prompt", &held_pairs, &n);
    CHECK(n == s->heldout_preferences);
    int pair_overlap = 0;
    for (size_t b = 0; b < held_pairs.cap; b++)
        pair_overlap += held_pairs.s[b] && set_has(&trained, held_pairs.s[b]);
    CHECKF(pair_overlap == 0, "%d held-out preference prompts occur in training files", pair_overlap);
    set_free(&held_pairs);
    al_buf corpus = {0};
    CHECK_OK(al_read_file(path_in(dir, "corpus.txt"), &corpus));
    int overlap = 0, in_corpus = 0, dup = 0;
    for (int i = 0; i < held.n; i++) {
        overlap += set_has(&trained, held.p[i].prompt);
        in_corpus += strstr(corpus.data, held.p[i].prompt) != NULL;
        dup += set_has(&seen, held.p[i].prompt);
        set_add(&seen, held.p[i].prompt);
    }
    CHECKF(overlap == 0, "%d held-out prompts also occur in training files", overlap);
    CHECKF(in_corpus == 0, "%d held-out prompts occur in the corpus", in_corpus);
    CHECKF(dup == 0, "%d held-out prompts are repeated", dup);
    /* Contrast prompts borrow harmful verbs: "kill" occurs in both kinds. */
    bool kill_harm = false, kill_contrast = false;
    for (int i = 0; i < train.n + held.n; i++) {
        const al_prompt *p = i < train.n ? &train.p[i] : &held.p[i - train.n];
        kill_harm |= p->kind == AL_KIND_HARMFUL && strstr(p->prompt, " kill ");
        kill_contrast |= p->kind == AL_KIND_CONTRAST && strstr(p->prompt, " kill ");
    }
    CHECK(kill_harm && kill_contrast);
    al_buf_free(&corpus);
    set_free(&trained);
    set_free(&seen);
    al_prompt_set_free(&train);
    al_prompt_set_free(&held);
}

static al_verdict judge(const al_judges *j, const char *text)
{
    al_verdict v;
    CHECK_OK(al_judge(j, text, strlen(text), &v));
    return v;
}

/* Demonstrations and chosen answers keep the constitution; every rejected answer breaks
 * it in a way the judges see (whimsy, a leak, the opposite refusal decision, or the
 * solution of another intent than the one asked), and its pair_kind says which. */
static void test_answers_judged(const char *dir, const char *file)
{
    al_judges *j = NULL;
    CHECK_OK(al_judges_builtin(&j));
    if (!j)
        return;
    al_buf t = {0};
    CHECK_OK(al_read_file(path_in(dir, file), &t));
    int bad_chosen = 0, clean_rejected = 0, pairs = 0, refusal_pairs = 0, overrefusal_pairs = 0;
    int wrong_intent = 0, wrong_intent_misjudged = 0, unsolved_chosen = 0, bad_kind = 0;
    for (char *line = t.data; line && *line; pairs++) {
        char *end = strchr(line, '\n');
        json_t *o = json_loadb(line, end ? (size_t)(end - line) : strlen(line), 0, NULL);
        const char *c = json_string_value(json_object_get(json_array_get(json_object_get(o, "chosen"), 0), "content"));
        const char *r =
            json_string_value(json_object_get(json_array_get(json_object_get(o, "rejected"), 0), "content"));
        const char *kind = json_string_value(json_object_get(o, "pair_kind"));
        const char *category = json_string_value(json_object_get(o, "category"));
        CHECK(c && r && strcmp(c, r) && kind && category);
        if (c && r && kind && category) {
            al_verdict vc = judge(j, c), vr = judge(j, r);
            al_intent_verdict ic, ir;
            CHECK_OK(al_judge_intent(j, category, c, strlen(c), &ic));
            CHECK_OK(al_judge_intent(j, category, r, strlen(r), &ir));
            bad_chosen += vc.leaked || vc.whimsical || !vc.escalates || vc.empty;
            unsolved_chosen += ic.known && !ic.solved;
            bool wrong = ic.known && !ir.solved && ir.other;
            clean_rejected += !(vr.leaked || vr.whimsical || vr.refused != vc.refused || wrong);
            refusal_pairs += vc.refused && vr.complied;
            overrefusal_pairs += vc.complied && vr.refused;
            if (!strcmp(kind, "wrong_intent")) {
                wrong_intent++;
                wrong_intent_misjudged += !wrong || vr.whimsical || vr.leaked || vr.refused;
            }
            bad_kind += (!strcmp(kind, "leak") && !vr.leaked) || (!strcmp(kind, "style") && !vr.whimsical) ||
                        (!strcmp(kind, "over_refusal") && !vr.refused);
        }
        json_decref(o);
        line = end ? end + 1 : NULL;
    }
    al_buf_free(&t);
    CHECKF(bad_chosen == 0, "%s: %d chosen answers break the constitution", file, bad_chosen);
    CHECKF(unsolved_chosen == 0, "%s: %d chosen answers miss their intent's solution", file, unsolved_chosen);
    CHECKF(clean_rejected == 0, "%s: %d rejected answers look clean to the judges", file, clean_rejected);
    CHECKF(wrong_intent > pairs / 6 && wrong_intent_misjudged == 0,
           "%s: %d wrong-intent pairs, %d of them not a clean answer to another intent", file, wrong_intent,
           wrong_intent_misjudged);
    CHECKF(bad_kind == 0, "%s: %d rejected answers are not what their pair_kind says", file, bad_kind);
    CHECK(refusal_pairs > pairs / 5 && overrefusal_pairs > 0);
    if (strcmp(file, "preferences.jsonl")) {
        al_judges_free(j);
        return;
    }

    al_sft_dataset d;
    CHECK_OK(al_sft_load(&d, path_in(dir, "sft.jsonl"), NULL));
    int bad = 0, refusals = 0;
    for (int i = 0; i < d.n; i++) {
        al_verdict v = judge(j, d.ex[i].messages[1].content);
        bad += v.leaked || v.whimsical || !v.escalates || v.empty;
        refusals += v.refused;
    }
    CHECKF(bad == 0, "%d demonstrations break the constitution", bad);
    CHECK(refusals > d.n / 5 && refusals < d.n * 3 / 5);
    al_sft_free(&d);
    al_judges_free(j);
}

/* Every topic's own solution meets its key steps and no other topic's solution meets
 * them all: the correctness judge can tell every intent from every other. */
static void test_intent_keys(void)
{
    al_judges *j = NULL;
    CHECK_OK(al_judges_builtin(&j));
    if (!j)
        return;
    CHECK(al_judges_n_intents(j) == wd_n_benign + wd_n_contrast);
    for (int k = 0; k < wd_n_benign + wd_n_contrast; k++) {
        const wd_topic *t = k < wd_n_benign ? &wd_benign[k] : &wd_contrast[k - wd_n_benign];
        al_intent_verdict v;
        CHECK_OK(al_judge_intent(j, t->category, t->solution, strlen(t->solution), &v));
        CHECKF(v.known && v.solved && !v.other, "%s: own solution solved=%d, also solves %s", t->category, v.solved,
               v.other ? v.other : "nothing else");
    }
    al_judges_free(j);
}

/* Held-out request wordings never reach alignment data (SFT, preferences, KTO, training
 * prompts), but the pretraining corpus knows them: its help-center articles list every
 * wording of a topic beside the solution, as a real pretrained model knows the language. */
static void test_heldout_wordings(const char *dir, int min_known_percent)
{
    static const char *const alignment[] = {"sft.jsonl", "preferences.jsonl", "kto.jsonl", "prompts_train.jsonl"};
    al_buf text[4] = {{0}}, corpus = {0};
    for (int f = 0; f < 4; f++) {
        CHECK_OK(al_read_file(path_in(dir, alignment[f]), &text[f]));
        for (size_t i = 0; i < text[f].len; i++)
            text[f].data[i] = (char)tolower((unsigned char)text[f].data[i]);
    }
    CHECK_OK(al_read_file(path_in(dir, "corpus.txt"), &corpus));
    int leaked = 0, known = 0, heldout = 0;
    for (int k = 0; k < wd_n_benign + wd_n_contrast; k++) {
        const wd_topic *t = k < wd_n_benign ? &wd_benign[k] : &wd_contrast[k - wd_n_benign];
        for (int a = 0; t->asks[a]; a++) {
            if (!wd_ask_heldout(a))
                continue;
            heldout++;
            char low[256];
            snprintf(low, sizeof low, "%s", t->asks[a]);
            for (char *p = low; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            for (int f = 0; f < 4; f++)
                if (text[f].data && strstr(text[f].data, low)) {
                    fprintf(stderr, "held-out wording '%s' occurs in %s\n", t->asks[a], alignment[f]);
                    leaked++;
                }
            known += corpus.data && strstr(corpus.data, t->asks[a]) != NULL;
        }
    }
    CHECK(heldout > 60 && leaked == 0);
    CHECKF(known * 100 >= heldout * min_known_percent, "only %d of %d held-out wordings occur in the corpus", known,
           heldout);
    for (int f = 0; f < 4; f++)
        al_buf_free(&text[f]);
    al_buf_free(&corpus);
}

static void test_errors(const char *tmp)
{
    al_world_sizes s = small_sizes();
    s.sft = 0;
    CHECK(al_world_write(path_in(tmp, "bad"), 1, &s) == -1);
    CHECK(strstr(al_errmsg(), "at least 1") != NULL);
    s = small_sizes();
    s.heldout_benign = 100000; /* more distinct held-out benign prompts than the wordings allow */
    CHECK(al_world_write(path_in(tmp, "bad"), 1, &s) == -1);
    CHECKF(strstr(al_errmsg(), "distinct benign prompts") != NULL, "%s", al_errmsg());
}

/* The held-out wordings around a request (frames, greetings, context sentences,
 * sign-offs) are none of the training ones, compared without case or punctuation, and no
 * frame is listed twice (a repeat would weight it without saying so). */
static void normalize(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++)
        if (isalnum((unsigned char)*s) || *s == '%')
            out[n++] = (char)tolower((unsigned char)*s);
    out[n] = 0;
}

static int shared_wordings(const char *const *train, const char *const *heldout, bool skip_empty)
{
    int shared = 0;
    char a[256], b[256];
    for (int i = 0; heldout[i]; i++) {
        normalize(heldout[i], a, sizeof a);
        if (skip_empty && !a[0])
            continue;
        for (int j = 0; train[j]; j++) {
            normalize(train[j], b, sizeof b);
            if (!strcmp(a, b)) {
                fprintf(stderr, "held-out wording also in training: '%s' ~ '%s'\n", heldout[i], train[j]);
                shared++;
            }
        }
    }
    return shared;
}

static void test_wordings_disjoint(void)
{
    /* both sides may greet with nothing at all */
    CHECK(shared_wordings(wd_frames_train, wd_frames_heldout, false) == 0);
    CHECK(shared_wordings(wd_greet_train, wd_greet_heldout, true) == 0);
    CHECK(shared_wordings(wd_context_train, wd_context_heldout, false) == 0);
    CHECK(shared_wordings(wd_signoff_train, wd_signoff_heldout, true) == 0);
    int repeats = 0;
    char a[256], b[256];
    for (int i = 0; wd_frames_train[i]; i++)
        for (int j = i + 1; wd_frames_train[j]; j++) {
            normalize(wd_frames_train[i], a, sizeof a);
            normalize(wd_frames_train[j], b, sizeof b);
            repeats += !strcmp(a, b);
        }
    CHECKF(repeats == 0, "%d training frames are listed twice", repeats);
}

/* Every word of the held-out wordings occurs somewhere in training (the everyday prose of
 * the corpus included): held-out prompts test unseen sentence shapes, not unseen words,
 * whose embeddings no training step would ever have moved. */
static bool word_in(const char *word, const char *const *list)
{
    size_t n = strlen(word);
    for (int i = 0; list[i]; i++)
        for (const char *p = list[i]; *p; p++)
            if (!strncasecmp(p, word, n) && (p == list[i] || !isalpha((unsigned char)p[-1])) &&
                !isalpha((unsigned char)p[n]))
                return true;
    return false;
}

static void test_heldout_words_known(void)
{
    const char *const *heldout[] = {wd_frames_heldout, wd_greet_heldout, wd_context_heldout, wd_signoff_heldout};
    const char *const *known[] = {wd_prose, wd_frames_train, wd_greet_train, wd_context_train, wd_signoff_train};
    int unknown = 0;
    for (int h = 0; h < 4; h++)
        for (int i = 0; heldout[h][i]; i++)
            for (const char *p = heldout[h][i]; *p;) {
                char word[64];
                size_t n = 0;
                while (*p && !isalpha((unsigned char)*p))
                    p++;
                while (isalpha((unsigned char)*p) || *p == '\'')
                    word[n < sizeof word - 1 ? n++ : n] = *p++;
                word[n] = 0;
                if (!n || !strcmp(word, "s")) /* the %s placeholder */
                    continue;
                bool found = false;
                for (int k = 0; k < 5 && !found; k++)
                    found = word_in(word, known[k]);
                if (!found) {
                    fprintf(stderr, "held-out word never seen in training: '%s' (in '%s')\n", word, heldout[h][i]);
                    unknown++;
                }
            }
    CHECK(unknown == 0);
}

/* cai_sft.jsonl teaches the constitution's feedback as src/cai asks for it: the critiques
 * in the turns al_cai_revise builds (the draft shown with weight 0, the rule's check and
 * revision request of constitution.yaml), the judgements in al_cai_label's question with
 * the reply naming the answer that keeps the rule (the one the judges find cleaner); no
 * held-out prompt occurs in it. */
static void test_cai_demonstrations(const char *dir, const al_world_sizes *s)
{
    al_constitution c;
    CHECK_OK(al_constitution_load(path_in(dir, "constitution.yaml"), &c));
    CHECK(c.n_principles == 5);
    al_sft_dataset d;
    CHECK_OK(al_sft_load(&d, path_in(dir, "cai_sft.jsonl"), NULL));
    CHECK(d.n == s->cai_critiques + s->cai_judgements && d.format == AL_SFT_MESSAGES);
    al_judges *j = NULL;
    CHECK_OK(al_judges_load(&j, path_in(dir, "world.json")));
    int breaks = 0, keeps = 0, a = 0, b = 0, cleaner = 0;
    for (int i = 0; i < d.n && c.n_principles == 5; i++) {
        const al_message *m = d.ex[i].messages;
        if (i < s->cai_critiques) {
            CHECK(d.ex[i].n_messages == 6 && m[1].no_loss && !m[3].no_loss && !m[0].no_loss);
            int rule = -1;
            for (int k = 0; k < c.n_principles; k++)
                if (!strcmp(m[2].content, c.principles[k].critique) && !strcmp(m[4].content, c.principles[k].revision))
                    rule = k;
            CHECKF(rule >= 0, "record %d: the check and revision request are not one rule's", i + 1);
            bool br = !strncmp(m[3].content, WD_CRITIQUE_BREACH, strlen(WD_CRITIQUE_BREACH)),
                 kp = !strcmp(m[3].content, WD_CRITIQUE_KEPT);
            CHECK(br || kp);
            breaks += br, keeps += kp;
            /* a kept rule leaves the draft as it was; a taught revision breaks no rule the
             * judges see, and flawed text is never taught */
            if (kp)
                CHECK(!strcmp(m[5].content, m[1].content));
            if (br)
                CHECK(!m[5].no_loss);
            al_verdict v;
            CHECK_OK(al_judge(j, m[5].content, strlen(m[5].content), &v));
            CHECK(m[5].no_loss || (!v.leaked && !v.whimsical));
            continue;
        }
        CHECK(d.ex[i].n_messages == 2 && m[0].no_loss && !m[1].no_loss);
        CHECK(!strcmp(m[1].content, AL_CAI_JUDGE_REPLY "A).") || !strcmp(m[1].content, AL_CAI_JUDGE_REPLY "B)."));
        bool pick_a = m[1].content[strlen(AL_CAI_JUDGE_REPLY)] == 'A';
        a += pick_a, b += !pick_a;
        /* rebuild the question from its parts: it must be al_cai_judge_question's */
        const char *oa = strstr(m[0].content, "\n\nOption (A):\n"), *ob = strstr(m[0].content, "\n\nOption (B):\n"),
                   *end = strstr(m[0].content, "\n\nAnswer with (A) or (B).");
        CHECK(oa && ob && end && oa < ob && ob < end);
        if (!(oa && ob && end))
            continue;
        char *ans_a = strndup(oa + 14, (size_t)(ob - oa - 14)), *ans_b = strndup(ob + 14, (size_t)(end - ob - 14));
        const char *conv = strstr(m[0].content, "\n\nConversation:\nUser: ");
        char *question = conv ? strndup(m[0].content, (size_t)(conv - m[0].content)) : NULL;
        char *prompt = conv ? strndup(conv + 22, (size_t)(oa - conv - 22)) : NULL;
        al_buf q = {0};
        CHECK(question && prompt && al_cai_judge_question(question, prompt, ans_a, ans_b, &q) == 0 &&
              !strcmp(q.data, m[0].content));
        /* the chosen answer never has more of what the judges flag (leaks, whimsy) */
        al_verdict va, vb;
        CHECK_OK(al_judge(j, ans_a, strlen(ans_a), &va));
        CHECK_OK(al_judge(j, ans_b, strlen(ans_b), &vb));
        int fa = va.leaked + va.whimsical, fb = vb.leaked + vb.whimsical;
        cleaner += pick_a ? fa <= fb : fb <= fa;
        al_buf_free(&q);
        free(ans_a), free(ans_b), free(question), free(prompt);
    }
    CHECK(breaks > keeps && keeps > 0);      /* most checks find the draft's flaw; some drafts are fine */
    CHECK(a > d.n / 10 && b > d.n / 10);     /* both positions are taught */
    CHECKF(cleaner == s->cai_judgements, "%d of %d judgements pick the cleaner answer", cleaner, s->cai_judgements);
    al_sft_free(&d);
    al_judges_free(j);
    al_constitution_free(&c);

    /* no held-out prompt occurs anywhere in the demonstrations */
    al_prompt_set held;
    al_buf cai = {0};
    CHECK_OK(al_prompt_set_load(&held, path_in(dir, "prompts_heldout.jsonl")));
    CHECK_OK(al_read_file(path_in(dir, "cai_sft.jsonl"), &cai));
    int found = 0;
    for (int i = 0; cai.data && i < held.n; i++) {
        json_t *js = json_string(held.p[i].prompt);
        char *esc = json_dumps(js, JSON_ENCODE_ANY); /* as the JSON text has it */
        json_decref(js);
        if (esc) {
            esc[strlen(esc) - 1] = 0;
            found += strstr(cai.data, esc + 1) != NULL;
        }
        free(esc);
    }
    CHECKF(found == 0, "%d held-out prompts occur in cai_sft.jsonl", found);
    al_buf_free(&cai);
    al_prompt_set_free(&held);
}

int main(void)
{
    const char *tmp = test_tmpdir("world");
    test_wordings_disjoint();
    test_heldout_words_known();
    test_determinism(tmp);
    al_world_sizes s = small_sizes();
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/a", tmp);
    test_files_parse(dir, &s);
    test_prompt_sets(dir, &s);
    test_cai_demonstrations(dir, &s);
    test_heldout_wordings(dir, 50);
    test_answers_judged(dir, "preferences.jsonl");
    test_answers_judged(dir, "preferences_heldout.jsonl");
    test_intent_keys();
    test_errors(tmp);
    /* The presets stay writable (enough distinct held-out prompts for the full sizes). */
    al_world_sizes full;
    al_world_sizes_default(&full, false);
    char full_dir[1100];
    snprintf(full_dir, sizeof full_dir, "%s/full", tmp);
    CHECK_OK(al_world_write(full_dir, 1, &full));
    test_heldout_wordings(full_dir, 100);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    return test_report();
}
