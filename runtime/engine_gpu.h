/* GPU extras beyond engine.h: whether a device is present, the fused kernel's launch
 * shape, and the device's copy bandwidth (the memory floor of a step). */
#ifndef STEPFUSE_ENGINE_GPU_H
#define STEPFUSE_ENGINE_GPU_H

#include <cuda_runtime_api.h>

#include "engine.h"
#include "step_trace.h"

/* 1 when a CUDA device can be used, else 0 (no driver, no device). */
int gpu_available(void);

/* Copy in `stream`'s order and wait for it. A plain cudaMemcpy runs on the legacy default
 * stream, which does not order with the engines' non-blocking streams: a state reset could
 * land after the next step's kernels read the slot. */
int gpu_copy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
             cudaStream_t stream, const char *what, char *err);

/* A state arena of `slots` slots of `bytes` each, every slot set to the host image img, which
 * is also copied to d_img (one slot on the device) for gpu_slot_reset. Waits for the copies. */
int gpu_state_init(float *d_state, int slots, float *d_img, const float *img, size_t bytes, cudaStream_t stream,
                   char *err);

/* A slot set back to the device image d_img in `stream`'s order, without waiting: the next
 * step in that stream reads it reset. (From the host it would move the whole slot over PCIe,
 * synchronously, in the request path of every new symbol.) */
int gpu_slot_reset(float *d_slot, const float *d_img, size_t bytes, cudaStream_t stream, char *err);

/* The per-mille weights of the towers' shares of the kernel's grid at batch size nb (xLSTM,
 * Mamba2, RetNet, Hawk) with weights and state of the given precisions: the engine's table,
 * measured at a few batch sizes (stepfuse tune), interpolated. */
void gpu_tower_weights(int nb, precision_t weights, precision_t state, int w[NUM_TOWERS]);

/* The towers' weights of gpu engine e's later steps at every batch size (NULL: its table,
 * gpu_tower_weights), as engine_options_t.tower_weights at its creation. */
int gpu_set_tower_weights(engine_t *e, const int w[NUM_TOWERS], char *err);

/* Launch shape and resources of a gpu engine's kernel, one line. */
void engine_gpu_describe(const engine_t *e, char *out, size_t size);

/* Device-to-device copy bandwidth in bytes/s, counting bytes read plus written (median of
 * 5 copies of 1 GiB): the memory floor of a step is its bytes over this. */
int gpu_copy_bandwidth(double *bytes_per_s, char *err);

/* Seconds to generate and JIT-load the spec's kernel with an empty cubin cache (NVRTC
 * compiles) and again with the cubin cached; uses a temporary cache folder. */
int gpu_jit_time(const spec_t *s, double *cold_s, double *cached_s, char *err);

/* The inputs of the timed and traced steps of a batch of nb: slots 0..nb-1, features
 * [nb][num_features] uniform in [-1, 1), fixed per entry. */
void gpu_bench_inputs(int nb, int num_features, int *slots, float *features);

/* One step of gpu engine e on the bench inputs of a batch of nb with the kernel's per-stage
 * trace on (advances slots 0..nb-1 like the timed step); out: [nb][4] or NULL. *tr gets the
 * trace (free with step_trace_free). */
int gpu_trace_step(engine_t *e, int nb, double *out, step_trace_t *tr, char *err);

/* gpu_trace_step and the report of its trace (free with trace_report_free). */
int gpu_trace_report(engine_t *e, int nb, trace_report_t *r, char *err);

#endif
