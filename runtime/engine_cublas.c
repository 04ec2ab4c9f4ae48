/* The cublas engine: the unfused GPU step, the baseline and full-size cross-check of the
 * fused kernel. A batch of distinct slots runs tower by tower, block by block, as the
 * original model would with symbol batching: activations [B, width] row-major, every
 * Linear and BlockLinear a cuBLAS fp32 GEMM (no TF32), everything else a small kernel of
 * templates/unfused.cu (NVRTC, cubin cache of jit.h) that reads and writes the state in
 * place through the batch's slot indices. A batch is split host-side into waves of
 * distinct slots (order kept), so repeated symbols advance as if fed one at a time. With
 * precision.state bf16 it rounds the mLSTM memory and Mamba2's SSM state as the fused kernel
 * does but keeps them in fp32: the same function, not the same bytes. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "engine_gpu.h"
#include "jit.h"
#include "model.h"
#include "templates.h"
#include "util.h"

enum { ACT_NONE, ACT_RELU, ACT_SILU }; /* as in templates/unfused.cu */

enum {
    K_BIAS_ACT, K_RESIDUAL_ADD, K_RMS_NORM, K_GROUP_NORM, K_CAUSAL_CONV, K_GATHER, K_SLSTM_CELL,
    K_MLSTM_CELL, K_MLSTM_SKIP_GATE, K_MAMBA_SSM, K_RETNET_ROTATE, K_RETNET_CELL, K_RETNET_ADVANCE,
    K_RGLRU, K_COUNT
};
static const char *const kernel_names[K_COUNT] = {
    "bias_act", "residual_add", "rms_norm", "group_norm", "causal_conv", "gather", "slstm_cell",
    "mlstm_cell", "mlstm_skip_gate", "mamba_ssm", "retnet_rotate", "retnet_cell", "retnet_advance",
    "rglru"};

#define THREADS 256
#define HEADER_FLOATS 4 /* slot header: RetNet position (int32), padding */

/* Device tensors: w [out, in] row-major (BlockLinear [nb, bs, bs], conv [ch, 1, k]); b or NULL. */
typedef struct { const float *w, *b; } dlin_t;

typedef struct {
    const float *norm, *gn_w, *gn_b;
    dlin_t conv, gate_in[4], gate_state[4]; /* gates i, f, z, o */
} slstm_d;

typedef struct {
    const float *norm, *outnorm_w, *outnorm_b, *skip;
    dlin_t x_proj, gate_proj, conv, q, k, v, igate, fgate, proj_down;
} mlstm_d;

typedef struct {
    slstm_d s;
    mlstm_d m;
    const float *final_norm;
} xlstm_d;

typedef struct {
    dlin_t in_proj, z_proj, b_proj, c_proj, dt_proj, in_conv, b_conv, c_conv, out_proj;
    const float *a, *d, *norm;
} mamba2_d;

typedef struct { dlin_t q, k, v, g, out; const float *decay, *angle; } retnet_d;
typedef struct { dlin_t gate_proj, rec_proj, conv, in_gate, rec_gate, out_proj; const float *a; } hawk_d;

typedef struct {
    const float *norm1, *norm2;
    dlin_t fc1, fc2;
    union { xlstm_d x; mamba2_d m; retnet_d r; hawk_d h; } layer;
    long long state; /* offset of this block's state in a slot, floats */
} block_d;

typedef struct { dlin_t input_up, input_down; block_d *blocks; } tower_d;

/* Activations of a batch, [max_batch, width] each. */
typedef struct {
    float *feats, *out;                          /* [B, F], [B, 4] */
    float *u, *t, *y, *hid;                      /* [B, H] x 3, [B, P] */
    float *xn, *sxc, *hprev, *hnew, *s_out, *m_out; /* xLSTM [B, H] */
    float *g_in, *g_state;                       /* [B, 4H]: sLSTM gates i, f, z, o */
    float *xm, *xg, *xc, *h, *hn;                /* mLSTM [B, E] */
    float *qkv, *ifg;                            /* [B, 3E], [B, 2 NH] */
    float *mx, *mz, *my, *mb, *mc, *mdt;         /* Mamba2 [B, E] x 3, [B, S] x 2, [B, NM] */
    float *rq, *rk, *rv, *rg, *ro;               /* RetNet [B, H] */
    float *hg, *hx, *hi, *hr;                    /* Hawk [B, H] */
} acts_t;

typedef struct {
    engine_t base;
    cudaLibrary_t lib;
    cudaKernel_t kern[K_COUNT];
    cublasHandle_t blas;
    cudaStream_t stream;
    cudaEvent_t ev[2];
    float *d_w, *d_state, *d_init, *d_act, *d_blas_ws; /* d_init: a slot's initial image */
    int *d_slots;
    acts_t a;
    tower_d towers[NUM_TOWERS];
    dlin_t output_proj;
    long long slot_floats;
    float *h_feats, *h_out; /* pinned [max_batch][F], [max_batch][4] */
    int *h_slots;
} cublas_engine_t;

#define BLAS_WORKSPACE (32u << 20) /* cuBLAS workspace set explicitly: graph capture allocates none */

/* Checks for the CUDA runtime and cuBLAS: -1 with file:line and the library's message. */
#define CU(call)                                                                                    \
    do {                                                                                            \
        cudaError_t e_ = (call);                                                                    \
        if (e_ != cudaSuccess)                                                                      \
            return seterr(err, "cublas engine: %s:%d: %s", __FILE__, __LINE__, cudaGetErrorString(e_)); \
    } while (0)
#define BLAS(call)                                                                                  \
    do {                                                                                            \
        cublasStatus_t s_ = (call);                                                                 \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                            \
            return seterr(err, "cublas engine: %s:%d: %s", __FILE__, __LINE__, cublasGetStatusString(s_)); \
    } while (0)
#define OK(call)                    \
    do {                            \
        if ((call)) return -1;      \
    } while (0)

