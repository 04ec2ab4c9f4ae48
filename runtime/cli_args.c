#include "cli_args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int arg_double(const char *cmd, const char *opt, const char *text, double min, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno || !isfinite(v) || v < min) {
        fprintf(stderr, "stepfuse %s: %s wants a number >= %g, got '%s'\n", cmd, opt, min, text);
        return -1;
    }
    *out = v;
    return 0;
}

int arg_int(const char *cmd, const char *opt, const char *text, int min, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < min || v > INT_MAX) {
        fprintf(stderr, "stepfuse %s: %s wants an integer >= %d, got '%s'\n", cmd, opt, min,
                text);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int arg_choice(const char *cmd, const char *opt, const char *text, const char *const *choices)
{
    for (int i = 0; choices[i]; i++)
        if (!strcmp(text, choices[i])) return 0;
    fprintf(stderr, "stepfuse %s: %s is one of", cmd, opt);
    for (int i = 0; choices[i]; i++) fprintf(stderr, "%s %s", i ? "," : "", choices[i]);
    fprintf(stderr, "; got '%s'\n", text);
    return -1;
}

int arg_int_list(const char *cmd, const char *opt, const char *text, int min, int max, int *out, int cap, int *n)
{
    *n = 0;
    for (const char *p = text; *p || !*n;) {
        char *end;
        errno = 0;
        const long v = strtol(p, &end, 10);
        if (end == p || errno || v < min || v > max || (*end && (*end != ',' || !end[1])) || *n == cap) {
            fprintf(stderr, "stepfuse %s: %s wants up to %d comma-separated integers %d..%d, got '%s'\n", cmd, opt,
                    cap, min, max, text);
            return -1;
        }
        out[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return 0;
}
