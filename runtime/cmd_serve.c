/* stepfuse serve: the serving loop as a client of the game server. */
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cli_args.h"
#include "commands.h"
#include "engine.h"
#include "net.h"
#include "serve.h"
#include "snapshot.h"
#include "spec.h"
#include "util.h"
#include "weights.h"

static atomic_int stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_requested, 1);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stepfuse serve --spec S --weights W --connect HOST:PORT [options]\n\n"
            "Connects to the game server, registers, and answers inference requests: whatever\n"
            "is pending runs as one engine step, answered at once, while the next batch is\n"
            "gathered. Heartbeat every 5 s; score updates and server errors are logged on\n"
            "stderr. A lost connection is re-established with exponential backoff (0.1 s up\n"
            "to 5 s), keeping every symbol's state. Stop with SIGINT or SIGTERM.\n\n"
            "options:\n"
            "  --spec S               model spec (YAML)\n"
            "  --weights W            weights (safetensors) for the spec\n"
            "  --connect HOST:PORT    the game server\n"
            "  --backend cpu|gpu      engine (default cpu)\n"
            "  --precision fp32|fp64  cpu backend compute type (default fp32)\n"
            "  --max-symbols N        state slots (default: the spec's batch.max_symbols);\n"
            "                         requests of further symbols are refused\n"
            "  --state-file F         restore all symbol states from F at start (if it exists)\n"
            "                         and save them there on SIGINT/SIGTERM; F is refused\n"
            "                         when made for another spec or other weights\n"
            "  --snapshot-every SEC   also save the state file every SEC seconds\n"
            "  --reconnect-for SEC    give up after SEC seconds without a server (default:\n"
            "                         never)\n"
            "  -v, --verbose          log every score update and heartbeat\n"
            "  -h, --help             this text\n");
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"spec", required_argument, 0, 's'},         {"weights", required_argument, 0, 'w'},
        {"connect", required_argument, 0, 'c'},      {"backend", required_argument, 0, 'b'},
        {"precision", required_argument, 0, 'p'},    {"max-symbols", required_argument, 0, 'm'},
        {"state-file", required_argument, 0, 'f'},   {"snapshot-every", required_argument, 0, 'e'},
        {"reconnect-for", required_argument, 0, 'r'}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},               {0, 0, 0, 0}};
    static const char *const backends[] = {"cpu", "gpu", NULL};
    static const char *const precisions[] = {"fp32", "fp64", NULL};
    const char *spec_path = NULL, *weights_path = NULL, *address = NULL, *precision = "fp32";
    engine_options_t eo = {.backend = "cpu"};
    serve_options_t so = {.stop = &stop_requested};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 's': spec_path = optarg; break;
        case 'w': weights_path = optarg; break;
        case 'c': address = optarg; break;
        case 'b': bad = arg_choice("serve", "--backend", optarg, backends); eo.backend = optarg; break;
        case 'p': bad = arg_choice("serve", "--precision", optarg, precisions); precision = optarg; break;
        case 'm': bad = arg_int("serve", "--max-symbols", optarg, 1, &eo.max_symbols); break;
        case 'f': so.state_file = optarg; break;
        case 'e': bad = arg_double("serve", "--snapshot-every", optarg, 0, &so.snapshot_every); break;
        case 'r': bad = arg_double("serve", "--reconnect-for", optarg, 0, &so.reconnect_for); break;
        case 'v': so.verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) return 2;
    }
    if (!spec_path || !weights_path || !address || optind < argc) {
        fprintf(stderr, "stepfuse serve: --spec, --weights and --connect are required%s\n",
                optind < argc ? " (and there are stray arguments)" : "");
        usage(stderr);
        return 2;
    }
    char host[NET_HOST_MAX], err[ERR_MAX];
    if (net_parse_addr(address, NULL, host, &so.port, err)) {
        fprintf(stderr, "stepfuse serve: --connect: %s\n", err);
        return 2;
    }
    if (so.port == 0) {
        fprintf(stderr, "stepfuse serve: --connect: port 0 is not a server's port\n");
        return 2;
    }
    so.host = host;
    if (so.snapshot_every > 0 && !so.state_file) {
        fprintf(stderr, "stepfuse serve: --snapshot-every needs --state-file\n");
        return 2;
    }
    eo.fp64 = !strcmp(precision, "fp64");

    spec_t spec;
    weights_t w;
    if (spec_load(spec_path, &spec, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (weights_load(weights_path, &spec, &w, err)) {
        fprintf(stderr, "stepfuse serve: %s\n", err);
        return 1;
    }
    engine_t *e = engine_create(&spec, &w, &eo, err);
    if (!e) {
        fprintf(stderr, "stepfuse serve: %s\n", err);
        weights_free(&w);
        return 1;
    }
    model_identity_t id;
    model_identity(&spec, &w, &id);
    so.engine = e;
    so.identity = &id;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "stepfuse serve: spec %s, backend %s%s, %d state slots, batches of up to %d\n",
            spec.name, eo.backend, strcmp(eo.backend, "cpu") ? "" : eo.fp64 ? " (fp64)" : " (fp32)",
            e->max_symbols, e->max_batch);
    serve_stats_t stats;
    int rc = serve_run(&so, &stats, err);
    if (rc) fprintf(stderr, "stepfuse serve: %s\n", err);
    engine_destroy(e);
    weights_free(&w);
    return rc ? 1 : 0;
}
