/* A request stream in the golden format (io.safetensors): symbol int32 [N],
 * features f32 [N, F], and optionally expected f64 [N, 4]. */
#ifndef STEPFUSE_STREAM_H
#define STEPFUSE_STREAM_H

#include <stdint.h>

#include "engine.h"

typedef struct {
    int n, num_features;
    int32_t *symbol;  /* [n] as in the file */
    int *slot;        /* [n] state slot: symbols numbered by first appearance */
    int num_symbols;  /* distinct symbols = slots used */
    float *features;  /* [n, F] */
    double *expected; /* [n, 4] or NULL */
} request_stream_t;

int stream_load(const char *path, int num_features, request_stream_t *s, char *err);
void stream_free(request_stream_t *s);

/* Feed the stream through e in consecutive batches of at most `batch` requests;
 * out: [n, 4]. */
int stream_run(engine_t *e, const request_stream_t *s, int batch, double *out, char *err);

#endif
