/* A one-line progress bar on stderr: done / total, rate and ETA, redrawn at most ~10 times
 * a second. Shared by long jobs (weight generation, stream replay). */
#ifndef STEPFUSE_PROGRESS_H
#define STEPFUSE_PROGRESS_H

#include <stdint.h>

typedef enum {
    PROGRESS_OFF = 0,
    PROGRESS_AUTO = 1,   /* only when stderr is a terminal */
    PROGRESS_ALWAYS = 2, /* even into a pipe or a log file */
} progress_mode_t;

typedef struct progress progress_t;

/* unit: NULL counts bytes (shown as kB/MB/GB, rate in MB/s); otherwise a count unit such as
 * "req". Returns NULL when the mode says not to show a bar; every call accepts NULL. */
progress_t *progress_start(const char *label, uint64_t total, const char *unit,
                           progress_mode_t mode);
void progress_update(progress_t *p, uint64_t done);
/* Draw the final state, end the line and free p. */
void progress_finish(progress_t *p);

#endif
