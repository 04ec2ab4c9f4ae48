/* Weights loader against the tensor catalogue, and the deterministic weight generator. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "tmpdir.h"
#include "util.h"
#include "weights.h"

static char dir[TMPDIR_PATH_MAX];

static void setup(void)
{
    tmpdir_make(dir);
}

static void teardown(void)
{
    tmpdir_remove(dir);
}

TestSuite(weights, .init = setup, .fini = teardown);

/* specs/<name>.yaml: for the golden cases, the dimensions of their config.yaml. */
static void golden_spec(const char *name, spec_t *s)
{
    char path[64], err[SPEC_ERR_MAX];
    snprintf(path, sizeof path, "specs/%s.yaml", name);
    cr_assert_eq(spec_load(path, s, err), 0, "%s", err);
}

/* Small enough to test quickly, with one tensor (mlp.fc1, [8448, 128]) spanning two
 * generator chunks. */
static void two_chunk_spec(spec_t *s)
{
    spec_set_defaults(s);
    snprintf(s->name, sizeof s->name, "two_chunk");
    s->hidden_size = 128, s->proj_size = 8448, s->tower_depth = 1, s->num_heads = 4;
    s->num_features = 79;
    spec_derive(s);
}

/* ---------------------------------------------------------------- files from declarations */

typedef struct {
    st_decl_t *d;
    int count;
} decls_t;

/* The catalogue of s as F32 declarations, with room for one more. */
static decls_t catalogue_decls(const spec_t *s, catalogue_t *cat)
{
    catalogue_build(s, cat);
    decls_t ds = {xcalloc((size_t)cat->count + 1, sizeof(st_decl_t)), cat->count};
    for (int i = 0; i < cat->count; i++) {
        ds.d[i] = (st_decl_t){.name = cat->t[i].name, .dtype = ST_F32, .ndim = cat->t[i].ndim};
        memcpy(ds.d[i].shape, cat->t[i].shape, sizeof cat->t[i].shape);
    }
    return ds;
}

static int find_decl(const decls_t *ds, const char *name)
{
    for (int i = 0; i < ds->count; i++)
        if (!strcmp(ds->d[i].name, name)) return i;
    cr_assert_fail("no tensor %s", name);
    return -1;
}

/* Value k of every F32/BF16 tensor written by write_decls: non-zero, exact in bf16. */
static float pattern(int64_t k)
{
    return (float)(k % 61 - 30) * 0.125f + 0.0625f;
}

/* Write the declared tensors with pattern() values (bf16: the same values, exact). */
static const char *write_decls(const decls_t *ds, const char *name, char path[TMPDIR_PATH_MAX])
{
    char err[ERR_MAX];
    tmpdir_file(dir, name, path);
    st_writer_t *w = st_writer_open(path, ds->d, ds->count, err);
    cr_assert(w, "%s", err);
    for (int i = 0; i < ds->count; i++) {
        const st_decl_t *d = &ds->d[i];
        int64_t n = 1;
        for (int k = 0; k < d->ndim; k++) n *= d->shape[k];
        size_t esize = st_dtype_size(d->dtype);
        unsigned char *buf = xcalloc((size_t)n, esize);
        for (int64_t k = 0; k < n; k++) {
            float v = pattern(k);
            uint32_t bits;
            memcpy(&bits, &v, 4);
            if (d->dtype == ST_F32) memcpy(buf + 4 * k, &v, 4);
            else if (d->dtype == ST_BF16) {
                uint16_t hi = (uint16_t)(bits >> 16);
                memcpy(buf + 2 * k, &hi, 2);
            } else
                memset(buf + esize * k, (int)(k + 1), esize);
        }
        cr_assert_eq(st_writer_write(w, buf, (size_t)n * esize, err), 0, "%s", err);
        free(buf);
    }
    cr_assert_eq(st_writer_close(w, err), 0, "%s", err);
    return path;
}

/* weights_load must fail with a message containing the fragments. */
static void expect_load_error(const char *path, const spec_t *s, const char *frag1,
                              const char *frag2)
{
    weights_t w;
    char err[ERR_MAX] = "";
    cr_assert_eq(weights_load(path, s, &w, err), -1, "%s loaded although broken", path);
    cr_log_info("%s", err);
    cr_assert(strstr(err, path), "message does not name the file: %s", err);
    cr_assert(strstr(err, frag1), "message lacks '%s': %s", frag1, err);
    if (frag2) cr_assert(strstr(err, frag2), "message lacks '%s': %s", frag2, err);
}

