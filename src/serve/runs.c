/* GET /api/pipeline: the trainers' runs under a directory, grouped by pipeline stage, with
 * their curves thinned for a dashboard (docs/serve.md, "Dashboard data").
 *
 * A run is a directory holding metrics.jsonl.  The JSON is written as text rather than
 * built as a jansson tree: at the caps below (200 runs x 64 curves x 400 points) a tree
 * would take several hundred MB, the text a fraction of that. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "align/serve.h"
#include "align/train.h"

/* Bounds on one request's work: a runs directory may hold anything. */
enum {
    MAX_DEPTH = 4,           /* a run's directory at most this far below dir */
    MAX_RUNS = 200,
    MAX_ENTRIES = 100000,    /* directory entries read in the whole walk */
    MAX_CURVES = 64,         /* per run; later keys are dropped (curves_truncated) */
    MAX_POINTS = 400,        /* per curve */
    MAX_TAG = 64,
};
/* A metrics.jsonl larger than this is read only in its last MAX_READ bytes ("partial" on
 * the run): a run logs a line per step, so the tail holds the recent steps a dashboard is
 * for, and skipping the file instead would hide a long run altogether. */
#define MAX_READ ((size_t)64 << 20)
#define MAX_ARGS_BYTES ((off_t)1 << 20)

typedef enum { PRETRAIN, SFT, REWARD_MODEL, RL, ALIGNED, N_STAGES, UNKNOWN = -1 } pstage;
static const char *const stage_ids[N_STAGES] = {"pretrain", "sft", "reward_model", "rl", "aligned"};
static const char *const stage_titles[N_STAGES] = {"Pretrain", "SFT", "Reward model", "PPO / DPO", "Aligned"};

/* ---- output: JSON text with a sticky out-of-memory flag, checked once at the end ---- */

typedef struct writer {
    al_buf b;
    bool oom;
} writer;

static void w_raw(writer *w, const char *s, size_t n)
{
    if (!w->oom && al_buf_append(&w->b, s, n))
        w->oom = true;
}

static void w_printf(writer *w, const char *fmt, ...) AL_PRINTF(2, 3);
static void w_printf(writer *w, const char *fmt, ...)
{
    char s[128]; /* numbers and punctuation only: strings go through w_string */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof s)
        w->oom = true;
    else
        w_raw(w, s, (size_t)n);
}

/* A JSON string; file names need not be UTF-8, JSON must be. */
static void w_string(writer *w, const char *s)
{
    char *t = strdup(s);
    if (!t) {
        w->oom = true;
        return;
    }
    al_utf8_scrub(t, strlen(t));
    w_raw(w, "\"", 1);
    const char *run = t;
    for (const char *p = t; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        w_raw(w, run, (size_t)(p - run));
        if (c == '"' || c == '\\')
            w_printf(w, "\\%c", c);
        else
            w_printf(w, "\\u%04x", c);
        run = p + 1;
    }
    w_raw(w, run, strlen(run));
    w_raw(w, "\"", 1);
    free(t);
}

static void w_number(writer *w, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        w_printf(w, "%.0f", v);
    else
        w_printf(w, "%.9g", v);
}

/* ---- curves: every point offered, at most 2 * MAX_POINTS kept ---- */

/* Keeps the points whose index is a multiple of stride, doubling the stride whenever the
 * buffer fills, so a curve of any length costs fixed memory and stays evenly sampled. */
typedef struct curve {
    char *key;
    double *x, *y; /* 2 * MAX_POINTS + 1: the kept points, then room for the last */
    int n;
    long seen, stride;
    double last_x, last_y;
} curve;

static int curve_init(curve *c, const char *key)
{
    memset(c, 0, sizeof *c);
    c->key = strdup(key);
    c->x = malloc(sizeof(double) * (2 * MAX_POINTS + 1));
    c->y = malloc(sizeof(double) * (2 * MAX_POINTS + 1));
    c->stride = 1;
    return c->key && c->x && c->y ? 0 : -1;
}

static void curve_free(curve *c)
{
    free(c->key);
    free(c->x);
    free(c->y);
}

