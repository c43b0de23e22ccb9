/* The human review queue: escalated guard decisions in SQLite, with an audit trail.
 *
 * Durability: WAL journal with synchronous=FULL, so a transaction that returned is on
 * disk even if the machine loses power a moment later (NORMAL would already survive a
 * killed process; FULL also survives the power cut, at one fsync per decision, which a
 * queue fed by humans and escalations can afford).  Every change is one IMMEDIATE
 * transaction holding the item row and its audit row, so a process killed mid-write
 * leaves either both or neither.  Idempotency keys are UNIQUE in the schema: a retried
 * enqueue finds the committed row instead of adding a second. */
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "align/core.h"
#include "align/guard.h"

struct al_review {
    sqlite3 *db;
    char *path;
};

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS items ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  created_at INTEGER NOT NULL,"
    "  idem_key TEXT UNIQUE,"
    "  input TEXT NOT NULL,"
    "  output TEXT,"
    "  categories TEXT,"
    "  scores TEXT,"
    "  reasons TEXT,"
    "  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','approved','rejected')));"
    "CREATE INDEX IF NOT EXISTS items_state ON items(state, id);"
    "CREATE TABLE IF NOT EXISTS audit ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  item_id INTEGER NOT NULL REFERENCES items(id),"
    "  at INTEGER NOT NULL,"
    "  action TEXT NOT NULL,"
    "  who TEXT NOT NULL,"
    "  why TEXT);"
    "CREATE INDEX IF NOT EXISTS audit_item ON audit(item_id, seq);"
    /* The audit trail is the record of who decided what: the database itself refuses
     * to rewrite it, whoever holds the file. */
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;"
    "PRAGMA user_version = 1;";

static const char *state_names[] = {"pending", "approved", "rejected"};

const char *al_review_state_name(al_review_state s)
{
    return (unsigned)s < 3 ? state_names[s] : "?";
}

int al_review_state_parse(const char *name, al_review_state *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, state_names[i]) == 0) {
            *out = (al_review_state)i;
            return 0;
        }
    return al_fail("review state '%s': expected pending, approved or rejected", name);
}

static int db_fail(al_review *q, const char *what)
{
    return al_fail("%s: %s: %s", q->path, what, sqlite3_errmsg(q->db));
}

static int exec(al_review *q, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(q->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        al_fail("%s: %s", q->path, err ? err : sqlite3_errmsg(q->db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static void rollback(al_review *q)
{
    /* Keep the caller's error message: a failed ROLLBACK has nothing to add. */
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

al_review *al_review_open(const char *path)
{
    al_review *q = calloc(1, sizeof *q);
    if (!q || !(q->path = strdup(path))) {
        free(q);
        al_fail("review queue: out of memory");
        return NULL;
    }
    if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        al_fail("%s: cannot open the review queue: %s", path,
                q->db ? sqlite3_errmsg(q->db) : "out of memory");
        al_review_close(q);
        return NULL;
    }
    sqlite3_busy_timeout(q->db, 10000);
    if (exec(q, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")) {
        al_review_close(q);
        return NULL;
    }
    int version = -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version < 0) {
        db_fail(q, "reading the schema version");
        al_review_close(q);
        return NULL;
    }
    if (version > 1) {
        al_fail("%s: review queue schema version %d is newer than this build understands (1)",
                path, version);
        al_review_close(q);
        return NULL;
    }
    if (exec(q, "BEGIN IMMEDIATE") || exec(q, schema_sql) || exec(q, "COMMIT")) {
        rollback(q);
        al_review_close(q);
        return NULL;
    }
    return q;
}

void al_review_close(al_review *q)
{
    if (!q)
        return;
    sqlite3_close(q->db);
    free(q->path);
    free(q);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static int add_audit(al_review *q, int64_t id, const char *action, const char *who, const char *why)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "INSERT INTO audit(item_id, at, action, who, why) VALUES (?,?,?,?,?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
        sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, who, -1, SQLITE_TRANSIENT);
        bind_text_or_null(st, 5, why);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(q, "writing the audit row");
}

/* The id of the item with this key, 0 if none, -1 on error. */
static int64_t find_key(al_review *q, const char *key)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, "SELECT id FROM items WHERE idem_key = ?", -1, &st, NULL) != SQLITE_OK)
        return db_fail(q, "looking up the idempotency key");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(q, "looking up the idempotency key");
    return id;
}