/* ---------------------------------------------------------------- golden files */

static void check_golden(const char *name)
{
    spec_t s;
    golden_spec(name, &s);
    char path[TMPDIR_PATH_MAX], rel[64], err[ERR_MAX];
    snprintf(rel, sizeof rel, "golden/%s/weights.safetensors", name);
    snprintf(path, sizeof path, "%s", shared_path(rel));
    weights_t w;
    cr_assert_eq(weights_load(path, &s, &w, err), 0, "%s", err);
    cr_assert_eq(w.file.count, w.cat.count);
    st_file_t f;
    cr_assert_eq(st_open(path, &f, err), 0, "%s", err);
    double max_abs = 0;
    for (int i = 0; i < w.cat.count; i++) {
        const tensor_desc_t *d = &w.cat.t[i];
        const float *got = weights_get(&w, d->name);
        const st_tensor_t *t = st_find(&f, d->name);
        cr_assert(t, "%s", d->name);
        cr_assert_eq(memcmp(got, t->data, t->nbytes), 0, "%s: values differ from the file", d->name);
        cr_assert_eq((uintptr_t)got % 4, 0);
        for (int64_t k = 0; k < d->numel; k++) max_abs = fmax(max_abs, fabs(got[k]));
    }
    cr_assert_gt(max_abs, 0.01, "golden weights all near zero (max %g)", max_abs);
    st_close(&f);
    weights_free(&w);
}

Test(weights, golden_small_loads)
{
    check_golden("small");
}

Test(weights, golden_medium_loads)
{
    check_golden("medium");
}

Test(weights, golden_long_loads)
{
    check_golden("long");
}

/* ---------------------------------------------------------------- loader errors */

Test(weights, missing_file)
{
    spec_t s;
    golden_spec("small", &s);
    char path[TMPDIR_PATH_MAX];
    expect_load_error(tmpdir_file(dir, "none.safetensors", path), &s, "cannot open", NULL);
}

Test(weights, missing_tensor)
{
    spec_t s;
    catalogue_t cat;
    golden_spec("small", &s);
    decls_t ds = catalogue_decls(&s, &cat);
    int i = find_decl(&ds, "towers.2.blocks.1.layer.decay");
    ds.d[i] = ds.d[--ds.count];
    char path[TMPDIR_PATH_MAX];
    expect_load_error(write_decls(&ds, "missing.safetensors", path), &s,
                      "missing tensor 'towers.2.blocks.1.layer.decay'", "[4]");
    free(ds.d);
    catalogue_free(&cat);
}

Test(weights, extra_tensor)
{
    spec_t s;
    catalogue_t cat;
    golden_spec("small", &s);
    decls_t ds = catalogue_decls(&s, &cat);
    ds.d[ds.count++] = (st_decl_t){"towers.1.blocks.2.layer.a", ST_F32, 1, {2}};
    char path[TMPDIR_PATH_MAX];
    expect_load_error(write_decls(&ds, "extra.safetensors", path), &s,
                      "'towers.1.blocks.2.layer.a' is not part of the model", NULL);
    free(ds.d);
    catalogue_free(&cat);
}

Test(weights, wrong_shape)
{
    spec_t s;
    catalogue_t cat;
    golden_spec("small", &s);
    decls_t ds = catalogue_decls(&s, &cat);
    ds.d[find_decl(&ds, "towers.1.blocks.0.layer.a")].shape[0] = 3;
    int fc1 = find_decl(&ds, "towers.3.blocks.1.mlp.fc1.weight");
    ds.d[fc1].shape[0] = 64, ds.d[fc1].shape[1] = 128; /* transposed */
    char path[TMPDIR_PATH_MAX];
    write_decls(&ds, "shape.safetensors", path);
    expect_load_error(path, &s, "towers.1.blocks.0.layer.a: shape [3] != expected [2]", NULL);
    ds.d[find_decl(&ds, "towers.1.blocks.0.layer.a")].shape[0] = 2;
    write_decls(&ds, "shape.safetensors", path);
    expect_load_error(path, &s, "towers.3.blocks.1.mlp.fc1.weight: shape [64, 128] != expected [128, 64]",
                      NULL);
    free(ds.d);
    catalogue_free(&cat);
}

