/* The unfused GPU step ("cublas" backend; every test skips where there is no GPU; its
 * kernels' compilation in test_gen.c, golden streams in test_golden.c, slot save/load in
 * test_engines.c): random batchings with repeated symbols follow one at a time, and a
 * batch equals its waves fed separately bit for bit; every output written; and, when
 * $STEPFUSE_FULL_WEIGHTS names weights of specs/hackathon.yaml, the full-size model against
 * the fused kernel and the float64 C reference. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "engine.h"
#include "engine_gpu.h"
#include "stream.h"
#include "testutil.h"
#include "util.h"

/* Random batchings of the long stream (3 symbols, so batches repeat symbols) follow the
 * one-at-a-time outputs; every output of every batch is written (NaN-poisoned before).
 * cuBLAS picks its GEMM kernel by batch size, so the two differ by fp32 rounding: the
 * tolerance is the golden one (measured on the H100: max abs difference 1.3e-5 to 4.1e-5,
 * as large as the fp32 error against float64 on this stream). A wave out of order or a
 * state advanced twice differs at order 1. Exact equality of the waves: next test. */
Test(gpu_unfused, batching_matches_one_at_a_time, .timeout = 300)
{
    SKIP_WITHOUT_GPU();
    golden_t g;
    golden_load("long", &g);
    const request_stream_t *s = &g.s;
    engine_t *e = make_engine(&g.spec, &g.w, "cublas", 0, s->num_symbols);
    double *single = run_stream(e, s, 1);
    cr_expect_eq(count_nonfinite(single, 4 * s->n), 0, "one at a time: outputs not finite");
    uint64_t x = 12345;
    for (int trial = 0; trial < 3; trial++) {
        double *batched = run_random_batches(e, s, &x);
        compare_t cmp;
        compare_outputs(batched, single, (size_t)s->n, &cmp);
        cr_log_info("cublas batching trial %d: rel L2 %.3e %.3e %.3e %.3e, max abs %.3e", trial, cmp.rel_l2[0],
                    cmp.rel_l2[1], cmp.rel_l2[2], cmp.rel_l2[3], cmp.max_abs_all);
        cr_expect_eq(cmp.nonfinite, 0, "trial %d: %zu outputs not finite", trial, cmp.nonfinite);
        for (int k = 0; k < NUM_TOWERS; k++)
            cr_expect_leq(cmp.rel_l2[k], 1e-5, "trial %d tower %s: batched vs one at a time rel L2 %.3e", trial,
                          tower_names[k], cmp.rel_l2[k]);
        free(batched);
    }
    free(single);
    engine_destroy(e);
    golden_free(&g);
}

/* A batch that repeats symbols equals, bit for bit, its waves fed as separate batches (same
 * GEMM shapes, so the same rounding): the waves of slots {0, 1, 0, 2, 0, 0, 1} are the
 * longest runs of distinct slots in order, {0, 1}, {0, 2}, {0}, {0, 1}. */
Test(gpu_unfused, repeated_slots_run_as_ordered_waves, .timeout = 300)
{
    SKIP_WITHOUT_GPU();
    golden_t g;
    char err[ERR_MAX];
    golden_load("small", &g);
    static const int slots[] = {0, 1, 0, 2, 0, 0, 1};
    static const int waves[] = {2, 2, 1, 2};
    enum { N = ARRAY_LEN(slots) };
    const int F = g.spec.num_features;
    engine_t *one = make_engine(&g.spec, &g.w, "cublas", 0, 3);
    engine_t *split = make_engine(&g.spec, &g.w, "cublas", 0, 3);
    double a[4 * N], b[4 * N];
    for (int i = 0; i < 4 * N; i++) a[i] = b[i] = NAN;
    cr_assert_eq(engine_step(one, N, slots, g.s.features, a, err), 0, "%s", err);
    for (size_t w = 0, i = 0; w < ARRAY_LEN(waves); i += (size_t)waves[w++])
        cr_assert_eq(engine_step(split, waves[w], slots + i, g.s.features + i * F, b + 4 * i, err), 0, "%s", err);
    cr_expect_eq(count_nonfinite(a, 4 * N), 0, "outputs not finite");
    cr_expect_arr_eq(a, b, sizeof a, "one batch with repeated slots differs from its waves fed separately");
    engine_destroy(one);
    engine_destroy(split);
    golden_free(&g);
}

