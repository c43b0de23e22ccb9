/* Chat templates, spans, loss masks, added special tokens, template files. */
#include "test.h"

#include "align/data.h"
#include "align/tokenizer.h"

#define MSG(r, c) ((al_message){.role = (r), .content = (char *)(c)})
#define NMSG(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const al_message conv_sys[] = {
    MSG(AL_ROLE_SYSTEM, "You are a helpful assistant."),
    MSG(AL_ROLE_USER, "What is 2+2?"),
    MSG(AL_ROLE_ASSISTANT, "2+2 is 4."),
    MSG(AL_ROLE_USER, "And 3+3?"),
};
static const al_message conv_nosys[] = {
    MSG(AL_ROLE_USER, "Hi"),
    MSG(AL_ROLE_ASSISTANT, "Hello! How can I help?"),
    MSG(AL_ROLE_USER, "Tell me a story."),
    MSG(AL_ROLE_ASSISTANT, "Once upon a time, there was a cat."),
};

static char *render(const al_chat_template *t, const al_message *m, int n, bool gen, int *ss, int *se)
{
    al_buf b = {0};
    if (al_chat_render(t, m, n, gen, &b, ss, se)) {
        fprintf(stderr, "render failed: %s\n", al_errmsg());
        al_buf_free(&b);
        return strdup("<render failed>");
    }
    return b.data;
}

static bool span_is(const char *text, int s, int e, const char *want)
{
    size_t n = strlen(want);
    bool ok = e >= s && (size_t)(e - s) == n && memcmp(text + s, want, n) == 0;
    if (!ok)
        fprintf(stderr, "  span [%d,%d) = '%.*s', expected '%s'\n", s, e, e >= s ? e - s : 0, text + s, want);
    return ok;
}

