/* Helpers shared by the Criterion tests. */
#ifndef STEPFUSE_TESTUTIL_H
#define STEPFUSE_TESTUTIL_H

#include <stddef.h>

/* Path of a file under the shared data folder: $STEPFUSE_SHARED (default ../shared,
 * relative to the repository root where the tests run). Returns a static buffer. */
const char *shared_path(const char *rel);

#endif
