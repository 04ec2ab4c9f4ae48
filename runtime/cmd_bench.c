/* stepfuse bench: time the fused step on the GPU at given batch sizes, and optionally
 * check it against the float64 C reference on a few requests. */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "compare.h"
#include "engine.h"
#include "engine_gpu.h"
#include "spec.h"
#include "util.h"
#include "weights.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: stepfuse bench --spec S --weights W [options]\n\n"
               "Times the fused step (CUDA events around each launch, median after warm-up) for\n"
               "each batch size, on distinct symbols with random features; reports the time, the\n"
               "bytes a step must move (weights once plus each symbol's state read and written),\n"
               "the achieved bandwidth, and the floor: those bytes over the device's measured\n"
               "device-to-device copy bandwidth.\n\n"
               "options:\n"
               "  --batch LIST     comma-separated batch sizes (default 1,50)\n"
               "  --iters N        timed steps per batch size (default 20; 5 warm-up steps)\n"
               "  --check N        first run N requests on 2 symbols through the gpu engine and\n"
               "                   the float64 C reference and print the relative L2 error\n"
               "  --tolerance T    with --check: exit 1 if any tower's error exceeds T (1e-4)\n"
               "  -h, --help       this text\n");
}

static int check_against_reference(const spec_t *s, const weights_t *w, int n, double tolerance, char *err)
{
    const int F = s->num_features;
    engine_options_t og = {.backend = "gpu", .max_symbols = 2};
    engine_options_t oc = {.backend = "cpu", .fp64 = 1, .max_symbols = 2};
    engine_options_t o32 = {.backend = "cpu", .fp64 = 0, .max_symbols = 2};
    engine_t *gpu = engine_create(s, w, &og, err);
    if (!gpu) return -1;
    engine_t *cpu = engine_create(s, w, &oc, err), *cpu32 = cpu ? engine_create(s, w, &o32, err) : NULL;
    if (!cpu32) {
        engine_destroy(cpu);
        engine_destroy(gpu);
        return -1;
    }
    float *feat = xmalloc((size_t)n * F * sizeof *feat);
    int *slots = xmalloc((size_t)n * sizeof *slots);
    double *og_out = xmalloc((size_t)n * 4 * sizeof(double)), *oc_out = xmalloc((size_t)n * 4 * sizeof(double));
    double *o32_out = xmalloc((size_t)n * 4 * sizeof(double));
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (int r = 0; r < n; r++) {
        slots[r] = r % 2;
        for (int f = 0; f < F; f++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            feat[(size_t)r * F + f] = (float)((double)(x >> 11) / 9007199254740992.0 * 4.0 - 2.0);
        }
    }
    int rc = engine_step(gpu, n, slots, feat, og_out, err);
    for (int r = 0; r < n && !rc; r++) {
        rc = engine_step(cpu, 1, slots + r, feat + (size_t)r * F, oc_out + 4 * r, err);
        if (!rc) rc = engine_step(cpu32, 1, slots + r, feat + (size_t)r * F, o32_out + 4 * r, err);
        fprintf(stderr, "reference request %d/%d done\n", r + 1, n);
    }
    if (!rc) {
        compare_t c;
        compare_outputs(og_out, oc_out, (size_t)n, &c);
        printf("check: %d requests on 2 symbols, gpu fp32 vs C reference fp64\n", n);
        compare_print(stdout, &c);
        compare_t c32;
        compare_outputs(o32_out, oc_out, (size_t)n, &c32);
        printf("for scale, C reference fp32 vs fp64:\n");
        compare_print(stdout, &c32);
        for (int r = 0; r < n; r++)
            printf("  request %d: gpu %+.6e %+.6e %+.6e %+.6e | ref %+.6e %+.6e %+.6e %+.6e\n", r, og_out[4 * r],
                   og_out[4 * r + 1], og_out[4 * r + 2], og_out[4 * r + 3], oc_out[4 * r], oc_out[4 * r + 1],
                   oc_out[4 * r + 2], oc_out[4 * r + 3]);
        if (compare_worst(&c) > tolerance)
            rc = seterr(err, "gpu differs from the reference by %.3e > %.1e", compare_worst(&c), tolerance);
    }
    free(feat);
    free(slots);
    free(og_out);
    free(oc_out);
    free(o32_out);
    engine_destroy(gpu);
    engine_destroy(cpu);
    engine_destroy(cpu32);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"spec", required_argument, 0, 's'},  {"weights", required_argument, 0, 'w'},
        {"batch", required_argument, 0, 'b'}, {"iters", required_argument, 0, 'i'},
        {"check", required_argument, 0, 'c'}, {"tolerance", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *spec_path = NULL, *weights_path = NULL, *batches = "1,50";
    int iters = 20, check = 0, c;
    double tolerance = 1e-4;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': spec_path = optarg; break;
        case 'w': weights_path = optarg; break;
        case 'b': batches = optarg; break;
        case 'i': iters = atoi(optarg); break;
        case 'c': check = atoi(optarg); break;
        case 't': tolerance = atof(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!spec_path || !weights_path || iters < 1 || check < 0) {
        fprintf(stderr, "stepfuse bench: --spec and --weights are required (and --iters >= 1)\n");
        usage(stderr);
        return 2;
    }
    char err[SPEC_ERR_MAX > ERR_MAX ? SPEC_ERR_MAX : ERR_MAX];
    spec_t s;
    weights_t w;
    if (spec_load(spec_path, &s, err) || weights_load(weights_path, &s, &w, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = 0;
    if (check && check_against_reference(&s, &w, check, tolerance, err)) {
        fprintf(stderr, "stepfuse bench: %s\n", err);
        rc = 1;
    }
    int max_nb = 1;
    for (const char *p = batches; *p;) {
        int nb = atoi(p);
        if (nb > max_nb) max_nb = nb;
        p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p);
    }
    engine_options_t o = {.backend = "gpu", .max_symbols = max_nb};
    engine_t *e = engine_create(&s, &w, &o, err);
    if (!e) {
        fprintf(stderr, "stepfuse bench: %s\n", err);
        rc = 1;
    }
    if (e) {
        char info[256];
        engine_gpu_describe(e, info, sizeof info);
        printf("%s: %s\n", s.name, info);
        const double wbytes = 4.0 * (double)w.cat.total_numel;
        const double sbytes = (double)e->ops->state_bytes(e);
        double copy_bw = 0;
        if (gpu_copy_bandwidth(&copy_bw, err)) {
            fprintf(stderr, "stepfuse bench: %s\n", err);
            rc = 1;
        } else {
            printf("device-to-device copy: %.0f GB/s (read + written)\n", copy_bw * 1e-9);
        }
        printf("%6s %12s %14s %10s %10s %10s\n", "batch", "median ms", "bytes moved", "GB/s", "floor ms",
               "x floor");
        for (const char *p = batches; *p && !rc;) {
            const int nb = atoi(p);
            double ms;
            if (engine_gpu_time_step(e, nb, 5, iters, &ms, err)) {
                fprintf(stderr, "stepfuse bench: %s\n", err);
                rc = 1;
                break;
            }
            const double bytes = wbytes + 2.0 * nb * sbytes, floor_ms = copy_bw > 0 ? bytes / copy_bw * 1e3 : 0;
            printf("%6d %12.4f %14.4e %10.1f %10.4f %10.2f\n", nb, ms, bytes, bytes / (ms * 1e-3) * 1e-9, floor_ms,
                   floor_ms > 0 ? ms / floor_ms : 0);
            p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p);
        }
        engine_destroy(e);
    }
    weights_free(&w);
    return rc;
}
