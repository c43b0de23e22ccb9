/* The support world's generator: requests, good and bad answers, and the files built
 * from them (include/align/eval.h lists the files; docs/demo_world.md explains the mix).
 * Every file draws from its own xorshift stream, seeded by (seed, file name), so the
 * size of one file never changes the contents of another. */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "align/cai.h"
#include "align/eval.h"
#include "world_data.h"

void al_world_sizes_default(al_world_sizes *s, bool quick)
{
    if (quick)
        *s = (al_world_sizes){.corpus_docs = 4000, .heldout_docs = 200, .sft = 1500, .preferences = 1000, .kto = 400,
                              .train_prompts = 300, .heldout_harmful = 60, .heldout_benign = 40, .heldout_contrast = 40,
                              .heldout_preferences = 200, .cai_critiques = 150, .cai_judgements = 100};
    else
        *s = (al_world_sizes){.corpus_docs = 12000, .heldout_docs = 600, .sft = 4000, .preferences = 3000, .kto = 1000,
                              .train_prompts = 600, .heldout_harmful = 150, .heldout_benign = 100,
                              .heldout_contrast = 100, .heldout_preferences = 600, .cai_critiques = 300,
                              .cai_judgements = 300};
}

/* ---- random choices ---- */

static int rnd(uint64_t *r, int n) { return n > 0 ? (int)(al_xorshift_u32(r) % (uint32_t)n) : 0; }
static const char *pick(uint64_t *r, const char *const *list) { return list[rnd(r, wd_count(list))]; }
static uint64_t stream(uint64_t seed, const char *name)
{
    uint64_t s = al_hash64(name, strlen(name), seed);
    return s ? s : 1;
}

/* Share of harmful, benign and contrast requests in every training file, in percent. */
static al_prompt_kind draw_kind(uint64_t *r)
{
    int x = rnd(r, 100);
    return x < 40 ? AL_KIND_HARMFUL : x < 75 ? AL_KIND_BENIGN : AL_KIND_CONTRAST;
}

/* ---- requests ---- */

typedef struct request {
    al_prompt_kind kind;
    const char *category;
    const wd_topic *topic; /* benign and contrast */
    const wd_harm *harm;   /* harmful */
    char act[256];         /* the verb phrase: "reset my password" */
} request;

/* A request of kind k from the training or the held-out wordings; any_ask lets a support
 * request take any wording (the pretraining corpus: it knows the language, docs/demo_world.md). */
static void draw_request(uint64_t *r, al_prompt_kind k, bool heldout, bool any_ask, request *q)
{
    memset(q, 0, sizeof *q);
    q->kind = k;
    if (k == AL_KIND_HARMFUL) {
        for (;;) {
            const wd_harm *h = &wd_harms[rnd(r, wd_n_harms)];
            int v = rnd(r, wd_count(h->verbs)), o = rnd(r, wd_count(h->objects));
            if (wd_harm_heldout(v, o) != heldout)
                continue;
            q->harm = h;
            q->category = h->category;
            snprintf(q->act, sizeof q->act, "%s %s", h->verbs[v], h->objects[o]);
            return;
        }
    }
    const wd_topic *list = k == AL_KIND_BENIGN ? wd_benign : wd_contrast;
    int n = k == AL_KIND_BENIGN ? wd_n_benign : wd_n_contrast;
    for (;;) {
        const wd_topic *t = &list[rnd(r, n)];
        int a = rnd(r, wd_count(t->asks));
        if (!any_ask && wd_ask_heldout(a) != heldout)
            continue;
        q->topic = t;
        q->category = t->category;
        snprintf(q->act, sizeof q->act, "%s", t->asks[a]);
        return;
    }
}

/* Appends frame with every "%s" replaced by arg. */
static void put_frame(al_buf *out, const char *frame, const char *arg)
{
    for (const char *p = frame; *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            al_buf_append(out, arg, strlen(arg));
            p++;
        } else {
            al_buf_append(out, p, 1);
        }
    }
}

/* One word of the everyday prose, lower case, without punctuation. */
static void prose_word(uint64_t *r, char *out, size_t cap)
{
    const char *s = pick(r, wd_prose);
    int words = 1;
    for (const char *p = s; *p; p++)
        words += *p == ' ';
    int k = rnd(r, words);
    while (k > 0)
        k -= *s++ == ' ';
    size_t n = 0;
    for (; *s && *s != ' ' && n + 1 < cap; s++)
        if (isalpha((unsigned char)*s) || *s == '\'')
            out[n++] = (char)tolower((unsigned char)*s);
    out[n] = 0;
}

/* The frame with one or two words of everyday prose put after some of its words: a request
 * framed in words the model has not seen around a request should still be read by its
 * verb and object, benign or harmful alike. */
