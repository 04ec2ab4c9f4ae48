/* stepfuse demo: the replay server and the serving loop on loopback, over the recorded
 * 1,000-request stream, then the replay's report. On a GPU: the full-size spec with
 * generated weights; without one: the cpu backend on a small spec. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_args.h"
#include "commands.h"
#include "csv_stream.h"
#include "engine.h"
#include "engine_gpu.h"
#include "progress.h"
#include "loopback.h"
#include "replay.h"
#include "replay_reference.h"
#include "replay_report.h"
#include "serve.h"
#include "spec.h"
#include "util.h"
#include "weights.h"

#define GPU_SPEC "specs/hackathon.yaml"
#define CPU_SPEC "specs/small.yaml"
#define DEFAULT_DATA "tests/data/small.csv"
#define WEIGHTS_SEED 1
#define GPU_REFERENCE_LIMIT 16 /* the float64 reference of the full model takes seconds a step */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stepfuse demo [--backend auto|cpu|gpu] [options]\n\n"
            "Runs the replay server and the serving loop on loopback over the recorded\n"
            "1,000-request stream (" DEFAULT_DATA ") at its recorded pace, then prints the\n"
            "replay's report: latency, throughput, dropped requests and accuracy against the\n"
            "float64 C reference with the same weights. With a GPU: " GPU_SPEC " on the gpu\n"
            "backend; without: " CPU_SPEC " on the cpu backend (float32). Weights are\n"
            "generated once (seed %d) into the cache directory.\n\n"
            "options:\n"
            "  --backend B       auto (default: gpu when there is one), cpu or gpu\n"
            "  --spec S          another spec\n"
            "  --data F          another recorded stream\n"
            "  --speed X         X times the recorded pace (default 1; 0: as fast as answered)\n"
            "  --json F          also write the report as JSON to F\n"
            "  --cache DIR       where generated weights are kept (default $STEPFUSE_CACHE,\n"
            "                    else $XDG_CACHE_HOME/stepfuse, else ~/.cache/stepfuse)\n"
            "  -v, --verbose     log every score update of the client\n"
            "  -h, --help        this text\n",
            WEIGHTS_SEED);
}

/* A repository file: relative to the working directory, else to the binary (bin/..). */
static const char *repo_file(const char *rel, char *buf, size_t len)
{
    if (access(rel, R_OK) == 0) return rel;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, len, "%s/../%s", exe, rel);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    return rel; /* let the loader name it in its error */
}

typedef struct {
    spec_t spec;
    weights_t w;
    engine_t *engine;
    const char *backend;
} model_t;

static int open_model(const char *spec_path, const char *backend, const char *cache,
                      model_t *m, char *err)
{
    memset(m, 0, sizeof *m);
    if (spec_load(spec_path, &m->spec, err)) return -1;
    if (weights_cached(&m->spec, WEIGHTS_SEED, cache, &m->w, err)) return -1;
    engine_options_t eo = {.backend = backend};
    m->engine = engine_create(&m->spec, &m->w, &eo, err);
    if (!m->engine) {
        weights_free(&m->w);
        return -1;
    }
    m->backend = backend;
    return 0;
}

int cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"backend", required_argument, 0, 'b'}, {"spec", required_argument, 0, 's'},
        {"data", required_argument, 0, 'd'},    {"speed", required_argument, 0, 'x'},
        {"json", required_argument, 0, 'j'},    {"cache", required_argument, 0, 'c'},
        {"verbose", no_argument, 0, 'v'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    static const char *const backends[] = {"auto", "cpu", "gpu", NULL};
    const char *backend = "auto", *spec_arg = NULL, *data_arg = DEFAULT_DATA, *json_path = NULL;
    const char *cache_arg = NULL;
    double speed = 1;
    int verbose = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'b': bad = arg_choice("demo", "--backend", optarg, backends); backend = optarg; break;
        case 's': spec_arg = optarg; break;
        case 'd': data_arg = optarg; break;
        case 'x': bad = arg_double("demo", "--speed", optarg, 0, &speed); break;
        case 'j': json_path = optarg; break;
        case 'c': cache_arg = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "stepfuse demo: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    const int gpus = gpu_available();
    if (!strcmp(backend, "gpu") && !gpus) {
        fprintf(stderr, "stepfuse demo: --backend gpu, but no CUDA device is visible\n");
        return 1;
    }
    int auto_backend = !strcmp(backend, "auto");
    if (auto_backend) backend = gpus ? "gpu" : "cpu";
    char err[ERR_MAX], spec_buf[PATH_MAX + 8], data_buf[PATH_MAX + 8];
    const char *data = repo_file(data_arg, data_buf, sizeof data_buf);

    csv_stream_t s;
    if (csv_stream_load(data, &s, err)) {
        fprintf(stderr, "stepfuse demo: %s\n", err);
        return 1;
    }
    model_t m;
    const char *spec_path = spec_arg ? spec_arg
                                     : repo_file(strcmp(backend, "gpu") ? CPU_SPEC : GPU_SPEC,
                                                 spec_buf, sizeof spec_buf);
    int rc = open_model(spec_path, backend, cache_arg, &m, err);
    if (rc && auto_backend && !strcmp(backend, "gpu") && !spec_arg) {
        fprintf(stderr, "stepfuse demo: gpu backend unavailable (%s); using the cpu backend\n", err);
        backend = "cpu";
        spec_path = repo_file(CPU_SPEC, spec_buf, sizeof spec_buf);
        rc = open_model(spec_path, backend, cache_arg, &m, err);
    }
    if (rc) {
        fprintf(stderr, "stepfuse demo: %s\n", err);
        csv_stream_free(&s);
        return 1;
    }
    rc = 1;
    double *ref = NULL;
    replay_result_t result = {0};
    model_identity_t id;
    model_identity(&m.spec, &m.w, &id);
    if (m.spec.num_features != s.req.num_features) {
        fprintf(stderr, "stepfuse demo: %s has %d features per request, spec %s wants %d\n", data,
                s.req.num_features, m.spec.name, m.spec.num_features);
        goto done;
    }
    fprintf(stderr, "stepfuse demo: %d requests of %s over loopback; client: spec %s, backend "
                    "%s, %d state slots, batches of up to %d\n",
            s.req.n, data, m.spec.name, backend, m.engine->max_symbols, m.engine->max_batch);
    replay_options_t ro = {.speed = speed, .accept_timeout = 30, .drain_timeout = 10,
                           .progress = PROGRESS_AUTO};
    serve_options_t so = {.engine = m.engine, .identity = &id, .verbose = verbose};
    serve_stats_t stats;
    if (loopback_run(&s, ro, so, &result, &stats, err)) {
        fprintf(stderr, "stepfuse demo: %s\n", err);
        goto done;
    }
    int compared = strcmp(backend, "cpu") ? GPU_REFERENCE_LIMIT : s.req.n;
    if (compared > s.req.n) compared = s.req.n;
    ref = xmalloc((size_t)compared * 4 * sizeof *ref);
    if (replay_reference(&m.spec, &m.w, &s, compared, 1, ref, err)) {
        fprintf(stderr, "stepfuse demo: reference run: %s\n", err);
        goto done;
    }
    char backend_desc[64];
    snprintf(backend_desc, sizeof backend_desc, "%s%s", backend,
             strcmp(backend, "cpu") ? "" : " (float32)");
    replay_report_t rep = {.data = data, .spec = m.spec.name, .backend = backend_desc,
                           .reference = "cpu float64", .speed = speed};
    replay_report_make(&result, ref, compared, &rep);
    replay_report_print(stdout, &rep);
    printf("  engine     %ld steps (largest %d requests), %.3f ms mean, %.3f ms max\n",
           stats.batches, stats.max_batch_seen,
           stats.batches ? stats.step_ms_sum / (double)stats.batches : 0.0,
           stats.step_ms_max);
    rc = 0;
    if (json_path && replay_report_write_json(json_path, &rep, err)) {
        fprintf(stderr, "stepfuse demo: %s\n", err);
        rc = 1;
    }
done:
    replay_result_free(&result);
    free(ref);
    engine_destroy(m.engine);
    weights_free(&m.w);
    csv_stream_free(&s);
    return rc;
}
