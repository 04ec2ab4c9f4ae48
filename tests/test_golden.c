/* Every engine against the original model's golden vectors (small, medium, long):
 * - the C reference in float64 within 1e-10 relative L2 per tower, which sees the initial m
 *   of either LSTM, RetNet's 1/sqrt(scale) and the block-norm eps;
 * - float32 engines (C reference, fused kernel, unfused cuBLAS path) within 1e-5 (the
 *   original's own fp32 run lands at 6e-7..2e-6).
 * Streams run in batches that repeat symbols, which must advance in order; outputs are
 * NaN-poisoned first, so an unwritten output fails. GPU engines skip without a GPU.
 * With bf16 or fp16 matrices, the GPU engines against the float64 C reference of the same
 * rounded weights (the function of that mode), within the fp32 tolerance; with a bf16 state,
 * the fp32 engines against the float64 reference that rounds that state the same way. Batches
 * of 25-64 symbols in every weight precision: the fused kernel against the float64 reference.
 * With a state write-back period (state.writeback): the fused kernel's outputs and saved
 * states, their logs applied, bit for bit those of writing back every step. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compare.h"
#include "engine_gpu.h"
#include "layout.h"
#include "testutil.h"
#include "util.h"

typedef struct {
    char case_name[16];
    char backend[8];
    int fp64;
    int batch; /* 0: the spec's max_batch */
    double tolerance;
} golden_case_t;

