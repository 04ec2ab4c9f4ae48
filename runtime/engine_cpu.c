/* The cpu engine: the C reference over per-slot host states. Slot memory is taken on
 * first use, so a full-size model with many slots costs only the symbols it serves. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "reference.h"
#include "util.h"

typedef struct {
    engine_t base;
    ref_model_t *model;
    size_t state_bytes;
    void **slots; /* [max_symbols], NULL until first use */
} cpu_engine_t;

static void *slot_state(cpu_engine_t *e, int slot)
{
    if (!e->slots[slot]) {
        e->slots[slot] = xmalloc(e->state_bytes);
        ref_state_init(e->model, e->slots[slot]);
    }
    return e->slots[slot];
}

/* engine_ops_t.step_wave: the reference, one request after the other. */
static int cpu_wave(engine_t *base, int n, const int *slots, const float *features, double *out,
                    char *err)
{
    (void)err;
    cpu_engine_t *e = (cpu_engine_t *)base;
    const int F = base->spec->num_features;
    for (int r = 0; r < n; r++)
        ref_step(e->model, slot_state(e, slots[r]), features + (size_t)r * F, out + 4 * r);
    return 0;
}

static void cpu_reset_slot(engine_t *base, int slot)
{
    cpu_engine_t *e = (cpu_engine_t *)base;
    if (slot >= 0 && slot < base->max_symbols && e->slots[slot])
        ref_state_init(e->model, e->slots[slot]);
}

static size_t cpu_state_bytes(const engine_t *base)
{
    return ((const cpu_engine_t *)base)->state_bytes;
}

static int cpu_save_slot(engine_t *base, int slot, void *buf, char *err)
{
    cpu_engine_t *e = (cpu_engine_t *)base;
    if (engine_check_slot(&e->base, slot, err)) return -1;
    memcpy(buf, slot_state(e, slot), e->state_bytes);
    return 0;
}

static int cpu_load_slot(engine_t *base, int slot, const void *buf, char *err)
{
    cpu_engine_t *e = (cpu_engine_t *)base;
    if (engine_check_slot(&e->base, slot, err)) return -1;
    memcpy(slot_state(e, slot), buf, e->state_bytes);
    return 0;
}

static void cpu_destroy(engine_t *base)
{
    cpu_engine_t *e = (cpu_engine_t *)base;
    for (int i = 0; i < base->max_symbols; i++) free(e->slots[i]);
    free(e->slots);
    ref_destroy(e->model);
    engine_release(base);
    free(e);
}

static const engine_ops_t cpu_ops = {
    .name = "cpu",
    .step_wave = cpu_wave,
    .reset_slot = cpu_reset_slot,
    .state_bytes = cpu_state_bytes,
    .save_slot = cpu_save_slot,
    .load_slot = cpu_load_slot,
    .destroy = cpu_destroy,
};

engine_t *engine_cpu_create(const spec_t *s, const weights_t *w, const engine_options_t *o,
                            char *err)
{
    (void)err;
    cpu_engine_t *e = xcalloc(1, sizeof *e);
    engine_init(&e->base, &cpu_ops, s, o);
    e->model = ref_create(s, w, o->fp64 ? REF_FP64 : REF_FP32);
    e->state_bytes = ref_state_bytes(e->model);
    e->slots = xcalloc((size_t)e->base.max_symbols, sizeof *e->slots);
    return &e->base;
}
