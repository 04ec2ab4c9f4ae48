/* The stage table (every tower's phases of every block once, in order, in its block's
 * window; the emitted STAGES has its size) and the per-stage trace report's arithmetic on a
 * made-up trace whose answers are worked out by hand below. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "stage_table.h"
#include "step_trace.h"
#include "util.h"

static void load(const char *path, spec_t *s)
{
    char err[SPEC_ERR_MAX];
    cr_assert_eq(spec_load(path, s, err), 0, "%s", err);
}

/* For each tower and block, the window's non-idle phases are 0..n-1, MLP up, MLP down. */
static void check_table(const spec_t *s)
{
    const int W = stage_slots(), n = stage_count(s);
    cr_assert_eq(n, 2 + s->tower_depth * W + 1, "%s: %d stages", s->name, n);
    stage_entry_t *t = stage_table(s);
    for (int k = 0; k < NUM_TOWERS; k++) {
        cr_expect_eq(t[0 * NUM_TOWERS + k].phase, PHASE_IN_UP);
        cr_expect_eq(t[1 * NUM_TOWERS + k].phase, PHASE_IN_DOWN);
        cr_expect_eq(t[(n - 1) * NUM_TOWERS + k].phase, PHASE_OUT);
        const int phases = tower_layer_phases[k] + 2;
        for (int l = 0; l < s->tower_depth; l++) {
            int next = 0; /* index in the expected order of the next phase */
            for (int st = 2 + l * W; st < 2 + (l + 1) * W; st++) {
                const stage_entry_t e = t[st * NUM_TOWERS + k];
                cr_expect_eq(e.block, l, "%s: stage %d tower %d: block %d in the window of block %d", s->name,
                             st, k, e.block, l);
                if (e.phase == PHASE_IDLE) continue;
                const int want = next < phases - 2 ? next : next == phases - 2 ? PHASE_MLP_UP : PHASE_MLP_DOWN;
                cr_expect_eq(e.phase, want, "%s: stage %d tower %d: phase %d, expected %d", s->name, st, k,
                             e.phase, want);
                next++;
            }
            cr_expect_eq(next, phases, "%s: tower %d block %d: %d of %d phases", s->name, k, l, next, phases);
        }
    }
    free(t);
}

Test(stage_table, every_phase_once_in_order)
{
    const char *specs[] = {"specs/tiny.yaml", "specs/small.yaml", "specs/hackathon.yaml"};
    for (size_t i = 0; i < ARRAY_LEN(specs); i++) {
        spec_t s;
        load(specs[i], &s);
        check_table(&s);
    }
    spec_t full;
    load("specs/hackathon.yaml", &full);
    cr_expect_eq(stage_slots(), 11);
    cr_expect_eq(stage_count(&full), 135, "the full model has 2 + 11 x 12 + 1 stages");
}

/* The generated kernel's table is this one: its size, and its first block-window row. */
Test(stage_table, emitted_kernel_uses_it)
{
    spec_t s;
    char err[ERR_MAX], want[128];
    char *src;
    size_t len;
    load("specs/small.yaml", &s);
    cr_assert_eq(emit_kernel(&s, "specs/small.yaml", &src, &len, err), 0, "%s", err);
    snprintf(want, sizeof want, "constexpr int NUM_STAGES = %d;", stage_count(&s));
    cr_expect(strstr(src, want), "no '%s' in the generated kernel", want);
    /* stage 2: xLSTM phase 0, the others' phase 0 too (slot 0 of every tower) */
    cr_expect(strstr(src, "    {{PH_IN_DOWN, 0}, {PH_IN_DOWN, 0}, {PH_IN_DOWN, 0}, {PH_IN_DOWN, 0}},\n"
                          "    {{0, 0}, {0, 0}, {0, 0}, {0, 0}},\n"),
              "the generated stage table does not start as expected");
    free(src);
}

Test(stage_table, phase_names_distinct)
{
    const char *seen[64];
    int n = 0;
    for (int k = 0; k < NUM_TOWERS; k++)
        for (int p = -2; p < tower_layer_phases[k]; p++) { /* -2, -1: the MLP's two */
            const int phase = p == -2 ? PHASE_MLP_UP : p == -1 ? PHASE_MLP_DOWN : p;
            const char *name = phase_name(k, phase);
            cr_expect(strcmp(name, "?") && strcmp(name, "-"), "tower %d phase %d has no name", k, phase);
            for (int j = 0; j < n; j++) cr_expect(strcmp(seen[j], name), "two phases named %s", name);
            seen[n++] = name;
        }
    cr_expect_str_eq(phase_name(0, 1), "xlstm.1");
    cr_expect_str_eq(phase_name(3, PHASE_MLP_DOWN), "hawk.mlp_down");
    cr_expect_str_eq(phase_name(2, PHASE_IN_UP), "in_up");
    cr_expect_str_eq(phase_name(1, PHASE_IDLE), "-");
}