/* Full size (specs/hackathon.yaml, weights at $STEPFUSE_FULL_WEIGHTS): REQS requests on 2
 * symbols through the unfused and the fused engines, within 1e-4 relative L2 of each other
 * per tower (each is ~1e-5 from float64 at this size; RetNet the furthest), the first 2
 * requests also against the float64 C reference. (Step times: stepfuse bench.) */
Test(gpu_unfused, full_size_matches_fused, .timeout = 600)
{
    SKIP_WITHOUT_GPU();
    const char *wpath = getenv("STEPFUSE_FULL_WEIGHTS");
    if (!wpath || !*wpath) cr_skip_test("STEPFUSE_FULL_WEIGHTS not set");
    enum { REQS = 6, REF_REQS = 2 };
    char err[SPEC_ERR_MAX > ERR_MAX ? SPEC_ERR_MAX : ERR_MAX];
    spec_t s;
    weights_t w;
    cr_assert_eq(spec_load("specs/hackathon.yaml", &s, err), 0, "%s", err);
    cr_assert_eq(weights_load(wpath, &s, &w, err), 0, "%s", err);
    const int F = s.num_features, slots_max = 64;
    engine_t *unf = make_engine(&s, &w, "cublas", 0, slots_max);
    engine_t *fused = make_engine(&s, &w, "gpu", 0, slots_max);
    float *feat = xmalloc((size_t)REQS * F * sizeof *feat);
    int slots[REQS];
    double ou[4 * REQS], of[4 * REQS], oref[4 * REF_REQS];
    for (int r = 0; r < REQS; r++) slots[r] = r % 2;
    random_uniform(feat, (size_t)REQS * F, 0x2545f4914f6cdd1dULL, -2, 2);
    for (int i = 0; i < 4 * REQS; i++) ou[i] = of[i] = NAN;
    cr_assert_eq(engine_step(unf, REQS, slots, feat, ou, err), 0, "%s", err);
    cr_assert_eq(engine_step(fused, REQS, slots, feat, of, err), 0, "%s", err);
    compare_t cmp;
    compare_outputs(ou, of, REQS, &cmp);
    cr_log_info("full size, %d requests: cublas vs fused rel L2 %.3e %.3e %.3e %.3e, max abs %.3e", REQS,
                cmp.rel_l2[0], cmp.rel_l2[1], cmp.rel_l2[2], cmp.rel_l2[3], cmp.max_abs_all);
    cr_expect_eq(cmp.nonfinite, 0, "%zu outputs not finite", cmp.nonfinite);
    for (int k = 0; k < NUM_TOWERS; k++)
        cr_expect_leq(cmp.rel_l2[k], 1e-4, "tower %s: cublas vs fused rel L2 %.3e", tower_names[k], cmp.rel_l2[k]);

    engine_t *ref = make_engine(&s, &w, "cpu", 1, 2);
    cr_assert_eq(engine_step(ref, REF_REQS, slots, feat, oref, err), 0, "%s", err);
    compare_t cu, cf;
    compare_outputs(ou, oref, REF_REQS, &cu);
    compare_outputs(of, oref, REF_REQS, &cf);
    cr_log_info("full size, %d requests vs C reference fp64: cublas %.3e %.3e %.3e %.3e; fused %.3e %.3e %.3e %.3e",
                REF_REQS, cu.rel_l2[0], cu.rel_l2[1], cu.rel_l2[2], cu.rel_l2[3], cf.rel_l2[0], cf.rel_l2[1],
                cf.rel_l2[2], cf.rel_l2[3]);
    for (int k = 0; k < NUM_TOWERS; k++)
        cr_expect_leq(cu.rel_l2[k], 1e-4, "tower %s: cublas vs fp64 rel L2 %.3e", tower_names[k], cu.rel_l2[k]);
    engine_destroy(ref);

    free(feat);
    engine_destroy(unf);
    engine_destroy(fused);
    weights_free(&w);
}