Test(weights, wrong_dtype)
{
    spec_t s;
    catalogue_t cat;
    golden_spec("small", &s);
    decls_t ds = catalogue_decls(&s, &cat);
    ds.d[find_decl(&ds, "output_proj.weight")].dtype = ST_F64;
    char path[TMPDIR_PATH_MAX];
    expect_load_error(write_decls(&ds, "dtype.safetensors", path), &s, "output_proj.weight",
                      "dtype F64");
    free(ds.d);
    catalogue_free(&cat);
}

/* A 2-byte BF16 tensor first puts every F32 tensor after it at an unaligned offset: both
 * the widened and the unaligned tensors are copied, and their values must be exact. */
Test(weights, bf16_and_unaligned_f32_are_copied_exactly)
{
    spec_t s;
    catalogue_t cat;
    golden_spec("small", &s);
    decls_t ds = catalogue_decls(&s, &cat);
    int bias = find_decl(&ds, "output_proj.bias");
    st_decl_t first = ds.d[bias];
    memmove(&ds.d[1], &ds.d[0], (size_t)bias * sizeof *ds.d);
    ds.d[0] = first;
    ds.d[0].dtype = ST_BF16;
    ds.d[1].dtype = ST_BF16;
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    write_decls(&ds, "bf16.safetensors", path);
    weights_t w;
    cr_assert_eq(weights_load(path, &s, &w, err), 0, "%s", err);
    const char *map = w.file.map;
    for (int i = 0; i < w.cat.count; i++) {
        const float *v = w.data[i];
        cr_assert_eq((uintptr_t)v % 4, 0, "%s not aligned", w.cat.t[i].name);
        cr_assert((const char *)v < map || (const char *)v >= map + w.file.map_len,
                  "%s should be a copy", w.cat.t[i].name);
        for (int64_t k = 0; k < w.cat.t[i].numel; k++)
            cr_assert_eq(v[k], pattern(k), "%s[%lld] = %g != %g", w.cat.t[i].name, (long long)k,
                         v[k], pattern(k));
    }
    weights_free(&w);
    free(ds.d);
    catalogue_free(&cat);
}

Test(weights, aligned_f32_is_a_view)
{
    spec_t s;
    catalogue_t cat;
    golden_spec("small", &s);
    decls_t ds = catalogue_decls(&s, &cat);
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    write_decls(&ds, "view.safetensors", path);
    weights_t w;
    cr_assert_eq(weights_load(path, &s, &w, err), 0, "%s", err);
    const char *map = w.file.map;
    for (int i = 0; i < w.cat.count; i++)
        cr_assert((const char *)w.data[i] >= map && (const char *)w.data[i] < map + w.file.map_len,
                  "%s copied", w.cat.t[i].name);
    weights_free(&w);
    free(ds.d);
    catalogue_free(&cat);
}

Test(weights, get_outside_catalogue_aborts, .signal = SIGABRT)
{
    spec_t s;
    golden_spec("small", &s);
    const char *path = shared_path("golden/small/weights.safetensors");
    char err[ERR_MAX];
    weights_t w;
    cr_assert_eq(weights_load(path, &s, &w, err), 0, "%s", err);
    tmpdir_remove(dir); /* the abort skips the suite's teardown */
    weights_get(&w, "towers.0.no_such.weight");
}

/* ---------------------------------------------------------------- generator */

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    cr_assert(fp, "%s", path);
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    rewind(fp);
    unsigned char *buf = xmalloc(*len);
    cr_assert_eq(fread(buf, 1, *len, fp), *len);
    fclose(fp);
    return buf;
}

static const char *generate(const spec_t *s, uint64_t seed, int threads, const char *name,
                            char path[TMPDIR_PATH_MAX])
{
    char err[ERR_MAX];
    tmpdir_file(dir, name, path);
    cr_assert_eq(weights_generate_threads(s, seed, path, 0, threads, err), 0, "%s", err);
    return path;
}

