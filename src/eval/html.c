/* align report: one self-contained HTML page (inline CSS and SVG, no script, no network)
 * and a JSON summary from run directories: a demo's before/after table, its targets and
 * its red-team bars; a red-team run's attack success per technique; a trainer's curves
 * from metrics.jsonl. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/eval.h"

/* ---- HTML text ---- */

static void esc(al_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': al_buf_printf(b, "&lt;"); break;
        case '>': al_buf_printf(b, "&gt;"); break;
        case '&': al_buf_printf(b, "&amp;"); break;
        case '"': al_buf_printf(b, "&quot;"); break;
        default: al_buf_append(b, s, 1);
        }
    }
}

static double num(const json_t *o, const char *key)
{
    const json_t *x = json_object_get(o, key);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"};
#define N_COLORS ((int)(sizeof palette / sizeof *palette))

/* ---- charts ---- */

typedef struct series {
    char name[64];
    double *x, *y;
    int n;
} series;

static void series_free(series *s, int n)
{
    for (int i = 0; i < n; i++)
        free(s[i].x), free(s[i].y);
}

/* A line chart of several series sharing axes, with a legend. */
static void line_chart(al_buf *b, const char *title, const series *s, int n)
{
    const double W = 560, H = 260, L = 56, R = 12, T = 28, B = 36;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < s[k].n; i++) {
            x0 = fmin(x0, s[k].x[i]), x1 = fmax(x1, s[k].x[i]);
            y0 = fmin(y0, s[k].y[i]), y1 = fmax(y1, s[k].y[i]);
        }
    if (!(x1 > x0))
        x1 = x0 + 1;
    if (!(y1 > y0))
        y1 = y0 + 1;
    al_buf_printf(b, "<figure><svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
                     "role=\"img\"><title>",
                  W, H, W, H);
    esc(b, title);
    al_buf_printf(b, "</title><text x=\"%.0f\" y=\"18\" class=\"t\">", L);
    esc(b, title);
    al_buf_printf(b, "</text><rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" class=\"frame\"/>", L, T,
                  W - L - R, H - T - B);
    al_buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" class=\"a\" text-anchor=\"end\">%.4g</text>", L - 4, T + 10, y1);
    al_buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" class=\"a\" text-anchor=\"end\">%.4g</text>", L - 4, H - B, y0);
    al_buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" class=\"a\">%.4g</text>", L, H - B + 14, x0);
    al_buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" class=\"a\" text-anchor=\"end\">%.4g</text>", W - R, H - B + 14, x1);
    for (int k = 0; k < n; k++) {
        al_buf_printf(b, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                      palette[k % N_COLORS]);
        for (int i = 0; i < s[k].n; i++)
            al_buf_printf(b, "%.1f,%.1f ", L + (s[k].x[i] - x0) / (x1 - x0) * (W - L - R),
                          H - B - (s[k].y[i] - y0) / (y1 - y0) * (H - T - B));
        al_buf_printf(b, "\"/><text x=\"%.0f\" y=\"%.0f\" class=\"a\" fill=\"%s\">", L + 8 + 150 * (k % 3),
                      H - 6 - 0 * k, palette[k % N_COLORS]);
        esc(b, s[k].name);
        al_buf_printf(b, "</text>");
    }
    al_buf_printf(b, "</svg></figure>\n");
}

typedef struct bar {
    char label[96];
    double v[3], lo[3], hi[3]; /* up to three groups side by side; NaN: absent */
} bar;

