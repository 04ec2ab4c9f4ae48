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

/* 3 stages, 3 CTAs: CTAs 0 and 1 are xLSTM's, CTA 2 Mamba2's (Mamba2 idle in stage 1; RetNet
 * and Hawk have none). Times in ns as {done, released} per stage after the starts:
 *            start   stage 0          stage 1          stage 2 (no barrier)
 *   CTA 0    1000    11000 15000      20000 30000      40000 40000
 *   CTA 1    2000    15000 15500      29500 30000      32000 32000   (no units in stage 2)
 *   CTA 2    1500     5000  5200       5200  5200       9000  9000   (idle in stage 1)
 * in us from the first start (1000 ns): work = done - previous release.
 * xLSTM (last start 1): stage 0 works 10, 13 (max 13 CTA 1, median 11.5), waits 4, 0.5 (median
 *   2.25), span 14.5 - 1 = 13.5; stage 1 works 5, 14 (max 14 CTA 1, median 9.5), waits 10, 0.5
 *   (median 5.25), span 29 - 14.5 = 14.5; stage 2 CTA 0 alone: work 10, waits 0, span 10.
 *   Done at 39; work 37, waits 14 (max) / 7.5 (median).
 * Mamba2 (last start 0.5): stage 0 work 3.5, wait 0.2, span 4.2 - 0.5 = 3.7; stage 2 work
 *   8 - 4.2 = 3.8, span 3.8. Done at 8.
 * Step 39, start spread 1. */
static const unsigned long long made_up[] = {
    1000,  1000,  2000,  2000,  1500, 1500, /* row 0: starts */
    11000, 15000, 15000, 15500, 5000, 5200, /* stage 0 */
    20000, 30000, 29500, 30000, 5200, 5200, /* stage 1 */
    40000, 40000, 32000, 32000, 9000, 9000, /* stage 2 */
    0, 0, 1,                                /* towers that ran a phase: stage 0 */
    0, 0, NUM_TOWERS,                       /* stage 1 */
    0, NUM_TOWERS, 1,                       /* stage 2 */
    7, 3, 5,                                /* SMs */
    0, 0, 1,                                /* the CTAs' towers */
};

static stage_entry_t made_up_table[3][NUM_TOWERS] = {
    {{PHASE_IN_UP, 0}, {PHASE_IN_UP, 0}, {PHASE_IN_UP, 0}, {PHASE_IN_UP, 0}},
    {{0, 0}, {PHASE_IDLE, 0}, {PHASE_IDLE, 0}, {PHASE_IDLE, 0}},
    {{PHASE_OUT, 0}, {PHASE_OUT, 0}, {PHASE_OUT, 0}, {PHASE_OUT, 0}},
};

static void made_up_trace(step_trace_t *t)
{
    t->stages = 3;
    t->ctas = 3;
    cr_assert_eq(step_trace_values(3, 3), sizeof made_up / sizeof made_up[0]);
    t->t = xmalloc(sizeof made_up);
    memcpy(t->t, made_up, sizeof made_up);
}

#define NEAR(got, want) cr_expect(fabs((got) - (want)) < 1e-9, "%s = %.6f, expected %.6f", #got, (got), (double)(want))

static const phase_time_t *find_phase(const trace_report_t *r, int tower, const char *name)
{
    for (int p = 0; p < r->nphases; p++)
        if (r->phase[p].tower == tower && !strcmp(r->phase[p].name, name)) return &r->phase[p];
    cr_assert_fail("no phase %s of tower %d in the summary", name, tower);
    return NULL;
}