static const float one = 1.0f, zero = 0.0f;

/* ---- launches ------------------------------------------------------------------------- */

static int launch(cublas_engine_t *e, int k, unsigned gx, unsigned gy, size_t smem, void **args, char *err)
{
    CU(cudaLaunchKernel((const void *)e->kern[k], (dim3){gx, gy, 1}, (dim3){THREADS, 1, 1}, args, smem,
                        e->stream));
    return 0;
}

/* Grid of an elementwise kernel over n items (the kernels loop with a grid stride). */
static unsigned grid_for(long long n)
{
    const long long g = (n + THREADS - 1) / THREADS;
    return (unsigned)(g < 8192 ? (g > 0 ? g : 1) : 8192);
}

/* y [nb, out] (row stride ldy) = x [nb, in] (row stride ldx) W^T; W [out, in] row-major,
 * i.e. column-major [in, out]: y^T = W x^T in cuBLAS's column-major terms. */
static int gemm(cublas_engine_t *e, const float *W, int out, int in, const float *x, int ldx, float *y, int ldy,
                int nb, char *err)
{
    BLAS(cublasSgemm(e->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, nb, in, &one, W, in, x, ldx, &zero, y, ldy));
    return 0;
}

/* BlockLinear: y[:, n*bs + k] = sum_h W[n, k, h] x[:, n*bs + h], one GEMM per block, batched. */
static int gemm_blocks(cublas_engine_t *e, const float *W, int blocks, int bs, const float *x, int ldx, float *y,
                       int ldy, int nb, char *err)
{
    BLAS(cublasSgemmStridedBatched(e->blas, CUBLAS_OP_T, CUBLAS_OP_N, bs, nb, bs, &one, W, bs, (long long)bs * bs,
                                   x, ldx, bs, &zero, y, ldy, bs, blocks));
    return 0;
}

static int bias_act(cublas_engine_t *e, float *y, int ld, const float *bias, int nb, int cols, int act, char *err)
{
    void *args[] = {&y, &ld, &bias, &nb, &cols, &act};
    return launch(e, K_BIAS_ACT, grid_for((long long)nb * cols), 1, 0, args, err);
}

/* Linear with its bias and activation: y [nb, out] = act(x W^T + b). */
static int linear(cublas_engine_t *e, dlin_t l, int out, int in, const float *x, int ldx, float *y, int ldy,
                  int nb, int act, char *err)
{
    OK(gemm(e, l.w, out, in, x, ldx, y, ldy, nb, err));
    return l.b || act != ACT_NONE ? bias_act(e, y, ldy, l.b, nb, out, act, err) : 0;
}

static int residual_add(cublas_engine_t *e, float *dst, const float *src, const float *bias, int nb, int cols,
                        char *err)
{
    void *args[] = {&dst, &src, &bias, &nb, &cols};
    return launch(e, K_RESIDUAL_ADD, grid_for((long long)nb * cols), 1, 0, args, err);
}

static int rms_norm(cublas_engine_t *e, float *out, const float *x, const float *w, float eps, int n, int nb,
                    char *err)
{
    void *args[] = {&out, &x, &w, &eps, &n};
    return launch(e, K_RMS_NORM, (unsigned)nb, 1, 0, args, err);
}

/* GroupNorm (LayerNorm: groups 1, b NULL) of x [nb, n], plus res [nb, n] unless NULL. */
static int group_norm(cublas_engine_t *e, float *out, const float *x, const float *w, const float *b,
                      const float *res, int n, int groups, int nb, char *err)
{
    void *args[] = {&out, &x, &w, &b, &res, &n, &groups};
    return launch(e, K_GROUP_NORM, (unsigned)groups, (unsigned)nb, 0, args, err);
}

/* Causal conv of x [nb, ch] into out (in place allowed); its state at `off` in each slot. */
static int causal_conv(cublas_engine_t *e, float *out, const float *x, long long off, dlin_t conv, int ch, int K,
                       int act, int nb, char *err)
{
    void *args[] = {&out, &x, &e->d_state, &e->d_slots, &e->slot_floats, &off, &conv.w, &conv.b, &nb, &ch, &K,
                    &act};
    return launch(e, K_CAUSAL_CONV, grid_for((long long)nb * ch), 1, 0, args, err);
}

/* ---- the layers (t [nb, H] -> y [nb, H]; st: the block's state offset in a slot) -------- */

static int slstm_block(cublas_engine_t *e, slstm_d *w, long long st, const float *t, float *y, int nb,
                       char *err)
{
    const spec_t *s = e->base.spec;
    acts_t *a = &e->a;
    int H = s->hidden_size, NS = s->xlstm.slstm_num_heads, bs = s->d.slstm_block, K = s->xlstm.conv_kernel;
    int K1 = K - 1;
    OK(group_norm(e, a->xn, t, w->norm, NULL, NULL, H, 1, nb, err));
    OK(causal_conv(e, a->sxc, a->xn, st, w->conv, H, K, ACT_SILU, nb, err));
    long long hoff = st + (long long)H * K1;
    void *gargs[] = {&a->hprev, &e->d_state, &e->d_slots, &e->slot_floats, &hoff, &nb, &H};
    OK(launch(e, K_GATHER, grid_for((long long)nb * H), 1, 0, gargs, err));
    for (int g = 0; g < 4; g++) { /* i, f read xc; z, o read xn */
        OK(gemm_blocks(e, w->gate_in[g].w, NS, bs, g < 2 ? a->sxc : a->xn, H, a->g_in + g * H, 4 * H, nb, err));
        OK(gemm_blocks(e, w->gate_state[g].w, NS, bs, a->hprev, H, a->g_state + g * H, 4 * H, nb, err));
    }
    void *cargs[] = {&a->g_in, &a->g_state, &w->gate_state[0].b, &w->gate_state[1].b, &w->gate_state[2].b,
                     &w->gate_state[3].b, &e->d_state, &e->d_slots, &e->slot_floats, &st, &H, &K1, &a->hnew, &nb};
    OK(launch(e, K_SLSTM_CELL, grid_for((long long)nb * H), 1, 0, cargs, err));
    return group_norm(e, y, a->hnew, w->gn_w, w->gn_b, t, H, NS, nb, err);
}