static void curve_add(curve *c, double x, double y)
{
    c->last_x = x, c->last_y = y;
    long i = c->seen++;
    if (i % c->stride)
        return;
    if (c->n == 2 * MAX_POINTS) {
        for (int k = 0; k < MAX_POINTS; k++)
            c->x[k] = c->x[2 * k], c->y[k] = c->y[2 * k];
        c->n = MAX_POINTS;
        c->stride *= 2;
        if (i % c->stride)
            return;
    }
    c->x[c->n] = x, c->y[c->n++] = y;
}

/* At most MAX_POINTS points, evenly spaced over the kept ones, the first and the last
 * point of the run always among them. */
static void w_curve(writer *w, curve *c)
{
    if ((c->seen - 1) % c->stride) /* the last point fell between kept ones */
        c->x[c->n] = c->last_x, c->y[c->n++] = c->last_y;
    const int m = c->n, out = m < MAX_POINTS ? m : MAX_POINTS;
    w_raw(w, "[", 1);
    for (int k = 0; k < out; k++) {
        int i = out > 1 ? (int)llround((double)k * (m - 1) / (out - 1)) : 0;
        w_raw(w, k ? ",[" : "[", k ? 2 : 1);
        w_number(w, c->x[i]);
        w_raw(w, ",", 1);
        w_number(w, c->y[i]);
        w_raw(w, "]", 1);
    }
    w_raw(w, "]", 1);
}

/* ---- one run ---- */

typedef struct run {
    char *name, *path, *dir; /* shown name, path relative to the runs dir, the directory */
    pstage stage;
    const char *by;          /* what decided the stage */
    struct timespec mtime;   /* of metrics.jsonl: the latest RL run stands in for "aligned" */
    double steps;
    long skipped;            /* lines that are not a JSON object */
    bool partial, curves_truncated;
    char *error;             /* metrics.jsonl could not be read */
    char *tag;               /* a trainer/stage/kind string the lines carry */
    curve curves[MAX_CURVES];
    int n_curves, hint;
    al_buf json;             /* the run as the response shows it */
} run;

/* Counters and timings, not figures: what html.c's curves leave out, plus self-rewarding's
 * iteration (its x axis). */
static bool step_like(const char *key)
{
    return !strcmp(key, "step") || !strcmp(key, "epoch") || !strcmp(key, "iteration") ||
           !strncmp(key, "time/", 5);
}

static curve *curve_for(run *r, const char *key)
{
    /* the keys come in the same order on every line: start where the last one was found */
    for (int k = 0; k < r->n_curves; k++) {
        int i = (r->hint + k) % r->n_curves;
        if (!strcmp(r->curves[i].key, key)) {
            r->hint = i + 1;
            return &r->curves[i];
        }
    }
    if (r->n_curves == MAX_CURVES) {
        r->curves_truncated = true;
        return NULL;
    }
    curve *c = &r->curves[r->n_curves];
    if (curve_init(c, key)) {
        curve_free(c);
        return NULL;
    }
    r->n_curves++;
    return c;
}

static void take_record(run *r, json_t *rec, long ordinal)
{
    json_t *s = json_object_get(rec, "step");
    if (!json_is_number(s))
        s = json_object_get(rec, "iteration");
    double x = json_is_number(s) ? json_number_value(s) : (double)ordinal;
    if (x > r->steps)
        r->steps = x;
    const char *key;
    json_t *v;
    json_object_foreach(rec, key, v)
    {
        if (!r->tag && json_is_string(v) && (!strcmp(key, "trainer") || !strcmp(key, "stage") || !strcmp(key, "kind")))
            r->tag = strndup(json_string_value(v), MAX_TAG);
        if (!json_is_number(v) || step_like(key) || !isfinite(json_number_value(v)))
            continue;
        curve *c = curve_for(r, key);
        if (c)
            curve_add(c, x, json_number_value(v));
    }
}

/* Python's json writes NaN, Infinity and -Infinity bare, which jansson refuses.  Each is
 * overwritten in place by "[]" and spaces: a value that is not a number, so the line's
 * other figures are kept and this one is skipped.  Returns whether anything changed. */
static bool blank_non_finite(char *s, size_t n)
{
    static const char *const words[] = {"-Infinity", "Infinity", "NaN"};
    bool in_string = false, changed = false;
    for (size_t i = 0; i < n; i++) {
        if (in_string) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                in_string = false;
            continue;
        }
        if (s[i] == '"') {
            in_string = true;
            continue;
        }
        for (int k = 0; k < 3; k++) {
            size_t len = strlen(words[k]);
            if (i + len <= n && !memcmp(s + i, words[k], len)) {
                memset(s + i, ' ', len);
                memcpy(s + i, "[]", 2);
                i += len - 1;
                changed = true;
                break;
            }
        }
    }
    return changed;
}

