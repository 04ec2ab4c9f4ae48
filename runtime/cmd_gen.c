/* stepfuse gen: write the fused kernel source of a spec to <dir>/<name>.cu. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "emit.h"
#include "spec.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: stepfuse gen --spec SPEC.yaml [-o DIR]\n\n"
               "Generate the fused CUDA step kernel of a spec into DIR/<spec name>.cu\n"
               "(default DIR: out). The output is deterministic: same spec, same bytes.\n\n"
               "options:\n"
               "  --spec PATH      the spec\n"
               "  -o, --out DIR    output folder (created if missing; default out)\n"
               "  --stdout         write the source to standard output instead\n"
               "  -h, --help       this text\n");
}

static int write_file(const char path[4096], const char *data, size_t len, char *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return seterr(err, "%s: %s", tmp, strerror(errno));
    int bad = fwrite(data, 1, len, f) != len;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return seterr(err, "%s: write failed: %s", path, strerror(errno));
    }
    return 0;
}

int cmd_gen(int argc, char **argv)
{
    static const struct option opts[] = {{"spec", required_argument, 0, 's'},
                                         {"out", required_argument, 0, 'o'},
                                         {"stdout", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *spec_path = NULL, *dir = "out";
    int to_stdout = 0, c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': spec_path = optarg; break;
        case 'o': dir = optarg; break;
        case 'c': to_stdout = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!spec_path || optind < argc) {
        fprintf(stderr, "stepfuse gen: %s\n", spec_path ? "unexpected argument" : "--spec is required");
        usage(stderr);
        return 2;
    }
    spec_t s;
    char err[SPEC_ERR_MAX > ERR_MAX ? SPEC_ERR_MAX : ERR_MAX];
    if (spec_load(spec_path, &s, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char *src;
    size_t len;
    if (emit_kernel(&s, spec_path, &src, &len, err)) {
        fprintf(stderr, "stepfuse gen: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (to_stdout) {
        rc = fwrite(src, 1, len, stdout) != len;
    } else {
        char path[4096];
        if (mkdir(dir, 0777) && errno != EEXIST) {
            fprintf(stderr, "stepfuse gen: %s: %s\n", dir, strerror(errno));
            free(src);
            return 1;
        }
        snprintf(path, sizeof path, "%s/%s.cu", dir, s.name);
        if (write_file(path, src, len, err)) {
            fprintf(stderr, "stepfuse gen: %s\n", err);
            rc = 1;
        } else {
            printf("%s\n", path);
        }
    }
    free(src);
    return rc;
}
