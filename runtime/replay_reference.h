/* The replay's accuracy reference: the stream's first requests run through the C
 * reference engine (cpu backend) with the same weights, fed in arrival order. */
#ifndef STEPFUSE_REPLAY_REFERENCE_H
#define STEPFUSE_REPLAY_REFERENCE_H

#include "csv_stream.h"
#include "spec.h"
#include "weights.h"

/* out: [limit, 4]; limit <= the stream's length. fp64: compute in float64 (the oracle). */
int replay_reference(const spec_t *spec, const weights_t *w, const csv_stream_t *s, int limit,
                     int fp64, double *out, char *err);

#endif
