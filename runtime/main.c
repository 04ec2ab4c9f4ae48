/* bin/stepfuse: one CLI, one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"spec", cmd_spec, "validate a spec and print it resolved, with its weight size"},
    {"weights", cmd_weights, "write deterministic random weights for a spec"},
    {"gen", cmd_gen, "generate the fused CUDA kernel source of a spec"},
    {"compile", cmd_compile, "generate and compile a spec's kernel with NVRTC, report resources"},
    {"bench", cmd_bench, "time the fused step on the GPU, check it against the reference"},
    {"tune", cmd_tune, "balance the towers' shares of the GPU by batch size, print the table"},
    {"stream", cmd_stream, "run a request stream through an engine, compare with expected"},
    {"serve", cmd_serve, "serve inference requests of the game server (the client)"},
    {"replay", cmd_replay, "play a recorded stream to one client, report latency and accuracy"},
    {"demo", cmd_demo, "replay the recorded stream to the serving loop on loopback, report"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: stepfuse COMMAND [options]   (stepfuse COMMAND --help for more)\n\n"
                 "Fused CUDA engine for the xLSTM/Mamba2/RetNet/Hawk ensemble.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "stepfuse: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