ParameterizedTestParameters(golden, matches_expected)
{
    static golden_case_t cases[] = {
        {"small", "cpu", 1, 1, 1e-10},    {"medium", "cpu", 1, 1, 1e-10},
        {"long", "cpu", 1, 1, 1e-10},     {"medium", "cpu", 1, 7, 1e-10},
        {"small", "cpu", 0, 1, 1e-5},     {"medium", "cpu", 0, 1, 1e-5},
        {"long", "cpu", 0, 1, 1e-5},      {"small", "gpu", 0, 0, 1e-5},
        {"medium", "gpu", 0, 0, 1e-5},    {"long", "gpu", 0, 0, 1e-5},
        {"small", "cublas", 0, 0, 1e-5},  {"medium", "cublas", 0, 0, 1e-5},
        {"long", "cublas", 0, 0, 1e-5},
    };
    return cr_make_param_array(golden_case_t, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(golden_case_t *gc, golden, matches_expected, .timeout = 300)
{
    if (strcmp(gc->backend, "cpu")) SKIP_WITHOUT_GPU();
    golden_t g;
    golden_load(gc->case_name, &g);
    cr_assert_not_null(g.s.expected, "the golden stream has no `expected`");
    engine_t *e = make_engine(&g.spec, &g.w, gc->backend, gc->fp64, g.s.num_symbols);
    double *out = run_stream(e, &g.s, gc->batch ? gc->batch : g.spec.batch.max_batch);

    char what[64];
    snprintf(what, sizeof what, "%s %s %s", gc->case_name, gc->backend, gc->fp64 ? "fp64" : "fp32");
    expect_towers_within(out, g.s.expected, (size_t)g.s.n, gc->tolerance, what);
    free(out);
    engine_destroy(e);
    golden_free(&g);
}

ParameterizedTestParameters(golden, wide_batches)
{
    static precision_t weights[] = {PRECISION_FP32, PRECISION_BF16, PRECISION_FP16};
    return cr_make_param_array(precision_t, weights, sizeof weights / sizeof weights[0]);
}

/* Batches of 25-64 distinct symbols (the golden streams have at most 16, so the fused
 * kernel's projections never see more than 2 tiles of 8 entries there): the medium case's
 * weights (fp32, or rounded to bf16 or fp16), random features, four steps on overlapping symbols, the
 * fused kernel against the float64 C reference of the same weights within the fp32 tolerance. */
ParameterizedTest(precision_t *weights, golden, wide_batches, .timeout = 300)
{
    SKIP_WITHOUT_GPU();
    enum { SYMBOLS = 64 };
    static const int batches[] = {64, 40, 25, 57};
    char err[ERR_MAX];
    golden_t g;
    golden_load_as("medium", *weights, &g);
    engine_t *ref = make_engine(&g.spec, &g.w, "cpu", 1, SYMBOLS), *gpu = make_engine(&g.spec, &g.w, "gpu", 0, SYMBOLS);
    const int F = g.spec.num_features;
    float *feat = xmalloc((size_t)SYMBOLS * F * sizeof *feat);
    int slots[SYMBOLS];
    double want[4 * SYMBOLS], got[4 * SYMBOLS];
    for (size_t i = 0; i < ARRAY_LEN(batches); i++) {
        const int nb = batches[i];
        for (int k = 0; k < nb; k++) slots[k] = (int)((37 * k + 11 * i) % SYMBOLS); /* distinct: 37 is odd */
        random_uniform(feat, (size_t)nb * F, 0x9e3779b97f4a7c15ULL + i, -2, 2);
        for (int k = 0; k < 4 * SYMBOLS; k++) want[k] = got[k] = NAN;
        cr_assert_eq(engine_step(ref, nb, slots, feat, want, err), 0, "%s", err);
        cr_assert_eq(engine_step(gpu, nb, slots, feat, got, err), 0, "%s", err);
        char what[64];
        snprintf(what, sizeof what, "%s weights, batch of %d", precision_name(*weights), nb);
        expect_towers_within(got, want, (size_t)nb, 1e-5, what);
    }
    free(feat);
    engine_destroy(gpu);
    engine_destroy(ref);
    golden_free(&g);
}

typedef struct {
    char case_name[16];
    char backend[8];
} bf16_case_t;

/* A golden case with the given storage precisions, and its outputs [n, 4] from the float64 C
 * reference of that mode. */
static double *mode_reference(const char *case_name, precision_t weights, precision_t state, golden_t *g)
{
    golden_load_as(case_name, weights, g);
    g->spec.precision.state = state;
    engine_t *ref = make_engine(&g->spec, &g->w, "cpu", 1, g->s.num_symbols);
    double *want = run_stream(ref, &g->s, g->spec.batch.max_batch);
    engine_destroy(ref);
    return want;
}

/* An fp32 engine of the golden case's mode on its stream, compared with want; every output
 * must be written and finite. */
static void engine_against(const golden_t *g, const char *backend, const double *want, compare_t *c)
{
    engine_t *e = make_engine(&g->spec, &g->w, backend, 0, g->s.num_symbols);
    double *out = run_stream(e, &g->s, g->spec.batch.max_batch);
    compare_outputs(out, want, (size_t)g->s.n, c);
    cr_expect_eq(c->nonfinite, 0, "%zu outputs not finite (unwritten or NaN)", c->nonfinite);
    free(out);
    engine_destroy(e);
}

typedef struct {
    char case_name[16];
    char backend[8];
    precision_t weights;
    double lo, hi; /* the band of the mode's own error per tower (cpu cases) */
} rounded_case_t;

ParameterizedTestParameters(golden, rounded_matrices)
{
    static const char *const cases[] = {"small", "medium", "long"}, *const backends[] = {"cpu", "gpu", "cublas"};
    static rounded_case_t params[2 * ARRAY_LEN(cases) * ARRAY_LEN(backends)];
    int n = 0;
    for (int p = 0; p < 2; p++)
        for (size_t b = 0; b < ARRAY_LEN(backends); b++)
            for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
                rounded_case_t *rc = &params[n++];
                snprintf(rc->case_name, sizeof rc->case_name, "%s", cases[c]);
                snprintf(rc->backend, sizeof rc->backend, "%s", backends[b]);
                rc->weights = p ? PRECISION_FP16 : PRECISION_BF16;
                rc->lo = p ? 1e-5 : 1e-4;
                rc->hi = p ? 1e-2 : 5e-2;
            }
    return cr_make_param_array(rounded_case_t, params, (size_t)n);
}

/* The float64 C reference with matrices rounded to bf16 moves away from the original model by
 * 2.3e-3..2.3e-2 per tower on these streams, with fp16 (3 more bits) by 4.8e-4..6.6e-3 (so the
 * rounding happened, and nothing more broke); an fp32 engine of the same weights stays within
 * 1e-5 of it. The cpu cases check the reference itself against `expected`. */
ParameterizedTest(rounded_case_t *rc, golden, rounded_matrices, .timeout = 300)
{
    const int cpu = !strcmp(rc->backend, "cpu");
    if (!cpu) SKIP_WITHOUT_GPU();
    const char *mode = precision_name(rc->weights);
    golden_t g;
    double *want = mode_reference(rc->case_name, rc->weights, PRECISION_FP32, &g);
    compare_t c;
    if (cpu) {
        compare_outputs(want, g.s.expected, (size_t)g.s.n, &c);
        for (int k = 0; k < NUM_TOWERS; k++) {
            cr_log_info("%s %s fp64 reference vs expected, %s: rel L2 %.3e", rc->case_name, mode, tower_names[k],
                        c.rel_l2[k]);
            cr_expect(c.rel_l2[k] > rc->lo && c.rel_l2[k] < rc->hi, "%s %s %s: rel L2 %.3e outside [%.0e, %.0e]",
                      rc->case_name, mode, tower_names[k], c.rel_l2[k], rc->lo, rc->hi);
        }
    } else {
        engine_against(&g, rc->backend, want, &c);
        for (int k = 0; k < NUM_TOWERS; k++)
            cr_expect_leq(c.rel_l2[k], 1e-5, "%s %s %s tower %s: rel L2 %.3e against the reference",
                          rc->case_name, rc->backend, mode, tower_names[k], c.rel_l2[k]);
    }
    free(want);
    golden_free(&g);
}

ParameterizedTestParameters(golden, bf16_state)
{
    static bf16_case_t cases[] = {
        {"small", "cpu"}, {"medium", "cpu"}, {"long", "cpu"}, {"small", "gpu"}, {"small", "cublas"},
    };
    return cr_make_param_array(bf16_case_t, cases, sizeof cases / sizeof cases[0]);
}

/* A bf16 state: the float64 C reference that rounds the mLSTM memory and Mamba2's SSM state
 * at every update moves away from the original model by 1.5e-3..4.3e-3 in xLSTM and Mamba2
 * on these streams, and RetNet and Hawk (whose state stays fp32) not at all. An fp32
 * engine's own roundings put some elements on the other side of a bf16 tie, and the
 * recurrences carry those 2^-9 steps on. On the small stream the C reference in float32
 * lands within 1.2e-4 of the float64 one; both GPU engines 2.1e-3 away in xLSTM (their expf
 * differs from the C library's by an ulp, which moves a head's gates and with them the
 * rounding of the whole head's memory) and 4e-5..8e-5 in Mamba2. So the fp32 engines run the
 * small stream to 1e-2 in xLSTM (a defect is off by order 1) and 1e-3 in Mamba2, which a
 * state kept in fp32 (2.3e-3 away) fails. The cpu cases check the float64 reference itself,
 * the small one also the float32 reference. */
ParameterizedTest(bf16_case_t *bc, golden, bf16_state, .timeout = 300)
{
    static const double tolerance[NUM_TOWERS] = {1e-2, 1e-3, 1e-5, 1e-5};
    const int cpu = !strcmp(bc->backend, "cpu");
    if (!cpu) SKIP_WITHOUT_GPU();
    golden_t g;
    double *want = mode_reference(bc->case_name, PRECISION_FP32, PRECISION_BF16, &g);
    compare_t c;
    if (cpu) {
        compare_outputs(want, g.s.expected, (size_t)g.s.n, &c);
        for (int k = 0; k < NUM_TOWERS; k++) {
            cr_log_info("%s bf16 state fp64 reference vs expected, %s: rel L2 %.3e", bc->case_name,
                        tower_names[k], c.rel_l2[k]);
            if (k == TOWER_XLSTM || k == TOWER_MAMBA2)
                cr_expect(c.rel_l2[k] > 1e-3 && c.rel_l2[k] < 5e-2, "%s %s: rel L2 %.3e outside [1e-3, 5e-2]",
                          bc->case_name, tower_names[k], c.rel_l2[k]);
            else
                cr_expect_leq(c.rel_l2[k], 1e-10, "%s %s: rel L2 %.3e", bc->case_name, tower_names[k], c.rel_l2[k]);
        }
    }
    if (!cpu || !strcmp(bc->case_name, "small")) {
        engine_against(&g, bc->backend, want, &c);
        for (int k = 0; k < NUM_TOWERS; k++) {
            const double tol = tolerance[k];
            cr_log_info("%s %s fp32 bf16 state, %s: rel L2 %.3e against the reference", bc->case_name, bc->backend,
                        tower_names[k], c.rel_l2[k]);
            cr_expect_leq(c.rel_l2[k], tol, "%s %s bf16 state tower %s: rel L2 %.3e > %.1e", bc->case_name,
                          bc->backend, tower_names[k], c.rel_l2[k], tol);
        }
    }
    free(want);
    golden_free(&g);
}

typedef struct {
    char case_name[16];
    int writeback;
    precision_t state;
} writeback_case_t;

ParameterizedTestParameters(golden, state_writeback)
{
    static writeback_case_t cases[] = {
        {"small", 3, PRECISION_FP32}, {"medium", 3, PRECISION_BF16}, {"long", 3, PRECISION_FP32},
        {"long", 8, PRECISION_FP32},  {"long", 8, PRECISION_BF16},
    };
    return cr_make_param_array(writeback_case_t, cases, sizeof cases / sizeof cases[0]);
}

/* The mLSTM memory and RetNet's retention written back every K-th step (state.writeback): the
 * fused kernel's outputs and saved states (their logs applied) bit for bit those of writing
 * them every step, on the golden streams (long: 600 requests, a symbol's log filled and stored
 * many times over). */
ParameterizedTest(writeback_case_t *wc, golden, state_writeback, .timeout = 300)
{
    SKIP_WITHOUT_GPU();
    char err[ERR_MAX];
    golden_t g;
    golden_load(wc->case_name, &g);
    spec_t every = g.spec, period = g.spec;
    every.precision.state = period.precision.state = wc->state;
    period.state.writeback = wc->writeback;
    layout_t le, lp;
    cr_assert_eq(layout_build(&every, &g.w.cat, &le, err), 0, "%s", err);
    cr_assert_eq(layout_build(&period, &g.w.cat, &lp, err), 0, "%s", err);
    const int symbols = g.s.num_symbols;
    engine_t *ee = make_engine(&every, &g.w, "gpu", 0, symbols), *ep = make_engine(&period, &g.w, "gpu", 0, symbols);
    double *oe = run_stream(ee, &g.s, g.spec.batch.max_batch), *op = run_stream(ep, &g.s, g.spec.batch.max_batch);
    for (int i = 0; i < 4 * g.s.n; i++)
        cr_assert(memcmp(&oe[i], &op[i], sizeof oe[i]) == 0, "%s, write-back %d: output %d is %.17g, every step %.17g",
                  wc->case_name, wc->writeback, i, op[i], oe[i]);

    float *se = xmalloc(ee->ops->state_bytes(ee)), *sp = xmalloc(ep->ops->state_bytes(ep));
    size_t compared = 0;
    for (int slot = 0; slot < symbols; slot++) {
        cr_assert_eq(ee->ops->save_slot(ee, slot, se, err), 0, "%s", err);
        cr_assert_eq(ep->ops->save_slot(ep, slot, sp, err), 0, "%s", err);
        layout_flush_state(&period, &lp, sp); /* the model's state */
        for (int k = 0; k < NUM_TOWERS; k++)
            for (int r = 0; r < le.state_count[k]; r++) {
                const region_t *re = &le.state[k][r], *rp = layout_state_region(&lp, k, re->name);
                cr_assert_not_null(rp, "region %s", re->name);
                for (int b = 0; b < every.tower_depth; b++) {
                    const float *x = se + le.state_base[k] + b * le.state_block[k] + re->offset;
                    const float *y = sp + lp.state_base[k] + b * lp.state_block[k] + rp->offset;
                    cr_assert(memcmp(x, y, (size_t)re->floats * sizeof *x) == 0,
                              "slot %d, tower %d block %d: %s differs from writing every step", slot, k, b, re->name);
                    compared += (size_t)re->floats;
                }
            }
    }
    cr_log_info("%s, write-back %d, %s state: %d outputs and %zu state floats as every step's", wc->case_name,
                wc->writeback, precision_name(wc->state), 4 * g.s.n, compared);
    free(se);
    free(sp);
    free(oe);
    free(op);
    engine_destroy(ep);
    engine_destroy(ee);
    layout_free(&lp);
    layout_free(&le);
    golden_free(&g);
}
