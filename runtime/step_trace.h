/* The per-stage timing trace of one fused step (engine_gpu.h, gpu_trace_step) and its
 * report: for each tower and each stage it runs a phase in, the slowest and median CTA's own
 * work and the time spent in the tower's barrier, and where the tower's time goes by phase. */
#ifndef STEPFUSE_STEP_TRACE_H
#define STEPFUSE_STEP_TRACE_H

#include <jansson.h>
#include <stdio.h>

#include "stage_table.h"

/* t[(row * ctas + cta) * 2 + i], %globaltimer nanoseconds (templates/common.cu, trace_at):
 * row 0 = {step start, step start}, row s + 1 = {stage s work done, past the tower's barrier}
 * (a stage where the CTA's tower has no phase: twice the time it passed the barrier before);
 * then t[(stages + 1) * ctas * 2 + s * ctas + cta]: the tower whose phase the CTA ran in stage
 * s (NUM_TOWERS: none); then the same block's row `stages`: the SM the CTA ran on (%smid), and
 * row `stages + 1`: the CTA's tower, whose barrier it takes part in all step (templates/kernel.cu,
 * tower_group). */
typedef struct {
    int stages, ctas;
    unsigned long long *t; /* [step_trace_values(stages, ctas)], malloc'd */
} step_trace_t;

static inline size_t step_trace_values(int stages, int ctas)
{
    return ((size_t)stages + 1) * (size_t)ctas * 2 + ((size_t)stages + 2) * (size_t)ctas;
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

/* The tower whose CTAs CTA cta was one of. */
static inline unsigned long long *step_trace_group(const step_trace_t *t, int cta)
{
    return step_trace_tower(t, t->stages + 1, cta);
}

/* One tower's phase in one stage, microseconds. A CTA's work starts when its tower's
 * previous barrier released it. */
typedef struct {
    int ctas;                     /* the tower's CTAs that ran the phase (had units of it) */
    double work_max, work_median; /* their own work: previous release to done */
    int slowest;                  /* the CTA of work_max, -1: none */
    double wait_max, wait_median; /* the tower's CTAs, done to released by its barrier */
    double span;                  /* the tower's last release minus its last one before */
} phase_run_t;

typedef struct {
    phase_run_t tower[NUM_TOWERS]; /* ctas of a tower idle in the stage: 0, and its span 0 */
} stage_time_t;

/* One tower over the step, microseconds from the first start of any CTA. */
typedef struct {
    int ctas;                              /* the tower's CTAs */
    double start;                          /* its last CTA's start */
    double done;                           /* its last release of its last stage */
    double work_sum;                       /* sum of work_max over its stages */
    double wait_max_sum, wait_median_sum;
} tower_time_t;

/* One phase name (phase_name) of one tower, microseconds. */
typedef struct {
    int tower;
    const char *name;
    int stages;  /* stages that run it */
    double work; /* sum of their work_max */
    double span; /* sum of their spans: the phase's part of the tower's time */
} phase_time_t;

typedef struct {
    int stages, ctas;
    stage_entry_t *table; /* [stages][NUM_TOWERS], a copy */
    stage_time_t *stage;  /* [stages] */
    tower_time_t tower[NUM_TOWERS];
    double start_spread;  /* last CTA start minus the first */
    double step;          /* first start to the last tower's done */
    int nphases;
    phase_time_t *phase;  /* by tower, then by span, largest first */
    double *work;         /* [stages][ctas]: each CTA's own work of each stage (0 where idle) */
    int *sm;              /* [ctas]: the SM each CTA ran on */
    int *group;           /* [ctas]: the tower each CTA worked for */
    /* [ctas]: a CTA's pace, the median over the stages where it ran a phase on at least
     * PACE_MIN_CTAS CTAs of its work over the median work of that phase's CTAs; NAN where
     * it ran none. The same work at another pace on some SMs shows here. */
    double *pace;
} trace_report_t;

enum { PACE_MIN_CTAS = 8 };

void step_trace_free(step_trace_t *t);

/* The report of trace t for the stage table it ran (table: [t->stages][NUM_TOWERS]). Fails
 * when a time is missing (zero), a CTA's times go backwards, a tower is out of range or a CTA
 * ran another tower's phase than its own. */
int trace_report_build(const step_trace_t *t, const stage_entry_t *table, trace_report_t *r, char *err);
void trace_report_free(trace_report_t *r);

/* Per tower: the table of its stages, totals and its phase summary; then the paces. batch is
 * named in the heading. */
void trace_report_print(FILE *f, const trace_report_t *r, int batch);
json_t *trace_report_json(const trace_report_t *r, int batch);

#endif