static void test_chatml_render(void)
{
    al_chat_template *t;
    CHECK_OK(al_chat_template_builtin(&t, "chatml"));
    CHECK(strcmp(al_chat_template_name(t), "chatml") == 0);
    int ss[4], se[4];

    char *s = render(t, conv_sys, NMSG(conv_sys), true, ss, se);
    const char *want = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                       "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                       "<|im_start|>assistant\n2+2 is 4.<|im_end|>\n"
                       "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
                       "<|im_start|>assistant\n";
    CHECKF(strcmp(s, want) == 0, "got:\n%s", s);
    CHECK(span_is(s, ss[0], se[0], "You are a helpful assistant.<|im_end|>"));
    CHECK(span_is(s, ss[1], se[1], "What is 2+2?<|im_end|>"));
    CHECK(span_is(s, ss[2], se[2], "2+2 is 4.<|im_end|>"));
    CHECK(span_is(s, ss[3], se[3], "And 3+3?<|im_end|>"));
    CHECK(ss[2] == (int)strlen("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                               "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"));
    free(s);

    s = render(t, conv_nosys, NMSG(conv_nosys), false, ss, se);
    want = "<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
           "<|im_start|>user\nTell me a story.<|im_end|>\n"
           "<|im_start|>assistant\nOnce upon a time, there was a cat.<|im_end|>\n";
    CHECKF(strcmp(s, want) == 0, "got:\n%s", s);
    CHECK(span_is(s, ss[1], se[1], "Hello! How can I help?<|im_end|>"));
    CHECK(span_is(s, ss[3], se[3], "Once upon a time, there was a cat.<|im_end|>"));
    free(s);

    /* Generation prompt alone, and appending after existing text (absolute offsets). */
    s = render(t, conv_nosys, 1, true, NULL, NULL);
    CHECK(strcmp(s, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n") == 0);
    free(s);
    al_buf b = {0};
    al_buf_append(&b, "XY", 2);
    CHECK_OK(al_chat_render(t, conv_nosys, 2, false, &b, ss, se));
    CHECK(span_is(b.data, ss[0], se[0], "Hi<|im_end|>"));
    CHECK(ss[0] == 2 + (int)strlen("<|im_start|>user\n"));
    al_buf_free(&b);

    const char **sp;
    int nsp;
    CHECK_OK(al_chat_template_specials(t, &sp, &nsp));
    CHECK(nsp == 2 && !strcmp(sp[0], "<|im_start|>") && !strcmp(sp[1], "<|im_end|>"));

    al_message bad = MSG(AL_ROLE_USER, NULL);
    b = (al_buf){0};
    CHECK(al_chat_render(t, &bad, 1, false, &b, NULL, NULL) == -1);
    CHECK(strstr(al_errmsg(), "message 0") != NULL);
    al_buf_free(&b);
    al_chat_template_free(t);

    CHECK_OK(al_chat_template_builtin(&t, NULL)); /* the default */
    CHECK(strcmp(al_chat_template_name(t), "chatml") == 0);
    al_chat_template_free(t);
    CHECK(al_chat_template_builtin(&t, "vicuna") == -1 && t == NULL);
}

/* Expected strings written from the Hugging Face chat_template of
 * meta-llama/Llama-2-7b-chat-hf: bos + '[INST] ' + content.strip() + ' [/INST]' per user turn,
 * ' ' + content.strip() + ' ' + eos per assistant turn, the system message folded into the
 * first user turn as '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + user before the strip(). */
static void test_llama2_render(void)
{
    al_chat_template *t;
    CHECK_OK(al_chat_template_builtin(&t, "llama2"));
    int ss[4], se[4];
    const al_message c1[] = {
        MSG(AL_ROLE_SYSTEM, "Be brief."),
        MSG(AL_ROLE_USER, " Hi there \n"),
        MSG(AL_ROLE_ASSISTANT, "Hello."),
        MSG(AL_ROLE_USER, "Bye"),
    };
    char *s = render(t, c1, 4, false, ss, se);
    /* strip() of the combined first turn keeps the user's leading space (it is inside). */
    const char *want = "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi there [/INST] Hello. </s>"
                       "<s>[INST] Bye [/INST]";
    CHECKF(strcmp(s, want) == 0, "got:\n%s", s);
    CHECK(span_is(s, ss[0], se[0], "Be brief.\n<</SYS>>"));
    CHECK(span_is(s, ss[1], se[1], " Hi there [/INST]"));
    CHECK(span_is(s, ss[2], se[2], "Hello. </s>"));
    CHECK(span_is(s, ss[3], se[3], "Bye [/INST]"));
    free(s);
    /* Llama-2 has no generation prompt: the text already ends in [/INST]. */
    s = render(t, c1, 4, true, NULL, NULL);
    CHECK(strcmp(s, want) == 0);
    free(s);

    const al_message c2[] = {
        MSG(AL_ROLE_USER, "What is the capital of France?"),
        MSG(AL_ROLE_ASSISTANT, " Paris. "),
        MSG(AL_ROLE_USER, "Thanks!"),
        MSG(AL_ROLE_ASSISTANT, "You're welcome.\n"),
    };
    s = render(t, c2, 4, false, ss, se);
    want = "<s>[INST] What is the capital of France? [/INST] Paris. </s><s>[INST] Thanks! [/INST] You're welcome. </s>";
    CHECKF(strcmp(s, want) == 0, "got:\n%s", s);
    CHECK(span_is(s, ss[1], se[1], "Paris. </s>"));
    CHECK(span_is(s, ss[3], se[3], "You're welcome. </s>"));
    free(s);

    al_buf b = {0};
    CHECK(al_chat_render(t, c2 + 1, 2, false, &b, NULL, NULL) == -1); /* starts with assistant */
    CHECK(strstr(al_errmsg(), "alternate") != NULL);
    const al_message c3[] = {MSG(AL_ROLE_USER, "a"), MSG(AL_ROLE_SYSTEM, "b")};
    CHECK(al_chat_render(t, c3, 2, false, &b, NULL, NULL) == -1);
    CHECK(strstr(al_errmsg(), "system") != NULL);
    al_buf_free(&b);

    const char **sp;
    int nsp;
    al_chat_template_specials(t, &sp, &nsp);
    CHECK(nsp == 2 && !strcmp(sp[0], "<s>") && !strcmp(sp[1], "</s>"));
    al_chat_template_free(t);
}

static int count_ones(const al_ints *mask)
{
    int k = 0;
    for (int i = 0; i < mask->n; i++)
        k += mask->v[i] != 0;
    return k;
}

/* Tokens of an assistant part tokenized on its own, as a continuation of earlier text. */
static int ntok(const al_tokenizer *tok, const char *s)
{
    al_ints ids = {0};
    if (al_tokenizer_encode_cont(tok, s, strlen(s), false, &ids))
        fprintf(stderr, "encode failed: %s\n", al_errmsg());
    int n = ids.n;
    al_ints_free(&ids);
    return n;
}

static void tokenize(const al_chat_template *t, const al_tokenizer *tok, const al_message *m, int n,
                     al_mask_mode mode, al_ints *ids, al_ints *mask)
{
    ids->n = mask->n = 0;
    CHECK_OK(al_chat_tokenize(t, tok, m, n, mode, ids, mask));
    CHECK(ids->n == mask->n);
}

/* Assistant-only masks count the tokens of each assistant turn's content and end marker.
 * The expected number tokenizes those parts on their own and adds them up: in these
 * conversations no token crosses the border between an assistant part and the header
 * before it or the text after it ("\n" is its own token in both vocabularies), so the
 * in-context count must equal the separate one.  With the markers added as special tokens
 * "<|im_end|>" is exactly one token. */
static void test_masks_chatml(const char *path, bool add_specials)
{
    al_tokenizer *tok;
    CHECK_OK(al_tokenizer_load(&tok, path));
    if (!tok)
        return;
    int v0 = al_tokenizer_vocab_size(tok);
    if (add_specials) {
        int a, b;
        CHECK_OK(al_tokenizer_add_special(tok, "<|im_start|>", &a));
        CHECK_OK(al_tokenizer_add_special(tok, "<|im_end|>", &b));
        CHECK(a == v0 && b == v0 + 1 && al_tokenizer_vocab_size(tok) == v0 + 2);
    }
    al_chat_template *t;
    CHECK_OK(al_chat_template_builtin(&t, "chatml"));
    al_ints ids = {0}, mask = {0};

    tokenize(t, tok, conv_nosys, 4, AL_MASK_ASSISTANT, &ids, &mask);
    int want = ntok(tok, "Hello! How can I help?<|im_end|>") + ntok(tok, "Once upon a time, there was a cat.<|im_end|>");
    if (add_specials)
        CHECK(want == ntok(tok, "Hello! How can I help?") + ntok(tok, "Once upon a time, there was a cat.") + 2);
    CHECKF(count_ones(&mask) == want, "%s: %d assistant tokens, expected %d", path, count_ones(&mask), want);
    CHECK(ids.n > want + 10);
    CHECK(ids.v[0] == al_tokenizer_bos(tok) && mask.v[0] == 0);
    /* The masked-in tokens are exactly the assistant parts' tokens (for the last turn at the end,
     * followed by the "\n" trailer). */
    {
        al_ints a = {0};
        const char *last = "Once upon a time, there was a cat.<|im_end|>";
        al_tokenizer_encode_cont(tok, last, strlen(last), false, &a);
        CHECK(a.n + 1 <= ids.n && memcmp(ids.v + ids.n - 1 - a.n, a.v, (size_t)a.n * sizeof(int)) == 0);
        for (int i = 0; i < a.n; i++)
            CHECK(mask.v[ids.n - 1 - a.n + i] == 1);
        CHECK(mask.v[ids.n - 1] == 0); /* the trailing "\n" */
        al_ints_free(&a);
    }
    int total = ids.n;

    tokenize(t, tok, conv_nosys, 4, AL_MASK_ALL, &ids, &mask);
    CHECK(ids.n == total && count_ones(&mask) == total);

    tokenize(t, tok, conv_nosys, 4, AL_MASK_COMPLETION, &ids, &mask);
    CHECK(ids.n == total);
    CHECK(count_ones(&mask) == ntok(tok, "Once upon a time, there was a cat.<|im_end|>"));

    tokenize(t, tok, conv_sys, 4, AL_MASK_ASSISTANT, &ids, &mask);
    CHECKF(count_ones(&mask) == ntok(tok, "2+2 is 4.<|im_end|>"), "%d vs %d", count_ones(&mask),
           ntok(tok, "2+2 is 4.<|im_end|>"));
    tokenize(t, tok, conv_sys, 4, AL_MASK_COMPLETION, &ids, &mask); /* ends with a user turn */
    CHECK(count_ones(&mask) == 0);

    /* The token sequence is the rendered text's: decode gives it back (byte-level kind). */
    if (strcmp(al_tokenizer_kind(tok), "gpt2") == 0) {
        al_buf text = {0}, dec = {0};
        al_chat_render(t, conv_sys, 4, false, &text, NULL, NULL);
        CHECK_OK(al_tokenizer_decode(tok, ids.v + 1, ids.n - 1, &dec));
        CHECK(dec.data && strcmp(dec.data, text.data) == 0);
        al_buf_free(&text);
        al_buf_free(&dec);
    }
    if (add_specials) {
        int n_start = 0;
        for (int i = 0; i < ids.n; i++)
            n_start += ids.v[i] == v0;
        CHECK(n_start == 4); /* one id per <|im_start|> */
    }
    al_ints_free(&ids);
    al_ints_free(&mask);
    al_chat_template_free(t);
    al_tokenizer_free(tok);
}

/* Llama-2 with a vocabulary that has BOS/EOS: "<s>"/"</s>" become those ids, no extra BOS is
 * prepended (the template writes its own).  SentencePiece and GPT-2 attach the space before
 * an assistant answer to its first word (" Hello"), and that token overlaps the answer, so
 * the expected count tokenizes " " + answer + " " and adds one for the EOS. */
static void test_masks_llama2(const char *path)
{
    al_tokenizer *tok;
    CHECK_OK(al_tokenizer_load(&tok, path));
    if (!tok)
        return;
    al_chat_template *t;
    CHECK_OK(al_chat_template_builtin(&t, "llama2"));
    const al_message c[] = {
        MSG(AL_ROLE_SYSTEM, "Be brief."),
        MSG(AL_ROLE_USER, "Hi there"),
        MSG(AL_ROLE_ASSISTANT, "Hello."),
        MSG(AL_ROLE_USER, "Tell me a story"),
        MSG(AL_ROLE_ASSISTANT, "Once upon a time there was a dog."),
    };
    al_ints ids = {0}, mask = {0};
    tokenize(t, tok, c, 5, AL_MASK_ASSISTANT, &ids, &mask);
    int want = ntok(tok, " Hello. ") + 1 + ntok(tok, " Once upon a time there was a dog. ") + 1;
    CHECKF(count_ones(&mask) == want, "%s: %d vs %d", path, count_ones(&mask), want);
    int bos = al_tokenizer_bos(tok), eos = al_tokenizer_eos(tok), nb = 0, ne = 0;
    for (int i = 0; i < ids.n; i++) {
        nb += ids.v[i] == bos;
        ne += ids.v[i] == eos;
    }
    if (bos != eos)
        CHECK(nb == 2 && ne == 2);
    else
        CHECK(nb == 4);
    CHECK(ids.v[0] == bos && mask.v[0] == 0);
    CHECK(ids.v[ids.n - 1] == eos && mask.v[ids.n - 1] == 1);
    /* The ids equal Meta's Llama-2 reference tokenization (llama/generation.py): each
     * "[INST] {user} [/INST] {answer} " encoded on its own with BOS and EOS, concatenated. */
    {
        const char *turns[2] = {"[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST] Hello. ",
                                "[INST] Tell me a story [/INST] Once upon a time there was a dog. "};
        al_ints ref = {0};
        for (int k = 0; k < 2; k++)
            al_tokenizer_encode(tok, turns[k], strlen(turns[k]), true, true, &ref);
        CHECKF(ref.n == ids.n && memcmp(ref.v, ids.v, (size_t)ids.n * sizeof(int)) == 0, "%s: %d vs %d ids", path,
               ids.n, ref.n);
        al_ints_free(&ref);
    }
    tokenize(t, tok, c, 5, AL_MASK_COMPLETION, &ids, &mask);
    CHECK(count_ones(&mask) == ntok(tok, " Once upon a time there was a dog. ") + 1);
    al_ints_free(&ids);
    al_ints_free(&mask);
    al_chat_template_free(t);
    al_tokenizer_free(tok);
}

/* A turn with no_loss ("weight": 0) is rendered but never trained on: under every mask
 * mode it adds no ones, and the ids do not change. */
static void test_no_loss(const char *path)
{
    al_tokenizer *tok;
    CHECK_OK(al_tokenizer_load(&tok, path));
    if (!tok)
        return;
    al_chat_template *t;
    CHECK_OK(al_chat_template_builtin(&t, "chatml"));
    al_message c[] = {
        MSG(AL_ROLE_USER, "Tell me a story"),
        MSG(AL_ROLE_ASSISTANT, "Once upon a time there was a cat."),
        MSG(AL_ROLE_USER, "Make it a dog"),
        MSG(AL_ROLE_ASSISTANT, "Once upon a time there was a dog."),
    };
    const al_mask_mode modes[] = {AL_MASK_ALL, AL_MASK_ASSISTANT, AL_MASK_COMPLETION};
    for (int k = 0; k < 3; k++) {
        al_ints ids = {0}, mask = {0}, ids2 = {0}, mask2 = {0};
        c[1].no_loss = false;
        tokenize(t, tok, c, 4, modes[k], &ids, &mask);
        c[1].no_loss = true;
        tokenize(t, tok, c, 4, modes[k], &ids2, &mask2);
        CHECK(ids.n == ids2.n && memcmp(ids.v, ids2.v, (size_t)ids.n * sizeof(int)) == 0);
        /* the draft's tokens (and its end marker) leave the loss, nothing else does */
        int draft = ntok(tok, "Once upon a time there was a cat."), dropped = count_ones(&mask) - count_ones(&mask2);
        if (modes[k] == AL_MASK_COMPLETION)
            CHECKF(dropped == 0, "%s: completion mask dropped %d", path, dropped);
        else
            CHECKF(dropped >= draft && dropped <= draft + ntok(tok, "<|im_end|>\n") + 1,
                   "%s mode %d: %d dropped for a %d-token draft", path, k, dropped, draft);
        for (int i = 0; i < mask.n; i++)
            CHECK(mask2.v[i] <= mask.v[i]);
        al_ints_free(&ids), al_ints_free(&mask), al_ints_free(&ids2), al_ints_free(&mask2);
    }
    /* the last turn shown only: its EOS is not trained on either */
    c[1].no_loss = false, c[3].no_loss = true;
    al_ints ids = {0}, mask = {0};
    tokenize(t, tok, c, 4, AL_MASK_ASSISTANT, &ids, &mask);
    CHECK(mask.v[mask.n - 1] == 0);
    /* a user turn shown only: out of the loss under --mask all, which trains on user turns */
    al_ints ids2 = {0}, mask2 = {0};
    c[3].no_loss = false;
    tokenize(t, tok, c, 4, AL_MASK_ALL, &ids, &mask);
    c[2].no_loss = true;
    tokenize(t, tok, c, 4, AL_MASK_ALL, &ids2, &mask2);
    CHECK(count_ones(&mask) - count_ones(&mask2) >= ntok(tok, "Make it a dog"));
    al_ints_free(&ids), al_ints_free(&mask), al_ints_free(&ids2), al_ints_free(&mask2);
    al_chat_template_free(t);
    al_tokenizer_free(tok);
}

static void test_prompt_completion(const char *path)
{
    al_tokenizer *tok;
    CHECK_OK(al_tokenizer_load(&tok, path));
    if (!tok)
        return;
    al_ints ids = {0}, mask = {0}, whole = {0};
    const char *p = "Once upon a time", *c = " there was a dog.";
    CHECK_OK(al_chat_tokenize_pc(tok, p, c, true, &ids, &mask));
    CHECK(ids.n == mask.n);
    CHECK(count_ones(&mask) == ntok(tok, c) + 1);
    CHECK(mask.v[ids.n - 1] == 1 && ids.v[ids.n - 1] == al_tokenizer_eos(tok));
    CHECK(mask.v[0] == 0 && ids.v[0] == al_tokenizer_bos(tok));
    /* The cut falls before a space, where neither vocabulary merges: the same ids as the
     * whole text (so the completion carries no extra dummy-prefix space). */
    char buf[128];
    snprintf(buf, sizeof buf, "%s%s", p, c);
    al_tokenizer_encode(tok, buf, strlen(buf), true, true, &whole);
    CHECK(whole.n == ids.n && memcmp(whole.v, ids.v, (size_t)ids.n * sizeof(int)) == 0);
    ids.n = mask.n = 0;
    CHECK_OK(al_chat_tokenize_pc(tok, p, c, false, &ids, &mask));
    CHECK(count_ones(&mask) == ntok(tok, c) && ids.n == whole.n - 1);
    al_ints_free(&ids);
    al_ints_free(&mask);
    al_ints_free(&whole);
    al_tokenizer_free(tok);
}

static void test_add_special(const char *path)
{
    al_tokenizer *tok;
    CHECK_OK(al_tokenizer_load(&tok, path));
    if (!tok)
        return;
    const char *plain = "Once upon a time, <|im there was a big dog. |>";
    al_ints before = {0}, after = {0};
    al_tokenizer_encode(tok, plain, strlen(plain), true, false, &before);
    int v0 = al_tokenizer_vocab_size(tok), id = -1, id2 = -1;
    CHECK(al_tokenizer_find(tok, "<|im_start|>", 12) == -1);
    CHECK_OK(al_tokenizer_add_special(tok, "<|im_start|>", &id));
    CHECK(id == v0 && al_tokenizer_vocab_size(tok) == v0 + 1);
    CHECK(al_tokenizer_find(tok, "<|im_start|>", 12) == id && al_tokenizer_is_special(tok, id));
    CHECK_OK(al_tokenizer_add_special(tok, "<|im_start|>", &id2)); /* again: the same id */
    CHECK(id2 == id && al_tokenizer_vocab_size(tok) == v0 + 1);
    /* Old pieces are still found after the arena moved. */
    const char *p;
    size_t n;
    CHECK_OK(al_tokenizer_piece(tok, 300, &p, &n));
    CHECK(al_tokenizer_find(tok, p, n) == 300 || al_tokenizer_find(tok, p, n) < 300);

    al_tokenizer_encode(tok, plain, strlen(plain), true, false, &after);
    CHECK(after.n == before.n && memcmp(after.v, before.v, (size_t)after.n * sizeof(int)) == 0);

    al_ints ids = {0};
    const char *s = "<|im_start|>user\nHi<|im_start|>";
    CHECK_OK(al_tokenizer_encode(tok, s, strlen(s), false, false, &ids));
    CHECK(ids.n >= 3 && ids.v[0] == id && ids.v[ids.n - 1] == id);
    CHECK(ids.n == 2 + ntok(tok, "user\nHi"));
    al_buf dec = {0};
    CHECK_OK(al_tokenizer_decode(tok, ids.v, ids.n, &dec));
    CHECKF(dec.data && strcmp(dec.data, s) == 0, "decoded '%s'", dec.data);
    al_buf_free(&dec);
    al_ints_free(&ids);
    al_ints_free(&before);
    al_ints_free(&after);
    CHECK(al_tokenizer_add_special(tok, "", NULL) == -1);
    /* An existing piece keeps its id and is split out from then on (GPT-2's encoder.json
     * treats <|endoftext|> as text by default). */
    int eot = al_tokenizer_find(tok, "<|endoftext|>", 13);
    if (eot >= 0) {
        int v1 = al_tokenizer_vocab_size(tok), got = -1;
        CHECK_OK(al_tokenizer_add_special(tok, "<|endoftext|>", &got));
        CHECK(got == eot && al_tokenizer_vocab_size(tok) == v1);
        ids.n = 0;
        CHECK_OK(al_tokenizer_encode(tok, "a<|endoftext|>b", 15, false, false, &ids));
        CHECK(ids.n == 3 && ids.v[1] == eot);
        al_ints_free(&ids);
    }
    al_tokenizer_free(tok);
}

static const char *write_file(const char *dir, const char *name, const char *text)
{
    static char path[8][1200];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 1200, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
    return p;
}

static void expect_error(const char *dir, const char *name, const char *text, int line, const char *what)
{
    const char *path = write_file(dir, name, text);
    al_chat_template *t = (al_chat_template *)1;
    int rc = al_chat_template_load(&t, path);
    CHECK(rc == -1 && t == NULL);
    char prefix[1300];
    snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    CHECKF(strncmp(al_errmsg(), prefix, strlen(prefix)) == 0 && strstr(al_errmsg(), what),
           "'%s' expected to start with '%s' and mention '%s'", al_errmsg(), prefix, what);
}

static void test_template_file(void)
{
    const char *dir = test_tmpdir("chat");
    const char *chatml =
        "# ChatML written as a template file\n"
        "name = \"my-chatml\"\n"
        "system_prefix = \"<|im_start|>system\\n\"\n"
        "system_suffix = \"<|im_end|>\"\n"
        "system_trailer = \"\\n\"\n"
        "  user_prefix=\"<|im_start|>user\\n\"   # trailing comment\n"
        "user_suffix = \"<|im_end|>\"\n"
        "user_trailer = \"\\n\"\n"
        "\n"
        "assistant_prefix = \"<|im_start|>assistant\\n\"\n"
        "assistant_suffix = \"<|im_end|>\"\n"
        "assistant_trailer = \"\\n\"\r\n"
        "generation_prompt = \"<|im_start|>assistant\\n\"\n"
        "special = \"<|im_start|>\"\n"
        "special = \"<|im_end|>\"\n"
        "bos = true\n";
    al_chat_template *t, *ref;
    CHECK_OK(al_chat_template_load(&t, write_file(dir, "chatml.tpl", chatml)));
    CHECK_OK(al_chat_template_builtin(&ref, "chatml"));
    if (t) {
        CHECK(strcmp(al_chat_template_name(t), "my-chatml") == 0);
        int ss[4], se[4], rs[4], re[4];
        char *a = render(t, conv_sys, 4, true, ss, se), *b = render(ref, conv_sys, 4, true, rs, re);
        CHECK(strcmp(a, b) == 0);
        CHECK(memcmp(ss, rs, sizeof ss) == 0 && memcmp(se, re, sizeof se) == 0);
        free(a);
        free(b);
        const char **sp;
        int nsp;
        al_chat_template_specials(t, &sp, &nsp);
        CHECK(nsp == 2 && !strcmp(sp[1], "<|im_end|>"));
        al_chat_template_free(t);
    }
    al_chat_template_free(ref);

    /* Escapes, defaults (missing keys are empty), eos = true with a tokenizer. */
    const char *simple = "user_prefix = \"### User:\\t\\\"q\\\"\\\\ \"\n"
                         "user_trailer = \"\\n\"\n"
                         "assistant_prefix = \"### Assistant: \"\n"
                         "assistant_trailer = \"\\x0a\"\n"
                         "generation_prompt = \"### Assistant: \"\n"
                         "bos = false\n"
                         "eos = true # a comment\n";
    CHECK_OK(al_chat_template_load(&t, write_file(dir, "simple.tpl", simple)));
    if (t) {
        int ss[2], se[2];
        char *s = render(t, conv_nosys, 2, false, ss, se);
        CHECKF(strcmp(s, "### User:\t\"q\"\\ Hi\n### Assistant: Hello! How can I help?\n") == 0, "got '%s'", s);
        CHECK(span_is(s, ss[1], se[1], "Hello! How can I help?"));
        free(s);
        s = render(t, conv_nosys, 1, true, NULL, NULL);
        CHECK(strcmp(s, "### User:\t\"q\"\\ Hi\n### Assistant: ") == 0);
        free(s);
        al_tokenizer *tok;
        CHECK_OK(al_tokenizer_load(&tok, shared_path("models/gpt2-tokenizer/encoder.json")));
        al_ints ids = {0}, mask = {0};
        tokenize(t, tok, conv_nosys, 2, AL_MASK_ASSISTANT, &ids, &mask);
        int eos = al_tokenizer_eos(tok);
        /* no BOS; EOS right after the answer, before the "\n" trailer */
        CHECK(ids.n >= 3 && ids.v[0] != eos && ids.v[ids.n - 2] == eos && mask.v[ids.n - 2] == 1);
        CHECK(mask.v[ids.n - 1] == 0);
        CHECK(count_ones(&mask) == ntok(tok, "Hello! How can I help?") + 1);
        al_ints_free(&ids);
        al_ints_free(&mask);
        al_tokenizer_free(tok);
        al_chat_template_free(t);
    }

    expect_error(dir, "e1.tpl", "user_prefix = \"a\"\n\nuser_sufix = \"b\"\n", 3, "unknown key 'user_sufix'");
    expect_error(dir, "e2.tpl", "# c\nuser_prefix \"a\"\n", 2, "expected 'key = value'");
    expect_error(dir, "e3.tpl", "user_prefix = a\n", 1, "double-quoted");
    expect_error(dir, "e4.tpl", "user_prefix = \"a\n", 1, "unterminated");
    expect_error(dir, "e5.tpl", "user_prefix = \"a\\q\"\n", 1, "unknown escape");
    expect_error(dir, "e6.tpl", "bos = yes\n", 1, "true or false");
    expect_error(dir, "e7.tpl", "user_prefix = \"a\"\nuser_prefix = \"b\"\n", 2, "given twice");
    expect_error(dir, "e8.tpl", "user_prefix = \"a\" b\n", 1, "after the closing quote");
    expect_error(dir, "e9.tpl", "special = \"\"\n", 1, "empty");
    expect_error(dir, "e10.tpl", "user_prefix = \"\\x4\"\n", 1, "hex");
    al_chat_template *none = (al_chat_template *)1;
    CHECK(al_chat_template_load(&none, "/nonexistent/x.tpl") == -1 && none == NULL);
}

int main(void)
{
    const char *tok512 = shared_path("models/stories260K/tok512.bin");
    const char *gpt2 = shared_path("models/gpt2-tokenizer/encoder.json");
    test_chatml_render();
    test_llama2_render();
    test_add_special(tok512);
    test_add_special(gpt2);
    test_masks_chatml(tok512, false);
    test_masks_chatml(tok512, true);
    test_masks_chatml(gpt2, false);
    test_masks_chatml(gpt2, true);
    test_masks_llama2(tok512);
    test_masks_llama2(gpt2);
    test_no_loss(tok512);
    test_no_loss(gpt2);
    test_prompt_completion(tok512);
    test_prompt_completion(gpt2);
    test_template_file();
    return test_report();
}
