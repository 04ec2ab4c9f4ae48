/* Backend dispatch for engines. */
#include "engine.h"

#include <stdlib.h>
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

void engine_init(engine_t *e, const engine_ops_t *ops, const spec_t *s,
                 const engine_options_t *o)
{
    e->ops = ops;
    e->spec = s;
    e->max_symbols = o->max_symbols > 0 ? o->max_symbols : s->batch.max_symbols;
    e->max_batch = s->batch.max_batch;
    e->in_wave = xcalloc((size_t)e->max_symbols, 1);
}

void engine_release(engine_t *e)
{
    free(e->in_wave);
    e->in_wave = NULL;
}

int engine_check_slot(const engine_t *e, int slot, char *err)
{
    if (slot < 0 || slot >= e->max_symbols)
        return seterr(err, "state slot %d out of range [0, %d)", slot, e->max_symbols);
    return 0;
}

int engine_step(engine_t *e, int n, const int *slots, const float *features, double *out,
                char *err)
{
    const int F = e->spec->num_features;
    for (int r = 0; r < n; r++)
        if (engine_check_slot(e, slots[r], err)) return -1;
    int rc = 0;
    for (int i = 0; i < n && !rc;) {
        /* a wave: the longest run of requests on distinct slots, at most max_batch */
        int nb = 0;
        while (i + nb < n && nb < e->max_batch && !e->in_wave[slots[i + nb]])
            e->in_wave[slots[i + nb++]] = 1;
        rc = e->ops->step_wave(e, nb, slots + i, features + (size_t)i * F, out + 4 * (size_t)i, err);
        for (int r = 0; r < nb; r++) e->in_wave[slots[i + r]] = 0;
        i += nb;
    }
    return rc;
}
