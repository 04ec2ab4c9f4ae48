/* stepfuse bench: the fused step against the memory floor and against the unfused
 * cuBLAS path, measured in the same run, plus JIT times and device memory.
 *
 * floor: bytes a step must move (weights once + every batched symbol's state read and
 * written: the model's state, without the log of a write-back period) over the
 * device-to-device copy bandwidth measured here. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cli_args.h"
#include "commands.h"
#include "compare.h"
#include "engine.h"
#include "engine_gpu.h"
#include "layout.h"
#include "spec.h"
#include "stream_probe.h"
#include "stage_table.h"
#include "step_trace.h"
#include "util.h"
#include "weights.h"

#define MAX_BATCHES 16
#define WEIGHTS_SEED 1

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stepfuse bench --spec S [--weights W] [options]\n\n"
            "Times one ensemble step on the GPU for each batch size (distinct symbols, random\n"
            "features; CUDA events around the step's device work, median after warm-up) for\n"
            "the fused kernel and for the unfused path (layer by layer, cuBLAS projections,\n"
            "the same precision), checks the two against each other from a fresh state, and\n"
            "reports step time, requests/s, achieved GB/s and the ratio to the memory floor:\n"
            "the bytes a step must move (weights once, each symbol's state read and written)\n"
            "over the device-to-device copy bandwidth measured in the same run. Also: cold and\n"
            "cached JIT time, device memory of each engine, and the weight-stream probe: how\n"
            "fast the projections' access pattern reads memory alone, with a chunk in\n"
            "registers (as the kernel) and with bulk copies into shared memory.\n\n"
            "options:\n"
            "  --weights W      weights (default: generated with seed %d, kept in the cache)\n"
            "  --batch LIST     comma-separated batch sizes (default 1,8,32,50,64)\n"
            "  --iters N        timed steps per batch size (default 30, after 5 warm-up steps)\n"
            "  --baseline B     cublas (default) or none\n"
            "  --check N        also run N requests on up to 4 symbols through both GPU engines\n"
            "                   and the float64 C reference (slow at full size: seconds each);\n"
            "                   with 16-bit matrices or a bf16 state also against the\n"
            "                   reference of the fp32 model: the error of the mode itself,\n"
            "                   reported, not gated\n"
            "  --tolerance T    exit 1 if a --check relative L2 error exceeds T (default 1e-4;\n"
            "                   with a bf16 state 5e-2: each engine's fp32 roundings move some\n"
            "                   elements across a bf16 tie, and the full-size model amplifies\n"
            "                   that to 8.7e-3..1.0e-2 after 3 requests)\n"
            "  --cross-tolerance T\n"
            "                   exit 1 if fused and unfused differ by more than T (default\n"
            "                   1e-2: the two differ in RetNet by up to 2.8e-4 with fp32 and\n"
            "                   1.3e-3 with bf16 matrices at full size, whose first step\n"
            "                   normalises q.k per head, ill-conditioned where it cancels; a\n"
            "                   defect differs at order 1. With a bf16 state 0.5: one output\n"
            "                   a tower at batch 1 differed by 0.19, 4e-3..7e-3 at 8 to 64)\n"
            "  --trace B        after the timed steps, one step at batch B with the kernel's\n"
            "                   per-stage trace (%%globaltimer per CTA around each barrier): for\n"
            "                   each tower a table of its stages (slowest and median CTA work,\n"
            "                   barrier wait, span) and where its time goes by phase; each\n"
            "                   CTA's pace against the others of its phase (with the SM it ran\n"
            "                   on)\n"
            "  --tower-weights A,B,C,D\n"
            "                   per-mille weights of the towers' shares of the grid (xLSTM,\n"
            "                   Mamba2, RetNet, Hawk; each tower's costs summed over the step\n"
            "                   are weighed by them) at every batch size, in place of the\n"
            "                   engine's table by batch size: to measure a split\n"
            "  --no-jit-time    skip the cold and cached JIT measurement (a full compile:\n"
            "                   about 25 s at full size)\n"
            "  --json F         also write the results (and the trace) as JSON to F\n"
            "  -h, --help       this text\n",
            WEIGHTS_SEED);
}

typedef struct {
    int batch;
    double fused_ms, unfused_ms; /* unfused_ms < 0: no baseline */
    double bytes, floor_ms;
    compare_t diff; /* fused vs unfused on one step from the initial state */
} bench_row_t;