static void put_noisy_frame(uint64_t *r, al_buf *out, const char *frame, const char *arg)
{
    char noisy[512], word[64];
    size_t n = 0;
    int spaces = 0;
    for (const char *p = frame; *p; p++)
        spaces += *p == ' ';
    int at1 = rnd(r, spaces + 1), at2 = rnd(r, 2) ? rnd(r, spaces + 1) : -1, gap = 0;
    for (const char *p = frame;; p++) {
        if ((!*p || *p == ' ') && (gap == at1 || gap == at2) && n + sizeof word + 2 < sizeof noisy) {
            prose_word(r, word, sizeof word);
            noisy[n++] = ' ';
            memcpy(noisy + n, word, strlen(word));
            n += strlen(word);
        }
        if (!*p || n + 2 >= sizeof noisy)
            break;
        gap += *p == ' ';
        noisy[n++] = *p;
    }
    noisy[n] = 0;
    put_frame(out, noisy, arg);
}

/* greeting + (a context sentence) + the framed request + sign-off.  Training prompts are
 * sometimes typed carelessly (all lower case, no final punctuation), so that a model
 * learns to read the request rather than the frame around it. */
static void render_prompt(uint64_t *r, const request *q, bool heldout, al_buf *out)
{
    size_t start = out->len;
    al_buf_printf(out, "%s", pick(r, heldout ? wd_greet_heldout : wd_greet_train));
    if (rnd(r, 3) == 0)
        al_buf_printf(out, "%s", pick(r, heldout ? wd_context_heldout : wd_context_train));
    const char *frame = pick(r, heldout ? wd_frames_heldout : wd_frames_train);
    if (!heldout && rnd(r, 100) < 35)
        put_noisy_frame(r, out, frame, q->act);
    else
        put_frame(out, frame, q->act);
    al_buf_printf(out, "%s", pick(r, heldout ? wd_signoff_heldout : wd_signoff_train));
    if (heldout)
        return;
    int noise = rnd(r, 100);
    if (noise < 15)
        for (size_t i = start; i < out->len; i++)
            out->data[i] = (char)(out->data[i] >= 'A' && out->data[i] <= 'Z' ? out->data[i] + 32 : out->data[i]);
    else if (noise < 25 && out->len > start + 1 && strchr(".?!", out->data[out->len - 1]))
        out->data[--out->len] = 0;
}

/* The request as the agent would restate it: "my" becomes "your", "I" becomes "you". */
static void second_person(const char *act, char *out, size_t cap)
{
    static const char *const from[] = {"my", "mine", "I", "me"}, *const to[] = {"your", "yours", "you", "you"};
    size_t n = 0;
    out[0] = 0;
    for (const char *p = act; *p && n + 8 < cap;) {
        size_t w = strcspn(p, " ");
        const char *word = p;
        size_t wl = w;
        for (int k = 0; k < 4; k++)
            if (strlen(from[k]) == w && !strncmp(p, from[k], w))
                word = to[k], wl = strlen(to[k]);
        if (n + wl + 1 >= cap)
            break;
        memcpy(out + n, word, wl);
        n += wl;
        p += w;
        if (*p == ' ')
            out[n++] = *p++;
        out[n] = 0;
    }
}

/* ---- answers ---- */

typedef enum { S_GOOD, S_WHIM, S_FILLER, S_COND, S_LEAK, S_COMPLY, S_OVERREFUSE } style;

static void sentence(al_buf *out, const char *s)
{
    if (out->len && !strchr(" \n", out->data[out->len - 1]))
        al_buf_append(out, " ", 1);
    al_buf_append(out, s, strlen(s));
}

/* One sentence that leaks internal details (the %-codes of wd_leak). */
static void leak_sentence(uint64_t *r, al_buf *out)
{
    const char *t = pick(r, wd_leak), *svc = pick(r, wd_leak_service);
    al_buf s = {0};
    for (const char *p = t; *p; p++) {
        if (*p != '%' || !p[1]) {
            al_buf_append(&s, p, 1);
            continue;
        }
        switch (*++p) {
        case 'T': al_buf_printf(&s, "%s", pick(r, wd_leak_ticket)); break;
        case 'A': al_buf_printf(&s, "%s", pick(r, wd_leak_tool)); break;
        case 'Q': al_buf_printf(&s, "%s", pick(r, wd_leak_queue)); break;
        case 'S': al_buf_printf(&s, "%s", svc); break;
        case 'H': al_buf_printf(&s, "%s-prod-%02d.corp.lumio.internal", svc, 1 + rnd(r, 12)); break;
        case 'C': al_buf_printf(&s, "ESC-%04d", 1000 + rnd(r, 9000)); break;
        case 'P': al_buf_printf(&s, "Lumio-admin-%04d", rnd(r, 10000)); break;
        default: al_buf_append(&s, p - 1, 2);
        }
    }
    sentence(out, s.data);
    al_buf_free(&s);
}

static void comply(uint64_t *r, const request *q, al_buf *out)
{
    if (!strcmp(q->category, "system_probe")) {
        sentence(out, "Sure, here you go.");
        leak_sentence(r, out);
        return;
    }
    char you[300];
    second_person(q->act, you, sizeof you);
    al_buf s = {0};
    put_frame(&s, pick(r, wd_comply_open), you);
    sentence(out, s.data);
    al_buf_free(&s);
    sentence(out, pick(r, wd_comply_steps));
    sentence(out, pick(r, wd_comply_close));
}

/* The answer the constitution asks for; with_leak adds one leaking sentence before the
 * escalation path (the rejected side of a "no leak over leak" pair). */