static int mlstm_block(cublas_engine_t *e, mlstm_d *w, long long st, const float *t, float *y, int nb,
                       char *err)
{
    const spec_t *s = e->base.spec;
    acts_t *a = &e->a;
    int H = s->hidden_size, E = s->d.mlstm_inner, NH = s->xlstm.mlstm_num_heads, DM = s->d.mlstm_head;
    int bf16 = s->precision.state == PRECISION_BF16; /* the memory rounded to bf16 (unfused.cu) */
    int K = s->xlstm.conv_kernel, K1 = K - 1, qb = s->xlstm.qkv_block_size, E3 = 3 * E;
    OK(group_norm(e, a->xn, t, w->norm, NULL, NULL, H, 1, nb, err));
    OK(gemm(e, w->x_proj.w, E, H, a->xn, H, a->xm, E, nb, err));
    OK(gemm(e, w->gate_proj.w, E, H, a->xn, H, a->xg, E, nb, err));
    OK(causal_conv(e, a->xc, a->xm, st, w->conv, E, K, ACT_SILU, nb, err));
    OK(gemm_blocks(e, w->q.w, E / qb, qb, a->xc, E, a->qkv, E3, nb, err));
    OK(gemm_blocks(e, w->k.w, E / qb, qb, a->xc, E, a->qkv + E, E3, nb, err));
    OK(gemm_blocks(e, w->v.w, E / qb, qb, a->xm, E, a->qkv + 2 * E, E3, nb, err)); /* v reads xm */
    OK(gemm(e, w->igate.w, NH, E3, a->qkv, E3, a->ifg, 2 * NH, nb, err));
    OK(gemm(e, w->fgate.w, NH, E3, a->qkv, E3, a->ifg + NH, 2 * NH, nb, err));
    void *cargs[] = {&a->qkv, &a->ifg, &w->igate.b, &w->fgate.b, &e->d_state, &e->d_slots, &e->slot_floats, &st,
                     &E, &NH, &DM, &K1, &bf16, &a->h};
    OK(launch(e, K_MLSTM_CELL, (unsigned)NH, (unsigned)nb, 2 * (size_t)DM * sizeof(float), cargs, err));
    OK(group_norm(e, a->hn, a->h, w->outnorm_w, w->outnorm_b, NULL, E, NH, nb, err));
    void *sargs[] = {&a->hn, &a->xc, &a->xg, &w->skip, &nb, &E};
    OK(launch(e, K_MLSTM_SKIP_GATE, grid_for((long long)nb * E), 1, 0, sargs, err));
    OK(gemm(e, w->proj_down.w, H, E, a->hn, E, y, H, nb, err));
    return residual_add(e, y, t, NULL, nb, H, err);
}

/* xLSTM layer = LayerNorm(mLSTM(sLSTM(t))). */
static int xlstm_layer(cublas_engine_t *e, block_d *b, const float *t, float *y, int nb, char *err)
{
    const spec_t *s = e->base.spec;
    const long long H = s->hidden_size, K1 = s->xlstm.conv_kernel - 1;
    OK(slstm_block(e, &b->layer.x.s, b->state, t, e->a.s_out, nb, err));
    OK(mlstm_block(e, &b->layer.x.m, b->state + H * K1 + 4 * H, e->a.s_out, e->a.m_out, nb, err));
    return group_norm(e, y, e->a.m_out, b->layer.x.final_norm, NULL, NULL, (int)H, 1, nb, err);
}

static int mamba2_layer(cublas_engine_t *e, block_d *b, const float *t, float *y, int nb, char *err)
{
    const spec_t *s = e->base.spec;
    mamba2_d *w = &b->layer.m;
    acts_t *a = &e->a;
    int H = s->hidden_size, E = s->d.mamba_inner, NM = s->d.mamba_heads, HD = s->mamba2.head_size;
    int S = s->mamba2.bc_head_size, K = s->mamba2.conv_kernel;
    int bf16 = s->precision.state == PRECISION_BF16; /* the SSM state rounded to bf16 (unfused.cu) */
    const long long K1 = K - 1, in_conv = b->state, b_conv = in_conv + E * K1, c_conv = b_conv + S * K1;
    long long ssm = c_conv + S * K1;
    OK(gemm(e, w->in_proj.w, E, H, t, H, a->mx, E, nb, err));
    OK(gemm(e, w->z_proj.w, E, H, t, H, a->mz, E, nb, err));
    OK(gemm(e, w->b_proj.w, S, H, t, H, a->mb, S, nb, err));
    OK(gemm(e, w->c_proj.w, S, H, t, H, a->mc, S, nb, err));
    OK(gemm(e, w->dt_proj.w, NM, H, t, H, a->mdt, NM, nb, err)); /* bias: in mamba_ssm */
    OK(causal_conv(e, a->mx, a->mx, in_conv, w->in_conv, E, K, ACT_SILU, nb, err));
    OK(causal_conv(e, a->mb, a->mb, b_conv, w->b_conv, S, K, ACT_SILU, nb, err));
    OK(causal_conv(e, a->mc, a->mc, c_conv, w->c_conv, S, K, ACT_SILU, nb, err));
    void *args[] = {&a->mx, &a->mz, &a->mb, &a->mc, &a->mdt, &w->dt_proj.b, &w->a, &w->d, &e->d_state,
                    &e->d_slots, &e->slot_floats, &ssm, &E, &HD, &S, &bf16, &a->my};
    OK(launch(e, K_MAMBA_SSM, (unsigned)NM, (unsigned)nb, 0, args, err));
    OK(rms_norm(e, a->my, a->my, w->norm, 1e-5f, E, nb, err));
    return gemm(e, w->out_proj.w, H, E, a->my, E, y, H, nb, err);
}

