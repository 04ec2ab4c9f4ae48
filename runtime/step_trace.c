/* The per-stage trace report (see step_trace.h). */
#include "step_trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "util.h"

void step_trace_free(step_trace_t *t)
{
    free(t->t);
    t->t = NULL;
}

void trace_report_free(trace_report_t *r)
{
    free(r->table);
    free(r->stage);
    free(r->phase);
    free(r->work);
    free(r->sm);
    free(r->group);
    free(r->pace);
    memset(r, 0, sizeof *r);
}

/* Every time written, each CTA's times in order (start, then done and released of every
 * stage), towers in range and a CTA's phases all of its own tower. */
static int check_trace(const step_trace_t *t, char *err)
{
    for (int c = 0; c < t->ctas; c++) {
        unsigned long long prev = 0;
        for (int row = 0; row <= t->stages; row++)
            for (int i = 0; i < 2; i++) {
                const unsigned long long v = t->t[((size_t)row * t->ctas + c) * 2 + i];
                const char *what = row == 0 ? "its start" : i == 0 ? "its work done" : "its release";
                if (v == 0) return seterr(err, "trace: CTA %d wrote no time for %s of stage %d", c, what, row - 1);
                if (v < prev)
                    return seterr(err, "trace: CTA %d: %s of stage %d (%llu ns) is before its previous time (%llu ns)",
                                  c, what, row - 1, v, prev);
                prev = v;
            }
        const unsigned long long g = *step_trace_group(t, c);
        if (g >= NUM_TOWERS) return seterr(err, "trace: CTA %d: its tower is %llu", c, g);
        for (int s = 0; s < t->stages; s++) {
            const unsigned long long k = *step_trace_tower(t, s, c);
            if (k != NUM_TOWERS && k != g)
                return seterr(err, "trace: CTA %d of tower %llu: tower %llu in stage %d", c, g, k, s);
        }
    }
    return 0;
}

static int by_tower_then_span_desc(const void *a, const void *b)
{
    const phase_time_t *x = a, *y = b;
    if (x->tower != y->tower) return x->tower - y->tower;
    return (x->span < y->span) - (x->span > y->span);
}

/* Phase summary: for each tower, each stage's work_max and span go to its phase. */
static void summarise_phases(trace_report_t *r)
{
    r->phase = xcalloc((size_t)r->stages * NUM_TOWERS, sizeof *r->phase);
    for (int s = 0; s < r->stages; s++)
        for (int k = 0; k < NUM_TOWERS; k++) {
            const int phase = r->table[(size_t)s * NUM_TOWERS + k].phase;
            if (phase == PHASE_IDLE || !r->tower[k].ctas) continue;
            const char *name = phase_name(k, phase);
            int p = 0;
            while (p < r->nphases && (r->phase[p].tower != k || strcmp(r->phase[p].name, name))) p++;
            if (p == r->nphases) r->phase[r->nphases++] = (phase_time_t){.tower = k, .name = name};
            r->phase[p].stages++;
            r->phase[p].work += r->stage[s].tower[k].work_max;
            r->phase[p].span += r->stage[s].tower[k].span;
        }
    qsort(r->phase, (size_t)r->nphases, sizeof *r->phase, by_tower_then_span_desc);
}

/* Each CTA's pace (see trace_report_t). */
static void measure_paces(const step_trace_t *t, trace_report_t *r)
{
    const int S = r->stages, C = r->ctas;
    r->pace = xmalloc((size_t)C * sizeof *r->pace);
    double *ratio = xmalloc((size_t)S * sizeof *ratio);
    for (int c = 0; c < C; c++) {
        size_t n = 0;
        for (int s = 0; s < S; s++) {
            const unsigned long long k = *step_trace_tower(t, s, c);
            if (k >= NUM_TOWERS || r->stage[s].tower[k].ctas < PACE_MIN_CTAS) continue;
            const double typical = r->stage[s].tower[k].work_median;
            if (typical > 0) ratio[n++] = r->work[(size_t)s * C + c] / typical;
        }
        r->pace[c] = n ? median(ratio, n) : NAN;
    }
    free(ratio);
}

