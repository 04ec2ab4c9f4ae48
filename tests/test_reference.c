/* The C reference against the original model's golden vectors: float64 within 1e-10
 * relative L2 (which sees the initial m of either LSTM, RetNet's 1/sqrt(scale) and the
 * block-norm eps), float32 within 1e-5 (the original's own fp32 run lands at 6e-7..2e-6). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>

#include "compare.h"
#include "engine.h"
#include "stream.h"
#include "testutil.h"
#include "util.h"

typedef struct {
    char case_name[16];
    int fp64;
    double tolerance;
} golden_case_t;

static void run_golden(const char *case_name, int fp64, int batch, double tolerance)
{
    char err[ERR_MAX], path[256];
    spec_t spec;
    weights_t w;
    request_stream_t s;
    snprintf(path, sizeof path, "specs/%s.yaml", case_name);
    cr_assert_eq(spec_load(path, &spec, err), 0, "%s", err);
    snprintf(path, sizeof path, "golden/%s/weights.safetensors", case_name);
    cr_assert_eq(weights_load(shared_path(path), &spec, &w, err), 0, "%s", err);
    snprintf(path, sizeof path, "golden/%s/io.safetensors", case_name);
    cr_assert_eq(stream_load(shared_path(path), spec.num_features, &s, err), 0, "%s", err);
    cr_assert_not_null(s.expected);

    engine_options_t o = {.backend = "cpu", .fp64 = fp64, .max_symbols = s.num_symbols};
    engine_t *e = engine_create(&spec, &w, &o, err);
    cr_assert_not_null(e, "%s", err);
    double *out = xmalloc((size_t)s.n * 4 * sizeof *out);
    for (int i = 0; i < 4 * s.n; i++) out[i] = NAN; /* poison: every output must be written */
    cr_assert_eq(stream_run(e, &s, batch, out, err), 0, "%s", err);

    compare_t c;
    compare_outputs(out, s.expected, (size_t)s.n, &c);
    cr_log_info("%s %s: rel L2 %.3e %.3e %.3e %.3e (all %.3e), max abs %.3e", case_name,
                fp64 ? "fp64" : "fp32", c.rel_l2[0], c.rel_l2[1], c.rel_l2[2], c.rel_l2[3],
                c.rel_l2_all, c.max_abs_all);
    cr_expect_eq(c.nonfinite, 0, "%zu outputs not finite", c.nonfinite);
    for (int k = 0; k < NUM_TOWERS; k++)
        cr_expect_leq(c.rel_l2[k], tolerance, "%s %s tower %s: rel L2 %.3e > %.1e", case_name,
                      fp64 ? "fp64" : "fp32", tower_names[k], c.rel_l2[k], tolerance);
    free(out);
    engine_destroy(e);
    stream_free(&s);
    weights_free(&w);
}

ParameterizedTestParameters(reference, golden)
{
    static golden_case_t cases[] = {
        {"small", 1, 1e-10}, {"medium", 1, 1e-10}, {"long", 1, 1e-10},
        {"small", 0, 1e-5},  {"medium", 0, 1e-5},  {"long", 0, 1e-5},
    };
    return cr_make_param_array(golden_case_t, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(golden_case_t *gc, reference, golden)
{
    run_golden(gc->case_name, gc->fp64, 1, gc->tolerance);
}

/* Batches of 7 hold repeated symbols (16 symbols, 64 requests): they must advance in
 * order, so the fp64 result still matches the golden vectors to 1e-10. */
Test(reference, batches_with_repeated_symbols_match_golden)
{
    run_golden("medium", 1, 7, 1e-10);
}