typedef struct {
    char device[256];
    double copy_bw; /* bytes/s, read + written */
    stream_probe_t probe;
    double jit_cold_s, jit_cached_s;
    double fused_mem, unfused_mem; /* device bytes held by each engine */
    double weight_bytes, state_bytes;
    int nrows;
    bench_row_t rows[MAX_BATCHES];
    int tower_weights[NUM_TOWERS]; /* --tower-weights, all zero: the engine's table */
    int jit_time;                  /* measure the cold and cached JIT (else -1 s) */
    int trace_batch;      /* 0: no trace */
    int traced;           /* trace holds a report */
    trace_report_t trace;
    int checked;  /* requests compared with the C reference */
    int nchecked; /* comparisons made: fused, unfused, and in a rounded mode the mode's error */
    struct {
        const char *what, *json_key;
        int gated; /* subject to --tolerance: the engines against the function they compute */
        compare_t c;
    } check[3];
} bench_t;

static int parse_tower_weights(const char *list, int *w)
{
    const char *p = list;
    for (int k = 0; k < NUM_TOWERS; k++) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 100000 || *end != (k + 1 < NUM_TOWERS ? ',' : '\0')) {
            fprintf(stderr, "stepfuse bench: --tower-weights wants %d comma-separated integers 1..100000 "
                            "(xLSTM, Mamba2, RetNet, Hawk), got '%s'\n", NUM_TOWERS, list);
            return -1;
        }
        w[k] = (int)v;
        p = end + 1;
    }
    return 0;
}

static double device_used(void)
{
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return (double)(total_b - free_b);
}

/* One step of slots 0..nb-1 from their initial state on both engines, compared. */
static int cross_check(engine_t *a, engine_t *b, int nb, compare_t *c, char *err)
{
    const int F = a->spec->num_features;
    float *feat = xmalloc((size_t)nb * F * sizeof *feat);
    int *slots = xmalloc((size_t)nb * sizeof *slots);
    double *oa = xmalloc((size_t)nb * 4 * sizeof *oa), *ob = xmalloc((size_t)nb * 4 * sizeof *ob);
    random_uniform(feat, (size_t)nb * F, 0x9e3779b97f4a7c15ULL + (uint64_t)nb, -1, 1);
    for (int r = 0; r < nb; r++) {
        slots[r] = r;
        a->ops->reset_slot(a, r);
        b->ops->reset_slot(b, r);
    }
    int rc = engine_step(a, nb, slots, feat, oa, err);
    if (!rc) rc = engine_step(b, nb, slots, feat, ob, err);
    if (!rc) compare_outputs(oa, ob, (size_t)nb, c);
    free(feat);
    free(slots);
    free(oa);
    free(ob);
    return rc;
}

/* The symbols that --check's n requests go to in turn. */
static int check_symbols(int n) { return n < 4 ? n : 4; }

/* n requests over check_symbols(n) symbols in turn through each GPU engine in one batch (the
 * engine splits it into waves of distinct symbols) and through the float64 C reference one
 * at a time; c[i]: engine i against the reference. */
static int check_reference(const spec_t *s, const weights_t *w, engine_t *const *gpu, int ngpu,
                           int n, compare_t *c, char *err)
{
    const int nsym = check_symbols(n);
    engine_options_t oc = {.backend = "cpu", .fp64 = 1, .max_symbols = nsym};
    engine_t *cpu = engine_create(s, w, &oc, err);
    if (!cpu) return -1;
    const int F = s->num_features;
    float *feat = xmalloc((size_t)n * F * sizeof *feat);
    int *slots = xmalloc((size_t)n * sizeof *slots);
    double *og = xmalloc((size_t)n * 4 * sizeof *og), *oc_ = xmalloc((size_t)n * 4 * sizeof *oc_);
    random_uniform(feat, (size_t)n * F, 0x2545f4914f6cdd1dULL, -1, 1);
    for (int r = 0; r < n; r++) slots[r] = r % nsym;
    int rc = 0;
    for (int r = 0; r < n && !rc; r++) {
        rc = engine_step(cpu, 1, slots + r, feat + (size_t)r * F, oc_ + 4 * r, err);
        fprintf(stderr, "\rC reference: request %d of %d", r + 1, n);
    }
    fprintf(stderr, "\n");
    for (int i = 0; i < ngpu && !rc; i++) {
        for (int k = 0; k < nsym; k++) gpu[i]->ops->reset_slot(gpu[i], k);
        rc = engine_step(gpu[i], n, slots, feat, og, err);
        if (!rc) compare_outputs(og, oc_, (size_t)n, &c[i]);
    }
    free(feat);
    free(slots);
    free(og);
    free(oc_);
    engine_destroy(cpu);
    return rc;
}

