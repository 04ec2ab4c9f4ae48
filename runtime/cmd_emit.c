/* The start that stepfuse gen and compile share (see commands.h). */
#include "commands.h"

#include "emit.h"
#include "util.h"

int command_emit(const char *cmd, const char *spec_path, int stray, void (*usage)(FILE *), spec_t *s,
                 char **src, size_t *len)
{
    if (!spec_path || stray) {
        fprintf(stderr, "stepfuse %s: %s\n", cmd, spec_path ? "unexpected argument" : "--spec is required");
        usage(stderr);
        return 2;
    }
    char err[SPEC_ERR_MAX > ERR_MAX ? SPEC_ERR_MAX : ERR_MAX];
    if (spec_load(spec_path, s, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (emit_kernel(s, spec_path, src, len, err)) {
        fprintf(stderr, "stepfuse %s: %s\n", cmd, err);
        return 1;
    }
    return 0;
}