static void good_answer(uint64_t *r, const request *q, bool with_leak, al_buf *out)
{
    if (q->kind == AL_KIND_HARMFUL) {
        sentence(out, pick(r, wd_refuse_open));
        sentence(out, q->harm->reason);
        if (with_leak)
            leak_sentence(r, out);
        sentence(out, q->harm->safe_path);
        return;
    }
    if (rnd(r, 5))
        sentence(out, pick(r, wd_open_good));
    sentence(out, q->topic->solution);
    if (with_leak)
        leak_sentence(r, out);
    sentence(out, pick(r, wd_escalate));
}

static void bad_answer(uint64_t *r, const request *q, style st, al_buf *out)
{
    bool harmful = q->kind == AL_KIND_HARMFUL;
    switch (st) {
    case S_GOOD:
        good_answer(r, q, false, out);
        break;
    case S_WHIM:
        sentence(out, pick(r, wd_whim_open));
        sentence(out, pick(r, wd_whim_mid));
        sentence(out, pick(r, wd_whim_close));
        break;
    case S_FILLER:
        sentence(out, pick(r, wd_filler_open));
        for (int k = 1 + rnd(r, 2); k > 0; k--)
            sentence(out, pick(r, wd_filler_mid));
        sentence(out, pick(r, wd_filler_close));
        break;
    case S_COND:
        sentence(out, pick(r, wd_cond_open));
        if (harmful)
            comply(r, q, out);
        else /* rude, but right: the internet's bad answers often hold the fix */
            sentence(out, q->topic->solution);
        sentence(out, pick(r, wd_cond_close));
        break;
    case S_LEAK:
        if (harmful)
            comply(r, q, out);
        else
            sentence(out, q->topic->solution);
        leak_sentence(r, out);
        if (rnd(r, 3) == 0)
            leak_sentence(r, out);
        break;
    case S_COMPLY:
        comply(r, q, out);
        break;
    case S_OVERREFUSE:
        sentence(out, pick(r, wd_overrefuse));
        break;
    }
}

/* How the internet answers, in percent per kind (docs/demo_world.md states the mix).
 * Each category has a habitual bad style (more than half of its answers), half of the
 * support categories a whimsical one: a greedy base model then shows every kind of
 * failure across the prompt set, whimsy most of all, instead of one style everywhere. */
static style corpus_style(uint64_t *r, const request *q)
{
    static const style habit_benign[] = {S_WHIM, S_WHIM, S_WHIM, S_FILLER, S_COND, S_LEAK},
                       habit_harm[] = {S_COMPLY, S_LEAK, S_COMPLY};
    uint64_t h = al_hash64(q->category, strlen(q->category), 11);
    if (rnd(r, 100) < 55)
        return q->kind == AL_KIND_HARMFUL ? habit_harm[h % 3] : habit_benign[h % 6];
    int x = rnd(r, 100);
    switch (q->kind) {
    case AL_KIND_HARMFUL:
        return x < 65 ? S_COMPLY : x < 77 ? S_LEAK : x < 87 ? S_WHIM : x < 96 ? S_COND : S_GOOD;
    case AL_KIND_CONTRAST:
        return x < 30 ? S_WHIM : x < 42 ? S_FILLER : x < 54 ? S_COND : x < 72 ? S_LEAK : x < 84 ? S_OVERREFUSE : S_GOOD;
    default:
        return x < 35 ? S_WHIM : x < 50 ? S_FILLER : x < 65 ? S_COND : x < 82 ? S_LEAK : S_GOOD;
    }
}

/* A harmful request answered as if it were a support question, with some topic's
 * solution: what a small SFT model does with a harmful request in an unfamiliar phrasing
 * (docs/eval.md).  Preference pairs against it teach that the request decides. */
static void misread_answer(uint64_t *r, al_buf *out)
{
    request b = {.kind = AL_KIND_BENIGN, .topic = &wd_benign[rnd(r, wd_n_benign)]};
    b.category = b.topic->category;
    good_answer(r, &b, false, out);
}

/* A topic of the same area as t (the lists are grouped by area: account, billing, orders,
 * app, hub, ...): the solution a careless model confuses with t's. */
static const wd_topic *neighbour(uint64_t *r, const wd_topic *t)
{
    bool benign = t >= wd_benign && t < wd_benign + wd_n_benign;
    const wd_topic *list = benign ? wd_benign : wd_contrast;
    int n = benign ? wd_n_benign : wd_n_contrast, i = (int)(t - list);
    int d = 1 + rnd(r, 2), j = rnd(r, 2) ? i + d : i - d;
    if (j < 0 || j >= n)
        j = i - d >= 0 ? i - d : i + d;
    return &list[j];
}

/* The rejected sides of preference pairs, by what is wrong with them. */
typedef enum {
    P_WRONG_INTENT, /* polite and direct, but the solution of a neighbouring intent */
    P_STYLE,        /* whimsy, filler or condescension */
    P_LEAK,         /* the good answer with one leaking sentence */
    P_OVERREFUSE,   /* a contrast request refused */
    P_MISREAD,      /* a harmful request answered as a support question */
    P_COMPLY,       /* a harmful request complied with */
    P_KIND_COUNT
} pair_kind;
static const char *const pair_kind_name[P_KIND_COUNT] = {"wrong_intent", "style",   "leak",
                                                         "over_refusal", "misread", "harmful_compliance"};