static bool blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

static void parse_lines(run *r, char *text, size_t len)
{
    long ordinal = 0;
    for (char *line = text, *end = text + len; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (!blank_line(line, n)) {
            json_t *rec = json_loadb(line, n, 0, NULL);
            if (!rec && blank_non_finite(line, n))
                rec = json_loadb(line, n, 0, NULL);
            if (json_is_object(rec))
                take_record(r, rec, ++ordinal);
            else if (nl) /* a last line without its newline may be one being written */
                r->skipped++;
            json_decref(rec);
        }
        line = nl ? nl + 1 : end;
    }
}

/* The file's text, or, past MAX_READ bytes, its last MAX_READ from the first whole line. */
static int read_tail(const char *path, al_buf *out, bool *partial)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return al_fail("%s", strerror(errno));
    struct stat st;
    /* one byte before the tail too: whether the tail starts a line */
    off_t from = fstat(fd, &st) == 0 && st.st_size > (off_t)MAX_READ ? st.st_size - (off_t)MAX_READ - 1 : 0;
    const size_t limit = MAX_READ + (from > 0);
    int rc = 0;
    char chunk[1 << 16];
    for (size_t got = 0; rc == 0 && got < limit;) {
        size_t want = limit - got < sizeof chunk ? limit - got : sizeof chunk;
        ssize_t k = pread(fd, chunk, want, from + (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            rc = al_fail("%s", strerror(errno));
        else if (k == 0)
            break;
        else
            rc = al_buf_append(out, chunk, (size_t)k), got += (size_t)k;
    }
    close(fd);
    *partial = from > 0;
    char *nl = *partial && out->data ? memchr(out->data, '\n', out->len) : NULL;
    if (nl) { /* up to the first line the tail holds whole */
        size_t drop = (size_t)(nl + 1 - out->data);
        memmove(out->data, nl + 1, out->len - drop + 1);
        out->len -= drop;
    }
    return rc;
}

static int load_metrics(run *r)
{
    char *path = al_path_join(r->dir, "metrics.jsonl");
    al_buf text = {0};
    struct stat st;
    if (!path)
        return al_fail("out of memory");
    if (stat(path, &st) == 0)
        r->mtime = st.st_mtim;
    if (read_tail(path, &text, &r->partial))
        r->error = strdup(al_errmsg());
    else if (text.data)
        parse_lines(r, text.data, text.len);
    al_buf_free(&text);
    free(path);
    return 0;
}

/* ---- which stage ---- */

/* Words in run names, trainer names and stage tags.  Two-word entries match adjacent
 * words ("self-reward", "red_team") and come first, so that self-rewarding is not taken
 * for a reward model. */
static const struct {
    const char *a, *b;
    pstage stage;
} words[] = {
    {"self", "reward", RL},       {"self", "rewarding", RL},     {"red", "team", RL},
    {"final", "policy", ALIGNED},
    {"pretrain", NULL, PRETRAIN}, {"pretraining", NULL, PRETRAIN}, {"base", NULL, PRETRAIN},
    {"sft", NULL, SFT},           {"instruct", NULL, SFT},
    {"rm", NULL, REWARD_MODEL},   {"reward", NULL, REWARD_MODEL},
    {"rl", NULL, RL},             {"rlhf", NULL, RL},            {"ppo", NULL, RL},
    {"dpo", NULL, RL},            {"ipo", NULL, RL},             {"kto", NULL, RL},
    {"orpo", NULL, RL},           {"simpo", NULL, RL},           {"grpo", NULL, RL},
    {"rloo", NULL, RL},           {"reinforce", NULL, RL},       {"cai", NULL, RL},
    {"constitutional", NULL, RL}, {"redteam", NULL, RL},
    {"aligned", NULL, ALIGNED},
};

static pstage word_stage(const char *prev, const char *word)
{
    for (size_t k = 0; k < sizeof words / sizeof *words; k++)
        if (words[k].b ? !strcmp(prev, words[k].a) && !strcmp(word, words[k].b) : !strcmp(word, words[k].a))
            return words[k].stage;
    return UNKNOWN;
}

/* The stage of the last word of s (words are runs of letters, case ignored) that names
 * one; with only != UNKNOWN, the last that names that one.  Last: in "runs/sft/dpo" the
 * deepest directory is the run. */
static pstage words_stage(const char *s, pstage only)
{
    char prev[MAX_TAG + 1] = "", word[MAX_TAG + 1];
    pstage found = UNKNOWN;
    for (const char *p = s; *p;) {
        if (!((*p | 32) >= 'a' && (*p | 32) <= 'z')) {
            p++;
            continue;
        }
        size_t n = 0;
        for (; (*p | 32) >= 'a' && (*p | 32) <= 'z'; p++)
            if (n < MAX_TAG)
                word[n++] = (char)(*p | 32);
        word[n] = 0;
        pstage st = word_stage(prev, word);
        if (st != UNKNOWN && (only == UNKNOWN || st == only))
            found = st;
        memcpy(prev, word, n + 1);
    }
    return found;
}

/* What the trainer left beside metrics.jsonl: align's trainers each write their settings
 * there under their own name (for --resume), and the preference trainers say which one. */
static pstage args_stage(const char *dir)
{
    static const struct {
        const char *file;
        pstage stage;
    } files[] = {{"rl_args.json", RL}, {"pref_args.json", RL}, {"sft_args.json", SFT}, {"train_args.json", PRETRAIN}};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char *path = al_path_join(dir, files[k].file);
        struct stat st;
        bool there = path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
        pstage stage = files[k].stage;
        if (there && stage == RL && !strcmp(files[k].file, "pref_args.json") && st.st_size <= MAX_ARGS_BYTES) {
            json_t *j = json_load_file(path, 0, NULL);
            if (json_integer_value(json_object_get(j, "trainer")) == AL_TRAINER_RM)
                stage = REWARD_MODEL;
            json_decref(j);
        }
        free(path);
        if (there)
            return stage;
    }
    return UNKNOWN;
}

