/* Token streams: document splitting, tokenization, the validation split, the cache
 * (hits, damaged files), OUT/data.json and the batch order of docs/training.md. */
#include "test.h"

#include <jansson.h>
#include <sys/stat.h>

#include "align/data.h"

static char tmp[1024];

static void write_file(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static char *tmp_path(const char *name) { return al_path_join(tmp, name); }

static al_tokenizer *load_tok(const char *path)
{
    al_tokenizer *t = NULL;
    if (al_tokenizer_load(&t, path)) {
        fprintf(stderr, "%s: %s\n", path, al_errmsg());
        exit(2);
    }
    return t;
}

/* The encoding the loader must produce for one document. */
static void encode_doc(const al_tokenizer *t, const char *text, size_t n, al_ints *out)
{
    bool bos = al_tokenizer_bos(t) >= 0, eos = !bos && al_tokenizer_eos(t) >= 0;
    if (al_tokenizer_encode(t, text, n, bos, eos, out)) {
        fprintf(stderr, "encode: %s\n", al_errmsg());
        exit(2);
    }
}

static bool stream_eq(const al_token_stream *s, const int *ids, size_t n)
{
    if (s->n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s->ids[i] != (uint32_t)ids[i])
            return false;
    return true;
}

static struct timespec mtime_of(const char *path)
{
    struct stat st;
    struct timespec z = {0, 0};
    return stat(path, &st) == 0 ? st.st_mtim : z;
}

static long size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- five small documents ---- */

/* Documents as the loader must see them (see src/data/load.c): the '\n' before a
 * separator line is not part of the document; the last keeps the file's final '\n'. */
static const char *docs[5] = {
    "Once upon a time there was a cat.\nThe cat liked milk.",
    "A line with <|endoftext|> inside is not a separator.\n<|endoftext|> \nNor is that one.",
    "\nThis one starts with a blank line and ends with one.\n",
    "Short.",
    "The last story.\nIt ends with a newline.\n",
};

static void build_small(const char *path)
{
    al_buf b = {0};
    al_buf_append(&b, "<|endoftext|>\n", 14); /* leading separator: an empty document, dropped */
    for (int i = 0; i < 5; i++) {
        al_buf_append(&b, docs[i], strlen(docs[i]));
        if (i < 4)
            al_buf_append(&b, "\n<|endoftext|>\n", 15);
        if (i == 1)
            al_buf_append(&b, "<|endoftext|>\n", 14); /* two in a row: another empty document */
    }
    write_file(path, b.data, b.len);
    al_buf_free(&b);
}

static void test_small(const al_tokenizer *t, const char *tok_path)
{
    char *text = tmp_path("small.txt"), *cache = tmp_path("cache");
    build_small(text);

    al_ints want = {0};
    size_t doc_start[6];
    for (int i = 0; i < 5; i++) {
        doc_start[i] = (size_t)want.n;
        encode_doc(t, docs[i], strlen(docs[i]), &want);
    }
    doc_start[5] = (size_t)want.n;
    CHECK(al_tokenizer_bos(t) == 1);

    al_data_opts o;
    al_data_opts_defaults(&o);
    CHECK(o.val_fraction == 0.05 && strcmp(o.doc_sep, "<|endoftext|>") == 0 && !o.val_path && !o.cache_dir);
    o.train_path = text;
    o.tokenizer_path = tok_path;
    o.cache_dir = cache;
    o.quiet = true;

    /* first load: tokenizes, val = ceil(0.05 * 5) = 1 document, the last */
    al_token_data d;
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(!d.cache_hit);
    CHECK(stream_eq(&d.train, want.v, doc_start[4]));
    CHECK(stream_eq(&d.val, want.v + doc_start[4], doc_start[5] - doc_start[4]));
    CHECK(d.train.bytes_per_id == 2 && d.val.bytes_per_id == 2 && d.vocab_size == 512);
    CHECK(d.train.cache_path && d.val.cache_path);
    char train_cache[1024], val_cache[1024];
    snprintf(train_cache, sizeof train_cache, "%s", d.train.cache_path ? d.train.cache_path : "");
    snprintf(val_cache, sizeof val_cache, "%s", d.val.cache_path ? d.val.cache_path : "");
    CHECK(al_file_exists(train_cache) && al_file_exists(val_cache));
    CHECK(ends_with(train_cache, ".train.tokens") && ends_with(val_cache, ".val.tokens"));
    CHECK(strncmp(train_cache, cache, strlen(cache)) == 0);
    CHECK(strlen(train_cache) == strlen(cache) + 1 + 16 + strlen(".train.tokens"));
    CHECK(size_of(train_cache) == 24 + 2 * (long)d.train.n);

    /* the cache file, byte by byte */
    al_buf raw = {0};
    CHECK_OK(al_read_file(train_cache, &raw));
    if (raw.len >= 28) {
        const uint8_t *p = (const uint8_t *)raw.data;
        CHECK(memcmp(p, "ALTOKENS", 8) == 0);
        CHECK(p[8] == 1 && p[9] == 0 && p[10] == 0 && p[11] == 0);
        CHECK(p[12] == 2 && p[13] == 0 && p[14] == 0 && p[15] == 0);
        uint64_t count = 0;
        for (int i = 7; i >= 0; i--)
            count = count << 8 | p[16 + i];
        CHECK(count == d.train.n);
        CHECK((p[24] | p[25] << 8) == want.v[0] && (p[26] | p[27] << 8) == want.v[1]);
    }
    al_buf_free(&raw);

    /* OUT/data.json */
    char *out = tmp_path("out");
    CHECK_OK(al_token_data_describe(&d, out));
    char *dj = al_path_join(out, "data.json");
    json_error_t err;
    json_t *j = json_load_file(dj, 0, &err);
    CHECK(j != NULL);
    if (j) {
        json_t *tr = json_object_get(j, "train"), *va = json_object_get(j, "val");
        CHECK(json_is_object(tr) && json_is_object(va));
        CHECK(json_integer_value(json_object_get(tr, "count")) == (json_int_t)d.train.n);
        CHECK(json_integer_value(json_object_get(va, "count")) == (json_int_t)d.val.n);
        CHECK(json_integer_value(json_object_get(tr, "bytes_per_id")) == 2);
        CHECK(json_integer_value(json_object_get(va, "bytes_per_id")) == 2);
        const char *tp = json_string_value(json_object_get(tr, "path"));
        CHECK(tp && tp[0] == '/' && ends_with(tp, strrchr(train_cache, '/')));
        const char *vp = json_string_value(json_object_get(va, "path"));
        CHECK(vp && ends_with(vp, strrchr(val_cache, '/')));
        const char *sep = json_string_value(json_object_get(j, "doc_sep"));
        CHECK(sep && strcmp(sep, "<|endoftext|>") == 0);
        const char *tk = json_string_value(json_object_get(j, "tokenizer"));
        CHECK(tk && ends_with(tk, "stories260K/tok512.bin"));
        json_decref(j);
    }
    free(dj);
    free(out);
    al_token_data_free(&d);

    /* second load: read from the cache, the files untouched */
    struct timespec m1 = mtime_of(train_cache), m2 = mtime_of(val_cache);
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(d.cache_hit);
    CHECK(stream_eq(&d.train, want.v, doc_start[4]));
    CHECK(stream_eq(&d.val, want.v + doc_start[4], doc_start[5] - doc_start[4]));
    CHECK(d.train.cache_path && strcmp(d.train.cache_path, train_cache) == 0);
    struct timespec n1 = mtime_of(train_cache), n2 = mtime_of(val_cache);
    CHECK(m1.tv_sec == n1.tv_sec && m1.tv_nsec == n1.tv_nsec);
    CHECK(m2.tv_sec == n2.tv_sec && m2.tv_nsec == n2.tv_nsec);
    al_token_data_free(&d);

    /* truncated train cache: a miss, rebuilt; the error of al_token_stream_read says why */
    CHECK(truncate(train_cache, 30) == 0);
    al_token_stream s;
    CHECK(al_token_stream_read(&s, train_cache) == -1);
    CHECKF(strstr(al_errmsg(), "truncated") != NULL, "%s", al_errmsg());
    CHECK(s.ids == NULL && s.n == 0);
    fprintf(stderr, "(a warning about a damaged cache is expected next)\n");
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(!d.cache_hit);
    CHECK(stream_eq(&d.train, want.v, doc_start[4]));
    CHECK(size_of(train_cache) == 24 + 2 * (long)d.train.n);
    al_token_data_free(&d);
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(d.cache_hit);
    al_token_data_free(&d);

    /* bad magic in the val cache */
    al_buf vb = {0};
    CHECK_OK(al_read_file(val_cache, &vb));
    vb.data[0] = 'X';
    write_file(val_cache, vb.data, vb.len);
    CHECK(al_token_stream_read(&s, val_cache) == -1);
    CHECKF(strstr(al_errmsg(), "magic") != NULL && strstr(al_errmsg(), val_cache) != NULL, "%s", al_errmsg());
    fprintf(stderr, "(a warning about a damaged cache is expected next)\n");
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(!d.cache_hit);
    CHECK(stream_eq(&d.val, want.v + doc_start[4], doc_start[5] - doc_start[4]));
    al_token_data_free(&d);
    CHECK_OK(al_token_stream_read(&s, val_cache));
    CHECK(stream_eq(&s, want.v + doc_start[4], doc_start[5] - doc_start[4]));
    al_token_stream_free(&s);

    /* other damage: version, width, a file longer than its header, too short, missing */
    char *bad = tmp_path("bad.tokens");
    vb.data[0] = 'A';
    vb.data[8] = 2;
    write_file(bad, vb.data, vb.len);
    CHECK(al_token_stream_read(&s, bad) == -1);
    CHECKF(strstr(al_errmsg(), "version") != NULL, "%s", al_errmsg());
    vb.data[8] = 1;
    vb.data[12] = 3;
    write_file(bad, vb.data, vb.len);
    CHECK(al_token_stream_read(&s, bad) == -1);
    CHECKF(strstr(al_errmsg(), "bytes per id") != NULL, "%s", al_errmsg());
    vb.data[12] = 2;
    al_buf_append(&vb, "xx", 2);
    write_file(bad, vb.data, vb.len);
    CHECK(al_token_stream_read(&s, bad) == -1);
    CHECKF(strstr(al_errmsg(), "longer") != NULL, "%s", al_errmsg());
    write_file(bad, vb.data, 10);
    CHECK(al_token_stream_read(&s, bad) == -1);
    CHECKF(strstr(al_errmsg(), "header") != NULL, "%s", al_errmsg());
    char *missing = tmp_path("missing.tokens");
    CHECK(al_token_stream_read(&s, missing) == -1);
    free(missing);
    free(bad);
    al_buf_free(&vb);

    /* a different val_fraction, separator or tokenizer is a different cache entry */
    o.val_fraction = 0.5; /* ceil(2.5) = 3 documents */
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(!d.cache_hit);
    CHECK(d.train.cache_path && strcmp(d.train.cache_path, train_cache) != 0);
    CHECK(stream_eq(&d.train, want.v, doc_start[2]));
    CHECK(stream_eq(&d.val, want.v + doc_start[2], doc_start[5] - doc_start[2]));
    al_token_data_free(&d);
    o.val_fraction = 0; /* no validation documents */
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(stream_eq(&d.train, want.v, doc_start[5]) && d.val.n == 0);
    al_token_data_free(&d);
    o.val_fraction = 0.99; /* at most n_docs - 1 */
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(stream_eq(&d.train, want.v, doc_start[1]));
    al_token_data_free(&d);
    o.val_fraction = 1.0;
    CHECK(al_token_data_load(&d, &o, t) == -1);
    o.val_fraction = 0.05;
    o.doc_sep = "Short.";
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(!d.cache_hit);
    CHECK(d.train.cache_path && strcmp(d.train.cache_path, train_cache) != 0);
    al_token_data_free(&d);
    o.doc_sep = "<|endoftext|>";

    /* a separate validation file: the whole of it, tokenized the same way */
    char *valf = tmp_path("val.txt");
    const char *vtext = "Val one.\n<|endoftext|>\nVal two.\n";
    write_file(valf, vtext, strlen(vtext));
    al_ints vwant = {0};
    encode_doc(t, "Val one.", 8, &vwant);
    encode_doc(t, "Val two.\n", 9, &vwant);
    o.val_path = valf;
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(!d.cache_hit);
    CHECK(stream_eq(&d.train, want.v, doc_start[5]));
    CHECK(stream_eq(&d.val, vwant.v, (size_t)vwant.n));
    al_token_data_free(&d);
    CHECK_OK(al_token_data_load(&d, &o, t));
    CHECK(d.cache_hit && stream_eq(&d.val, vwant.v, (size_t)vwant.n));
    al_token_data_free(&d);
    o.val_path = NULL;
    al_ints_free(&vwant);
    free(valf);

    /* one document: split inside the token stream at floor(0.75 n) */
    char *one = tmp_path("one.txt");
    write_file(one, docs[0], strlen(docs[0]));
    al_ints owant = {0};
    encode_doc(t, docs[0], strlen(docs[0]), &owant);
    o.train_path = one;
    o.val_fraction = 0.25;
    CHECK_OK(al_token_data_load(&d, &o, t));
    size_t cut = (size_t)(0.75 * owant.n);
    CHECK(stream_eq(&d.train, owant.v, cut));
    CHECK(stream_eq(&d.val, owant.v + cut, (size_t)owant.n - cut));
    al_token_data_free(&d);
    al_ints_free(&owant);
    free(one);

    /* an empty file or only separators: a clear error */
    char *empty = tmp_path("empty.txt");
    write_file(empty, "<|endoftext|>\n<|endoftext|>\n", 28);
    o.train_path = empty;
    CHECK(al_token_data_load(&d, &o, t) == -1);
    CHECKF(strstr(al_errmsg(), "no text") != NULL, "%s", al_errmsg());
    free(empty);
    o.train_path = "/nonexistent/data.txt";
    CHECK(al_token_data_load(&d, &o, t) == -1);
    CHECKF(strstr(al_errmsg(), "/nonexistent/data.txt") != NULL, "%s", al_errmsg());

    /* the default cache directory: $XDG_CACHE_HOME/align */
    char *xdg = tmp_path("xdg");
    setenv("XDG_CACHE_HOME", xdg, 1);
    o.train_path = text;
    o.cache_dir = NULL;
    CHECK_OK(al_token_data_load(&d, &o, t));
    char *xdg_align = al_path_join(xdg, "align/");
    CHECK(d.train.cache_path && strncmp(d.train.cache_path, xdg_align, strlen(xdg_align)) == 0);
    CHECK(d.train.cache_path && al_file_exists(d.train.cache_path));
    al_token_data_free(&d);
    free(xdg_align);
    free(xdg);

    al_ints_free(&want);
    free(text);
    free(cache);
}

/* A tokenizer without BOS: each document ends with EOS instead. */
static void test_eos_tokenizer(void)
{
    const char *tp = shared_path("models/gpt2-tokenizer/encoder.json");
    al_tokenizer *t = load_tok(tp);
    char *text = tmp_path("gpt2.txt");
    const char *s = "Hello world.\n<|endoftext|>\nSecond doc.\n<|endoftext|>\nThird.";
    write_file(text, s, strlen(s));
    al_ints want = {0};
    encode_doc(t, "Hello world.", 12, &want);
    encode_doc(t, "Second doc.", 11, &want);
    int two = want.n;
    encode_doc(t, "Third.", 6, &want);
    al_data_opts o;
    al_data_opts_defaults(&o);
    char *cache = tmp_path("cache");
    o.train_path = text;
    o.tokenizer_path = tp;
    o.cache_dir = cache;
    o.quiet = true;
    al_token_data d;
    CHECK_OK(al_token_data_load(&d, &o, t));
    int eos = al_tokenizer_eos(t);
    if (al_tokenizer_bos(t) < 0) {
        CHECK(eos >= 0 && want.v[want.n - 1] == eos);
    }
    CHECK(stream_eq(&d.train, want.v, (size_t)two));
    CHECK(stream_eq(&d.val, want.v + two, (size_t)(want.n - two)));
    CHECK(d.train.bytes_per_id == 2);
    al_token_data_free(&d);
    al_ints_free(&want);
    free(cache);
    free(text);
    al_tokenizer_free(t);
}

/* 4-byte ids round trip. */
static void test_wide(void)
{
    uint32_t ids[5] = {0, 65535, 65536, 99999, 7};
    al_token_stream s = {.ids = ids, .n = 5};
    char *p = tmp_path("wide.tokens");
    CHECK_OK(al_token_stream_write(&s, p, 100000));
    CHECK(size_of(p) == 24 + 4 * 5);
    al_token_stream r;
    CHECK_OK(al_token_stream_read(&r, p));
    CHECK(r.n == 5 && r.bytes_per_id == 4 && memcmp(r.ids, ids, sizeof ids) == 0);
    al_token_stream_free(&r);
    CHECK(al_token_stream_write(&s, p, 65536) == -1); /* 65536 does not fit a 65536 vocabulary */
    s.n = 2;
    CHECK_OK(al_token_stream_write(&s, p, 65536));
    CHECK(size_of(p) == 24 + 2 * 2);
    free(p);
}

/* ---- batch order ---- */

static void test_batches(void)
{
    uint32_t ids[13];
    for (int i = 0; i < 13; i++)
        ids[i] = 100 + (uint32_t)i;
    al_token_stream s = {.ids = ids, .n = 13};
    al_batch_cursor c = {0, 0};
    int tok[6], tgt[6];

    /* B=2, T=3: 13 tokens hold two micro-batches (0+6+1 <= 13, 6+6+1 <= 13), the third wraps */
    CHECK_OK(al_next_batch(&s, &c, 2, 3, tok, tgt));
    int t0[6] = {100, 101, 102, 103, 104, 105}, g0[6] = {101, 102, 103, 104, 105, 106};
    CHECK(memcmp(tok, t0, sizeof t0) == 0 && memcmp(tgt, g0, sizeof g0) == 0);
    CHECK(c.pos == 6 && c.epoch == 0);
    CHECK_OK(al_next_batch(&s, &c, 2, 3, tok, tgt));
    int t1[6] = {106, 107, 108, 109, 110, 111}, g1[6] = {107, 108, 109, 110, 111, 112};
    CHECK(memcmp(tok, t1, sizeof t1) == 0 && memcmp(tgt, g1, sizeof g1) == 0);
    CHECK(c.pos == 12 && c.epoch == 0);
    CHECK_OK(al_next_batch(&s, &c, 2, 3, tok, tgt));
    CHECK(memcmp(tok, t0, sizeof t0) == 0 && memcmp(tgt, g0, sizeof g0) == 0);
    CHECK(c.pos == 6 && c.epoch == 1);

    /* 12 tokens: the second batch would need token 12, so it wraps */
    s.n = 12;
    c = (al_batch_cursor){0, 0};
    CHECK_OK(al_next_batch(&s, &c, 2, 3, tok, tgt));
    CHECK_OK(al_next_batch(&s, &c, 2, 3, tok, tgt));
    CHECK(memcmp(tok, t0, sizeof t0) == 0 && c.epoch == 1 && c.pos == 6);

    /* B*T+1 = 7 tokens exactly: every batch is the same, each a new epoch */
    s.n = 7;
    c = (al_batch_cursor){0, 0};
    CHECK_OK(al_next_batch(&s, &c, 2, 3, tok, tgt));
    CHECK_OK(al_next_batch(&s, &c, 2, 3, tok, tgt));
    CHECK(memcmp(tok, t0, sizeof t0) == 0 && memcmp(tgt, g0, sizeof g0) == 0 && c.epoch == 1);

    /* too short: a clear error, the cursor untouched */
    s.n = 6;
    c = (al_batch_cursor){0, 0};
    CHECK(al_next_batch(&s, &c, 2, 3, tok, tgt) == -1);
    CHECKF(strstr(al_errmsg(), "6 tokens") != NULL && strstr(al_errmsg(), "7") != NULL, "%s", al_errmsg());
    CHECK(c.pos == 0 && c.epoch == 0);
    CHECK(al_next_batch(&s, &c, 0, 3, tok, tgt) == -1);

    /* eval: non-overlapping windows from the start, -1 targets past the end */
    s.n = 11;
    CHECK(al_eval_batch(&s, 0, 2, 3, tok, tgt) == 6);
    CHECK(memcmp(tok, t0, sizeof t0) == 0 && memcmp(tgt, g0, sizeof g0) == 0);
    CHECK(al_eval_batch(&s, 1, 2, 3, tok, tgt) == 4);
    int t2[6] = {106, 107, 108, 109, 110, 0}, g2[6] = {107, 108, 109, 110, -1, -1};
    CHECK(memcmp(tok, t2, sizeof t2) == 0 && memcmp(tgt, g2, sizeof g2) == 0);
    CHECK(al_eval_batch(&s, 2, 2, 3, tok, tgt) == 0);
    for (int i = 0; i < 6; i++)
        CHECK(tgt[i] == -1);
    /* B=1: batch e starts at e*T */
    CHECK(al_eval_batch(&s, 3, 1, 3, tok, tgt) == 1);
    CHECK(tok[0] == 109 && tok[1] == 110 && tgt[0] == 110 && tgt[1] == -1);
    CHECK(al_eval_batch(&s, -1, 1, 3, tok, tgt) == -1);
}

/* ---- the real corpus ---- */

static void test_tinystories(const al_tokenizer *t, const char *tok_path)
{
    const char *path = shared_path("corpora/tinystories/TinyStories-train-first2MiB.txt");
    al_buf text = {0};
    CHECK_OK(al_read_file(path, &text));
    /* documents: separator lines + 1 (the file neither starts nor ends with one) */
    size_t seps = 0;
    for (const char *p = text.data; (p = strstr(p, "\n<|endoftext|>\n")) != NULL; p += 14)
        seps++;
    size_t n_docs = seps + 1;
    CHECKF(n_docs > 2300 && n_docs < 2330, "%zu documents", n_docs);
    size_t n_val = (size_t)ceil(0.05 * (double)n_docs);

    char *cache = tmp_path("cache-ts");
    al_data_opts o;
    al_data_opts_defaults(&o);
    o.train_path = path;
    o.tokenizer_path = tok_path;
    o.cache_dir = cache;
    al_token_data d;
    double t0 = al_now();
    CHECK_OK(al_token_data_load(&d, &o, t));
    double secs = al_now() - t0;
    printf("tinystories 2 MiB: %zu documents, %zu + %zu tokens, %.3f s\n", n_docs, d.train.n, d.val.n, secs);
    CHECK(!d.cache_hit);
    int bos = al_tokenizer_bos(t);
    size_t bos_train = 0, bos_val = 0;
    for (size_t i = 0; i < d.train.n; i++)
        bos_train += d.train.ids[i] == (uint32_t)bos;
    for (size_t i = 0; i < d.val.n; i++)
        bos_val += d.val.ids[i] == (uint32_t)bos;
    CHECKF(bos_train + bos_val == n_docs, "%zu + %zu BOS, %zu documents", bos_train, bos_val, n_docs);
    CHECKF(bos_val == n_val, "%zu val documents, want %zu", bos_val, n_val);
    CHECK(d.train.n > 0 && d.train.ids[0] == (uint32_t)bos);
    CHECK(d.val.n > 0 && d.val.ids[0] == (uint32_t)bos);

    /* the first document, encoded directly */
    const char *end = strstr(text.data, "\n<|endoftext|>\n");
    al_ints first = {0};
    if (end) {
        encode_doc(t, text.data, (size_t)(end - text.data), &first);
        CHECK(d.train.n > (size_t)first.n && stream_eq(&(al_token_stream){.ids = d.train.ids, .n = (size_t)first.n},
                                                       first.v, (size_t)first.n));
        CHECK(d.train.ids[first.n] == (uint32_t)bos);
    }
    /* the last document is the file's tail after the last separator */
    const char *last = text.data;
    for (const char *p = text.data; (p = strstr(p, "\n<|endoftext|>\n")) != NULL; p += 14)
        last = p + 15;
    al_ints lastw = {0};
    encode_doc(t, last, text.len - (size_t)(last - text.data), &lastw);
    CHECK(d.val.n > (size_t)lastw.n &&
          stream_eq(&(al_token_stream){.ids = d.val.ids + d.val.n - lastw.n, .n = (size_t)lastw.n}, lastw.v,
                    (size_t)lastw.n));
    al_ints_free(&lastw);
    al_ints_free(&first);
    al_token_data_free(&d);

    /* the second time from the cache */
    t0 = al_now();
    CHECK_OK(al_token_data_load(&d, &o, t));
    printf("tinystories 2 MiB from the cache: %.3f s\n", al_now() - t0);
    CHECK(d.cache_hit);
    CHECK(d.train.n + d.val.n > 400000);
    al_token_data_free(&d);
    al_buf_free(&text);
    free(cache);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("data"));
    const char *tok_path = shared_path("models/stories260K/tok512.bin");
    al_tokenizer *t = load_tok(tok_path);
    test_batches();
    test_wide();
    test_small(t, tok_path);
    test_eos_tokenizer();
    test_tinystories(t, tok_path);
    al_tokenizer_free(t);
    if (!test_failed) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp);
    }
    return test_report();
}
