// wgmma-probe.cu: can warpgroup mmas (wgmma, sm_90a) lift the projections at batch 32-64 off the
// latency bound of the kernel's mma.sync loop (an mma every 33 cycles a scheduler, run 78)?
// Build: nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o wgmma-probe wgmma-probe.cu
// (notes/gpu.md, runs 119-125)
//
// 1. layout: one m64n56k8 tf32 wgmma, A (64 x 8) from registers in mma.sync's m16n8k8 A fragment,
//    B (56 entries x 8) from shared memory in the no-swizzle K-major layout (core matrices of
//    8 entries x 4 columns; the descriptor's leading offset steps in K, its stride offset in N),
//    against the host.
// 2. projection: 132 CTAs of 256 threads, each 256 rows x 2048 fp32 weights (277 MB in all),
//    applied to nb entries in 3xTF32 as the kernel does it: the k order inside 16 columns is
//    permuted so that a lane's float4 of weights is its slots of two k-steps, and each G columns
//    start from a zero accumulator that is then added to fp32 sums.
//    - mma.sync (mma_sync_kernel): the kernel's loop. A warp takes 16 rows and splits its
//      lane's weights once a chunk. Every warp splits the staged input again for each of its
//      8-entry tiles. Each 16 columns and 8 entries are six mma.sync; the sums are kept in
//      shared memory.
//    - wgmma (proj_kernel): a warpgroup takes 64 rows and a warp its 16, as the A fragment. The
//      input arrives by cp.async in windows of WN columns, the next one in flight. Each window is
//      split once per CTA into tf32 big and small parts in the canonical layout, transposed
//      4 x 4 inside each 16 columns to match the weights' k order. A window's sub-groups are
//      unrolled, with BANKS accumulators in flight; the sums stay in registers.
//    The wgmma variants:
//      full:        as above
//      no-weights:  the weights' loads left out (the lane's registers reused): compute + staging
//      no-staging:  every window applies the first one's split: compute + weights
//      compute:     neither
//    Then the same with the weights in bf16 (2 mmas a k-step: no small part of the weights).
#include "probe.cuh"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

constexpr int THREADS = 256, K = 2048, ROWS_CTA = 256, CTAS = 132, WIN = 128, CW = 64, U = CW / 16;
constexpr int RAW_STRIDE = WIN + 4;

__device__ __forceinline__ unsigned tf32_operand(float x) { return __float_as_uint(x) + 0x1000u; }
// A lane's 4 weights as stored: fp32 (float4) or bf16 (uint2, exact in tf32: no small part).
__device__ __forceinline__ float4 unpack(float4 w) { return w; }
__device__ __forceinline__ float4 unpack(uint2 w)
{
    return make_float4(__uint_as_float(w.x << 16), __uint_as_float(w.x & 0xffff0000u), __uint_as_float(w.y << 16),
                       __uint_as_float(w.y & 0xffff0000u));
}

__device__ __forceinline__ uint64_t smem_desc(const void *p, unsigned lbo, unsigned sbo)
{
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    return (uint64_t)((a & 0x3ffff) >> 4) | (uint64_t)((lbo & 0x3ffff) >> 4) << 16 |
           (uint64_t)((sbo & 0x3ffff) >> 4) << 32;
}

#define D8 "%0, %1, %2, %3"
#define D16 D8 ", %4, %5, %6, %7"
#define D24 D16 ", %8, %9, %10, %11"
#define D32 D24 ", %12, %13, %14, %15"
#define D40 D32 ", %16, %17, %18, %19"
#define D48 D40 ", %20, %21, %22, %23"
#define D56 D48 ", %24, %25, %26, %27"
#define D64 D56 ", %28, %29, %30, %31"
#define WGMMA(NS, DL)                                                                                \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                      \
                 "wgmma.mma_async.sync.aligned.m64n" NS "k8.f32.tf32.tf32 {" DL "}, {%32, %33, %34, %35}, %36, p, 1, 1;\n}\n" \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),  \
                   "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]),          \
                   "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]),       \
                   "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),       \
                   "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]),       \
                   "+f"(d[31])                                                                         \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc))

