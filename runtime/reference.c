/* The C reference: weight binding and state layout (precision independent); the
 * arithmetic is in reference_impl.h, compiled once for double and once for float. */
#include "reference.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#include "util.h"

/* ---- bound weights (fp32 host arrays owned by weights_t) ---------------------------- */

typedef struct { const float *w, *b; int out, in; } linear_t;        /* w [out, in] */
typedef struct { const float *w, *b; int nb, bs; } block_linear_t;   /* w [nb, bs, bs] */
typedef struct { const float *w, *b; int ch, k; } conv_t;            /* w [ch, 1, k] */

typedef struct {
    const float *norm, *gn_w, *gn_b;
    conv_t conv;
    block_linear_t gate_in[4], gate_state[4]; /* i, f, z, o */
} slstm_w;

typedef struct {
    const float *norm, *outnorm_w, *outnorm_b, *skip;
    linear_t x_proj, gate_proj, igate, fgate, proj_down;
    conv_t conv;
    block_linear_t q, k, v;
} mlstm_w;

typedef struct { slstm_w s; mlstm_w m; const float *final_norm; } xlstm_w;

typedef struct {
    linear_t in_proj, z_proj, b_proj, c_proj, dt_proj, out_proj;
    conv_t in_conv, b_conv, c_conv;
    const float *a, *d, *norm;
} mamba2_w;

typedef struct { linear_t q, k, v, g, out; const float *decay, *angle; } retnet_w;

typedef struct {
    linear_t gate_proj, rec_proj, out_proj;
    conv_t conv;
    block_linear_t in_gate, rec_gate;
    const float *a;
} hawk_w;

typedef struct {
    const float *norm1, *norm2;
    linear_t fc1, fc2;
    union { xlstm_w x; mamba2_w m; retnet_w r; hawk_w h; } layer;
    size_t state; /* offset of this block's state, in elements */
} block_w;

typedef struct {
    linear_t input_up, input_down;
    block_w *blocks;
} tower_w;

struct ref_model {
    spec_t s;
    ref_precision_t precision;
    const weights_t *w;
    tower_w towers[NUM_TOWERS];
    linear_t output_proj;
    size_t state_elems;   /* REALs after the header */
    size_t scratch_elems; /* largest working set of one layer */
};

/* State block: int64 RetNet position, then state_elems REALs. */
typedef struct { int64_t pos; } state_header_t;
#define STATE_DATA(st) ((char *)(st) + sizeof(state_header_t))

static const float *get(const ref_model_t *m, const char *prefix, const char *name)
{
    char full[TENSOR_NAME_MAX];
    tensor_name(full, "%s%s", prefix, name);
    return weights_get(m->w, full);
}

static linear_t bind_linear(const ref_model_t *m, const char *prefix, const char *name,
                            int out, int in, int has_bias)
{
    char n[TENSOR_NAME_MAX];
    linear_t l = {.out = out, .in = in};
    tensor_name(n, "%s.weight", name);
    l.w = get(m, prefix, n);
    if (has_bias) {
        tensor_name(n, "%s.bias", name);
        l.b = get(m, prefix, n);
    }
    return l;
}

static block_linear_t bind_block_linear(const ref_model_t *m, const char *prefix,
                                        const char *name, int nb, int bs, int has_bias)
{
    linear_t l = bind_linear(m, prefix, name, nb * bs, bs, has_bias);
    return (block_linear_t){.w = l.w, .b = l.b, .nb = nb, .bs = bs};
}

static conv_t bind_conv(const ref_model_t *m, const char *prefix, const char *name, int ch,
                        int k)
{
    char n[TENSOR_NAME_MAX];
    tensor_name(n, "%s.conv", name);
    linear_t l = bind_linear(m, prefix, n, ch, k, 1);
    return (conv_t){.w = l.w, .b = l.b, .ch = ch, .k = k};
}

