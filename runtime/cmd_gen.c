/* stepfuse gen: write the fused kernel source of a spec to <dir>/<name>.cu. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
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
    spec_t s;
    char *src;
    size_t len;
    int rc = command_emit("gen", spec_path, optind < argc, usage, &s, &src, &len);
    if (rc) return rc;
    if (to_stdout) {
        rc = fwrite(src, 1, len, stdout) != len;
    } else {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.cu", dir, s.name);
        if (make_dirs(dir) || write_file_atomic(path, src, len)) {
            fprintf(stderr, "stepfuse gen: %s: %s\n", path, strerror(errno));
            rc = 1;
        } else {
            printf("%s\n", path);
        }
    }
    free(src);
    return rc;
}
