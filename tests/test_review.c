/* The review queue: items, decisions, the audit trail, idempotent enqueue, and a writer
 * killed with SIGKILL in the middle of a batch. */
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>

#include "align/guard.h"
#include "test.h"

static al_review_item item(const char *key, const char *input)
{
    al_review_item it = {0};
    it.key = (char *)key;
    it.input = (char *)input;
    it.output = "I can't help with that.";
    it.categories = "[\"violent_crime\"]";
    it.scores = "{\"harmful\": 0.91}";
    it.reasons = "[\"classifier:violent_crime\"]";
    return it;
}

static void test_crud_and_audit(const char *dir)
{
    char *path = al_path_join(dir, "crud.db");
    al_review *q = al_review_open(path);
    CHECKF(q != NULL, "%s", al_errmsg());
    if (!q) {
        free(path);
        return;
    }
    bool created = false;
    al_review_item a = item("req-1", "how do I hurt someone");
    int64_t id1 = al_review_enqueue(q, &a, &created);
    CHECK(id1 > 0 && created);
    int64_t again = al_review_enqueue(q, &a, &created);
    CHECK(again == id1 && !created); /* same key: same item, nothing new */
    al_review_item b = item(NULL, "second prompt");
    int64_t id2 = al_review_enqueue(q, &b, &created);
    CHECK(id2 > id1 && created);
    int64_t id3 = al_review_enqueue(q, &b, &created); /* no key: a new item each time */
    CHECK(id3 > id2 && created);
    al_review_item no_input = item("k", NULL);
    CHECK(al_review_enqueue(q, &no_input, NULL) == -1);

    al_review_item got;
    CHECK_OK(al_review_get(q, id1, &got));
    CHECK(got.id == id1 && got.state == AL_REVIEW_PENDING);
    CHECK(got.input && strcmp(got.input, "how do I hurt someone") == 0);
    CHECK(got.key && strcmp(got.key, "req-1") == 0);
    CHECK(got.scores && strcmp(got.scores, "{\"harmful\": 0.91}") == 0);
    CHECK(got.created_at > 1600000000);
    al_review_item_free(&got);
    CHECK(al_review_get(q, 999, &got) == -1 && strstr(al_errmsg(), "no review item 999"));

    /* Decisions need a reviewer and a reason, apply once, and are final. */
    CHECK(al_review_approve(q, id1, "", "fine") == -1);
    CHECK(al_review_approve(q, id1, "ana", NULL) == -1);
    CHECK_OK(al_review_approve(q, id1, "ana", "benign in context"));
    CHECK(al_review_reject(q, id1, "bo", "changed my mind") == -1 && strstr(al_errmsg(), "already approved"));
    CHECK_OK(al_review_reject(q, id2, "bo", "asks for weapons"));
    CHECK(al_review_approve(q, 12345, "ana", "x") == -1);

    al_review_item *items;
    int n;
    CHECK_OK(al_review_list(q, AL_REVIEW_PENDING, &items, &n));
    CHECK(n == 1 && items[0].id == id3);
    al_review_items_free(items, n);
    CHECK_OK(al_review_list(q, -1, &items, &n));
    CHECK(n == 3 && items[0].state == AL_REVIEW_APPROVED && items[1].state == AL_REVIEW_REJECTED);
    al_review_items_free(items, n);

    al_review_audit *rows;
    CHECK_OK(al_review_audit_list(q, id1, &rows, &n));
    CHECK(n == 2);
    if (n == 2) {
        CHECK(strcmp(rows[0].action, "enqueue") == 0 && strcmp(rows[0].who, "guard") == 0);
        CHECK(strcmp(rows[1].action, "approve") == 0 && strcmp(rows[1].who, "ana") == 0);
        CHECK(strcmp(rows[1].why, "benign in context") == 0 && rows[1].at >= rows[0].at);
    }
    al_review_audit_free(rows, n);
    CHECK_OK(al_review_audit_list(q, -1, &rows, &n));
    CHECK(n == 5); /* three enqueues, one approval, one rejection; failed attempts leave none */
    al_review_audit_free(rows, n);
    al_review_close(q);

    /* The audit trail refuses edits even through a raw connection. */
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE audit SET who = 'mallory'", NULL, NULL, NULL) != SQLITE_OK);
    CHECK(sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, NULL) != SQLITE_OK);
    sqlite3_close(db);

    /* Reopening finds everything where it was. */
    q = al_review_open(path);
    CHECK(q != NULL);
    if (q) {
        CHECK_OK(al_review_get(q, id2, &got));
        CHECK(got.state == AL_REVIEW_REJECTED);
        al_review_item_free(&got);
        al_review_close(q);
    }

    al_review_state s;
    CHECK(al_review_state_parse("approved", &s) == 0 && s == AL_REVIEW_APPROVED);
    CHECK(al_review_state_parse("done", &s) == -1);
    free(path);
}

