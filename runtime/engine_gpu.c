/* The gpu engine: the generated fused kernel, JIT-compiled for the current device, with
 * the weights in one device buffer and every symbol's state in a device arena, one slot
 * per symbol. A batch is split host-side into waves of distinct slots (order kept), one
 * launch per wave, so repeated symbols advance exactly as if fed one at a time. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

#include "emit.h"
#include "engine_gpu.h"
#include "jit.h"
#include "layout.h"
#include "model.h"
#include "stage_table.h"
#include "util.h"

/* The towers' barrier words, 32 unsigneds (a 128-byte line) apart: templates/common.cu,
 * set_barrier, takes the same stride. */
#define BARRIER_WORDS (NUM_TOWERS * 32)

/* Must match struct Params in templates/common.cu. */
typedef struct {
    const void *w;
    float *state;
    float *scr;
    const int *slots;
    const float *feats;
    float *out;
    unsigned *bar;
    int nb;
    int tower_weight[NUM_TOWERS];
    unsigned long long *trace;
} kernel_params_t;

/* The kernel deals its grid to the towers once a launch (tower_group, templates/kernel.cu), in
 * proportion to each tower's unit costs summed over the step, weighed per mille by these: what
 * the costs miss of a whole tower. By weight and state precision, measured at a few batch
 * sizes and interpolated linearly between rows; the last row holds beyond. The rows are
 * `stepfuse tune`'s (H100, notes/gpu.md runs 197-198: from the earlier rows, five rounds moving
 * weight to the towers that end last), taken where they were faster than the row before by
 * more than the timings' spread (1-2% at batch 50 and 64) in tune's alternated timings and
 * again in benches; the earlier rows, elsewhere, came from traces and sweeps by hand (runs
 * 163-192). Rows in between gained nothing over the interpolation (batch 20, 26 and 40, runs
 * 199-200). At batch 1 and 8 xLSTM's chain of 11 phases a block (the others have 5) and its
 * CTA-per-entry phases make it the slowest for its cost; from 32 the towers share the
 * memory's bandwidth and a tower's time follows its CTAs only in part. A bf16 state halves
 * the mLSTM memory and Mamba2's state, and the other towers want more of the grid, Hawk and
 * RetNet most (batch 8 4% faster with fp32 weights, batch 32 4.5% with bf16). */
typedef struct {
    int nb, w[NUM_TOWERS]; /* xLSTM, Mamba2, RetNet, Hawk */
} tower_weight_row_t;
enum { TOWER_WEIGHT_ROWS = 6 };
/* [weights precision][state precision]: fp32, then 16-bit (fp16 weights take bf16's rows: the
 * same bytes and the same kernel but for the widening of a weight) */
static const tower_weight_row_t TOWER_WEIGHTS[2][2][TOWER_WEIGHT_ROWS] = {
    {
        {{1, {1000, 784, 820, 799}}, {8, {1000, 862, 882, 893}}, {16, {920, 800, 836, 760}},
         {32, {860, 800, 830, 720}}, {50, {860, 780, 820, 750}}, {64, {1000, 785, 838, 762}}},
        {{1, {1000, 830, 820, 800}}, {8, {1000, 886, 913, 932}}, {16, {1000, 949, 953, 933}},
         {32, {860, 800, 830, 720}}, {50, {860, 780, 820, 750}}, {64, {1000, 811, 933, 791}}},
    },
    {
        {{1, {1000, 785, 838, 762}}, {8, {950, 800, 838, 780}}, {16, {920, 816, 838, 747}},
         {32, {860, 850, 838, 680}}, {50, {860, 780, 820, 750}}, {64, {1000, 785, 838, 762}}},
        {{1, {1000, 785, 838, 762}}, {8, {950, 800, 838, 780}}, {16, {1000, 918, 910, 793}},
         {32, {1000, 921, 992, 793}}, {50, {860, 780, 820, 750}}, {64, {1000, 785, 838, 762}}},
    },
};

