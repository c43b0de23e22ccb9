/* The comparisons of tests/test_dist_train.sh: a run on N ranks against the same run on
 * one rank.
 *   dist_compare weights DIR_A DIR_B TOL   max |a - b| over the two models' parameters
 *   dist_compare metrics FILE_A FILE_B TOL every number of every line with a loss (step
 *                                          and eval lines), matched by step: losses to TOL,
 *                                          the rest to 100 TOL relative to their size
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

/* Timing and speed figures differ between any two runs; everything else must agree. */
static bool timing(const char *key) { return !strcmp(key, "tokens_per_second"); }

/* The line of lines with the same step and kind (a training step, or an evaluation) as l. */
static json_t *partner(json_t *lines, json_t *l)
{
    const bool eval = json_object_get(l, "eval_loss") != NULL;
    const json_int_t step = json_integer_value(json_object_get(l, "step"));
    size_t i;
    json_t *c;
    json_array_foreach(lines, i, c)
    {
        if ((json_object_get(c, "eval_loss") != NULL) == eval && json_integer_value(json_object_get(c, "step")) == step)
            return c;
    }
    return NULL;
}

/* Losses must agree to tol.  The other figures (gradient norms, sums of log-probs) move
 * with the weights' last bits, which training amplifies step by step: they must agree to
 * 100 tol relative to their size.  Every line of a must have its partner in b; b may have
 * more (a resumed run evaluates where its first part stopped). */
static int compare_metrics(const char *a, const char *b, double tol)
{
    json_t *x = loss_lines(a), *y = loss_lines(b);
    if (!x || !y) {
        fprintf(stderr, "dist_compare: cannot read %s\n", !x ? a : b);
        return 2;
    }
    int rc = json_array_size(x) == 0 ? 1 : 0;
    double worst_loss = 0, worst = 0;
    const char *worst_key = "";
    size_t i;
    json_t *lx;
    json_array_foreach(x, i, lx)
    {
        json_t *ly = partner(y, lx);
        if (!ly) {
            fprintf(stderr, "dist_compare: %s: no line like line %zu of %s\n", b, i + 1, a);
            rc = 1;
            continue;
        }
        const char *key;
        json_t *vx;
        json_object_foreach(lx, key, vx)
        {
            json_t *vy = json_object_get(ly, key);
            if (timing(key) || !json_is_number(vx))
                continue;
            if (!json_is_number(vy)) {
                fprintf(stderr, "dist_compare: line %zu: %s missing in %s\n", i + 1, key, b);
                rc = 1;
                continue;
            }
            const double u = json_number_value(vx), v = json_number_value(vy);
            const bool loss = !strcmp(key, "loss") || !strcmp(key, "eval_loss");
            double d = fabs(u - v) / (loss || fabs(u) < 1 ? 1 : fabs(u));
            if (isnan(u) != isnan(v))
                d = INFINITY;
            if (loss && d > worst_loss)
                worst_loss = d;
            if (!loss && d > worst)
                worst = d, worst_key = key;
        }
    }
    printf("metrics: %zu lines, max |loss diff| %.3g, max relative diff of the rest %.3g (%s)\n",
           json_array_size(x), worst_loss, worst, worst_key);
    json_decref(x);
    json_decref(y);
    return rc ? rc : worst_loss <= tol && worst <= 100 * tol ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: dist_compare weights|metrics A B TOL\n");
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