static bool has_curve(const run *r, const char *key)
{
    for (int k = 0; k < r->n_curves; k++) {
        const char *c = r->curves[k].key;
        if (!strcmp(c, key) || (!strncmp(c, "eval_", 5) && !strcmp(c + 5, key)))
            return true;
    }
    return false;
}

static bool has_curve_prefix(const run *r, const char *prefix)
{
    for (int k = 0; k < r->n_curves; k++) {
        const char *c = r->curves[k].key;
        c += strncmp(c, "eval_", 5) ? 0 : 5;
        if (!strncmp(c, prefix, strlen(prefix)))
            return true;
    }
    return false;
}

/* From what the run logs: the DPO family's rewards/ and logps/ (TRL's names), online RL's
 * reward and kl, self-rewarding's reward_mean; align rm's accuracy and margin without
 * those; a language-model loss alone is taken for SFT, since align pretrain always leaves
 * train_args.json to go by. */
static pstage figures_stage(const run *r)
{
    if (has_curve_prefix(r, "rewards/") || has_curve_prefix(r, "logps/") || has_curve(r, "kl") ||
        has_curve(r, "reward") || has_curve(r, "reward_mean"))
        return RL;
    if (has_curve(r, "accuracy") && has_curve(r, "margin"))
        return REWARD_MODEL;
    if (has_curve(r, "loss"))
        return SFT;
    return UNKNOWN;
}

/* A directory named aligned (or final-policy) is the aligned model whatever trained it;
 * otherwise the most direct word wins: the lines' own tag, the trainer's settings file,
 * the run's directory names, then its figures. */
static void classify(run *r)
{
    pstage s;
    if (words_stage(r->name, ALIGNED) == ALIGNED)
        r->stage = ALIGNED, r->by = "name";
    else if (r->tag && (s = words_stage(r->tag, UNKNOWN)) != UNKNOWN)
        r->stage = s, r->by = "metrics";
    else if ((s = args_stage(r->dir)) != UNKNOWN)
        r->stage = s, r->by = "trainer";
    else if ((s = words_stage(r->name, UNKNOWN)) != UNKNOWN)
        r->stage = s, r->by = "name";
    else if ((s = figures_stage(r)) != UNKNOWN)
        r->stage = s, r->by = "figures";
    else
        r->stage = SFT, r->by = "default";
}