static void print_table(const spec_t *s, const bench_t *b)
{
    char writeback[96] = "";
    if (s->state.writeback > 1)
        snprintf(writeback, sizeof writeback, "; written back every %d steps, the log not counted", s->state.writeback);
    printf("%s on %s: weights %.3f GB (%s), state %.1f MB per symbol (matrices %s%s)\n", s->name, b->device,
           b->weight_bytes * 1e-9, precision_name(s->precision.weights), b->state_bytes * 1e-6,
           precision_name(s->precision.state), writeback);
    char jit[64] = "not measured";
    if (b->jit_cold_s >= 0) snprintf(jit, sizeof jit, "cold %.1f s, cached %.3f s", b->jit_cold_s, b->jit_cached_s);
    printf("device-to-device copy %.0f GB/s; JIT %s; device memory: fused %.2f GB, unfused %.2f GB\n",
           b->copy_bw * 1e-9, jit, b->fused_mem * 1e-9, b->unfused_mem * 1e-9);
    if (b->tower_weights[0])
        printf("towers' shares of the grid weighed %d, %d, %d, %d per mille (--tower-weights)\n",
               b->tower_weights[0], b->tower_weights[1], b->tower_weights[2], b->tower_weights[3]);
    printf("weight-stream probe (the projections' access pattern alone, 8 warps an SM, bytes read):\n"
           "chunk in registers %.0f GB/s, bulk copies into shared memory %.0f GB/s\n\n",
           b->probe.registers_bps * 1e-9, b->probe.bulk_bps * 1e-9);
    printf("%5s %10s %9s %8s %10s %10s %9s %8s %11s %11s\n", "batch", "fused ms", "floor ms",
           "% floor", "fused GB/s", "fused req/s", "unfused ms", "x faster", "rel diff",
           "max abs");
    for (int i = 0; i < b->nrows; i++) {
        const bench_row_t *r = &b->rows[i];
        printf("%5d %10.3f %9.3f %7.1f%% %10.0f %10.0f", r->batch, r->fused_ms, r->floor_ms,
               100 * r->floor_ms / r->fused_ms, r->bytes / (r->fused_ms * 1e-3) * 1e-9,
               r->batch / (r->fused_ms * 1e-3));
        if (r->unfused_ms >= 0)
            printf(" %9.3f %8.2f %11.2e %11.2e\n", r->unfused_ms, r->unfused_ms / r->fused_ms,
                   compare_worst(&r->diff), r->diff.max_abs_all);
        else
            printf(" %9s %8s %11s %11s\n", "-", "-", "-", "-");
    }
    for (int i = 0; i < b->nchecked; i++) {
        printf("\n%s, %d requests on %d symbols:\n", b->check[i].what, b->checked, check_symbols(b->checked));
        compare_print(stdout, &b->check[i].c);
    }
    if (b->traced) trace_report_print(stdout, &b->trace, b->trace_batch);
}

static json_t *compare_json(const compare_t *c)
{
    json_t *towers = json_object();
    for (int k = 0; k < NUM_TOWERS; k++)
        json_object_set_new(towers, tower_names[k],
                            json_pack("{s:f,s:f}", "rel_l2", c->rel_l2[k], "max_abs", c->max_abs[k]));
    return json_pack("{s:f,s:f,s:I,s:o}", "rel_l2", c->rel_l2_all, "max_abs", c->max_abs_all,
                     "nonfinite", (json_int_t)c->nonfinite, "towers", towers);
}