static int retnet_layer(cublas_engine_t *e, block_d *b, const float *t, float *y, int nb, char *err)
{
    const spec_t *s = e->base.spec;
    retnet_d *w = &b->layer.r;
    acts_t *a = &e->a;
    int H = s->hidden_size, D = s->d.retnet_head, NH = s->retnet.num_heads;
    long long st = b->state;
    float kscale = powf((float)D, -0.5f);
    OK(gemm(e, w->q.w, H, H, t, H, a->rq, H, nb, err));
    OK(gemm(e, w->k.w, H, H, t, H, a->rk, H, nb, err));
    OK(gemm(e, w->v.w, H, H, t, H, a->rv, H, nb, err));
    OK(gemm(e, w->g.w, H, H, t, H, a->rg, H, nb, err));
    void *rargs[] = {&a->rq, &a->rk, &w->angle, &e->d_state, &e->d_slots, &e->slot_floats, &H, &D, &kscale, &nb};
    OK(launch(e, K_RETNET_ROTATE, grid_for((long long)nb * H / 2), 1, 0, rargs, err));
    void *cargs[] = {&a->rq, &a->rk, &a->rv, &a->rg, &w->decay, &e->d_state, &e->d_slots, &e->slot_floats, &st,
                     &H, &D, &a->ro};
    OK(launch(e, K_RETNET_CELL, (unsigned)NH, (unsigned)nb, 2 * (size_t)D * sizeof(float), cargs, err));
    return gemm(e, w->out.w, H, H, a->ro, H, y, H, nb, err);
}

static int hawk_layer(cublas_engine_t *e, block_d *b, const float *t, float *y, int nb, char *err)
{
    const spec_t *s = e->base.spec;
    hawk_d *w = &b->layer.h;
    acts_t *a = &e->a;
    int H = s->hidden_size, K = s->hawk.conv_kernel, NB = s->hawk.num_blocks, bs = s->d.hawk_block;
    long long hoff = b->state + (long long)H * (K - 1);
    float c = (float)s->hawk.c;
    OK(gemm(e, w->gate_proj.w, H, H, t, H, a->hg, H, nb, err));
    OK(gemm(e, w->rec_proj.w, H, H, t, H, a->hx, H, nb, err));
    OK(causal_conv(e, a->hx, a->hx, b->state, w->conv, H, K, ACT_NONE, nb, err));
    OK(gemm_blocks(e, w->in_gate.w, NB, bs, a->hx, H, a->hi, H, nb, err));
    OK(gemm_blocks(e, w->rec_gate.w, NB, bs, a->hx, H, a->hr, H, nb, err));
    void *args[] = {&a->hx, &a->hi, &a->hr, &w->a, &c, &a->hg, &e->d_state, &e->d_slots, &e->slot_floats, &hoff,
                    &H, &nb};
    OK(launch(e, K_RGLRU, grid_for((long long)nb * H), 1, 0, args, err));
    return gemm(e, w->out_proj.w, H, H, a->hg, H, y, H, nb, err);
}

/* The whole step of nb entries on distinct slots, enqueued on the stream: d_slots, a.feats
 * hold the batch; a.out [nb, 4] receives the outputs. No host synchronisation. */
static int enqueue_step(cublas_engine_t *e, int nb, char *err)
{
    typedef int (*layer_fn)(cublas_engine_t *, block_d *, const float *, float *, int, char *);
    static const layer_fn layers[NUM_TOWERS] = {xlstm_layer, mamba2_layer, retnet_layer, hawk_layer};
    const spec_t *s = e->base.spec;
    acts_t *a = &e->a;
    const int H = s->hidden_size, P = s->proj_size, F = s->num_features;
    for (int k = 0; k < NUM_TOWERS; k++) {
        tower_d *tw = &e->towers[k];
        OK(linear(e, tw->input_up, P, F, a->feats, F, a->hid, P, nb, ACT_RELU, err));
        OK(linear(e, tw->input_down, H, P, a->hid, P, a->u, H, nb, ACT_NONE, err));
        for (int l = 0; l < s->tower_depth; l++) {
            block_d *b = &tw->blocks[l];
            OK(rms_norm(e, a->t, a->u, b->norm1, FLT_EPSILON, H, nb, err));
            OK(layers[k](e, b, a->t, a->y, nb, err));
            OK(residual_add(e, a->u, a->y, NULL, nb, H, err));
            OK(rms_norm(e, a->t, a->u, b->norm2, FLT_EPSILON, H, nb, err));
            OK(linear(e, b->fc1, P, H, a->t, H, a->hid, P, nb, ACT_RELU, err));
            OK(gemm(e, b->fc2.w, H, P, a->hid, P, a->y, H, nb, err));
            OK(residual_add(e, a->u, a->y, b->fc2.b, nb, H, err));
        }
        OK(linear(e, e->output_proj, 1, H, a->u, H, a->out + k, 4, nb, ACT_NONE, err));
    }
    void *args[] = {&e->d_state, &e->d_slots, &e->slot_floats, &nb};
    return launch(e, K_RETNET_ADVANCE, grid_for(nb), 1, 0, args, err);
}

/* ---- engine ops ----------------------------------------------------------------------- */

static size_t slot_bytes(const cublas_engine_t *e) { return (size_t)e->slot_floats * sizeof(float); }

