#include "util.h"

#include <stdarg.h>

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
