#include "tower_balance.h"

#include <math.h>

void tower_rebalance(const int w[NUM_TOWERS], const double end[NUM_TOWERS], int out[NUM_TOWERS])
{
    double mean = 0, next[NUM_TOWERS], top = 0;
    for (int k = 0; k < NUM_TOWERS; k++) mean += end[k] / NUM_TOWERS;
    for (int k = 0; k < NUM_TOWERS; k++) {
        next[k] = w[k] * sqrt(end[k] / mean);
        top = fmax(top, next[k]);
    }
    for (int k = 0; k < NUM_TOWERS; k++) {
        const long v = lround(next[k] / top * TOWER_WEIGHT_MAX);
        out[k] = v < 1 ? 1 : (int)v;
    }
}

double tower_spread(const double end[NUM_TOWERS])
{
    double lo = end[0], hi = end[0];
    for (int k = 1; k < NUM_TOWERS; k++) {
        lo = fmin(lo, end[k]);
        hi = fmax(hi, end[k]);
    }
    return hi / lo - 1;
}
