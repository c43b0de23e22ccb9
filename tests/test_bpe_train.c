/* BPE trainer: CS336's reference merges and vocabulary for corpus.en, the tokenizer.json
 * round trip, option errors, speed on a few MB, and `align tokenizer train`. */
#include "test.h"

#include <jansson.h>
#include <sys/wait.h>

#include "align/tokenizer.h"


static char *read_shared(const char *rel, size_t *n)
{
    al_buf b = {0};
    if (al_read_file(shared_path(rel), &b)) {
        fprintf(stderr, "%s\n", al_errmsg());
        exit(2);
    }
    *n = b.len;
    return b.data;
}

/* GPT-2's bytes_to_unicode, as the reference files spell tokens. */
static void gpt2_map(const char *s, size_t n, al_buf *out)
{
    out->len = 0;
    al_buf_append(out, "", 0);
    for (size_t i = 0; i < n; i++) {
        int b = (unsigned char)s[i], cp = b;
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!printable) {
            cp = 256;
            for (int k = 0; k < b; k++)
                cp += !((k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF));
        }
        char u[2] = {(char)(0xC0 | (cp >> 6)), (char)(0x80 | (cp & 0x3F))};
        if (cp < 0x80)
            al_buf_append(out, &(char){(char)cp}, 1);
        else
            al_buf_append(out, u, 2);
    }
}

