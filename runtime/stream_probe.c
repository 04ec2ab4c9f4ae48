/* The weight-stream probe (see stream_probe.h). */
#include "stream_probe.h"

#include <cuda_runtime_api.h>

#include "jit.h"
#include "templates.h"
#include "util.h"

#define PROBE_LD 2048         /* floats a row: the full-size projections' H */
#define PROBE_ROWS (1 << 18)  /* 2 GiB */
#define PROBE_BULK_SMEM (8 * 3 * 4 * 512 * 4) /* PROBE_BULK_SMEM of templates/probe.cu */

/* Median seconds of 5 launches of kernel k (after one untimed) over the matrix w. */
static cudaError_t time_probe(const jit_kernel_t *k, int grid, const float *w, float *out, double *s)
{
    int rows = PROBE_ROWS, ld = PROBE_LD;
    void *args[] = {&w, &rows, &ld, &out};
    cudaLaunchConfig_t cfg = {.gridDim = {(unsigned)grid, 1, 1},
                              .blockDim = {(unsigned)k->threads, 1, 1},
                              .dynamicSmemBytes = (size_t)k->dynamic_smem};
    cudaEvent_t ev[2] = {0};
    double ms[5];
    cudaError_t c = cudaEventCreate(&ev[0]);
    if (c == cudaSuccess) c = cudaEventCreate(&ev[1]);
    for (int i = -1; i < 5 && c == cudaSuccess; i++) {
        float t = 0;
        c = cudaEventRecord(ev[0], 0);
        if (c == cudaSuccess) c = cudaLaunchKernelExC(&cfg, (const void *)k->kernel, args);
        if (c == cudaSuccess) c = cudaEventRecord(ev[1], 0);
        if (c == cudaSuccess) c = cudaEventSynchronize(ev[1]);
        if (c == cudaSuccess) c = cudaEventElapsedTime(&t, ev[0], ev[1]);
        if (i >= 0) ms[i] = t;
    }
    if (c == cudaSuccess) *s = median(ms, 5) * 1e-3;
    if (ev[0]) cudaEventDestroy(ev[0]);
    if (ev[1]) cudaEventDestroy(ev[1]);
    return c;
}

int gpu_stream_probe(stream_probe_t *p, char *err)
{
    const char *src = template_text("probe.cu");
    if (!src) return seterr(err, "templates/probe.cu is not embedded in this build");
    const size_t bytes = (size_t)PROBE_ROWS * PROBE_LD * sizeof(float);
    jit_kernel_t reg = {0}, bulk = {0};
    float *w = NULL, *out = NULL;
    int sms = 0;
    int rc = jit_load(src, "probe.cu", "probe_registers", 256, 0, &reg, err);
    if (!rc) rc = jit_load(src, "probe.cu", "probe_bulk", 256, PROBE_BULK_SMEM, &bulk, err);
    if (!rc) {
        cudaError_t c = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
        if (c == cudaSuccess) c = cudaMalloc((void **)&w, bytes);
        if (c == cudaSuccess) c = cudaMalloc((void **)&out, sizeof(float));
        if (c == cudaSuccess) c = cudaMemset(w, 0x3c, bytes); /* every float about 0.012: sums stay positive */
        double t_reg = 0, t_bulk = 0;
        if (c == cudaSuccess) c = time_probe(&reg, sms, w, out, &t_reg);
        if (c == cudaSuccess) c = time_probe(&bulk, sms, w, out, &t_bulk);
        if (c != cudaSuccess) rc = seterr(err, "gpu: weight-stream probe: %s", cudaGetErrorString(c));
        else {
            p->bytes = (double)bytes;
            p->registers_bps = (double)bytes / t_reg;
            p->bulk_bps = (double)bytes / t_bulk;
        }
    }
    cudaFree(w);
    cudaFree(out);
    if (reg.lib) jit_unload(&reg);
    if (bulk.lib) jit_unload(&bulk);
    return rc;
}