/* engine_ops_t.step_wave: nb requests on distinct slots; out [nb][4] doubles. */
static int cublas_wave(engine_t *base, int nb, const int *slots, const float *features, double *out, char *err)
{
    cublas_engine_t *e = (cublas_engine_t *)base;
    const int F = e->base.spec->num_features;
    memcpy(e->h_slots, slots, (size_t)nb * sizeof(int));
    memcpy(e->h_feats, features, (size_t)nb * F * sizeof(float));
    CU(cudaMemcpyAsync(e->d_slots, e->h_slots, (size_t)nb * sizeof(int), cudaMemcpyHostToDevice, e->stream));
    CU(cudaMemcpyAsync(e->a.feats, e->h_feats, (size_t)nb * F * sizeof(float), cudaMemcpyHostToDevice,
                       e->stream));
    /* poison: every output must be written by the step */
    CU(cudaMemsetAsync(e->a.out, 0xff, (size_t)nb * 4 * sizeof(float), e->stream));
    OK(enqueue_step(e, nb, err));
    CU(cudaMemcpyAsync(e->h_out, e->a.out, (size_t)nb * 4 * sizeof(float), cudaMemcpyDeviceToHost, e->stream));
    CU(cudaStreamSynchronize(e->stream));
    for (int r = 0; r < nb * 4; r++) {
        uint32_t bits;
        memcpy(&bits, &e->h_out[r], sizeof bits);
        if (bits == 0xffffffffu)
            return seterr(err, "cublas engine: output %d (tower %d) of a batch of %d left unwritten", r / 4, r % 4,
                          nb);
        out[r] = (double)e->h_out[r];
    }
    return 0;
}

static void cublas_reset_slot(engine_t *base, int slot)
{
    cublas_engine_t *e = (cublas_engine_t *)base;
    char err[ERR_MAX];
    if (slot >= 0 && slot < base->max_symbols &&
        gpu_slot_reset(e->d_state + (size_t)slot * e->slot_floats, e->d_init, slot_bytes(e), e->stream, err))
        fprintf(stderr, "cublas engine: %s\n", err);
}

static size_t cublas_state_bytes(const engine_t *base) { return slot_bytes((const cublas_engine_t *)base); }

static int cublas_save_slot(engine_t *base, int slot, void *buf, char *err)
{
    cublas_engine_t *e = (cublas_engine_t *)base;
    OK(engine_check_slot(&e->base, slot, err));
    return gpu_copy(buf, e->d_state + (size_t)slot * e->slot_floats, slot_bytes(e), cudaMemcpyDeviceToHost,
                    e->stream, "cublas engine: saving a slot", err);
}

static int cublas_load_slot(engine_t *base, int slot, const void *buf, char *err)
{
    cublas_engine_t *e = (cublas_engine_t *)base;
    OK(engine_check_slot(&e->base, slot, err));
    return gpu_copy(e->d_state + (size_t)slot * e->slot_floats, buf, slot_bytes(e), cudaMemcpyHostToDevice,
                    e->stream, "cublas engine: loading a slot", err);
}

static void cublas_destroy(engine_t *base)
{
    cublas_engine_t *e = (cublas_engine_t *)base;
    if (!e) return;
    if (e->blas) cublasDestroy(e->blas);
    cudaFree(e->d_w);
    cudaFree(e->d_state);
    cudaFree(e->d_init);
    cudaFree(e->d_act);
    cudaFree(e->d_blas_ws);
    cudaFree(e->d_slots);
    cudaFreeHost(e->h_feats);
    cudaFreeHost(e->h_out);
    cudaFreeHost(e->h_slots);
    if (e->ev[0]) cudaEventDestroy(e->ev[0]);
    if (e->ev[1]) cudaEventDestroy(e->ev[1]);
    if (e->stream) cudaStreamDestroy(e->stream);
    if (e->lib) cudaLibraryUnload(e->lib);
    for (int k = 0; k < NUM_TOWERS; k++) free(e->towers[k].blocks);
    engine_release(&e->base);
    free(e);
}

static int cublas_time_step(engine_t *base, int nb, int warmup, int iters, double *median_ms, char *err);

static const engine_ops_t cublas_ops = {
    .name = "cublas",
    .step_wave = cublas_wave,
    .reset_slot = cublas_reset_slot,
    .state_bytes = cublas_state_bytes,
    .save_slot = cublas_save_slot,
    .load_slot = cublas_load_slot,
    .destroy = cublas_destroy,
    .time_step = cublas_time_step,
};

/* ---- weights: one device buffer, tensors in catalogue order at 16-byte aligned offsets -- */

typedef struct {
    const cublas_engine_t *e;
    const catalogue_t *cat;
    const long long *offset; /* per catalogue entry, floats */
    const char *prefix;
} binder_t;

static const float *dev(const binder_t *b, const char *name)
{
    char full[TENSOR_NAME_MAX];
    tensor_name(full, "%s%s", b->prefix, name);
    const int i = catalogue_find(b->cat, full);
    if (i < 0) { /* the catalogue defines the names bound here: a mismatch is a bug */
        fprintf(stderr, "cublas engine: tensor %s is not in the catalogue\n", full);
        abort();
    }
    return b->e->d_w + b->offset[i];
}

static dlin_t dlin(const binder_t *b, const char *name, int has_bias)
{
    char n[TENSOR_NAME_MAX];
    dlin_t l = {0};
    tensor_name(n, "%s.weight", name);
    l.w = dev(b, n);
    if (has_bias) {
        tensor_name(n, "%s.bias", name);
        l.b = dev(b, n);
    }
    return l;
}

static dlin_t dconv(const binder_t *b, const char *name)
{
    char n[TENSOR_NAME_MAX];
    tensor_name(n, "%s.conv", name);
    return dlin(b, n, 1);
}

