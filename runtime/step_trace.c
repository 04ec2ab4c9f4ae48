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
    free(r->pace);
    memset(r, 0, sizeof *r);
}

/* Every time written, and each CTA's times in order (start, then done and released of
 * every stage). */
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
        for (int s = 0; s < t->stages; s++) {
            const unsigned long long k = *step_trace_tower(t, s, c);
            if (k > NUM_TOWERS) return seterr(err, "trace: CTA %d: tower %llu in stage %d", c, k, s);
        }
    }
    return 0;
}

static int by_share_desc(const void *a, const void *b)
{
    const double x = ((const phase_time_t *)a)->share, y = ((const phase_time_t *)b)->share;
    return (x < y) - (x > y);
}

/* Phase summary: each stage's work_max counts in full for each active phase of it, its
 * span in equal shares. */
static void summarise_phases(trace_report_t *r)
{
    r->phase = xcalloc((size_t)r->stages * NUM_TOWERS, sizeof *r->phase);
    for (int s = 0; s < r->stages; s++) {
        const stage_entry_t *e = r->table + (size_t)s * NUM_TOWERS;
        const char *names[NUM_TOWERS];
        int active = 0;
        for (int k = 0; k < NUM_TOWERS; k++) {
            if (e[k].phase == PHASE_IDLE) continue;
            const char *name = phase_name(k, e[k].phase);
            int seen = 0; /* in_up, in_down and out: one name for the four towers */
            for (int j = 0; j < active; j++) seen |= !strcmp(names[j], name);
            if (!seen) names[active++] = name;
        }
        for (int j = 0; j < active; j++) {
            int p = 0;
            while (p < r->nphases && strcmp(r->phase[p].name, names[j])) p++;
            if (p == r->nphases) r->phase[r->nphases++].name = names[j];
            r->phase[p].stages++;
            r->phase[p].work += r->stage[s].work_max;
            r->phase[p].share += r->stage[s].span / active;
        }
    }
    qsort(r->phase, (size_t)r->nphases, sizeof *r->phase, by_share_desc);
}

