/* stepfuse tune: the towers' shares of the fused kernel's grid, balanced by batch size.
 *
 * The kernel deals its CTAs to the towers by their unit costs weighed per mille by the
 * engine's table (gpu_tower_weights); the step ends with the last tower. For each batch size
 * tune starts from the table's weights and, round by round, times the step, traces one step
 * for each tower's end and moves weight from the towers that end early to the ones that end
 * last (tower_rebalance). The fastest weights are then timed against the table's in turn, and
 * printed as rows of the table. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cli_args.h"
#include "commands.h"
#include "engine.h"
#include "engine_gpu.h"
#include "tower_balance.h"
#include "util.h"

#define MAX_BATCHES 16
#define MAX_ROUNDS 32

static void usage(FILE *out)
{
    fprintf(out,
            "usage: stepfuse tune --spec S [--weights W] [options]\n\n"
            "Balances the towers' shares of the fused kernel's grid for the spec's\n"
            "precision, by batch size. The kernel deals its CTAs to the towers in\n"
            "proportion to their costs weighed by the engine's table (runtime/engine_gpu.c,\n"
            "gpu_tower_weights); the step ends with the last tower. From the table's\n"
            "weights, each round times the step, traces one step for each tower's end and\n"
            "moves weight toward the towers that end last; the fastest round's weights are\n"
            "then timed against the table's, alternately, and printed as the table's rows.\n"
            "The outputs' last bits depend on the split (a pass's column slices are summed\n"
            "by the rows each CTA is dealt): a table is fixed so that answers are\n"
            "reproducible, and tune is how its rows are measured.\n\n"
            "options:\n"
            "  --weights W      weights (default: generated with seed 1, kept in the cache)\n"
            "  --batch LIST     comma-separated batch sizes (default 1,8,16,32,50,64)\n"
            "  --rounds N       rounds of rebalancing per batch size (default 6, up to %d)\n"
            "  --iters N        timed steps per measurement (default 20, after 5 warm-up steps)\n"
            "  --confirm N      timings of the table's and the best weights, alternated\n"
            "                   (default 3; their mean is reported)\n"
            "  --json F         also write the rounds and the results as JSON to F\n"
            "  -h, --help       this text\n",
            MAX_ROUNDS);
}

typedef struct {
    int w[NUM_TOWERS];
    double ms;               /* median step */
    double end[NUM_TOWERS];  /* the towers' ends in the traced step, us */
} round_t;

typedef struct {
    int batch, nrounds, best; /* best: the fastest round */
    round_t round[MAX_ROUNDS];
    double table_ms, best_ms; /* confirmed: mean over the alternated timings */
} tuned_t;

/* The step's median at batch nb with weights w. */
static int time_with(engine_t *e, int nb, const int w[NUM_TOWERS], int iters, double *ms, char *err)
{
    if (gpu_set_tower_weights(e, w, err)) return -1;
    return e->ops->time_step(e, nb, 5, iters, ms, err);
}

static void print_round(int i, const round_t *r, int table)
{
    printf("%6d %4d,%4d,%4d,%4d%-8s %9.3f", i, r->w[0], r->w[1], r->w[2], r->w[3], table ? " (table)" : "", r->ms);
    for (int k = 0; k < NUM_TOWERS; k++) printf(" %8.3f", r->end[k] * 1e-3);
    printf(" %6.1f%%\n", 100 * tower_spread(r->end));
}