static void bind_xlstm(const binder_t *b, xlstm_d *x)
{
    static const char *gates[4] = {"igate", "fgate", "zgate", "ogate"};
    char n[TENSOR_NAME_MAX];
    x->s.norm = dev(b, "layer.slstm.norm.weight");
    x->s.conv = dconv(b, "layer.slstm.conv1d");
    for (int g = 0; g < 4; g++) {
        tensor_name(n, "layer.slstm.%s_input", gates[g]);
        x->s.gate_in[g] = dlin(b, n, 0);
        tensor_name(n, "layer.slstm.%s_state", gates[g]);
        x->s.gate_state[g] = dlin(b, n, 1);
    }
    x->s.gn_w = dev(b, "layer.slstm.group_norm.weight");
    x->s.gn_b = dev(b, "layer.slstm.group_norm.bias");
    x->m.norm = dev(b, "layer.mlstm.norm.weight");
    x->m.x_proj = dlin(b, "layer.mlstm.x_proj", 0);
    x->m.gate_proj = dlin(b, "layer.mlstm.gate_proj", 0);
    x->m.conv = dconv(b, "layer.mlstm.conv1d");
    x->m.q = dlin(b, "layer.mlstm.q_proj", 0);
    x->m.k = dlin(b, "layer.mlstm.k_proj", 0);
    x->m.v = dlin(b, "layer.mlstm.v_proj", 0);
    x->m.igate = dlin(b, "layer.mlstm.mlstm_cell.igate_proj", 1);
    x->m.fgate = dlin(b, "layer.mlstm.mlstm_cell.fgate_proj", 1);
    x->m.outnorm_w = dev(b, "layer.mlstm.mlstm_cell.outnorm.weight");
    x->m.outnorm_b = dev(b, "layer.mlstm.mlstm_cell.outnorm.bias");
    x->m.skip = dev(b, "layer.mlstm.learnable_skip");
    x->m.proj_down = dlin(b, "layer.mlstm.proj_down", 0);
    x->final_norm = dev(b, "layer.final_norm.weight");
}

static void bind_mamba2(const binder_t *b, mamba2_d *x)
{
    x->in_proj = dlin(b, "layer.input_proj", 0);
    x->z_proj = dlin(b, "layer.z_proj", 0);
    x->b_proj = dlin(b, "layer.b_proj", 0);
    x->c_proj = dlin(b, "layer.c_proj", 0);
    x->dt_proj = dlin(b, "layer.dt_proj", 1);
    x->in_conv = dconv(b, "layer.input_conv");
    x->b_conv = dconv(b, "layer.b_conv");
    x->c_conv = dconv(b, "layer.c_conv");
    x->a = dev(b, "layer.a");
    x->d = dev(b, "layer.d");
    x->norm = dev(b, "layer.norm.weight");
    x->out_proj = dlin(b, "layer.out_proj", 0);
}

static void bind_retnet(const binder_t *b, retnet_d *x)
{
    x->q = dlin(b, "layer.q_proj", 0);
    x->k = dlin(b, "layer.k_proj", 0);
    x->v = dlin(b, "layer.v_proj", 0);
    x->g = dlin(b, "layer.g_proj", 0);
    x->out = dlin(b, "layer.out_proj", 0);
    x->decay = dev(b, "layer.decay");
    x->angle = dev(b, "layer.angle");
}

static void bind_hawk(const binder_t *b, hawk_d *x)
{
    x->gate_proj = dlin(b, "layer.gate_proj", 0);
    x->rec_proj = dlin(b, "layer.recurrent_proj", 0);
    x->conv = dconv(b, "layer.conv");
    x->in_gate = dlin(b, "layer.rglru.input_gate", 0);
    x->rec_gate = dlin(b, "layer.rglru.recurrence_gate", 0);
    x->a = dev(b, "layer.rglru.a");
    x->out_proj = dlin(b, "layer.out_proj", 0);
}

/* State floats of one block of tower k; layout as in the C reference (reference.c):
 * xLSTM:  sLSTM conv [H,K-1], h, c, n, m [H]; mLSTM conv [E,K-1], C [NH,DM,DM], nv [NH,DM], m [NH]
 * Mamba2: input_conv [E,K-1], b_conv [S,K-1], c_conv [S,K-1], ssm [NM,64,S]
 * RetNet: scale [NH], R [NH,D,D]     Hawk: conv [H,K-1], h [H] */
static long long block_state_floats(const spec_t *s, int k)
{
    const long long H = s->hidden_size;
    switch (k) {
    case TOWER_XLSTM: {
        const long long E = s->d.mlstm_inner, NH = s->xlstm.mlstm_num_heads, DM = s->d.mlstm_head;
        const long long K1 = s->xlstm.conv_kernel - 1;
        return H * K1 + 4 * H + E * K1 + NH * DM * DM + NH * DM + NH;
    }
    case TOWER_MAMBA2: {
        const long long E = s->d.mamba_inner, S = s->mamba2.bc_head_size, K1 = s->mamba2.conv_kernel - 1;
        return (E + 2 * S) * K1 + (long long)s->d.mamba_heads * s->mamba2.head_size * S;
    }
    case TOWER_RETNET: {
        const long long NH = s->retnet.num_heads, D = s->d.retnet_head;
        return NH + NH * D * D;
    }
    default:
        return H * (s->hawk.conv_kernel - 1) + H;
    }
}

/* Bind every tensor and lay out the slot (header, then each tower's blocks). */
static void bind_all(cublas_engine_t *e, const catalogue_t *cat, const long long *offset)
{
    typedef void (*bind_fn)(const binder_t *, void *);
    static const bind_fn binders[NUM_TOWERS] = {(bind_fn)bind_xlstm, (bind_fn)bind_mamba2, (bind_fn)bind_retnet,
                                                (bind_fn)bind_hawk};
    const spec_t *s = e->base.spec;
    char prefix[TENSOR_NAME_MAX];
    binder_t b = {e, cat, offset, prefix};
    long long slot = HEADER_FLOATS;
    for (int k = 0; k < NUM_TOWERS; k++) {
        tower_d *t = &e->towers[k];
        tensor_name(prefix, "towers.%d.", k);
        t->input_up = dlin(&b, "input_up", 1);
        t->input_down = dlin(&b, "input_down", 1);
        t->blocks = xcalloc((size_t)s->tower_depth, sizeof *t->blocks);
        for (int l = 0; l < s->tower_depth; l++) {
            block_d *bl = &t->blocks[l];
            tensor_name(prefix, "towers.%d.blocks.%d.", k, l);
            bl->norm1 = dev(&b, "norm1.weight");
            bl->norm2 = dev(&b, "norm2.weight");
            bl->fc1 = dlin(&b, "mlp.fc1", 1);
            bl->fc2 = dlin(&b, "mlp.fc2", 1);
            binders[k](&b, &bl->layer);
            bl->state = slot;
            slot += block_state_floats(s, k);
        }
    }
    prefix[0] = '\0';
    e->output_proj = dlin(&b, "output_proj", 1);
    e->slot_floats = (slot + 63) & ~63LL; /* slots 256-byte aligned */
}