int trace_report_build(const step_trace_t *t, const stage_entry_t *table, trace_report_t *r, char *err)
{
    memset(r, 0, sizeof *r);
    if (t->stages < 1 || t->ctas < 1) return seterr(err, "trace: empty (%d stages, %d CTAs)", t->stages, t->ctas);
    if (check_trace(t, err)) return -1;
    const int S = t->stages, C = t->ctas;
    /* time of CTA c at row, i, in us after the first start */
    unsigned long long t0 = t->t[0], start_max = t->t[0];
    for (int c = 0; c < C; c++) {
        const unsigned long long v = t->t[(size_t)c * 2];
        if (v < t0) t0 = v;
        if (v > start_max) start_max = v;
    }
#define AT(row, c, i) (1e-3 * (double)(t->t[((size_t)(row) * C + (c)) * 2 + (i)] - t0))
    r->stages = S;
    r->ctas = C;
    r->table = xmalloc((size_t)S * NUM_TOWERS * sizeof *r->table);
    memcpy(r->table, table, (size_t)S * NUM_TOWERS * sizeof *r->table);
    r->stage = xcalloc((size_t)S, sizeof *r->stage);
    r->work = xcalloc((size_t)S * C, sizeof *r->work);
    r->sm = xmalloc((size_t)C * sizeof *r->sm);
    r->group = xmalloc((size_t)C * sizeof *r->group);
    r->start_spread = 1e-3 * (double)(start_max - t0);
    double last[NUM_TOWERS]; /* each tower's last release so far: first its last start */
    for (int c = 0; c < C; c++) {
        const int k = r->group[c] = (int)*step_trace_group(t, c);
        r->sm[c] = (int)*step_trace_sm(t, c);
        r->tower[k].ctas++;
        if (AT(0, c, 0) > r->tower[k].start) r->tower[k].start = AT(0, c, 0);
    }
    for (int k = 0; k < NUM_TOWERS; k++) last[k] = r->tower[k].start;
    double *work = xmalloc((size_t)C * sizeof *work), *wait = xmalloc((size_t)C * sizeof *wait);
    for (int s = 0; s < S; s++)
        for (int k = 0; k < NUM_TOWERS; k++) {
            phase_run_t *run = &r->stage[s].tower[k];
            run->slowest = -1;
            if (table[(size_t)s * NUM_TOWERS + k].phase == PHASE_IDLE || !r->tower[k].ctas) continue;
            int nw = 0, nc = 0;
            double release = last[k];
            for (int c = 0; c < C; c++) {
                if (r->group[c] != k) continue;
                const double w = r->work[(size_t)s * C + c] = AT(s + 1, c, 0) - AT(s, c, 1);
                wait[nc++] = AT(s + 1, c, 1) - AT(s + 1, c, 0);
                if (AT(s + 1, c, 1) > release) release = AT(s + 1, c, 1);
                if (*step_trace_tower(t, s, c) != (unsigned long long)k) continue;
                if (!nw || w > run->work_max) {
                    run->work_max = w;
                    run->slowest = c;
                }
                work[nw++] = w;
            }
            run->ctas = nw;
            run->work_median = nw ? median(work, (size_t)nw) : 0.0;
            for (int i = 0; i < nc; i++)
                if (wait[i] > run->wait_max) run->wait_max = wait[i];
            run->wait_median = median(wait, (size_t)nc);
            run->span = release - last[k];
            last[k] = release;
            r->tower[k].work_sum += run->work_max;
            r->tower[k].wait_max_sum += run->wait_max;
            r->tower[k].wait_median_sum += run->wait_median;
        }
#undef AT
    for (int k = 0; k < NUM_TOWERS; k++) {
        r->tower[k].done = last[k];
        if (last[k] > r->step) r->step = last[k];
    }
    free(work);
    free(wait);
    summarise_phases(r);
    measure_paces(t, r);
    return 0;
}