static int write_json(const char *path, const spec_t *s, const bench_t *b, char *err)
{
    json_t *rows = json_array();
    for (int i = 0; i < b->nrows; i++) {
        const bench_row_t *r = &b->rows[i];
        json_t *row = json_pack("{s:i,s:f,s:f,s:f,s:f,s:f,s:f}", "batch", r->batch, "fused_ms",
                                r->fused_ms, "floor_ms", r->floor_ms, "floor_fraction",
                                r->floor_ms / r->fused_ms, "bytes", r->bytes, "fused_gb_s",
                                r->bytes / (r->fused_ms * 1e-3) * 1e-9, "fused_req_s",
                                r->batch / (r->fused_ms * 1e-3));
        if (r->unfused_ms >= 0) {
            json_object_set_new(row, "unfused_ms", json_real(r->unfused_ms));
            json_object_set_new(row, "x_faster_than_unfused", json_real(r->unfused_ms / r->fused_ms));
            json_object_set_new(row, "fused_vs_unfused", compare_json(&r->diff));
        }
        json_array_append_new(rows, row);
    }
    json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:f,s:f,s:f,s:f,s:f,s:o}", "spec", s->name, "device", b->device,
                            "weights_precision", precision_name(s->precision.weights), "state_precision",
                            precision_name(s->precision.state), "copy_gb_s", b->copy_bw * 1e-9, "weight_bytes",
                            b->weight_bytes, "state_bytes_per_symbol", b->state_bytes, "fused_device_bytes",
                            b->fused_mem, "unfused_device_bytes", b->unfused_mem, "batches", rows);
    if (b->jit_cold_s >= 0) {
        json_object_set_new(doc, "jit_cold_s", json_real(b->jit_cold_s));
        json_object_set_new(doc, "jit_cached_s", json_real(b->jit_cached_s));
    }
    json_object_set_new(doc, "probe_registers_gb_s", json_real(b->probe.registers_bps * 1e-9));
    json_object_set_new(doc, "probe_bulk_gb_s", json_real(b->probe.bulk_bps * 1e-9));
    if (b->tower_weights[0]) {
        json_t *tw = json_array();
        for (int k = 0; k < NUM_TOWERS; k++) json_array_append_new(tw, json_integer(b->tower_weights[k]));
        json_object_set_new(doc, "tower_weights", tw);
    }
    if (b->traced) json_object_set_new(doc, "trace", trace_report_json(&b->trace, b->trace_batch));
    if (b->nchecked) json_object_set_new(doc, "reference_requests", json_integer(b->checked));
    for (int i = 0; i < b->nchecked; i++)
        json_object_set_new(doc, b->check[i].json_key, compare_json(&b->check[i].c));
    int rc = json_dump_file(doc, path, JSON_INDENT(2)) ? seterr(err, "cannot write %s", path) : 0;
    json_decref(doc);
    return rc;
}

/* --check: the GPU engines against the float64 C reference of the same spec and, with 16-bit
 * matrices or a bf16 state, the fused engine against the reference of the fp32 model (its
 * weights w_fp32): the error of the mode itself. */
static int run_checks(const spec_t *s, const weights_t *w, const weights_t *w_fp32, engine_t *fused,
                      engine_t *unfused, int n, bench_t *b, char *err)
{
    engine_t *const engines[2] = {fused, unfused};
    compare_t c[2];
    if (check_reference(s, w, engines, unfused ? 2 : 1, n, c, err)) return -1;
    const char *const what[2] = {"fused vs C reference float64", "unfused vs C reference float64"};
    const char *const keys[2] = {"fused_vs_reference_fp64", "unfused_vs_reference_fp64"};
    for (int i = 0; i < (unfused ? 2 : 1); i++) {
        b->check[b->nchecked].what = what[i];
        b->check[b->nchecked].json_key = keys[i];
        b->check[b->nchecked].gated = 1;
        b->check[b->nchecked++].c = c[i];
    }
    if (w_fp32) {
        spec_t s32 = *s;
        s32.precision.weights = s32.precision.state = PRECISION_FP32;
        if (check_reference(&s32, w_fp32, &fused, 1, n, c, err)) return -1;
        b->check[b->nchecked].what = "fused (rounded mode) vs C reference float64 of the fp32 model";
        b->check[b->nchecked].json_key = "fused_vs_fp32_model_reference_fp64";
        b->check[b->nchecked].gated = 0;
        b->check[b->nchecked++].c = c[0];
    }
    b->checked = n;
    return 0;
}

