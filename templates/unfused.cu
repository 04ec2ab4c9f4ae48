// ---- unfused.cu: the small kernels of the unfused step (runtime/engine_cublas.c) ----------
// Every projection of the unfused step is a cuBLAS call; these kernels do the rest, one op
// family each. Sizes are arguments, so one compiled module serves every spec. Activations
// are row-major [rows, width] (one row per batch entry). State lives in the slot arena:
// entry r's state block starts at state + slots[r] * slot_stride + off (floats). The
// arithmetic follows the C reference (runtime/reference_impl.h) operation by operation.

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_SILU 2

__device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float silu_f(float x) { return x * sigmoid_f(x); }
__device__ __forceinline__ float softplus_f(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float logsigmoid_f(float x) { return -softplus_f(-x); }
__device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * (1.0f + erff(x / sqrtf(2.0f))); }
// An element of a state matrix as kept: with precision.state bf16 (bf16 != 0) rounded to the
// nearest bf16, as the fused kernel stores it; this path keeps it in its fp32 slot.
__device__ __forceinline__ float keep_state(float x, int bf16)
{
    unsigned u; // cvt.rn.bf16x2.f32 d, a, b puts b in the lower half
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(u) : "f"(x), "f"(0.0f));
    return bf16 ? __uint_as_float(u & 0xffff0000u) : x;
}

__device__ __forceinline__ float activate(float x, int act)
{
    if (act == ACT_RELU) return fmaxf(x, 0.0f);
    if (act == ACT_SILU) return silu_f(x);
    return x;
}

__device__ __forceinline__ float *slot_state(float *state, const int *slots, long long slot_stride,
                                             long long off, int r)
{
    return state + (long long)slots[r] * slot_stride + off;
}

// Sum over the CTA (blockDim.x a multiple of 32), returned to every thread.
__device__ float block_sum(float v)
{
    __shared__ float part[32];
    __shared__ float total;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); // a previous call's readers are done with part and total
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < (int)(blockDim.x >> 5) ? part[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) total = s;
    }
    __syncthreads();
    return total;
}

// Grid-stride loop over n items. (One line: the template embedding keeps no backslashes.)
#define GRID_STRIDE(i, n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

// y[r, c] (row stride ld) = act(y[r, c] + bias[c]); bias may be null.
extern "C" __global__ void bias_act(float *y, int ld, const float *bias, int rows, int cols, int act)
{
    GRID_STRIDE(i, (long long)rows * cols)
    {
        const int r = (int)(i / cols), c = (int)(i % cols);
        float *p = y + (long long)r * ld + c;
        *p = activate(bias ? *p + bias[c] : *p, act);
    }
}