// d (+)= A B^T: A 64 x 8 (this warp's 16 rows in a[4]), B N x 8 at desc; acc = 0 ignores d.
template <int N> __device__ __forceinline__ void wgmma_tf32(float (&d)[32], const unsigned (&a)[4], uint64_t desc, int acc)
{
    if constexpr (N == 8) WGMMA("8", D8);
    else if constexpr (N == 16) WGMMA("16", D16);
    else if constexpr (N == 24) WGMMA("24", D24);
    else if constexpr (N == 32) WGMMA("32", D32);
    else if constexpr (N == 40) WGMMA("40", D40);
    else if constexpr (N == 48) WGMMA("48", D48);
    else if constexpr (N == 56) WGMMA("56", D56);
    else WGMMA("64", D64);
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"); }
__device__ __forceinline__ void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

// x as tf32 big and small parts (each rounded: the kernel's tf32_split).
__device__ __forceinline__ void split(float x, unsigned &b, unsigned &s)
{
    b = tf32_operand(x);
    s = tf32_operand(x - __uint_as_float(b & 0xffffe000u));
}
// A lane's weights of rows g (a) and g + 8 (b) at one 16-column group as the A fragments of two
// k-steps, [k-step][slot]: big and small parts, or (bf16, exact in tf32) the weights alone in wb.
template <class Raw> __device__ __forceinline__ void split_weights(Raw ra, Raw rb, unsigned (&wb)[2][4], unsigned (&ws)[2][4])
{
    const float4 a = unpack(ra), b = unpack(rb);
    const float wv[2][4] = {{a.x, b.x, a.y, b.y}, {a.z, b.z, a.w, b.w}};
#pragma unroll
    for (int k = 0; k < 2; k++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (sizeof(Raw) == 8)
                wb[k][i] = __float_as_uint(wv[k][i]);
            else
                split(wv[k][i], wb[k][i], ws[k][i]);
        }
}

// The lane's weights of rows a, b at the chunk from column col (CW columns: U loads a row).
template <class Raw> __device__ __forceinline__ void load_chunk(const Raw *qa, const Raw *qb, long col, Raw (&ra)[U], Raw (&rb)[U])
{
#pragma unroll
    for (int u = 0; u < U; u++) ra[u] = __ldcs(qa + col / 4 + 4 * u), rb[u] = __ldcs(qb + col / 4 + 4 * u);
}

// The lane's sums of rows row0, row0 + 8 as the mma's C fragment, tile j entries 8j + 2 t4 + {0, 1}:
// value(j, i), i = 2 (row) + entry, into y[entry][row].
template <class F> __device__ void store_rows(float *y, int nb, int row0, int tiles, F value)
{
    const int t4 = threadIdx.x & 3;
    for (int j = 0; j < tiles; j++)
        for (int i = 0; i < 4; i++) {
            const int e = 8 * j + 2 * t4 + (i & 1), r = row0 + (i >> 1) * 8;
            if (e < nb) y[(long)e * (CTAS * ROWS_CTA) + r] = value(j, i);
        }
}

// ---- 1. layout ----
// A [64][8], B [56][8] row-major; D [64][56].
__global__ void layout_kernel(const float *A, const float *B, float *D)
{
    __shared__ __align__(128) float bs[56 * 8];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    // core matrix (k / 4, n / 8) at ((k / 4) * 7 + n / 8) * 32 floats, row n % 8, column k % 4
    for (int i = tid; i < 56 * 8; i += 128) {
        const int n = i / 8, k = i % 8;
        bs[((k / 4) * 7 + n / 8) * 32 + (n % 8) * 4 + k % 4] = B[i];
    }
    fence_async_smem();
    __syncthreads();
    const int r = 16 * warp + g;
    const unsigned a[4] = {__float_as_uint(A[r * 8 + t]), __float_as_uint(A[(r + 8) * 8 + t]),
                           __float_as_uint(A[r * 8 + t + 4]), __float_as_uint(A[(r + 8) * 8 + t + 4])};
    // leading offset: the next core matrix in K; stride offset: the next 8 entries (the other
    // reading, run 119, made the wgmma read past the window: an illegal address)
    const uint64_t desc = smem_desc(bs, 7 * 128, 128);
    float d[32] = {};
    wgmma_fence();
    wgmma_tf32<56>(d, a, desc, 0);
    wgmma_commit();
    wgmma_wait<0>();
    for (int j = 0; j < 7; j++) {
        D[r * 56 + 8 * j + 2 * t] = d[4 * j];
        D[r * 56 + 8 * j + 2 * t + 1] = d[4 * j + 1];
        D[(r + 8) * 56 + 8 * j + 2 * t] = d[4 * j + 2];
        D[(r + 8) * 56 + 8 * j + 2 * t + 1] = d[4 * j + 3];
    }
}

// ---- 2. projection ----
enum Variant { FULL, NO_WEIGHTS, NO_STAGING, COMPUTE };

__device__ __forceinline__ void cp_async16(float *dst, const float *src)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"((unsigned)__cvta_generic_to_shared(dst)), "l"(src)
                 : "memory");
}

