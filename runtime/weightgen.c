/* Deterministic random weights for any spec (see weights.h and init_kind_t in model.h).
 *
 * Every tensor is cut into chunks of CHUNK_ELEMS elements; chunk c of tensor `name` draws
 * from its own xoshiro256** stream seeded from (seed, hash(name), c). The bytes therefore do
 * not depend on how many threads generate the chunks. Worker threads fill a ring of chunk
 * buffers in parallel; the calling thread writes them to the file strictly in order. */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"
#include "weights.h"

#define CHUNK_ELEMS (1 << 20) /* 4 MB of fp32: part of the stream definition, do not change */
#define MAX_THREADS 64

#define BIAS_STD 0.02f
#define NORM_STD 0.02f

/* ---------------------------------------------------------------- random streams */

typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static void rng_seed(rng_t *r, uint64_t seed, uint64_t name_hash, uint64_t chunk)
{
    uint64_t x = seed;
    x = splitmix64(&x) ^ name_hash;
    x = splitmix64(&x) ^ chunk;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro256ss(rng_t *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in the open interval (0, 1). */
static double uniform(rng_t *r)
{
    return ((double)(xoshiro256ss(r) >> 11) + 0.5) * 0x1p-53;
}

/* n values mean + std * N(0, 1) by Box-Muller, one 64-bit draw per pair: two 24-bit
 * uniforms, u1 in (0, 1) for the log. fp32 math is about twice as fast as fp64 and enough
 * for fp32 outputs; the tails reach 5.9 sigma. */
static void fill_normal(rng_t *r, float mean, float std, float *out, int64_t n)
{
    for (int64_t k = 0; k < n; k += 2) {
        uint64_t x = xoshiro256ss(r);
        float u1 = ((float)(x >> 40) + 0.5f) * 0x1p-24f;
        float u2 = (float)((x >> 16) & 0xffffff) * 0x1p-24f;
        float radius = std * sqrtf(-2.0f * logf(u1)), sin_t, cos_t;
        sincosf(2.0f * (float)M_PI * u2, &sin_t, &cos_t);
        out[k] = mean + radius * cos_t;
        if (k + 1 < n) out[k + 1] = mean + radius * sin_t;
    }
}

/* ---------------------------------------------------------------- one chunk */

/* Elements [start, start + n) of tensor d, into out. */
static void fill_chunk(const tensor_desc_t *d, uint64_t seed, int64_t start, int64_t n,
                       float *out)
{
    rng_t r;
    rng_seed(&r, seed, fnv1a(d->name), (uint64_t)(start / CHUNK_ELEMS));
    switch (d->init) {
    case INIT_LINEAR: fill_normal(&r, 0.0f, (float)(1.0 / sqrt((double)d->fan_in)), out, n); break;
    case INIT_BIAS: fill_normal(&r, 0.0f, BIAS_STD, out, n); break;
    case INIT_NORM: fill_normal(&r, 1.0f, NORM_STD, out, n); break;
    case INIT_ONES:
        for (int64_t k = 0; k < n; k++) out[k] = 1.0f;
        break;
    case INIT_MAMBA_A:
        for (int64_t k = 0; k < n; k++) out[k] = (float)(-16.0 + 15.0 * uniform(&r));
        break;
    case INIT_RGLRU_A: {
        /* fp32 rounding must not land on (or outside) the open interval's ends */
        const float lo = nextafterf(0.9f, 1.0f), hi = nextafterf(0.999f, 0.0f);
        for (int64_t k = 0; k < n; k++)
            out[k] = fminf(fmaxf((float)(0.9 + 0.099 * uniform(&r)), lo), hi);
        break;
    }
    case INIT_RETNET_DECAY:
        for (int64_t k = 0; k < n; k++) out[k] = (float)(1.0 - ldexp(1.0, (int)(-5 - (start + k))));
        break;
    case INIT_RETNET_ANGLE: {
        /* torchscale: 1 / 10000^linspace(0, 1, D/2), each value repeated for its pair */
        const int64_t pairs = d->numel / 2, last = pairs > 1 ? pairs - 1 : 1;
        for (int64_t k = 0; k < n; k++) {
            int64_t j = (start + k) / 2;
            if (j >= pairs) j = pairs > 0 ? pairs - 1 : 0; /* odd D: the lone last element */
            out[k] = (float)pow(10000.0, -(double)j / (double)last);
        }
        break;
    }
    }
}

/* ---------------------------------------------------------------- pipeline */

typedef struct {
    int tensor;
    int64_t start, n;
} job_t;

typedef struct {
    const catalogue_t *cat;
    uint64_t seed;
    job_t *jobs;
    int njobs, nslots;
    float **buf; /* [nslots][CHUNK_ELEMS] */
    int *ready;  /* per slot: the job whose data it holds, or -1 */
    int next_job, next_write, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv_ready, cv_free;
} pipeline_t;

static void *worker(void *arg)
{
    pipeline_t *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        /* job j reuses the slot of job j - nslots: wait until that one is written */
        while (!p->stop && p->next_job < p->njobs && p->next_job - p->next_write >= p->nslots)
            pthread_cond_wait(&p->cv_free, &p->mu);
        if (p->stop || p->next_job >= p->njobs) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        int j = p->next_job++;
        pthread_mutex_unlock(&p->mu);

        const job_t *job = &p->jobs[j];
        fill_chunk(&p->cat->t[job->tensor], p->seed, job->start, job->n, p->buf[j % p->nslots]);

        pthread_mutex_lock(&p->mu);
        p->ready[j % p->nslots] = j;
        pthread_cond_broadcast(&p->cv_ready);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Write every job's chunk in order as the workers finish them. */
static int write_in_order(pipeline_t *p, st_writer_t *w, progress_t *bar, char *err)
{
    uint64_t done = 0;
    for (int j = 0; j < p->njobs; j++) {
        int slot = j % p->nslots;
        pthread_mutex_lock(&p->mu);
        while (p->ready[slot] != j) pthread_cond_wait(&p->cv_ready, &p->mu);
        pthread_mutex_unlock(&p->mu);

        size_t nbytes = (size_t)p->jobs[j].n * sizeof(float);
        int rc = st_writer_write(w, p->buf[slot], nbytes, err);

        pthread_mutex_lock(&p->mu);
        p->ready[slot] = -1;
        p->next_write = j + 1;
        p->stop = rc != 0;
        pthread_cond_broadcast(&p->cv_free);
        pthread_mutex_unlock(&p->mu);
        if (rc) return -1;
        done += nbytes;
        progress_update(bar, done);
    }
    return 0;
}

static job_t *make_jobs(const catalogue_t *cat, int *njobs)
{
    int n = 0;
    for (int i = 0; i < cat->count; i++) n += (int)((cat->t[i].numel + CHUNK_ELEMS - 1) / CHUNK_ELEMS);
    job_t *jobs = xcalloc((size_t)n, sizeof *jobs);
    *njobs = 0;
    for (int i = 0; i < cat->count; i++)
        for (int64_t s = 0; s < cat->t[i].numel; s += CHUNK_ELEMS) {
            int64_t left = cat->t[i].numel - s;
            jobs[(*njobs)++] = (job_t){i, s, left < CHUNK_ELEMS ? left : CHUNK_ELEMS};
        }
    return jobs;
}

static int generate(const catalogue_t *cat, uint64_t seed, st_writer_t *w, int progress,
                    int threads, char *err)
{
    pipeline_t p = {.cat = cat, .seed = seed};
    p.jobs = make_jobs(cat, &p.njobs);
    p.nslots = threads + 4; /* a few spare so the writer rarely starves the workers */
    p.buf = xcalloc((size_t)p.nslots, sizeof *p.buf);
    p.ready = xcalloc((size_t)p.nslots, sizeof *p.ready);
    for (int i = 0; i < p.nslots; i++) {
        p.buf[i] = xmalloc(CHUNK_ELEMS * sizeof(float));
        p.ready[i] = -1;
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv_ready, NULL);
    pthread_cond_init(&p.cv_free, NULL);

    pthread_t tid[MAX_THREADS];
    for (int i = 0; i < threads; i++) pthread_create(&tid[i], NULL, worker, &p);
    progress_t *bar = progress_start("weights", (uint64_t)cat->total_numel * sizeof(float), NULL,
                                     (progress_mode_t)progress);
    int rc = write_in_order(&p, w, bar, err);
    progress_finish(bar);
    for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);

    pthread_cond_destroy(&p.cv_free);
    pthread_cond_destroy(&p.cv_ready);
    pthread_mutex_destroy(&p.mu);
    for (int i = 0; i < p.nslots; i++) free(p.buf[i]);
    free(p.buf);
    free(p.ready);
    free(p.jobs);
    return rc;
}

int weights_generate_threads(const spec_t *s, uint64_t seed, const char *path, int progress,
                             int threads, char *err)
{
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;

    catalogue_t cat;
    catalogue_build(s, &cat);
    st_decl_t *decls = xcalloc((size_t)cat.count, sizeof *decls);
    for (int i = 0; i < cat.count; i++) {
        decls[i] = (st_decl_t){.name = cat.t[i].name, .dtype = ST_F32, .ndim = cat.t[i].ndim};
        memcpy(decls[i].shape, cat.t[i].shape, sizeof cat.t[i].shape);
    }
    char seed_str[24];
    snprintf(seed_str, sizeof seed_str, "%" PRIu64, seed);
    const st_meta_t meta[] = {{"spec", s->name}, {"seed", seed_str}};
    st_writer_t *w = st_writer_open_meta(path, decls, cat.count, meta, (int)ARRAY_LEN(meta), err);
    int rc = -1;
    if (w) {
        rc = generate(&cat, seed, w, progress, threads, err);
        if (rc == 0)
            rc = st_writer_close(w, err);
        else
            st_writer_abort(w);
    }
    free(decls);
    catalogue_free(&cat);
    return rc;
}

int weights_generate(const spec_t *s, uint64_t seed, const char *path, int progress, char *err)
{
    return weights_generate_threads(s, seed, path, progress, 0, err);
}
