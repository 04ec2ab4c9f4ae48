/* tower_rebalance (runtime/tower_balance.c) on a made-up machine: a grid dealt to the towers
 * in proportion to weight times cost, each tower's time its work over its CTAs plus a fixed
 * part. The rounds must bring the towers' ends together from a split far off. */
#include <criterion/criterion.h>
#include <math.h>

#include "tower_balance.h"

enum { GRID = 132 };

/* The towers' ends under weights w: CTAs in proportion to w[k] * cost[k] (at least one). */
static void model_ends(const int w[NUM_TOWERS], double end[NUM_TOWERS])
{
    static const double cost[NUM_TOWERS] = {5, 3, 3, 2}, work[NUM_TOWERS] = {6000, 2500, 3000, 1600},
                        fixed[NUM_TOWERS] = {40, 20, 30, 20};
    double sum = 0;
    for (int k = 0; k < NUM_TOWERS; k++) sum += w[k] * cost[k];
    for (int k = 0; k < NUM_TOWERS; k++) {
        const double ctas = fmax(1, floor(GRID * w[k] * cost[k] / sum));
        end[k] = work[k] / ctas + fixed[k];
    }
}

Test(tower_balance, rounds_bring_the_ends_together)
{
    int w[NUM_TOWERS] = {1000, 1000, 1000, 1000};
    double end[NUM_TOWERS];
    model_ends(w, end);
    const double first = tower_spread(end);
    cr_assert_gt(first, 0.3, "the made-up split starts far off: spread %.3f", first);
    for (int round = 0; round < 8; round++) {
        int next[NUM_TOWERS];
        tower_rebalance(w, end, next);
        for (int k = 0; k < NUM_TOWERS; k++) {
            cr_assert(next[k] >= 1 && next[k] <= TOWER_WEIGHT_MAX, "round %d tower %d: weight %d", round, k, next[k]);
            w[k] = next[k];
        }
        model_ends(w, end);
    }
    /* whole CTAs: one CTA more or less moves a tower of ~20 CTAs by ~5% */
    cr_expect_lt(tower_spread(end), 0.08, "spread %.3f after 8 rounds (from %.3f); weights %d %d %d %d",
                 tower_spread(end), first, w[0], w[1], w[2], w[3]);
}

Test(tower_balance, balanced_ends_keep_the_weights)
{
    const int w[NUM_TOWERS] = {500, 400, 410, 380};
    const double end[NUM_TOWERS] = {7.5, 7.5, 7.5, 7.5};
    int out[NUM_TOWERS];
    tower_rebalance(w, end, out);
    const int want[NUM_TOWERS] = {1000, 800, 820, 760}; /* scaled to a largest of 1000 */
    for (int k = 0; k < NUM_TOWERS; k++) cr_expect_eq(out[k], want[k], "tower %d: %d", k, out[k]);
}

Test(tower_balance, a_late_tower_gains_and_an_early_one_loses)
{
    const int w[NUM_TOWERS] = {1000, 800, 800, 800};
    const double end[NUM_TOWERS] = {10, 10, 8.1, 12.1}; /* mean 10.05 */
    int out[NUM_TOWERS];
    tower_rebalance(w, end, out);
    /* 1000 sqrt(10 / 10.05), 800 sqrt(10 / 10.05), 800 sqrt(8.1 / 10.05), 800 sqrt(12.1 / 10.05) =
     * 997.5, 798.0, 718.2, 877.8, scaled by 1000 / 997.5 */
    const int want[NUM_TOWERS] = {1000, 800, 720, 880};
    for (int k = 0; k < NUM_TOWERS; k++) cr_expect_eq(out[k], want[k], "tower %d: %d", k, out[k]);
    cr_expect_eq(tower_spread(end), 12.1 / 8.1 - 1);
}
