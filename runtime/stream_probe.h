/* The weight-stream probe: how fast the fused kernel's access pattern for weights can read
 * memory with nothing else to do (templates/probe.cu), with a chunk in registers as the
 * kernel holds it, and with bulk copies into shared memory. A ceiling for the kernel's
 * projections, next to the copy bandwidth that defines the floor. */
#ifndef STEPFUSE_STREAM_PROBE_H
#define STEPFUSE_STREAM_PROBE_H

typedef struct {
    double registers_bps; /* bytes read per second, chunk in registers */
    double bulk_bps;      /* bytes read per second, bulk copies into shared memory */
    double bytes;         /* bytes each probe read */
} stream_probe_t;

/* Compile (or take from the cubin cache) and run both probes over a 2 GiB matrix of rows of
 * 2048 floats, one CTA of 8 warps per SM; median of 5 after a warm-up. */
int gpu_stream_probe(stream_probe_t *p, char *err);

#endif