void gpu_tower_weights(int nb, precision_t weights, precision_t state, int w[NUM_TOWERS])
{
    const tower_weight_row_t *t = TOWER_WEIGHTS[precision_bytes(weights) == 2][state == PRECISION_BF16];
    int i = 0;
    while (i < TOWER_WEIGHT_ROWS - 1 && t[i + 1].nb <= nb) i++;
    for (int k = 0; k < NUM_TOWERS; k++) {
        w[k] = t[i].w[k];
        if (i < TOWER_WEIGHT_ROWS - 1 && nb > t[i].nb)
            w[k] += (t[i + 1].w[k] - w[k]) * (nb - t[i].nb) / (t[i + 1].nb - t[i].nb);
    }
}

typedef struct {
    engine_t base;
    layout_t lay;
    jit_kernel_t k;
    cudaStream_t stream;
    cudaEvent_t ev[2];
    int f4;
    char *d_w; /* the generated weight layout, byte offsets */
    float *d_state, *d_init, *d_scr, *d_feats, *d_out; /* d_init: a slot's initial image */
    int *d_slots;
    unsigned *d_bar;
    float *h_feats, *h_out; /* pinned [max_batch][F4], [max_batch][4] */
    int *h_slots;
    int tower_weights[NUM_TOWERS]; /* all zero: gpu_tower_weights() by batch size */
} gpu_engine_t;

#define CU(call, what)                                                                       \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess) return seterr(err, "gpu: %s: %s", what, cudaGetErrorString(e_)); \
    } while (0)

int gpu_available(void)
{
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

static size_t slot_bytes(const gpu_engine_t *e) { return (size_t)e->lay.slot_floats * sizeof(float); }

/* One cooperative launch of the fused step over the first nb entries of d_slots/d_feats;
 * d_trace: NULL, or [step_trace_values(stages, grid)] for the per-stage trace (step_trace.h). */
static cudaError_t launch_fused(gpu_engine_t *e, int nb, unsigned long long *d_trace)
{
    kernel_params_t p = {e->d_w, e->d_state, e->d_scr, e->d_slots, e->d_feats, e->d_out, e->d_bar, nb, {0}, d_trace};
    if (e->tower_weights[0]) memcpy(p.tower_weight, e->tower_weights, sizeof p.tower_weight);
    else gpu_tower_weights(nb, e->base.spec->precision.weights, e->base.spec->precision.state, p.tower_weight);
    void *args[] = {&p};
    cudaLaunchAttribute attr = {.id = cudaLaunchAttributeCooperative, .val.cooperative = 1};
    cudaLaunchConfig_t cfg = {.gridDim = {(unsigned)e->k.grid, 1, 1},
                              .blockDim = {(unsigned)e->k.threads, 1, 1},
                              .dynamicSmemBytes = (size_t)e->k.dynamic_smem,
                              .stream = e->stream,
                              .attrs = &attr,
                              .numAttrs = 1};
    return cudaLaunchKernelExC(&cfg, (const void *)e->k.kernel, args);
}

/* Slots [nb] and features [nb][F] to the device, in the engine stream's order. */
static int upload_inputs(gpu_engine_t *e, int nb, const int *slots, const float *features, char *err)
{
    const int F = e->base.spec->num_features;
    for (int r = 0; r < nb; r++) {
        e->h_slots[r] = slots[r];
        memcpy(e->h_feats + (size_t)r * e->f4, features + (size_t)r * F, (size_t)F * sizeof(float));
    }
    CU(cudaMemcpyAsync(e->d_slots, e->h_slots, (size_t)nb * sizeof(int), cudaMemcpyHostToDevice, e->stream),
       "copying slots");
    CU(cudaMemcpyAsync(e->d_feats, e->h_feats, (size_t)nb * e->f4 * sizeof(float), cudaMemcpyHostToDevice,
                       e->stream),
       "copying features");
    return 0;
}

/* One launch over the nb uploaded requests (distinct slots); out: [nb][4]; d_trace as for
 * launch_fused. */
static int wave(gpu_engine_t *e, int nb, double *out, unsigned long long *d_trace, char *err)
{
    /* poison: every output must be written by the kernel */
    CU(cudaMemsetAsync(e->d_out, 0xff, (size_t)nb * 4 * sizeof(float), e->stream), "poisoning outputs");
    CU(launch_fused(e, nb, d_trace), "launching the fused step");
    CU(cudaMemcpyAsync(e->h_out, e->d_out, (size_t)nb * 4 * sizeof(float), cudaMemcpyDeviceToHost, e->stream),
       "copying outputs");
    CU(cudaStreamSynchronize(e->stream), "fused step");
    for (int r = 0; r < nb * 4; r++) {
        uint32_t bits;
        memcpy(&bits, &e->h_out[r], sizeof bits);
        if (bits == 0xffffffffu)
            return seterr(err, "gpu: the kernel left output %d (tower %d) of a batch of %d unwritten", r / 4,
                          r % 4, nb);
        out[r] = (double)e->h_out[r];
    }
    return 0;
}

/* engine_ops_t.step_wave */
static int gpu_wave(engine_t *base, int nb, const int *slots, const float *features, double *out,
                    char *err)
{
    gpu_engine_t *e = (gpu_engine_t *)base;
    if (upload_inputs(e, nb, slots, features, err)) return -1;
    return wave(e, nb, out, NULL, err);
}

int gpu_copy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
             cudaStream_t stream, const char *what, char *err)
{
    CU(cudaMemcpyAsync(dst, src, bytes, kind, stream), what);
    CU(cudaStreamSynchronize(stream), what);
    return 0;
}