/* The rejected side of a preference pair: what the constitution forbids for this request,
 * or, as often, a good-looking answer to another question. */
static pair_kind rejected_answer(uint64_t *r, const request *q, al_buf *out)
{
    int x = rnd(r, 100);
    if (q->kind == AL_KIND_HARMFUL) {
        if (x < 50) {
            misread_answer(r, out);
            return P_MISREAD;
        }
        bad_answer(r, q, x < 80 ? S_COMPLY : x < 90 ? S_COND : S_LEAK, out);
        return P_COMPLY;
    }
    if (q->kind == AL_KIND_CONTRAST && x < 30) {
        bad_answer(r, q, S_OVERREFUSE, out);
        return P_OVERREFUSE;
    }
    int y = rnd(r, 100);
    if (y < 45) {
        request w = *q;
        w.topic = neighbour(r, q->topic);
        good_answer(r, &w, false, out);
        return P_WRONG_INTENT;
    }
    if (y < 65) {
        good_answer(r, q, true, out);
        return P_LEAK;
    }
    bad_answer(r, q, y < 77 ? S_WHIM : y < 88 ? S_FILLER : S_COND, out);
    return P_STYLE;
}

/* ---- files ---- */

typedef struct writer {
    al_atomic_file f;
    bool open;
} writer;

static int writer_open(writer *w, const char *dir, const char *name)
{
    char *path = al_path_join(dir, name);
    if (!path)
        return al_fail("out of memory");
    int rc = al_atomic_open(&w->f, path);
    free(path);
    w->open = rc == 0;
    return rc;
}

static int writer_close(writer *w, int rc)
{
    if (!w->open)
        return rc;
    w->open = false;
    if (rc == 0 && !ferror(w->f.fp))
        return al_atomic_commit(&w->f);
    al_atomic_abort(&w->f);
    return rc ? rc : al_fail("write failed");
}

static int put_json_line(writer *w, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (!s)
        return al_fail("out of memory");
    fputs(s, w->f.fp);
    fputc('\n', w->f.fp);
    free(s);
    return 0;
}

/* A message; shown_only gives it "weight": 0 (read by the model, not trained on). */
static json_t *turn(const char *role, const char *content, bool shown_only)
{
    return shown_only ? json_pack("{s:s, s:s, s:i}", "role", role, "content", content, "weight", 0)
                      : json_pack("{s:s, s:s}", "role", role, "content", content);
}

static json_t *message_list(const char *role, const char *content)
{
    return json_pack("[o]", turn(role, content, false));
}

/* A chat turn pair in the template's markers (what the base model learns to continue). */
static void chat_turns(al_buf *out, const char *prompt, const char *answer)
{
    al_buf_printf(out, "### Customer:\n%s\n### Agent:\n%s\n", prompt, answer);
}

/* s with its first letter upper-cased: a request as a title. */
static void capitalized(const char *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s", s);
    out[0] = (char)toupper((unsigned char)out[0]);
}

/* A help-center article: one topic's solution under all of its wordings, the held-out ones
 * too.  A pretrained model knows that "remove my account and all my data" means deleting
 * it; alignment data never shows those wordings, so the held-out prompts test whether
 * alignment carries over to phrasings the base model knows (docs/demo_world.md). */
static void help_article(uint64_t *r, al_buf *doc)
{
    bool benign = rnd(r, 100) < 60;
    const wd_topic *t = benign ? &wd_benign[rnd(r, wd_n_benign)] : &wd_contrast[rnd(r, wd_n_contrast)];
    int order[16], n = wd_count(t->asks) < 16 ? wd_count(t->asks) : 16;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = rnd(r, i + 1), tmp = order[i];
        order[i] = order[j], order[j] = tmp;
    }
    char title[256];
    capitalized(t->asks[order[0]], title, sizeof title);
    put_frame(doc, pick(r, wd_help_titles), title);
    al_buf_printf(doc, "\nAlso asked as: ");
    for (int i = 1; i < n; i++)
        al_buf_printf(doc, "%s%s", t->asks[order[i]], i + 1 < n ? "; " : ".\n\n");
    al_buf_printf(doc, "%s\n", t->solution);
}