static void test_not_a_database(const char *dir)
{
    char *path = al_path_join(dir, "junk.db");
    FILE *f = fopen(path, "wb");
    fputs("this is not an SQLite file, just text long enough to look like a header......", f);
    fclose(f);
    al_review *q = al_review_open(path);
    CHECK(q == NULL && strstr(al_errmsg(), path));
    al_review_close(q);
    free(path);
}

#define BATCH 150

static void key_of(char *buf, size_t n, int round, int i)
{
    snprintf(buf, n, "round%d-item%03d", round, i);
}

/* Enqueues the batch in order; reports each committed item on fd (if >= 0). */
static int run_batch(const char *path, int round, int fd)
{
    al_review *q = al_review_open(path);
    if (!q)
        return -1;
    for (int i = 0; i < BATCH; i++) {
        char key[64], input[64];
        key_of(key, sizeof key, round, i);
        snprintf(input, sizeof input, "prompt %d of round %d", i, round);
        al_review_item it = item(key, input);
        if (al_review_enqueue(q, &it, NULL) < 0) {
            al_review_close(q);
            return -1;
        }
        if (fd >= 0 && write(fd, "x", 1) != 1)
            return -1;
    }
    al_review_close(q);
    return 0;
}

static long count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* After a kill: the file is intact, each key is there at most once, and the keys present
 * are exactly the first m of the batch, m >= the commits the writer had reported. */
static void check_after_kill(const char *path, int round, int reported)
{
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_stmt *st;
    CHECK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0);
    sqlite3_finalize(st);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM items WHERE idem_key LIKE 'round%d-%%'", round);
    long m = count(db, sql);
    snprintf(sql, sizeof sql, "SELECT count(DISTINCT idem_key) FROM items WHERE idem_key LIKE 'round%d-%%'", round);
    CHECK(count(db, sql) == m);
    CHECKF(m >= reported && m <= BATCH, "round %d: %ld items, %d reported committed", round, m, reported);
    char key[64];
    key_of(key, sizeof key, round, (int)m - 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM items WHERE idem_key LIKE 'round%d-%%' AND idem_key <= '%s'",
             round, key);
    CHECK(m == 0 || count(db, sql) == m); /* a prefix of the batch, no gaps */
    /* Item and audit row were committed together. */
    CHECK(count(db, "SELECT count(*) FROM items WHERE id NOT IN (SELECT item_id FROM audit)") == 0);
    CHECK(count(db, "SELECT count(*) FROM audit") == count(db, "SELECT count(*) FROM items"));
    sqlite3_close(db);
}

static void test_sigkill(const char *dir)
{
    char *path = al_path_join(dir, "kill.db");
    uint64_t rng = (uint64_t)time(NULL) * 2654435761u + (uint64_t)getpid();
    if (rng == 0)
        rng = 1;
    for (int round = 0; round < 4; round++) {
        int stop_after = 1 + (int)(al_xorshift_u32(&rng) % (BATCH - 1));
        int fds[2];
        CHECK(pipe(fds) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            _exit(run_batch(path, round, fds[1]) == 0 ? 0 : 1);
        }
        close(fds[1]);
        int reported = 0;
        char c;
        while (reported < stop_after && read(fds[0], &c, 1) == 1)
            reported++;
        /* Give the writer a random head start into its next transaction. */
        struct timespec ts = {0, (long)(al_xorshift_u32(&rng) % 3000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        close(fds[0]);
        printf("round %d: killed after %d reported commits (%s)\n", round, reported,
               WIFSIGNALED(status) ? "mid-batch" : "writer had finished");
        check_after_kill(path, round, reported);

        /* The retry completes the batch: exactly BATCH items, none twice. */
        CHECK_OK(run_batch(path, round, -1));
        sqlite3 *db;
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM items WHERE idem_key LIKE 'round%d-%%'", round);
        CHECK(count(db, sql) == BATCH);
        CHECK(count(db, "SELECT count(*) FROM items") == (long)BATCH * (round + 1));
        CHECK(count(db, "SELECT count(*) FROM audit") == (long)BATCH * (round + 1));
        sqlite3_close(db);
    }
    free(path);
}

int main(void)
{
    const char *dir = test_tmpdir("review");
    test_crud_and_audit(dir);
    test_not_a_database(dir);
    test_sigkill(dir);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_report();
}
