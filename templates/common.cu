// ---- common.cu: the pieces every tower shares --------------------------------------------
// Grid barrier, reductions, activations, causal conv, norm statistics and the one batched
// projection mechanism (weight rows streamed once, applied to every symbol of the batch).
// Sizes, the memory layout and the stage table are generated constants (marked @@...@@).

// @@constants@@

// Scratch region of the batch: entry b's vector starts at off + b * stride (floats).
struct Buf {
    long off;
    int stride;
};

// @@layout@@

struct Params {
    const float *__restrict__ w; // weights, WEIGHT_FLOATS, generated layout
    float *state;                // [max_symbols][SLOT_FLOATS]
    float *scr;                  // activations, SCRATCH_FLOATS
    const int *slots;            // [nb] state slot of each batch entry (distinct)
    const float *feats;          // [nb][F4], zero padded
    float *out;                  // [nb][4] in tower order
    unsigned *bar;               // grid barrier {arrived, generation}, zero at first launch
    int nb;                      // batch size, 1..MAX_BATCH
};

// Per-CTA shared memory, one copy for the whole kernel (a __shared__ array inside a
// template would be one copy per instantiation).
__shared__ float norm_stats_smem[BT * MAX_GROUPS * 2];        // [entry][group][mean, 1/std]
__shared__ float warp_vecs[WARPS][2][STATE_ROWS];              // per warp: two row vectors
extern __shared__ float4 stage_smem4[];                         // STAGE_FLOATS: staged inputs
#define stage_smem ((float *)stage_smem4)

// Row stride of a tensor whose rows hold n floats (rows are padded to 16 bytes).
__host__ __device__ constexpr int ld4(int n) { return (n + 3) & ~3; }

// ---- addressing ---------------------------------------------------------------------------
__device__ __forceinline__ float *sc(const Params &p, Buf buf, int b)
{
    return p.scr + buf.off + (long)b * buf.stride;
}
// Weight offset of a tensor of block l of tower layout Lk (name: offset within block 0).
template <class Lk> __device__ __forceinline__ long wb(int l, long name)
{
    return Lk::blocks + (long)l * Lk::block_stride + name;
}
// State of block l of tower Lk for batch entry b (name: offset within the block).
template <class Lk> __device__ __forceinline__ float *st(const Params &p, int b, int l, long name)
{
    return p.state + (long)p.slots[b] * SLOT_FLOATS + Lk::st_base + (long)l * Lk::st_block + name;
}

// Activations written earlier in this launch are read around L1 (.cg): other SMs wrote them.
__device__ __forceinline__ float4 ld_act4(const float *q) { return __ldcg((const float4 *)q); }
__device__ __forceinline__ float ld_act(const float *q) { return __ldcg(q); }
__device__ __forceinline__ float4 ld_w4(const float *q) { return __ldg((const float4 *)q); }

// ---- grid barrier -------------------------------------------------------------------------
// Sense by generation: the last CTA to arrive resets the count and bumps the generation.
// Needs every CTA resident (cooperative launch).
__device__ __forceinline__ void grid_barrier(unsigned *bar)
{
    __syncthreads();
    if (threadIdx.x == 0) {
        volatile unsigned *gen = bar + 1;
        const unsigned g = *gen;
        __threadfence();
        if (atomicAdd(bar, 1u) == gridDim.x - 1) {
            atomicExch(bar, 0u);
            __threadfence();
            atomicAdd(bar + 1, 1u);
        } else {
            while (*gen == g) __nanosleep(20);
        }
        __threadfence();
    }
    __syncthreads();
}

// ---- reductions ---------------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the CTA; every thread gets the result. Deterministic order.
__device__ float block_sum(float v)
{
    __shared__ float part[WARPS];
    __shared__ float total;
    v = warp_sum(v);
    __syncthreads(); // part/total may still be read from a previous call
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.0f;
        for (int i = 0; i < WARPS; i++) t += part[i];
        total = t;
    }
    __syncthreads();
    return total;
}

