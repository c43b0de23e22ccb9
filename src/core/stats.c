/* Rates and their uncertainty.  Red-team sets are small (tens of requests per technique)
 * and audits split them by group, where the normal approximation's interval leaves [0, 1] and collapses to
 * a point at 0 or n successes; Wilson's score interval does neither. */
#include <math.h>

#include "align/core.h"

void al_wilson(int successes, int n, double z, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    const double p = (double)successes / n, z2 = z * z;
    const double denom = 1 + z2 / n, center = (p + z2 / (2.0 * n)) / denom;
    const double half = z * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / denom;
    *lo = center - half < 0 ? 0 : center - half;
    *hi = center + half > 1 ? 1 : center + half;
}
