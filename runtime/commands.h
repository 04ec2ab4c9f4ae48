/* Subcommands of bin/stepfuse: each takes argc/argv after the command word removed
 * (argv[0] is the command name) and returns the process exit code. */
#ifndef STEPFUSE_COMMANDS_H
#define STEPFUSE_COMMANDS_H

int cmd_spec(int argc, char **argv);
int cmd_stream(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_weights(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
