/* An engine runs ensemble steps for a batch of requests, each on one symbol's state slot.
 * Backends: "cpu" (the C reference, fp64 or fp32), "gpu" (the fused kernel) and "cublas"
 * (the unfused GPU step: cuBLAS projections and small kernels, the fused kernel's baseline).
 * A batch may name one slot several times: those requests advance in batch order,
 * exactly as if fed one at a time. */
#ifndef STEPFUSE_ENGINE_H
#define STEPFUSE_ENGINE_H

#include <stddef.h>

#include "spec.h"
#include "weights.h"

typedef struct engine engine_t;

typedef struct {
    const char *backend;   /* "cpu", "gpu" or "cublas" */
    int fp64;              /* cpu backend: compute in float64 (else float32) */
    int max_symbols;       /* state slots; 0 = spec's batch.max_symbols */
} engine_options_t;

typedef struct {
    const char *name;
    /* features: [n, F]; out: [n, 4] in tower order xLSTM, Mamba2, RetNet, Hawk */
    int (*step)(engine_t *e, int n, const int *slots, const float *features, double *out,
                char *err);
    void (*reset_slot)(engine_t *e, int slot); /* back to the initial state */
    size_t (*state_bytes)(const engine_t *e);  /* one slot's state, as saved */
    int (*save_slot)(engine_t *e, int slot, void *buf, char *err);
    int (*load_slot)(engine_t *e, int slot, const void *buf, char *err);
    void (*destroy)(engine_t *e);
    /* GPU backends (NULL elsewhere): median milliseconds of the device work of one step on
     * slots 0..nb-1 with fixed random features, CUDA events around each step after `warmup`
     * untimed ones. Advances those slots' state. */
    int (*time_step)(engine_t *e, int nb, int warmup, int iters, double *median_ms, char *err);
} engine_ops_t;

struct engine {
    const engine_ops_t *ops;
    const spec_t *spec;
    int max_symbols;
    int max_batch;
};

engine_t *engine_create(const spec_t *s, const weights_t *w, const engine_options_t *o,
                        char *err);
engine_t *engine_cpu_create(const spec_t *s, const weights_t *w, const engine_options_t *o,
                            char *err);
engine_t *engine_gpu_create(const spec_t *s, const weights_t *w, const engine_options_t *o,
                            char *err);
engine_t *engine_cublas_create(const spec_t *s, const weights_t *w, const engine_options_t *o,
                               char *err);

static inline int engine_step(engine_t *e, int n, const int *slots, const float *features,
                              double *out, char *err)
{
    return e->ops->step(e, n, slots, features, out, err);
}
static inline void engine_destroy(engine_t *e) { if (e) e->ops->destroy(e); }

#endif
