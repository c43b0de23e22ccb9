/* Checkpoints that survive a kill at any moment.
 *
 * OUT/checkpoints/step_NNNNNNNN/ = model.safetensors + config.json + state.bin.  The whole
 * directory is written under a temporary name, every file fsynced, then renamed into place,
 * so a checkpoint directory either exists complete or not at all.  state.bin ends with a
 * hash of everything before it and records a hash of model.safetensors, so a damaged
 * checkpoint is recognized on load rather than trained from. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "align/train.h"

#define STATE_MAGIC "ALSTATE1"
#define STATE_VERSION 3u /* 3 added extra[]; 2 is still read */

/* ---- state.bin serialization ---- */

typedef struct writer {
    al_buf b;
} writer;

static int put(writer *w, const void *p, size_t n) { return al_buf_append(&w->b, p, n); }

typedef struct reader {
    const uint8_t *p;
    size_t n, at;
    bool bad;
} reader;

static void get(reader *r, void *dst, size_t n)
{
    if (r->bad || n > r->n - r->at) {
        r->bad = true;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->at, n);
    r->at += n;
}

static int file_hash(const char *path, uint64_t *out)
{
    al_mapped f;
    if (al_map_file(path, &f))
        return -1;
    *out = al_hash64(f.data, f.size, 0);
    al_unmap_file(&f);
    return 0;
}

static int write_state(const char *path, const al_adamw *opt, const al_train_state *st, uint64_t model_hash)
{
    writer w = {0};
    uint32_t version = STATE_VERSION;
    uint64_t n = opt->n;
    int rc = put(&w, STATE_MAGIC, 8) || put(&w, &version, 4) || put(&w, &model_hash, 8) ||
             put(&w, &st->step, sizeof st->step) || put(&w, &st->lora_dropout_step, sizeof st->lora_dropout_step) ||
             put(&w, &st->cursor, sizeof st->cursor) ||
             put(&w, &st->rng, sizeof st->rng) || put(&w, &st->tokens, sizeof st->tokens) ||
             put(&w, &st->outlier, sizeof st->outlier) || put(&w, st->extra, sizeof st->extra) ||
             put(&w, &opt->t, sizeof opt->t) || put(&w, &n, 8) ||
             put(&w, opt->m, opt->n * sizeof(float)) || put(&w, opt->v, opt->n * sizeof(float));
    uint64_t h = rc ? 0 : al_hash64(w.b.data, w.b.len, 0);
    rc = rc || put(&w, &h, 8);
    if (rc) {
        al_buf_free(&w.b);
        return -1;
    }
    al_atomic_file f;
    if (al_atomic_open(&f, path)) {
        al_buf_free(&w.b);
        return -1;
    }
    if (fwrite(w.b.data, 1, w.b.len, f.fp) != w.b.len) {
        al_atomic_abort(&f);
        al_buf_free(&w.b);
        return al_fail("%s: write failed", path);
    }
    al_buf_free(&w.b);
    return al_atomic_commit(&f);
}

/* ---- directories ---- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return al_fail("%s: cannot open directory: %s", dir, strerror(errno));
    fsync(fd);
    close(fd);
    return 0;
}

static int remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : al_fail("%s: cannot open: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = al_path_join(dir, e->d_name);
        if (p) {
            if (al_is_dir(p))
                remove_tree(p);
            else
                unlink(p);
        }
        free(p);
    }
    closedir(d);
    return rmdir(dir) == 0 ? 0 : al_fail("%s: cannot remove: %s", dir, strerror(errno));
}

static int cmp_desc(const void *a, const void *b) { return strcmp(*(char *const *)b, *(char *const *)a); }

/* Names of complete checkpoints (step_N without a temporary suffix), newest first. */
static int list_checkpoints(const char *ckdir, char ***names, int *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(ckdir);
    if (!d)
        return al_fail("%s: cannot open: %s", ckdir, strerror(errno));
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        const char *s = e->d_name;
        if (strncmp(s, "step_", 5) != 0 || strlen(s) != 13 || strspn(s + 5, "0123456789") != 8)
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(*names, (size_t)cap * sizeof *nn);
            if (!nn)
                break;
            *names = nn;
        }
        (*names)[(*count)++] = strdup(s);
    }
    closedir(d);
    if (*count)
        qsort(*names, (size_t)*count, sizeof **names, cmp_desc);
    return 0;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Temporaries left by a process killed mid-save: a checkpoint's directory, or the
 * `latest` pointer's file (latest.tmp.PID, killed between writing and renaming it).  One
 * run directory has one writer, so any temporary not being written right now is garbage. */