static int by_pace_desc(const void *a, const void *b, void *pace)
{
    const double x = ((const double *)pace)[*(const int *)a], y = ((const double *)pace)[*(const int *)b];
    return (x < y) - (x > y);
}

/* The spread of the CTAs' paces and the slowest CTAs with their SMs. */
static void print_paces(FILE *f, const trace_report_t *r)
{
    int *order = xmalloc((size_t)r->ctas * sizeof *order), n = 0;
    for (int c = 0; c < r->ctas; c++)
        if (!isnan(r->pace[c])) order[n++] = c;
    fprintf(f,
            "\npace: a CTA's work over the median of its phase's CTAs, median over the stages where\n"
            "the phase ran on at least %d CTAs (1.10: 10%% slower than the typical CTA)\n",
            PACE_MIN_CTAS);
    if (!n) {
        fprintf(f, "no stage ran a phase on %d CTAs or more\n", PACE_MIN_CTAS);
        free(order);
        return;
    }
    qsort_r(order, (size_t)n, sizeof *order, by_pace_desc, r->pace);
    fprintf(f, "%d CTAs: slowest %.3f, 10th slowest %.3f, median %.3f, 10th fastest %.3f, fastest %.3f\n", n,
            r->pace[order[0]], r->pace[order[n < 10 ? n - 1 : 9]], r->pace[order[n / 2]],
            r->pace[order[n < 10 ? 0 : n - 10]], r->pace[order[n - 1]]);
    fprintf(f, "slowest CTAs (cta/sm/tower pace):");
    for (int i = 0; i < n && i < 12; i++)
        fprintf(f, " %d/%d/%s %.3f", order[i], r->sm[order[i]], tower_names[r->group[order[i]]], r->pace[order[i]]);
    fputc('\n', f);
    free(order);
}

void trace_report_print(FILE *f, const trace_report_t *r, int batch)
{
    fprintf(f,
            "\nper-stage trace of one fused step at batch %d: %d stages, %d CTAs; times in us from\n"
            "%%globaltimer. The towers share nothing within a step: each has its own CTAs and\n"
            "barrier and runs its phases at its own pace. For each tower, the stages it runs a\n"
            "phase in. work: a CTA's own work of the stage, from its release by the tower's previous\n"
            "barrier to all its warps done (max over the CTAs that ran the phase = the slowest, and\n"
            "the median); wait: done to released by the tower's barrier (max, median over the\n"
            "tower's CTAs; a CTA whose next phase is a projection asks for its first weights before\n"
            "it waits, which the wait includes); span: the tower's last release minus its previous\n"
            "one (the tower's spans + its last CTA's start = its time).\n",
            batch, r->stages, r->ctas);
    for (int k = 0; k < NUM_TOWERS; k++) {
        const tower_time_t *tw = &r->tower[k];
        fprintf(f, "\n%s: %d CTAs, done at %.1f us\n", tower_names[k], tw->ctas, tw->done);
        if (!tw->ctas) continue;
        fprintf(f, "%5s %-15s %5s %9s %5s %9s %9s %9s %9s\n", "stage", "phase", "ctas", "work max", "cta",
                "work med", "wait max", "wait med", "span");
        for (int s = 0; s < r->stages; s++) {
            const int phase = r->table[(size_t)s * NUM_TOWERS + k].phase;
            if (phase == PHASE_IDLE) continue;
            const phase_run_t *run = &r->stage[s].tower[k];
            fprintf(f, "%5d %-15s %5d %9.1f %5d %9.1f %9.1f %9.1f %9.1f\n", s, phase_name(k, phase), run->ctas,
                    run->work_max, run->slowest, run->work_median, run->wait_max, run->wait_median, run->span);
        }
        fprintf(f, "%s totals: slowest-CTA work %.1f us, barrier wait %.1f us (sum of max) / %.1f us (sum of median)\n",
                tower_names[k], tw->work_sum, tw->wait_max_sum, tw->wait_median_sum);
    }
    fprintf(f, "\nstep %.1f us (first start to the last tower done), CTA start spread %.1f us; done at:", r->step,
            r->start_spread);
    for (int k = 0; k < NUM_TOWERS; k++) fprintf(f, " %s %.1f", tower_names[k], r->tower[k].done);
    fputc('\n', f);
    print_paces(f, r);
    fprintf(f,
            "\nby phase, for each tower, largest span first. span: the sum of the phase's stages'\n"
            "spans; share: of the tower's time after its last start. work: the slowest-CTA work of\n"
            "the stages it runs.\n");
    fprintf(f, "%-8s %-16s %6s %10s %7s %10s\n", "tower", "phase", "stages", "span us", "share", "work us");
    for (int p = 0; p < r->nphases; p++) {
        const phase_time_t *ph = &r->phase[p];
        const double time = r->tower[ph->tower].done - r->tower[ph->tower].start;
        fprintf(f, "%-8s %-16s %6d %10.1f %6.1f%% %10.1f\n", tower_names[ph->tower], ph->name, ph->stages, ph->span,
                time > 0 ? 100 * ph->span / time : 0.0, ph->work);
    }
}