int gpu_state_init(float *d_state, int slots, float *d_img, const float *img, size_t bytes, cudaStream_t stream,
                   char *err)
{
    CU(cudaMemcpyAsync(d_img, img, bytes, cudaMemcpyHostToDevice, stream), "initialising state");
    for (int i = 0; i < slots; i++)
        CU(cudaMemcpyAsync((char *)d_state + (size_t)i * bytes, d_img, bytes, cudaMemcpyDeviceToDevice, stream),
           "initialising state");
    CU(cudaStreamSynchronize(stream), "initialising state");
    return 0;
}

int gpu_slot_reset(float *d_slot, const float *d_img, size_t bytes, cudaStream_t stream, char *err)
{
    CU(cudaMemcpyAsync(d_slot, d_img, bytes, cudaMemcpyDeviceToDevice, stream), "resetting a slot");
    return 0;
}

static void gpu_reset_slot(engine_t *base, int slot)
{
    gpu_engine_t *e = (gpu_engine_t *)base;
    char err[ERR_MAX];
    if (slot >= 0 && slot < base->max_symbols &&
        gpu_slot_reset(e->d_state + (size_t)slot * e->lay.slot_floats, e->d_init, slot_bytes(e), e->stream, err))
        fprintf(stderr, "%s\n", err);
}

static size_t gpu_state_bytes(const engine_t *base) { return slot_bytes((const gpu_engine_t *)base); }

/* The slot as held: with a write-back period, the matrices as last stored and the log since
 * (layout_flush_state gives the model's state), so that a snapshot stays a copy between steps. */
static int gpu_save_slot(engine_t *base, int slot, void *buf, char *err)
{
    gpu_engine_t *e = (gpu_engine_t *)base;
    if (engine_check_slot(&e->base, slot, err)) return -1;
    return gpu_copy(buf, e->d_state + (size_t)slot * e->lay.slot_floats, slot_bytes(e),
                    cudaMemcpyDeviceToHost, e->stream, "saving a slot", err);
}

static int gpu_load_slot(engine_t *base, int slot, const void *buf, char *err)
{
    gpu_engine_t *e = (gpu_engine_t *)base;
    if (engine_check_slot(&e->base, slot, err)) return -1;
    return gpu_copy(e->d_state + (size_t)slot * e->lay.slot_floats, buf, slot_bytes(e),
                    cudaMemcpyHostToDevice, e->stream, "loading a slot", err);
}

static void gpu_destroy(engine_t *base)
{
    gpu_engine_t *e = (gpu_engine_t *)base;
    if (!e) return;
    cudaFree(e->d_w);
    cudaFree(e->d_state);
    cudaFree(e->d_init);
    cudaFree(e->d_scr);
    cudaFree(e->d_feats);
    cudaFree(e->d_out);
    cudaFree(e->d_slots);
    cudaFree(e->d_bar);
    cudaFreeHost(e->h_feats);
    cudaFreeHost(e->h_out);
    cudaFreeHost(e->h_slots);
    if (e->ev[0]) cudaEventDestroy(e->ev[0]);
    if (e->ev[1]) cudaEventDestroy(e->ev[1]);
    if (e->stream) cudaStreamDestroy(e->stream);
    jit_unload(&e->k);
    layout_free(&e->lay);
    engine_release(&e->base);
    free(e);
}

