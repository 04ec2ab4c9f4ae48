/* The tensor catalogue of a spec (see model.h and ../shared/MODEL.md). */
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct {
    catalogue_t *c;
    int cap;
    int tower;
    char prefix[TENSOR_NAME_MAX];
} builder_t;

/* Append one tensor named prefix + suffix with up to three dimensions (0 = absent). */
static void add(builder_t *b, const char *suffix, init_kind_t init, int fan_in,
                int64_t d0, int64_t d1, int64_t d2)
{
    catalogue_t *c = b->c;
    if (c->count == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        tensor_desc_t *t = xmalloc((size_t)b->cap * sizeof *t);
        if (c->count) memcpy(t, c->t, (size_t)c->count * sizeof *t);
        free(c->t);
        c->t = t;
    }
    tensor_desc_t *t = &c->t[c->count++];
    memset(t, 0, sizeof *t);
    tensor_name(t->name, "%s%s", b->prefix, suffix);
    int64_t dims[3] = {d0, d1, d2};
    t->numel = 1;
    for (int i = 0; i < 3 && dims[i] > 0; i++) {
        t->shape[t->ndim++] = dims[i];
        t->numel *= dims[i];
    }
    t->init = init;
    t->fan_in = fan_in;
    t->tower = b->tower;
    c->total_numel += t->numel;
}

static void linear(builder_t *b, const char *name, int out, int in, int bias)
{
    char n[TENSOR_NAME_MAX];
    tensor_name(n, "%s.weight", name);
    add(b, n, INIT_LINEAR, in, out, in, 0);
    b->c->t[b->c->count - 1].matrix = 1;
    if (bias) {
        tensor_name(n, "%s.bias", name);
        add(b, n, INIT_BIAS, 0, out, 0, 0);
    }
}

/* BlockLinear: weight [nb, bs, bs] */
static void block_linear(builder_t *b, const char *name, int nb, int bs, int bias)
{
    char n[TENSOR_NAME_MAX];
    tensor_name(n, "%s.weight", name);
    add(b, n, INIT_LINEAR, bs, nb, bs, bs);
    b->c->t[b->c->count - 1].matrix = 1;
    if (bias) {
        tensor_name(n, "%s.bias", name);
        add(b, n, INIT_BIAS, 0, (int64_t)nb * bs, 0, 0);
    }
}

/* CausalConv: tensors at <name>.conv.weight [C,1,K] and <name>.conv.bias [C] */
static void conv(builder_t *b, const char *name, int channels, int k)
{
    char n[TENSOR_NAME_MAX];
    tensor_name(n, "%s.conv.weight", name);
    add(b, n, INIT_LINEAR, k, channels, 1, k);
    tensor_name(n, "%s.conv.bias", name);
    add(b, n, INIT_BIAS, 0, channels, 0, 0);
}

static void norm(builder_t *b, const char *name, int n_, init_kind_t init)
{
    add(b, name, init, 0, n_, 0, 0);
}

static void xlstm_layer(builder_t *b, const spec_t *s)
{
    const int H = s->hidden_size, NS = s->xlstm.slstm_num_heads, bs = s->d.slstm_block;
    const int E = s->d.mlstm_inner, NH = s->xlstm.mlstm_num_heads, K = s->xlstm.conv_kernel;
    const int qb = s->xlstm.qkv_block_size;
    static const char *gates[] = {"igate", "fgate", "zgate", "ogate"};
    char n[TENSOR_NAME_MAX];

    norm(b, "layer.slstm.norm.weight", H, INIT_NORM);
    conv(b, "layer.slstm.conv1d", H, K);
    for (int g = 0; g < 4; g++) {
        tensor_name(n, "layer.slstm.%s_input", gates[g]);
        block_linear(b, n, NS, bs, 0);
        tensor_name(n, "layer.slstm.%s_state", gates[g]);
        block_linear(b, n, NS, bs, 1);
    }
    norm(b, "layer.slstm.group_norm.weight", H, INIT_NORM);
    norm(b, "layer.slstm.group_norm.bias", H, INIT_BIAS);

    norm(b, "layer.mlstm.norm.weight", H, INIT_NORM);
    linear(b, "layer.mlstm.x_proj", E, H, 0);
    linear(b, "layer.mlstm.gate_proj", E, H, 0);
    conv(b, "layer.mlstm.conv1d", E, K);
    block_linear(b, "layer.mlstm.q_proj", E / qb, qb, 0);
    block_linear(b, "layer.mlstm.k_proj", E / qb, qb, 0);
    block_linear(b, "layer.mlstm.v_proj", E / qb, qb, 0);
    linear(b, "layer.mlstm.mlstm_cell.igate_proj", NH, 3 * E, 1);
    linear(b, "layer.mlstm.mlstm_cell.fgate_proj", NH, 3 * E, 1);
    norm(b, "layer.mlstm.mlstm_cell.outnorm.weight", E, INIT_NORM);
    norm(b, "layer.mlstm.mlstm_cell.outnorm.bias", E, INIT_BIAS);
    norm(b, "layer.mlstm.learnable_skip", E, INIT_ONES);
    linear(b, "layer.mlstm.proj_down", H, E, 0);
    norm(b, "layer.final_norm.weight", H, INIT_NORM);
}

