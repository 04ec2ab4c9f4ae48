/* Emission of a spec's fused kernel source (see emit.h). The templates are concatenated in
 * a fixed order; a line "// @@name@@" in a template is replaced by generated code. */
#include "emit.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "model.h"
#include "stage_table.h"
#include "templates.h"
#include "util.h"

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf_t;

__attribute__((format(printf, 2, 3))) static void put(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (b->len + (size_t)n + 1 > cap) cap *= 2;
        char *nb = xmalloc(cap);
        if (b->len) memcpy(nb, b->buf, b->len);
        free(b->buf);
        b->buf = nb;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

typedef struct {
    const spec_t *s;
    const catalogue_t *cat;
    const layout_t *lay;
} ctx_t;

static const char *const tower_struct[NUM_TOWERS] = {"L_xlstm", "L_mamba2", "L_retnet", "L_hawk"};

void emit_kernel_name(const spec_t *s, char *out, size_t size)
{
    snprintf(out, size, "stepfuse_%s", s->name);
    for (char *c = out; *c; c++)
        if (!isalnum((unsigned char)*c)) *c = '_';
}

static int max_i(int a, int b) { return a > b ? a : b; }

/* Running sums of a warp: room for at least one row group of every entry (tiles of 4
 * entries x 32 sums), and 1024 floats so that a pass holds several row groups. proj_rows_mma
 * takes a float4 per lane per tile of 8 entries for each of a warp's slices: two slices up to
 * PAIRED_TILES8 tiles, so that the shared memory of a batch of 64 stays within the 196 KB
 * configuration, which leaves the L1 60 KB (a 228 KB one, L1 28 KB, made the step 8-13%
 * slower: notes/gpu.md, runs 186-187). */
#define PAIRED_TILES8 7
int emit_sums_warp(const spec_t *s)
{
    const int tiles4 = (s->batch.max_batch + 3) / 4, tiles8 = (s->batch.max_batch + 7) / 8;
    const int paired = tiles8 < PAIRED_TILES8 ? tiles8 : PAIRED_TILES8;
    /* a state task's logged updates to replay (StateStream::stage_log): f, v, a */
    const int log = 8 + (s->state.writeback - 1) * (128 + KERNEL_STATE_ROWS);
    return max_i(max_i(max_i(1024, tiles4 * 32), max_i(tiles8 * 128, 2 * paired * 128)), log);
}

int emit_dynamic_smem_floats(const spec_t *s)
{
    return STAGE_FLOATS + KERNEL_THREADS / 32 * emit_sums_warp(s);
}

/* Loads of 4 weights per lane in a projection's chunk: a 16-bit (bf16, fp16) load is 8 bytes,
 * so a lane holds twice as many in the same registers. */
static int chunk_f4(const spec_t *s)
{
    return KERNEL_CHUNK_F4 * 4 / precision_bytes(s->precision.weights);
}

/* One chunk of columns of every entry: proj_rows_mma's 4 x CHUNK_F4 columns and the pad,
 * or proj_pass's 128 columns at the least. */
int emit_staged_window_floats(const spec_t *s)
{
    const int pad = precision_bytes(s->precision.weights) == 2 ? STAGE_PAD_WIDE : STAGE_PAD;
    const int columns = KERNEL_TENSOR_CORES ? 4 * chunk_f4(s) + pad : 128;
    return s->batch.max_batch * columns;
}

static void emit_constants(sbuf_t *b, const ctx_t *c)
{
    const spec_t *s = c->s;
    char kname[SPEC_NAME_MAX + 16];
    emit_kernel_name(s, kname, sizeof kname);
    put(b, "#define KERNEL_NAME %s\n\n", kname);
    put(b, "// model sizes\n");
    put(b, "constexpr int H = %d, P = %d, NBLOCKS = %d, F = %d, F4 = %d;\n", s->hidden_size,
        s->proj_size, s->tower_depth, s->num_features, (s->num_features + 3) & ~3);
    put(b, "constexpr int XL_NS = %d, XL_BS = %d, XL_E = %d, XL_NH = %d, XL_DM = %d, XL_QB = %d, XL_K = %d;\n",
        s->xlstm.slstm_num_heads, s->d.slstm_block, s->d.mlstm_inner, s->xlstm.mlstm_num_heads,
        s->d.mlstm_head, s->xlstm.qkv_block_size, s->xlstm.conv_kernel);
    put(b, "constexpr int MB_E = %d, MB_NM = %d, MB_HD = %d, MB_S = %d, MB_K = %d;\n", s->d.mamba_inner,
        s->d.mamba_heads, s->mamba2.head_size, s->mamba2.bc_head_size, s->mamba2.conv_kernel);
    put(b, "constexpr int RN_NH = %d, RN_D = %d;\n", s->retnet.num_heads, s->d.retnet_head);
    put(b, "constexpr float RN_KSCALE = %.9ef; // D^-0.5\n", (double)(float)pow(s->d.retnet_head, -0.5));
    put(b, "constexpr int HK_NB = %d, HK_BS = %d, HK_K = %d;\n", s->hawk.num_blocks, s->d.hawk_block,
        s->hawk.conv_kernel);
    put(b, "constexpr float HK_C = %.9ef;\n", (double)(float)s->hawk.c);
    put(b, "constexpr float EPS_BLOCK = %.9ef; // machine epsilon of fp32 (block norms)\n",
        (double)FLT_EPSILON);
    put(b, "\n// launch shape and buffers\n");
    put(b, "constexpr int MAX_BATCH = %d, THREADS = %d, WARPS = THREADS / 32, NUM_TOWERS = %d;\n",
        s->batch.max_batch, KERNEL_THREADS, NUM_TOWERS);
    static const char *const mat_raw[] = {[PRECISION_FP32] = "float4", [PRECISION_BF16] = "uint2",
                                          [PRECISION_FP16] = "Half4"};
    put(b, "constexpr int WEIGHT_ROWS = %d, CHUNK_F4 = %d; // projections: rows per warp, loads of 4 per lane\n",
        KERNEL_WEIGHT_ROWS, chunk_f4(s));
    put(b, "using MatRaw = %s; // 4 consecutive weights of a matrix row, as stored (%s)\n",
        mat_raw[s->precision.weights], precision_name(s->precision.weights));
    put(b, "using StateElem = %s; // an element of a state matrix, as stored (%s)\n",
        s->precision.state == PRECISION_BF16 ? "unsigned short" : "float", precision_name(s->precision.state));
    put(b, "constexpr bool SPLIT_BY_COST = %s; // stages split by cost, not unit count\n",
        KERNEL_SPLIT_BY_COST ? "true" : "false");
    put(b, "constexpr int STAGE_FLOATS = %d, SUMS_WARP = %d; // dynamic shared memory: staged inputs, sums\n",
        STAGE_FLOATS, emit_sums_warp(s));
    put(b, "constexpr int STAGE_PAD = %d, STAGE_PAD_WIDE = %d; // floats between entries' staged rows (tensor cores)\n",
        STAGE_PAD, STAGE_PAD_WIDE);
    put(b, "constexpr bool WEIGHTS_NO_L1 = %s; // weight loads not allocated in L1\n",
        KERNEL_WEIGHTS_NO_L1 ? "true" : "false");
    char l2_fetch[16] = ""; /* empty: the L2's default */
    if (KERNEL_WEIGHTS_L2_PREFETCH) snprintf(l2_fetch, sizeof l2_fetch, ".L2::%dB", KERNEL_WEIGHTS_L2_PREFETCH);
    put(b, "#define WEIGHT_L2_PREFETCH \"%s\" // L2 fetch size around a weight load\n", l2_fetch);
    put(b, "constexpr bool TENSOR_CORES = %s; // projections on tensor cores (3xTF32)\n",
        KERNEL_TENSOR_CORES ? "true" : "false");
    put(b, "#define PROJ_PASS %s // a projection pass: one function per shape, or inlined\n",
        KERNEL_PROJ_INLINE ? "__forceinline__" : "__noinline__");
    put(b, "constexpr int STATE_ROWS = %d;  // rows of a state matrix per warp task\n", KERNEL_STATE_ROWS);
    put(b, "constexpr int GATE_COLS = %d;  // mLSTM gate projection columns per warp task\n", KERNEL_GATE_COLS);
    put(b, "constexpr int STATE_WRITEBACK = %d; // the mLSTM C and RetNet R stored every this many steps (state.writeback)\n",
        s->state.writeback);
    put(b, "constexpr long XL_LOG_ENTRY = %lld, RN_LOG_ENTRY = %lld; // floats of a logged update (layout_log_entry)\n",
        (long long)layout_log_entry(s->xlstm.mlstm_num_heads, s->d.mlstm_head),
        (long long)layout_log_entry(s->retnet.num_heads, s->d.retnet_head));
    put(b, "constexpr long WEIGHT_BYTES = %lld, SLOT_FLOATS = %lld, SCRATCH_FLOATS = %lld;\n",
        (long long)c->lay->weight_bytes, (long long)c->lay->slot_floats,
        (long long)c->lay->scratch_floats);
}

/* "towers.1.blocks.0.layer.a" -> "layer_a" after the prefix */
static void mangle(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s", name);
    for (char *p = out; *p; p++)
        if (*p == '.') *p = '_';
}

static void emit_layout(sbuf_t *b, const ctx_t *c)
{
    const catalogue_t *cat = c->cat;
    const layout_t *lay = c->lay;
    char m[TENSOR_NAME_MAX];
    put(b, "// Weight offsets (bytes; rows padded to 4 elements), per tower: tower-level tensors,\n"
           "// then block tensors b_* relative to blocks.0 (block l adds l * block_stride);\n"
           "// state of a slot: st_* within a block; activations: sc_* regions [MAX_BATCH][stride].\n");
    put(b, "constexpr long W_output_proj_weight = %lld, W_output_proj_bias = %lld;\n",
        (long long)lay->weight_offset[catalogue_find(cat, "output_proj.weight")],
        (long long)lay->weight_offset[catalogue_find(cat, "output_proj.bias")]);
    for (int k = 0; k < NUM_TOWERS; k++) {
        char tprefix[32], bprefix[48];
        snprintf(tprefix, sizeof tprefix, "towers.%d.", k);
        snprintf(bprefix, sizeof bprefix, "towers.%d.blocks.0.", k);
        put(b, "\nstruct %s {\n", tower_struct[k]);
        for (int t = 0; t < cat->count; t++) {
            const char *name = cat->t[t].name;
            if (strncmp(name, tprefix, strlen(tprefix))) continue;
            const char *rest = name + strlen(tprefix);
            if (!strncmp(rest, "blocks.", 7)) {
                if (strncmp(name, bprefix, strlen(bprefix))) continue;
                mangle(name + strlen(bprefix), m, sizeof m);
                put(b, "    static constexpr long b_%s = %lld;\n", m,
                    (long long)(lay->weight_offset[t] - lay->tower_block0[k]));
            } else {
                mangle(rest, m, sizeof m);
                put(b, "    static constexpr long %s = %lld;\n", m, (long long)lay->weight_offset[t]);
            }
        }
        put(b, "    static constexpr long blocks = %lld, block_stride = %lld;\n",
            (long long)lay->tower_block0[k], (long long)lay->tower_block_stride[k]);
        put(b, "    static constexpr long st_base = %lld, st_block = %lld;\n",
            (long long)lay->state_base[k], (long long)lay->state_block[k]);
        for (int r = 0; r < lay->state_count[k]; r++)
            put(b, "    static constexpr long st_%s = %lld;\n", lay->state[k][r].name,
                (long long)lay->state[k][r].offset);
        for (int r = 0; r < lay->scratch_count[k]; r++)
            put(b, "    static constexpr Buf sc_%s = {%lld, %lld};\n", lay->scratch[k][r].name,
                (long long)lay->scratch[k][r].offset, (long long)lay->scratch[k][r].floats);
        put(b, "};\n");
    }
}

/* The stage table (stage_table.c) as STAGES[NUM_STAGES][4] = {phase, block}. */
static void emit_stage_table(sbuf_t *b, const ctx_t *c)
{
    static const char *const shared[] = {"PH_IN_UP", "PH_IN_DOWN", "PH_MLP_UP", "PH_MLP_DOWN", "PH_OUT"};
    const int stages = stage_count(c->s);
    stage_entry_t *table = stage_table(c->s);
    put(b, "constexpr int XLSTM_PHASES = %d, MAMBA2_PHASES = %d, RETNET_PHASES = %d, HAWK_PHASES = %d;\n",
        tower_layer_phases[0], tower_layer_phases[1], tower_layer_phases[2], tower_layer_phases[3]);
    put(b, "constexpr int NUM_STAGES = %d; // a tower barrier after each but the last\n", stages);
    put(b, "__constant__ StageEntry STAGES[NUM_STAGES][4] = {\n");
    for (int st = 0; st < stages; st++) {
        put(b, "    {");
        for (int k = 0; k < NUM_TOWERS; k++) {
            const stage_entry_t e = table[st * NUM_TOWERS + k];
            const char *sep = k + 1 < NUM_TOWERS ? ", " : "";
            if (e.phase >= PHASE_IN_UP) put(b, "{%s, %d}%s", shared[e.phase - PHASE_IN_UP], e.block, sep);
            else put(b, "{%d, %d}%s", e.phase, e.block, sep);
        }
        put(b, "},\n");
    }
    put(b, "};\n");
    free(table);
}

typedef struct {
    const char *name;
    void (*emit)(sbuf_t *, const ctx_t *);
    int used;
} marker_t;

/* Order of the templates in the generated file. */
static const char *const template_order[] = {"common.cu", "xlstm.cu", "mamba2.cu", "retnet.cu",
                                             "hawk.cu", "kernel.cu"};

static void emit_header(sbuf_t *b, const spec_t *s, const char *spec_path)
{
    const char *base = strrchr(spec_path, '/');
    base = base ? base + 1 : spec_path;
    put(b, "// Generated by stepfuse gen from %s: do not edit (templates/*.cu are the source).\n", base);
    put(b, "// Spec %s: H=%d P=%d L=%d heads=%d F=%d, weights %s, state %s, max_batch %d.\n",
        s->name, s->hidden_size, s->proj_size, s->tower_depth, s->num_heads, s->num_features,
        precision_name(s->precision.weights), precision_name(s->precision.state),
        s->batch.max_batch);
    put(b, "// One persistent cooperative kernel per ensemble step; see templates/kernel.cu.\n\n");
}

int emit_kernel(const spec_t *s, const char *spec_path, char **src, size_t *len, char *err)
{
    if (emit_staged_window_floats(s) > STAGE_WINDOW_FLOATS)
        return seterr(err, "%s: max_batch %d is too large for the fused kernel: one chunk of columns of "
                           "every entry's projection input (%d floats) exceeds the %d floats of a window of "
                           "the shared memory it stages them in",
                      spec_path, s->batch.max_batch, emit_staged_window_floats(s), STAGE_WINDOW_FLOATS);
    catalogue_t cat;
    layout_t lay;
    catalogue_build(s, &cat);
    if (layout_build(s, &cat, &lay, err)) {
        catalogue_free(&cat);
        return -1;
    }
    ctx_t c = {s, &cat, &lay};
    marker_t markers[] = {{"constants", emit_constants, 0},
                          {"layout", emit_layout, 0},
                          {"stage_table", emit_stage_table, 0}};
    sbuf_t b = {0};
    int rc = 0;
    emit_header(&b, s, spec_path);
    for (size_t t = 0; t < ARRAY_LEN(template_order) && !rc; t++) {
        const char *text = template_text(template_order[t]);
        if (!text) {
            rc = seterr(err, "template %s is not embedded in this build", template_order[t]);
            break;
        }
        for (const char *line = text; *line && !rc;) {
            const char *eol = strchr(line, '\n');
            size_t n = eol ? (size_t)(eol - line + 1) : strlen(line);
            const char *p = line;
            while (*p == ' ') p++;
            if (!strncmp(p, "// @@", 5)) {
                const char *name = p + 5, *end = strstr(name, "@@");
                size_t i = 0;
                for (; end && i < ARRAY_LEN(markers); i++)
                    if ((size_t)(end - name) == strlen(markers[i].name) &&
                        !strncmp(name, markers[i].name, (size_t)(end - name)))
                        break;
                if (!end || i == ARRAY_LEN(markers) || markers[i].used)
                    rc = seterr(err, "templates/%s: unknown or repeated marker: %.*s", template_order[t],
                                (int)(n - (eol ? 1 : 0)), line);
                else {
                    markers[i].emit(&b, &c);
                    markers[i].used = 1;
                }
            } else {
                put(&b, "%.*s", (int)n, line);
            }
            line += n;
        }
        put(&b, "\n");
    }
    for (size_t i = 0; i < ARRAY_LEN(markers) && !rc; i++)
        if (!markers[i].used) rc = seterr(err, "templates: marker @@%s@@ is missing", markers[i].name);
    layout_free(&lay);
    catalogue_free(&cat);
    if (rc) {
        free(b.buf);
        return -1;
    }
    *src = b.buf;
    *len = b.len;
    return 0;
}
