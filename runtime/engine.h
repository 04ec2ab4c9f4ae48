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
    const int *tower_weights; /* gpu: NUM_TOWERS per-mille weights of the towers' shares of the
                                 grid at every batch size; NULL = the engine's table */
} engine_options_t;

typedef struct {
    const char *name;
    /* One wave: n <= max_batch requests on distinct slots in range (engine_step splits a
     * batch into such waves). features: [n, F]; out: [n, 4] in tower order xLSTM, Mamba2,
     * RetNet, Hawk. */
    int (*step_wave)(engine_t *e, int n, const int *slots, const float *features, double *out,
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
    unsigned char *in_wave; /* [max_symbols]: slots of the wave being gathered */
};

/* Fill the common part of a backend's engine (slots: o->max_symbols, else the spec's). */
void engine_init(engine_t *e, const engine_ops_t *ops, const spec_t *s,
                 const engine_options_t *o);
/* Free the common part; each backend's destroy calls it. */
void engine_release(engine_t *e);
/* 0, or -1 with a message when slot is outside [0, max_symbols). */
int engine_check_slot(const engine_t *e, int slot, char *err);

engine_t *engine_create(const spec_t *s, const weights_t *w, const engine_options_t *o,
                        char *err);
engine_t *engine_cpu_create(const spec_t *s, const weights_t *w, const engine_options_t *o,
                            char *err);
engine_t *engine_gpu_create(const spec_t *s, const weights_t *w, const engine_options_t *o,
                            char *err);
engine_t *engine_cublas_create(const spec_t *s, const weights_t *w, const engine_options_t *o,
                               char *err);

/* Run a batch: split into waves of distinct slots (order kept, at most max_batch each) so
 * that repeated symbols advance exactly as if fed one at a time. */
int engine_step(engine_t *e, int n, const int *slots, const float *features, double *out,
                char *err);
static inline void engine_destroy(engine_t *e) { if (e) e->ops->destroy(e); }

#endif