Test(weights, generator_is_deterministic)
{
    spec_t s;
    two_chunk_spec(&s);
    catalogue_t cat;
    catalogue_build(&s, &cat);
    int64_t biggest = 0;
    for (int i = 0; i < cat.count; i++)
        if (cat.t[i].numel > biggest) biggest = cat.t[i].numel;
    cr_assert_gt(biggest, 1 << 20, "no tensor spans two chunks");
    catalogue_free(&cat);

    char p1[TMPDIR_PATH_MAX], p3[TMPDIR_PATH_MAX], p5[TMPDIR_PATH_MAX], q[TMPDIR_PATH_MAX];
    size_t n1, n3, n5, nq;
    unsigned char *a = slurp(generate(&s, 7, 1, "t1.safetensors", p1), &n1);
    unsigned char *b = slurp(generate(&s, 7, 3, "t3.safetensors", p3), &n3);
    unsigned char *c = slurp(generate(&s, 7, 0, "t0.safetensors", p5), &n5);
    unsigned char *d = slurp(generate(&s, 8, 2, "seed8.safetensors", q), &nq);
    cr_assert(n1 == n3 && n1 == n5 && memcmp(a, b, n1) == 0 && memcmp(a, c, n1) == 0,
              "bytes depend on the thread count");
    free(a), free(b), free(c), free(d);

    char err[ERR_MAX];
    weights_t w, w8;
    cr_assert_eq(weights_load(p1, &s, &w, err), 0, "%s", err);
    cr_assert_eq(weights_load(q, &s, &w8, err), 0, "%s", err);
    cr_assert_str_eq(st_metadata(&w.file, "spec"), "two_chunk");
    cr_assert_str_eq(st_metadata(&w.file, "seed"), "7");
    const char *fc1 = "towers.3.blocks.0.mlp.fc1.weight";
    const float *v7 = weights_get(&w, fc1), *v8 = weights_get(&w8, fc1);
    int64_t same = 0;
    for (int64_t k = 0; k < biggest; k++) same += v7[k] == v8[k];
    cr_assert_lt(same, 100, "seed 8 repeats %lld of %lld values of seed 7", (long long)same,
                 (long long)biggest);
    /* the two chunks of one tensor are different streams */
    cr_assert_neq(memcmp(v7, v7 + (1 << 20), 4096), 0);
    /* tensors in catalogue order */
    for (int i = 1; i < w.cat.count; i++) cr_assert_gt(w.data[i], w.data[i - 1]);
    weights_free(&w8);
    weights_free(&w);
}

Test(weights, generator_reports_unwritable_path)
{
    spec_t s;
    golden_spec("small", &s);
    char path[TMPDIR_PATH_MAX], err[ERR_MAX] = "";
    tmpdir_file(dir, "no/such/dir.safetensors", path);
    cr_assert_eq(weights_generate(&s, 1, path, 0, err), -1);
    cr_assert(strstr(err, "no/such/dir.safetensors") && strstr(err, "cannot create"), "%s", err);
}

typedef struct {
    double n, sum, sum2;
} moments_t;

static void add_sample(moments_t *m, double x)
{
    m->n++, m->sum += x, m->sum2 += x * x;
}

static double mean_of(const moments_t *m)
{
    return m->sum / m->n;
}

static double std_of(const moments_t *m)
{
    double mu = mean_of(m);
    return sqrt(m->sum2 / m->n - mu * mu);
}

/* Pooled N(mean, std) samples: mean within 5 standard errors, std within 5 of its standard
 * errors (1/sqrt(2n) relative). */
static void expect_normal(const char *what, const moments_t *m, double mean, double std)
{
    double got_mean = mean_of(m), got_std = std_of(m);
    cr_log_info("%s: n %.0f mean %.5f std %.5f (want %.5f, %.5f)", what, m->n, got_mean, got_std,
                mean, std);
    cr_assert_gt(m->n, 1000, "%s: too few samples", what);
    cr_assert_lt(fabs(got_mean - mean), 5 * std / sqrt(m->n), "%s: mean %g != %g", what, got_mean,
                 mean);
    cr_assert_lt(fabs(got_std / std - 1), 5 / sqrt(2 * m->n), "%s: std %g != %g", what, got_std, std);
}

