/* align review: the human side of the guard.  Escalated decisions wait in the review queue
 * (an SQLite file); a reviewer lists them, reads one with its audit trail, and approves or
 * rejects it with a name and a reason that stay in the audit trail. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "align/core.h"
#include "align/guard.h"
#include "args.h"
#include "commands.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: align review list [--state STATE] [--db FILE] [--json]\n"
            "       align review show ID [--db FILE] [--json]\n"
            "       align review approve ID --by NAME --reason TEXT [--db FILE]\n"
            "       align review reject ID --by NAME --reason TEXT [--db FILE]\n"
            "\n"
            "The review queue holds the prompts (and answers) the guard escalated to a person.\n"
            "`list` shows items, oldest first; `show` prints one item in full with its audit trail;\n"
            "`approve` and `reject` decide a pending item.  A decision is final and is recorded with\n"
            "who made it, when, and why; the audit trail cannot be edited.\n"
            "\n"
            "options:\n"
            "      --db FILE       the queue (default: $ALIGN_REVIEW_DB, else ./" AL_REVIEW_DEFAULT_DB ")\n"
            "      --state STATE   list only pending, approved or rejected items, or all\n"
            "                      (default pending)\n"
            "      --by NAME       the reviewer (required to decide)\n"
            "      --reason TEXT   why (required to decide)\n"
            "      --json          one JSON object per line instead of text\n"
            "  -h, --help          this text\n"
            "\n"
            "examples:\n"
            "  align review list\n"
            "  align review show 12\n"
            "  align review approve 12 --by ana --reason \"asks how to kill a stuck process\"\n"
            "  align review reject 13 --by ana --reason \"weapon synthesis\" --db /srv/guard/review.db\n");
}

typedef struct review_args {
    const char *sub, *db, *by, *reason;
    int state; /* -1: all */
    int64_t id;
    bool have_id, json;
} review_args;

static int parse(review_args *r, int argc, char **argv)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "align review %s", r->sub);
    cli_args a;
    cli_args_init(&a, cmd, argc, argv);
    const char *arg;
    while ((arg = cli_next(&a))) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            help(stdout);
            return -1;
        } else if (cli_opt(&a, arg, NULL, "--db")) {
            r->db = a.value;
        } else if (cli_opt(&a, arg, NULL, "--by")) {
            r->by = a.value;
        } else if (cli_opt(&a, arg, NULL, "--reason")) {
            r->reason = a.value;
        } else if (cli_opt(&a, arg, NULL, "--state")) {
            al_review_state s;
            if (strcmp(a.value, "all") == 0) {
                r->state = -1;
            } else if (al_review_state_parse(a.value, &s) == 0) {
                r->state = (int)s;
            } else {
                fprintf(stderr, "%s: %s\n", cmd, al_errmsg());
                return 2;
            }
        } else if (cli_flag(&a, arg, NULL, "--json")) {
            r->json = true;
        } else if (arg[0] != '-' && !r->have_id) {
            char *end;
            long long v = strtoll(arg, &end, 10);
            if (*end || v <= 0) {
                fprintf(stderr, "%s: expected an item id (a positive integer), got '%s'\n", cmd, arg);
                return 2;
            }
            r->id = v;
            r->have_id = true;
        } else {
            return cli_unknown(&a, arg);
        }
    }
    return a.error ? 2 : 0;
}

static void format_time(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One line of a prompt for the list: newlines shown as spaces, cut at max bytes without
 * splitting a UTF-8 sequence. */
static void print_snippet(const char *s, size_t max)
{
    size_t n = strlen(s), cut = n > max ? max : n;
    while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    for (size_t i = 0; i < cut; i++)
        putchar(s[i] == '\n' || s[i] == '\r' || s[i] == '\t' ? ' ' : s[i]);
    if (cut < n)
        fputs("...", stdout);
}

static json_t *item_json(const al_review_item *it)
{
    char when[32];
    format_time(it->created_at, when, sizeof when);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(it->id));
    json_object_set_new(o, "created_at", json_string(when));
    json_object_set_new(o, "state", json_string(al_review_state_name(it->state)));
    json_object_set_new(o, "key", it->key ? json_string(it->key) : json_null());
    json_object_set_new(o, "input", json_string(it->input ? it->input : ""));
    json_object_set_new(o, "output", it->output ? json_string(it->output) : json_null());
    json_object_set_new(o, "categories", it->categories ? json_string(it->categories) : json_null());
    json_object_set_new(o, "scores", it->scores ? json_string(it->scores) : json_null());
    json_object_set_new(o, "reasons", it->reasons ? json_string(it->reasons) : json_null());
    return o;
}