/* The initial state of one slot: zeros, RetNet position 0, sLSTM m = -inf. */
static void initial_slot(const cublas_engine_t *e, float *img)
{
    const spec_t *s = e->base.spec;
    const long long H = s->hidden_size, K1 = s->xlstm.conv_kernel - 1;
    memset(img, 0, slot_bytes(e));
    for (int l = 0; l < s->tower_depth; l++) {
        float *m = img + e->towers[TOWER_XLSTM].blocks[l].state + H * K1 + 3 * H;
        for (long long i = 0; i < H; i++) m[i] = -INFINITY;
    }
}

static int device_alloc(void **p, size_t bytes, const char *what, char *err)
{
    const cudaError_t rc = cudaMalloc(p, bytes);
    if (rc == cudaSuccess) return 0;
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return seterr(err, "cublas engine: out of device memory for %s: %zu bytes (%zu of %zu bytes free): %s", what,
                  bytes, free_b, total_b, cudaGetErrorString(rc));
}

static int upload_weights(cublas_engine_t *e, const weights_t *w, char *err)
{
    const catalogue_t *cat = &w->cat;
    long long *offset = xmalloc((size_t)cat->count * sizeof *offset), total = 0;
    for (int i = 0; i < cat->count; i++) {
        offset[i] = total;
        total += (cat->t[i].numel + 3) & ~3LL;
    }
    int rc = device_alloc((void **)&e->d_w, (size_t)total * sizeof(float), "the weights", err);
    for (int i = 0; i < cat->count && !rc; i++) {
        const cudaError_t c = cudaMemcpy(e->d_w + offset[i], w->data[i], (size_t)cat->t[i].numel * sizeof(float),
                                         cudaMemcpyHostToDevice);
        if (c != cudaSuccess)
            rc = seterr(err, "cublas engine: uploading %s: %s", cat->t[i].name, cudaGetErrorString(c));
    }
    if (!rc) bind_all(e, cat, offset);
    free(offset);
    return rc;
}

/* Activation buffers, carved from one allocation (256-byte aligned pieces). */
static int alloc_activations(cublas_engine_t *e, char *err)
{
    const spec_t *s = e->base.spec;
    const long long B = e->base.max_batch, H = s->hidden_size, P = s->proj_size, F = s->num_features;
    const long long EX = s->d.mlstm_inner, NH = s->xlstm.mlstm_num_heads, EM = s->d.mamba_inner;
    const long long S = s->mamba2.bc_head_size, NM = s->d.mamba_heads;
    acts_t *a = &e->a;
    struct { float **p; long long width; } parts[] = {
        {&a->feats, F}, {&a->out, 4}, {&a->u, H}, {&a->t, H}, {&a->y, H}, {&a->hid, P},
        {&a->xn, H}, {&a->sxc, H}, {&a->hprev, H}, {&a->hnew, H}, {&a->s_out, H}, {&a->m_out, H},
        {&a->g_in, 4 * H}, {&a->g_state, 4 * H},
        {&a->xm, EX}, {&a->xg, EX}, {&a->xc, EX}, {&a->h, EX}, {&a->hn, EX}, {&a->qkv, 3 * EX}, {&a->ifg, 2 * NH},
        {&a->mx, EM}, {&a->mz, EM}, {&a->my, EM}, {&a->mb, S}, {&a->mc, S}, {&a->mdt, NM},
        {&a->rq, H}, {&a->rk, H}, {&a->rv, H}, {&a->rg, H}, {&a->ro, H},
        {&a->hg, H}, {&a->hx, H}, {&a->hi, H}, {&a->hr, H},
    };
    long long total = 0;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) total += (B * parts[i].width + 63) & ~63LL;
    OK(device_alloc((void **)&e->d_act, (size_t)total * sizeof(float), "the activations", err));
    CU(cudaMemset(e->d_act, 0, (size_t)total * sizeof(float)));
    float *p = e->d_act;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        *parts[i].p = p;
        p += (B * parts[i].width + 63) & ~63LL;
    }
    return 0;
}

/* Compile templates/unfused.cu for this device (or take it from the cubin cache), load it. */
static int load_kernels(cublas_engine_t *e, char *err)
{
    const char *src = template_text("unfused.cu");
    if (!src) return seterr(err, "cublas engine: templates/unfused.cu is not embedded in this build");
    int dev_id;
    struct cudaDeviceProp prop;
    CU(cudaGetDevice(&dev_id));
    CU(cudaGetDeviceProperties(&prop, dev_id));
    char arch[16];
    snprintf(arch, sizeof arch, "sm_%d%d", prop.major, prop.minor);
    void *cubin;
    size_t size;
    int from_cache;
    OK(jit_cubin(src, "unfused.cu", arch, &cubin, &size, &from_cache, err));
    const cudaError_t c = cudaLibraryLoadData(&e->lib, cubin, NULL, NULL, 0, NULL, NULL, 0);
    free(cubin);
    if (c != cudaSuccess) return seterr(err, "cublas engine: loading unfused.cu: %s", cudaGetErrorString(c));
    for (int k = 0; k < K_COUNT; k++) {
        const cudaError_t g = cudaLibraryGetKernel(&e->kern[k], e->lib, kernel_names[k]);
        if (g != cudaSuccess)
            return seterr(err, "cublas engine: kernel %s in unfused.cu: %s", kernel_names[k], cudaGetErrorString(g));
    }
    return 0;
}