static int gpu_time_step(engine_t *base, int nb, int warmup, int iters, double *median_ms,
                         char *err);

static const engine_ops_t gpu_ops = {
    .name = "gpu",
    .step_wave = gpu_wave,
    .reset_slot = gpu_reset_slot,
    .state_bytes = gpu_state_bytes,
    .save_slot = gpu_save_slot,
    .load_slot = gpu_load_slot,
    .destroy = gpu_destroy,
    .time_step = gpu_time_step,
};

/* The weights in the generated layout: each tensor's rows `ld` elements apart (the padding
 * zero), matrices in the spec's precision. bf16, fp16: the loader has rounded the values to
 * that precision already, so their 16 bits are exact. */
static int upload_weights(gpu_engine_t *e, const catalogue_t *cat, const weights_t *w, char *err)
{
    CU(cudaMemset(e->d_w, 0, (size_t)e->lay.weight_bytes), "clearing weights");
    uint16_t (*const bits16)(float) = e->base.spec->precision.weights == PRECISION_FP16 ? fp16_bits : bf16_bits;
    int64_t most = 0; /* elements of the largest 16-bit tensor */
    for (int i = 0; i < cat->count; i++)
        if (e->lay.weight_elem[i] == 2 && cat->t[i].numel > most) most = cat->t[i].numel;
    uint16_t *buf = most ? xmalloc((size_t)most * sizeof *buf) : NULL;
    int rc = 0;
    for (int i = 0; i < cat->count && !rc; i++) {
        const float *src = weights_get(w, cat->t[i].name);
        const size_t elem = (size_t)e->lay.weight_elem[i], row = (size_t)e->lay.weight_row[i] * elem;
        if (elem == 2)
            for (int64_t k = 0; k < cat->t[i].numel; k++) buf[k] = bits16(src[k]);
        const cudaError_t c =
            cudaMemcpy2D(e->d_w + e->lay.weight_offset[i], (size_t)e->lay.weight_ld[i] * elem, elem == 2 ? (const void *)buf : (const void *)src,
                         row, row, (size_t)e->lay.weight_rows[i], cudaMemcpyHostToDevice);
        if (c != cudaSuccess) rc = seterr(err, "gpu: %s: %s", cat->t[i].name, cudaGetErrorString(c));
    }
    free(buf);
    return rc;
}

static int device_alloc(void **p, size_t bytes, const char *what, size_t total_needed, char *err)
{
    cudaError_t rc = cudaMalloc(p, bytes);
    if (rc == cudaSuccess) return 0;
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return seterr(err, "gpu: out of device memory for %s: %zu bytes (%zu in all for weights, state and "
                       "activations; %zu of %zu bytes free): %s",
                  what, bytes, total_needed, free_b, total_b, cudaGetErrorString(rc));
}