json_t *trace_report_json(const trace_report_t *r, int batch)
{
    json_t *towers = json_array();
    for (int k = 0; k < NUM_TOWERS; k++) {
        const tower_time_t *tw = &r->tower[k];
        json_t *stages = json_array(), *phases = json_array();
        for (int s = 0; s < r->stages; s++) {
            const int phase = r->table[(size_t)s * NUM_TOWERS + k].phase;
            if (phase == PHASE_IDLE || !tw->ctas) continue;
            const phase_run_t *run = &r->stage[s].tower[k];
            json_array_append_new(stages, json_pack("{s:i,s:s,s:i,s:f,s:i,s:f,s:f,s:f,s:f}", "stage", s, "phase",
                                                    phase_name(k, phase), "ctas", run->ctas, "work_max_us",
                                                    run->work_max, "slowest_cta", run->slowest, "work_median_us",
                                                    run->work_median, "wait_max_us", run->wait_max,
                                                    "wait_median_us", run->wait_median, "span_us", run->span));
        }
        for (int p = 0; p < r->nphases; p++)
            if (r->phase[p].tower == k)
                json_array_append_new(phases, json_pack("{s:s,s:i,s:f,s:f}", "phase", r->phase[p].name, "stages",
                                                        r->phase[p].stages, "span_us", r->phase[p].span,
                                                        "work_us", r->phase[p].work));
        json_array_append_new(towers, json_pack("{s:s,s:i,s:f,s:f,s:f,s:f,s:f,s:o,s:o}", "tower", tower_names[k],
                                                "ctas", tw->ctas, "start_us", tw->start, "done_us", tw->done,
                                                "work_max_sum_us", tw->work_sum, "wait_max_sum_us",
                                                tw->wait_max_sum, "wait_median_sum_us", tw->wait_median_sum,
                                                "stages", stages, "phases", phases));
    }
    json_t *sms = json_array(), *groups = json_array(), *paces = json_array(), *work = json_array();
    for (int c = 0; c < r->ctas; c++) {
        json_array_append_new(sms, json_integer(r->sm[c]));
        json_array_append_new(groups, json_string(tower_names[r->group[c]]));
        json_array_append_new(paces, isnan(r->pace[c]) ? json_null() : json_real(r->pace[c]));
    }
    for (int s = 0; s < r->stages; s++) {
        json_t *row = json_array();
        for (int c = 0; c < r->ctas; c++) json_array_append_new(row, json_real(r->work[(size_t)s * r->ctas + c]));
        json_array_append_new(work, row);
    }
    return json_pack("{s:i,s:i,s:i,s:f,s:f,s:o,s:o,s:o,s:o,s:o}", "batch", batch, "stages", r->stages, "ctas",
                     r->ctas, "step_us", r->step, "start_spread_us", r->start_spread, "towers", towers, "cta_sm",
                     sms, "cta_tower", groups, "cta_pace", paces, "cta_work_us", work);
}