/* 3 stages, 2 CTAs, times in ns as {done, released} per stage after the starts:
 *            start   stage 0          stage 1          stage 2 (no barrier)
 *   CTA 0    1000    11000 15000      20000 30000      40000 40000
 *   CTA 1    2000    15000 15500      29500 30000      32000 32000
 * in us from the first start (1000 ns): work = done - previous release,
 *   stage 0: works 10, 13 (max 13 CTA 1, median 11.5); waits 4, 0.5; span 14.5 - 1 = 13.5
 *   stage 1: works 5, 14 (max 14 CTA 1, median 9.5); waits 10, 0.5; span 29 - 14.5 = 14.5
 *   stage 2: works 10, 2 (max 10 CTA 0, median 6); waits 0, 0; span 39 - 29 = 10
 * totals: work 37, waits 14 (max) / 7.5 (median: 2.25 + 5.25 + 0), spans 38, spread 1, step 39.
 * Towers (then one value per stage and CTA): stage 0 CTA 0 xLSTM, CTA 1 RetNet; stage 1 CTA 0
 * Mamba2, CTA 1 xLSTM; stage 2 CTA 0 Hawk, CTA 1 none. */
static const unsigned long long made_up[] = {
    1000,  1000,  2000,  2000,  /* row 0: starts */
    11000, 15000, 15000, 15500, /* stage 0 */
    20000, 30000, 29500, 30000, /* stage 1 */
    40000, 40000, 32000, 32000, /* stage 2 */
    0, 2, 1, 0, 3, NUM_TOWERS,  /* towers of stages 0, 1, 2 */
    7, 3,                       /* SMs */
};

static stage_entry_t made_up_table[3][NUM_TOWERS] = {
    {{PHASE_IN_UP, 0}, {PHASE_IN_UP, 0}, {PHASE_IN_UP, 0}, {PHASE_IN_UP, 0}},
    {{0, 0}, {0, 0}, {PHASE_IDLE, 0}, {PHASE_IDLE, 0}},
    {{PHASE_OUT, 0}, {PHASE_OUT, 0}, {PHASE_OUT, 0}, {PHASE_OUT, 0}},
};

static void made_up_trace(step_trace_t *t)
{
    t->stages = 3;
    t->ctas = 2;
    cr_assert_eq(step_trace_values(3, 2), sizeof made_up / sizeof made_up[0]);
    t->t = xmalloc(sizeof made_up);
    memcpy(t->t, made_up, sizeof made_up);
}

#define NEAR(got, want) cr_expect(fabs((got) - (want)) < 1e-9, "%s = %.6f, expected %.6f", #got, (got), (double)(want))

static const phase_time_t *find_phase(const trace_report_t *r, const char *name)
{
    for (int p = 0; p < r->nphases; p++)
        if (!strcmp(r->phase[p].name, name)) return &r->phase[p];
    cr_assert_fail("no phase %s in the summary", name);
    return NULL;
}

Test(trace_report, arithmetic_on_a_made_up_trace)
{
    step_trace_t t;
    trace_report_t r;
    char err[ERR_MAX];
    made_up_trace(&t);
    cr_assert_eq(trace_report_build(&t, &made_up_table[0][0], &r, err), 0, "%s", err);
    const double work_max[] = {13, 14, 10}, work_med[] = {11.5, 9.5, 6}, wait_max[] = {4, 10, 0},
                 wait_med[] = {2.25, 5.25, 0}, span[] = {13.5, 14.5, 10};
    const int slowest[] = {1, 1, 0};
    for (int s = 0; s < 3; s++) {
        NEAR(r.stage[s].work_max, work_max[s]);
        NEAR(r.stage[s].work_median, work_med[s]);
        NEAR(r.stage[s].wait_max, wait_max[s]);
        NEAR(r.stage[s].wait_median, wait_med[s]);
        NEAR(r.stage[s].span, span[s]);
        cr_expect_eq(r.stage[s].slowest, slowest[s], "stage %d: slowest CTA %d", s, r.stage[s].slowest);
    }
    /* {stage, tower, CTAs, work max (= median: one CTA each)} */
    const struct { int s, k, ctas; double work; } towers[] = {
        {0, 0, 1, 10}, {0, 1, 0, 0}, {0, 2, 1, 13}, {0, 3, 0, 0}, {1, 0, 1, 14}, {1, 1, 1, 5},
        {1, 2, 0, 0},  {1, 3, 0, 0}, {2, 0, 0, 0},  {2, 1, 0, 0}, {2, 2, 0, 0},  {2, 3, 1, 10},
    };
    for (size_t i = 0; i < sizeof towers / sizeof towers[0]; i++) {
        const int s = towers[i].s, k = towers[i].k;
        cr_expect_eq(r.stage[s].tower[k].ctas, towers[i].ctas, "stage %d tower %d: %d CTAs", s, k,
                     r.stage[s].tower[k].ctas);
        NEAR(r.stage[s].tower[k].work_max, towers[i].work);
        NEAR(r.stage[s].tower[k].work_median, towers[i].work);
    }
    NEAR(r.work_sum, 37);
    NEAR(r.wait_max_sum, 14);
    NEAR(r.wait_median_sum, 7.5);
    NEAR(r.span_sum, 38);
    NEAR(r.start_spread, 1);
    NEAR(r.step, 39);
    /* in_up: stage 0 alone; xlstm.0 and mamba2.0 share stage 1; out: stage 2 */
    cr_assert_eq(r.nphases, 4);
    cr_expect_str_eq(r.phase[0].name, "in_up", "largest share first");
    NEAR(find_phase(&r, "in_up")->share, 13.5);
    NEAR(find_phase(&r, "xlstm.0")->share, 7.25);
    NEAR(find_phase(&r, "mamba2.0")->share, 7.25);
    NEAR(find_phase(&r, "mamba2.0")->work, 14);
    NEAR(find_phase(&r, "out")->share, 10);
    cr_expect_eq(find_phase(&r, "out")->stages, 1);
    double shares = 0;
    for (int p = 0; p < r.nphases; p++) shares += r.phase[p].share;
    NEAR(shares, r.span_sum);
    cr_expect_eq(r.sm[0], 7);
    cr_expect_eq(r.sm[1], 3);
    cr_expect(isnan(r.pace[0]) && isnan(r.pace[1]), "no phase ran on %d CTAs: no pace", PACE_MIN_CTAS);
    trace_report_free(&r);
    step_trace_free(&t);
}