static int tune_batch(engine_t *e, int nb, int rounds, int iters, int confirm, tuned_t *t, char *err)
{
    t->batch = nb;
    t->nrounds = 0;
    t->best = 0;
    gpu_tower_weights(nb, e->spec->precision.weights, e->spec->precision.state, t->round[0].w);
    printf("\nbatch %d\n%6s %19s%8s %9s %8s %8s %8s %8s %7s\n", nb, "round", "weights", "", "step ms", "xLSTM",
           "Mamba2", "RetNet", "Hawk", "spread");
    for (int i = 0; i < rounds; i++) {
        round_t *r = &t->round[i];
        if (i > 0) {
            tower_rebalance(t->round[i - 1].w, t->round[i - 1].end, r->w);
            if (!memcmp(r->w, t->round[i - 1].w, sizeof r->w)) break; /* settled */
        }
        trace_report_t rep;
        if (time_with(e, nb, r->w, iters, &r->ms, err) || gpu_trace_report(e, nb, &rep, err)) return -1;
        for (int k = 0; k < NUM_TOWERS; k++) r->end[k] = rep.tower[k].done;
        trace_report_free(&rep);
        t->nrounds = i + 1;
        if (r->ms < t->round[t->best].ms) t->best = i;
        print_round(i, r, i == 0);
    }
    /* the best of several noisy medians is biased low: time it again against the table's */
    const int *table = t->round[0].w, *best = t->round[t->best].w;
    t->table_ms = t->best_ms = 0;
    for (int c = 0; c < confirm; c++) {
        double a, b = 0;
        if (time_with(e, nb, table, iters, &a, err) || (t->best && time_with(e, nb, best, iters, &b, err))) return -1;
        t->table_ms += a / confirm;
        t->best_ms += (t->best ? b : a) / confirm;
    }
    printf("table %d,%d,%d,%d: %.3f ms; best (round %d) %d,%d,%d,%d: %.3f ms (%+.1f%%)\n", table[0], table[1],
           table[2], table[3], t->table_ms, t->best, best[0], best[1], best[2], best[3], t->best_ms,
           100 * (t->best_ms / t->table_ms - 1));
    return 0;
}

static void print_summary(const spec_t *s, const tuned_t *t, int n)
{
    printf("\n%s (weights %s, state %s): the table's weights and the best found\n%5s %19s %9s %19s %9s %7s\n",
           s->name, precision_name(s->precision.weights), precision_name(s->precision.state), "batch", "table",
           "ms", "best", "ms", "change");
    for (int i = 0; i < n; i++) {
        const int *a = t[i].round[0].w, *b = t[i].round[t[i].best].w;
        printf("%5d %4d,%4d,%4d,%4d %9.3f %4d,%4d,%4d,%4d %9.3f %6.1f%%\n", t[i].batch, a[0], a[1], a[2], a[3],
               t[i].table_ms, b[0], b[1], b[2], b[3], t[i].best_ms, 100 * (t[i].best_ms / t[i].table_ms - 1));
    }
    printf("\nas rows of the table (xLSTM, Mamba2, RetNet, Hawk):\n   ");
    for (int i = 0; i < n; i++) {
        const int *b = t[i].round[t[i].best].w;
        printf(" {%d, {%d, %d, %d, %d}},", t[i].batch, b[0], b[1], b[2], b[3]);
    }
    printf("\n");
}

static json_t *weights_json(const int w[NUM_TOWERS])
{
    json_t *a = json_array();
    for (int k = 0; k < NUM_TOWERS; k++) json_array_append_new(a, json_integer(w[k]));
    return a;
}

static int write_json(const char *path, const spec_t *s, const char *device, const tuned_t *t, int n, char *err)
{
    json_t *batches = json_array();
    for (int i = 0; i < n; i++) {
        json_t *rounds = json_array();
        for (int j = 0; j < t[i].nrounds; j++) {
            json_t *ends = json_array();
            for (int k = 0; k < NUM_TOWERS; k++) json_array_append_new(ends, json_real(t[i].round[j].end[k]));
            json_array_append_new(rounds, json_pack("{s:o,s:f,s:o}", "weights", weights_json(t[i].round[j].w),
                                                    "step_ms", t[i].round[j].ms, "tower_done_us", ends));
        }
        json_array_append_new(batches,
                              json_pack("{s:i,s:o,s:f,s:o,s:f,s:o}", "batch", t[i].batch, "table_weights",
                                        weights_json(t[i].round[0].w), "table_ms", t[i].table_ms, "best_weights",
                                        weights_json(t[i].round[t[i].best].w), "best_ms", t[i].best_ms, "rounds",
                                        rounds));
    }
    json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:o}", "spec", s->name, "device", device, "weights_precision",
                            precision_name(s->precision.weights), "state_precision",
                            precision_name(s->precision.state), "batches", batches);
    const int rc = json_dump_file(doc, path, JSON_INDENT(2)) ? seterr(err, "cannot write %s", path) : 0;
    json_decref(doc);
    return rc;
}

