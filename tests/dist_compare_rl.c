/* The comparisons of tests/test_dist_rl.sh: an online RL run on N ranks against the same
 * run on one rank.
 *   dist_compare_rl weights DIR_A DIR_B TOL   max |a - b| over the two models' parameters
 *   dist_compare_rl metrics FILE_A FILE_B TOL "loss" and "reward" of every step to TOL; every
 *                                             other number (timings, speeds and dist/ figures
 *                                             aside) to 100 TOL relative: sums such as the KL
 *                                             per sequence or the gradient norm carry the
 *                                             weights' own last-bit differences
 *   dist_compare_rl same FILE_A FILE_B        the two files byte for byte (dumps)
 * Prints the largest difference; exits 0 when it is at most TOL, 1 when larger (or the
 * runs do not line up), 2 on a usage or read error. */
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
        fprintf(stderr, "dist_compare_rl: %s\n", al_errmsg());
        return 2;
    }
    int rc = x.n_params == y.n_params ? 0 : 1;
    double worst = 0;
    size_t differ = 0;
    for (size_t i = 0; rc == 0 && i < x.n_params; i++) {
        double d = fabs((double)x.params[i] - (double)y.params[i]);
        differ += d != 0;
        worst = d > worst || isnan(d) ? d : worst;
    }
    printf("weights: %zu parameters, %zu differ, max |diff| %.3g\n", x.n_params, differ, worst);
    al_model_free(&x);
    al_model_free(&y);
    return rc ? rc : worst <= tol ? 0 : 1;
}

static json_t *lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    json_t *all = json_array();
    char line[65536];
    while (fgets(line, sizeof line, f))
        json_array_append_new(all, json_loads(line, 0, NULL));
    fclose(f);
    return all;
}

/* Figures two correct runs do not share: how long things took and what N ranks sent. */
static bool skipped(const char *key)
{
    return !strncmp(key, "time/", 5) || !strncmp(key, "dist/", 5) || strstr(key, "per_s");
}

static int compare_metrics(const char *a, const char *b, double tol)
{
    json_t *x = lines(a), *y = lines(b);
    if (!x || !y) {
        fprintf(stderr, "dist_compare_rl: cannot read %s\n", !x ? a : b);
        return 2;
    }
    int rc = json_array_size(x) == json_array_size(y) && json_array_size(x) > 0 ? 0 : 1;
    if (rc)
        fprintf(stderr, "dist_compare_rl: %zu lines against %zu\n", json_array_size(x), json_array_size(y));
    double worst = 0, worst_loss = 0, worst_reward = 0; /* worst: relative, of the other figures */
    const char *worst_key = "";
    for (size_t i = 0; rc == 0 && i < json_array_size(x); i++) {
        json_t *lx = json_array_get(x, i), *ly = json_array_get(y, i), *vx;
        const char *key;
        json_object_foreach(lx, key, vx)
        {
            if (skipped(key) || !json_is_number(vx))
                continue;
            json_t *vy = json_object_get(ly, key);
            if (!json_is_number(vy)) {
                fprintf(stderr, "dist_compare_rl: line %zu: %s missing in %s\n", i + 1, key, b);
                rc = 1;
                continue;
            }
            double d = fabs(json_number_value(vx) - json_number_value(vy));
            d = isnan(d) ? INFINITY : d;
            if (!strcmp(key, "loss"))
                worst_loss = d > worst_loss ? d : worst_loss;
            else if (!strcmp(key, "reward"))
                worst_reward = d > worst_reward ? d : worst_reward;
            else {
                double scale = fmax(1.0, fmax(fabs(json_number_value(vx)), fabs(json_number_value(vy))));
                if (d / scale > worst)
                    worst = d / scale, worst_key = key;
            }
        }
    }
    printf("metrics: %zu steps, max |loss diff| %.3g, max |reward diff| %.3g, other figures max rel. diff %.3g (%s)\n",
           json_array_size(x), worst_loss, worst_reward, worst, worst_key);
    json_decref(x);
    json_decref(y);
    return rc ? rc : worst_loss <= tol && worst_reward <= tol && worst <= 100 * tol ? 0 : 1;
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
        fprintf(stderr, "usage: dist_compare_rl weights|metrics A B TOL, or same A B\n");
        return 2;
    }
    double tol = atof(argv[4]);
    if (!strcmp(argv[1], "weights"))
        return compare_weights(argv[2], argv[3], tol);
    if (!strcmp(argv[1], "metrics"))
        return compare_metrics(argv[2], argv[3], tol);
    fprintf(stderr, "dist_compare_rl: unknown comparison '%s'\n", argv[1]);
    return 2;
}