Test(weights, generator_inits)
{
    spec_t s;
    golden_spec("medium", &s);
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    weights_t w;
    cr_assert_eq(weights_load(generate(&s, 3, 0, "inits.safetensors", path), &s, &w, err), 0, "%s",
                 err);
    moments_t bias = {0}, norm = {0}, unit = {0};
    double within_1sd = 0, worst_linear = 0, mamba_min = 0, mamba_max = -20;
    int linear_checked = 0;
    for (int i = 0; i < w.cat.count; i++) {
        const tensor_desc_t *d = &w.cat.t[i];
        const float *v = w.data[i];
        const int64_t n = d->numel;
        switch (d->init) {
        case INIT_LINEAR: {
            const double std = 1 / sqrt(d->fan_in);
            moments_t m = {0};
            for (int64_t k = 0; k < n; k++) {
                add_sample(&m, v[k]);
                add_sample(&unit, v[k] / std);
                within_1sd += fabs(v[k]) < std;
            }
            if (n >= 4096) { /* one tensor: std within a few % (5 standard errors) */
                double rel = fabs(std_of(&m) / std - 1);
                cr_assert_lt(rel, 5 / sqrt(2.0 * n), "%s: std %g, want %g (fan_in %d)", d->name,
                             std_of(&m), std, d->fan_in);
                worst_linear = fmax(worst_linear, rel);
                linear_checked++;
            }
            break;
        }
        case INIT_BIAS:
            for (int64_t k = 0; k < n; k++) add_sample(&bias, v[k]);
            break;
        case INIT_NORM:
            for (int64_t k = 0; k < n; k++) add_sample(&norm, v[k]);
            break;
        case INIT_ONES:
            for (int64_t k = 0; k < n; k++) cr_assert_eq(v[k], 1.0f, "%s[%lld]", d->name, (long long)k);
            break;
        case INIT_MAMBA_A:
            for (int64_t k = 0; k < n; k++) {
                cr_assert(v[k] >= -16 && v[k] <= -1, "%s[%lld] = %g", d->name, (long long)k, v[k]);
                mamba_min = fmin(mamba_min, v[k]), mamba_max = fmax(mamba_max, v[k]);
            }
            break;
        case INIT_RGLRU_A: {
            double lo = 1, hi = 0;
            for (int64_t k = 0; k < n; k++) {
                cr_assert(v[k] > 0.9 && v[k] < 0.999, "%s[%lld] = %.9g", d->name, (long long)k, v[k]);
                lo = fmin(lo, v[k]), hi = fmax(hi, v[k]);
            }
            cr_assert(lo < 0.91 && hi > 0.99, "%s: range [%g, %g] not spread", d->name, lo, hi);
            break;
        }
        case INIT_RETNET_DECAY:
            cr_assert_eq(n, 8);
            for (int64_t k = 0; k < n; k++)
                cr_assert_eq(v[k], (float)(1 - ldexp(1, -5 - (int)k)), "%s[%lld] = %.9g", d->name,
                             (long long)k, v[k]);
            cr_assert_eq(v[0], 0.96875f);
            break;
        case INIT_RETNET_ANGLE:
            cr_assert_eq(n, 32); /* D = 256 / 8 */
            for (int64_t j = 0; j < n / 2; j++) {
                float want = (float)pow(10000.0, -(double)j / 15.0);
                cr_assert_eq(v[2 * j], want, "%s[%lld] = %.9g != %.9g", d->name, (long long)(2 * j),
                             v[2 * j], want);
                cr_assert_eq(v[2 * j + 1], v[2 * j]);
            }
            cr_assert_eq(v[0], 1.0f);
            cr_assert_eq(v[31], 1e-4f);
            break;
        }
    }
    cr_log_info("linear: %d tensors checked, worst std error %.2f%%", linear_checked,
                100 * worst_linear);
    cr_assert_gt(linear_checked, 20);
    expect_normal("bias", &bias, 0, 0.02);
    expect_normal("norm", &norm, 1, 0.02);
    expect_normal("linear / (1/sqrt(fan_in))", &unit, 0, 1);
    /* Gaussian shape, not just the right variance: P(|z| < 1) = 0.6827 */
    double p = within_1sd / unit.n;
    cr_assert_lt(fabs(p - 0.682689), 5 * sqrt(0.682689 * 0.317311 / unit.n), "P(|z|<1) = %g", p);
    cr_assert(mamba_min < -10 && mamba_max > -6, "mamba a range [%g, %g] not spread", mamba_min,
              mamba_max);
    weights_free(&w);
}