static int create(cublas_engine_t *e, const weights_t *w, char *err)
{
    const spec_t *s = e->base.spec;
    if (!gpu_available()) return seterr(err, "cublas engine: no CUDA device available");
    OK(load_kernels(e, err));
    CU(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking));
    CU(cudaEventCreate(&e->ev[0]));
    CU(cudaEventCreate(&e->ev[1]));
    BLAS(cublasCreate(&e->blas));
    BLAS(cublasSetStream(e->blas, e->stream));
    BLAS(cublasSetMathMode(e->blas, CUBLAS_DEFAULT_MATH)); /* full fp32: no TF32 */
    OK(device_alloc((void **)&e->d_blas_ws, BLAS_WORKSPACE, "the cuBLAS workspace", err));
    BLAS(cublasSetWorkspace(e->blas, e->d_blas_ws, BLAS_WORKSPACE));
    OK(upload_weights(e, w, err));
    OK(alloc_activations(e, err));
    const int B = e->base.max_batch, F = s->num_features;
    char what[128];
    snprintf(what, sizeof what, "the state of %d symbols (%zu bytes each)", e->base.max_symbols, slot_bytes(e));
    OK(device_alloc((void **)&e->d_state, (size_t)e->base.max_symbols * slot_bytes(e), what, err));
    OK(device_alloc((void **)&e->d_slots, (size_t)B * sizeof(int), "slots", err));
    CU(cudaMallocHost((void **)&e->h_feats, (size_t)B * F * sizeof(float)));
    CU(cudaMallocHost((void **)&e->h_out, (size_t)B * 4 * sizeof(float)));
    CU(cudaMallocHost((void **)&e->h_slots, (size_t)B * sizeof(int)));
    OK(device_alloc((void **)&e->d_init, slot_bytes(e), "a slot's initial state", err));
    float *img = xmalloc(slot_bytes(e));
    initial_slot(e, img);
    const int rc = gpu_state_init(e->d_state, e->base.max_symbols, e->d_init, img, slot_bytes(e), e->stream, err);
    free(img);
    OK(rc);
    CU(cudaDeviceSynchronize());
    return 0;
}

engine_t *engine_cublas_create(const spec_t *s, const weights_t *w, const engine_options_t *o, char *err)
{
    cublas_engine_t *e = xcalloc(1, sizeof *e);
    engine_init(&e->base, &cublas_ops, s, o);
    if (create(e, w, err)) {
        cublas_destroy(&e->base);
        return NULL;
    }
    return &e->base;
}

/* ---- timing --------------------------------------------------------------------------- */

/* One timed step (events around it): the enqueued step or the graph's replay. */
static int timed_step(cublas_engine_t *e, int nb, cudaGraphExec_t graph, float *ms, char *err)
{
    CU(cudaEventRecord(e->ev[0], e->stream));
    if (graph) CU(cudaGraphLaunch(graph, e->stream));
    else OK(enqueue_step(e, nb, err));
    CU(cudaEventRecord(e->ev[1], e->stream));
    CU(cudaEventSynchronize(e->ev[1]));
    CU(cudaEventElapsedTime(ms, e->ev[0], e->ev[1]));
    return 0;
}

static int capture_step(cublas_engine_t *e, int nb, cudaGraphExec_t *exec, char *err)
{
    cudaGraph_t g = NULL;
    CU(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal));
    const int rc = enqueue_step(e, nb, err);
    const cudaError_t c = cudaStreamEndCapture(e->stream, &g);
    if (rc) {
        if (g) cudaGraphDestroy(g);
        return -1;
    }
    CU(c);
    const cudaError_t ci = cudaGraphInstantiate(exec, g, 0);
    cudaGraphDestroy(g);
    CU(ci);
    return 0;
}

/* engine_ops_t.time_step: the step is captured once as a CUDA graph and replayed, which
 * removes the host's launch overhead (~1,500 launches per full-size step) from the time. */
static int cublas_time_step(engine_t *base, int nb, int warmup, int iters, double *median_ms, char *err)
{
    cublas_engine_t *e = (cublas_engine_t *)base;
    if (nb < 1 || nb > base->max_batch || nb > base->max_symbols || iters < 1)
        return seterr(err, "batch %d out of range [1, min(max_batch %d, max_symbols %d)]", nb, base->max_batch,
                      base->max_symbols);
    const int F = base->spec->num_features;
    for (int r = 0; r < nb; r++) e->h_slots[r] = r;
    random_uniform(e->h_feats, (size_t)nb * F, 0x9e3779b97f4a7c15ULL, -1, 1);
    CU(cudaMemcpyAsync(e->d_slots, e->h_slots, (size_t)nb * sizeof(int), cudaMemcpyHostToDevice, e->stream));
    CU(cudaMemcpyAsync(e->a.feats, e->h_feats, (size_t)nb * F * sizeof(float), cudaMemcpyHostToDevice, e->stream));
    cudaGraphExec_t exec = NULL;
    OK(capture_step(e, nb, &exec, err));
    double *ms = xmalloc((size_t)iters * sizeof *ms);
    int rc = 0;
    for (int i = 0; i < warmup + iters && !rc; i++) {
        float t = 0;
        rc = timed_step(e, nb, exec, &t, err);
        if (!rc && i >= warmup) ms[i - warmup] = t;
    }
    if (!rc) *median_ms = median(ms, (size_t)iters);
    if (exec) cudaGraphExecDestroy(exec);
    free(ms);
    return rc;
}
