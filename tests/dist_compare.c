/* The comparisons of tests/test_dist_train.sh and tests/test_dist_rl.sh: a run on N ranks
 * against the same run on one rank.
 *   dist_compare weights DIR_A DIR_B TOL   max |a - b| over the two models' parameters
 *   dist_compare metrics FILE_A FILE_B TOL the lines of two metrics.jsonl that report a loss
 *                                          (training steps, evaluations), matched by step
 *                                          and kind: loss, eval_loss and reward to TOL, every
 *                                          other number to 100 TOL relative to its size
 *                                          (timings, speeds and dist/ figures aside)
 *   dist_compare same FILE_A FILE_B        the two files byte for byte (dumps)
 * Prints the largest difference found; exits 0 when it is at most TOL, 1 when larger (or
 * the two do not line up), 2 on a usage or read error. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/core.h"
#include "align/model.h"

static int compare_weights(const char *a, const char *b, double tol)
{
    al_model x = {0}, y = {0};
    if (al_model_load(&x, a) || al_model_load(&y, b)) {
        fprintf(stderr, "dist_compare: %s\n", al_errmsg());
        return 2;
    }
    if (x.n_params != y.n_params) {
        fprintf(stderr, "dist_compare: %s has %zu parameters, %s %zu\n", a, x.n_params, b, y.n_params);
        al_model_free(&x);
        al_model_free(&y);
        return 1;
    }
    double worst = 0;
    size_t at = 0, differ = 0;
    for (size_t i = 0; i < x.n_params; i++) {
        double d = fabs((double)x.params[i] - (double)y.params[i]);
        differ += d != 0;
        if (d > worst || isnan(d))
            worst = d, at = i;
    }
    printf("weights: %zu parameters, %zu differ, max |diff| %.3g (parameter %zu)\n", x.n_params, differ, worst, at);
    al_model_free(&x);
    al_model_free(&y);
    return worst <= tol ? 0 : 1;
}

/* The lines of a metrics.jsonl that report a loss, in order. */
static json_t *loss_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    json_t *all = json_array();
    char line[65536];
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (j && (json_object_get(j, "loss") || json_object_get(j, "eval_loss")))
            json_array_append(all, j);
        json_decref(j);
    }
    fclose(f);
    return all;
}

/* Figures two correct runs do not share: how long things took and what N ranks sent. */
static bool skipped(const char *key)
{
    return !strncmp(key, "time/", 5) || !strncmp(key, "dist/", 5) || strstr(key, "per_s");
}

/* Figures that must agree to tol itself; the others (gradient norms, sums of log-probs, the
 * KL per sequence) move with the weights' last bits, which training amplifies step by step. */
static bool absolute(const char *key)
{
    return !strcmp(key, "loss") || !strcmp(key, "eval_loss") || !strcmp(key, "reward");
}

static bool is_eval(const json_t *l) { return json_object_get(l, "eval_loss") != NULL; }

/* The line of lines with the same step and kind (a training step, or an evaluation) as l. */
static json_t *partner(json_t *lines, const json_t *l)
{
    const json_int_t step = json_integer_value(json_object_get(l, "step"));
    size_t i;
    json_t *c;
    json_array_foreach(lines, i, c)
    {
        if (is_eval(c) == is_eval(l) && json_integer_value(json_object_get(c, "step")) == step)
            return c;
    }
    return NULL;
}

typedef struct worst {
    double absolute, relative;
    const char *absolute_key, *relative_key;
} worst;

/* Every number of lx against ly; returns 1 when ly lacks one. */
static int compare_line(const json_t *lx, const json_t *ly, size_t line, const char *b, worst *w)
{
    int rc = 0;
    const char *key;
    json_t *vx;
    json_object_foreach((json_t *)lx, key, vx)
    {
        if (skipped(key) || !json_is_number(vx))
            continue;
        json_t *vy = json_object_get(ly, key);
        if (!json_is_number(vy)) {
            fprintf(stderr, "dist_compare: line %zu: %s missing in %s\n", line, key, b);
            rc = 1;
            continue;
        }
        const double u = json_number_value(vx), v = json_number_value(vy);
        double d = isnan(u) != isnan(v) ? INFINITY : fabs(u - v);
        if (absolute(key)) {
            if (d > w->absolute)
                w->absolute = d, w->absolute_key = key;
        } else {
            d /= fmax(1.0, fmax(fabs(u), fabs(v)));
            if (d > w->relative)
                w->relative = d, w->relative_key = key;
        }
    }
    return rc;
}

/* Every line of a has its partner in b, and every training step of b one in a; b may have
 * more evaluations (a resumed run evaluates where its first part stopped). */
static int compare_metrics(const char *a, const char *b, double tol)
{
    json_t *x = loss_lines(a), *y = loss_lines(b);
    if (!x || !y) {
        fprintf(stderr, "dist_compare: cannot read %s\n", !x ? a : b);
        json_decref(x);
        json_decref(y);
        return 2;
    }
    int rc = json_array_size(x) == 0 ? 1 : 0;
    worst w = {0, 0, "", ""};
    size_t i;
    json_t *l;
    json_array_foreach(x, i, l)
    {
        json_t *ly = partner(y, l);
        if (!ly) {
            fprintf(stderr, "dist_compare: %s: no line like line %zu of %s\n", b, i + 1, a);
            rc = 1;
        } else {
            rc |= compare_line(l, ly, i + 1, b, &w);
        }
    }
    json_array_foreach(y, i, l)
    {
        if (!is_eval(l) && !partner(x, l)) {
            fprintf(stderr, "dist_compare: %s: step %lld of %s has no line\n", a,
                    (long long)json_integer_value(json_object_get(l, "step")), b);
            rc = 1;
        }
    }
    printf("metrics: %zu lines, max |diff| %.3g (%s), max relative diff of the rest %.3g (%s)\n",
           json_array_size(x), w.absolute, w.absolute_key, w.relative, w.relative_key);
    json_decref(x);
    json_decref(y);
    return rc ? rc : w.absolute <= tol && w.relative <= 100 * tol ? 0 : 1;
}

static int compare_bytes(const char *a, const char *b)
{
    al_buf x = {0}, y = {0};
    int rc = al_read_file(a, &x) || al_read_file(b, &y)      ? 2
             : x.len == y.len && !memcmp(x.data, y.data, x.len) ? 0
                                                                : 1;
    printf("%s: %s\n", b, rc == 0 ? "identical" : rc == 1 ? "DIFFERS" : "unreadable");
    al_buf_free(&x), al_buf_free(&y);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "same"))
        return compare_bytes(argv[2], argv[3]);
    if (argc != 5) {
        fprintf(stderr, "usage: dist_compare weights|metrics A B TOL, or dist_compare same A B\n");
        return 2;
    }
    double tol = atof(argv[4]);
    if (!strcmp(argv[1], "weights"))
        return compare_weights(argv[2], argv[3], tol);
    if (!strcmp(argv[1], "metrics"))
        return compare_metrics(argv[2], argv[3], tol);
    fprintf(stderr, "dist_compare: unknown comparison '%s'\n", argv[1]);
    return 2;
}