/* Round to nearest, ties to even, on values whose bf16 neighbours are known. */
Test(weights, bf16_rounding)
{
    const float eps = 0x1p-7f; /* bf16 spacing in [1, 2) */
    cr_expect_eq(bf16_round(1.0f), 1.0f);
    cr_expect_eq(bf16_round(1.0f + 0.49f * eps), 1.0f);
    cr_expect_eq(bf16_round(1.0f + 0.51f * eps), 1.0f + eps);
    cr_expect_eq(bf16_round(1.0f + 0.5f * eps), 1.0f, "a tie goes to the even neighbour 1");
    cr_expect_eq(bf16_round(1.0f + 1.5f * eps), 1.0f + 2 * eps, "a tie goes to the even neighbour 1 + 2 eps");
    cr_expect_eq(bf16_round(-3.0f - 0.51f * 2 * eps), -3.0f - 2 * eps);
    cr_expect_eq(bf16_bits(1.0f), 0x3f80);
    cr_expect(isnan(bf16_round(NAN)));
    cr_expect(isinf(bf16_round(INFINITY)));
}

/* Round to nearest, ties to even, with fp16's subnormals and range. */
Test(weights, fp16_rounding)
{
    const double eps = 0x1p-10; /* fp16 spacing in [1, 2) */
    cr_expect_eq(fp16_nearest(1.0), 1.0);
    cr_expect_eq(fp16_nearest(1.0 + 0.49 * eps), 1.0);
    cr_expect_eq(fp16_nearest(1.0 + 0.51 * eps), 1.0 + eps);
    cr_expect_eq(fp16_nearest(1.0 + 0.5 * eps), 1.0, "a tie goes to the even neighbour 1");
    cr_expect_eq(fp16_nearest(1.0 + 1.5 * eps), 1.0 + 2 * eps, "a tie goes to the even neighbour 1 + 2 eps");
    cr_expect_eq(fp16_nearest(-3.0 - 0.51 * 2 * eps), -3.0 - 2 * eps);
    cr_expect_eq(fp16_nearest(0x1p-24 * 2.4), 0x1p-24 * 2, "subnormals are 2^-24 apart");
    cr_expect_eq(fp16_nearest(0x1p-24 * 2.5), 0x1p-24 * 2, "a subnormal tie goes to the even neighbour");
    cr_expect_eq(fp16_nearest(0x1p-26), 0.0);
    cr_expect_eq(fp16_nearest(65504.0 + 15.9), 65504.0, "below the midpoint to 65536: the largest");
    cr_expect(isinf(fp16_nearest(65520.0)), "the midpoint to 65536 rounds past the largest: inf");
    cr_expect(isnan(fp16_nearest(NAN)));
    const float x[] = {1.0f, -2.0f, 65504.0f, 0x1p-14f, 0x1p-24f, 0x3ffp-24f, 0.333251953125f, 65520.0f, -0.0f};
    const uint16_t bits[] = {0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x3555, 0x7c00, 0x8000};
    for (size_t i = 0; i < ARRAY_LEN(x); i++)
        cr_expect_eq(fp16_bits(x[i]), bits[i], "fp16_bits(%a) = %#06x, want %#06x", (double)x[i], fp16_bits(x[i]),
                     bits[i]);
}

/* Counts in *wrong the float roundings of bit pattern u (bf16_round, fp16_round, fp16's bits
 * widened) that are not the double ones' values with their sign of zero; logs the first few. */
static void count_float_rounding_errors(uint32_t u, int64_t *wrong)
{
    float x;
    memcpy(&x, &u, sizeof x);
    const float want[3] = {(float)bf16_nearest(x), (float)fp16_nearest(x), (float)fp16_nearest(x)},
                got[3] = {bf16_round(x), fp16_round(x), fp16_float(fp16_bits(x))};
    for (int k = 0; k < 3; k++) {
        const int same = isnan(want[k]) ? isnan(got[k]) : !memcmp(&got[k], &want[k], sizeof got[k]);
        if (!same && (*wrong)++ < 10)
            cr_log_error("%a (%#010x): rounding %d gives %a, want %a", (double)x, u, k, (double)got[k], (double)want[k]);
    }
}

/* The bit-operation roundings of floats (what the loader uses) against the double ones, on
 * every 4093rd float bit pattern (about a million: each exponent, both signs, subnormals,
 * NaNs) and on the edges: fp16's largest and its midpoint to inf, its smallest normal and the
 * midpoint below it, half its smallest subnormal, float's largest, inf and subnormals. */