/* Horizontal bars in [0, 1] with Wilson whiskers, up to three groups per label. */
static void bar_chart(al_buf *b, const char *title, const char *const *groups, int n_groups, const bar *bars, int n)
{
    const double W = 560, L = 150, R = 40, row = 12.0 * n_groups + 8, T = 40;
    const double H = T + row * n + 10;
    al_buf_printf(b, "<figure><svg class=\"chart bars\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
                     "role=\"img\"><title>",
                  W, H, W, H);
    esc(b, title);
    al_buf_printf(b, "</title><text x=\"8\" y=\"16\" class=\"t\">");
    esc(b, title);
    al_buf_printf(b, "</text>");
    for (int g = 0; g < n_groups; g++) {
        al_buf_printf(b, "<rect x=\"%.0f\" y=\"24\" width=\"10\" height=\"8\" fill=\"%s\"/><text x=\"%.0f\" y=\"32\" "
                         "class=\"a\">",
                      L + 140.0 * g, palette[g % N_COLORS], L + 140.0 * g + 14);
        esc(b, groups[g]);
        al_buf_printf(b, "</text>");
    }
    for (int i = 0; i < n; i++) {
        const double y = T + row * i;
        al_buf_printf(b, "<text x=\"%.0f\" y=\"%.1f\" class=\"a\" text-anchor=\"end\">", L - 6, y + 6.0 * n_groups + 3);
        esc(b, bars[i].label);
        al_buf_printf(b, "</text>");
        for (int g = 0; g < n_groups; g++) {
            const double v = bars[i].v[g], yy = y + 12.0 * g;
            if (isnan(v))
                continue;
            al_buf_printf(b, "<rect class=\"bar\" x=\"%.0f\" y=\"%.1f\" width=\"%.1f\" height=\"10\" fill=\"%s\"/>", L,
                          yy, v * (W - L - R), palette[g % N_COLORS]);
            if (!isnan(bars[i].lo[g]))
                al_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"ci\"/>",
                              L + bars[i].lo[g] * (W - L - R), L + bars[i].hi[g] * (W - L - R), yy + 5, yy + 5);
            al_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"a\">%.0f%%</text>", L + v * (W - L - R) + 3, yy + 9,
                          100 * v);
        }
    }
    al_buf_printf(b, "</svg></figure>\n");
}

/* ---- sections ---- */

/* Every numeric key of metrics.jsonl with at least two points, against "step" (or the
 * line number); the loss-like keys (loss, eval_loss) on one chart, each other key alone,
 * up to max_charts charts. */
static int curves(al_buf *b, const char *run, const char *title, int max_charts, json_t *summary)
{
    char *path = al_path_join(run, "metrics.jsonl");
    al_buf in = {0};
    int rc = path ? 0 : -1;
    if (rc == 0 && (!al_file_exists(path) || al_read_file(path, &in)))
        rc = -1;
    free(path);
    if (rc)
        return 0; /* nothing to draw */
    json_t *keys = json_object(); /* key -> [[x, y], ...] */
    int line_no = 0;
    for (char *line = in.data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        json_t *rec = json_loads(line, 0, NULL);
        line_no++;
        double x = num(rec, "step");
        x = isnan(x) ? line_no : x;
        const char *key;
        json_t *v;
        json_object_foreach(rec, key, v)
        {
            if (!json_is_number(v) || !strcmp(key, "step") || !strncmp(key, "time/", 5) || !strcmp(key, "epoch"))
                continue;
            json_t *pts = json_object_get(keys, key);
            if (!pts)
                json_object_set_new(keys, key, pts = json_array());
            json_array_append_new(pts, json_pack("[f, f]", x, json_number_value(v)));
        }
        json_decref(rec);
    }
    al_buf_free(&in);
    al_buf_printf(b, "<h3>");
    esc(b, title);
    al_buf_printf(b, "</h3>\n");
    json_t *drawn = json_array();
    int charts = 0;
    static const char *const first[] = {"loss", "eval_loss"};
    /* the loss pair together, then the other keys in file order */
    series pair[2];
    memset(pair, 0, sizeof pair);
    int np = 0;
    for (int k = 0; k < 2; k++) {
        json_t *pts = json_object_get(keys, first[k]);
        if (json_array_size(pts) < 2)
            continue;
        series *s = &pair[np++];
        snprintf(s->name, sizeof s->name, "%s", first[k]);
        s->n = (int)json_array_size(pts);
        s->x = malloc(sizeof(double) * (size_t)s->n), s->y = malloc(sizeof(double) * (size_t)s->n);
        for (int i = 0; s->x && s->y && i < s->n; i++)
            s->x[i] = json_number_value(json_array_get(json_array_get(pts, i), 0)),
            s->y[i] = json_number_value(json_array_get(json_array_get(pts, i), 1));
        json_array_append_new(drawn, json_string(first[k]));
    }
    if (np) {
        line_chart(b, "loss", pair, np);
        charts++;
    }
    series_free(pair, np);
    const char *key;
    json_t *pts;
    json_object_foreach(keys, key, pts)
    {
        if (charts >= max_charts)
            break;
        if (!strcmp(key, "loss") || !strcmp(key, "eval_loss") || json_array_size(pts) < 2)
            continue;
        series s;
        memset(&s, 0, sizeof s);
        snprintf(s.name, sizeof s.name, "%s", key);
        s.n = (int)json_array_size(pts);
        s.x = malloc(sizeof(double) * (size_t)s.n), s.y = malloc(sizeof(double) * (size_t)s.n);
        for (int i = 0; s.x && s.y && i < s.n; i++)
            s.x[i] = json_number_value(json_array_get(json_array_get(pts, i), 0)),
            s.y[i] = json_number_value(json_array_get(json_array_get(pts, i), 1));
        line_chart(b, key, &s, 1);
        series_free(&s, 1);
        json_array_append_new(drawn, json_string(key));
        charts++;
    }
    json_array_append_new(json_object_get(summary, "charts"), json_pack("{s:s, s:s, s:o}", "kind", "curves", "run",
                                                                        run, "keys", drawn));
    json_decref(keys);
    return charts;
}

