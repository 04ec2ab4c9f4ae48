/* stepfuse weights: generate deterministic random weights for a spec, or check a file. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "progress.h"
#include "util.h"
#include "weights.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: stepfuse weights --spec S.yaml -o W.safetensors [--seed N] [--threads N]\n"
            "                        [--progress[=always]]\n"
            "       stepfuse weights --check W.safetensors --spec S.yaml\n\n"
            "Write realistic random fp32 weights for every tensor of the spec's model, with the\n"
            "original state_dict names. The same spec and seed always give the same bytes.\n"
            "With --check, load a weights file, check it against the spec (names, shapes, dtypes,\n"
            "finite values) and summarise it.\n\n"
            "options:\n"
            "  --spec S          model spec (YAML)\n"
            "  -o, --output W    file to write (atomically: a temporary file, then rename)\n"
            "  --seed N          random seed (default 0)\n"
            "  --threads N       generating threads (default: one per core; same bytes)\n"
            "  --progress        progress bar on stderr when it is a terminal\n"
            "  --progress=always progress bar on stderr even when it is not\n"
            "  --check W         validate W against the spec instead of writing\n"
            "  -h, --help        this help\n");
}

static int parse_u64(const char *opt, const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-') {
        fprintf(stderr, "stepfuse weights: %s: '%s' is not a non-negative integer\n", opt, s);
        return -1;
    }
    *v = x;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int check(const char *path, const spec_t *s)
{
    char err[ERR_MAX];
    weights_t w;
    if (weights_load(path, s, &w, err)) {
        fprintf(stderr, "stepfuse weights: %s\n", err);
        return 1;
    }
    /* structure is checked by the loader; values only here, as it reads every byte */
    for (int i = 0; i < w.cat.count; i++)
        for (int64_t k = 0; k < w.cat.t[i].numel; k++)
            if (!isfinite(w.data[i][k])) {
                fprintf(stderr, "stepfuse weights: %s: %s[%" PRId64 "] = %g\n", path,
                        w.cat.t[i].name, k, w.data[i][k]);
                weights_free(&w);
                return 1;
            }
    const char *gen_spec = st_metadata(&w.file, "spec"), *gen_seed = st_metadata(&w.file, "seed");
    printf("%s: OK for spec %s: %d tensors, %" PRId64 " parameters, %zu bytes", path, s->name,
           w.cat.count, w.cat.total_numel, w.file.map_len);
    if (gen_spec && gen_seed) printf(" (generated for spec %s, seed %s)", gen_spec, gen_seed);
    printf("\n");
    weights_free(&w);
    return 0;
}

int cmd_weights(int argc, char **argv)
{
    static const struct option options[] = {
        {"spec", required_argument, NULL, 's'},   {"output", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 'S'},   {"threads", required_argument, NULL, 't'},
        {"progress", optional_argument, NULL, 'p'}, {"check", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *spec_path = NULL, *out_path = NULL, *check_path = NULL;
    uint64_t seed = 0, threads = 0;
    progress_mode_t progress = PROGRESS_OFF;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (c) {
        case 's': spec_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 'c': check_path = optarg; break;
        case 'S':
            if (parse_u64("--seed", optarg, &seed)) return 2;
            break;
        case 't':
            if (parse_u64("--threads", optarg, &threads)) return 2;
            if (threads > 1024) {
                fprintf(stderr, "stepfuse weights: --threads %" PRIu64 " is too many\n", threads);
                return 2;
            }
            break;
        case 'p':
            if (!optarg) {
                progress = PROGRESS_AUTO;
            } else if (!strcmp(optarg, "always")) {
                progress = PROGRESS_ALWAYS;
            } else {
                fprintf(stderr, "stepfuse weights: --progress takes no value or 'always', not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "stepfuse weights: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "stepfuse weights: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!spec_path || (!out_path == !check_path)) {
        fprintf(stderr, "stepfuse weights: need --spec and exactly one of -o or --check (see --help)\n");
        return 2;
    }

    spec_t spec;
    char err[ERR_MAX > SPEC_ERR_MAX ? ERR_MAX : SPEC_ERR_MAX];
    if (spec_load(spec_path, &spec, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (check_path) return check(check_path, &spec);

    double t0 = now_s();
    if (weights_generate_threads(&spec, seed, out_path, progress, (int)threads, err)) {
        fprintf(stderr, "stepfuse weights: %s\n", err);
        return 1;
    }
    double dt = now_s() - t0;
    catalogue_t cat;
    catalogue_build(&spec, &cat);
    double bytes = (double)cat.total_numel * sizeof(float);
    printf("%s: %d tensors, %" PRId64 " parameters, %.1f MB fp32 in %.1f s (%.0f MB/s), seed %" PRIu64
           "\n", out_path, cat.count, cat.total_numel, bytes / 1e6, dt, bytes / 1e6 / dt, seed);
    catalogue_free(&cat);
    return 0;
}
