/* Subcommands of bin/stepfuse: each takes argc/argv after the command word removed
 * (argv[0] is the command name) and returns the process exit code. */
#ifndef STEPFUSE_COMMANDS_H
#define STEPFUSE_COMMANDS_H

#include <stddef.h>
#include <stdio.h>

#include "spec.h"
#include "weights.h"

int cmd_spec(int argc, char **argv);
int cmd_stream(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_weights(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/* What gen and compile share after their options: --spec given and no stray argument, the
 * spec loaded, its kernel emitted. 0 with *src (malloc'd) and *len, else the exit code
 * after saying why (with the usage when --spec is missing or an argument is stray). */
int command_emit(const char *cmd, const char *spec_path, int stray, void (*usage)(FILE *), spec_t *s,
                 char **src, size_t *len);

/* What bench and tune share after their options: the spec at spec_path loaded, a GPU present
 * and the spec's weights loaded (the file at weights_path, or NULL: generated with seed 1 and
 * kept in the weights cache). 0, else the exit code after saying why. */
int command_gpu_model(const char *cmd, const char *spec_path, const char *weights_path, spec_t *s, weights_t *w);

#endif