Test(trace_report, arithmetic_on_a_made_up_trace)
{
    step_trace_t t;
    trace_report_t r;
    char err[ERR_MAX];
    made_up_trace(&t);
    cr_assert_eq(trace_report_build(&t, &made_up_table[0][0], &r, err), 0, "%s", err);
    /* {stage, tower, CTAs that ran it, work max, slowest, work median, wait max, wait median, span} */
    const struct {
        int s, k, ctas;
        double work_max;
        int slowest;
        double work_med, wait_max, wait_med, span;
    } runs[] = {
        {0, 0, 2, 13, 1, 11.5, 4, 2.25, 13.5}, {1, 0, 2, 14, 1, 9.5, 10, 5.25, 14.5}, {2, 0, 1, 10, 0, 10, 0, 0, 10},
        {0, 1, 1, 3.5, 2, 3.5, 0.2, 0.2, 3.7}, {1, 1, 0, 0, -1, 0, 0, 0, 0},          {2, 1, 1, 3.8, 2, 3.8, 0, 0, 3.8},
        {0, 2, 0, 0, -1, 0, 0, 0, 0},          {2, 3, 0, 0, -1, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        const phase_run_t *run = &r.stage[runs[i].s].tower[runs[i].k];
        cr_expect_eq(run->ctas, runs[i].ctas, "stage %d tower %d: %d CTAs", runs[i].s, runs[i].k, run->ctas);
        cr_expect_eq(run->slowest, runs[i].slowest, "stage %d tower %d: slowest CTA %d", runs[i].s, runs[i].k,
                     run->slowest);
        NEAR(run->work_max, runs[i].work_max);
        NEAR(run->work_median, runs[i].work_med);
        NEAR(run->wait_max, runs[i].wait_max);
        NEAR(run->wait_median, runs[i].wait_med);
        NEAR(run->span, runs[i].span);
    }
    cr_expect_eq(r.tower[0].ctas, 2);
    cr_expect_eq(r.tower[1].ctas, 1);
    cr_expect_eq(r.tower[2].ctas, 0);
    NEAR(r.tower[0].start, 1);
    NEAR(r.tower[0].done, 39);
    NEAR(r.tower[0].work_sum, 37);
    NEAR(r.tower[0].wait_max_sum, 14);
    NEAR(r.tower[0].wait_median_sum, 7.5);
    NEAR(r.tower[1].start, 0.5);
    NEAR(r.tower[1].done, 8);
    NEAR(r.tower[1].work_sum, 7.3);
    NEAR(r.start_spread, 1);
    NEAR(r.step, 39);
    NEAR(r.work[2 * 3 + 0], 10);
    NEAR(r.work[1 * 3 + 2], 0); /* Mamba2 idle in stage 1 */
    /* xLSTM: xlstm.0 14.5, in_up 13.5, out 10; Mamba2: out 3.8, in_up 3.7 */
    cr_assert_eq(r.nphases, 5);
    cr_expect_str_eq(r.phase[0].name, "xlstm.0", "by tower, largest span first");
    cr_expect_str_eq(r.phase[3].name, "out");
    cr_expect_eq(r.phase[3].tower, 1);
    NEAR(find_phase(&r, 0, "in_up")->span, 13.5);
    NEAR(find_phase(&r, 0, "xlstm.0")->work, 14);
    NEAR(find_phase(&r, 1, "in_up")->span, 3.7);
    cr_expect_eq(find_phase(&r, 0, "out")->stages, 1);
    for (int k = 0; k < 2; k++) {
        double spans = 0;
        for (int p = 0; p < r.nphases; p++)
            if (r.phase[p].tower == k) spans += r.phase[p].span;
        NEAR(spans, r.tower[k].done - r.tower[k].start);
    }
    cr_expect_eq(r.sm[2], 5);
    cr_expect_eq(r.group[1], 0);
    cr_expect_eq(r.group[2], 1);
    cr_expect(isnan(r.pace[0]) && isnan(r.pace[2]), "no phase ran on %d CTAs: no pace", PACE_MIN_CTAS);
    trace_report_free(&r);
    step_trace_free(&t);
}

/* Paces: 8 xLSTM CTAs (SM 100 + c) run its phase 0 in stage 0 (work 10 + c us, median 13.5)
 * and its phase 1 in stage 1 (20 + 2c, median 27); in stage 2 CTA 0 alone runs the output
 * (one CTA: not counted), twice as slow as the others' stage without units. Both counted
 * ratios of CTA c are (10 + c) / 13.5. */
Test(trace_report, paces_compare_ctas_of_one_phase)
{
    enum { S = 3, C = 8 };
    static const stage_entry_t table[S][NUM_TOWERS] = {
        {{0, 0}, {PHASE_IDLE, 0}, {PHASE_IDLE, 0}, {PHASE_IDLE, 0}},
        {{1, 0}, {PHASE_IDLE, 0}, {PHASE_IDLE, 0}, {PHASE_IDLE, 0}},
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
        *step_trace_tower(&t, 1, c) = 0;
        *step_trace_tower(&t, 2, c) = c ? NUM_TOWERS : 0;
        *step_trace_sm(&t, c) = 100 + c;
        *step_trace_group(&t, c) = 0;
    }
    trace_report_t r;
    char err[ERR_MAX];
    cr_assert_eq(trace_report_build(&t, &table[0][0], &r, err), 0, "%s", err);
    for (int c = 0; c < C; c++) {
        cr_expect_eq(r.sm[c], 100 + c);
        NEAR(r.pace[c], (10 + c) / 13.5);
        NEAR(r.work[1 * C + c], 20 + 2 * c);
    }
    cr_expect_eq(r.stage[2].tower[0].ctas, 1);
    NEAR(r.tower[0].done, 57);
    trace_report_free(&r);
    step_trace_free(&t);
}

Test(trace_report, missing_or_backward_times_and_foreign_towers_are_errors)
{
    step_trace_t t;
    trace_report_t r;
    char err[ERR_MAX];
    made_up_trace(&t);
    const size_t done_1_1 = (2 * 3 + 1) * 2 + 0; /* CTA 1's work done of stage 1 */
    t.t[done_1_1] = 0;
    cr_expect_eq(trace_report_build(&t, &made_up_table[0][0], &r, err), -1);
    cr_expect(strstr(err, "CTA 1 wrote no time for its work done of stage 1"), "message: %s", err);
    t.t[done_1_1] = 14000; /* before its release of stage 0 (15500) */
    cr_expect_eq(trace_report_build(&t, &made_up_table[0][0], &r, err), -1);
    cr_expect(strstr(err, "CTA 1: its work done of stage 1 (14000 ns) is before"), "message: %s", err);
    t.t[done_1_1] = 29500;
    *step_trace_tower(&t, 1, 1) = NUM_TOWERS + 1;
    cr_expect_eq(trace_report_build(&t, &made_up_table[0][0], &r, err), -1);
    cr_expect(strstr(err, "CTA 1 of tower 0: tower 5 in stage 1"), "message: %s", err);
    *step_trace_tower(&t, 1, 1) = 1; /* a phase of Mamba2's, run by one of xLSTM's CTAs */
    cr_expect_eq(trace_report_build(&t, &made_up_table[0][0], &r, err), -1);
    cr_expect(strstr(err, "CTA 1 of tower 0: tower 1 in stage 1"), "message: %s", err);
    *step_trace_tower(&t, 1, 1) = 0;
    *step_trace_group(&t, 2) = NUM_TOWERS;
    cr_expect_eq(trace_report_build(&t, &made_up_table[0][0], &r, err), -1);
    cr_expect(strstr(err, "CTA 2: its tower is 4"), "message: %s", err);
    step_trace_free(&t);
}
