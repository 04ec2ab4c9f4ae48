/* Device memory layout of a spec (see layout.h). The region names here are the names the
 * templates use (st_<name>, sc_<name>); keep both in step. */
#include "layout.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static int64_t round4(int64_t n) { return (n + 3) & ~(int64_t)3; }

int64_t layout_log_entry(int heads, int dim) { return round4(2 * (int64_t)heads * dim + heads); }

static void region(region_t *list, int *count, int64_t *cursor, const char *name,
                   int64_t floats, float init)
{
    region_t *r = &list[(*count)++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->offset = *cursor;
    r->floats = round4(floats);
    r->init = init;
    *cursor += r->floats;
}

/* Per-block state of each tower (../shared/MODEL.md, "State:" lines). */
static void state_regions(const spec_t *s, layout_t *l)
{
    const int H = s->hidden_size;
    /* the state matrices' elements per float: 2 in bf16 (every matrix has an even count) */
    const int64_t per_float = s->precision.state == PRECISION_BF16 ? 2 : 1;
    int64_t cur;
#define ST(k, name, n, init) region(l->state[k], &l->state_count[k], &cur, name, n, init)
    cur = 0;
    {
        const int K = s->xlstm.conv_kernel, E = s->d.mlstm_inner;
        const int NH = s->xlstm.mlstm_num_heads, DM = s->d.mlstm_head;
        ST(TOWER_XLSTM, "s_conv", (int64_t)H * (K - 1), 0.0f);
        ST(TOWER_XLSTM, "s_h", H, 0.0f);
        ST(TOWER_XLSTM, "s_c", H, 0.0f);
        ST(TOWER_XLSTM, "s_n", H, 0.0f);
        ST(TOWER_XLSTM, "s_m", H, -INFINITY); /* the first forget gate is exactly 0 */
        ST(TOWER_XLSTM, "m_conv", (int64_t)E * (K - 1), 0.0f);
        ST(TOWER_XLSTM, "m_C", (int64_t)NH * DM * DM / per_float, 0.0f);
        ST(TOWER_XLSTM, "m_nv", (int64_t)NH * DM, 0.0f);
        ST(TOWER_XLSTM, "m_m", NH, 0.0f);
        /* int32 bits: steps logged since C was stored (empty without a write-back period) */
        ST(TOWER_XLSTM, "m_logged", s->state.writeback > 1, 0.0f);
        ST(TOWER_XLSTM, "m_log", (s->state.writeback - 1) * layout_log_entry(NH, DM), 0.0f);
        l->state_block[TOWER_XLSTM] = cur;
    }
    cur = 0;
    {
        const int K = s->mamba2.conv_kernel, E = s->d.mamba_inner, S = s->mamba2.bc_head_size;
        ST(TOWER_MAMBA2, "x_conv", (int64_t)E * (K - 1), 0.0f);
        ST(TOWER_MAMBA2, "b_conv", (int64_t)S * (K - 1), 0.0f);
        ST(TOWER_MAMBA2, "c_conv", (int64_t)S * (K - 1), 0.0f);
        ST(TOWER_MAMBA2, "ssm", (int64_t)E * S / per_float, 0.0f); /* [NM, head_size, S] */
        l->state_block[TOWER_MAMBA2] = cur;
    }
    cur = 0;
    {
        const int NH = s->retnet.num_heads, D = s->d.retnet_head;
        ST(TOWER_RETNET, "pos", 1, 0.0f); /* int32 bits; 0.0f is int 0 */
        ST(TOWER_RETNET, "scale", NH, 0.0f);
        ST(TOWER_RETNET, "R", (int64_t)NH * D * D, 0.0f); /* fp32 in every mode */
        ST(TOWER_RETNET, "R_logged", s->state.writeback > 1, 0.0f);
        ST(TOWER_RETNET, "R_log", (s->state.writeback - 1) * layout_log_entry(NH, D), 0.0f);
        l->state_block[TOWER_RETNET] = cur;
    }
    cur = 0;
    {
        ST(TOWER_HAWK, "conv", (int64_t)H * (s->hawk.conv_kernel - 1), 0.0f);
        ST(TOWER_HAWK, "h", H, 0.0f);
        l->state_block[TOWER_HAWK] = cur;
    }
#undef ST
    int64_t base = 0;
    for (int k = 0; k < NUM_TOWERS; k++) {
        l->state_base[k] = base;
        base += l->state_block[k] * s->tower_depth;
    }
    l->slot_floats = base;
}

static int64_t row_chunks(int rows) { return (rows + KERNEL_STATE_ROWS - 1) / KERNEL_STATE_ROWS; }

/* Activations of each tower: [max_batch][floats] each. */
static void scratch_regions(const spec_t *s, layout_t *l)
{
    const int64_t B = s->batch.max_batch, H = s->hidden_size, P = s->proj_size;
    int64_t cur = 0, rows;
#define SC(k, name, n) \
    (rows = round4(n), region(l->scratch[k], &l->scratch_count[k], &cur, name, rows, 0.0f), \
     cur += rows * (B - 1))
    for (int k = 0; k < NUM_TOWERS; k++) {
        SC(k, "u", H);  /* the residual stream */
        SC(k, "ap", P); /* input_up and MLP hidden layer */
    }
    {
        const int64_t E = s->d.mlstm_inner, NH = s->xlstm.mlstm_num_heads;
        static const char *h_sized[] = {"xt", "sh", "so", "xn2", "ym"};
        for (size_t i = 0; i < ARRAY_LEN(h_sized); i++) SC(TOWER_XLSTM, h_sized[i], H);
        SC(TOWER_XLSTM, "xch", 2 * H); /* the sLSTM gates' inputs by head: [xc | hprev], [xn | hprev] */
        SC(TOWER_XLSTM, "xnh", 2 * H);
        static const char *e_sized[] = {"xm", "xc2", "xg", "sh2", "mo"};
        for (size_t i = 0; i < ARRAY_LEN(e_sized); i++) SC(TOWER_XLSTM, e_sized[i], E);
        SC(TOWER_XLSTM, "sg", 2 * H); /* sLSTM gate sums i, f */
        SC(TOWER_XLSTM, "sh2_part", E * row_chunks(s->d.mlstm_head)); /* partial sums of sh2 */
        SC(TOWER_XLSTM, "sh2_count", NH); /* tasks done per head (unsigned), back to 0 after */
        SC(TOWER_XLSTM, "qkv", 3 * E);
        SC(TOWER_XLSTM, "ipf_part", 2 * NH * ((3 * E + KERNEL_GATE_COLS - 1) / KERNEL_GATE_COLS));
    }
    {
        const int64_t E = s->d.mamba_inner, S = s->mamba2.bc_head_size;
        SC(TOWER_MAMBA2, "xs", E);
        SC(TOWER_MAMBA2, "z", E);
        SC(TOWER_MAMBA2, "bv", S);
        SC(TOWER_MAMBA2, "cv", S);
        SC(TOWER_MAMBA2, "dt", s->d.mamba_heads);
        SC(TOWER_MAMBA2, "yz", E);
    }
    {
        static const char *names[] = {"q", "k", "v", "g", "o", "og"};
        for (size_t i = 0; i < ARRAY_LEN(names); i++) SC(TOWER_RETNET, names[i], H);
        SC(TOWER_RETNET, "o_part", H * row_chunks(s->d.retnet_head)); /* partial sums of o */
        SC(TOWER_RETNET, "o_count", s->retnet.num_heads); /* tasks done per head (unsigned) */
    }
    {
        static const char *names[] = {"gate", "xc", "y"};
        for (size_t i = 0; i < ARRAY_LEN(names); i++) SC(TOWER_HAWK, names[i], H);
    }
#undef SC
    l->scratch_floats = cur;
}

/* The float4 loads assume these sizes are multiples of 4 (F alone is padded). */
static int check_sizes(const spec_t *s, char *err)
{
    const struct { const char *what; int n; } sizes[] = {
        {"hidden_size", s->hidden_size},
        {"proj_size", s->proj_size},
        {"xlstm inner size", s->d.mlstm_inner},
        {"xlstm sLSTM block size (hidden_size / slstm_num_heads)", s->d.slstm_block},
        {"xlstm mLSTM head size", s->d.mlstm_head},
        {"xlstm.qkv_block_size", s->xlstm.qkv_block_size},
        {"mamba2 inner size", s->d.mamba_inner},
        {"mamba2.bc_head_size", s->mamba2.bc_head_size},
        {"retnet head size", s->d.retnet_head},
        {"hawk block size", s->d.hawk_block},
    };
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
        if (sizes[i].n <= 0 || sizes[i].n % 4)
            return seterr(err, "%s: %s = %d must be a positive multiple of 4 for the fused kernel",
                          s->name, sizes[i].what, sizes[i].n);
    return 0;
}

/* The catalogue index of the matrix that shares its rows with matrix i, which precedes it,
 * or -1. A sLSTM gate's state matrix shares the rows of its input matrix: row o of the
 * pair is the input matrix's row o, then the state matrix's, so that the gate is one
 * projection of rows 2 bs long over [x | h] (a sLSTM head's input, then its hidden state). */
static int row_partner(const catalogue_t *c, int i)
{
    static const char suffix[] = "gate_state.weight";
    const char *name = c->t[i].name;
    const size_t n = strlen(name), k = strlen(suffix);
    if (i == 0 || n < k || strcmp(name + n - k, suffix) || !strstr(name, ".layer.slstm.")) return -1;
    char input[TENSOR_NAME_MAX];
    snprintf(input, sizeof input, "%.*sgate_input.weight", (int)(n - k), name);
    return strcmp(c->t[i - 1].name, input) ? -1 : i - 1;
}

/* Weights in catalogue order, every tensor as rows padded to 4 elements and starting on 16
 * bytes, except the sLSTM gates' state matrices, whose rows are in the rows of their input
 * matrices (row_partner); matrices in the spec's weight precision, every other tensor fp32.
 * Then check that each tower's blocks are laid out at a constant stride, which the kernel
 * relies on. */
static int weight_layout(const spec_t *s, const catalogue_t *c, layout_t *l, char *err)
{
    l->weight_offset = xcalloc((size_t)c->count, sizeof(int64_t));
    l->weight_rows = xcalloc((size_t)c->count, sizeof(int64_t));
    l->weight_row = xcalloc((size_t)c->count, sizeof(int64_t));
    l->weight_ld = xcalloc((size_t)c->count, sizeof(int64_t));
    l->weight_elem = xcalloc((size_t)c->count, sizeof(int));
    int64_t cur = 0;
    for (int i = 0; i < c->count; i++) {
        const tensor_desc_t *t = &c->t[i];
        l->weight_elem[i] = t->matrix ? precision_bytes(s->precision.weights) : 4;
        l->weight_row[i] = t->shape[t->ndim - 1];
        l->weight_rows[i] = t->numel / l->weight_row[i];
        l->weight_ld[i] = round4(l->weight_row[i]);
        const int first = row_partner(c, i);
        if (first >= 0) { /* in its partner's rows, a row in; the pair starts where the partner does */
            l->weight_offset[i] = l->weight_offset[first] + l->weight_ld[first] * l->weight_elem[i];
            l->weight_ld[first] = l->weight_ld[i] = l->weight_ld[first] + l->weight_ld[i];
            cur = l->weight_offset[first];
        } else {
            l->weight_offset[i] = cur;
        }
        cur = (cur + l->weight_rows[i] * l->weight_ld[i] * l->weight_elem[i] + 15) & ~(int64_t)15;
    }
    l->weight_bytes = cur;

    for (int k = 0; k < NUM_TOWERS; k++) {
        char name[TENSOR_NAME_MAX];
        snprintf(name, sizeof name, "towers.%d.blocks.0.norm1.weight", k);
        int first0 = catalogue_find(c, name);
        snprintf(name, sizeof name, "towers.%d.blocks.1.norm1.weight", k);
        int first1 = catalogue_find(c, name);
        if (first0 < 0) return seterr(err, "%s: catalogue has no towers.%d.blocks.0", s->name, k);
        l->tower_block0[k] = l->weight_offset[first0];
        l->tower_block_stride[k] = first1 < 0 ? 0 : l->weight_offset[first1] - l->weight_offset[first0];
        const int per_block = first1 < 0 ? 0 : first1 - first0;
        for (int b = 1; b < s->tower_depth; b++)
            for (int j = 0; j < per_block; j++) {
                int i = first0 + b * per_block + j;
                if (i >= c->count ||
                    l->weight_offset[i] - l->weight_offset[first0 + j] != b * l->tower_block_stride[k])
                    return seterr(err, "%s: tower %d block %d is not laid out like block 0", s->name,
                                  k, b);
            }
    }
    return 0;
}

int layout_build(const spec_t *s, const catalogue_t *c, layout_t *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (check_sizes(s, err)) return -1;
    if (weight_layout(s, c, out, err)) {
        layout_free(out);
        return -1;
    }
    state_regions(s, out);
    scratch_regions(s, out);
    return 0;
}

void layout_free(layout_t *l)
{
    free(l->weight_offset);
    free(l->weight_rows);
    free(l->weight_row);
    free(l->weight_ld);
    free(l->weight_elem);
    memset(l, 0, sizeof *l);
}

void layout_initial_state(const spec_t *s, const layout_t *l, float *slot)
{
    for (int k = 0; k < NUM_TOWERS; k++)
        for (int b = 0; b < s->tower_depth; b++)
            for (int r = 0; r < l->state_count[k]; r++) {
                const region_t *g = &l->state[k][r];
                float *p = slot + l->state_base[k] + b * l->state_block[k] + g->offset;
                for (int64_t i = 0; i < g->floats; i++) p[i] = g->init;
            }
}

const region_t *layout_state_region(const layout_t *l, int k, const char *name)
{
    for (int r = 0; r < l->state_count[k]; r++)
        if (!strcmp(l->state[k][r].name, name)) return &l->state[k][r];
    return NULL;
}

/* The matrices a write-back period logs: tower, regions, heads and head size, bf16 or not. */
typedef struct {
    int tower;
    const char *matrix, *logged, *log;
    int heads, dim, bf16;
} logged_matrix_t;

enum { LOGGED_MATRICES = 2 };
static void logged_matrices(const spec_t *s, logged_matrix_t m[LOGGED_MATRICES])
{
    m[0] = (logged_matrix_t){TOWER_XLSTM, "m_C", "m_logged", "m_log", s->xlstm.mlstm_num_heads, s->d.mlstm_head,
                             s->precision.state == PRECISION_BF16};
    m[1] = (logged_matrix_t){TOWER_RETNET, "R", "R_logged", "R_log", s->retnet.num_heads, s->d.retnet_head, 0};
}

int64_t layout_model_state_floats(const spec_t *s, const layout_t *l)
{
    logged_matrix_t m[LOGGED_MATRICES];
    logged_matrices(s, m);
    int64_t n = l->slot_floats;
    for (int i = 0; i < LOGGED_MATRICES; i++)
        n -= (layout_state_region(l, m[i].tower, m[i].logged)->floats +
              layout_state_region(l, m[i].tower, m[i].log)->floats) * s->tower_depth;
    return n;
}

/* Element e of a state matrix stored in `bf16` pairs (low half first) or as floats. */
static float matrix_get(const float *m, int64_t e, int bf16)
{
    if (!bf16) return m[e];
    uint16_t h;
    memcpy(&h, (const char *)m + 2 * e, sizeof h);
    return bf16_float(h);
}

static void matrix_set(float *m, int64_t e, float x, int bf16)
{
    if (!bf16) {
        m[e] = x;
        return;
    }
    const uint16_t h = bf16_bits(x);
    memcpy((char *)m + 2 * e, &h, sizeof h);
}

/* One tower's logged matrices: `heads` [dim][dim] a block in region `matrix`. */
static void flush_matrices(const spec_t *s, const layout_t *l, const logged_matrix_t *m, float *slot)
{
    const int k = m->tower, heads = m->heads, dim = m->dim, bf16 = m->bf16;
    const region_t *mr = layout_state_region(l, k, m->matrix), *cr = layout_state_region(l, k, m->logged);
    const region_t *lr = layout_state_region(l, k, m->log);
    const int64_t entry = layout_log_entry(heads, dim);
    for (int b = 0; b < s->tower_depth; b++) {
        float *block = slot + l->state_base[k] + b * l->state_block[k];
        int32_t count;
        memcpy(&count, block + cr->offset, sizeof count);
        for (int p = 0; p < count; p++) {
            const float *a = block + lr->offset + p * entry, *v = a + (int64_t)heads * dim, *f = v + (int64_t)heads * dim;
            for (int n = 0; n < heads; n++)
                for (int i = 0; i < dim; i++)
                    for (int j = 0; j < dim; j++) {
                        const int64_t e = ((int64_t)n * dim + i) * dim + j;
                        const float av = a[n * dim + i] * v[n * dim + j]; /* the kernel's order */
                        matrix_set(block + mr->offset, e, fmaf(f[n], matrix_get(block + mr->offset, e, bf16), av),
                                   bf16);
                    }
        }
        memset(block + cr->offset, 0, sizeof count);
    }
}

void layout_flush_state(const spec_t *s, const layout_t *l, float *slot)
{
    if (s->state.writeback <= 1) return;
    logged_matrix_t m[LOGGED_MATRICES];
    logged_matrices(s, m);
    for (int i = 0; i < LOGGED_MATRICES; i++) flush_matrices(s, l, &m[i], slot);
}
