/* Small helpers shared by every part: error messages, checked allocation. */
#ifndef STEPFUSE_UTIL_H
#define STEPFUSE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Functions that can fail take `char *err` (ERR_MAX bytes), write a one-line message
 * there and return -1; they return 0 on success. */
#define ERR_MAX 1024

__attribute__((format(printf, 2, 3))) int seterr(char *err, const char *fmt, ...);

/* Abort with file:line on allocation failure: out of host memory is not recoverable here. */
#define xmalloc(n) xmalloc_at((n), __FILE__, __LINE__)
#define xcalloc(n, m) xcalloc_at((n), (m), __FILE__, __LINE__)
void *xmalloc_at(size_t n, const char *file, int line);
void *xcalloc_at(size_t n, size_t m, const char *file, int line);

/* Folder for cubins and generated weights: $STEPFUSE_CACHE, else $XDG_CACHE_HOME/stepfuse,
 * else $HOME/.cache/stepfuse. */
void cache_dir(char *out, size_t size);

/* mkdir -p; 0 or -1 with errno set. */
int make_dirs(const char *path);

/* Write size bytes to path through a temporary name unique to this process, then rename:
 * readers see the whole file or none, and two processes writing the same path both succeed.
 * 0, or -1 with errno set. */
int write_file_atomic(const char *path, const void *data, size_t size);

/* rm -rf of a folder this program made; 0 or -1 with errno set. */
int remove_tree(const char *path);

/* n values uniform in [lo, hi) from a xorshift64 stream started at seed (nonzero):
 * deterministic inputs for benchmarks and tests. */
void random_uniform(float *v, size_t n, uint64_t seed, double lo, double hi);

/* Median of n > 0 values; sorts v. */
double median(double *v, size_t n);

/* The bfloat16 nearest to x (ties to even; NaN stays NaN) as its 16 bits, and as a float;
 * bf16_nearest rounds a double directly (not through float), bf16's range and subnormals. */
uint16_t bf16_bits(float x);
float bf16_round(float x);
/* The float of bf16 bits b (the top half of an fp32: exact). */
float bf16_float(uint16_t b);
double bf16_nearest(double x);

/* The same for IEEE half precision (fp16: 10 fraction bits, normal from 2^-14, subnormals
 * 2^-24 apart, beyond 65504 inf). The float functions work on the bits (a few ns a value: a
 * full-size model's 2e9 weights are rounded as they load); fp16_float is exact. */
uint16_t fp16_bits(float x);
float fp16_round(float x);
float fp16_float(uint16_t h);
double fp16_nearest(double x);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