int64_t al_review_enqueue(al_review *q, const al_review_item *item, bool *created)
{
    if (created)
        *created = false;
    if (!item->input)
        return al_fail("%s: enqueue: the item has no input text", q->path);
    if (exec(q, "BEGIN IMMEDIATE"))
        return -1;
    int64_t id = item->key ? find_key(q, item->key) : 0;
    if (id < 0)
        goto fail;
    if (id == 0) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(q->db,
                                    "INSERT INTO items(created_at, idem_key, input, output, categories, scores,"
                                    " reasons, state) VALUES (?,?,?,?,?,?,?,'pending')",
                                    -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
            bind_text_or_null(st, 2, item->key);
            bind_text_or_null(st, 3, item->input);
            bind_text_or_null(st, 4, item->output);
            bind_text_or_null(st, 5, item->categories);
            bind_text_or_null(st, 6, item->scores);
            bind_text_or_null(st, 7, item->reasons);
            rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            db_fail(q, "adding the item");
            goto fail;
        }
        id = sqlite3_last_insert_rowid(q->db);
        if (add_audit(q, id, "enqueue", "guard", item->reasons))
            goto fail;
        if (created)
            *created = true;
    }
    if (exec(q, "COMMIT"))
        goto fail;
    return id;
fail:
    rollback(q);
    if (created)
        *created = false;
    return -1;
}

static char *column_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? strdup((const char *)s) : NULL;
}

#define ITEM_COLUMNS "id, created_at, idem_key, input, output, categories, scores, reasons, state"

static void read_item(sqlite3_stmt *st, al_review_item *it)
{
    it->id = sqlite3_column_int64(st, 0);
    it->created_at = sqlite3_column_int64(st, 1);
    it->key = column_dup(st, 2);
    it->input = column_dup(st, 3);
    it->output = column_dup(st, 4);
    it->categories = column_dup(st, 5);
    it->scores = column_dup(st, 6);
    it->reasons = column_dup(st, 7);
    const char *state = (const char *)sqlite3_column_text(st, 8);
    it->state = AL_REVIEW_PENDING;
    for (int i = 0; state && i < 3; i++)
        if (strcmp(state, state_names[i]) == 0)
            it->state = (al_review_state)i;
}

void al_review_item_free(al_review_item *it)
{
    if (!it)
        return;
    free(it->key);
    free(it->input);
    free(it->output);
    free(it->categories);
    free(it->scores);
    free(it->reasons);
    memset(it, 0, sizeof *it);
}

void al_review_items_free(al_review_item *items, int n)
{
    for (int i = 0; i < n; i++)
        al_review_item_free(&items[i]);
    free(items);
}

int al_review_list(al_review *q, int state, al_review_item **items, int *n)
{
    *items = NULL;
    *n = 0;
    if (state > AL_REVIEW_REJECTED)
        return al_fail("review list: state %d is not a review state", state);
    const char *sql = state < 0 ? "SELECT " ITEM_COLUMNS " FROM items ORDER BY id"
                                : "SELECT " ITEM_COLUMNS " FROM items WHERE state = ? ORDER BY id";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(q, "listing items");
    if (state >= 0)
        sqlite3_bind_text(st, 1, state_names[state], -1, SQLITE_STATIC);
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            al_review_item *grown = realloc(*items, (size_t)cap * sizeof **items);
            if (!grown) {
                sqlite3_finalize(st);
                al_review_items_free(*items, *n);
                *items = NULL;
                *n = 0;
                return al_fail("review list: out of memory");
            }
            *items = grown;
        }
        read_item(st, &(*items)[(*n)++]);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_fail(q, "listing items");
        al_review_items_free(*items, *n);
        *items = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int al_review_get(al_review *q, int64_t id, al_review_item *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, "SELECT " ITEM_COLUMNS " FROM items WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
        return db_fail(q, "reading an item");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read_item(st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return al_fail("%s: no review item %lld", q->path, (long long)id);
    return rc == SQLITE_ROW ? 0 : db_fail(q, "reading an item");
}

static int decide(al_review *q, int64_t id, al_review_state to, const char *who, const char *why)
{
    const char *action = to == AL_REVIEW_APPROVED ? "approve" : "reject";
    if (!who || !*who)
        return al_fail("%s: %s item %lld: say who decides (a reviewer name)", q->path, action, (long long)id);
    if (!why || !*why)
        return al_fail("%s: %s item %lld: give a reason; it goes into the audit trail", q->path, action,
                       (long long)id);
    if (exec(q, "BEGIN IMMEDIATE"))
        return -1;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT state FROM items WHERE id = ?", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        db_fail(q, "reading an item");
        goto fail;
    }
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            al_fail("%s: no review item %lld", q->path, (long long)id);
        else
            db_fail(q, "reading an item");
        goto fail;
    }
    const char *state = (const char *)sqlite3_column_text(st, 0);
    if (!state || strcmp(state, "pending") != 0) {
        al_fail("%s: review item %lld is already %s; a decision is final", q->path, (long long)id,
                state ? state : "?");
        sqlite3_finalize(st);
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_prepare_v2(q->db, "UPDATE items SET state = ? WHERE id = ?", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, state_names[to], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, id);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_fail(q, "updating the item");
        goto fail;
    }
    if (add_audit(q, id, action, who, why) || exec(q, "COMMIT"))
        goto fail;
    return 0;