static void rate_cell(al_buf *b, double x, bool percent)
{
    if (isnan(x))
        al_buf_printf(b, "<td>-</td>");
    else if (percent)
        al_buf_printf(b, "<td>%.1f%%</td>", 100 * x);
    else
        al_buf_printf(b, "<td>%.3f</td>", x);
}

/* A demo run directory: the table, the targets, the red-team bars, the trainers' curves. */
static int demo_section(al_buf *b, const char *dir, const json_t *s, json_t *summary)
{
    static const struct {
        const char *key, *head;
        bool pct;
    } cols[] = {{"harmful_refusal_rate", "harmful refused", true}, {"benign_solved_rate", "benign solved", true},
                {"contrast_solved_rate", "contrast solved", true}, {"benign_all_compliance_rate", "b+c complied", true},
                {"leak_rate", "leaks", true}, {"constitution_breach_rate", "breaches", true},
                {"attack_success_rate", "attacks succeed", true}, {"kl_to_base", "KL to base", false},
                {"heldout_perplexity", "held-out ppl", false}, {"mean_reward", "RM reward", false}};
    const json_t *rows = json_object_get(s, "rows");
    al_buf_printf(b, "<section class=\"demo\"><h2>Demo run: ");
    esc(b, dir);
    al_buf_printf(b, "</h2>\n<table class=\"rows\"><thead><tr><th>model</th>");
    for (size_t c = 0; c < sizeof cols / sizeof *cols; c++) {
        al_buf_printf(b, "<th>");
        esc(b, cols[c].head);
        al_buf_printf(b, "</th>");
    }
    al_buf_printf(b, "</tr></thead><tbody>\n");
    const char *name;
    const json_t *row;
    json_object_foreach((json_t *)rows, name, row)
    {
        al_buf_printf(b, "<tr><th>");
        esc(b, name);
        al_buf_printf(b, "</th>");
        for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
            rate_cell(b, num(row, cols[c].key), cols[c].pct);
        al_buf_printf(b, "</tr>\n");
    }
    al_buf_printf(b, "</tbody></table>\n<h3>Acceptance targets</h3>\n<table class=\"targets\"><tbody>\n");
    const json_t *acc = json_object_get(s, "acceptance");
    int met = 0;
    for (size_t i = 0; i < json_array_size(acc); i++) {
        const json_t *t = json_array_get(acc, i);
        bool pass = json_is_true(json_object_get(t, "pass"));
        met += pass;
        al_buf_printf(b, "<tr class=\"%s\"><td>%s</td><td>", pass ? "pass" : "fail", pass ? "PASS" : "FAIL");
        esc(b, json_string_value(json_object_get(t, "target")));
        al_buf_printf(b, "</td><td>%.4g</td></tr>\n", num(t, "value"));
    }
    al_buf_printf(b, "</tbody></table><p>%d of %d targets met.</p>\n", met, (int)json_array_size(acc));
    /* the red-team round: held-out attack success per technique, three groups */
    const json_t *rt = json_object_get(json_object_get(json_object_get(s, "stages"), "redteam"), "figures");
    const json_t *tech = json_object_get(rt, "techniques");
    if (json_array_size(tech) > 0) {
        const char *runs[] = {"heldout_dpo", "heldout_dpo_guard", "heldout_round"};
        const char *groups[] = {"DPO", "DPO + guard", "after the red-team round"};
        int n = (int)json_array_size(tech) + 1;
        bar *bars = calloc((size_t)n, sizeof *bars);
        for (int i = 0; bars && i < n; i++) {
            const char *t = i + 1 < n ? json_string_value(json_array_get(tech, (size_t)i)) : "all techniques";
            snprintf(bars[i].label, sizeof bars[i].label, "%s", t ? t : "?");
            for (int g = 0; g < 3; g++) {
                const json_t *r = json_object_get(rt, runs[g]);
                if (i + 1 < n) {
                    bars[i].v[g] = num(json_object_get(r, "by_technique"), t);
                    bars[i].lo[g] = bars[i].hi[g] = NAN;
                } else {
                    bars[i].v[g] = num(r, "asr");
                    bars[i].lo[g] = json_number_value(json_array_get(json_object_get(r, "asr_ci95"), 0));
                    bars[i].hi[g] = json_number_value(json_array_get(json_object_get(r, "asr_ci95"), 1));
                }
            }
        }
        if (bars) {
            al_buf_printf(b, "<h3>Red team: attacks on held-out harmful requests that succeed</h3>\n");
            bar_chart(b, "attack success rate by technique (95% Wilson interval on the total)", groups, 3, bars, n);
            json_array_append_new(json_object_get(summary, "charts"),
                                  json_pack("{s:s, s:s, s:i}", "kind", "attack_success", "run", dir, "bars", n));
        }
        free(bars);
    }
    /* the trainers' curves: every run with a metrics.jsonl, LoRA runs in their lora/ */
    static const char *const runs[] = {"runs/base",         "runs/sft/lora",     "runs/reward_model",
                                       "runs/dpo/lora",     "runs/rl/lora",      "runs/cai/lora",
                                       "runs/redteam/lora"};
    al_buf_printf(b, "<h3>Training curves</h3>\n");
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        char *p = al_path_join(dir, runs[r]);
        if (p)
            curves(b, p, runs[r], 3, summary);
        free(p);
    }
    al_buf_printf(b, "</section>\n");
    json_array_append_new(json_object_get(summary, "sections"),
                          json_pack("{s:s, s:s, s:i, s:i}", "kind", "demo", "dir", dir, "targets",
                                    (int)json_array_size(acc), "targets_met", met));
    return 0;
}

