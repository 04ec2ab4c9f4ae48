#include "compare.h"

#include <math.h>

const char *const tower_names[NUM_TOWERS] = {"xLSTM", "Mamba2", "RetNet", "Hawk"};

void compare_outputs(const double *out, const double *ref, size_t n, compare_t *c)
{
    double num[NUM_TOWERS] = {0}, den[NUM_TOWERS] = {0}, num_all = 0, den_all = 0;
    *c = (compare_t){0};
    for (size_t r = 0; r < n; r++)
        for (int k = 0; k < NUM_TOWERS; k++) {
            const double o = out[4 * r + k], e = ref[4 * r + k], d = fabs(o - e);
            if (!isfinite(o)) c->nonfinite++;
            num[k] += d * d;
            den[k] += e * e;
            if (d > c->max_abs[k] || isnan(d)) c->max_abs[k] = d;
        }
    for (int k = 0; k < NUM_TOWERS; k++) {
        c->rel_l2[k] = den[k] > 0 ? sqrt(num[k] / den[k]) : sqrt(num[k]);
        num_all += num[k];
        den_all += den[k];
        if (c->max_abs[k] > c->max_abs_all || isnan(c->max_abs[k])) c->max_abs_all = c->max_abs[k];
    }
    c->rel_l2_all = den_all > 0 ? sqrt(num_all / den_all) : sqrt(num_all);
}

double compare_worst(const compare_t *c)
{
    if (c->nonfinite) return INFINITY;
    double w = c->rel_l2_all;
    for (int k = 0; k < NUM_TOWERS; k++)
        if (c->rel_l2[k] > w || isnan(c->rel_l2[k])) w = c->rel_l2[k];
    return w;
}

void compare_print(FILE *f, const compare_t *c)
{
    fprintf(f, "  %-8s %12s %12s\n", "tower", "rel L2", "max abs");
    for (int k = 0; k < NUM_TOWERS; k++)
        fprintf(f, "  %-8s %12.3e %12.3e\n", tower_names[k], c->rel_l2[k], c->max_abs[k]);
    fprintf(f, "  %-8s %12.3e %12.3e\n", "all", c->rel_l2_all, c->max_abs_all);
    if (c->nonfinite) fprintf(f, "  %zu outputs are not finite\n", c->nonfinite);
}