// ---- activations (exact forms of MODEL.md) -------------------------------------------------
__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float siluf(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float geluf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float softplusf(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float logsigmoidf(float x) { return fminf(x, 0.0f) - log1pf(expf(-fabsf(x))); }
__device__ __forceinline__ float reluf(float x) { return fmaxf(x, 0.0f); }

// ---- causal conv of one channel ------------------------------------------------------------
// window = [s[0] .. s[K-2], x] (oldest first); w: the channel's K taps; s shifts by one.
template <int K> __device__ __forceinline__ float conv_step(const float *w, float bias, float *s, float x)
{
    float acc = bias;
#pragma unroll
    for (int j = 0; j < K - 1; j++) acc += w[j] * s[j];
    acc += w[K - 1] * x;
#pragma unroll
    for (int j = 0; j < K - 2; j++) s[j] = s[j + 1];
    s[K - 2] = x;
    return acc;
}

// ---- rank-one update of a state matrix -------------------------------------------------------
// A lane owns four columns of `rows` rows of a row-major state matrix with COLS columns
// (S points at its first column in the first row): S[i][j] = f * S[i][j] + a[i] * v[j],
// and it returns sum_i q[i] * S_new[i][j] (RetNet retention, mLSTM memory). Rows go in
// groups of 8 with all loads of a group issued before any use.
template <int COLS>
__device__ __forceinline__ float4 outer_update(float *S, int rows, float f, const float *a, float4 v, const float *q)
{
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int i0 = 0; i0 < rows; i0 += 8) {
        float4 r[8];
#pragma unroll
        for (int u = 0; u < 8; u++)
            if (i0 + u < rows) r[u] = *(const float4 *)(S + (long)(i0 + u) * COLS);
#pragma unroll
        for (int u = 0; u < 8; u++) {
            if (i0 + u < rows) {
                const float ai = a[i0 + u], qi = q[i0 + u];
                r[u].x = f * r[u].x + ai * v.x;
                r[u].y = f * r[u].y + ai * v.y;
                r[u].z = f * r[u].z + ai * v.z;
                r[u].w = f * r[u].w + ai * v.w;
                *(float4 *)(S + (long)(i0 + u) * COLS) = r[u];
                acc.x += qi * r[u].x;
                acc.y += qi * r[u].y;
                acc.z += qi * r[u].z;
                acc.w += qi * r[u].w;
            }
        }
    }
    return acc;
}

// ---- partial sums of a head's retrieval -------------------------------------------------------
// The `tasks` warp tasks of one (entry, head) each wrote their part (a row chunk's partial
// sum) at part + rc * part_stride; the last task to finish, counted on *count, adds the
// `parts` parts in a fixed order into out[0 .. n) and resets the count. The result does not
// depend on which task finishes last. Called by all lanes of the warp.
__device__ void sum_parts_when_last(unsigned *count, int tasks, const float *part, int part_stride, int parts,
                                    float *out, int n)
{
    const int lane = threadIdx.x & 31;
    __threadfence(); // this task's part is visible before it is counted
    __syncwarp();
    unsigned last = 0;
    if (lane == 0) last = atomicAdd(count, 1u) == (unsigned)tasks - 1;
    if (!__shfl_sync(0xffffffffu, last, 0)) return;
    __threadfence();
    for (int c = lane * 4; c < n; c += 128) {
        float4 sum = ld_act4(part + c);
        for (int r = 1; r < parts; r++) {
            const float4 y = ld_act4(part + (long)r * part_stride + c);
            sum.x += y.x;
            sum.y += y.y;
            sum.z += y.z;
            sum.w += y.w;
        }
        *(float4 *)(out + c) = sum;
    }
    if (lane == 0) atomicExch(count, 0u);
}

// ---- inputs of a projection ----------------------------------------------------------------
enum { NORM_NONE = 0, NORM_RMS = 1, NORM_LAYER = 2 };

// The input vector of batch entry b is base + row(b) * stride, row(b) = b or the slot of b.
// An input may be normalised per group (RMSNorm, LayerNorm, GroupNorm), then get
// `+ skip_w[c] * skip(b)[c]` and `* silu(gate(b)[c])` (mLSTM and RetNet outputs).
struct In {
    const float *base;
    long stride;
    bool by_slot;
    int norm, group; // group: elements per normalisation group
    float eps;
    const float *nw, *nbias; // weight and bias of the norm, or null
    const float *skip_w, *skip;
    const float *gate;
    int skip_stride, gate_stride;
};

__device__ __forceinline__ In in_act(const Params &p, Buf b)
{
    In in = {};
    in.base = p.scr + b.off;
    in.stride = b.stride;
    return in;
}
__device__ __forceinline__ In in_state(const Params &p, long offset)
{
    In in = {};
    in.base = p.state + offset;
    in.stride = SLOT_FLOATS;
    in.by_slot = true;
    return in;
}
__device__ __forceinline__ In in_norm(In in, int norm, int group, float eps, const float *w,
                                      const float *bias)
{
    in.norm = norm;
    in.group = group;
    in.eps = eps;
    in.nw = w;
    in.nbias = bias;
    return in;
}
__device__ __forceinline__ const float *in_row(const Params &p, const In &in, int b)
{
    return in.base + (in.by_slot ? (long)p.slots[b] : (long)b) * in.stride;
}

// ---- the batched projection ----------------------------------------------------------------
// One matrix of a projection: weight rows at w (row o at w + o * ld), optional bias, and
// which of the inputs it reads.
struct Mat {
    long w, bias; // offsets into the weights; bias < 0: none
    int in;
};

__device__ __forceinline__ Mat mat(long w, long bias = -1, int in = 0) { return Mat{w, bias, in}; }

// Stage the inputs of entries b0 .. b0+nj-1, columns [s0, s0 + slen) of each, into
// xs[NIN][tile][slen]; 4 float4 loads in flight per thread.
template <int NIN>
__device__ void stage_inputs(const Params &p, const In (&in)[NIN], int b0, int nj, int tile, int s0, int slen,
                             float *xs)
{
    const int q = slen / 4, per_input = nj * q, total = NIN * per_input;
    for (int t0 = threadIdx.x; t0 < total; t0 += 4 * THREADS) {
        float4 x[4];
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int t = t0 + r * THREADS;
            if (t < total) {
                const int i = t / per_input, j = (t % per_input) / q, c = (t % q) * 4;
                x[r] = ld_act4(in_row(p, in[i], b0 + j) + s0 + c);
            }
        }
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int t = t0 + r * THREADS;
            if (t < total) {
                const int i = t / per_input, j = (t % per_input) / q, c = (t % q) * 4;
                *(float4 *)(xs + ((long)i * tile + j) * slen + c) = x[r];
            }
        }
    }
    __syncthreads();
}

