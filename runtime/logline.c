#include "logline.h"

#include <stdarg.h>
#include <time.h>

void log_line(FILE *out, const char *who, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "[%s %02d:%02d:%02d.%03ld] ", who, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (!out) out = stderr;
    fprintf(out, "%s\n", line);
    fflush(out);
}
