/* NVRTC compilation of generated kernels (see nvrtc_build.h). */
#include "nvrtc_build.h"

#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "util.h"

int nvrtc_options(const char *arch, const char **opts, char *storage)
{
    snprintf(storage, 64, "--gpu-architecture=%s", arch);
    opts[0] = storage;
    opts[1] = "--std=c++17";
    opts[2] = "--ptxas-options=-v"; /* registers, shared memory, spills into the log */
    /* source lines in the cubin, for a profiler's per-line view; part of the cache key */
    const char *lineinfo = getenv("STEPFUSE_LINEINFO");
    if (lineinfo && *lineinfo && strcmp(lineinfo, "0")) {
        opts[3] = "--generate-line-info";
        return 4;
    }
    return 3;
}

void nvrtc_version_string(char *out, size_t size)
{
    int major = 0, minor = 0;
    nvrtcVersion(&major, &minor);
    snprintf(out, size, "%d.%d", major, minor);
}

/* Number after `key` in the ptxas report, or -1. */
static int report_value(const char *log, const char *before, const char *key)
{
    const char *p = strstr(log, before ? before : key);
    if (!p) return -1;
    const char *k = before ? strstr(p, key) : p;
    if (!k) return -1;
    /* "Used 40 registers": the number precedes the key; "N bytes smem": likewise */
    const char *q = k;
    while (q > log && q[-1] == ' ') q--;
    while (q > log && q[-1] >= '0' && q[-1] <= '9') q--;
    return atoi(q);
}

/* The templates' functions called out of line on purpose (__noinline__): StateStream's log,
 * staged and appended once a task (templates/common.cu). */
static const char *const noinline_functions[] = {"stage_log", "append_log"};

/* ptxas reports each function it compiles ("Function properties for NAME"): the kernels
 * ("Compiling entry function 'NAME'"), the templates' __noinline__ functions and any other
 * device function NVVM did not inline. Counts the last. */
static int count_stray_functions(const char *log)
{
    static const char key[] = "Function properties for ";
    int n = 0;
    for (const char *p = log; (p = strstr(p, key)); p++) {
        const char *name = p + strlen(key);
        const int len = (int)strcspn(name, "\n");
        char entry[512], function[512];
        snprintf(entry, sizeof entry, "entry function '%.*s'", len, name);
        snprintf(function, sizeof function, "%.*s", len, name);
        int meant = strstr(log, entry) != NULL;
        for (size_t i = 0; i < sizeof noinline_functions / sizeof *noinline_functions; i++)
            meant |= strstr(function, noinline_functions[i]) != NULL;
        n += !meant;
    }
    return n;
}

/* Append the log, quoting the source line after every "file(N): " message. */
static char *annotate(const char *log, const char *src, const char *file)
{
    size_t cap = strlen(log) * 2 + 4096, len = 0;
    char *out = xmalloc(cap);
    const size_t flen = strlen(file);
    for (const char *line = log; *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line + 1) : strlen(line);
        char quote[512] = "";
        if (!strncmp(line, file, flen) && line[flen] == '(') {
            long lineno = strtol(line + flen + 1, NULL, 10);
            const char *s = src;
            for (long i = 1; i < lineno && s; i++) {
                s = strchr(s, '\n');
                if (s) s++;
            }
            if (s && lineno > 0) {
                const char *e = strchr(s, '\n');
                int sl = e ? (int)(e - s) : (int)strlen(s);
                snprintf(quote, sizeof quote, "    | %ld: %.*s\n", lineno, sl > 400 ? 400 : sl, s);
            }
        }
        size_t need = len + n + strlen(quote) + 2;
        if (need > cap) {
            cap = need * 2;
            char *grown = xmalloc(cap);
            memcpy(grown, out, len);
            free(out);
            out = grown;
        }
        memcpy(out + len, line, n);
        len += n;
        if (!eol) out[len++] = '\n';
        memcpy(out + len, quote, strlen(quote));
        len += strlen(quote);
        line += n;
    }
    out[len] = '\0';
    return out;
}

int nvrtc_build(const char *src, const char *file, const char *arch, nvrtc_build_t *b, char *err)
{
    memset(b, 0, sizeof *b);
    b->registers = b->shared_bytes = b->stack_bytes = b->spill_stores = b->spill_loads = -1;
    /* NVRTC (CUDA 12.9+) answers a repeated compile of the same code from its own cache
     * (~/.nv/ComputeCache where a driver is present), without ptxas and so without the
     * resource report; a device variable holding a per-build nonce, appended after the
     * last line, makes every build a real one. The project's cubin cache (jit.c) is what
     * saves compiles. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    static unsigned builds;
    const unsigned long long nonce = ((unsigned long long)getpid() << 40) ^
                                     ((unsigned long long)now.tv_sec << 20) ^
                                     (unsigned long long)now.tv_nsec ^ builds++;
    const size_t len = strlen(src);
    char *text = xmalloc(len + 96);
    memcpy(text, src, len);
    snprintf(text + len, 96, "\n__device__ unsigned long long stepfuse_build_nonce = %lluULL;\n", nonce);
    nvrtcProgram prog;
    nvrtcResult r = nvrtcCreateProgram(&prog, text, file, 0, NULL, NULL);
    free(text);
    if (r != NVRTC_SUCCESS)
        return seterr(err, "%s: nvrtcCreateProgram: %s", file, nvrtcGetErrorString(r));
    const char *opts[8];
    char storage[64];
    int nopts = nvrtc_options(arch, opts, storage);
    nvrtcResult cr = nvrtcCompileProgram(prog, nopts, opts);
    size_t log_size = 0;
    nvrtcGetProgramLogSize(prog, &log_size);
    char *raw = xmalloc(log_size + 1);
    raw[0] = '\0';
    nvrtcGetProgramLog(prog, raw);
    raw[log_size] = '\0';
    if (cr != NVRTC_SUCCESS) {
        b->log = annotate(raw, src, file);
        free(raw);
        nvrtcDestroyProgram(&prog);
        return seterr(err, "%s: NVRTC compilation for %s failed: %s", file, arch, nvrtcGetErrorString(cr));
    }
    b->log = raw;
    b->registers = report_value(raw, NULL, "registers");
    b->shared_bytes = report_value(raw, "Used", "bytes smem");
    b->stack_bytes = report_value(raw, NULL, "bytes stack frame");
    b->spill_stores = report_value(raw, NULL, "bytes spill stores");
    b->spill_loads = report_value(raw, NULL, "bytes spill loads");
    b->stray_functions = count_stray_functions(raw);
    if ((r = nvrtcGetCUBINSize(prog, &b->cubin_size)) != NVRTC_SUCCESS || b->cubin_size == 0) {
        nvrtcDestroyProgram(&prog);
        return seterr(err, "%s: no cubin for %s: %s", file, arch, nvrtcGetErrorString(r));
    }
    b->cubin = xmalloc(b->cubin_size);
    nvrtcGetCUBIN(prog, b->cubin);
    nvrtcDestroyProgram(&prog);
    return 0;
}

void nvrtc_build_free(nvrtc_build_t *b)
{
    free(b->cubin);
    free(b->log);
    memset(b, 0, sizeof *b);
}