// Normalise a staged input in place, xs[j][0 .. n) for j < nj, per group of in.group
// elements (statistics from shared memory), then apply weight, bias, skip and gate.
__device__ void normalise_staged(const Params &p, const In &in, int b0, int nj, int n, float *xs)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, groups = n / in.group;
    float *stats = norm_stats_smem; // [j][group][mean, 1/std]
    for (int t = warp; t < nj * groups; t += WARPS) {
        const float *x = xs + (long)(t / groups) * n + (t % groups) * in.group;
        float mean = 0.0f;
        if (in.norm == NORM_LAYER) {
            float s = 0.0f;
            for (int c = lane; c < in.group; c += 32) s += x[c];
            mean = warp_sum(s) / in.group;
        }
        float s2 = 0.0f;
        for (int c = lane; c < in.group; c += 32) s2 += (x[c] - mean) * (x[c] - mean);
        const float var = warp_sum(s2) / in.group;
        if (lane == 0) {
            stats[2 * t] = mean;
            stats[2 * t + 1] = 1.0f / sqrtf(var + in.eps);
        }
    }
    __syncthreads();
    for (int t = threadIdx.x; t < nj * n; t += THREADS) {
        const int j = t / n, c = t % n, g = j * groups + c / in.group;
        float v = (xs[t] - stats[2 * g]) * stats[2 * g + 1];
        if (in.nw) v *= __ldg(in.nw + c);
        if (in.nbias) v += __ldg(in.nbias + c);
        if (in.skip) v += __ldg(in.skip_w + c) * ld_act(in.skip + (long)(b0 + j) * in.skip_stride + c);
        if (in.gate) v *= siluf(ld_act(in.gate + (long)(b0 + j) * in.gate_stride + c));
        xs[t] = v;
    }
    __syncthreads();
}

