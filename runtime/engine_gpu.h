/* GPU engine extras beyond engine.h: whether a device is present, and timing of the
 * fused step for the bench command and notes. */
#ifndef STEPFUSE_ENGINE_GPU_H
#define STEPFUSE_ENGINE_GPU_H

#include "engine.h"

/* 1 when a CUDA device can be used, else 0 (no driver, no device). */
int gpu_available(void);

/* Launch shape and resources of a gpu engine's kernel, one line. */
void engine_gpu_describe(const engine_t *e, char *out, size_t size);

/* Median time in milliseconds of `iters` fused steps (CUDA events around each launch,
 * after `warmup` untimed ones) on slots 0..nb-1 with fixed random features. Advances
 * the state of those slots. */
int engine_gpu_time_step(engine_t *e, int nb, int warmup, int iters, double *median_ms,
                         char *err);

/* Device-to-device copy bandwidth in bytes/s, counting bytes read plus written (median of
 * 5 copies of 1 GiB): the memory floor of a step is its bytes over this. */
int gpu_copy_bandwidth(double *bytes_per_s, char *err);

#endif