// Window w (WN columns) of every entry's input into raw[w % 2][nb][WN + 4] by cp.async, committed.
template <int WN> __device__ void copy_input_window(float *raw, const float *x, int nb, int w)
{
    constexpr int RS = WN + 4;
    float *dst = raw + (w & 1) * nb * RS;
    for (int i = threadIdx.x; i < nb * WN / 4; i += THREADS) {
        const int e = i / (WN / 4), c4 = i % (WN / 4);
        cp_async16(dst + e * RS + 4 * c4, x + (long)e * K + w * WN + 4 * c4);
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
}

// y[e][row] = W[row] . x[e] for the CTA's ROWS_CTA rows; N = 8 * ceil(nb / 8).
template <int N, int G, int BANKS, int WN, class Raw>
__global__ void __launch_bounds__(THREADS, 1)
    proj_kernel(const Raw *W, const float *x, int nb, float *y, Variant variant)
{
    extern __shared__ __align__(128) float smem[];
    constexpr bool EXACT_W = sizeof(Raw) == 8;
    constexpr int RS = WN + 4, N8 = N / 8, SPLIT = WN * N; // floats of one split part of a window
    float *big = smem, *small = smem + SPLIT, *raw = smem + 2 * SPLIT; // raw: [2][nb][RS]
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t4 = lane & 3;
    const int wg = warp >> 2, wq = warp & 3;
    const int nwin = K / WN;
    const auto copy_window = [&](int w) { copy_input_window<WN>(raw, x, nb, w); };
    // raw window -> big, small: entry e, 16 columns q: 4 float4 in, 4 float4 of each part out,
    // position 4a + b of the 16 holding column 4b + a; core matrix (4q + a, e / 8) row e % 8
    const auto split_window = [&](int w) {
        const float *src = raw + (w & 1) * nb * RS;
        for (int i = tid; i < N * (WN / 16); i += THREADS) {
            const int e = i % N, q = i / N;
            float4 v[4];
            for (int b = 0; b < 4; b++)
                v[b] = e < nb ? *(const float4 *)(src + e * RS + 16 * q + 4 * b) : make_float4(0.f, 0.f, 0.f, 0.f);
            const float s[4][4] = {{v[0].x, v[1].x, v[2].x, v[3].x}, {v[0].y, v[1].y, v[2].y, v[3].y},
                                   {v[0].z, v[1].z, v[2].z, v[3].z}, {v[0].w, v[1].w, v[2].w, v[3].w}};
#pragma unroll
            for (int a = 0; a < 4; a++) {
                unsigned hb[4], hs[4];
#pragma unroll
                for (int b = 0; b < 4; b++) split(s[a][b], hb[b], hs[b]);
                const int off = ((4 * q + a) * N8 + e / 8) * 32 + (e % 8) * 4;
                *(uint4 *)(big + off) = make_uint4(hb[0], hb[1], hb[2], hb[3]);
                *(uint4 *)(small + off) = make_uint4(hs[0], hs[1], hs[2], hs[3]);
            }
        }
    };
    const unsigned lbo = N8 * 128, sbo = 128;
    for (int pass = 0; pass < ROWS_CTA / 128; pass++) {
        const int row0 = blockIdx.x * ROWS_CTA + pass * 128 + 64 * wg + 16 * wq + g;
        const Raw *qa = W + (long)row0 * (K / 4) + t4, *qb = W + (long)(row0 + 8) * (K / 4) + t4;
        Raw ra[U], rb[U];
        load_chunk(qa, qb, 0, ra, rb);
        float sums[32] = {}, d[BANKS][32];
        __syncthreads(); // the previous pass's wgmmas are done with the split window
        copy_window(0);
        for (int w = 0; w < nwin; w++) {
            if (w + 1 < nwin && (variant < NO_STAGING || w == 0)) {
                copy_window(w + 1);
                asm volatile("cp.async.wait_group 1;" ::: "memory");
            } else {
                asm volatile("cp.async.wait_group 0;" ::: "memory");
            }
            __syncthreads(); // window w's copy is in; every wgmma of window w - 1 is done
            if (variant < NO_STAGING || w == 0) split_window(w);
            fence_async_smem();
            __syncthreads();
            // sub-groups of 16 columns; a group of G / 16 of them from one zero accumulator
            constexpr int SG = G / 16;
            unsigned wb[BANKS * SG][2][4], ws[BANKS * SG][2][4]; // [group's slot][k-step][slot]
#pragma unroll
            for (int sub = 0; sub < WN / 16; sub++) {
                const int u = sub % U, gi = sub / SG, bank = gi % BANKS, slot = bank * SG + sub % SG;
                const long col = (long)w * WN + (sub / U) * CW; // of this chunk
                split_weights(ra[u], rb[u], wb[slot], ws[slot]);
                if (u == U - 1 && col + CW < K && variant != NO_WEIGHTS && variant != COMPUTE)
                    load_chunk(qa, qb, col + CW, ra, rb);
                const int cm = 4 * sub; // the 16 columns' first core matrix
                wgmma_fence();
#pragma unroll
                for (int k = 0; k < 2; k++) {
                    const uint64_t db = smem_desc(big + (cm + 2 * k) * N8 * 32, lbo, sbo);
                    const uint64_t dsm = smem_desc(small + (cm + 2 * k) * N8 * 32, lbo, sbo);
                    if (!EXACT_W) wgmma_tf32<N>(d[bank], ws[slot][k], db, sub % SG > 0 || k > 0);
                    wgmma_tf32<N>(d[bank], wb[slot][k], dsm, !EXACT_W || sub % SG > 0 || k > 0);
                    wgmma_tf32<N>(d[bank], wb[slot][k], db, 1);
                }
                if (sub % SG == SG - 1) { // the group is issued
                    wgmma_commit();
                    if (BANKS == 2) {
                        wgmma_wait<1>();
                        if (gi > 0) // the group before is done
#pragma unroll
                            for (int i = 0; i < N / 2; i++) sums[i] += d[bank ^ 1][i];
                    } else {
                        wgmma_wait<0>();
#pragma unroll
                        for (int i = 0; i < N / 2; i++) sums[i] += d[0][i];
                    }
                }
            }
            if (BANKS == 2) {
                wgmma_wait<0>();
#pragma unroll
                for (int i = 0; i < N / 2; i++) sums[i] += d[(WN / G - 1) % 2][i];
            }
        }
        store_rows(y, nb, row0, N8, [&](int j, int i) { return sums[4 * j + i]; });
    }
}

// The fused kernel's loop (proj_rows_mma) for comparison: a warp takes 16 rows, a lane's
// weights split once a chunk, the staged input split by every warp for each of its 8-entry tiles,
// six mma.sync a 16 columns and 8 entries from a zero accumulator, the sums in shared memory.
__device__ __forceinline__ void mma_tf32(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <class Raw>
__global__ void __launch_bounds__(THREADS, 1) mma_sync_kernel(const Raw *W, const float *x, int nb, float *y)
{
    extern __shared__ __align__(128) float smem[];
    const int nt = (nb + 7) / 8;
    constexpr bool EXACT_W = sizeof(Raw) == 8;
    float *raw = smem;                                             // [2][nb][RAW_STRIDE]
    float4 *own = (float4 *)(smem + 2 * nb * RAW_STRIDE) + (threadIdx.x >> 5) * 8 * 32 + (threadIdx.x & 31);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t4 = lane & 3;
    const int nwin = K / WIN;
    const auto copy_window = [&](int w) { copy_input_window<WIN>(raw, x, nb, w); };
    for (int pass = 0; pass < ROWS_CTA / 128; pass++) {
        const int row0 = blockIdx.x * ROWS_CTA + pass * 128 + 16 * warp + g;
        const Raw *qa = W + (long)row0 * (K / 4) + t4, *qb = W + (long)(row0 + 8) * (K / 4) + t4;
        Raw ra[U], rb[U];
        load_chunk(qa, qb, 0, ra, rb);
        for (int t = 0; t < nt; t++) own[t * 32] = make_float4(0.f, 0.f, 0.f, 0.f);
        __syncthreads();
        copy_window(0);
        for (int w = 0; w < nwin; w++) {
            if (w + 1 < nwin) {
                __syncthreads(); // the other buffer's window is applied
                copy_window(w + 1);
                asm volatile("cp.async.wait_group 1;" ::: "memory");
            } else {
                asm volatile("cp.async.wait_group 0;" ::: "memory");
            }
            __syncthreads();
            const float *buf = raw + (w & 1) * nb * RAW_STRIDE;
#pragma unroll 1
            for (int c = 0; c < WIN; c += CW) {
                const long col = (long)w * WIN + c;
                unsigned wb[U][2][4], ws[U][2][4];
#pragma unroll
                for (int u = 0; u < U; u++) split_weights(ra[u], rb[u], wb[u], ws[u]);
                if (col + CW < K) load_chunk(qa, qb, col + CW, ra, rb);
                const float *xc = buf + c + 4 * t4;
#pragma unroll 1
                for (int t = 0; t < nt; t++) {
                    const int e = min(8 * t + g, nb - 1);
                    float4 acc = own[t * 32];
#pragma unroll
                    for (int u = 0; u < U; u++) {
                        const float4 xv = *(const float4 *)(xc + e * RAW_STRIDE + 16 * u);
                        unsigned xb[4], xs[4];
                        split(xv.x, xb[0], xs[0]);
                        split(xv.y, xb[1], xs[1]);
                        split(xv.z, xb[2], xs[2]);
                        split(xv.w, xb[3], xs[3]);
                        float d[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
                        for (int k = 0; k < 2; k++) {
                            if (!EXACT_W) mma_tf32(d, ws[u][k], xb[2 * k], xb[2 * k + 1]);
                            mma_tf32(d, wb[u][k], xs[2 * k], xs[2 * k + 1]);
                            mma_tf32(d, wb[u][k], xb[2 * k], xb[2 * k + 1]);
                        }
                        acc.x += d[0], acc.y += d[1], acc.z += d[2], acc.w += d[3];
                    }
                    own[t * 32] = acc;
                }
            }
        }
        store_rows(y, nb, row0, nt, [&](int j, int i) {
            const float4 s4 = own[j * 32];
            return i == 0 ? s4.x : i == 1 ? s4.y : i == 2 ? s4.z : s4.w;
        });
    }
}

static float frand(unsigned &s)
{
    s = s * 1664525u + 1013904223u;
    return ((s >> 8) * (1.0f / 16777216.0f)) * 2.0f - 1.0f;
}

// Largest |y - ref| / sum |w x| over every 37th row (ref in double), NaN-poisoned y.
static double check(const std::vector<float> &y, int nb, const std::vector<float> &W, const std::vector<float> &x)
{
    const int rows = CTAS * ROWS_CTA;
    double worst = 0;
    for (int r = 0; r < rows; r += 37)
        for (int e = 0; e < nb; e++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                const double p = (double)W[(size_t)r * K + k] * x[(size_t)e * K + k];
                ref += p, mag += fabs(p);
            }
            const double v = y[(size_t)e * rows + r];
            worst = std::max(worst, std::isfinite(v) ? fabs(v - ref) / mag : INFINITY);
        }
    return worst;
}

template <int N, int G, int BANKS, int WN = WIN, class Raw>
static void run_wgmma(const Raw *dW, const float *dx, float *dy, int nb, const std::vector<float> &W,
                      const std::vector<float> &x, const std::vector<float> &y_sync)
{
    const int rows = CTAS * ROWS_CTA;
    const size_t smem = (2 * WN * N + 2 * nb * (WN + 4)) * sizeof(float);
    const auto kernel = proj_kernel<N, G, BANKS, WN, Raw>;
    if (smem > 227 * 1024) return; // past a CTA's shared memory
    CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    CHECK(cudaMemset(dy, 0xff, (size_t)nb * rows * sizeof(float))); // NaN until written
    kernel<<<CTAS, THREADS, smem>>>(dW, dx, nb, dy, FULL);
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    std::vector<float> y((size_t)nb * rows);
    CHECK(cudaMemcpy(y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
    double diff = 0;
    for (size_t i = 0; i < y.size(); i++) diff = std::max(diff, (double)fabsf(y[i] - y_sync[i]));
    const double gb = (double)rows * K * sizeof(Raw) / 4 / 1e9;
    printf("  wgmma N %d, windows of %3d, a zero accumulator every %2d columns, %d bank%s: error %.2e, |diff| from mma.sync %.2g;", N, WN, G,
           BANKS, BANKS > 1 ? "s" : "", check(y, nb, W, x), diff);
    const char *names[] = {"full", "no-weights", "no-staging", "compute"};
    for (int v = 0; v < 4; v++) {
        const float ms = time_ms([&] { kernel<<<CTAS, THREADS, smem>>>(dW, dx, nb, dy, (Variant)v); }, 20);
        printf(" %s %.1f us%s", names[v], ms * 1e3, v == 0 ? "" : ",");
        if (v == 0) printf(" (%.2f TB/s),", gb / ms);
    }
    printf("\n");
}

template <int N, class Raw> static void run_projection(const Raw *dW, const float *dx, float *dy, int nb,
                                                       const std::vector<float> &W, const std::vector<float> &x)
{
    const int rows = CTAS * ROWS_CTA;
    const double gb = (double)rows * K * sizeof(Raw) / 4 / 1e9;
    const auto mma_sync_kernel = ::mma_sync_kernel<Raw>;
    const size_t smem_sync = (2 * nb * RAW_STRIDE + 8 * 8 * 128) * sizeof(float);
    CHECK(cudaFuncSetAttribute(mma_sync_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_sync));
    CHECK(cudaMemset(dy, 0xff, (size_t)nb * rows * sizeof(float)));
    const float ms = time_ms([&] { mma_sync_kernel<<<CTAS, THREADS, smem_sync>>>(dW, dx, nb, dy); }, 20);
    std::vector<float> y((size_t)nb * rows);
    CHECK(cudaMemcpy(y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
    printf("%s weights, nb %2d: mma.sync %.1f us (%.2f TB/s of weights), error %.2e\n", sizeof(Raw) == 8 ? "bf16" : "fp32", nb, ms * 1e3, gb / ms, check(y, nb, W, x));
    run_wgmma<N, 16, 2>(dW, dx, dy, nb, W, x, y);
    run_wgmma<N, 16, 2, 64>(dW, dx, dy, nb, W, x, y);
    if constexpr (sizeof(Raw) == 16) {
        run_wgmma<N, 32, 2>(dW, dx, dy, nb, W, x, y);
        run_wgmma<N, 64, 1>(dW, dx, dy, nb, W, x, y);
        run_wgmma<N, 16, 2, 256>(dW, dx, dy, nb, W, x, y);
        if (N < 64) run_wgmma<64, 16, 2>(dW, dx, dy, nb, W, x, y);
    }
}

int main()
{
    unsigned s = 12345;
    { // 1. layout
        std::vector<float> A(64 * 8), B(56 * 8), D(64 * 56);
        for (auto &v : A) v = (float)(int)(frand(s) * 8) / 4; // exact in tf32
        for (auto &v : B) v = (float)(int)(frand(s) * 8) / 4;
        float *dA, *dB, *dD;
        CHECK(cudaMalloc(&dA, A.size() * 4));
        CHECK(cudaMalloc(&dB, B.size() * 4));
        CHECK(cudaMalloc(&dD, D.size() * 4));
        CHECK(cudaMemcpy(dA, A.data(), A.size() * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(dB, B.data(), B.size() * 4, cudaMemcpyHostToDevice));
        layout_kernel<<<1, 128>>>(dA, dB, dD);
        CHECK(cudaDeviceSynchronize());
        CHECK(cudaMemcpy(D.data(), dD, D.size() * 4, cudaMemcpyDeviceToHost));
        double worst = 0;
        for (int i = 0; i < 64; i++)
            for (int j = 0; j < 56; j++) {
                double ref = 0;
                for (int k = 0; k < 8; k++) ref += A[i * 8 + k] * B[j * 8 + k];
                worst = std::max(worst, fabs(ref - D[i * 56 + j]));
            }
        printf("layout (LBO = K step, SBO = N step): max error %g\n", worst);
    }
    // 2. projection
    const int rows = CTAS * ROWS_CTA;
    std::vector<float> W((size_t)rows * K), x((size_t)64 * K);
    for (auto &v : W) v = frand(s) * 0.05f;
    for (auto &v : x) v = frand(s);
    float4 *dW;
    float *dx, *dy;
    CHECK(cudaMalloc(&dW, W.size() * 4));
    CHECK(cudaMalloc(&dx, x.size() * 4));
    CHECK(cudaMalloc(&dy, (size_t)64 * rows * 4));
    CHECK(cudaMemcpy(dW, W.data(), W.size() * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    float *copy;
    CHECK(cudaMalloc(&copy, W.size() * 4));
    const float copy_ms = time_ms([&] { CHECK(cudaMemcpyAsync(copy, dW, W.size() * 4, cudaMemcpyDeviceToDevice)); }, 20);
    printf("copy of the weights: %.1f us (%.2f TB/s read + write)\n", copy_ms * 1e3, 2.0 * W.size() * 4 / 1e9 / copy_ms);
    run_projection<8>(dW, dx, dy, 1, W, x);
    run_projection<8>(dW, dx, dy, 8, W, x);
    run_projection<32>(dW, dx, dy, 32, W, x);
    run_projection<56>(dW, dx, dy, 50, W, x);
    run_projection<64>(dW, dx, dy, 64, W, x);
    // bf16 weights: the same matrix rounded to nearest even, checked against the rounded values
    std::vector<unsigned short> Wb(W.size());
    for (size_t i = 0; i < W.size(); i++) {
        unsigned u;
        memcpy(&u, &W[i], 4);
        u += 0x7fff + ((u >> 16) & 1);
        Wb[i] = (unsigned short)(u >> 16);
        u &= 0xffff0000u;
        memcpy(&W[i], &u, 4);
    }
    uint2 *dWb;
    CHECK(cudaMalloc(&dWb, Wb.size() * 2));
    CHECK(cudaMemcpy(dWb, Wb.data(), Wb.size() * 2, cudaMemcpyHostToDevice));
    run_projection<8>(dWb, dx, dy, 8, W, x);
    run_projection<32>(dWb, dx, dy, 32, W, x);
    run_projection<56>(dWb, dx, dy, 50, W, x);
    run_projection<64>(dWb, dx, dy, 64, W, x);
    return 0;
}