// Rows [lo, hi) of NM matrices that share their row index, applied to every entry of the
// batch: v = W x (+ bias), then epi(b, o, v[NM]) once per (entry, row).
// Per tile of up to BT entries the CTA first stages the inputs its rows read in shared
// memory (normalising input 0 there when NORM: statistics and transform once per CTA);
// then each warp takes a row, streams its NM weight rows in chunks of ROW_UNROLL / NM
// float4 per lane (all loads of a chunk in flight at once) and applies each chunk to every
// staged entry. `block` > 0 makes it a BlockLinear: row o reads the input at
// (o / block) * block. `len` is the dot length. NORM projections are never blocked.
template <int NM, int NIN, bool NORM, class Epi>
__device__ void proj_rows(const Params &p, const In (&in)[NIN], const Mat (&m)[NM], int len,
                          int block, int lo, int hi, Epi epi)
{
    constexpr int U = ROW_UNROLL / NM > 0 ? ROW_UNROLL / NM : 1; // float4 per lane per chunk
    if (lo >= hi) return;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int ld = (len + 3) & ~3;
    // input columns [s0, s0 + slen) are staged: the blocks of rows lo..hi-1, or all of x
    const int s0 = block ? (lo / block) * block : 0;
    const int slen = block ? ((hi - 1) / block + 1) * block - s0 : ld;
    const int tile = min(BT, STAGE_FLOATS / (NIN * slen)); // >= 1: the generator checks it
    float *xs = stage_smem;                                 // [NIN][tile][slen]
    for (int b0 = 0; b0 < p.nb; b0 += tile) {
        const int nj = min(tile, p.nb - b0);
        __syncthreads(); // the previous tile's readers are done
        stage_inputs<NIN>(p, in, b0, nj, tile, s0, slen, xs);
        if (NORM) normalise_staged(p, in[0], b0, nj, len, xs);
        for (int o = lo + warp; o < hi; o += WARPS) {
            const int c0 = block ? (o / block) * block - s0 : 0;
            const float *wrow[NM];
#pragma unroll
            for (int k = 0; k < NM; k++) wrow[k] = p.w + m[k].w + (long)o * ld;
            float acc[NM][BT];
#pragma unroll
            for (int k = 0; k < NM; k++)
#pragma unroll
                for (int j = 0; j < BT; j++) acc[k][j] = 0.0f;
            for (int cc = lane * 4; cc < ld; cc += 128 * U) {
                float4 wv[NM][U];
#pragma unroll
                for (int u = 0; u < U; u++)
#pragma unroll
                    for (int k = 0; k < NM; k++)
                        wv[k][u] = cc + 128 * u < ld ? ld_w4(wrow[k] + cc + 128 * u) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
                for (int j = 0; j < BT; j++) {
                    if (j < nj) {
#pragma unroll
                        for (int u = 0; u < U; u++) {
                            const int c = cc + 128 * u;
                            if (c < ld) {
#pragma unroll
                                for (int k = 0; k < NM; k++) {
                                    const float4 x = *(const float4 *)(xs + ((long)m[k].in * tile + j) * slen + c0 + c);
                                    acc[k][j] += wv[k][u].x * x.x + wv[k][u].y * x.y + wv[k][u].z * x.z +
                                                 wv[k][u].w * x.w;
                                }
                            }
                        }
                    }
                }
            }
            float v[NM];
#pragma unroll
            for (int k = 0; k < NM; k++) {
                v[k] = 0.0f;
#pragma unroll
                for (int j = 0; j < BT; j++) {
                    const float s = warp_sum(acc[k][j]);
                    if (lane == j) v[k] = s;
                }
                if (m[k].bias >= 0) v[k] += __ldg(p.w + m[k].bias + o);
            }
            if (lane < nj) epi(b0 + lane, o, v);
        }
    }
}

// The part of the unit range [lo, hi) that falls in [base, base + count), shifted to 0.
__device__ __forceinline__ bool part(int lo, int hi, int base, int count, int &a, int &b)
{
    a = max(lo, base) - base;
    b = min(hi, base + count) - base;
    return a < b;
}