fail:
    rollback(q);
    return -1;
}

int al_review_approve(al_review *q, int64_t id, const char *who, const char *why)
{
    return decide(q, id, AL_REVIEW_APPROVED, who, why);
}

int al_review_reject(al_review *q, int64_t id, const char *who, const char *why)
{
    return decide(q, id, AL_REVIEW_REJECTED, who, why);
}

void al_review_audit_free(al_review_audit *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].action);
        free(rows[i].who);
        free(rows[i].why);
    }
    free(rows);
}

int al_review_audit_list(al_review *q, int64_t id, al_review_audit **rows, int *n)
{
    *rows = NULL;
    *n = 0;
    const char *sql = id < 0 ? "SELECT item_id, at, action, who, why FROM audit ORDER BY seq"
                             : "SELECT item_id, at, action, who, why FROM audit WHERE item_id = ? ORDER BY seq";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(q, "reading the audit trail");
    if (id >= 0)
        sqlite3_bind_int64(st, 1, id);
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            al_review_audit *grown = realloc(*rows, (size_t)cap * sizeof **rows);
            if (!grown) {
                rc = SQLITE_NOMEM;
                break;
            }
            *rows = grown;
        }
        al_review_audit *r = &(*rows)[(*n)++];
        r->item_id = sqlite3_column_int64(st, 0);
        r->at = sqlite3_column_int64(st, 1);
        r->action = column_dup(st, 2);
        r->who = column_dup(st, 3);
        r->why = column_dup(st, 4);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_NOMEM)
            al_fail("review audit: out of memory");
        else
            db_fail(q, "reading the audit trail");
        al_review_audit_free(*rows, *n);
        *rows = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

/* An escalation goes to the review queue once: the key is a hash of what was checked. */
int al_review_enqueue_decision(al_review *q, const al_guard_decision *d, const char *prompt, size_t plen,
                               const char *answer, size_t alen)
{
    al_buf b = {0};
    if (al_guard_decision_json(d, &b))
        return -1;
    json_t *j = json_loads(b.data, 0, NULL);
    al_buf_free(&b);
    if (!j)
        return al_fail("cannot re-read a decision");
    uint8_t h[32];
    al_buf keyed = {0};
    int rc = al_buf_append(&keyed, prompt ? prompt : "", prompt ? plen : 0);
    rc |= al_buf_append(&keyed, "\0", 1);
    rc |= al_buf_append(&keyed, answer ? answer : "", answer ? alen : 0);
    al_sha256(keyed.data, keyed.len, h);
    al_buf_free(&keyed);
    char key[6 + 33] = "guard:";
    for (int i = 0; i < 16; i++)
        snprintf(key + 6 + 2 * i, 3, "%02x", h[i]);
    al_review_item it = {0};
    it.key = key;
    it.input = strndup(prompt ? prompt : "", prompt ? plen : 0);
    it.output = answer ? strndup(answer, alen) : NULL;
    it.categories = json_dumps(json_object_get(j, "categories"), JSON_COMPACT);
    it.scores = json_dumps(json_object_get(j, "scores"), JSON_COMPACT);
    it.reasons = json_dumps(json_object_get(j, "reasons"), JSON_COMPACT);
    if (rc == 0 && (!it.input || al_review_enqueue(q, &it, NULL) < 0))
        rc = -1;
    free(it.input);
    free(it.output);
    free(it.categories);
    free(it.scores);
    free(it.reasons);
    json_decref(j);
    return rc;
}
