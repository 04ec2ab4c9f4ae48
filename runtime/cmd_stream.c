/* stepfuse stream: feed a golden-format request stream through an engine, write the
 * outputs, and compare them with `expected` when the stream has it. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_args.h"
#include "commands.h"
#include "compare.h"
#include "engine.h"
#include "safetensors.h"
#include "spec.h"
#include "stream.h"
#include "util.h"
#include "weights.h"

/* Default tolerance against `expected` with 16-bit matrices or a bf16 state: the golden cases
 * measure up to 2.3e-2 per tower (README, Accuracy); a defect is off by order 1. */
#define ROUNDED_TOLERANCE 5e-2

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stepfuse stream --spec S --weights W --input io.safetensors [options]\n\n"
            "Runs a request stream (symbol int32 [N], features f32 [N,F], optional expected\n"
            "f64 [N,4]) through an engine in arrival order and prints the relative L2 error\n"
            "against `expected` per tower and overall.\n\n"
            "options:\n"
            "  --backend cpu|gpu|cublas\n"
            "                         engine (default cpu: the C reference)\n"
            "  --precision fp64|fp32  cpu backend compute type (default fp64)\n"
            "  --weights-precision fp32|bf16|fp16\n"
            "                         store the matrices in this precision (overrides the\n"
            "                         spec's precision.weights; bf16 and fp16 round them to\n"
            "                         nearest)\n"
            "  --state-precision fp32|bf16\n"
            "                         keep the mLSTM memory and Mamba2's SSM state in this\n"
            "                         precision (overrides the spec's precision.state; bf16\n"
            "                         rounds them to nearest at every update)\n"
            "  --batch N              requests per engine call (default: the spec's max_batch)\n"
            "  --output F             write the outputs as f64 [N,4] 'outputs' to F\n"
            "  --tolerance T          exit 1 if any relative L2 error exceeds T\n"
            "                         (default 1e-10 for fp64, 1e-5 otherwise; 16-bit weights\n"
            "                         or a bf16 state: 5e-2, the rounding moves the function\n"
            "                         itself away from `expected`)\n"
            "  -h, --help             this text\n");
}

static int write_outputs(const char *path, const double *out, int n, char *err)
{
    const st_decl_t decl = {.name = "outputs", .dtype = ST_F64, .ndim = 2, .shape = {n, 4}};
    st_writer_t *w = st_writer_open(path, &decl, 1, err);
    if (!w) return -1;
    if (st_writer_write(w, out, (size_t)n * 4 * sizeof *out, err)) {
        st_writer_abort(w);
        return -1;
    }
    return st_writer_close(w, err);
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_stream(int argc, char **argv)
{
    static const struct option opts[] = {
        {"spec", required_argument, 0, 's'},      {"weights", required_argument, 0, 'w'},
        {"input", required_argument, 0, 'i'},     {"backend", required_argument, 0, 'b'},
        {"precision", required_argument, 0, 'p'}, {"batch", required_argument, 0, 'n'},
        {"output", required_argument, 0, 'o'},    {"tolerance", required_argument, 0, 't'},
        {"weights-precision", required_argument, 0, 'W'}, {"state-precision", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    const char *spec_path = NULL, *weights_path = NULL, *input = NULL, *output = NULL;
    const char *precision = "fp64", *weights_precision = NULL, *state_precision = NULL;
    engine_options_t eo = {.backend = "cpu"};
    int batch = 0;
    double tolerance = -1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': spec_path = optarg; break;
        case 'w': weights_path = optarg; break;
        case 'i': input = optarg; break;
        case 'b': eo.backend = optarg; break;
        case 'p': precision = optarg; break;
        case 'W': weights_precision = optarg; break;
        case 'S': state_precision = optarg; break;
        case 'o': output = optarg; break;
        case 'n':
            if (arg_int("stream", "--batch", optarg, 1, &batch)) return 2;
            break;
        case 't':
            if (arg_double("stream", "--tolerance", optarg, 0, &tolerance)) return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!spec_path || !weights_path || !input || optind < argc) {
        fprintf(stderr, "stepfuse stream: --spec, --weights and --input are required%s\n",
                optind < argc ? " (and there are stray arguments)" : "");
        usage(stderr);
        return 2;
    }
    static const char *const precisions[] = {"fp64", "fp32", NULL};
    if (arg_choice("stream", "--precision", precision, precisions)) return 2;
    static const char *const weight_storage[] = {"fp32", "bf16", "fp16", NULL};
    static const char *const state_storage[] = {"fp32", "bf16", NULL};
    if (weights_precision && arg_choice("stream", "--weights-precision", weights_precision, weight_storage)) return 2;
    if (state_precision && arg_choice("stream", "--state-precision", state_precision, state_storage)) return 2;
    eo.fp64 = !strcmp(eo.backend, "cpu") && !strcmp(precision, "fp64");

    char err[ERR_MAX];
    spec_t spec;
    weights_t w;
    request_stream_t s;
    if (spec_load(spec_path, &spec, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (weights_precision) precision_parse(weights_precision, &spec.precision.weights); /* checked above */
    if (state_precision) precision_parse(state_precision, &spec.precision.state);
    if (tolerance < 0) tolerance = spec_rounded(&spec) ? ROUNDED_TOLERANCE : eo.fp64 ? 1e-10 : 1e-5;
    if (weights_load(weights_path, &spec, &w, err)) {
        fprintf(stderr, "stepfuse stream: %s\n", err);
        return 1;
    }
    if (stream_load(input, spec.num_features, &s, err)) {
        fprintf(stderr, "stepfuse stream: %s\n", err);
        weights_free(&w);
        return 1;
    }
    eo.max_symbols = s.num_symbols;
    int rc = 1;
    double *out = xmalloc((size_t)s.n * 4 * sizeof *out);
    engine_t *e = engine_create(&spec, &w, &eo, err);
    if (!e) {
        fprintf(stderr, "stepfuse stream: %s\n", err);
        goto done;
    }
    if (batch == 0) batch = e->max_batch;
    const double t0 = seconds_now();
    if (stream_run(e, &s, batch, out, err)) {
        fprintf(stderr, "stepfuse stream: %s\n", err);
        goto done;
    }
    const double dt = seconds_now() - t0;
    printf("%s: %d requests over %d symbols, backend %s (%s compute, %s matrices), batch %d: %.3f s, %.1f req/s\n",
           input, s.n, s.num_symbols, eo.backend, eo.fp64 ? "fp64" : "fp32", precision_name(spec.precision.weights), batch, dt,
           s.n / dt);
    if (output && write_outputs(output, out, s.n, err)) {
        fprintf(stderr, "stepfuse stream: %s\n", err);
        goto done;
    }
    rc = 0;
    if (s.expected) {
        compare_t cmp;
        compare_outputs(out, s.expected, (size_t)s.n, &cmp);
        printf("relative L2 error against expected (tolerance %.1e):\n", tolerance);
        compare_print(stdout, &cmp);
        if (!(compare_worst(&cmp) <= tolerance)) {
            fprintf(stderr, "stepfuse stream: error %.3e exceeds tolerance %.1e\n",
                    compare_worst(&cmp), tolerance);
            rc = 1;
        }
    }
done:
    engine_destroy(e);
    free(out);
    stream_free(&s);
    weights_free(&w);
    return rc;
}
