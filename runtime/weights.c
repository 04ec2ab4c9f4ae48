/* Weights loader: a safetensors file checked against the spec's tensor catalogue. */
#include "weights.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* "[2, 64, 64]" */
static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
    return buf;
}

static int same_shape(const tensor_desc_t *d, const st_tensor_t *t)
{
    if (d->ndim != t->ndim) return 0;
    for (int i = 0; i < d->ndim; i++)
        if (d->shape[i] != t->shape[i]) return 0;
    return 1;
}

/* The value nearest to x that precision p stores. */
static float nearest_stored(precision_t p, float x)
{
    return p == PRECISION_BF16 ? bf16_round(x) : p == PRECISION_FP16 ? fp16_round(x) : x;
}

/* Point w->data[i] at catalogue tensor i's fp32 values, rounded to the spec's weight precision
 * when it is a matrix. */
static int bind(weights_t *w, const spec_t *s, int i, const char *path, char *err)
{
    const tensor_desc_t *d = &w->cat.t[i];
    const precision_t p = s->precision.weights;
    const int round = d->matrix && p != PRECISION_FP32;
    const st_tensor_t *t = st_find(&w->file, d->name);
    char want[96], got[96];
    if (!t)
        return seterr(err, "%s: missing tensor '%s' (expected shape %s)", path, d->name,
                      shape_str(d->shape, d->ndim, want, sizeof want));
    if (!same_shape(d, t))
        return seterr(err, "%s: %s: shape %s != expected %s", path, d->name,
                      shape_str(t->shape, t->ndim, got, sizeof got),
                      shape_str(d->shape, d->ndim, want, sizeof want));
    if (t->dtype != ST_F32 && t->dtype != ST_BF16)
        return seterr(err, "%s: %s: dtype %s, expected F32 (or BF16)", path, d->name,
                      t->dtype_name);
    if (t->dtype == ST_F32 && (uintptr_t)t->data % sizeof(float) == 0 && !round) {
        w->data[i] = (float *)t->data; /* read-only mapping: never written through */
        return 0;
    }
    w->owned[i] = xmalloc((size_t)d->numel * sizeof(float));
    w->data[i] = w->owned[i];
    if (st_read_f32(t, w->owned[i], err)) return -1;
    for (int64_t k = 0; round && k < d->numel; k++) {
        const float x = w->owned[i][k], r = nearest_stored(p, x);
        if (isinf(r) && !isinf(x))
            return seterr(err, "%s: %s[%lld] = %g is beyond the range of %s (precision.weights)", path, d->name,
                          (long long)k, (double)x, precision_name(p));
        w->owned[i][k] = r;
    }
    return 0;
}

int weights_load(const char *path, const spec_t *s, weights_t *w, char *err)
{
    memset(w, 0, sizeof *w);
    if (st_open(path, &w->file, err)) return -1;
    catalogue_build(s, &w->cat);
    w->data = xcalloc((size_t)w->cat.count, sizeof *w->data);
    w->owned = xcalloc((size_t)w->cat.count, sizeof *w->owned);
    for (int i = 0; i < w->file.count; i++)
        if (catalogue_find(&w->cat, w->file.tensors[i].name) < 0) {
            seterr(err, "%s: tensor '%s' is not part of the model of spec '%s'", path,
                   w->file.tensors[i].name, s->name);
            goto fail;
        }
    for (int i = 0; i < w->cat.count; i++)
        if (bind(w, s, i, path, err)) goto fail;
    return 0;
fail:
    weights_free(w);
    return -1;
}

void weights_free(weights_t *w)
{
    if (w->owned)
        for (int i = 0; i < w->cat.count; i++) free(w->owned[i]);
    free(w->owned);
    free(w->data);
    catalogue_free(&w->cat);
    st_close(&w->file);
    memset(w, 0, sizeof *w);
}

const float *weights_get(const weights_t *w, const char *name)
{
    int i = catalogue_find(&w->cat, name);
    if (i < 0) {
        fprintf(stderr, "weights_get: '%s' is not a tensor of this model\n", name);
        abort();
    }
    return w->data[i];
}
