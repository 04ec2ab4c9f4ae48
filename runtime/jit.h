/* JIT of a generated kernel on the current CUDA device: NVRTC for the device's
 * architecture, a disk cache of cubins, and loading through the runtime API
 * (cudaLibraryLoadData; the binary links cudart statically and needs no driver to start). */
#ifndef STEPFUSE_JIT_H
#define STEPFUSE_JIT_H

#include <stddef.h>

#include <cuda_runtime_api.h>

typedef struct {
    cudaLibrary_t lib;
    cudaKernel_t kernel;
    char arch[16];       /* "sm_90" */
    int grid, threads;   /* cooperative launch shape: every CTA resident */
    int dynamic_smem;    /* bytes of dynamic shared memory per CTA */
    int registers;       /* per thread, from the loaded kernel */
    int from_cache;      /* the cubin came from the disk cache */
} jit_kernel_t;

/* Cubin for src (named `file` in messages) and arch, from the cache or compiled and
 * stored in cache_dir() (atomically: written to a temporary name, then renamed). The key hashes
 * source, options, NVRTC version and arch. *cubin is malloc'd. */
int jit_cubin(const char *src, const char *file, const char *arch, void **cubin, size_t *size,
              int *from_cache, char *err);

/* Compile (or fetch) and load kernel `name` of src for the current device, launched with
 * `threads` per CTA and `dynamic_smem` bytes of dynamic shared memory. */
int jit_load(const char *src, const char *file, const char *name, int threads, int dynamic_smem,
             jit_kernel_t *k, char *err);
void jit_unload(jit_kernel_t *k);

#endif
