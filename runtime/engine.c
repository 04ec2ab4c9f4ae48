/* Backend dispatch for engines. */
#include "engine.h"

#include <string.h>

#include "util.h"

engine_t *engine_create(const spec_t *s, const weights_t *w, const engine_options_t *o,
                        char *err)
{
    static const struct {
        const char *name;
        engine_t *(*create)(const spec_t *, const weights_t *, const engine_options_t *,
                            char *);
    } backends[] = {
        {"cpu", engine_cpu_create},
        {"gpu", engine_gpu_create},
        {"cublas", engine_cublas_create},
    };
    for (size_t i = 0; i < ARRAY_LEN(backends); i++)
        if (!strcmp(o->backend, backends[i].name)) return backends[i].create(s, w, o, err);
    seterr(err, "unknown backend '%s' (expected cpu, gpu or cublas)", o->backend);
    return NULL;
}