static void remove_stale_temporaries(const char *ckdir, const char *keep)
{
    DIR *d = opendir(ckdir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if ((strncmp(e->d_name, "step_", 5) != 0 && strncmp(e->d_name, "latest.", 7) != 0) ||
            !strstr(e->d_name, ".tmp.") || !strcmp(e->d_name, keep))
            continue;
        char *p = al_path_join(ckdir, e->d_name);
        if (p && al_is_dir(p))
            remove_tree(p);
        else if (p)
            unlink(p);
        free(p);
    }
    closedir(d);
}

int al_checkpoint_save(const char *out_dir, const al_model *m, const al_adamw *opt, const al_train_state *st,
                       int keep)
{
    return al_checkpoint_save_with(out_dir, m, opt, st, keep, NULL, NULL);
}

int al_checkpoint_save_with(const char *out_dir, const al_model *m, const al_adamw *opt, const al_train_state *st,
                            int keep, const al_tokenizer *tok, const al_chat_template *tmpl)
{
    char *ckdir = al_path_join(out_dir, "checkpoints");
    char name[32], tmpname[64];
    snprintf(name, sizeof name, "step_%08ld", st->step);
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", name, (long)getpid());
    char *final = ckdir ? al_path_join(ckdir, name) : NULL, *tmp = ckdir ? al_path_join(ckdir, tmpname) : NULL;
    const char *weights = m->lora ? "adapter_model.safetensors" : "model.safetensors";
    char *st_path = tmp ? al_path_join(tmp, "state.bin") : NULL, *model_path = tmp ? al_path_join(tmp, weights) : NULL;
    char *latest = ckdir ? al_path_join(ckdir, "latest") : NULL;
    int rc = -1;
    if (!ckdir || !final || !tmp || !st_path || !model_path || !latest) {
        al_fail("out of memory");
        goto done;
    }
    uint64_t model_hash;
    if (al_mkdir_p(ckdir))
        goto done;
    remove_stale_temporaries(ckdir, tmpname);
    al_train_state state = *st;
    if (m->lora)
        state.lora_dropout_step = m->lora->dropout_step;
    if (remove_tree(tmp) || al_mkdir_p(tmp) || (m->lora ? al_lora_save(m, tmp) : al_model_save_safetensors(m, tmp)) ||
        file_hash(model_path, &model_hash) || write_state(st_path, opt, &state, model_hash) ||
        (tok && al_model_dir_save_tokenizer(tmp, tok, tmpl)) || fsync_dir(tmp))
        goto done;
    /* A checkpoint of the same step (a resumed run passing it again) is replaced whole. */
    if (al_is_dir(final) && remove_tree(final))
        goto done;
    if (rename(tmp, final) != 0) {
        al_fail("%s: rename failed: %s", final, strerror(errno));
        goto done;
    }
    if (fsync_dir(ckdir))
        goto done;
    al_atomic_file lf;
    if (al_atomic_open(&lf, latest))
        goto done;
    fprintf(lf.fp, "%s\n", name);
    if (al_atomic_commit(&lf))
        goto done;
    char **names;
    int n;
    if (keep > 0 && list_checkpoints(ckdir, &names, &n) == 0) {
        for (int i = keep; i < n; i++) {
            char *p = al_path_join(ckdir, names[i]);
            if (p && strcmp(names[i], name) != 0)
                remove_tree(p);
            free(p);
        }
        free_names(names, n);
    }
    rc = 0;
done:
    if (rc && tmp)
        remove_tree(tmp);
    free(ckdir), free(final), free(tmp), free(st_path), free(model_path), free(latest);
    return rc;
}

/* Loads exactly one checkpoint directory; on failure nothing is left allocated. */
/* Loads exactly one checkpoint directory; on failure nothing it allocated is left (a base
 * model given for adapters stays). */
