/* Helpers shared by the Criterion tests. */
#ifndef STEPFUSE_TESTUTIL_H
#define STEPFUSE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "spec.h"
#include "stream.h"
#include "weights.h"

/* Path of a file under the shared data folder: $STEPFUSE_SHARED (default ../shared,
 * relative to the repository root where the tests run). Returns a static buffer. */
const char *shared_path(const char *rel);

/* Tests that need a CUDA device skip cleanly without one. */
#define SKIP_WITHOUT_GPU()                                    \
    do {                                                      \
        if (!gpu_available()) cr_skip_test("no CUDA device"); \
    } while (0)

/* A golden case: specs/<case>.yaml, its weights and request stream from the shared data. */
typedef struct {
    spec_t spec;
    weights_t w;
    request_stream_t s;
} golden_t;

void golden_load(const char *case_name, golden_t *g);
/* The same with the spec's matrices stored in `weights` (bf16, fp16: rounded at load). */
void golden_load_as(const char *case_name, precision_t weights, golden_t *g);
void golden_free(golden_t *g);

/* An engine or a failed assertion with the engine's message. */
engine_t *make_engine(const spec_t *s, const weights_t *w, const char *backend, int fp64,
                      int max_symbols);

/* Outputs [n, 4] of the stream in batches of `batch`, NaN-poisoned first (free them). */
double *run_stream(engine_t *e, const request_stream_t *s, int batch);

/* Outputs [n, 4] of the stream from every slot's initial state, cut into batches of 1..24
 * requests drawn from the xorshift state *x (repeated symbols inside batches), poisoned
 * with NaN first (free them). */
double *run_random_batches(engine_t *e, const request_stream_t *s, uint64_t *x);

size_t count_nonfinite(const double *v, size_t n);

/* Outputs [n, 4] against want: logs each tower's rel L2 under `what`, expects every output
 * finite and every tower's rel L2 within tol. */
void expect_towers_within(const double *got, const double *want, size_t n, double tol, const char *what);

/* A whole file, NUL-terminated, its length in *len (caller frees); NULL where it cannot be
 * opened. */
char *read_all(const char *path, size_t *len);

/* Runs a shell command under `timeout`, returns its exit status (-1: killed) and its stdout
 * and stderr in *output (caller frees). */
int run_command(const char *cmd, int timeout_s, char **output);

/* run_command with 20 s: expects exit status `code` and `fragment` in the output. */
void expect_command(const char *cmd, int code, const char *fragment);

#endif
