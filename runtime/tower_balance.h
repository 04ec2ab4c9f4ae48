/* Balancing the towers' shares of the fused kernel's grid. The kernel deals its CTAs to the
 * towers in proportion to each tower's unit costs weighed per mille (gpu_tower_weights); the
 * step ends with the last tower, so a tower that ends early held CTAs the last one lacked.
 * `stepfuse tune` measures the towers' ends (the per-stage trace) and moves weight by this. */
#ifndef STEPFUSE_TOWER_BALANCE_H
#define STEPFUSE_TOWER_BALANCE_H

#include "spec.h" /* NUM_TOWERS */

enum { TOWER_WEIGHT_MAX = 1000 };

/* The next weights from weights w under which tower k ended at end[k] (any unit, > 0):
 * w[k] * sqrt(end[k] / mean end), scaled so that the largest is TOWER_WEIGHT_MAX (each at
 * least 1). A tower's time goes about as its work over its CTAs, so end[k] * w[k] is what
 * it needs and weights in proportion to it balance the ends; the square root takes half that
 * step, because a tower's time follows its CTAs only in part where the towers share the
 * memory's bandwidth. Balanced ends give w back (scaled). */
void tower_rebalance(const int w[NUM_TOWERS], const double end[NUM_TOWERS], int out[NUM_TOWERS]);

/* The largest end over the smallest, minus one: 0 when the towers end together. */
double tower_spread(const double end[NUM_TOWERS]);

#endif
