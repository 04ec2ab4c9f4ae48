/* One timestamped log line, "[who HH:MM:SS.mmm] message", written with a single call so
 * the lines of several threads never interleave. */
#ifndef STEPFUSE_LOGLINE_H
#define STEPFUSE_LOGLINE_H

#include <stdio.h>

/* out: NULL = stderr */
void log_line(FILE *out, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
