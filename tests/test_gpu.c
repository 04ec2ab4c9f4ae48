/* The fused kernel on a GPU (each test skips where there is none; golden streams in
 * test_golden.c, slot save/load in test_engines.c): batching invariance with repeated
 * symbols, outputs poisoned before every launch and all written (the engine checks it), a
 * long run against the C reference, 16-bit weights in both load widths, and the out-of-memory
 * message. Each test makes its own
 * CUDA context; keep them small. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "engine_gpu.h"
#include "stream.h"
#include "testutil.h"
#include "tmpdir.h"
#include "util.h"
#include "weights.h"

static double max_rel_diff(const double *a, const double *b, int n)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        const double d = fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i]));
        if (!(d <= worst)) worst = d; /* NaN propagates */
    }
    return worst;
}

/* Random batchings of the long stream (3 symbols, so batches repeat symbols) equal the
 * one-at-a-time outputs. */
Test(gpu, batching_invariance, .timeout = 300)
{
    SKIP_WITHOUT_GPU();
    golden_t g;
    golden_load("long", &g);
    const request_stream_t *s = &g.s;
    engine_t *e = make_engine(&g.spec, &g.w, "gpu", 0, s->num_symbols);
    double *single = run_stream(e, s, 1);
    uint64_t x = 12345;
    for (int trial = 0; trial < 3; trial++) {
        double *batched = run_random_batches(e, s, &x);
        const double d = max_rel_diff(batched, single, 4 * s->n);
        cr_log_info("batching trial %d: max difference %.3e", trial, d);
        cr_expect_leq(d, 1e-6, "random batching differs from one at a time by %.3e", d);
        free(batched);
    }
    free(single);
    engine_destroy(e);
    golden_free(&g);
}

/* 2,000 steps of one symbol stay finite and follow the float64 C reference. fp32 rounding
 * (~1e-7 per step) stays bounded because every recurrence here decays. */
Test(gpu, long_run_matches_reference, .timeout = 600)
{
    SKIP_WITHOUT_GPU();
    golden_t g;
    char err[ERR_MAX];
    golden_load("small", &g);
    enum { STEPS = 2000 };
    const int F = g.spec.num_features;
    engine_t *gpu = make_engine(&g.spec, &g.w, "gpu", 0, 2);
    engine_t *ref = make_engine(&g.spec, &g.w, "cpu", 1, 2);
    float *feat = xmalloc((size_t)F * sizeof *feat);
    double *out_g = xmalloc(STEPS * 4 * sizeof(double)), *out_r = xmalloc(STEPS * 4 * sizeof(double));
    const int slot = 1;
    for (int t = 0; t < STEPS; t++) {
        /* features drawn from the golden stream, varied so no two steps repeat */
        const float *base = g.s.features + (size_t)(t % g.s.n) * F;
        for (int f = 0; f < F; f++) feat[f] = base[f] * (1.0f + 0.25f * sinf(0.01f * (float)t + (float)f));
        cr_assert_eq(engine_step(gpu, 1, &slot, feat, out_g + 4 * t, err), 0, "step %d: %s", t, err);
        cr_assert_eq(engine_step(ref, 1, &slot, feat, out_r + 4 * t, err), 0, "%s", err);
    }
    expect_towers_within(out_g, out_r, STEPS, 1e-5, "2000 steps against the reference");
    free(feat);
    free(out_g);
    free(out_r);
    engine_destroy(gpu);
    engine_destroy(ref);
    golden_free(&g);
}

ParameterizedTestParameters(gpu, rows_of_4_and_of_8)
{
    static precision_t weights[] = {PRECISION_BF16, PRECISION_FP16};
    return cr_make_param_array(precision_t, weights, ARRAY_LEN(weights));
}

/* 16-bit matrices (bf16, fp16) load 16 bytes of a row at a time where rows are a multiple of
 * 8 elements and 8 bytes elsewhere: a spec with both kinds of rows, on the small golden
 * stream's requests, follows the float64 C reference of the same rounded weights. */
ParameterizedTest(precision_t *weights, gpu, rows_of_4_and_of_8, .timeout = 300)
{
    SKIP_WITHOUT_GPU();
    char err[SPEC_ERR_MAX > ERR_MAX ? SPEC_ERR_MAX : ERR_MAX], dir[TMPDIR_PATH_MAX];
    spec_t spec;
    cr_assert_eq(spec_load("tests/data/rows4-bf16.yaml", &spec, err), 0, "%s", err);
    spec.precision.weights = *weights;
    tmpdir_make(dir);
    weights_t w;
    cr_assert_eq(weights_cached(&spec, 7, dir, &w, err), 0, "%s", err);
    golden_t g;
    golden_load("small", &g); /* its requests (79 features) */
    engine_t *ref = make_engine(&spec, &w, "cpu", 1, g.s.num_symbols);
    engine_t *gpu = make_engine(&spec, &w, "gpu", 0, g.s.num_symbols);
    double *want = run_stream(ref, &g.s, spec.batch.max_batch), *got = run_stream(gpu, &g.s, spec.batch.max_batch);
    char what[64];
    snprintf(what, sizeof what, "%s rows of 4 and of 8 against the reference", precision_name(*weights));
    expect_towers_within(got, want, (size_t)g.s.n, 1e-5, what);
    free(want);
    free(got);
    engine_destroy(gpu);
    engine_destroy(ref);
    golden_free(&g);
    weights_free(&w);
    tmpdir_remove(dir);
}

/* Asking for more slots than the device holds fails with the bytes needed. */
Test(gpu, out_of_memory_is_a_clear_error, .timeout = 300)
{
    SKIP_WITHOUT_GPU();
    golden_t g;
    char err[ERR_MAX] = "";
    golden_load("small", &g);
    engine_options_t o = {.backend = "gpu", .max_symbols = 20000000}; /* ~3.8 TB of state */
    engine_t *e = engine_create(&g.spec, &g.w, &o, err);
    cr_expect_null(e);
    cr_log_info("%s", err);
    cr_expect(strstr(err, "out of device memory") && strstr(err, "bytes"), "message: %s", err);
    engine_destroy(e);
    golden_free(&g);
}