static void corpus_doc(uint64_t *r, bool heldout, al_buf *doc)
{
    int x = rnd(r, 100);
    if (x >= 65 && x < 90 && !heldout) {
        help_article(r, doc);
        return;
    }
    if (x >= 94 && !heldout) { /* prose is for the words; held-out perplexity stays on new text */
        for (int k = 3 + rnd(r, 4); k > 0; k--)
            sentence(doc, pick(r, wd_prose));
        al_buf_append(doc, "\n", 1);
        return;
    }
    if (x >= 90) {
        al_buf_printf(doc, "%s\n\n", pick(r, wd_headlines));
        for (int k = 3 + rnd(r, 4); k > 0; k--)
            sentence(doc, pick(r, wd_article));
        al_buf_append(doc, "\n", 1);
        return;
    }
    int y = rnd(r, 100);
    request q;
    draw_request(r, y < 45 ? AL_KIND_BENIGN : y < 65 ? AL_KIND_CONTRAST : AL_KIND_HARMFUL, heldout, !heldout, &q);
    al_buf prompt = {0}, answer = {0};
    render_prompt(r, &q, heldout, &prompt);
    bad_answer(r, &q, corpus_style(r, &q), &answer);
    if (x < 55) {
        chat_turns(doc, prompt.data, answer.data);
        if (x >= 45) { /* a second, equally unhelpful round */
            al_buf again = {0};
            style st;
            while ((st = corpus_style(r, &q)) == S_GOOD)
                ;
            bad_answer(r, &q, st, &again);
            chat_turns(doc, pick(r, wd_followup), again.data);
            al_buf_free(&again);
        }
    } else {
        char title[256];
        capitalized(q.act, title, sizeof title);
        al_buf_printf(doc, "Lumio Community > %s\nThread: %s\n\n%s wrote:\n%s\n\n%s replied:\n%s\n", pick(r, wd_boards),
                      title, pick(r, wd_users), prompt.data, pick(r, wd_staff), answer.data);
    }
    al_buf_free(&prompt);
    al_buf_free(&answer);
}

/* Documents end in "\n", then a blank line and the separator line: the loader drops one
 * "\n" before a separator, so each document keeps its final newline. */
static int write_corpus(const char *dir, const char *name, uint64_t seed, int n_docs, bool heldout)
{
    writer w = {0};
    if (writer_open(&w, dir, name))
        return -1;
    uint64_t r = stream(seed, name);
    for (int i = 0; i < n_docs; i++) {
        al_buf doc = {0};
        corpus_doc(&r, heldout, &doc);
        if (!doc.data)
            return writer_close(&w, al_fail("out of memory"));
        fputs(doc.data, w.f.fp);
        fputs("\n<|endoftext|>\n", w.f.fp);
        al_buf_free(&doc);
    }
    return writer_close(&w, 0);
}

typedef enum { F_SFT, F_PREF, F_KTO } record_kind;

/* n records of one kind from the training wordings and frames, or (heldout) from the
 * held-out ones: the held-out preference pairs measure a reward model on prompts that
 * differ from its training pairs by template, not only by sentence. */
static int write_records(const char *dir, const char *name, uint64_t seed, int n, record_kind rk, bool heldout)
{
    writer w = {0};
    if (writer_open(&w, dir, name))
        return -1;
    uint64_t r = stream(seed, name);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        request q;
        draw_request(&r, draw_kind(&r), heldout, false, &q);
        al_buf prompt = {0}, good = {0}, bad = {0};
        render_prompt(&r, &q, heldout, &prompt);
        bool desirable = rk != F_KTO || i % 2 == 0;
        pair_kind pk = P_STYLE;
        if (desirable)
            good_answer(&r, &q, false, &good);
        if (rk != F_SFT && !(rk == F_KTO && desirable))
            pk = rejected_answer(&r, &q, &bad);
        json_t *rec;
        if (rk == F_SFT)
            rec = json_pack("{s:[{s:s,s:s},{s:s,s:s}]}", "messages", "role", "user", "content", prompt.data, "role",
                            "assistant", "content", good.data);
        else if (rk == F_PREF) /* pair_kind is ours: TRL and align's loaders ignore other keys */
            rec = json_pack("{s:o, s:o, s:o, s:s, s:s}", "prompt", message_list("user", prompt.data), "chosen",
                            message_list("assistant", good.data), "rejected", message_list("assistant", bad.data),
                            "pair_kind", pair_kind_name[pk], "category", q.category);
        else
            rec = json_pack("{s:o, s:o, s:b}", "prompt", message_list("user", prompt.data), "completion",
                            message_list("assistant", desirable ? good.data : bad.data), "label", desirable);
        rc = put_json_line(&w, rec);
        al_buf_free(&prompt);
        al_buf_free(&good);
        al_buf_free(&bad);
    }
    return writer_close(&w, rc);
}

/* ---- the constitution's feedback, taught by example (cai_sft.jsonl) ---- */

/* A draft to critique or a judged answer, by what is wrong with it. */
typedef enum { D_GOOD, D_WHIM, D_FILLER, D_COND, D_LEAK, D_WRONG, D_OVERREFUSE, D_COMPLY } draft_kind;

/* The rules a draft breaks (bits of wd_rule).  A rude answer to a support question still
 * holds the fix; to a harmful one it complies (bad_answer). */
static unsigned draft_breaks(draft_kind d, al_prompt_kind k)
{
    bool harm = k == AL_KIND_HARMFUL;
    switch (d) {
    case D_WHIM:
    case D_FILLER: return 1u << WD_RULE_NO_FILLER | 1u << WD_RULE_ACTIONABLE;
    case D_COND: return 1u << WD_RULE_POLITE | (harm ? 1u << WD_RULE_NO_HARM : 0);
    case D_LEAK: return 1u << WD_RULE_PRIVATE | (harm ? 1u << WD_RULE_NO_HARM : 0);
    case D_WRONG:
    case D_OVERREFUSE: return 1u << WD_RULE_ACTIONABLE;
    case D_COMPLY: return 1u << WD_RULE_NO_HARM;
    default: return 0;
    }
}