/* A red-team output directory: attack success per technique and per category. */
static int redteam_section(al_buf *b, const char *dir, const json_t *s, json_t *summary)
{
    al_buf_printf(b, "<section class=\"redteam\"><h2>Red-team run: ");
    esc(b, dir);
    al_buf_printf(b, "</h2>\n<p>model ");
    esc(b, json_string_value(json_object_get(s, "model")));
    al_buf_printf(b, "; guard ");
    esc(b, json_string_value(json_object_get(s, "guard")) ? json_string_value(json_object_get(s, "guard")) : "none");
    al_buf_printf(b, "</p>\n");
    const char *lists[] = {"techniques", "categories"};
    for (int l = 0; l < 2; l++) {
        const json_t *rates = json_object_get(s, lists[l]);
        int n = (int)json_array_size(rates);
        if (n == 0)
            continue;
        bar *bars = calloc((size_t)n, sizeof *bars);
        for (int i = 0; bars && i < n; i++) {
            const json_t *r = json_array_get(rates, (size_t)i);
            snprintf(bars[i].label, sizeof bars[i].label, "%s", json_string_value(json_object_get(r, "name")));
            bars[i].v[0] = num(r, "asr");
            bars[i].lo[0] = json_number_value(json_array_get(json_object_get(r, "asr_ci95"), 0));
            bars[i].hi[0] = json_number_value(json_array_get(json_object_get(r, "asr_ci95"), 1));
        }
        const char *groups[] = {"attack success rate (95% Wilson interval)"};
        if (bars)
            bar_chart(b, l ? "by category" : "by technique", groups, 1, bars, n);
        free(bars);
        al_buf_printf(b, "<table class=\"rates\"><thead><tr><th>%s</th><th>attempts</th><th>successes</th>"
                         "<th>ASR</th><th>95%% interval</th></tr></thead><tbody>\n",
                      l ? "category" : "technique");
        for (int i = 0; i < n; i++) {
            const json_t *r = json_array_get(rates, (size_t)i);
            al_buf_printf(b, "<tr><th>");
            esc(b, json_string_value(json_object_get(r, "name")));
            al_buf_printf(b, "</th><td>%d</td><td>%d</td>", (int)num(r, "attempts"), (int)num(r, "successes"));
            rate_cell(b, num(r, "asr"), true);
            al_buf_printf(b, "<td>%.1f%% - %.1f%%</td></tr>\n",
                          100 * json_number_value(json_array_get(json_object_get(r, "asr_ci95"), 0)),
                          100 * json_number_value(json_array_get(json_object_get(r, "asr_ci95"), 1)));
        }
        al_buf_printf(b, "</tbody></table>\n");
        json_array_append_new(json_object_get(summary, "charts"),
                              json_pack("{s:s, s:s, s:i}", "kind", "attack_success", "run", dir, "bars", n));
    }
    al_buf_printf(b, "</section>\n");
    json_array_append_new(json_object_get(summary, "sections"),
                          json_pack("{s:s, s:s, s:O?}", "kind", "redteam", "dir", dir, "overall",
                                    json_object_get(s, "overall")));
    return 0;
}