static void mapped_piece(const al_tokenizer *t, int id, al_buf *out)
{
    const char *s;
    size_t n;
    al_tokenizer_piece(t, id, &s, &n);
    if (al_tokenizer_is_special(t, id)) {
        out->len = 0;
        al_buf_append(out, s, n);
    } else {
        gpt2_map(s, n, out);
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void check_reference(const al_tokenizer *t)
{
    size_t n;
    char *ref = read_shared("corpora/cs336-bpe-fixtures/train-bpe-reference-merges.txt", &n);
    int rank = 0, mismatches = 0;
    al_buf a = {0}, b = {0};
    for (char *save = NULL, *line = strtok_r(ref, "\n", &save); line; line = strtok_r(NULL, "\n", &save), rank++) {
        int l, r;
        if (al_tokenizer_merge(t, rank, &l, &r)) {
            mismatches++;
            continue;
        }
        mapped_piece(t, l, &a);
        mapped_piece(t, r, &b);
        al_buf_append(&a, " ", 1);
        al_buf_append(&a, b.data, b.len);
        if (strcmp(a.data, line) != 0 && mismatches++ < 3)
            fprintf(stderr, "merge %d: got '%s', reference '%s'\n", rank, a.data, line);
    }
    CHECKF(mismatches == 0 && rank == al_tokenizer_n_merges(t), "%d of %d merges differ (trained %d)", mismatches,
           rank, al_tokenizer_n_merges(t));
    free(ref);

    /* vocabulary as a set */
    json_t *vocab = json_load_file(shared_path("corpora/cs336-bpe-fixtures/train-bpe-reference-vocab.json"), 0, NULL);
    CHECK(vocab && (int)json_object_size(vocab) == al_tokenizer_vocab_size(t));
    int nv = al_tokenizer_vocab_size(t);
    char **mine = calloc((size_t)nv, sizeof *mine), **theirs = calloc(json_object_size(vocab), sizeof *theirs);
    for (int i = 0; i < nv; i++) {
        mapped_piece(t, i, &a);
        mine[i] = strdup(a.data);
    }
    const char *key;
    json_t *v;
    size_t k = 0;
    json_object_foreach(vocab, key, v) theirs[k++] = strdup(key);
    qsort(mine, (size_t)nv, sizeof *mine, cmp_str);
    qsort(theirs, k, sizeof *theirs, cmp_str);
    int differ = (size_t)nv != k;
    for (size_t i = 0; !differ && i < k; i++)
        differ = strcmp(mine[i], theirs[i]) != 0;
    CHECK(!differ);
    for (int i = 0; i < nv; i++)
        free(mine[i]);
    for (size_t i = 0; i < k; i++)
        free(theirs[i]);
    free(mine);
    free(theirs);
    json_decref(vocab);
    al_buf_free(&a);
    al_buf_free(&b);
}

static bool round_trips(const al_tokenizer *t, const char *s, size_t n)
{
    al_ints ids = {0};
    al_buf back = {0};
    bool ok = al_tokenizer_encode(t, s, n, false, false, &ids) == 0 &&
              al_tokenizer_decode(t, ids.v, ids.n, &back) == 0 && back.len == n && memcmp(back.data, s, n) == 0;
    al_ints_free(&ids);
    al_buf_free(&back);
    return ok;
}

static void test_reference(void)
{
    size_t n;
    char *corpus = read_shared("corpora/cs336-bpe-fixtures/corpus.en", &n);
    const char *specials[] = {"<|endoftext|>"};
    al_bpe_train_opts o = {.vocab_size = 500, .specials = specials, .n_specials = 1};
    al_tokenizer *t = NULL;
    const char *texts[] = {corpus};
    double t0 = al_now();
    CHECK_OK(al_bpe_train(&t, texts, &n, 1, &o));
    printf("trained corpus.en (%zu bytes) to 500 tokens in %.3fs\n", n, al_now() - t0);
    if (!t)
        return;
    CHECK(al_tokenizer_vocab_size(t) == 500 && al_tokenizer_n_merges(t) == 243);
    CHECK(al_tokenizer_n_specials(t) == 1 && al_tokenizer_special(t, 0) == 0 && al_tokenizer_eos(t) == 0);
    check_reference(t);

    /* tokenizer.json round trip */
    const char *dir = test_tmpdir("bpetrain");
    char path[1200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(al_tokenizer_save_json(t, path));
    al_tokenizer *back = NULL;
    CHECK_OK(al_tokenizer_load(&back, path));
    if (back) {
        CHECK(al_tokenizer_vocab_size(back) == 500 && al_tokenizer_n_merges(back) == 243);
        check_reference(back);
        size_t ns;
        char *sample = read_shared("corpora/cs336-bpe-fixtures/tinystories_sample.txt", &ns);
        al_ints x = {0}, y = {0};
        CHECK(al_tokenizer_encode(t, sample, ns, false, false, &x) == 0 &&
              al_tokenizer_encode(back, sample, ns, false, false, &y) == 0 && x.n == y.n &&
              memcmp(x.v, y.v, (size_t)x.n * sizeof(int)) == 0);
        CHECK(x.n < (int)ns * 3 / 4); /* the merges compress */
        bool has_special = false;
        for (int i = 0; i < y.n; i++)
            has_special |= y.v[i] == 0;
        CHECK(has_special == (strstr(sample, "<|endoftext|>") != NULL));
        CHECK(round_trips(back, sample, ns));
        const char *s = "one<|endoftext|>two";
        x.n = 0;
        CHECK(al_tokenizer_encode(back, s, strlen(s), false, false, &x) == 0 && x.n >= 3);
        bool split = false;
        for (int i = 0; i < x.n; i++)
            split |= x.v[i] == 0;
        CHECK(split && round_trips(back, s, strlen(s)));
        al_ints_free(&x);
        al_ints_free(&y);
        free(sample);
        al_tokenizer_free(back);
    }
    al_tokenizer_free(t);
    free(corpus);
}

static void test_options(void)
{
    al_tokenizer *t = NULL;
    const char *text = "low lower lowest";
    size_t n = strlen(text);
    const char *specials[] = {"<|endoftext|>", "<|endoftext|>"};
    al_bpe_train_opts o = {.vocab_size = 255};
    CHECK(al_bpe_train(&t, &text, &n, 1, &o) != 0 && strstr(al_errmsg(), "vocab size"));
    o = (al_bpe_train_opts){.vocab_size = 300, .specials = specials, .n_specials = 2};
    CHECK(al_bpe_train(&t, &text, &n, 1, &o) != 0 && strstr(al_errmsg(), "twice"));
    const char *one_byte[] = {"x"};
    o = (al_bpe_train_opts){.vocab_size = 300, .specials = one_byte, .n_specials = 1};
    CHECK(al_bpe_train(&t, &text, &n, 1, &o) != 0 && strstr(al_errmsg(), "single byte"));
    /* fewer pairs than requested merges: stops when nothing is left to merge */
    o = (al_bpe_train_opts){.vocab_size = 100000};
    CHECK_OK(al_bpe_train(&t, &text, &n, 1, &o));
    CHECK(t && al_tokenizer_vocab_size(t) < 300 && round_trips(t, text, n));
    al_ints ids = {0};
    CHECK(al_tokenizer_encode(t, text, n, false, false, &ids) == 0 && ids.n == 3); /* every word whole */
    al_ints_free(&ids);
    al_tokenizer_free(t);
    /* empty corpus */
    size_t zero = 0;
    o = (al_bpe_train_opts){.vocab_size = 400};
    CHECK(al_bpe_train(&t, &text, &zero, 1, &o) == 0 && al_tokenizer_vocab_size(t) == 256);
    al_tokenizer_free(t);
}

static void progress(void *ctx, const char *stage, long done, long total)
{
    int *calls = ctx;
    calls[strcmp(stage, "merge") == 0]++;
    (void)done;
    (void)total;
}

static void test_speed(void)
{
    size_t n;
    char *text = read_shared("corpora/tinystories/TinyStories-train-first2MiB.txt", &n);
    const char *specials[] = {"<|endoftext|>"};
    int calls[2] = {0, 0};
    al_bpe_train_opts o = {.vocab_size = 2000, .specials = specials, .n_specials = 1, .progress = progress,
                           .progress_ctx = calls};
    al_tokenizer *t = NULL;
    const char *texts[] = {text};
    double t0 = al_now();
    CHECK_OK(al_bpe_train(&t, texts, &n, 1, &o));
    double dt = al_now() - t0;
    /* reported, not asserted: timings never go into tests */
    printf("trained %.1f MB to 2000 tokens in %.2fs\n", (double)n / 1e6, dt);
    CHECK(calls[0] > 0 && calls[1] > 0);
    CHECK(t && al_tokenizer_n_merges(t) == 2000 - 257 && round_trips(t, text, 100000));
    al_tokenizer_free(t);
    free(text);
}

static void test_cli(void)
{
    const char *dir = test_tmpdir("bpecli");
    char cmd[3000], out[1200];
    snprintf(out, sizeof out, "%s/tok/tokenizer.json", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/tok' && '%s' tokenizer train --data '%s' --vocab-size 500 --special '<|endoftext|>' --out '%s' 2>/dev/null",
             dir, ALIGN_BINARY, shared_path("corpora/cs336-bpe-fixtures/corpus.en"), out);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    al_tokenizer *t = NULL;
    CHECK_OK(al_tokenizer_load(&t, out));
    if (t) {
        check_reference(t);
        al_tokenizer_free(t);
    }
    snprintf(cmd, sizeof cmd, "'%s' tokenizer train --data /nonexistent --vocab-size 500 --out '%s' 2>/dev/null",
             ALIGN_BINARY, out);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    snprintf(cmd, sizeof cmd, "'%s' tokenizer train --vocab-size 500 2>/dev/null", ALIGN_BINARY);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

int main(void)
{
    test_reference();
    test_options();
    test_speed();
    test_cli();
    return test_report();
}