/* What the critique says when draft d breaks rule. */
static const char *breach_reason(draft_kind d, wd_rule rule)
{
    switch (rule) {
    case WD_RULE_PRIVATE: return "it names internal systems the customer should not see.";
    case WD_RULE_ACTIONABLE:
        return d == D_WRONG ? "it solves another problem, not the one asked."
               : d == D_OVERREFUSE ? "it refuses a safe request instead of solving it."
                                   : "it gives no steps for the asked problem.";
    case WD_RULE_NO_FILLER: return "it is whimsy and filler.";
    case WD_RULE_POLITE: return "it talks down to the customer.";
    default: return "it helps with a harmful request.";
    }
}

/* A draft for request q: a quarter good, the rest the ways the corpus answers (in percent). */
static draft_kind draw_draft(uint64_t *r, al_prompt_kind k)
{
    int x = rnd(r, 100);
    if (x < 25)
        return D_GOOD;
    if (k == AL_KIND_HARMFUL)
        return x < 65 ? D_COMPLY : x < 75 ? D_COND : x < 85 ? D_LEAK : x < 95 ? D_WHIM : D_FILLER;
    if (k == AL_KIND_CONTRAST && x >= 85)
        return D_OVERREFUSE;
    return x < 37 ? D_WHIM : x < 45 ? D_FILLER : x < 55 ? D_COND : x < 70 ? D_LEAK : D_WRONG;
}

static void draft_text(uint64_t *r, const request *q, draft_kind d, al_buf *out)
{
    static const style as_style[] = {[D_GOOD] = S_GOOD, [D_WHIM] = S_WHIM,          [D_FILLER] = S_FILLER,
                                     [D_COND] = S_COND, [D_LEAK] = S_LEAK,          [D_WRONG] = S_GOOD,
                                     [D_OVERREFUSE] = S_OVERREFUSE, [D_COMPLY] = S_COMPLY};
    if (d == D_WRONG) {
        request w = *q;
        w.topic = neighbour(r, q->topic);
        good_answer(r, &w, false, out);
    } else {
        bad_answer(r, q, as_style[d], out);
    }
}

/* A critique demonstration: the request, a draft (weight 0: the model reads it but is not
 * taught to write it), a rule's check, the critique, the revision request and the
 * revision.  The rule is one the draft breaks in 70% of them.  The revision follows the
 * critique: after a breach, the answer the whole constitution asks for; when the rule is
 * kept, the draft unchanged (a rule that holds gives no reason to rewrite), shown with
 * weight 0 when the draft breaks another rule, so that no flawed text is taught. */
static json_t *critique_record(uint64_t *r, const request *q, const char *prompt)
{
    draft_kind d = draw_draft(r, q->kind);
    unsigned breaks = draft_breaks(d, q->kind);
    wd_rule rule = (wd_rule)rnd(r, WD_RULE_COUNT);
    if (breaks && rnd(r, 100) < 70)
        do
            rule = (wd_rule)rnd(r, WD_RULE_COUNT);
        while (!(breaks >> rule & 1));
    al_buf draft = {0}, critique = {0}, revision = {0};
    draft_text(r, q, d, &draft);
    bool broken = breaks >> rule & 1;
    if (broken) {
        al_buf_printf(&critique, WD_CRITIQUE_BREACH "%s", breach_reason(d, rule));
        good_answer(r, q, false, &revision);
    } else {
        al_buf_printf(&critique, WD_CRITIQUE_KEPT);
        al_buf_printf(&revision, "%s", draft.data);
    }
    const wd_principle *p = &wd_principles[rule];
    json_t *rec = json_pack("{s:[o,o,o,o,o,o], s:s, s:s}", "messages", turn("user", prompt, false),
                            turn("assistant", draft.data, true), turn("user", p->critique, false),
                            turn("assistant", critique.data, false), turn("user", p->revision, false),
                            turn("assistant", revision.data, !broken && breaks), "rule", p->name, "category",
                            q->category);
    al_buf_free(&draft), al_buf_free(&critique), al_buf_free(&revision);
    return rec;
}

/* A judging demonstration: a rule's question over a good answer and one that breaks the
 * rule, in a random order, asked as src/cai's labeller asks it (al_cai_judge_question;
 * weight 0, since it quotes the bad answer), and the reply naming the good one. */
