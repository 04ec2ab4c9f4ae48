/* stepfuse replay: a local game server that plays a recorded stream to one client. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli_args.h"
#include "commands.h"
#include "csv_stream.h"
#include "net.h"
#include "progress.h"
#include "replay.h"
#include "replay_reference.h"
#include "replay_report.h"
#include "spec.h"
#include "util.h"
#include "weights.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stepfuse replay --data stream.csv --listen [HOST:]PORT [options]\n\n"
            "Plays a recorded request stream (columns symbol, delay_ms, feature_00..,\n"
            "target_00..03) to one client over the serving protocol, at its recorded pace,\n"
            "then prints a report: requests sent/answered/dropped, latency p50/p90/p99/max\n"
            "(send to answer), throughput, and with --spec and --weights the accuracy of the\n"
            "answers against a reference run of the same weights on the cpu engine.\n"
            "Each answer gets a score_update: latency, and as a stand-in for the game's\n"
            "scoring, accuracy = fraction of towers with the sign of the recorded target and\n"
            "pnl = mean of sign(prediction) * target.\n\n"
            "options:\n"
            "  --data F               the recorded stream (CSV)\n"
            "  --listen [HOST:]PORT   where to listen (HOST default 127.0.0.1; PORT 0: any)\n"
            "  --speed X              X times the recorded pace (default 1); 0: each request as\n"
            "                         soon as the window below has room\n"
            "  --window N             --speed 0: requests in flight at most (default 32)\n"
            "  --spec S --weights W   the client's model, for the reference run\n"
            "  --reference R          cpu (float64, default with --spec), cpu-fp32, or none\n"
            "  --reference-limit N    compare only the first N requests (the reference of a\n"
            "                         large model is slow on a cpu)\n"
            "  --json F               also write the report as JSON to F\n"
            "  --accept-timeout SEC   wait this long for the client to register (default 60)\n"
            "  --drain-timeout SEC    wait this long for the last answers (default 10)\n"
            "  -h, --help             this text\n");
}

int cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},           {"listen", required_argument, 0, 'l'},
        {"speed", required_argument, 0, 'x'},          {"window", required_argument, 0, 'n'},
        {"spec", required_argument, 0, 's'},           {"weights", required_argument, 0, 'w'},
        {"reference", required_argument, 0, 'r'},      {"reference-limit", required_argument, 0, 'L'},
        {"json", required_argument, 0, 'j'},           {"accept-timeout", required_argument, 0, 'a'},
        {"drain-timeout", required_argument, 0, 't'},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    static const char *const references[] = {"cpu", "cpu-fp32", "none", NULL};
    const char *data = NULL, *listen_at = NULL, *spec_path = NULL, *weights_path = NULL;
    const char *reference = NULL, *json_path = NULL;
    int reference_limit = 0;
    replay_options_t ro = {.speed = 1, .accept_timeout = 60, .drain_timeout = 10,
                           .progress = PROGRESS_AUTO};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'd': data = optarg; break;
        case 'l': listen_at = optarg; break;
        case 'x': bad = arg_double("replay", "--speed", optarg, 0, &ro.speed); break;
        case 'n': bad = arg_int("replay", "--window", optarg, 1, &ro.window); break;
        case 's': spec_path = optarg; break;
        case 'w': weights_path = optarg; break;
        case 'r': bad = arg_choice("replay", "--reference", optarg, references); reference = optarg; break;
        case 'L': bad = arg_int("replay", "--reference-limit", optarg, 1, &reference_limit); break;
        case 'j': json_path = optarg; break;
        case 'a': bad = arg_double("replay", "--accept-timeout", optarg, 0, &ro.accept_timeout); break;
        case 't': bad = arg_double("replay", "--drain-timeout", optarg, 0, &ro.drain_timeout); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) return 2;
    }
    if (!data || !listen_at || optind < argc) {
        fprintf(stderr, "stepfuse replay: --data and --listen are required%s\n",
                optind < argc ? " (and there are stray arguments)" : "");
        usage(stderr);
        return 2;
    }
    if (!reference) reference = spec_path ? "cpu" : "none";
    int use_reference = strcmp(reference, "none") != 0;
    if ((use_reference || spec_path || weights_path) && (!spec_path || !weights_path)) {
        fprintf(stderr, "stepfuse replay: the reference run needs both --spec and --weights\n");
        return 2;
    }
    char host[NET_HOST_MAX], err[ERR_MAX];
    int port;
    if (net_parse_addr(listen_at, "127.0.0.1", host, &port, err)) {
        fprintf(stderr, "stepfuse replay: --listen: %s\n", err);
        return 2;
    }

    csv_stream_t s;
    if (csv_stream_load(data, &s, err)) {
        fprintf(stderr, "stepfuse replay: %s\n", err);
        return 1;
    }
    spec_t spec;
    weights_t w = {0};
    int rc = 1;
    double *ref = NULL;
    replay_result_t result = {0};
    replay_server_t srv = {.fd = -1};
    if (use_reference) {
        if (spec_load(spec_path, &spec, err)) {
            fprintf(stderr, "%s\n", err);
            goto done;
        }
        if (spec.num_features != s.req.num_features) {
            fprintf(stderr, "stepfuse replay: %s has %d features per request, spec %s wants %d\n",
                    data, s.req.num_features, spec.name, spec.num_features);
            goto done;
        }
        if (weights_load(weights_path, &spec, &w, err)) {
            fprintf(stderr, "stepfuse replay: %s\n", err);
            goto done;
        }
    }
    if (replay_listen(&srv, host, port, err)) {
        fprintf(stderr, "stepfuse replay: %s\n", err);
        goto done;
    }
    fprintf(stderr, "stepfuse replay: %d requests from %s; listening on %s:%d\n", s.req.n, data,
            host, srv.port);
    if (replay_serve(&srv, &s, &ro, &result, err)) {
        fprintf(stderr, "stepfuse replay: %s\n", err);
        goto done;
    }
    int compared = 0;
    if (use_reference) {
        compared = reference_limit > 0 && reference_limit < s.req.n ? reference_limit : s.req.n;
        fprintf(stderr, "stepfuse replay: reference run of %d requests (cpu, %s)\n", compared,
                strcmp(reference, "cpu") ? "float32" : "float64");
        ref = xmalloc((size_t)compared * 4 * sizeof *ref);
        if (replay_reference(&spec, &w, &s, compared, !strcmp(reference, "cpu"), ref, err)) {
            fprintf(stderr, "stepfuse replay: reference run: %s\n", err);
            goto done;
        }
    }
    replay_report_t rep = {.data = data, .spec = use_reference ? spec.name : NULL,
                           .reference = !use_reference ? NULL
                                        : strcmp(reference, "cpu") ? "cpu float32"
                                                                   : "cpu float64",
                           .speed = ro.speed};
    replay_report_make(&result, ref, compared, &rep);
    replay_report_print(stdout, &rep);
    rc = 0;
    if (json_path && replay_report_write_json(json_path, &rep, err)) {
        fprintf(stderr, "stepfuse replay: %s\n", err);
        rc = 1;
    }
done:
    replay_close(&srv);
    replay_result_free(&result);
    free(ref);
    if (use_reference) weights_free(&w);
    csv_stream_free(&s);
    return rc;
}
