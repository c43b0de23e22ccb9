/* Skipping outlier steps: a loss or gradient norm far above its recent history usually
 * means a bad batch or the start of a divergence; dropping that one update is cheaper
 * than recovering from it. */
#include <math.h>
#include <string.h>

#include "align/train.h"

void al_outlier_init(al_outlier *o, float z)
{
    memset(o, 0, sizeof *o);
    o->z = z;
    o->min_count = 20;
}

static double zscore(const double *v, int n, double x)
{
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++)
        mean += v[i];
    mean /= n;
    for (int i = 0; i < n; i++)
        var += (v[i] - mean) * (v[i] - mean);
    double sd = sqrt(var / (n > 1 ? n - 1 : 1));
    return sd > 0 ? (x - mean) / sd : 0.0;
}

bool al_outlier_check(al_outlier *o, double loss, double grad_norm, char *why, size_t why_len)
{
    if (why_len)
        why[0] = 0;
    if (!isfinite(loss) || !isfinite(grad_norm)) {
        if (why_len)
            snprintf(why, why_len, "non-finite loss or gradient norm");
        return true;
    }
    int n = o->count < AL_OUTLIER_WINDOW ? o->count : AL_OUTLIER_WINDOW;
    if (o->z > 0 && o->count >= o->min_count) {
        double zl = zscore(o->loss, n, loss), zg = zscore(o->norm, n, grad_norm);
        if (zl > o->z || zg > o->z) {
            if (why_len)
                snprintf(why, why_len, zl > o->z ? "loss z-score %.1f > %.1f" : "grad_norm z-score %.1f > %.1f",
                         zl > o->z ? zl : zg, (double)o->z);
            return true;
        }
    }
    o->loss[o->head] = loss;
    o->norm[o->head] = grad_norm;
    o->head = (o->head + 1) % AL_OUTLIER_WINDOW;
    o->count++;
    return false;
}
