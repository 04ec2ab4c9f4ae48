/* The engine contract every backend keeps (gpu and cublas skip without a GPU): a slot's
 * state saves, loads and resets exactly. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "engine_gpu.h"
#include "testutil.h"
#include "util.h"

typedef struct {
    char name[8];
} backend_t;

ParameterizedTestParameters(engines, save_load_reset)
{
    static backend_t backends[] = {{"cpu"}, {"gpu"}, {"cublas"}};
    return cr_make_param_array(backend_t, backends, sizeof backends / sizeof backends[0]);
}

/* save_slot/load_slot round-trip a symbol's state; reset_slot restores the initial one; a
 * slot out of range is refused. */
ParameterizedTest(backend_t *be, engines, save_load_reset, .timeout = 300)
{
    if (strcmp(be->name, "cpu")) SKIP_WITHOUT_GPU();
    golden_t g;
    char err[ERR_MAX];
    golden_load("small", &g);
    engine_t *e = make_engine(&g.spec, &g.w, be->name, 0, 4);
    const int F = g.spec.num_features, slot = 2;
    const size_t bytes = e->ops->state_bytes(e);
    void *saved = xmalloc(bytes), *fresh = xmalloc(bytes);
    cr_assert_eq(e->ops->save_slot(e, slot, fresh, err), 0, "%s", err);
    double first[4], a[4], b[4];
    cr_assert_eq(engine_step(e, 1, &slot, g.s.features, first, err), 0, "%s", err);
    cr_assert_eq(e->ops->save_slot(e, slot, saved, err), 0, "%s", err);
    cr_assert_eq(engine_step(e, 1, &slot, g.s.features + F, a, err), 0, "%s", err);
    cr_assert_eq(e->ops->load_slot(e, slot, saved, err), 0, "%s", err);
    cr_assert_eq(engine_step(e, 1, &slot, g.s.features + F, b, err), 0, "%s", err);
    cr_expect_arr_eq(a, b, sizeof a, "replay after load_slot differs");
    e->ops->reset_slot(e, slot);
    cr_assert_eq(engine_step(e, 1, &slot, g.s.features, b, err), 0, "%s", err);
    cr_expect_arr_eq(first, b, sizeof b, "reset_slot did not restore the initial state");
    cr_expect_neq(memcmp(fresh, saved, bytes), 0, "a step did not change the state");
    int bad = 99;
    cr_expect_eq(engine_step(e, 1, &bad, g.s.features, a, err), -1, "slot 99 of 4 accepted");
    free(saved);
    free(fresh);
    engine_destroy(e);
    golden_free(&g);
}

/* The gpu engine's weights of the towers' shares of the grid, at every batch size and for each
 * weight and state precision: positive, changing gradually with the batch (interpolated
 * between the table's rows, which are far enough apart for at most 20 per mille a batch), and
 * held beyond the last row. */
Test(engines, tower_weights_by_batch)
{
    for (int mode = 0; mode < 6; mode++) {
        const precision_t wp = (precision_t)(mode % 3), sp = mode / 3 ? PRECISION_BF16 : PRECISION_FP32;
        int prev[NUM_TOWERS], w[NUM_TOWERS], last[NUM_TOWERS];
        gpu_tower_weights(1, wp, sp, prev);
        gpu_tower_weights(4096, wp, sp, last);
        for (int nb = 1; nb <= 256; nb++) {
            gpu_tower_weights(nb, wp, sp, w);
            for (int k = 0; k < NUM_TOWERS; k++) {
                cr_expect_gt(w[k], 0, "weights %s, state %s, batch %d, tower %d: weight %d", precision_name(wp),
                             precision_name(sp), nb, k, w[k]);
                cr_expect_leq(abs(w[k] - prev[k]), 20, "weights %s, state %s, batch %d, tower %d: %d after %d",
                              precision_name(wp), precision_name(sp), nb, k, w[k], prev[k]);
                prev[k] = w[k];
            }
        }
        cr_expect_arr_eq(w, last, sizeof w, "weights %s, state %s: the weights at batch 256 and 4096 differ",
                         precision_name(wp), precision_name(sp));
    }
}