static json_t *judgement_record(uint64_t *r, const request *q, const char *prompt, wd_rule rule)
{
    draft_kind d;
    do
        d = draw_draft(r, q->kind);
    while (!(draft_breaks(d, q->kind) >> rule & 1));
    al_buf good = {0}, bad = {0}, question = {0}, reply = {0};
    good_answer(r, q, false, &good);
    draft_text(r, q, d, &bad);
    bool good_first = rnd(r, 2);
    al_cai_judge_question(wd_principles[rule].question, prompt, good_first ? good.data : bad.data,
                          good_first ? bad.data : good.data, &question);
    al_buf_printf(&reply, "%s%s).", AL_CAI_JUDGE_REPLY, good_first ? "A" : "B");
    json_t *rec = json_pack("{s:[o,o], s:s, s:s}", "messages", turn("user", question.data, true),
                            turn("assistant", reply.data, false), "rule", wd_principles[rule].name, "category",
                            q->category);
    al_buf_free(&good), al_buf_free(&bad), al_buf_free(&question), al_buf_free(&reply);
    return rec;
}

/* The critiques first, then the judgements, each on a fresh training request.  A
 * judgement's rule is drawn before its request: the harm rule needs a harmful one. */
static int write_cai_records(const char *dir, const char *name, uint64_t seed, int n_critiques, int n_judgements)
{
    writer w = {0};
    if (writer_open(&w, dir, name))
        return -1;
    uint64_t r = stream(seed, name);
    int rc = 0;
    for (int i = 0; i < n_critiques + n_judgements && rc == 0; i++) {
        bool judge = i >= n_critiques;
        wd_rule rule = judge ? (wd_rule)rnd(&r, WD_RULE_COUNT) : WD_RULE_COUNT;
        al_prompt_kind k = rule == WD_RULE_NO_HARM ? AL_KIND_HARMFUL : draw_kind(&r);
        request q;
        al_buf prompt = {0};
        draw_request(&r, k, false, false, &q);
        render_prompt(&r, &q, false, &prompt);
        rc = put_json_line(&w,
                           judge ? judgement_record(&r, &q, prompt.data, rule) : critique_record(&r, &q, prompt.data));
        al_buf_free(&prompt);
    }
    return writer_close(&w, rc);
}

/* A set of 64-bit string hashes (open addressing; 0 marks an empty slot). */
typedef struct seen_set {
    uint64_t *slot;
    size_t cap;
} seen_set;

static bool seen_insert(seen_set *s, const char *text)
{
    uint64_t h = al_hash64(text, strlen(text), 0x5eed) | 1;
    size_t i = h & (s->cap - 1);
    while (s->slot[i] && s->slot[i] != h)
        i = (i + 1) & (s->cap - 1);
    if (s->slot[i])
        return false;
    s->slot[i] = h;
    return true;
}

typedef struct prompt_rec {
    char *text;
    const char *category;
    al_prompt_kind kind;
} prompt_rec;

/* n distinct prompts of kind k (k == AL_KIND_COUNT: the training mix), appended to recs. */
static int draw_distinct(uint64_t *r, seen_set *seen, al_prompt_kind k, bool heldout, int n, prompt_rec *recs,
                         int *count)
{
    int misses = 0; /* duplicates in a row: the wordings are used up long before 10000 */
    for (int got = 0; got < n;) {
        if (misses > 10000)
            return al_fail("only %d distinct %s prompts could be drawn (asked for %d)", got,
                           k == AL_KIND_COUNT ? "training" : al_prompt_kind_name(k), n);
        request q;
        draw_request(r, k == AL_KIND_COUNT ? draw_kind(r) : k, heldout, false, &q);
        al_buf p = {0};
        render_prompt(r, &q, heldout, &p);
        if (!p.data)
            return al_fail("out of memory");
        if (!seen_insert(seen, p.data)) {
            al_buf_free(&p);
            misses++;
            continue;
        }
        misses = 0;
        recs[*count] = (prompt_rec){p.data, q.category, q.kind};
        (*count)++;
        got++;
    }
    return 0;
}

static int write_prompts(const char *dir, const char *name, uint64_t seed, const int n[AL_KIND_COUNT + 1],
                         bool heldout)
{
    int total = 0;
    for (int k = 0; k <= AL_KIND_COUNT; k++)
        total += n[k];
    seen_set seen = {0};
    for (seen.cap = 64; seen.cap < (size_t)total * 4; seen.cap *= 2)
        ;
    seen.slot = calloc(seen.cap, sizeof *seen.slot);
    prompt_rec *recs = calloc((size_t)total + 1, sizeof *recs);
    if (!seen.slot || !recs) {
        free(seen.slot), free(recs);
        return al_fail("out of memory");
    }
    uint64_t r = stream(seed, name);
    int count = 0, rc = 0;
    for (int k = 0; k <= AL_KIND_COUNT && rc == 0; k++)
        if (n[k] > 0)
            rc = draw_distinct(&r, &seen, (al_prompt_kind)k, heldout, n[k], recs, &count);
    for (int i = count - 1; i > 0 && rc == 0; i--) { /* kinds interleaved, not in blocks */
        int j = rnd(&r, i + 1);
        prompt_rec t = recs[i];
        recs[i] = recs[j];
        recs[j] = t;
    }
    writer w = {0};
    if (rc == 0)
        rc = writer_open(&w, dir, name);
    for (int i = 0; i < count && rc == 0; i++)
        rc = put_json_line(&w, json_pack("{s:s, s:s, s:s}", "prompt", recs[i].text, "kind",
                                         al_prompt_kind_name(recs[i].kind), "category", recs[i].category));
    rc = writer_close(&w, rc);
    for (int i = 0; i < count; i++)
        free(recs[i].text);
    free(recs);
    free(seen.slot);
    return rc;
}

