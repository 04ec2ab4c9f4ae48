/* The per-stage timing trace of one fused step (engine_gpu.h, gpu_trace_step) and its
 * report: for each stage the slowest and median CTA's own work and the time spent in the
 * grid barrier, and where the step's time goes by phase. */
#ifndef STEPFUSE_STEP_TRACE_H
#define STEPFUSE_STEP_TRACE_H

#include <jansson.h>
#include <stdio.h>

#include "stage_table.h"

/* t[(row * ctas + cta) * 2 + i], %globaltimer nanoseconds (templates/common.cu, trace_at):
 * row 0 = {step start, step start}, row s + 1 = {stage s work done, past the grid barrier}; then
 * t[(stages + 1) * ctas * 2 + s * ctas + cta]: the tower whose phase the CTA ran in stage s
 * (NUM_TOWERS: none); then t[(stages + 1) * ctas * 2 + stages * ctas + cta]: the SM the CTA
 * ran on (%smid). */
typedef struct {
    int stages, ctas;
    unsigned long long *t; /* [step_trace_values(stages, ctas)], malloc'd */
} step_trace_t;

static inline size_t step_trace_values(int stages, int ctas)
{
    return ((size_t)stages + 1) * (size_t)ctas * 2 + ((size_t)stages + 1) * (size_t)ctas;
}

/* The tower value of CTA cta in stage s. */
static inline unsigned long long *step_trace_tower(const step_trace_t *t, int s, int cta)
{
    return t->t + ((size_t)t->stages + 1) * (size_t)t->ctas * 2 + (size_t)s * (size_t)t->ctas + (size_t)cta;
}

/* The SM that CTA cta ran on. */
static inline unsigned long long *step_trace_sm(const step_trace_t *t, int cta)
{
    return step_trace_tower(t, t->stages, cta);
}

/* One stage, microseconds. A CTA's work starts when the previous barrier released it. */
typedef struct {
    double work_max, work_median; /* own work: previous release to done */
    int slowest;                  /* the CTA of work_max */
    double wait_max, wait_median; /* in the barrier: done to released */
    double span;                  /* last release of this stage minus the last of the previous */
    struct {                      /* the CTAs that ran each tower's phase, and their work */
        int ctas;
        double work_max, work_median;
    } tower[NUM_TOWERS];
} stage_time_t;

/* One phase name (phase_name), microseconds. */
typedef struct {
    const char *name;
    int stages;   /* stages that run it */
    double work;  /* sum of their work_max: a stage counts in full for each of its phases */
    double share; /* sum of their span, each split equally among the stage's active phases */
} phase_time_t;

typedef struct {
    int stages, ctas;
    stage_entry_t *table; /* [stages][NUM_TOWERS], a copy */
    stage_time_t *stage;  /* [stages] */
    double work_sum;      /* sum of work_max */
    double wait_max_sum, wait_median_sum, span_sum;
    double start_spread;  /* last CTA start minus the first */
    double step;          /* first start to last release */
    int nphases;
    phase_time_t *phase;  /* by share, largest first */
    double *work;         /* [stages][ctas]: each CTA's own work of each stage */
    int *sm;              /* [ctas]: the SM each CTA ran on */
    /* [ctas]: a CTA's pace, the median over the stages where it ran a phase on at least
     * PACE_MIN_CTAS CTAs of its work over the median work of that phase's CTAs; NAN where
     * it ran none. The same work at another pace on some SMs shows here. */
    double *pace;
} trace_report_t;

enum { PACE_MIN_CTAS = 8 };

void step_trace_free(step_trace_t *t);

/* The report of trace t for the stage table it ran (table: [t->stages][NUM_TOWERS]). Fails
 * when a time is missing (zero), a CTA's times go backwards or a tower is out of range. */
int trace_report_build(const step_trace_t *t, const stage_entry_t *table, trace_report_t *r, char *err);
void trace_report_free(trace_report_t *r);

/* Table of every stage, totals and the phase summary; batch is named in the heading. */
void trace_report_print(FILE *f, const trace_report_t *r, int batch);
json_t *trace_report_json(const trace_report_t *r, int batch);

#endif
