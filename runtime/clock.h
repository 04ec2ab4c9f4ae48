/* Seconds as doubles: wall-clock time for the wire, monotonic time for intervals. */
#ifndef STEPFUSE_CLOCK_H
#define STEPFUSE_CLOCK_H

#include <time.h>

static inline double clock_wall_s(void) /* Unix seconds */
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double clock_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