static void bind_xlstm(const ref_model_t *m, const char *p, xlstm_w *x)
{
    const spec_t *s = &m->s;
    const int H = s->hidden_size, E = s->d.mlstm_inner, NS = s->xlstm.slstm_num_heads;
    const int NH = s->xlstm.mlstm_num_heads, qb = s->xlstm.qkv_block_size;
    static const char *gates[4] = {"igate", "fgate", "zgate", "ogate"};
    char n[TENSOR_NAME_MAX];

    x->s.norm = get(m, p, "layer.slstm.norm.weight");
    x->s.conv = bind_conv(m, p, "layer.slstm.conv1d", H, s->xlstm.conv_kernel);
    for (int g = 0; g < 4; g++) {
        tensor_name(n, "layer.slstm.%s_input", gates[g]);
        x->s.gate_in[g] = bind_block_linear(m, p, n, NS, s->d.slstm_block, 0);
        tensor_name(n, "layer.slstm.%s_state", gates[g]);
        x->s.gate_state[g] = bind_block_linear(m, p, n, NS, s->d.slstm_block, 1);
    }
    x->s.gn_w = get(m, p, "layer.slstm.group_norm.weight");
    x->s.gn_b = get(m, p, "layer.slstm.group_norm.bias");

    x->m.norm = get(m, p, "layer.mlstm.norm.weight");
    x->m.x_proj = bind_linear(m, p, "layer.mlstm.x_proj", E, H, 0);
    x->m.gate_proj = bind_linear(m, p, "layer.mlstm.gate_proj", E, H, 0);
    x->m.conv = bind_conv(m, p, "layer.mlstm.conv1d", E, s->xlstm.conv_kernel);
    x->m.q = bind_block_linear(m, p, "layer.mlstm.q_proj", E / qb, qb, 0);
    x->m.k = bind_block_linear(m, p, "layer.mlstm.k_proj", E / qb, qb, 0);
    x->m.v = bind_block_linear(m, p, "layer.mlstm.v_proj", E / qb, qb, 0);
    x->m.igate = bind_linear(m, p, "layer.mlstm.mlstm_cell.igate_proj", NH, 3 * E, 1);
    x->m.fgate = bind_linear(m, p, "layer.mlstm.mlstm_cell.fgate_proj", NH, 3 * E, 1);
    x->m.outnorm_w = get(m, p, "layer.mlstm.mlstm_cell.outnorm.weight");
    x->m.outnorm_b = get(m, p, "layer.mlstm.mlstm_cell.outnorm.bias");
    x->m.skip = get(m, p, "layer.mlstm.learnable_skip");
    x->m.proj_down = bind_linear(m, p, "layer.mlstm.proj_down", H, E, 0);
    x->final_norm = get(m, p, "layer.final_norm.weight");
}

static void bind_mamba2(const ref_model_t *m, const char *p, mamba2_w *x)
{
    const spec_t *s = &m->s;
    const int H = s->hidden_size, E = s->d.mamba_inner, NM = s->d.mamba_heads;
    const int S = s->mamba2.bc_head_size, K = s->mamba2.conv_kernel;
    x->in_proj = bind_linear(m, p, "layer.input_proj", E, H, 0);
    x->z_proj = bind_linear(m, p, "layer.z_proj", E, H, 0);
    x->b_proj = bind_linear(m, p, "layer.b_proj", S, H, 0);
    x->c_proj = bind_linear(m, p, "layer.c_proj", S, H, 0);
    x->dt_proj = bind_linear(m, p, "layer.dt_proj", NM, H, 1);
    x->in_conv = bind_conv(m, p, "layer.input_conv", E, K);
    x->b_conv = bind_conv(m, p, "layer.b_conv", S, K);
    x->c_conv = bind_conv(m, p, "layer.c_conv", S, K);
    x->a = get(m, p, "layer.a");
    x->d = get(m, p, "layer.d");
    x->norm = get(m, p, "layer.norm.weight");
    x->out_proj = bind_linear(m, p, "layer.out_proj", H, E, 0);
}

static void bind_retnet(const ref_model_t *m, const char *p, retnet_w *x)
{
    const int H = m->s.hidden_size;
    x->q = bind_linear(m, p, "layer.q_proj", H, H, 0);
    x->k = bind_linear(m, p, "layer.k_proj", H, H, 0);
    x->v = bind_linear(m, p, "layer.v_proj", H, H, 0);
    x->g = bind_linear(m, p, "layer.g_proj", H, H, 0);
    x->out = bind_linear(m, p, "layer.out_proj", H, H, 0);
    x->decay = get(m, p, "layer.decay");
    x->angle = get(m, p, "layer.angle");
}

static void bind_hawk(const ref_model_t *m, const char *p, hawk_w *x)
{
    const spec_t *s = &m->s;
    const int H = s->hidden_size;
    x->gate_proj = bind_linear(m, p, "layer.gate_proj", H, H, 0);
    x->rec_proj = bind_linear(m, p, "layer.recurrent_proj", H, H, 0);
    x->conv = bind_conv(m, p, "layer.conv", H, s->hawk.conv_kernel);
    x->in_gate = bind_block_linear(m, p, "layer.rglru.input_gate", s->hawk.num_blocks,
                                   s->d.hawk_block, 0);
    x->rec_gate = bind_block_linear(m, p, "layer.rglru.recurrence_gate", s->hawk.num_blocks,
                                    s->d.hawk_block, 0);
    x->a = get(m, p, "layer.rglru.a");
    x->out_proj = bind_linear(m, p, "layer.out_proj", H, H, 0);
}

/* ---- state layout (elements per block, per tower) ----------------------------------- */

/* xLSTM:  sLSTM conv [H,K-1], h, c, n, m [H]; mLSTM conv [E,K-1], C [NH,DM,DM], nv [NH,DM], m [NH]
 * Mamba2: input_conv [E,K-1], b_conv [S,K-1], c_conv [S,K-1], ssm [NM,head,S]
 * RetNet: scale [NH], R [NH,D,D]
 * Hawk:   conv [H,K-1], h [H] */