/* Paces: 8 CTAs (SM 100 + c) run xLSTM's phase 0 in stage 0 (work 10 + c us, median 13.5)
 * and Mamba2's in stage 1 (20 + 2c, median 27); in stage 2 CTA 0 alone runs Hawk's output
 * (one CTA: not counted), twice as slow as the others' idle stage. Both counted ratios of
 * CTA c are (10 + c) / 13.5. */
Test(trace_report, paces_compare_ctas_of_one_phase)
{
    enum { S = 3, C = 8 };
    static const stage_entry_t table[S][NUM_TOWERS] = {
        {{0, 0}, {PHASE_IDLE, 0}, {PHASE_IDLE, 0}, {PHASE_IDLE, 0}},
        {{PHASE_IDLE, 0}, {0, 0}, {PHASE_IDLE, 0}, {PHASE_IDLE, 0}},
        {{PHASE_OUT, 0}, {PHASE_OUT, 0}, {PHASE_OUT, 0}, {PHASE_OUT, 0}},
    };
    step_trace_t t = {S, C, xcalloc(step_trace_values(S, C), sizeof(unsigned long long))};
    for (int c = 0; c < C; c++) {
        unsigned long long *row = t.t + (size_t)c * 2;
        row[0] = row[1] = 1000;                                                /* start */
        row[2 * C] = 1000 + (10 + c) * 1000ULL, row[2 * C + 1] = 18500;        /* stage 0 */
        row[4 * C] = 18500 + (20 + 2 * c) * 1000ULL, row[4 * C + 1] = 53000;   /* stage 1 */
        row[6 * C] = row[6 * C + 1] = 53000 + (c ? 1000 : 5000);               /* stage 2 */
        *step_trace_tower(&t, 0, c) = 0;
        *step_trace_tower(&t, 1, c) = 1;
        *step_trace_tower(&t, 2, c) = c ? NUM_TOWERS : 3;
        *step_trace_sm(&t, c) = 100 + c;
    }
    trace_report_t r;
    char err[ERR_MAX];
    cr_assert_eq(trace_report_build(&t, &table[0][0], &r, err), 0, "%s", err);
    for (int c = 0; c < C; c++) {
        cr_expect_eq(r.sm[c], 100 + c);
        NEAR(r.pace[c], (10 + c) / 13.5);
        NEAR(r.work[1 * C + c], 20 + 2 * c);
    }
    trace_report_free(&r);
    step_trace_free(&t);
}

Test(trace_report, missing_or_backward_times_are_errors)
{
    step_trace_t t;
    trace_report_t r;
    char err[ERR_MAX];
    made_up_trace(&t);
    t.t[(2 * 2 + 1) * 2 + 0] = 0; /* CTA 1, stage 1 done: not written */
    cr_expect_eq(trace_report_build(&t, &made_up_table[0][0], &r, err), -1);
    cr_expect(strstr(err, "CTA 1 wrote no time for its work done of stage 1"), "message: %s", err);
    t.t[(2 * 2 + 1) * 2 + 0] = 14000; /* before its release of stage 0 (15500) */
    cr_expect_eq(trace_report_build(&t, &made_up_table[0][0], &r, err), -1);
    cr_expect(strstr(err, "CTA 1: its work done of stage 1 (14000 ns) is before"), "message: %s", err);
    t.t[(2 * 2 + 1) * 2 + 0] = 29500;
    *step_trace_tower(&t, 1, 1) = NUM_TOWERS + 1;
    cr_expect_eq(trace_report_build(&t, &made_up_table[0][0], &r, err), -1);
    cr_expect(strstr(err, "CTA 1: tower 5 in stage 1"), "message: %s", err);
    step_trace_free(&t);
}