static void print_json_line(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

static int do_list(al_review *q, const review_args *r)
{
    al_review_item *items;
    int n;
    if (al_review_list(q, r->state, &items, &n))
        return -1;
    for (int i = 0; i < n; i++) {
        const al_review_item *it = &items[i];
        if (r->json) {
            print_json_line(item_json(it));
            continue;
        }
        char when[32];
        format_time(it->created_at, when, sizeof when);
        printf("%6lld  %-8s  %s  %-28s  ", (long long)it->id, al_review_state_name(it->state), when,
               it->categories ? it->categories : "-");
        print_snippet(it->input ? it->input : "", 60);
        putchar('\n');
    }
    if (!r->json)
        fprintf(stderr, "%d %s item%s\n", n, r->state < 0 ? "" : al_review_state_name((al_review_state)r->state),
                n == 1 ? "" : "s");
    al_review_items_free(items, n);
    return 0;
}

static int do_show(al_review *q, const review_args *r)
{
    al_review_item it;
    if (al_review_get(q, r->id, &it))
        return -1;
    al_review_audit *rows;
    int n;
    if (al_review_audit_list(q, r->id, &rows, &n)) {
        al_review_item_free(&it);
        return -1;
    }
    if (r->json) {
        json_t *o = item_json(&it), *trail = json_array();
        for (int i = 0; i < n; i++) {
            char when[32];
            format_time(rows[i].at, when, sizeof when);
            json_t *a = json_object();
            json_object_set_new(a, "at", json_string(when));
            json_object_set_new(a, "action", json_string(rows[i].action));
            json_object_set_new(a, "who", json_string(rows[i].who));
            json_object_set_new(a, "why", rows[i].why ? json_string(rows[i].why) : json_null());
            json_array_append_new(trail, a);
        }
        json_object_set_new(o, "audit", trail);
        print_json_line(o);
    } else {
        char when[32];
        format_time(it.created_at, when, sizeof when);
        printf("item %lld  %s  created %s\n", (long long)it.id, al_review_state_name(it.state), when);
        printf("key:        %s\n", it.key ? it.key : "-");
        printf("categories: %s\n", it.categories ? it.categories : "-");
        printf("scores:     %s\n", it.scores ? it.scores : "-");
        printf("reasons:    %s\n", it.reasons ? it.reasons : "-");
        printf("input:\n%s\n", it.input ? it.input : "");
        if (it.output)
            printf("output:\n%s\n", it.output);
        printf("audit:\n");
        for (int i = 0; i < n; i++) {
            format_time(rows[i].at, when, sizeof when);
            printf("  %s  %-8s by %s: %s\n", when, rows[i].action, rows[i].who, rows[i].why ? rows[i].why : "");
        }
    }
    al_review_audit_free(rows, n);
    al_review_item_free(&it);
    return 0;
}

int cmd_review(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    review_args r = {.sub = argv[1], .state = AL_REVIEW_PENDING};
    bool list = !strcmp(r.sub, "list"), show = !strcmp(r.sub, "show");
    bool approve = !strcmp(r.sub, "approve"), reject = !strcmp(r.sub, "reject");
    if (!list && !show && !approve && !reject) {
        fprintf(stderr, "align review: unknown subcommand '%s' (expected list, show, approve or reject)\n", r.sub);
        return 2;
    }
    int rc = parse(&r, argc - 1, argv + 1);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!list && !r.have_id) {
        fprintf(stderr, "align review %s: needs an item id (see align review --help)\n", r.sub);
        return 2;
    }
    if (list && r.have_id) {
        fprintf(stderr, "align review list: takes no item id (use align review show ID)\n");
        return 2;
    }
    if ((approve || reject) && (!r.by || !*r.by || !r.reason || !*r.reason)) {
        fprintf(stderr, "align review %s: needs --by NAME and --reason TEXT; both go into the audit trail\n", r.sub);
        return 2;
    }
    if (!r.db)
        r.db = getenv("ALIGN_REVIEW_DB");
    if (!r.db || !*r.db)
        r.db = AL_REVIEW_DEFAULT_DB;
    al_review *q = al_review_open(r.db);
    if (!q) {
        fprintf(stderr, "align review %s: %s\n", r.sub, al_errmsg());
        return 1;
    }
    if (list)
        rc = do_list(q, &r);
    else if (show)
        rc = do_show(q, &r);
    else if (approve)
        rc = al_review_approve(q, r.id, r.by, r.reason);
    else
        rc = al_review_reject(q, r.id, r.by, r.reason);
    if (rc == 0 && (approve || reject))
        printf("item %lld %s by %s\n", (long long)r.id, approve ? "approved" : "rejected", r.by);
    if (rc)
        fprintf(stderr, "align review %s: %s\n", r.sub, al_errmsg());
    al_review_close(q);
    return rc ? 1 : 0;
}