/* loss and eval_loss first, then the file's order: align's trainers log an evaluation at
 * step 0, so the file would put the eval_ figures before the training ones, and the
 * dashboard shows the first few of "last". */
static void curve_order(const run *r, int *order)
{
    int n = 0;
    static const char *const first[] = {"loss", "eval_loss"};
    for (int f = 0; f < 2; f++)
        for (int k = 0; k < r->n_curves; k++)
            if (!strcmp(r->curves[k].key, first[f]))
                order[n++] = k;
    for (int k = 0; k < r->n_curves; k++)
        if (strcmp(r->curves[k].key, first[0]) && strcmp(r->curves[k].key, first[1]))
            order[n++] = k;
}

static void render_run(run *r)
{
    int order[MAX_CURVES];
    curve_order(r, order);
    writer w = {0};
    w_printf(&w, "{\"name\":");
    w_string(&w, r->name);
    w_printf(&w, ",\"path\":");
    w_string(&w, r->path);
    w_printf(&w, ",\"steps\":");
    w_number(&w, r->steps);
    w_printf(&w, ",\"skipped_lines\":%ld,\"classified_by\":\"%s\"", r->skipped, r->by);
    if (r->partial)
        w_printf(&w, ",\"partial\":true");
    if (r->curves_truncated)
        w_printf(&w, ",\"curves_truncated\":true");
    if (r->error) {
        w_printf(&w, ",\"error\":");
        w_string(&w, r->error);
    }
    w_printf(&w, ",\"last\":{");
    for (int k = 0; k < r->n_curves; k++) {
        w_raw(&w, ",", k > 0);
        w_string(&w, r->curves[order[k]].key);
        w_raw(&w, ":", 1);
        w_number(&w, r->curves[order[k]].last_y);
    }
    w_printf(&w, "},\"curves\":{");
    for (int k = 0; k < r->n_curves; k++) {
        w_raw(&w, ",", k > 0);
        w_string(&w, r->curves[order[k]].key);
        w_raw(&w, ":", 1);
        w_curve(&w, &r->curves[order[k]]);
    }
    w_printf(&w, "}}");
    if (w.oom)
        al_buf_free(&w.b); /* an empty text: al_serve_pipeline_json reports it */
    r->json = w.b;
}

static void run_free(run *r)
{
    for (int k = 0; k < r->n_curves; k++)
        curve_free(&r->curves[k]);
    r->n_curves = 0;
    free(r->name);
    free(r->path);
    free(r->dir);
    free(r->error);
    free(r->tag);
    al_buf_free(&r->json);
}

/* The run's name is its path below root; root's own run goes by root's directory name. */
static char *run_name(const char *root, const char *rel)
{
    if (*rel)
        return strdup(rel);
    char *real = realpath(root, NULL);
    const char *slash = real ? strrchr(real, '/') : NULL;
    char *name = strdup(slash && slash[1] ? slash + 1 : real ? real : root);
    free(real);
    return name;
}

/* Takes rel over. */
static int load_run(run *r, const char *root, char *rel)
{
    bool is_root = !*rel;
    if (is_root)
        free(rel), rel = strdup(".");
    r->path = rel;
    r->name = run_name(root, is_root || !rel ? "" : rel);
    r->dir = is_root ? strdup(root) : rel ? al_path_join(root, rel) : NULL;
    if (!r->path || !r->name || !r->dir || load_metrics(r))
        return al_fail("out of memory");
    classify(r);
    render_run(r);
    for (int k = 0; k < r->n_curves; k++) /* rendered: only the text is needed now */
        curve_free(&r->curves[k]);
    r->n_curves = 0;
    return r->json.data ? 0 : al_fail("out of memory");
}

/* ---- finding the runs ---- */

typedef struct dev_ino {
    dev_t dev;
    ino_t ino;
} dev_ino;

typedef struct walker {
    char **rel;            /* the runs' directories relative to the root ("" is the root) */
    dev_ino *file;         /* their metrics.jsonl: a file reached by two paths is one run */
    bool *linked;          /* reached through a symlinked directory: a real path is a better name */
    int n;
    long entries;
    bool truncated;        /* a cap was hit: there may be more runs */
    bool oom;
    dev_ino up[MAX_DEPTH + 1]; /* the directories being walked: a symlink to one is a loop */
} walker;

