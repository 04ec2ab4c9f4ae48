/* The fused kernel's per-stage trace on a GPU (skips where there is none): a traced step
 * of specs/small.yaml gives the same outputs and state as an untraced one, every CTA writes
 * every time, in order, no CTA leaves its tower's barrier before every CTA of the tower
 * reached it, and the report builds. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "compare.h"
#include "engine.h"
#include "engine_gpu.h"
#include "stage_table.h"
#include "step_trace.h"
#include "testutil.h"
#include "util.h"

enum { NB = 5 };

/* Bytes that differ between the first NB slots' states in a and b. */
static size_t state_diff(engine_t *e, const unsigned char *a, const unsigned char *b)
{
    size_t n = 0, bytes = NB * e->ops->state_bytes(e);
    for (size_t i = 0; i < bytes; i++) n += a[i] != b[i];
    return n;
}

static unsigned char *save_states(engine_t *e)
{
    char err[ERR_MAX];
    const size_t sb = e->ops->state_bytes(e);
    unsigned char *buf = xmalloc(NB * sb);
    for (int r = 0; r < NB; r++) cr_assert_eq(e->ops->save_slot(e, r, buf + r * sb, err), 0, "%s", err);
    return buf;
}

Test(gpu_trace, traced_step_equals_untraced_and_times_are_ordered, .timeout = 300)
{
    SKIP_WITHOUT_GPU();
    golden_t g;
    char err[ERR_MAX];
    golden_load("small", &g);
    engine_t *e = make_engine(&g.spec, &g.w, "gpu", 0, NB);
    const int F = g.spec.num_features;
    int slots[NB];
    float *feat = xmalloc((size_t)NB * F * sizeof *feat);
    double plain[NB * 4], traced[NB * 4];
    gpu_bench_inputs(NB, F, slots, feat);

    cr_assert_eq(engine_step(e, NB, slots, feat, plain, err), 0, "%s", err);
    unsigned char *state_plain = save_states(e);
    for (int r = 0; r < NB; r++) e->ops->reset_slot(e, r);
    step_trace_t tr;
    cr_assert_eq(gpu_trace_step(e, NB, traced, &tr, err), 0, "%s", err);
    unsigned char *state_traced = save_states(e);

    double worst = 0;
    for (int i = 0; i < NB * 4; i++)
        if (!(fabs(traced[i] - plain[i]) <= worst)) worst = fabs(traced[i] - plain[i]);
    cr_expect_eq(worst, 0.0, "traced outputs differ from untraced ones by up to %.3e", worst);
    const size_t differ = state_diff(e, state_plain, state_traced);
    cr_expect_eq(differ, 0, "%zu bytes of state differ after a traced step", differ);

    /* the report refuses a trace with a time not written, a CTA's times out of order (start,
     * then done and released per stage) or a CTA working for another tower */
    cr_assert_eq(tr.stages, stage_count(&g.spec));
    stage_entry_t *table = stage_table(&g.spec);
    trace_report_t rep;
    cr_assert_eq(trace_report_build(&tr, table, &rep, err), 0, "%s", err);

    /* a tower's barrier releases none of its CTAs before the last of them is done: the report
     * compares CTAs on one clock (1 us allowed for the clock's granularity) */
    long long early = 0;
    for (int k = 0; k < NUM_TOWERS; k++) {
        cr_expect_gt(rep.tower[k].ctas, 0, "tower %s has no CTAs", tower_names[k]);
        for (int s = 0; s + 1 < tr.stages; s++) {
            if (table[(size_t)s * NUM_TOWERS + k].phase == PHASE_IDLE) continue;
            unsigned long long last_done = 0, first_release = ~0ULL;
            for (int c = 0; c < tr.ctas; c++) {
                if (rep.group[c] != k) continue;
                const unsigned long long *t = tr.t + ((size_t)(s + 1) * tr.ctas + c) * 2;
                if (t[0] > last_done) last_done = t[0];
                if (t[1] < first_release) first_release = t[1];
            }
            if ((long long)(last_done - first_release) > early) early = (long long)(last_done - first_release);
        }
    }
    cr_log_info("%d CTAs, %d stages; a release precedes its tower's last done by at most %lld ns", tr.ctas,
                tr.stages, early);
    cr_expect_leq(early, 1000, "a CTA left its tower's barrier %lld ns before the last CTA reached it", early);
    cr_log_info("traced step %.1f us; towers done at %.1f, %.1f, %.1f, %.1f us", rep.step, rep.tower[0].done,
                rep.tower[1].done, rep.tower[2].done, rep.tower[3].done);
    cr_expect(rep.step > 0 && rep.step < 1e6, "step of %.1f us", rep.step);
    trace_report_free(&rep);
    free(table);
    step_trace_free(&tr);
    free(state_plain);
    free(state_traced);
    free(feat);
    engine_destroy(e);
    golden_free(&g);
}
