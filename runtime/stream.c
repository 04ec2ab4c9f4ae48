#include "stream.h"

#include <stdio.h>
#include <string.h>

#include "safetensors.h"
#include "util.h"

/* "[N,79]" style text of a shape; dims < 0 print as N. */
static void shape_text(const int64_t *dims, int ndim, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++) {
        if (dims[i] < 0)
            used += (size_t)snprintf(buf + used, len - used, "%sN", i ? "," : "");
        else
            used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "",
                                     (long long)dims[i]);
    }
    if (used < len) snprintf(buf + used, len - used, "]");
}

/* Find a tensor and check its dtype and shape (dims < 0 match any size). A missing
 * optional tensor returns NULL without an error. */
static const st_tensor_t *expect_tensor(const st_file_t *f, const char *name, st_dtype_t dtype,
                                        int ndim, const int64_t *dims, int optional, char *err)
{
    const st_tensor_t *t = st_find(f, name);
    if (!t) {
        if (!optional) seterr(err, "%s: no tensor '%s'", f->path, name);
        return NULL;
    }
    int ok = t->dtype == dtype && t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = dims[i] < 0 || t->shape[i] == dims[i];
    if (!ok) {
        char want[64], got[64];
        shape_text(dims, ndim, want, sizeof want);
        shape_text(t->shape, t->ndim, got, sizeof got);
        seterr(err, "%s: tensor '%s' is %s %s, expected %s %s", f->path, name, t->dtype_name,
               got, st_dtype_name(dtype), want);
        return NULL;
    }
    return t;
}

int stream_load(const char *path, int num_features, request_stream_t *s, char *err)
{
    st_file_t f;
    memset(s, 0, sizeof *s);
    if (st_open(path, &f, err)) return -1;
    int rc = -1;
    const st_tensor_t *sym = expect_tensor(&f, "symbol", ST_I32, 1, (int64_t[]){-1}, 0, err);
    if (!sym) goto out;
    const int64_t n = sym->shape[0];
    const st_tensor_t *feat =
        expect_tensor(&f, "features", ST_F32, 2, (int64_t[]){n, num_features}, 0, err);
    if (!feat) goto out;
    const st_tensor_t *exp = expect_tensor(&f, "expected", ST_F64, 2, (int64_t[]){n, 4}, 1, err);
    if (!exp && st_find(&f, "expected")) goto out;

    s->n = (int)n;
    s->num_features = num_features;
    s->symbol = xmalloc((size_t)n * sizeof *s->symbol);
    s->slot = xmalloc((size_t)n * sizeof *s->slot);
    s->features = xmalloc((size_t)n * num_features * sizeof *s->features);
    if (st_read_i32(sym, s->symbol, err) || st_read_f32(feat, s->features, err)) goto out;
    if (exp) {
        s->expected = xmalloc((size_t)n * 4 * sizeof *s->expected);
        if (st_read_f64(exp, s->expected, err)) goto out;
    }
    /* slots by first appearance; streams hold tens of symbols, a linear search will do */
    for (int r = 0; r < s->n; r++) {
        int k = 0;
        while (k < r && s->symbol[k] != s->symbol[r]) k++;
        s->slot[r] = k < r ? s->slot[k] : s->num_symbols++;
    }
    rc = 0;
out:
    st_close(&f);
    if (rc) stream_free(s);
    return rc;
}

void stream_free(request_stream_t *s)
{
    free(s->symbol);
    free(s->slot);
    free(s->features);
    free(s->expected);
    memset(s, 0, sizeof *s);
}

int stream_run(engine_t *e, const request_stream_t *s, int batch, double *out, char *err)
{
    if (batch < 1) return seterr(err, "batch size must be >= 1 (got %d)", batch);
    for (int r = 0; r < s->n; r += batch) {
        const int n = s->n - r < batch ? s->n - r : batch;
        if (engine_step(e, n, s->slot + r, s->features + (size_t)r * s->num_features,
                        out + 4 * (size_t)r, err))
            return -1;
    }
    return 0;
}
