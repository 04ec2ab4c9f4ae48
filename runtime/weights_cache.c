/* Generated weights kept in the cache folder, so that demos and benchmarks of a spec
 * without a checkpoint generate them once. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"
#include "weights.h"

int weights_cached(const spec_t *s, uint64_t seed, const char *dir, weights_t *w, char *err)
{
    char folder[PATH_MAX], path[PATH_MAX + 128];
    if (dir)
        snprintf(folder, sizeof folder, "%s", dir);
    else
        cache_dir(folder, sizeof folder);
    snprintf(path, sizeof path, "%s/%s-seed%" PRIu64 ".safetensors", folder, s->name, seed);
    if (access(path, R_OK) == 0) {
        if (weights_load(path, s, w, err) == 0) return 0;
        fprintf(stderr, "cached weights unusable (%s); generating them again\n", err);
    }
    if (make_dirs(folder))
        return seterr(err, "cannot create cache folder %s: %s", folder, strerror(errno));
    fprintf(stderr, "generating weights for spec %s (seed %" PRIu64 ") into %s\n", s->name, seed,
            path);
    if (weights_generate(s, seed, path, PROGRESS_AUTO, err)) return -1;
    return weights_load(path, s, w, err);
}