// dst [rows, cols] += src (+ bias[c]): residual connections.
extern "C" __global__ void residual_add(float *dst, const float *src, const float *bias, int rows, int cols)
{
    GRID_STRIDE(i, (long long)rows * cols)
    {
        dst[i] += bias ? src[i] + bias[i % cols] : src[i];
    }
}

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w  (w may be null). Grid: rows. In place allowed.
extern "C" __global__ void rms_norm(float *out, const float *x, const float *w, float eps, int n)
{
    const float *xr = x + (long long)blockIdx.x * n;
    float *yr = out + (long long)blockIdx.x * n;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    const float r = 1.0f / sqrtf(block_sum(ss) / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = w ? xr[i] * r * w[i] : xr[i] * r;
}

// GroupNorm of x [rows, n] in `groups` contiguous groups (biased variance, eps 1e-5), * w (+ b)
// (+ res): LayerNorm is one group without bias. Grid: (groups, rows).
extern "C" __global__ void group_norm(float *out, const float *x, const float *w, const float *b,
                                      const float *res, int n, int groups)
{
    const int g = n / groups, base = blockIdx.x * g;
    const long long row = (long long)blockIdx.y * n;
    const float *xg = x + row + base;
    float s = 0.0f;
    for (int i = threadIdx.x; i < g; i += blockDim.x) s += xg[i];
    const float mean = block_sum(s) / (float)g;
    float v = 0.0f;
    for (int i = threadIdx.x; i < g; i += blockDim.x) v += (xg[i] - mean) * (xg[i] - mean);
    const float r = 1.0f / sqrtf(block_sum(v) / (float)g + 1e-5f);
    for (int i = threadIdx.x; i < g; i += blockDim.x) {
        const int c = base + i;
        float y = (xg[i] - mean) * r * w[c] + (b ? b[c] : 0.0f);
        if (res) y += res[row + c];
        out[row + c] = y;
    }
}

// One causal-conv step per channel: window [state[c, 0..K-2], x[c]], state keeps the newest
// K-1. x, out [rows, ch] (in place allowed); state block [ch, K-1]; w [ch, K]; b [ch].
extern "C" __global__ void causal_conv(float *out, const float *x, float *state, const int *slots,
                                       long long slot_stride, long long off, const float *w, const float *b,
                                       int rows, int ch, int K, int act)
{
    GRID_STRIDE(i, (long long)rows * ch)
    {
        const int r = (int)(i / ch), c = (int)(i % ch), K1 = K - 1;
        float *st = slot_state(state, slots, slot_stride, off, r) + (long long)c * K1;
        const float *wc = w + (long long)c * K;
        const float xv = x[i];
        float acc = b[c];
        for (int j = 0; j < K1; j++) acc += wc[j] * st[j];
        acc += wc[K1] * xv;
        for (int j = 0; j + 1 < K1; j++) st[j] = st[j + 1];
        st[K1 - 1] = xv;
        out[i] = activate(acc, act);
    }
}

// dst [rows, n] = the n floats of each entry's state at off.
extern "C" __global__ void gather(float *dst, const float *state, const int *slots, long long slot_stride,
                                  long long off, int rows, int n)
{
    GRID_STRIDE(i, (long long)rows * n)
    {
        const int r = (int)(i / n), c = (int)(i % n);
        dst[i] = state[(long long)slots[r] * slot_stride + off + c];
    }
}

// sLSTM cell. gin, gst [rows, 4H]: gates i, f, z, o from the inputs and (without bias) from
// hprev; bias [4][H] pointers. State block at off: conv [H, K1], hprev, c, n, m [H].
// h [rows, H] receives the new hprev.
extern "C" __global__ void slstm_cell(const float *gin, const float *gst, const float *bi, const float *bf,
                                      const float *bz, const float *bo, float *state, const int *slots,
                                      long long slot_stride, long long off, int H, int K1, float *h, int rows)
{
    GRID_STRIDE(idx, (long long)rows * H)
    {
        const int r = (int)(idx / H), i = (int)(idx % H);
        const float *a = gin + (long long)r * 4 * H, *s = gst + (long long)r * 4 * H;
        const float gi = a[i] + (s[i] + bi[i]), gf = a[H + i] + (s[H + i] + bf[i]);
        const float gz = a[2 * H + i] + (s[2 * H + i] + bz[i]), go = a[3 * H + i] + (s[3 * H + i] + bo[i]);
        float *hp = slot_state(state, slots, slot_stride, off, r) + (long long)H * K1;
        float *c = hp + H, *n = c + H, *m = n + H;
        const float lf = m[i] + logsigmoid_f(gf);
        const float mnew = fmaxf(gi, lf);
        const float ig = expf(gi - mnew), fg = expf(lf - mnew);
        c[i] = fg * c[i] + ig * tanhf(gz);
        n[i] = fg * n[i] + ig;
        m[i] = mnew;
        hp[i] = sigmoid_f(go) * c[i] / (n[i] + 1e-6f);
        h[idx] = hp[i];
    }
}

// mLSTM cell, one CTA per (head, entry). qkv [rows, 3E]; ifg [rows, 2 NH]: input and forget
// gate pre-activations without bias. State block at off: conv [E, K1], C [NH, DM, DM],
// nv [NH, DM], m [NH]. h [rows, E]. bf16: C kept in bf16 (keep_state). Dynamic shared
// memory: 2 DM floats.
extern "C" __global__ void mlstm_cell(const float *qkv, const float *ifg, const float *ib, const float *fb,
                                      float *state, const int *slots, long long slot_stride, long long off,
                                      int E, int NH, int DM, int K1, int bf16, float *h)
{
    extern __shared__ float smem[];
    float *qs = smem, *ks = smem + DM;
    const int n = blockIdx.x, r = blockIdx.y;
    const float *q = qkv + (long long)r * 3 * E + (long long)n * DM, *k = q + E, *v = q + 2 * E;
    float *base = slot_state(state, slots, slot_stride, off, r) + (long long)E * K1;
    float *C = base + (long long)n * DM * DM, *nv = base + (long long)NH * DM * DM + (long long)n * DM;
    float *mp = base + (long long)NH * DM * DM + (long long)NH * DM + n;
    const float ip = ifg[(long long)r * 2 * NH + n] + ib[n], fp = ifg[(long long)r * 2 * NH + NH + n] + fb[n];
    const float mold = *mp;
    const float lf = logsigmoid_f(fp);
    const float mnew = fmaxf(ip, mold + lf);
    const float ig = expf(ip - mnew), fg = expf(lf + mold - mnew);
    const float kscale = sqrtf((float)DM);
    for (int a = threadIdx.x; a < DM; a += blockDim.x) {
        qs[a] = q[a];
        ks[a] = k[a] / kscale;
    }
    __syncthreads();
    float qn = 0.0f;
    for (int a = threadIdx.x; a < DM; a += blockDim.x) {
        nv[a] = fg * nv[a] + ig * ks[a];
        qn += qs[a] * nv[a];
    }
    const float denom = fmaxf(fabsf(block_sum(qn)), expf(-mnew)) + 1e-6f;
    for (int b = threadIdx.x; b < DM; b += blockDim.x) {
        const float vb = v[b];
        float acc = 0.0f;
        for (int a = 0; a < DM; a++) {
            float *cab = C + (long long)a * DM + b;
            *cab = keep_state(fg * *cab + ig * ks[a] * vb, bf16);
            acc += qs[a] * *cab;
        }
        h[(long long)r * E + (long long)n * DM + b] = acc / denom;
    }
    if (threadIdx.x == 0) *mp = mnew; // every thread read mold before block_sum's barriers
}

// hn = (hn + skip * xc) * silu(xg), all [rows, n]; skip [n].
extern "C" __global__ void mlstm_skip_gate(float *hn, const float *xc, const float *xg, const float *skip,
                                           int rows, int n)
{
    GRID_STRIDE(i, (long long)rows * n)
    {
        hn[i] = (hn[i] + skip[i % n] * xc[i]) * silu_f(xg[i]);
    }
}

// Mamba2 SSM update and readout, one CTA per (head, entry), a warp per state row.
// x, z, y [rows, E]; bv, cv [rows, S]; dt [rows, NM] without bias. State block at off:
// ssm [NM, HD, S] (bf16: kept in bf16). y = (C . ssm + d x) * silu(z), before the RMSNorm.
extern "C" __global__ void mamba_ssm(const float *x, const float *z, const float *bv, const float *cv,
                                     const float *dt, const float *dt_bias, const float *a, const float *d,
                                     float *state, const int *slots, long long slot_stride, long long off,
                                     int E, int HD, int S, int bf16, float *y)
{
    const int n = blockIdx.x, r = blockIdx.y, NM = E / HD;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const float dtn = softplus_f(dt[(long long)r * NM + n] + dt_bias[n]);
    const float decay = expf(a[n] * dtn);
    const float *bvr = bv + (long long)r * S, *cvr = cv + (long long)r * S;
    float *ssm = slot_state(state, slots, slot_stride, off, r) + (long long)n * HD * S;
    for (int hh = warp; hh < HD; hh += warps) {
        const long long e = (long long)r * E + (long long)n * HD + hh;
        const float xh = x[e];
        float *row = ssm + (long long)hh * S;
        float acc = 0.0f;
        for (int j = lane; j < S; j += 32) {
            row[j] = keep_state(decay * row[j] + dtn * bvr[j] * xh, bf16);
            acc += cvr[j] * row[j];
        }
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) y[e] = (acc + d[n] * xh) * silu_f(z[e]);
    }
}