static int run(const spec_t *s, const weights_t *w, const weights_t *w_fp32, const int *batches, int nb,
               const char *baseline, int iters, int check, bench_t *b, char *err)
{
    int max_b = 1;
    for (int i = 0; i < nb; i++) max_b = batches[i] > max_b ? batches[i] : max_b;
    if (b->trace_batch > max_b) max_b = b->trace_batch;
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess)
        return seterr(err, "no CUDA device: the benchmark needs a GPU");
    snprintf(b->device, sizeof b->device, "%s", prop.name);
    if (gpu_copy_bandwidth(&b->copy_bw, err)) return -1;
    if (gpu_stream_probe(&b->probe, err)) return -1;
    b->jit_cold_s = b->jit_cached_s = -1;
    if (b->jit_time && gpu_jit_time(s, &b->jit_cold_s, &b->jit_cached_s, err)) return -1;

    const double before = device_used();
    /* the engines hold a symbol per entry of the largest batch, and --check's symbols */
    const int symbols = max_b > check_symbols(check) ? max_b : check_symbols(check);
    engine_options_t o = {.backend = "gpu", .max_symbols = symbols,
                          .tower_weights = b->tower_weights[0] ? b->tower_weights : NULL};
    engine_t *fused = engine_create(s, w, &o, err), *unfused = NULL;
    if (!fused) return -1;
    b->fused_mem = device_used() - before;
    if (max_b > fused->max_batch) {
        engine_destroy(fused);
        return seterr(err, "batch %d exceeds the spec's max_batch %d", max_b, fused->max_batch);
    }
    if (strcmp(baseline, "none")) {
        o.backend = baseline;
        unfused = engine_create(s, w, &o, err);
        if (!unfused) {
            engine_destroy(fused);
            return -1;
        }
        b->unfused_mem = device_used() - before - b->fused_mem;
    }
    b->weight_bytes = (double)catalogue_bytes(&w->cat, s->precision.weights);
    layout_t lay;
    if (layout_build(s, &w->cat, &lay, err)) {
        engine_destroy(unfused);
        engine_destroy(fused);
        return -1;
    }
    b->state_bytes = 4.0 * (double)layout_model_state_floats(s, &lay);
    layout_free(&lay);
    int rc = 0;
    for (int i = 0; i < nb && !rc; i++) {
        bench_row_t *r = &b->rows[b->nrows++];
        r->batch = batches[i];
        r->bytes = b->weight_bytes + 2.0 * r->batch * b->state_bytes;
        r->floor_ms = r->bytes / b->copy_bw * 1e3;
        r->unfused_ms = -1;
        if (unfused) rc = cross_check(fused, unfused, r->batch, &r->diff, err);
        if (!rc) rc = fused->ops->time_step(fused, r->batch, 5, iters, &r->fused_ms, err);
        if (!rc && unfused)
            rc = unfused->ops->time_step(unfused, r->batch, 5, iters, &r->unfused_ms, err);
        fprintf(stderr, "batch %d: fused %.3f ms\n", r->batch, r->fused_ms);
    }
    if (!rc && b->trace_batch) {
        rc = gpu_trace_report(fused, b->trace_batch, &b->trace, err);
        fprintf(stderr, "batch %d: traced step %.3f ms\n", b->trace_batch, rc ? 0.0 : b->trace.step * 1e-3);
    }
    b->traced = !rc && b->trace_batch;
    if (!rc && check) rc = run_checks(s, w, w_fp32, fused, unfused, check, b, err);
    engine_destroy(unfused);
    engine_destroy(fused);
    return rc;
}

/* The weights of spec s: the file at path, or those generated from (s, WEIGHTS_SEED). */
static int bench_weights(const char *path, const spec_t *s, weights_t *w, char *err)
{
    return path ? weights_load(path, s, w, err) : weights_cached(s, WEIGHTS_SEED, NULL, w, err);
}