static void add_run(walker *w, const char *dir, const char *rel, bool linked)
{
    char *path = al_path_join(dir, "metrics.jsonl");
    struct stat st;
    w->oom |= !path;
    if (!path || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        free(path);
        return;
    }
    free(path);
    int i = 0;
    while (i < w->n && !(w->file[i].dev == st.st_dev && w->file[i].ino == st.st_ino))
        i++;
    if (i < w->n && !(w->linked[i] && !linked))
        return;
    if (i == MAX_RUNS) {
        w->truncated = true;
        return;
    }
    char *copy = strdup(rel);
    if (!copy) {
        w->oom = true;
        return;
    }
    if (i < w->n)
        free(w->rel[i]);
    else
        w->n++;
    w->rel[i] = copy, w->file[i] = (dev_ino){st.st_dev, st.st_ino}, w->linked[i] = linked;
}

/* Model directories hold weights, never a run's metrics. */
static bool model_dir(const char *name) { return !strcmp(name, "final") || !strncmp(name, "checkpoint", 10); }

typedef struct entry {
    char *name;
    bool link;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* The names in d worth descending into, sorted, so that which runs MAX_RUNS keeps does not
 * depend on readdir's order.  Entries that may be directories only: opening one that is
 * not fails harmlessly. */
static int subdirs(walker *w, DIR *d, entry **out)
{
    entry *names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (++w->entries > MAX_ENTRIES) {
            w->truncated = true;
            break;
        }
        if (e->d_name[0] == '.' || model_dir(e->d_name) ||
            (e->d_type != DT_DIR && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN))
            continue;
        if (n == cap) {
            entry *grown = realloc(names, sizeof *names * (size_t)(cap = cap ? 2 * cap : 16));
            if (!grown) {
                w->oom = true;
                break;
            }
            names = grown;
        }
        names[n].link = e->d_type == DT_LNK;
        if (!(names[n].name = strdup(e->d_name))) {
            w->oom = true;
            break;
        }
        n++;
    }
    if (n)
        qsort(names, (size_t)n, sizeof *names, cmp_entry);
    *out = names;
    return n;
}

static void walk(walker *w, const char *dir, const char *rel, int depth, bool linked)
{
    DIR *d = opendir(dir);
    struct stat st;
    if (!d)
        return;
    bool loop = fstat(dirfd(d), &st) != 0;
    for (int i = 0; i < depth && !loop; i++)
        loop = w->up[i].dev == st.st_dev && w->up[i].ino == st.st_ino;
    if (loop || w->oom) {
        closedir(d);
        return;
    }
    w->up[depth] = (dev_ino){st.st_dev, st.st_ino};
    add_run(w, dir, rel, linked);
    entry *names = NULL;
    int n = depth < MAX_DEPTH ? subdirs(w, d, &names) : 0;
    closedir(d); /* before descending: a deep walk holds no descriptors */
    for (int i = 0; i < n; i++) {
        char *sub = al_path_join(dir, names[i].name);
        char *sub_rel = *rel ? al_path_join(rel, names[i].name) : strdup(names[i].name);
        if (sub && sub_rel)
            walk(w, sub, sub_rel, depth + 1, linked || names[i].link);
        else
            w->oom = true;
        free(sub);
        free(sub_rel);
        free(names[i].name);
    }
    free(names);
}

/* ---- the response ---- */

static int cmp_run(const void *a, const void *b) { return strcmp(((const run *)a)->name, ((const run *)b)->name); }

/* a's metrics.jsonl changed no earlier than b's (or there is no b): ties go to the run
 * listed later */
static bool not_older(const run *a, const run *b)
{
    return !b || a->mtime.tv_sec > b->mtime.tv_sec ||
           (a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec >= b->mtime.tv_nsec);
}

/* Without a run named aligned or holding the served model, the latest RL run is the
 * aligned model: it is what the pipeline ended with. */
static const run *latest_rl(const run *runs, int n)
{
    const run *best = NULL;
    for (int i = 0; i < n; i++)
        if (runs[i].stage == RL && not_older(&runs[i], best))
            best = &runs[i];
    return best;
}

/* path is dir or below it */
static bool is_under(const char *path, const char *dir)
{
    size_t k = strlen(dir);
    return !strncmp(path, dir, k) && (path[k] == '/' || path[k] == '\0');
}