static size_t layer_state_elems(const spec_t *s, int tower)
{
    const size_t H = s->hidden_size;
    switch (tower) {
    case TOWER_XLSTM: {
        const size_t E = s->d.mlstm_inner, NH = s->xlstm.mlstm_num_heads, DM = s->d.mlstm_head;
        const size_t K1 = s->xlstm.conv_kernel - 1;
        return H * K1 + 4 * H + E * K1 + NH * DM * DM + NH * DM + NH;
    }
    case TOWER_MAMBA2: {
        const size_t E = s->d.mamba_inner, S = s->mamba2.bc_head_size;
        const size_t K1 = s->mamba2.conv_kernel - 1;
        return (E + 2 * S) * K1 + (size_t)s->d.mamba_heads * s->mamba2.head_size * S;
    }
    case TOWER_RETNET: {
        const size_t NH = s->retnet.num_heads, D = s->d.retnet_head;
        return NH + NH * D * D;
    }
    default:
        return H * (s->hawk.conv_kernel - 1) + H;
    }
}

/* Upper bound of the scratch one layer needs (a few vectors of the widest size). */
static size_t scratch_elems(const spec_t *s)
{
    size_t w = s->proj_size;
    const size_t cand[] = {3 * (size_t)s->d.mlstm_inner, (size_t)s->d.mamba_inner,
                           (size_t)s->hidden_size, (size_t)s->num_features,
                           (size_t)s->mamba2.bc_head_size};
    for (size_t i = 0; i < ARRAY_LEN(cand); i++)
        if (cand[i] > w) w = cand[i];
    return 16 * w;
}

/* ---- the arithmetic, once per precision --------------------------------------------- */

#define REAL double
#define REAL_EPS DBL_EPSILON
#define FN(name) name##_f64
#include "reference_impl.h"
#undef REAL
#undef REAL_EPS
#undef FN

#define REAL float
#define REAL_EPS FLT_EPSILON
#define FN(name) name##_f32
#include "reference_impl.h"
#undef REAL
#undef REAL_EPS
#undef FN

/* ---- public API ---------------------------------------------------------------------- */

ref_model_t *ref_create(const spec_t *s, const weights_t *w, ref_precision_t p)
{
    typedef void (*bind_fn)(const ref_model_t *, const char *, void *);
    static const bind_fn binders[NUM_TOWERS] = {
        (bind_fn)bind_xlstm, (bind_fn)bind_mamba2, (bind_fn)bind_retnet, (bind_fn)bind_hawk};
    ref_model_t *m = xcalloc(1, sizeof *m);
    m->s = *s;
    m->precision = p;
    m->w = w;
    char prefix[TENSOR_NAME_MAX];
    const int H = s->hidden_size, P = s->proj_size;
    for (int k = 0; k < NUM_TOWERS; k++) {
        tower_w *t = &m->towers[k];
        tensor_name(prefix, "towers.%d.", k);
        t->input_up = bind_linear(m, prefix, "input_up", P, s->num_features, 1);
        t->input_down = bind_linear(m, prefix, "input_down", H, P, 1);
        t->blocks = xcalloc((size_t)s->tower_depth, sizeof *t->blocks);
        for (int l = 0; l < s->tower_depth; l++) {
            block_w *b = &t->blocks[l];
            tensor_name(prefix, "towers.%d.blocks.%d.", k, l);
            b->norm1 = get(m, prefix, "norm1.weight");
            b->norm2 = get(m, prefix, "norm2.weight");
            b->fc1 = bind_linear(m, prefix, "mlp.fc1", P, H, 1);
            b->fc2 = bind_linear(m, prefix, "mlp.fc2", H, P, 1);
            binders[k](m, prefix, &b->layer);
            b->state = m->state_elems;
            m->state_elems += layer_state_elems(s, k);
        }
    }
    m->output_proj = bind_linear(m, "", "output_proj", 1, H, 1);
    m->scratch_elems = scratch_elems(s);
    return m;
}

void ref_destroy(ref_model_t *m)
{
    if (!m) return;
    for (int k = 0; k < NUM_TOWERS; k++) free(m->towers[k].blocks);
    free(m);
}

static size_t real_size(const ref_model_t *m)
{
    return m->precision == REF_FP64 ? sizeof(double) : sizeof(float);
}

size_t ref_state_bytes(const ref_model_t *m)
{
    return sizeof(state_header_t) + m->state_elems * real_size(m);
}

void ref_state_init(const ref_model_t *m, void *state)
{
    if (m->precision == REF_FP64)
        state_init_f64(m, state);
    else
        state_init_f32(m, state);
}

void ref_step(const ref_model_t *m, void *state, const float *features, double out[4])
{
    if (m->precision == REF_FP64)
        step_f64(m, state, features, out);
    else
        step_f32(m, state, features, out);
}
