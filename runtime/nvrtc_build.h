/* Compiling generated kernel sources with NVRTC (no GPU needed): cubin plus the ptxas
 * resource report, or the full compiler log with the generated lines it points at. */
#ifndef STEPFUSE_NVRTC_BUILD_H
#define STEPFUSE_NVRTC_BUILD_H

#include <stddef.h>

typedef struct {
    void *cubin; /* malloc'd */
    size_t cubin_size;
    char *log;   /* malloc'd: the NVRTC log; on failure each error is followed by the quoted line */
    int registers, shared_bytes, stack_bytes, spill_stores, spill_loads; /* -1: not reported */
    int stray_functions; /* device functions NVVM left out of line, not counting the templates'
                          * __noinline__ ones: 0 where it inlined the rest into the kernel */
} nvrtc_build_t;

/* The options every build uses for arch ("sm_90"), plus --generate-line-info where
 * $STEPFUSE_LINEINFO is set and not "0": written into opts (at most 8 entries, each pointing
 * into storage, which needs 64 bytes). Returns the count. */
int nvrtc_options(const char *arch, const char **opts, char *storage);

/* "13.0" */
void nvrtc_version_string(char *out, size_t size);

/* Compile src (named `file` in messages) for arch. On failure returns -1 with a one-line
 * summary in err; b->log then holds the annotated log (caller frees with nvrtc_build_free). */
int nvrtc_build(const char *src, const char *file, const char *arch, nvrtc_build_t *b, char *err);
void nvrtc_build_free(nvrtc_build_t *b);

#endif
