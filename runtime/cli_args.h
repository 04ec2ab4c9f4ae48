/* Option values of the serving commands, checked with messages that name the command and
 * the option: "stepfuse serve: --snapshot-every wants a number >= 0, got 'x'". */
#ifndef STEPFUSE_CLI_ARGS_H
#define STEPFUSE_CLI_ARGS_H

int arg_double(const char *cmd, const char *opt, const char *text, double min, double *out);
int arg_int(const char *cmd, const char *opt, const char *text, int min, int *out);
/* a comma-separated list of 1..cap integers in [min, max] */
int arg_int_list(const char *cmd, const char *opt, const char *text, int min, int max, int *out, int cap, int *n);
/* text must be one of the NULL-terminated choices */
int arg_choice(const char *cmd, const char *opt, const char *text, const char *const *choices);

#endif