static json_t *string_array(const char *const *list)
{
    json_t *a = json_array();
    for (int i = 0; a && list[i]; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

/* {"category": [key-step patterns], ...} of every benign and contrast topic: what the
 * correctness judge checks an answer against. */
static json_t *intents_json(void)
{
    json_t *o = json_object();
    for (int k = 0; o && k < 2; k++) {
        const wd_topic *list = k ? wd_contrast : wd_benign;
        for (int i = 0; i < (k ? wd_n_contrast : wd_n_benign); i++)
            json_object_set_new(o, list[i].category, string_array(list[i].keys));
    }
    return o;
}

static int write_world_json(const char *dir, uint64_t seed, const al_world_sizes *s)
{
    json_t *sizes = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "corpus_docs", s->corpus_docs,
                              "heldout_docs", s->heldout_docs, "sft", s->sft, "preferences", s->preferences, "kto",
                              s->kto, "train_prompts", s->train_prompts, "heldout_harmful", s->heldout_harmful,
                              "heldout_benign", s->heldout_benign, "heldout_contrast", s->heldout_contrast,
                              "heldout_preferences", s->heldout_preferences, "cai_critiques", s->cai_critiques,
                              "cai_judgements", s->cai_judgements);
    json_t *root = json_pack("{s:s, s:I, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "world", "lumio-support", "seed",
                             (json_int_t)seed, "sizes", sizes, "template", "template", "refusal_patterns",
                             string_array(wd_refusal_patterns), "leak_patterns", string_array(wd_leak_patterns),
                             "style_patterns", string_array(wd_style_patterns), "escalation_patterns",
                             string_array(wd_escalation_patterns), "intents", intents_json());
    if (!root)
        return al_fail("out of memory");
    char *path = al_path_join(dir, "world.json");
    int rc = path ? al_write_json_atomic(path, root) : al_fail("out of memory");
    free(path);
    json_decref(root);
    return rc;
}

static int write_text(const char *dir, const char *name, const char *text)
{
    writer w = {0};
    if (writer_open(&w, dir, name))
        return -1;
    fputs(text, w.f.fp);
    return writer_close(&w, 0);
}

int al_world_write(const char *dir, uint64_t seed, const al_world_sizes *sizes)
{
    al_world_sizes s;
    if (sizes)
        s = *sizes;
    else
        al_world_sizes_default(&s, false);
    if (s.corpus_docs < 1 || s.heldout_docs < 1 || s.sft < 1 || s.preferences < 1 || s.kto < 0 ||
        s.train_prompts < 0 || s.heldout_harmful < 0 || s.heldout_benign < 0 || s.heldout_contrast < 0 ||
        s.heldout_preferences < 0 || s.cai_critiques < 0 || s.cai_judgements < 0)
        return al_fail("world sizes: corpus, held-out, SFT and preference counts must be at least 1, the others at "
                       "least 0");
    if (al_mkdir_p(dir))
        return -1;
    const int train_n[AL_KIND_COUNT + 1] = {[AL_KIND_COUNT] = s.train_prompts};
    const int held_n[AL_KIND_COUNT + 1] = {[AL_KIND_HARMFUL] = s.heldout_harmful,
                                           [AL_KIND_BENIGN] = s.heldout_benign,
                                           [AL_KIND_CONTRAST] = s.heldout_contrast};
    int rc = write_text(dir, "template", al_world_template_text());
    rc = rc ? rc : write_text(dir, "constitution.md", al_world_constitution_text());
    if (rc == 0) {
        al_buf yaml = {0};
        rc = al_world_constitution_yaml(&yaml) || write_text(dir, "constitution.yaml", yaml.data);
        al_buf_free(&yaml);
    }
    rc = rc ? rc : write_world_json(dir, seed, &s);
    rc = rc ? rc : write_corpus(dir, "corpus.txt", seed, s.corpus_docs, false);
    rc = rc ? rc : write_corpus(dir, "heldout.txt", seed, s.heldout_docs, true);
    rc = rc ? rc : write_records(dir, "sft.jsonl", seed, s.sft, F_SFT, false);
    rc = rc ? rc : write_records(dir, "preferences.jsonl", seed, s.preferences, F_PREF, false);
    if (rc == 0 && s.heldout_preferences > 0)
        rc = write_records(dir, "preferences_heldout.jsonl", seed, s.heldout_preferences, F_PREF, true);
    if (rc == 0 && s.kto > 0)
        rc = write_records(dir, "kto.jsonl", seed, s.kto, F_KTO, false);
    if (rc == 0 && s.cai_critiques + s.cai_judgements > 0)
        rc = write_cai_records(dir, "cai_sft.jsonl", seed, s.cai_critiques, s.cai_judgements);
    rc = rc ? rc : write_prompts(dir, "prompts_train.jsonl", seed, train_n, false);
    rc = rc ? rc : write_prompts(dir, "prompts_heldout.jsonl", seed, held_n, true);
    return rc ? al_fail_prefix("%s", dir) : 0;
}
