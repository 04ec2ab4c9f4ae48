/* stepfuse compile: generate a spec's kernel and compile it with NVRTC (no GPU needed);
 * report registers, shared memory and spills, or the compiler log on failure. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "nvrtc_build.h"
#include "spec.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: stepfuse compile --spec SPEC.yaml [--arch sm_90] [--cubin FILE]\n\n"
               "Generate the fused kernel of a spec and compile it with NVRTC (works without a\n"
               "GPU). Prints registers per thread, shared memory, stack and spills, and how\n"
               "many device functions NVVM left out of line (the templates' __noinline__ ones\n"
               "aside), if any; on a compilation error prints the full log, each error\n"
               "followed by the generated line it points at, and exits 1.\n\n"
               "options:\n"
               "  --spec PATH     the spec\n"
               "  --arch SM       target architecture (default sm_90)\n"
               "  --log           also print the full compiler log on success\n"
               "  --cubin FILE    also write the cubin (for cuobjdump -sass FILE)\n"
               "  -h, --help      this text\n");
}

int cmd_compile(int argc, char **argv)
{
    static const struct option opts[] = {{"spec", required_argument, 0, 's'},
                                         {"arch", required_argument, 0, 'a'},
                                         {"log", no_argument, 0, 'l'},
                                         {"cubin", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *spec_path = NULL, *arch = "sm_90", *cubin_path = NULL;
    int show_log = 0, c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': spec_path = optarg; break;
        case 'a': arch = optarg; break;
        case 'l': show_log = 1; break;
        case 'c': cubin_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    spec_t s;
    char *src, file[SPEC_NAME_MAX + 8], err[ERR_MAX];
    size_t len;
    int rc = command_emit("compile", spec_path, optind < argc, usage, &s, &src, &len);
    if (rc) return rc;
    snprintf(file, sizeof file, "%s.cu", s.name);
    nvrtc_build_t b;
    rc = nvrtc_build(src, file, arch, &b, err);
    if (rc) {
        fprintf(stderr, "%s%s\n", b.log ? b.log : "", err);
    } else {
        if (show_log) printf("%s", b.log);
        printf("%s: %s, %zu bytes of cubin\n", file, arch, b.cubin_size);
        printf("  registers/thread %d, shared memory %d bytes, stack frame %d bytes,\n"
               "  spill stores %d bytes, spill loads %d bytes\n",
               b.registers, b.shared_bytes < 0 ? 0 : b.shared_bytes, b.stack_bytes, b.spill_stores,
               b.spill_loads);
        if (b.stray_functions > 0)
            printf("  device functions NVVM left out of line: %d (--log names them); the step is meant to be\n"
                   "  one function but for the templates' __noinline__ ones\n",
                   b.stray_functions);
        if (cubin_path && write_file_atomic(cubin_path, b.cubin, b.cubin_size)) {
            fprintf(stderr, "stepfuse compile: cannot write %s: %s\n", cubin_path, strerror(errno));
            rc = 1;
        }
    }
    nvrtc_build_free(&b);
    free(src);
    return rc ? 1 : 0;
}