static void mamba2_layer(builder_t *b, const spec_t *s)
{
    const int H = s->hidden_size, E = s->d.mamba_inner, NM = s->d.mamba_heads;
    const int S = s->mamba2.bc_head_size, K = s->mamba2.conv_kernel;

    linear(b, "layer.input_proj", E, H, 0);
    linear(b, "layer.z_proj", E, H, 0);
    linear(b, "layer.b_proj", S, H, 0);
    linear(b, "layer.c_proj", S, H, 0);
    linear(b, "layer.dt_proj", NM, H, 1);
    conv(b, "layer.input_conv", E, K);
    conv(b, "layer.b_conv", S, K);
    conv(b, "layer.c_conv", S, K);
    add(b, "layer.a", INIT_MAMBA_A, 0, NM, 0, 0);
    add(b, "layer.d", INIT_ONES, 0, NM, 0, 0);
    norm(b, "layer.norm.weight", E, INIT_NORM);
    linear(b, "layer.out_proj", H, E, 0);
}

static void retnet_layer(builder_t *b, const spec_t *s)
{
    const int H = s->hidden_size;
    linear(b, "layer.q_proj", H, H, 0);
    linear(b, "layer.k_proj", H, H, 0);
    linear(b, "layer.v_proj", H, H, 0);
    linear(b, "layer.g_proj", H, H, 0);
    linear(b, "layer.out_proj", H, H, 0);
    add(b, "layer.decay", INIT_RETNET_DECAY, 0, s->retnet.num_heads, 0, 0);
    add(b, "layer.angle", INIT_RETNET_ANGLE, 0, s->d.retnet_head, 0, 0);
}

static void hawk_layer(builder_t *b, const spec_t *s)
{
    const int H = s->hidden_size;
    linear(b, "layer.gate_proj", H, H, 0);
    linear(b, "layer.recurrent_proj", H, H, 0);
    conv(b, "layer.conv", H, s->hawk.conv_kernel);
    block_linear(b, "layer.rglru.input_gate", s->hawk.num_blocks, s->d.hawk_block, 0);
    block_linear(b, "layer.rglru.recurrence_gate", s->hawk.num_blocks, s->d.hawk_block, 0);
    add(b, "layer.rglru.a", INIT_RGLRU_A, 0, H, 0, 0);
    linear(b, "layer.out_proj", H, H, 0);
}

void catalogue_build(const spec_t *s, catalogue_t *c)
{
    typedef void (*layer_fn)(builder_t *, const spec_t *);
    static const layer_fn layers[NUM_TOWERS] = {xlstm_layer, mamba2_layer, retnet_layer,
                                                hawk_layer};
    const int H = s->hidden_size, P = s->proj_size, F = s->num_features;
    builder_t b = {.c = c};
    memset(c, 0, sizeof *c);

    for (int k = 0; k < NUM_TOWERS; k++) {
        b.tower = k;
        tensor_name(b.prefix, "towers.%d.", k);
        linear(&b, "input_up", P, F, 1);
        linear(&b, "input_down", H, P, 1);
        for (int l = 0; l < s->tower_depth; l++) {
            tensor_name(b.prefix, "towers.%d.blocks.%d.", k, l);
            norm(&b, "norm1.weight", H, INIT_NORM);
            layers[k](&b, s);
            norm(&b, "norm2.weight", H, INIT_NORM);
            linear(&b, "mlp.fc1", P, H, 1);
            linear(&b, "mlp.fc2", H, P, 1);
        }
    }
    b.tower = -1;
    b.prefix[0] = '\0';
    linear(&b, "output_proj", 1, H, 1);
}

void catalogue_free(catalogue_t *c)
{
    free(c->t);
    memset(c, 0, sizeof *c);
}

void tensor_name(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(dst, TENSOR_NAME_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= TENSOR_NAME_MAX) {
        fprintf(stderr, "tensor name longer than %d bytes: %s...\n", TENSOR_NAME_MAX - 1, dst);
        abort();
    }
}

int catalogue_find(const catalogue_t *c, const char *name)
{
    for (int i = 0; i < c->count; i++)
        if (strcmp(c->t[i].name, name) == 0) return i;
    return -1;
}

int64_t catalogue_bytes(const catalogue_t *c, precision_t weights)
{
    int64_t bytes = 0;
    for (int i = 0; i < c->count; i++)
        bytes += c->t[i].numel * (c->t[i].matrix ? precision_bytes(weights) : 4);
    return bytes;
}