/* Generate the spec's kernel (the same source as stepfuse gen writes) and JIT-load it. */
static int load_kernel(const spec_t *s, jit_kernel_t *k, char *err)
{
    char *src = NULL;
    size_t len;
    char file[SPEC_NAME_MAX + 8], yaml[SPEC_NAME_MAX + 8], name[SPEC_NAME_MAX + 16];
    snprintf(file, sizeof file, "%s.cu", s->name);
    snprintf(yaml, sizeof yaml, "%s.yaml", s->name);
    emit_kernel_name(s, name, sizeof name);
    int rc = emit_kernel(s, yaml, &src, &len, err);
    if (!rc)
        rc = jit_load(src, file, name, KERNEL_THREADS, emit_dynamic_smem_floats(s) * (int)sizeof(float), k, err);
    free(src);
    if (!rc && k->grid < NUM_TOWERS) { /* a stage deals at least one CTA to each tower */
        rc = seterr(err, "%s: the device runs only %d CTAs of the kernel at once; it needs %d", file, k->grid,
                    NUM_TOWERS);
        jit_unload(k);
    }
    return rc;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int gpu_jit_time(const spec_t *s, double *cold_s, double *cached_s, char *err)
{
    if (!gpu_available()) return seterr(err, "gpu: no CUDA device available");
    char dir[] = "/tmp/stepfuse-jit-XXXXXX", *old = getenv("STEPFUSE_CACHE");
    char *saved = old ? strdup(old) : NULL;
    if (!mkdtemp(dir)) return seterr(err, "cannot make a temporary cache folder: %s", strerror(errno));
    setenv("STEPFUSE_CACHE", dir, 1);
    jit_kernel_t k;
    double t0 = seconds_now();
    int rc = load_kernel(s, &k, err);
    if (!rc && k.from_cache) {
        jit_unload(&k);
        rc = seterr(err, "gpu: the kernel came from the empty cache folder %s", dir);
    }
    if (!rc) {
        *cold_s = seconds_now() - t0;
        jit_unload(&k);
        t0 = seconds_now();
        rc = load_kernel(s, &k, err);
        *cached_s = seconds_now() - t0;
        if (!rc) jit_unload(&k);
    }
    if (saved) setenv("STEPFUSE_CACHE", saved, 1);
    else unsetenv("STEPFUSE_CACHE");
    free(saved);
    if (remove_tree(dir)) fprintf(stderr, "could not remove %s: %s\n", dir, strerror(errno));
    return rc;
}

static int create(gpu_engine_t *e, const spec_t *s, const weights_t *w, char *err)
{
    if (!gpu_available()) return seterr(err, "gpu: no CUDA device available");
    catalogue_t cat;
    catalogue_build(s, &cat);
    int rc = layout_build(s, &cat, &e->lay, err);
    if (!rc) rc = load_kernel(s, &e->k, err);
    const size_t wbytes = (size_t)e->lay.weight_bytes;
    const size_t sbytes = (size_t)e->base.max_symbols * slot_bytes(e);
    const size_t abytes = (size_t)e->lay.scratch_floats * sizeof(float);
    const size_t total = wbytes + sbytes + slot_bytes(e) + abytes;
    const int B = e->base.max_batch;
    e->f4 = (s->num_features + 3) & ~3;
    if (!rc) rc = device_alloc((void **)&e->d_w, wbytes, "the weights", total, err);
    if (!rc) {
        char what[128];
        snprintf(what, sizeof what, "the state of %d symbols (%zu bytes each)", e->base.max_symbols,
                 slot_bytes(e));
        rc = device_alloc((void **)&e->d_state, sbytes, what, total, err);
    }
    if (!rc) rc = device_alloc((void **)&e->d_init, slot_bytes(e), "a slot's initial state", total, err);
    if (!rc) rc = device_alloc((void **)&e->d_scr, abytes, "the activations", total, err);
    if (!rc) rc = device_alloc((void **)&e->d_feats, (size_t)B * e->f4 * sizeof(float), "features", total, err);
    if (!rc) rc = device_alloc((void **)&e->d_out, (size_t)B * 4 * sizeof(float), "outputs", total, err);
    if (!rc) rc = device_alloc((void **)&e->d_slots, (size_t)B * sizeof(int), "slots", total, err);
    if (!rc) rc = device_alloc((void **)&e->d_bar, BARRIER_WORDS * sizeof(unsigned), "the barriers", total, err);
    if (rc) {
        catalogue_free(&cat);
        return -1;
    }
    catalogue_free(&cat);
    CU(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking), "creating a stream");
    CU(cudaEventCreate(&e->ev[0]), "creating events");
    CU(cudaEventCreate(&e->ev[1]), "creating events");
    CU(cudaMallocHost((void **)&e->h_feats, (size_t)B * e->f4 * sizeof(float)), "pinned memory");
    CU(cudaMallocHost((void **)&e->h_out, (size_t)B * 4 * sizeof(float)), "pinned memory");
    CU(cudaMallocHost((void **)&e->h_slots, (size_t)B * sizeof(int)), "pinned memory");
    memset(e->h_feats, 0, (size_t)B * e->f4 * sizeof(float)); /* the padding stays zero */
    CU(cudaMemset(e->d_bar, 0, BARRIER_WORDS * sizeof(unsigned)), "clearing the barriers");
    CU(cudaMemset(e->d_scr, 0, abytes), "clearing activations");
    catalogue_build(s, &cat);
    rc = upload_weights(e, &cat, w, err);
    catalogue_free(&cat);
    if (rc) return -1;
    float *img = xmalloc(slot_bytes(e));
    layout_initial_state(s, &e->lay, img);
    rc = gpu_state_init(e->d_state, e->base.max_symbols, e->d_init, img, slot_bytes(e), e->stream, err);
    free(img);
    if (rc) return -1;
    CU(cudaDeviceSynchronize(), "initialising");
    return 0;
}

