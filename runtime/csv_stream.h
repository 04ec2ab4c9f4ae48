/* Recorded request streams of the game (tests/data/tiny.csv, small.csv): columns symbol, delay_ms,
 * feature_00 .. feature_<F-1>, target_00 .. target_03, one request per row in arrival order.
 * Loaded into a request_stream_t (symbols numbered by their digits, slots by first
 * appearance) so stream_run() can feed it to an engine directly. */
#ifndef STEPFUSE_CSV_STREAM_H
#define STEPFUSE_CSV_STREAM_H

#include "protocol.h"
#include "stream.h"

typedef struct {
    request_stream_t req;            /* symbol, slot, num_symbols, features [n, F] */
    char (*names)[PROTO_SYMBOL_MAX]; /* [n] symbol names as recorded */
    double *delay_ms;                /* [n] gap before each request */
    double *targets;                 /* [n, 4] outputs of the production weights */
} csv_stream_t;

/* Errors name file:line (and the column), e.g. "data.csv:7: feature_12: 'x' is not a number". */
int csv_stream_load(const char *path, csv_stream_t *s, char *err);
void csv_stream_free(csv_stream_t *s);

#endif