static int run(const spec_t *s, const weights_t *w, const int *batches, int n, int rounds, int iters, int confirm,
               tuned_t *t, char *device, size_t device_size, char *err)
{
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return seterr(err, "no CUDA device: tune needs a GPU");
    snprintf(device, device_size, "%s", prop.name);
    int max_b = 1;
    for (int i = 0; i < n; i++) max_b = batches[i] > max_b ? batches[i] : max_b;
    engine_options_t o = {.backend = "gpu", .max_symbols = max_b};
    engine_t *e = engine_create(s, w, &o, err);
    if (!e) return -1;
    int rc = max_b > e->max_batch ? seterr(err, "batch %d exceeds the spec's max_batch %d", max_b, e->max_batch) : 0;
    printf("%s on %s: %d rounds a batch size, %d timed steps each; towers' ends in ms from the traced step's "
           "start\n", s->name, device, rounds, iters);
    for (int i = 0; i < n && !rc; i++) rc = tune_batch(e, batches[i], rounds, iters, confirm, &t[i], err);
    engine_destroy(e);
    return rc;
}

int cmd_tune(int argc, char **argv)
{
    static const struct option opts[] = {
        {"spec", required_argument, 0, 's'},   {"weights", required_argument, 0, 'w'},
        {"batch", required_argument, 0, 'b'},  {"rounds", required_argument, 0, 'r'},
        {"iters", required_argument, 0, 'i'},  {"confirm", required_argument, 0, 'c'},
        {"json", required_argument, 0, 'j'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *spec_path = NULL, *weights_path = NULL, *batch_list = "1,8,16,32,50,64", *json_path = NULL;
    int rounds = 6, iters = 20, confirm = 3, c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': spec_path = optarg; break;
        case 'w': weights_path = optarg; break;
        case 'b': batch_list = optarg; break;
        case 'j': json_path = optarg; break;
        case 'r':
            if (arg_int("tune", "--rounds", optarg, 1, &rounds)) return 2;
            if (rounds > MAX_ROUNDS) {
                fprintf(stderr, "stepfuse tune: --rounds wants at most %d, got %d\n", MAX_ROUNDS, rounds);
                return 2;
            }
            break;
        case 'i':
            if (arg_int("tune", "--iters", optarg, 1, &iters)) return 2;
            break;
        case 'c':
            if (arg_int("tune", "--confirm", optarg, 1, &confirm)) return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!spec_path || optind < argc) {
        fprintf(stderr, "stepfuse tune: --spec is required (and takes no other arguments)\n");
        usage(stderr);
        return 2;
    }
    int batches[MAX_BATCHES], n;
    if (arg_int_list("tune", "--batch", batch_list, 1, 4096, batches, MAX_BATCHES, &n)) return 2;
    spec_t s;
    weights_t w;
    const int setup = command_gpu_model("tune", spec_path, weights_path, &s, &w);
    if (setup) return setup;
    char err[ERR_MAX];
    tuned_t *t = xcalloc((size_t)n, sizeof *t);
    char device[256] = "";
    int rc = run(&s, &w, batches, n, rounds, iters, confirm, t, device, sizeof device, err);
    if (rc) fprintf(stderr, "stepfuse tune: %s\n", err);
    else print_summary(&s, t, n);
    if (!rc && json_path && write_json(json_path, &s, device, t, n, err)) {
        fprintf(stderr, "stepfuse tune: %s\n", err);
        rc = -1;
    }
    free(t);
    weights_free(&w);
    return rc ? 1 : 0;
}