// RetNet: k *= kscale, then rotate q and k pair by pair at the entry's position (pos,
// an int32 at the start of its slot). q, k [rows, H]; angle [D].
extern "C" __global__ void retnet_rotate(float *q, float *k, const float *angle, const float *state,
                                         const int *slots, long long slot_stride, int H, int D, float kscale,
                                         int rows)
{
    GRID_STRIDE(p, (long long)rows * (H / 2))
    {
        const int r = (int)(p / (H / 2)), i = 2 * (int)(p % (H / 2)), e = i % D;
        const int pos = *(const int *)(state + (long long)slots[r] * slot_stride);
        const float th0 = (float)pos * angle[e], th1 = (float)pos * angle[e + 1];
        float *qr = q + (long long)r * H + i, *kr = k + (long long)r * H + i;
        const float q0 = qr[0], q1 = qr[1], k0 = kr[0] * kscale, k1 = kr[1] * kscale;
        qr[0] = q0 * cosf(th0) - q1 * sinf(th0);
        qr[1] = q1 * cosf(th1) + q0 * sinf(th1);
        kr[0] = k0 * cosf(th0) - k1 * sinf(th0);
        kr[1] = k1 * cosf(th1) + k0 * sinf(th1);
    }
}

// RetNet retention, one CTA per (head, entry): R = decay R + k v^T, o = q R / sqrt(scale),
// per-head RMSNorm (eps 1e-6), then o *= silu(g). q, k, v, g, o [rows, H]. State block at
// off: scale [NH], R [NH, D, D]. Dynamic shared memory: 2 D floats.
extern "C" __global__ void retnet_cell(const float *q, const float *k, const float *v, const float *g,
                                       const float *decay, float *state, const int *slots,
                                       long long slot_stride, long long off, int H, int D, float *o)
{
    extern __shared__ float smem[];
    float *qs = smem, *ks = smem + D;
    const int n = blockIdx.x, r = blockIdx.y, NH = H / D;
    const long long hb = (long long)r * H + (long long)n * D;
    float *scale = slot_state(state, slots, slot_stride, off, r) + n;
    float *R = scale - n + NH + (long long)n * D * D;
    const float dn = decay[n];
    const float sc = *scale * dn + 1.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        qs[i] = q[hb + i];
        ks[i] = k[hb + i];
    }
    __syncthreads();
    const float rs = sqrtf(sc);
    float ss = 0.0f;
    for (int j = threadIdx.x; j < D; j += blockDim.x) {
        const float vj = v[hb + j];
        float acc = 0.0f;
        for (int i = 0; i < D; i++) {
            float *rij = R + (long long)i * D + j;
            *rij = dn * *rij + ks[i] * vj;
            acc += qs[i] * *rij;
        }
        acc /= rs;
        o[hb + j] = acc;
        ss += acc * acc;
    }
    const float rn = 1.0f / sqrtf(block_sum(ss) / (float)D + 1e-6f);
    for (int j = threadIdx.x; j < D; j += blockDim.x) o[hb + j] = o[hb + j] * rn * silu_f(g[hb + j]);
    if (threadIdx.x == 0) *scale = sc; // every thread read the old scale before block_sum's barriers
}

// The RetNet position of each entry's symbol advances by one (end of the step).
extern "C" __global__ void retnet_advance(float *state, const int *slots, long long slot_stride, int rows)
{
    GRID_STRIDE(r, rows) { *(int *)(state + (long long)slots[r] * slot_stride) += 1; }
}

// Hawk RG-LRU: at = a^(c sigmoid(rg)), h = h at + sqrt(1 - at^2) (sigmoid(ig) x), then
// gate = gelu(gate) h. x, ig, rg, gate [rows, H]; state block at off: h [H].
extern "C" __global__ void rglru(const float *x, const float *ig, const float *rg, const float *a, float c,
                                 float *gate, float *state, const int *slots, long long slot_stride,
                                 long long off, int H, int rows)
{
    GRID_STRIDE(idx, (long long)rows * H)
    {
        const int r = (int)(idx / H), i = (int)(idx % H);
        float *h = slot_state(state, slots, slot_stride, off, r) + i;
        const float at = powf(a[i], c * sigmoid_f(rg[idx]));
        *h = *h * at + sqrtf(1.0f - at * at) * (sigmoid_f(ig[idx]) * x[idx]);
        gate[idx] = gelu_f(gate[idx]) * *h;
    }
}
