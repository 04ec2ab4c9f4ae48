/* The unfused GPU engine ("cublas" backend) beyond engine.h: timing of its device step for
 * the bench command. Device presence: gpu_available() in engine_gpu.h. */
#ifndef STEPFUSE_ENGINE_CUBLAS_H
#define STEPFUSE_ENGINE_CUBLAS_H

#include "engine.h"

/* Median time in milliseconds of `iters` unfused steps on the device (CUDA events around
 * the enqueued step: every cuBLAS call and kernel of one batch, no host copies or
 * synchronisation inside), after `warmup` untimed ones, on slots 0..nb-1 with fixed random
 * features. graph = 1: the step is captured once as a CUDA graph and replayed, which
 * removes the host's launch overhead (~1,500 launches per full-size step) from the time.
 * Advances the state of those slots. */
int engine_cublas_time_step(engine_t *e, int nb, int warmup, int iters, int graph,
                            double *median_ms, char *err);

#endif
