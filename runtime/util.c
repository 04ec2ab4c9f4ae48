#include "util.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int seterr(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, ERR_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

void *xmalloc_at(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "%s:%d: out of host memory (%zu bytes)\n", file, line, n);
        abort();
    }
    return p;
}

void *xcalloc_at(size_t n, size_t m, const char *file, int line)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) {
        fprintf(stderr, "%s:%d: out of host memory (%zu x %zu bytes)\n", file, line, n, m);
        abort();
    }
    return p;
}

void cache_dir(char *out, size_t size)
{
    const char *v;
    if ((v = getenv("STEPFUSE_CACHE")) && *v) snprintf(out, size, "%s", v);
    else if ((v = getenv("XDG_CACHE_HOME")) && *v) snprintf(out, size, "%s/stepfuse", v);
    else snprintf(out, size, "%s/.cache/stepfuse", (v = getenv("HOME")) && *v ? v : "/tmp");
}

int make_dirs(const char *path)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = '\0';
            if (mkdir(p, 0777) && errno != EEXIST) return -1;
            *c = '/';
        }
    return mkdir(p, 0777) && errno != EEXIST ? -1 : 0;
}

int write_file_atomic(const char *path, const void *data, size_t size)
{
    static unsigned counter;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.%ld.%u.tmp", path, (long)getpid(), counter++);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int bad = fwrite(data, 1, size, f) != size;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        const int saved = errno;
        remove(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int remove_tree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void random_uniform(float *v, size_t n, uint64_t seed, double lo, double hi)
{
    uint64_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = (float)(lo + (hi - lo) * ((double)(x >> 11) / 9007199254740992.0));
    }
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

uint16_t bf16_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(u >> 16 | 0x40); /* quiet NaN */
    u += 0x7fffu + (u >> 16 & 1u); /* round to nearest, ties to even; overflow gives inf */
    return (uint16_t)(u >> 16);
}

/* x to the nearest binary float of `fraction` bits whose normal numbers start at 2^min_exp and
 * end below 2^end_exp (ties to even; past the largest: inf). */
static double nearest_float(double x, int fraction, int min_exp, int end_exp)
{
    if (!isfinite(x)) return x;
    if (fabs(x) < ldexp(1.0, min_exp)) /* subnormal: 2^(min_exp - fraction) apart */
        return ldexp(nearbyint(ldexp(x, fraction - min_exp)), min_exp - fraction);
    const int drop = 52 - fraction; /* of a double's 52 fraction bits */
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    u += ((uint64_t)1 << (drop - 1)) - 1 + (u >> drop & 1); /* to nearest, ties to even */
    u &= ~(((uint64_t)1 << drop) - 1);
    memcpy(&x, &u, sizeof x);
    return fabs(x) >= ldexp(1.0, end_exp) ? copysign(INFINITY, x) : x;
}

double bf16_nearest(double x) { return nearest_float(x, 7, -126, 128); }

double fp16_nearest(double x) { return nearest_float(x, 10, -14, 16); }

uint16_t fp16_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint16_t sign = (uint16_t)(u >> 16 & 0x8000u);
    u &= 0x7fffffffu;
    if (u > 0x7f800000u) return sign | 0x7e00; /* quiet NaN */
    if (u >= 0x477ff000u) return sign | 0x7c00; /* from 65520, the midpoint past 65504: inf */
    if (u < 0x38800000u) /* below 2^-14: a subnormal, a multiple of 2^-24 (the scaling is exact) */
        return sign | (uint16_t)nearbyintf(fabsf(x) * 0x1p24f);
    u += 0xfffu + (u >> 13 & 1u); /* to nearest, ties to even, on the 13 bits dropped */
    return sign | (uint16_t)((u - 0x38000000u) >> 13); /* exponent bias 127 -> 15 */
}

float fp16_float(uint16_t h)
{
    const uint32_t e = h >> 10 & 0x1fu, m = h & 0x3ffu;
    float x;
    if (e == 0) {
        x = (float)m * 0x1p-24f;
    } else {
        const uint32_t u = e == 31 ? 0x7f800000u | m << 13 : (e + 112) << 23 | m << 13;
        memcpy(&x, &u, sizeof x);
    }
    return h & 0x8000 ? -x : x;
}

float fp16_round(float x) { return fp16_float(fp16_bits(x)); }

float bf16_round(float x) { return bf16_float(bf16_bits(x)); }

float bf16_float(uint16_t b)
{
    const uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
