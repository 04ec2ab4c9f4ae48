/* The replay's report: requests sent/answered/dropped, per-request latency (send to
 * answer), throughput, and accuracy of the answers against a reference run of the same
 * weights. Printed as a table and written as JSON. */
#ifndef STEPFUSE_REPLAY_REPORT_H
#define STEPFUSE_REPLAY_REPORT_H

#include <stdio.h>

#include "compare.h"
#include "replay.h"

typedef struct {
    /* what ran (for the reader; any may be NULL) */
    const char *data, *spec, *backend, *reference;
    double speed;
    int requests, sent, answered, dropped;
    long responses;
    double p50_ms, p90_ms, p99_ms, max_ms, mean_ms;
    double duration_s, throughput; /* answered requests per second */
    int compared;                  /* answered requests with a reference output */
    compare_t accuracy;            /* answers vs the reference, per tower */
} replay_report_t;

/* reference: [reference_n, 4] outputs for the stream's first reference_n requests, or NULL. */
void replay_report_make(const replay_result_t *r, const double *reference, int reference_n,
                        replay_report_t *rep);
void replay_report_print(FILE *f, const replay_report_t *rep);
int replay_report_write_json(const char *path, const replay_report_t *rep, char *err);

#endif
