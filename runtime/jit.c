/* NVRTC JIT with an on-disk cubin cache (see jit.h). */
#include "jit.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nvrtc_build.h"
#include "util.h"

/* Two FNV-1a 64-bit hashes with different seeds: a 128-bit key. */
static void hash_update(uint64_t h[2], const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h[0] = (h[0] ^ (unsigned char)data[i]) * 0x100000001b3ULL;
        h[1] = (h[1] ^ (unsigned char)data[i]) * 0x100000001b3ULL;
    }
    h[0] = (h[0] ^ 0xff) * 0x100000001b3ULL; /* field separator */
    h[1] = (h[1] ^ 0xff) * 0x100000001b3ULL;
}

static int read_cubin(const char *path, void **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    struct stat st;
    if (fstat(fileno(f), &st) || st.st_size < 64) {
        fclose(f);
        return -1;
    }
    char *buf = xmalloc((size_t)st.st_size);
    int ok = fread(buf, 1, (size_t)st.st_size, f) == (size_t)st.st_size && !memcmp(buf, "\177ELF", 4);
    fclose(f);
    if (!ok) {
        free(buf);
        return -1;
    }
    *data = buf;
    *size = (size_t)st.st_size;
    return 0;
}

int jit_cubin(const char *src, const char *file, const char *arch, void **cubin, size_t *size,
              int *from_cache, char *err)
{
    const char *opts[8];
    char storage[64], version[32], dir[4096], path[4200];
    const int nopts = nvrtc_options(arch, opts, storage);
    nvrtc_version_string(version, sizeof version);
    uint64_t h[2] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    hash_update(h, src, strlen(src));
    for (int i = 0; i < nopts; i++) hash_update(h, opts[i], strlen(opts[i]));
    hash_update(h, version, strlen(version));
    hash_update(h, arch, strlen(arch));
    cache_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%.*s-%s-%016llx%016llx.cubin", dir,
             (int)(strchr(file, '.') ? strchr(file, '.') - file : (long)strlen(file)), file, arch,
             (unsigned long long)h[0], (unsigned long long)h[1]);
    *from_cache = 0;
    if (!read_cubin(path, cubin, size)) {
        *from_cache = 1;
        return 0;
    }
    nvrtc_build_t b;
    if (nvrtc_build(src, file, arch, &b, err)) {
        if (b.log) fprintf(stderr, "%s", b.log);
        nvrtc_build_free(&b);
        return -1;
    }
    if (make_dirs(dir) || write_file_atomic(path, b.cubin, b.cubin_size))
        fprintf(stderr, "stepfuse: warning: cannot store the compiled kernel in %s (%s); continuing\n",
                dir, strerror(errno));
    *cubin = b.cubin;
    *size = b.cubin_size;
    b.cubin = NULL;
    nvrtc_build_free(&b);
    return 0;
}

#define CUDA_OR_FAIL(call, what)                                                        \
    do {                                                                                \
        cudaError_t e_ = (call);                                                        \
        if (e_ != cudaSuccess) return seterr(err, "%s: %s", what, cudaGetErrorString(e_)); \
    } while (0)

int jit_load(const char *src, const char *file, const char *name, int threads, int dynamic_smem,
             jit_kernel_t *k, char *err)
{
    memset(k, 0, sizeof *k);
    int dev;
    struct cudaDeviceProp prop;
    CUDA_OR_FAIL(cudaGetDevice(&dev), "no CUDA device");
    CUDA_OR_FAIL(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
    if (!prop.cooperativeLaunch)
        return seterr(err, "device %s does not support cooperative launches", prop.name);
    snprintf(k->arch, sizeof k->arch, "sm_%d%d", prop.major, prop.minor);
    void *cubin;
    size_t size;
    if (jit_cubin(src, file, k->arch, &cubin, &size, &k->from_cache, err)) return -1;
    cudaError_t e = cudaLibraryLoadData(&k->lib, cubin, NULL, NULL, 0, NULL, NULL, 0);
    free(cubin);
    if (e != cudaSuccess) return seterr(err, "%s: loading the cubin: %s", file, cudaGetErrorString(e));
    CUDA_OR_FAIL(cudaLibraryGetKernel(&k->kernel, k->lib, name), "cudaLibraryGetKernel");
    struct cudaFuncAttributes attr;
    CUDA_OR_FAIL(cudaFuncGetAttributes(&attr, (const void *)k->kernel), "cudaFuncGetAttributes");
    k->registers = attr.numRegs;
    if (attr.sharedSizeBytes + (size_t)dynamic_smem > prop.sharedMemPerBlockOptin)
        return seterr(err, "%s: kernel %s needs %zu bytes of shared memory per CTA; %s allows %zu", file, name,
                      attr.sharedSizeBytes + (size_t)dynamic_smem, prop.name, prop.sharedMemPerBlockOptin);
    CUDA_OR_FAIL(cudaFuncSetAttribute((const void *)k->kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      dynamic_smem),
                 "cudaFuncSetAttribute");
    int per_sm = 0;
    CUDA_OR_FAIL(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, (const void *)k->kernel, threads,
                                                             (size_t)dynamic_smem),
                 "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    if (per_sm < 1)
        return seterr(err, "%s: kernel %s does not fit on one SM (%d registers/thread, %d threads)", file,
                      name, attr.numRegs, threads);
    k->dynamic_smem = dynamic_smem;
    k->threads = threads;
    k->grid = prop.multiProcessorCount * per_sm;
    return 0;
}

void jit_unload(jit_kernel_t *k)
{
    if (k->lib) cudaLibraryUnload(k->lib);
    memset(k, 0, sizeof *k);
}