/* w, or NULL: all zero (the table) */
static void set_tower_weights(gpu_engine_t *e, const int w[NUM_TOWERS])
{
    if (w) memcpy(e->tower_weights, w, sizeof e->tower_weights);
    else memset(e->tower_weights, 0, sizeof e->tower_weights);
}

int gpu_set_tower_weights(engine_t *base, const int w[NUM_TOWERS], char *err)
{
    if (strcmp(base->ops->name, "gpu")) return seterr(err, "tower weights are the gpu engine's, not %s's", base->ops->name);
    set_tower_weights((gpu_engine_t *)base, w);
    return 0;
}

engine_t *engine_gpu_create(const spec_t *s, const weights_t *w, const engine_options_t *o, char *err)
{
    gpu_engine_t *e = xcalloc(1, sizeof *e);
    engine_init(&e->base, &gpu_ops, s, o);
    set_tower_weights(e, o->tower_weights);
    if (create(e, s, w, err)) {
        gpu_destroy(&e->base);
        return NULL;
    }
    return &e->base;
}

void engine_gpu_describe(const engine_t *base, char *out, size_t size)
{
    const gpu_engine_t *e = (const gpu_engine_t *)base;
    snprintf(out, size,
             "%s: grid %d x %d threads, %d registers/thread, %d bytes dynamic smem, cubin %s; weights %.3f GB, "
             "state %.1f MB/symbol",
             e->k.arch, e->k.grid, e->k.threads, e->k.registers, e->k.dynamic_smem,
             e->k.from_cache ? "from cache" : "compiled",
             (double)e->lay.weight_bytes * 1e-9, (double)e->lay.slot_floats * 4e-6);
}

int gpu_copy_bandwidth(double *bytes_per_s, char *err)
{
    const size_t bytes = (size_t)1 << 30;
    void *a = NULL, *b = NULL;
    cudaEvent_t ev[2] = {0};
    double ms[5];
    int rc = 0;
    cudaError_t c = cudaMalloc(&a, bytes);
    if (c == cudaSuccess) c = cudaMalloc(&b, bytes);
    if (c == cudaSuccess) c = cudaMemset(a, 1, bytes);
    if (c == cudaSuccess) c = cudaEventCreate(&ev[0]);
    if (c == cudaSuccess) c = cudaEventCreate(&ev[1]);
    for (int i = -1; i < 5 && c == cudaSuccess; i++) { /* one untimed warm-up copy */
        float t = 0;
        c = cudaEventRecord(ev[0], 0);
        if (c == cudaSuccess) c = cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0);
        if (c == cudaSuccess) c = cudaEventRecord(ev[1], 0);
        if (c == cudaSuccess) c = cudaEventSynchronize(ev[1]);
        if (c == cudaSuccess) c = cudaEventElapsedTime(&t, ev[0], ev[1]);
        if (i >= 0) ms[i] = t;
    }
    if (c != cudaSuccess) rc = seterr(err, "gpu: measuring copy bandwidth: %s", cudaGetErrorString(c));
    else {
        *bytes_per_s = 2.0 * (double)bytes / (median(ms, 5) * 1e-3);
    }
    if (ev[0]) cudaEventDestroy(ev[0]);
    if (ev[1]) cudaEventDestroy(ev[1]);
    cudaFree(a);
    cudaFree(b);
    return rc;
}