/* Each CTA's SM and pace (see trace_report_t). */
static void measure_paces(const step_trace_t *t, trace_report_t *r)
{
    const int S = r->stages, C = r->ctas;
    r->sm = xmalloc((size_t)C * sizeof *r->sm);
    r->pace = xmalloc((size_t)C * sizeof *r->pace);
    double *ratio = xmalloc((size_t)S * sizeof *ratio);
    for (int c = 0; c < C; c++) {
        r->sm[c] = (int)*step_trace_sm(t, c);
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
    r->work = xmalloc((size_t)S * C * sizeof *r->work);
    r->start_spread = 1e-3 * (double)(start_max - t0);
    double *work = xmalloc((size_t)C * sizeof *work), *wait = xmalloc((size_t)C * sizeof *wait);
    double *tower_work = xmalloc((size_t)C * sizeof *tower_work);
    double prev_last = r->start_spread; /* last release of the previous stage: the last start */
    for (int s = 0; s < S; s++) {
        stage_time_t *st = &r->stage[s];
        double last = 0;
        for (int c = 0; c < C; c++) {
            work[c] = r->work[(size_t)s * C + c] = AT(s + 1, c, 0) - AT(s, c, 1);
            wait[c] = AT(s + 1, c, 1) - AT(s + 1, c, 0);
            if (c == 0 || work[c] > st->work_max) {
                st->work_max = work[c];
                st->slowest = c;
            }
            if (wait[c] > st->wait_max) st->wait_max = wait[c];
            if (AT(s + 1, c, 1) > last) last = AT(s + 1, c, 1);
        }
        for (int k = 0; k < NUM_TOWERS; k++) { /* before median() sorts work[] */
            int n = 0;
            for (int c = 0; c < C; c++)
                if (*step_trace_tower(t, s, c) == (unsigned long long)k) {
                    tower_work[n++] = work[c];
                    if (work[c] > st->tower[k].work_max) st->tower[k].work_max = work[c];
                }
            st->tower[k].ctas = n;
            st->tower[k].work_median = n ? median(tower_work, (size_t)n) : 0.0;
        }
        st->work_median = median(work, (size_t)C);
        st->wait_median = median(wait, (size_t)C);
        st->span = last - prev_last;
        prev_last = last;
        r->work_sum += st->work_max;
        r->wait_max_sum += st->wait_max;
        r->wait_median_sum += st->wait_median;
        r->span_sum += st->span;
    }
#undef AT
    r->step = prev_last;
    free(work);
    free(wait);
    free(tower_work);
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
    fprintf(f, "slowest CTAs (cta/sm pace):");
    for (int i = 0; i < n && i < 12; i++) fprintf(f, " %d/%d %.3f", order[i], r->sm[order[i]], r->pace[order[i]]);
    fputc('\n', f);
    free(order);
}

void trace_report_print(FILE *f, const trace_report_t *r, int batch)
{
    fprintf(f,
            "\nper-stage trace of one fused step at batch %d: %d stages, %d CTAs; times in us from\n"
            "%%globaltimer. work: a CTA's own work of the stage, from its release by the previous\n"
            "barrier to all its warps done (max over CTAs = the slowest CTA, and the median);\n"
            "wait: done to released by the grid barrier (max, median; a CTA whose next phase is a\n"
            "projection asks for its first weights before it waits, which the wait includes); span:\n"
            "the stage's last release minus the previous stage's last release (spans + start spread\n"
            "= step).\n",
            batch, r->stages, r->ctas);
    fprintf(f, "%5s %-15s %-15s %-15s %-15s %9s %5s %9s %9s %9s %9s\n", "stage", "xlstm",
            "mamba2", "retnet", "hawk", "work max", "cta", "work med", "wait max", "wait med", "span");
    for (int s = 0; s < r->stages; s++) {
        const stage_time_t *st = &r->stage[s];
        fprintf(f, "%5d", s);
        for (int k = 0; k < NUM_TOWERS; k++)
            fprintf(f, " %-15s", phase_name(k, r->table[(size_t)s * NUM_TOWERS + k].phase));
        fprintf(f, " %9.1f %5d %9.1f %9.1f %9.1f %9.1f\n", st->work_max, st->slowest, st->work_median,
                st->wait_max, st->wait_median, st->span);
    }
    fprintf(f,
            "totals: slowest-CTA work %.1f us, barrier wait %.1f us (sum of max) / %.1f us (sum of\n"
            "median), sum of spans %.1f us, CTA start spread %.1f us, step %.1f us (first start to\n"
            "last release)\n",
            r->work_sum, r->wait_max_sum, r->wait_median_sum, r->span_sum, r->start_spread, r->step);
    fprintf(f,
            "\nper tower: the CTAs that ran each tower's phase of the stage, their slowest and median\n"
            "work (us)\n%5s", "stage");
    for (int k = 0; k < NUM_TOWERS; k++) fprintf(f, " %-15s %4s %6s %6s", tower_names[k], "ctas", "max", "med");
    fputc('\n', f);
    for (int s = 0; s < r->stages; s++) {
        fprintf(f, "%5d", s);
        for (int k = 0; k < NUM_TOWERS; k++) {
            const int n = r->stage[s].tower[k].ctas;
            if (n)
                fprintf(f, " %-15s %4d %6.1f %6.1f", phase_name(k, r->table[(size_t)s * NUM_TOWERS + k].phase), n,
                        r->stage[s].tower[k].work_max, r->stage[s].tower[k].work_median);
            else
                fprintf(f, " %-15s %4s %6s %6s", "-", "", "", "");
        }
        fputc('\n', f);
    }
    print_paces(f, r);
    fprintf(f,
            "\nby phase, largest share first. share: each stage's span split equally among the phases\n"
            "it runs (in_up, in_down and out count once for the four towers); the shares add up to\n"
            "the sum of spans. work: the slowest-CTA work of the stages it runs, each in full.\n");
    fprintf(f, "%-16s %6s %10s %7s %10s\n", "phase", "stages", "share us", "share", "work us");
    for (int p = 0; p < r->nphases; p++) {
        const phase_time_t *ph = &r->phase[p];
        fprintf(f, "%-16s %6d %10.1f %6.1f%% %10.1f\n", ph->name, ph->stages, ph->share,
                r->span_sum > 0 ? 100 * ph->share / r->span_sum : 0.0, ph->work);
    }
}

json_t *trace_report_json(const trace_report_t *r, int batch)
{
    json_t *stages = json_array(), *phases = json_array();
    for (int s = 0; s < r->stages; s++) {
        const stage_time_t *st = &r->stage[s];
        json_t *names = json_array();
        for (int k = 0; k < NUM_TOWERS; k++)
            json_array_append_new(names, json_string(phase_name(k, r->table[(size_t)s * NUM_TOWERS + k].phase)));
        json_t *towers = json_array();
        for (int k = 0; k < NUM_TOWERS; k++)
            json_array_append_new(towers, json_pack("{s:i,s:f,s:f}", "ctas", st->tower[k].ctas, "work_max_us",
                                                    st->tower[k].work_max, "work_median_us",
                                                    st->tower[k].work_median));
        json_t *work = json_array();
        for (int c = 0; c < r->ctas; c++) json_array_append_new(work, json_real(r->work[(size_t)s * r->ctas + c]));
        json_array_append_new(stages, json_pack("{s:i,s:o,s:f,s:i,s:f,s:f,s:f,s:f,s:o,s:o}", "stage", s,
                                                "phases", names, "work_max_us", st->work_max, "slowest_cta",
                                                st->slowest, "work_median_us", st->work_median,
                                                "wait_max_us", st->wait_max, "wait_median_us",
                                                st->wait_median, "span_us", st->span, "towers", towers,
                                                "cta_work_us", work));
    }
    json_t *sms = json_array(), *paces = json_array();
    for (int c = 0; c < r->ctas; c++) {
        json_array_append_new(sms, json_integer(r->sm[c]));
        json_array_append_new(paces, isnan(r->pace[c]) ? json_null() : json_real(r->pace[c]));
    }
    for (int p = 0; p < r->nphases; p++)
        json_array_append_new(phases, json_pack("{s:s,s:i,s:f,s:f}", "phase", r->phase[p].name, "stages",
                                                r->phase[p].stages, "share_us", r->phase[p].share,
                                                "work_us", r->phase[p].work));
    return json_pack("{s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:f,s:o,s:o,s:o,s:o}", "batch", batch, "ctas", r->ctas,
                     "work_max_sum_us", r->work_sum, "wait_max_sum_us", r->wait_max_sum,
                     "wait_median_sum_us", r->wait_median_sum, "span_sum_us", r->span_sum,
                     "start_spread_us", r->start_spread, "step_us", r->step, "stages", stages,
                     "phases", phases, "cta_sm", sms, "cta_pace", paces);
}
