#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "compare.h"
#include "util.h"

const char *shared_path(const char *rel)
{
    static _Thread_local char buf[4096];
    const char *root = getenv("STEPFUSE_SHARED");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "../shared", rel);
    return buf;
}

void golden_load(const char *case_name, golden_t *g) { golden_load_as(case_name, PRECISION_FP32, g); }

void golden_load_as(const char *case_name, precision_t weights, golden_t *g)
{
    char err[SPEC_ERR_MAX > ERR_MAX ? SPEC_ERR_MAX : ERR_MAX], path[256];
    snprintf(path, sizeof path, "specs/%s.yaml", case_name);
    cr_assert_eq(spec_load(path, &g->spec, err), 0, "%s", err);
    g->spec.precision.weights = weights;
    snprintf(path, sizeof path, "golden/%s/weights.safetensors", case_name);
    cr_assert_eq(weights_load(shared_path(path), &g->spec, &g->w, err), 0, "%s", err);
    snprintf(path, sizeof path, "golden/%s/io.safetensors", case_name);
    cr_assert_eq(stream_load(shared_path(path), g->spec.num_features, &g->s, err), 0, "%s", err);
}

void golden_free(golden_t *g)
{
    stream_free(&g->s);
    weights_free(&g->w);
}

engine_t *make_engine(const spec_t *s, const weights_t *w, const char *backend, int fp64,
                      int max_symbols)
{
    char err[ERR_MAX];
    engine_options_t o = {.backend = backend, .fp64 = fp64, .max_symbols = max_symbols};
    engine_t *e = engine_create(s, w, &o, err);
    cr_assert_not_null(e, "%s", err);
    return e;
}

double *run_stream(engine_t *e, const request_stream_t *s, int batch)
{
    char err[ERR_MAX];
    double *out = xmalloc((size_t)s->n * 4 * sizeof *out);
    for (int i = 0; i < 4 * s->n; i++) out[i] = NAN;
    cr_assert_eq(stream_run(e, s, batch, out, err), 0, "%s", err);
    return out;
}

double *run_random_batches(engine_t *e, const request_stream_t *s, uint64_t *x)
{
    char err[ERR_MAX];
    double *out = xmalloc((size_t)s->n * 4 * sizeof *out);
    for (int i = 0; i < 4 * s->n; i++) out[i] = NAN;
    for (int k = 0; k < s->num_symbols; k++) e->ops->reset_slot(e, k);
    for (int i = 0; i < s->n;) {
        *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
        int nb = 1 + (int)(*x % 24);
        if (nb > s->n - i) nb = s->n - i;
        cr_assert_eq(engine_step(e, nb, s->slot + i, s->features + (size_t)i * s->num_features,
                                 out + 4 * (size_t)i, err),
                     0, "%s", err);
        i += nb;
    }
    return out;
}

size_t count_nonfinite(const double *v, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !isfinite(v[i]);
    return bad;
}

void expect_towers_within(const double *got, const double *want, size_t n, double tol, const char *what)
{
    compare_t c;
    compare_outputs(got, want, n, &c);
    cr_log_info("%s: rel L2 %.3e %.3e %.3e %.3e (all %.3e), max abs %.3e", what, c.rel_l2[0], c.rel_l2[1],
                c.rel_l2[2], c.rel_l2[3], c.rel_l2_all, c.max_abs_all);
    cr_expect_eq(c.nonfinite, 0, "%s: %zu outputs not finite (unwritten or NaN)", what, c.nonfinite);
    for (int k = 0; k < NUM_TOWERS; k++)
        cr_expect_leq(c.rel_l2[k], tol, "%s, tower %s: rel L2 %.3e > %.1e", what, tower_names[k], c.rel_l2[k], tol);
}

int run_command(const char *cmd, int timeout_s, char **output)
{
    char full[2048];
    snprintf(full, sizeof full, "timeout %d %s 2>&1", timeout_s, cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p, "cannot run %s", full);
    size_t cap = 4096, len = 0, got;
    char *buf = xmalloc(cap);
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 2) {
            buf = realloc(buf, cap *= 2);
            cr_assert_not_null(buf, "out of memory reading the output of %s", full);
        }
    }
    buf[len] = '\0';
    const int status = pclose(p);
    *output = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void expect_command(const char *cmd, int code, const char *fragment)
{
    char *out;
    const int rc = run_command(cmd, 20, &out);
    cr_expect_eq(rc, code, "%s: exit %d, expected %d\n%s", cmd, rc, code, out);
    cr_expect(strstr(out, fragment), "%s: output does not mention '%s':\n%s", cmd, fragment, out);
    free(out);
}

char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}