static int load_one(const char *dir, al_model *m, al_adamw *opt, al_train_state *st)
{
    char *adapter_path = al_path_join(dir, "adapter_model.safetensors");
    bool adapters = adapter_path && al_file_exists(adapter_path);
    char *st_path = al_path_join(dir, "state.bin"),
         *model_path = adapters ? adapter_path : al_path_join(dir, "model.safetensors");
    al_mapped f = {0};
    int rc = -1;
    if (adapters) {
        if (!m->params) {
            al_fail("%s: a LoRA checkpoint: load its base model first", dir);
            goto done;
        }
        al_lora_detach(m);
    } else {
        memset(m, 0, sizeof *m); /* overwritten: the caller holds no model here */
    }
    memset(opt, 0, sizeof *opt);
    if (!st_path || !model_path) {
        al_fail("out of memory");
        goto done;
    }
    if (al_map_file(st_path, &f))
        goto done;
    if (f.size < 8 + 4 + 8 + 8 || memcmp(f.data, STATE_MAGIC, 8) != 0) {
        al_fail("%s: not an align training state (bad magic or truncated)", st_path);
        goto done;
    }
    uint64_t stored;
    memcpy(&stored, f.data + f.size - 8, 8);
    if (al_hash64(f.data, f.size - 8, 0) != stored) {
        al_fail("%s: checksum mismatch (truncated or corrupted)", st_path);
        goto done;
    }
    reader r = {f.data, f.size - 8, 8, false};
    uint32_t version;
    uint64_t model_hash, n, actual_hash;
    get(&r, &version, 4);
    get(&r, &model_hash, 8);
    if (version != STATE_VERSION && version != 2) {
        al_fail("%s: state version %u, this align reads %u", st_path, version, STATE_VERSION);
        goto done;
    }
    if (file_hash(model_path, &actual_hash))
        goto done;
    if (actual_hash != model_hash) {
        al_fail("%s: does not match its state.bin (truncated or corrupted)", model_path);
        goto done;
    }
    al_adamw_opts o = al_adamw_defaults();
    if (adapters ? al_lora_load(m, dir) || al_adamw_init_block(opt, m->lora->n_params, NULL, &o)
                 : al_model_load_safetensors(m, dir) || al_adamw_init(opt, m, &o))
        goto done;
    get(&r, &st->step, sizeof st->step);
    get(&r, &st->lora_dropout_step, sizeof st->lora_dropout_step);
    get(&r, &st->cursor, sizeof st->cursor);
    get(&r, &st->rng, sizeof st->rng);
    get(&r, &st->tokens, sizeof st->tokens);
    get(&r, &st->outlier, sizeof st->outlier);
    if (version >= 3)
        get(&r, st->extra, sizeof st->extra);
    else
        memset(st->extra, 0, sizeof st->extra);
    get(&r, &opt->t, sizeof opt->t);
    get(&r, &n, 8);
    if (r.bad || n != opt->n) {
        al_fail("%s: optimizer state for %llu parameters, the %s has %zu", st_path, (unsigned long long)n,
                adapters ? "adapter set" : "model", opt->n);
        goto done;
    }
    get(&r, opt->m, opt->n * sizeof(float));
    get(&r, opt->v, opt->n * sizeof(float));
    if (r.bad || r.at != r.n) {
        al_fail("%s: size does not match its contents", st_path);
        goto done;
    }
    if (adapters)
        m->lora->dropout_step = st->lora_dropout_step;
    rc = 0;
done:
    if (rc) {
        al_adamw_free(opt);
        if (adapters)
            al_lora_detach(m);
        else
            al_model_free(m);
    }
    al_unmap_file(&f);
    free(st_path);
    if (model_path != adapter_path)
        free(model_path);
    free(adapter_path);
    return rc;
}

int al_checkpoint_load(const char *path, al_model *m, al_adamw *opt, al_train_state *st, char *used,
                       size_t used_len)
{
    char *state = al_path_join(path, "state.bin");
    bool single = state && al_file_exists(state);
    free(state);
    if (single) {
        if (load_one(path, m, opt, st))
            return al_fail_prefix("checkpoint %s", path);
        if (used_len)
            snprintf(used, used_len, "%s", path);
        return 0;
    }
    char *ckdir = al_path_join(path, "checkpoints");
    char **names;
    int n;
    if (!ckdir || !al_is_dir(ckdir)) {
        free(ckdir);
        return al_fail("%s: no checkpoints here (expected %s/checkpoints/step_N or a checkpoint directory)", path,
                       path);
    }
    if (list_checkpoints(ckdir, &names, &n)) {
        free(ckdir);
        return -1;
    }
    int rc = al_fail("%s: no complete checkpoint", ckdir);
    for (int i = 0; i < n; i++) {
        char *dir = al_path_join(ckdir, names[i]);
        if (dir && load_one(dir, m, opt, st) == 0) {
            if (used_len)
                snprintf(used, used_len, "%s", dir);
            free(dir);
            rc = 0;
            break;
        }
        fprintf(stderr, "align: checkpoint %s is damaged: %s; trying the previous one\n", names[i], al_errmsg());
        free(dir);
    }
    free_names(names, n);
    free(ckdir);
    return rc;
}
