// state-pattern-probe.cu: does the access pattern of the mLSTM memory's state tasks, or the
// bytes a warp keeps in flight, set the phase's rate (notes/gpu.md, run 110)?
// Build: nvcc -O3 -arch=sm_90 -o state-pattern-probe state-pattern-probe.cu
//
// 400 row-major 512 x 512 fp32 matrices (the C of 50 entries x 8 heads, 400 MB) updated in
// place, S = 0.999 S + 1e-3 with q . S summed as outer_update does, by 87 or 132 CTAs of 8
// warps; a CTA takes a contiguous range of tasks, its warps every 8th of them (as the kernel).
//   chunk tasks (the kernel): a task is 32 rows x 128 columns, a lane a float4 of each row,
//     G rows a group (G float4 a lane in flight); a warp reads 512 bytes of rows 2 KB apart.
//   row tasks: a task is 32 whole rows, a lane 4 float4 of each row (columns 4 lane + 128 c),
//     G / 4 rows a group (G float4 a lane in flight); a group is G / 4 x 2 KB contiguous.
#include "probe.cuh"

constexpr int THREADS = 256, WARPS = THREADS / 32, D = 512, ROWS = 32, MATS = 400;

// G float4 of a lane in flight: the rows at p + k * stride (k < G) updated in place.
template <int G> __device__ __forceinline__ void update(float4 *p, long stride, float4 &acc)
{
    float4 r[G];
#pragma unroll
    for (int k = 0; k < G; k++) r[k] = __ldcs(p + k * stride);
#pragma unroll
    for (int k = 0; k < G; k++) {
        r[k].x = 0.999f * r[k].x + 1e-3f;
        r[k].y = 0.999f * r[k].y + 1e-3f;
        r[k].z = 0.999f * r[k].z + 1e-3f;
        r[k].w = 0.999f * r[k].w + 1e-3f;
        __stcs(p + k * stride, r[k]);
        acc.x += r[k].x;
        acc.y += r[k].y;
        acc.z += r[k].z;
        acc.w += r[k].w;
    }
}

template <bool ROW_TASKS, int G> __global__ void __launch_bounds__(THREADS, 1) tasks(float *c, float *out)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int per_mat = ROW_TASKS ? D / ROWS : (D / 128) * (D / ROWS), total = MATS * per_mat;
    const int lo = (int)((long)blockIdx.x * total / gridDim.x), hi = (int)((long)(blockIdx.x + 1) * total / gridDim.x);
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int t = lo + warp; t < hi; t += WARPS) {
        const int mat = t / per_mat, rest = t % per_mat;
        if (ROW_TASKS) { // rows rest * ROWS ..; a row's four float4 of a lane at 4 lane + 128 u
            float4 *base = (float4 *)(c + (long)mat * D * D + (long)rest * ROWS * D) + lane;
#pragma unroll 1
            for (int i = 0; i < ROWS; i += G / 4)
                update<G>(base + (long)i * (D / 4), 32, acc); // float4 k: row k / 4, lane + 32 (k % 4)
        } else { // column chunk rest / (D / ROWS), row chunk rest % (D / ROWS) (row chunk fastest)
            const int chunk = rest / (D / ROWS), rc = rest % (D / ROWS);
            float4 *base = (float4 *)(c + (long)mat * D * D + (long)rc * ROWS * D + chunk * 128) + lane;
#pragma unroll 1
            for (int i = 0; i < ROWS; i += G) update<G>(base + (long)i * (D / 4), D / 4, acc);
        }
    }
    if (acc.x == -1.0f) out[0] = acc.y; // never: keeps the work
}

int main()
{
    int sms;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const long bytes = (long)MATS * D * D * 4;
    float *c, *out;
    CHECK(cudaMalloc(&c, bytes));
    CHECK(cudaMalloc(&out, 4));
    CHECK(cudaMemset(c, 0x3c, bytes));
    const double rw = 2.0 * bytes / 1e9; // read + written
    for (int ctas : {87, sms}) {
        printf("%3d CTAs: chunk tasks G=8 %7.1f GB/s, G=16 %7.1f; row tasks G=8 %7.1f, G=16 %7.1f\n", ctas,
               rw / time_ms([&] { tasks<false, 8><<<ctas, THREADS>>>(c, out); }, 10) * 1e3,
               rw / time_ms([&] { tasks<false, 16><<<ctas, THREADS>>>(c, out); }, 10) * 1e3,
               rw / time_ms([&] { tasks<true, 8><<<ctas, THREADS>>>(c, out); }, 10) * 1e3,
               rw / time_ms([&] { tasks<true, 16><<<ctas, THREADS>>>(c, out); }, 10) * 1e3);
    }
    return 0;
}