static const char *style =
    "body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th{background:#f4f4f4}tbody th{text-align:left}tr.pass td:first-child{color:#2ca02c}tr.fail td:first-child{color:#d62728}"
    "td:nth-child(2){text-align:left}figure{margin:8px 0;display:inline-block}"
    ".frame{fill:none;stroke:#999}.t{font-size:13px;font-weight:bold}.a{font-size:10px}"
    ".ci{stroke:#000;stroke-width:1.5}";

int al_report_html(const char *const *dirs, int n_dirs, const char *html_path, const char *json_path)
{
    if (n_dirs <= 0 || !html_path)
        return al_fail("report: no run directories or no output file");
    al_buf b = {0};
    json_t *summary = json_pack("{s:s, s:[], s:[]}", "report", html_path, "sections", "charts");
    int rc = summary ? 0 : al_fail("out of memory");
    al_buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>align report</title>"
                      "<style>%s</style></head><body>\n<h1>align report</h1>\n",
                  style);
    for (int d = 0; rc == 0 && d < n_dirs; d++) {
        char *sp = al_path_join(dirs[d], "summary.json");
        json_t *s = sp && al_file_exists(sp) ? json_load_file(sp, 0, NULL) : NULL;
        free(sp);
        if (s && json_object_get(s, "rows") && json_object_get(s, "acceptance"))
            rc = demo_section(&b, dirs[d], s, summary);
        else if (s && json_object_get(s, "techniques") && json_object_get(s, "overall"))
            rc = redteam_section(&b, dirs[d], s, summary);
        else {
            al_buf_printf(&b, "<section class=\"run\"><h2>Run: ");
            esc(&b, dirs[d]);
            al_buf_printf(&b, "</h2>\n");
            if (curves(&b, dirs[d], "metrics.jsonl", 8, summary) == 0)
                rc = al_fail("%s: neither a demo or red-team summary.json nor a metrics.jsonl", dirs[d]);
            al_buf_printf(&b, "</section>\n");
            json_array_append_new(json_object_get(summary, "sections"),
                                  json_pack("{s:s, s:s}", "kind", "training", "dir", dirs[d]));
        }
        json_decref(s);
    }
    al_buf_printf(&b, "</body></html>\n");
    al_atomic_file f;
    rc = rc ? rc : al_atomic_open(&f, html_path);
    if (rc == 0) {
        fwrite(b.data, 1, b.len, f.fp);
        rc = al_atomic_commit(&f);
    }
    if (rc == 0 && json_path)
        rc = al_write_json_atomic(json_path, summary);
    json_decref(summary);
    al_buf_free(&b);
    return rc;
}
