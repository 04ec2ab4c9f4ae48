#include "replay_report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* nearest-rank percentile of sorted v[n] */
static double percentile(const double *v, int n, double pct)
{
    int rank = (int)ceil(pct / 100.0 * n);
    return v[rank < 1 ? 0 : rank - 1];
}

void replay_report_make(const replay_result_t *r, const double *reference, int reference_n,
                        replay_report_t *rep)
{
    rep->requests = r->n;
    rep->sent = r->sent;
    rep->responses = r->responses;
    double *lat = xmalloc((size_t)(r->n ? r->n : 1) * sizeof *lat);
    double *out = xmalloc((size_t)(r->n ? r->n : 1) * 4 * sizeof *out);
    double *ref = xmalloc((size_t)(r->n ? r->n : 1) * 4 * sizeof *ref);
    int answered = 0, compared = 0;
    double sum = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->latency_ms[i] < 0) continue;
        lat[answered++] = r->latency_ms[i];
        sum += r->latency_ms[i];
        if (reference && i < reference_n) {
            memcpy(out + 4 * compared, r->predictions + 4 * (size_t)i, 4 * sizeof *out);
            memcpy(ref + 4 * compared, reference + 4 * (size_t)i, 4 * sizeof *ref);
            compared++;
        }
    }
    rep->answered = answered;
    rep->dropped = r->n - answered;
    qsort(lat, (size_t)answered, sizeof *lat, cmp_double);
    rep->p50_ms = answered ? percentile(lat, answered, 50) : NAN;
    rep->p90_ms = answered ? percentile(lat, answered, 90) : NAN;
    rep->p99_ms = answered ? percentile(lat, answered, 99) : NAN;
    rep->max_ms = answered ? lat[answered - 1] : NAN;
    rep->mean_ms = answered ? sum / answered : NAN;
    rep->duration_s = r->duration_s;
    rep->throughput = r->duration_s > 0 ? answered / r->duration_s : 0;
    rep->compared = compared;
    memset(&rep->accuracy, 0, sizeof rep->accuracy);
    if (compared) compare_outputs(out, ref, (size_t)compared, &rep->accuracy);
    free(lat);
    free(out);
    free(ref);
}

void replay_report_print(FILE *f, const replay_report_t *rep)
{
    fprintf(f, "replay of %s", rep->data ? rep->data : "a stream");
    if (rep->speed > 0) fprintf(f, " at %gx the recorded pace", rep->speed);
    else fprintf(f, " as fast as answered");
    if (rep->spec) fprintf(f, ", spec %s", rep->spec);
    if (rep->backend) fprintf(f, ", backend %s", rep->backend);
    fprintf(f, "\n  requests   %d sent of %d, %d answered, %d dropped (%ld responses, %.2f "
               "answers each)\n",
            rep->sent, rep->requests, rep->answered, rep->dropped, rep->responses,
            rep->responses ? (double)rep->answered / (double)rep->responses : 0.0);
    fprintf(f, "  latency    p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms\n",
            rep->p50_ms, rep->p90_ms, rep->p99_ms, rep->max_ms, rep->mean_ms);
    fprintf(f, "  throughput %.1f answered requests/s over %.3f s\n", rep->throughput,
            rep->duration_s);
    if (rep->compared) {
        fprintf(f, "  accuracy   %d answers against the reference (%s):\n", rep->compared,
                rep->reference ? rep->reference : "?");
        compare_print(f, &rep->accuracy);
    } else {
        fprintf(f, "  accuracy   not measured (no reference run)\n");
    }
}

/* NaN is not JSON: write null for it. */
static json_t *number(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *maybe_string(const char *s) { return s ? json_string(s) : json_null(); }

int replay_report_write_json(const char *path, const replay_report_t *rep, char *err)
{
    json_t *o = json_object();
    json_object_set_new(o, "data", maybe_string(rep->data));
    json_object_set_new(o, "spec", maybe_string(rep->spec));
    json_object_set_new(o, "backend", maybe_string(rep->backend));
    json_object_set_new(o, "speed", json_real(rep->speed));
    json_object_set_new(o, "requests", json_integer(rep->requests));
    json_object_set_new(o, "sent", json_integer(rep->sent));
    json_object_set_new(o, "answered", json_integer(rep->answered));
    json_object_set_new(o, "dropped", json_integer(rep->dropped));
    json_object_set_new(o, "responses", json_integer(rep->responses));
    json_t *lat = json_object();
    json_object_set_new(lat, "p50", number(rep->p50_ms));
    json_object_set_new(lat, "p90", number(rep->p90_ms));
    json_object_set_new(lat, "p99", number(rep->p99_ms));
    json_object_set_new(lat, "max", number(rep->max_ms));
    json_object_set_new(lat, "mean", number(rep->mean_ms));
    json_object_set_new(o, "latency_ms", lat);
    json_object_set_new(o, "duration_s", number(rep->duration_s));
    json_object_set_new(o, "throughput_rps", number(rep->throughput));
    json_t *acc = json_null();
    if (rep->compared) {
        acc = json_object();
        json_object_set_new(acc, "reference", maybe_string(rep->reference));
        json_object_set_new(acc, "compared", json_integer(rep->compared));
        json_t *towers = json_object();
        for (int k = 0; k < NUM_TOWERS; k++) {
            json_t *t = json_object();
            json_object_set_new(t, "rel_l2", number(rep->accuracy.rel_l2[k]));
            json_object_set_new(t, "max_abs", number(rep->accuracy.max_abs[k]));
            json_object_set_new(towers, tower_names[k], t);
        }
        json_object_set_new(acc, "towers", towers);
        json_object_set_new(acc, "rel_l2_all", number(rep->accuracy.rel_l2_all));
        json_object_set_new(acc, "max_abs_all", number(rep->accuracy.max_abs_all));
        json_object_set_new(acc, "nonfinite", json_integer((json_int_t)rep->accuracy.nonfinite));
    }
    json_object_set_new(o, "accuracy", acc);
    int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (rc) return seterr(err, "%s: cannot write the report: %s", path, strerror(errno));
    return 0;
}