Test(weights, float_roundings_agree_with_the_double_ones)
{
    const uint32_t edges[] = {0x477fefffu, 0x477ff000u, 0x477ff001u, 0x387fefffu, 0x387ff000u, 0x38800000u,
                              0x33000000u, 0x33000001u, 0x7f7fffffu, 0x7f800000u, 0x00000001u, 0x807fffffu};
    int64_t checked = 0, wrong = 0;
    for (uint64_t u = 0; u < (1ull << 32); u += 4093, checked++) count_float_rounding_errors((uint32_t)u, &wrong);
    for (size_t i = 0; i < ARRAY_LEN(edges); i++, checked++) count_float_rounding_errors(edges[i], &wrong);
    cr_expect_eq(wrong, 0, "%lld roundings of %lld floats differ", (long long)wrong, (long long)checked);
}

/* A spec with 16-bit weights (precision p, whose nearest value is `nearest`) gets its matrices
 * rounded and every other tensor as in the file. */
static void expect_matrices_rounded(precision_t p, double (*nearest)(double))
{
    spec_t s;
    golden_spec("small", &s);
    s.precision.weights = p;
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    snprintf(path, sizeof path, "%s", shared_path("golden/small/weights.safetensors"));
    weights_t w;
    cr_assert_eq(weights_load(path, &s, &w, err), 0, "%s", err);
    st_file_t f;
    cr_assert_eq(st_open(path, &f, err), 0, "%s", err);
    int64_t changed = 0, matrix_numel = 0;
    for (int i = 0; i < w.cat.count; i++) {
        const tensor_desc_t *d = &w.cat.t[i];
        const float *got = weights_get(&w, d->name), *file = (const float *)st_find(&f, d->name)->data;
        matrix_numel += d->matrix ? d->numel : 0;
        for (int64_t k = 0; k < d->numel; k++) {
            const float want = d->matrix ? (float)nearest(file[k]) : file[k];
            cr_assert_eq(got[k], want, "%s[%lld]: %.9g, want %.9g", d->name, (long long)k, got[k], want);
            changed += got[k] != file[k];
        }
    }
    cr_expect_gt(changed, matrix_numel / 2, "only %lld of %lld matrix weights changed", (long long)changed,
                 (long long)matrix_numel);
    st_close(&f);
    weights_free(&w);
}

Test(weights, bf16_spec_rounds_only_the_matrices) { expect_matrices_rounded(PRECISION_BF16, bf16_nearest); }

Test(weights, fp16_spec_rounds_only_the_matrices) { expect_matrices_rounded(PRECISION_FP16, fp16_nearest); }

/* A matrix weight beyond fp16's largest (65504, and what rounds to it) cannot be stored in
 * fp16: the load fails and names it; bf16 takes it. */
Test(weights, fp16_range_is_checked)
{
    spec_t s;
    catalogue_t cat;
    golden_spec("small", &s);
    decls_t ds = catalogue_decls(&s, &cat);
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    write_decls(&ds, "big.safetensors", path);
    st_file_t f;
    cr_assert_eq(st_open(path, &f, err), 0, "%s", err);
    const long at = (long)((const char *)st_find(&f, "towers.3.blocks.1.mlp.fc1.weight")->data - (const char *)f.map);
    st_close(&f);
    FILE *fp = fopen(path, "r+b");
    cr_assert_not_null(fp);
    const float big = 65520.0f;
    cr_assert_eq(fseek(fp, at + 5 * (long)sizeof big, SEEK_SET), 0);
    cr_assert_eq(fwrite(&big, sizeof big, 1, fp), 1);
    cr_assert_eq(fclose(fp), 0);
    s.precision.weights = PRECISION_FP16;
    expect_load_error(path, &s, "towers.3.blocks.1.mlp.fc1.weight[5] = 65520", "beyond the range of fp16");
    s.precision.weights = PRECISION_BF16;
    weights_t w;
    cr_assert_eq(weights_load(path, &s, &w, err), 0, "%s", err);
    cr_expect_eq(weights_get(&w, "towers.3.blocks.1.mlp.fc1.weight")[5], 65536.0f, "bf16's nearest");
    weights_free(&w);
    free(ds.d);
    catalogue_free(&cat);
}