int command_gpu_model(const char *cmd, const char *spec_path, const char *weights_path, spec_t *s, weights_t *w)
{
    char err[SPEC_ERR_MAX > ERR_MAX ? SPEC_ERR_MAX : ERR_MAX];
    if (spec_load(spec_path, s, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (!gpu_available()) {
        fprintf(stderr, "stepfuse %s: no CUDA device: %s needs a GPU\n", cmd, cmd);
        return 1;
    }
    if (bench_weights(weights_path, s, w, err)) {
        fprintf(stderr, "stepfuse %s: %s\n", cmd, err);
        return 1;
    }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"spec", required_argument, 0, 's'},     {"weights", required_argument, 0, 'w'},
        {"batch", required_argument, 0, 'b'},    {"iters", required_argument, 0, 'i'},
        {"baseline", required_argument, 0, 'B'}, {"check", required_argument, 0, 'c'},
        {"tolerance", required_argument, 0, 't'}, {"json", required_argument, 0, 'j'},
        {"cross-tolerance", required_argument, 0, 'x'}, {"trace", required_argument, 0, 'T'},
        {"tower-weights", required_argument, 0, 'W'}, {"no-jit-time", no_argument, 0, 'J'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    static const char *const baselines[] = {"cublas", "none", NULL};
    const char *spec_path = NULL, *weights_path = NULL, *batch_list = "1,8,32,50,64";
    const char *baseline = "cublas", *json_path = NULL;
    int iters = 30, check = 0, trace_batch = 0, tower_weights[NUM_TOWERS] = {0}, jit_time = 1, c;
    double tolerance = -1, cross_tolerance = -1; /* defaults by the spec's state precision */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': spec_path = optarg; break;
        case 'w': weights_path = optarg; break;
        case 'b': batch_list = optarg; break;
        case 'j': json_path = optarg; break;
        case 'J': jit_time = 0; break;
        case 'W':
            if (parse_tower_weights(optarg, tower_weights)) return 2;
            break;
        case 'i':
            if (arg_int("bench", "--iters", optarg, 1, &iters)) return 2;
            break;
        case 'c':
            if (arg_int("bench", "--check", optarg, 0, &check)) return 2;
            break;
        case 'T':
            if (arg_int("bench", "--trace", optarg, 1, &trace_batch)) return 2;
            break;
        case 't':
            if (arg_double("bench", "--tolerance", optarg, 0, &tolerance)) return 2;
            break;
        case 'x':
            if (arg_double("bench", "--cross-tolerance", optarg, 0, &cross_tolerance)) return 2;
            break;
        case 'B':
            if (arg_choice("bench", "--baseline", optarg, baselines)) return 2;
            baseline = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int batches[MAX_BATCHES], nb;
    if (!spec_path || optind < argc) {
        fprintf(stderr, "stepfuse bench: --spec is required (and takes no other arguments)\n");
        usage(stderr);
        return 2;
    }
    if (arg_int_list("bench", "--batch", batch_list, 1, 4096, batches, MAX_BATCHES, &nb)) return 2;

    spec_t s;
    weights_t w;
    const int setup = command_gpu_model("bench", spec_path, weights_path, &s, &w);
    if (setup) return setup;
    char err[ERR_MAX];
    const int bf16_state = s.precision.state == PRECISION_BF16;
    if (tolerance < 0) tolerance = bf16_state ? 5e-2 : 1e-4;
    if (cross_tolerance < 0) cross_tolerance = bf16_state ? 0.5 : 1e-2;
    /* a rounded mode's own error: against the fp32 model, with the weights file unrounded */
    const int mode_check = check && spec_rounded(&s);
    const int reload = mode_check && s.precision.weights != PRECISION_FP32;
    spec_t s32 = s;
    s32.precision.weights = PRECISION_FP32;
    weights_t w32;
    if (reload && bench_weights(weights_path, &s32, &w32, err)) {
        fprintf(stderr, "stepfuse bench: %s\n", err);
        weights_free(&w);
        return 1;
    }
    bench_t *b = xcalloc(1, sizeof *b);
    b->trace_batch = trace_batch;
    memcpy(b->tower_weights, tower_weights, sizeof b->tower_weights);
    b->jit_time = jit_time;
    const weights_t *w_fp32 = !mode_check ? NULL : reload ? &w32 : &w; /* a rounded state alone: the same weights */
    int rc = run(&s, &w, w_fp32, batches, nb, baseline, iters, check, b, err);
    if (rc) fprintf(stderr, "stepfuse bench: %s\n", err);
    if (b->nrows) print_table(&s, b);
    if (b->nrows && json_path && write_json(json_path, &s, b, err)) {
        fprintf(stderr, "stepfuse bench: %s\n", err);
        rc = -1;
    }
    for (int i = 0; i < b->nrows && !rc; i++)
        if (b->rows[i].unfused_ms >= 0 && !(compare_worst(&b->rows[i].diff) <= cross_tolerance)) {
            fprintf(stderr, "stepfuse bench: batch %d: fused and unfused differ by %.3e > %.1e\n",
                    b->rows[i].batch, compare_worst(&b->rows[i].diff), cross_tolerance);
            rc = -1;
        }
    for (int i = 0; i < b->nchecked && !rc; i++)
        if (b->check[i].gated && !(compare_worst(&b->check[i].c) <= tolerance)) {
            fprintf(stderr, "stepfuse bench: %s: %.3e > %.1e\n", b->check[i].what, compare_worst(&b->check[i].c),
                    tolerance);
            rc = -1;
        }
    trace_report_free(&b->trace);
    free(b);
    if (reload) weights_free(&w32);
    weights_free(&w);
    return rc ? 1 : 0;
}