void gpu_bench_inputs(int nb, int num_features, int *slots, float *features)
{
    for (int r = 0; r < nb; r++) {
        slots[r] = r;
        random_uniform(features + (size_t)r * num_features, (size_t)num_features,
                       0x9e3779b97f4a7c15ULL + (uint64_t)r, -1, 1);
    }
}

static int check_bench_batch(const engine_t *e, int nb, char *err)
{
    if (nb < 1 || nb > e->max_batch || nb > e->max_symbols)
        return seterr(err, "batch %d out of range [1, min(max_batch %d, max_symbols %d)]", nb, e->max_batch,
                      e->max_symbols);
    return 0;
}

/* The timed and traced steps' inputs (gpu_bench_inputs) to the device. */
static int upload_bench_inputs(gpu_engine_t *e, int nb, char *err)
{
    const int F = e->base.spec->num_features;
    int *slots = xmalloc((size_t)nb * sizeof *slots);
    float *features = xmalloc((size_t)nb * F * sizeof *features);
    gpu_bench_inputs(nb, F, slots, features);
    int rc = upload_inputs(e, nb, slots, features, err);
    free(slots);
    free(features);
    return rc;
}

static int gpu_time_step(engine_t *base, int nb, int warmup, int iters, double *median_ms, char *err)
{
    gpu_engine_t *e = (gpu_engine_t *)base;
    if (check_bench_batch(base, nb, err) || upload_bench_inputs(e, nb, err)) return -1;
    double *ms = xmalloc((size_t)(iters > 0 ? iters : 1) * sizeof *ms);
    int rc = 0;
    for (int i = 0; i < warmup + iters && !rc; i++) {
        cudaError_t c = cudaEventRecord(e->ev[0], e->stream);
        if (c == cudaSuccess) c = launch_fused(e, nb, NULL);
        if (c == cudaSuccess) c = cudaEventRecord(e->ev[1], e->stream);
        if (c == cudaSuccess) c = cudaEventSynchronize(e->ev[1]);
        float t = 0;
        if (c == cudaSuccess) c = cudaEventElapsedTime(&t, e->ev[0], e->ev[1]);
        if (c != cudaSuccess) rc = seterr(err, "gpu: timed step: %s", cudaGetErrorString(c));
        else if (i >= warmup) ms[i - warmup] = t;
    }
    if (!rc) *median_ms = median(ms, (size_t)iters);
    free(ms);
    return rc;
}

int gpu_trace_step(engine_t *base, int nb, double *out, step_trace_t *tr, char *err)
{
    if (strcmp(base->ops->name, "gpu"))
        return seterr(err, "a per-stage trace needs the gpu engine, not %s", base->ops->name);
    gpu_engine_t *e = (gpu_engine_t *)base;
    if (check_bench_batch(base, nb, err) || upload_bench_inputs(e, nb, err)) return -1;
    tr->stages = stage_count(base->spec);
    tr->ctas = e->k.grid;
    const size_t bytes = step_trace_values(tr->stages, tr->ctas) * sizeof *tr->t;
    tr->t = xmalloc(bytes);
    double *outs = out ? out : xmalloc((size_t)nb * 4 * sizeof *outs);
    unsigned long long *d_trace = NULL;
    int rc = device_alloc((void **)&d_trace, bytes, "the trace", bytes, err);
    /* zero: a time the kernel did not write shows as missing */
    if (!rc && cudaMemsetAsync(d_trace, 0, bytes, e->stream) != cudaSuccess)
        rc = seterr(err, "gpu: clearing the trace");
    if (!rc) rc = wave(e, nb, outs, d_trace, err);
    if (!rc) rc = gpu_copy(tr->t, d_trace, bytes, cudaMemcpyDeviceToHost, e->stream, "copying the trace", err);
    cudaFree(d_trace);
    if (rc) step_trace_free(tr);
    if (outs != out) free(outs);
    return rc;
}

int gpu_trace_report(engine_t *e, int nb, trace_report_t *r, char *err)
{
    step_trace_t tr;
    if (gpu_trace_step(e, nb, NULL, &tr, err)) return -1;
    stage_entry_t *table = stage_table(e->spec);
    const int rc = trace_report_build(&tr, table, r, err);
    free(table);
    step_trace_free(&tr);
    return rc;
}