/* The run that made the served model, or NULL: the deepest run whose directory holds it
 * (`align sft --out R` leaves R/final), else the latest run beside it (the demo's LoRA
 * stages log in R/lora and merge into R/final).  What the server answers with is the
 * aligned model the dashboard shows. */
static const run *serving_run(const char *dir, const run *runs, int n, const char *served)
{
    char *model = served ? realpath(served, NULL) : NULL;
    if (!model)
        return NULL;
    /* "beside" stays inside one run's directory: a model lying in the runs directory
     * itself was made by none of them in particular */
    char *root = realpath(dir, NULL), *slash = strrchr(model, '/');
    char *beside = slash && slash != model ? strndup(model, (size_t)(slash - model)) : NULL;
    if (beside && (!root || !is_under(beside, root) || !strcmp(beside, root))) {
        free(beside);
        beside = NULL;
    }
    free(root);
    const run *holder = NULL, *sibling = NULL;
    size_t holder_len = 0;
    for (int i = 0; i < n; i++) {
        char *d = realpath(runs[i].dir, NULL);
        if (d && is_under(model, d) && strlen(d) > holder_len)
            holder = &runs[i], holder_len = strlen(d);
        else if (d && beside && is_under(d, beside) && not_older(&runs[i], sibling))
            sibling = &runs[i];
        free(d);
    }
    free(model);
    free(beside);
    return holder ? holder : sibling;
}

static void w_stages(writer *w, const char *dir, const run *runs, int n, bool truncated, const char *served)
{
    w_printf(w, "{\"dir\":");
    w_string(w, dir);
    w_printf(w, ",\"stages\":[");
    bool any_aligned = false;
    for (int i = 0; i < n; i++)
        any_aligned |= runs[i].stage == ALIGNED;
    const run *serving = any_aligned ? NULL : serving_run(dir, runs, n, served);
    const run *stand_in = any_aligned ? NULL : serving ? serving : latest_rl(runs, n);
    for (int s = 0; s < N_STAGES; s++) {
        w_printf(w, "%s{\"stage\":\"%s\",\"title\":\"%s\"", s ? "," : "", stage_ids[s], stage_titles[s]);
        if (s == ALIGNED && stand_in)
            w_printf(w, ",\"from\":\"%s\"", serving ? "served" : "rl");
        w_printf(w, ",\"runs\":[");
        bool first = true;
        for (int i = 0; i < n; i++) {
            if (runs[i].stage != (pstage)s && !(s == ALIGNED && &runs[i] == stand_in))
                continue;
            w_raw(w, ",", !first);
            w_raw(w, runs[i].json.data, runs[i].json.len);
            first = false;
        }
        w_printf(w, "]}");
    }
    w_printf(w, "]%s}", truncated ? ",\"truncated\":true" : "");
}

int al_serve_pipeline_json(const char *dir, const char *served_model, al_buf *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return al_fail("%s: %s", dir, strerror(errno));
    closedir(d);
    walker w = {.rel = calloc(MAX_RUNS, sizeof(char *)), .file = calloc(MAX_RUNS, sizeof(dev_ino)),
                .linked = calloc(MAX_RUNS, sizeof(bool))};
    bool mem = w.rel && w.file && w.linked;
    if (mem)
        walk(&w, dir, "", 0, false);
    int rc = !mem || w.oom ? al_fail("%s: out of memory", dir) : 0;
    run *runs = calloc((size_t)w.n + 1, sizeof *runs);
    int n = 0;
    for (; rc == 0 && runs && n < w.n; n++) {
        rc = load_run(&runs[n], dir, w.rel[n]);
        w.rel[n] = NULL; /* the run owns it now */
    }
    if (rc == 0 && runs) {
        qsort(runs, (size_t)n, sizeof *runs, cmp_run);
        writer o = {0};
        w_stages(&o, dir, runs, n, w.truncated, served_model);
        rc = o.oom || al_buf_append(out, o.b.data, o.b.len) ? al_fail("%s: out of memory", dir) : 0;
        al_buf_free(&o.b);
    } else if (rc == 0)
        rc = al_fail("%s: out of memory", dir);
    for (int i = 0; runs && i < n; i++)
        run_free(&runs[i]);
    for (int i = 0; w.rel && i < w.n; i++)
        free(w.rel[i]);
    free(runs);
    free(w.rel);
    free(w.file);
    free(w.linked);
    return rc;
}