// ---- phases every tower has ----------------------------------------------------------------
// input_up/input_down at the start, the MLP of every block, output_proj at the end.
enum { PH_IN_UP = 100, PH_IN_DOWN, PH_MLP_UP, PH_MLP_DOWN, PH_OUT };

__device__ __forceinline__ int common_units(int phase)
{
    switch (phase) {
    case PH_IN_UP: case PH_MLP_UP: return P;
    case PH_IN_DOWN: case PH_MLP_DOWN: return H;
    case PH_OUT: return 1;
    }
    return 0;
}

// What the shared phases need of a tower: one non-template common_run serves all four
// towers (a template per tower would compile every projection four times).
struct TowerCommon {
    long input_up_weight, input_up_bias, input_down_weight, input_down_bias;
    long blocks, block_stride, norm2_weight, fc1_weight, fc1_bias, fc2_weight, fc2_bias;
    Buf u, ap;
};

template <class Lk> __device__ __forceinline__ TowerCommon tower_common()
{
    return TowerCommon{Lk::input_up_weight, Lk::input_up_bias,  Lk::input_down_weight,
                       Lk::input_down_bias, Lk::blocks,         Lk::block_stride,
                       Lk::b_norm2_weight,  Lk::b_mlp_fc1_weight, Lk::b_mlp_fc1_bias,
                       Lk::b_mlp_fc2_weight, Lk::b_mlp_fc2_bias, Lk::sc_u,
                       Lk::sc_ap};
}

__device__ void common_run(const Params &p, const TowerCommon &t, int tower, int phase, int l, int lo, int hi)
{
    const Buf u = t.u, ap = t.ap;
    const long blk = t.blocks + (long)l * t.block_stride;
    switch (phase) {
    case PH_IN_UP: { // ap = relu(input_up(features))   [P] <- [F]
        In in[1] = {};
        in[0].base = p.feats;
        in[0].stride = F4;
        Mat m[1] = {mat(t.input_up_weight, t.input_up_bias)};
        proj_rows<1, 1, false>(p, in, m, F, 0, lo, hi,
                               [&](int b, int o, const float (&v)[1]) { sc(p, ap, b)[o] = reluf(v[0]); });
        break;
    }
    case PH_IN_DOWN: { // u = input_down(ap)   [H] <- [P]
        In in[1] = {in_act(p, ap)};
        Mat m[1] = {mat(t.input_down_weight, t.input_down_bias)};
        proj_rows<1, 1, false>(p, in, m, P, 0, lo, hi,
                               [&](int b, int o, const float (&v)[1]) { sc(p, u, b)[o] = v[0]; });
        break;
    }
    case PH_MLP_UP: { // ap = relu(fc1(RMSNorm(u; norm2)))   [P] <- [H]
        In in[1] = {in_norm(in_act(p, u), NORM_RMS, H, EPS_BLOCK, p.w + blk + t.norm2_weight, nullptr)};
        Mat m[1] = {mat(blk + t.fc1_weight, blk + t.fc1_bias)};
        proj_rows<1, 1, true>(p, in, m, H, 0, lo, hi,
                              [&](int b, int o, const float (&v)[1]) { sc(p, ap, b)[o] = reluf(v[0]); });
        break;
    }
    case PH_MLP_DOWN: { // u += fc2(ap)   [H] <- [P]
        In in[1] = {in_act(p, ap)};
        Mat m[1] = {mat(blk + t.fc2_weight, blk + t.fc2_bias)};
        proj_rows<1, 1, false>(p, in, m, P, 0, lo, hi,
                               [&](int b, int o, const float (&v)[1]) { sc(p, u, b)[o] += v[0]; });
        break;
    }
    case PH_OUT: { // out[k] = output_proj(u), one output_proj shared by all towers
        In in[1] = {in_act(p, u)};
        Mat m[1] = {mat(W_output_proj_weight, W_output_proj_bias)};
        proj_rows<1, 1, false>(p, in, m, H, 0, lo, hi,
                               [&](int b, int, const float (&v)[1]) { p.out[b * 4 + tower] = v[0]; });
        break;
    }
    }
}
