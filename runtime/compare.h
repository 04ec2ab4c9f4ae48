/* Accuracy of engine outputs [n, 4] against reference outputs [n, 4], per tower. */
#ifndef STEPFUSE_COMPARE_H
#define STEPFUSE_COMPARE_H

#include <stddef.h>
#include <stdio.h>

#include "spec.h"

typedef struct {
    double rel_l2[NUM_TOWERS];  /* ||out - ref|| / ||ref|| over one tower's column */
    double max_abs[NUM_TOWERS]; /* max |out - ref| */
    double rel_l2_all, max_abs_all;
    size_t nonfinite; /* outputs that are NaN or infinite (they fail any tolerance) */
} compare_t;

extern const char *const tower_names[NUM_TOWERS];

void compare_outputs(const double *out, const double *ref, size_t n, compare_t *c);

/* The worst of the per-tower and overall relative L2 errors; infinity if any output is
 * not finite. */
double compare_worst(const compare_t *c);

/* A small table: one row per tower and one for all. */
void compare_print(FILE *f, const compare_t *c);

#endif
