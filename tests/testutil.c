#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

const char *shared_path(const char *rel)
{
    static _Thread_local char buf[4096];
    const char *root = getenv("STEPFUSE_SHARED");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "../shared", rel);
    return buf;
}
