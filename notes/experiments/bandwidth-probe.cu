// bandwidth-probe.cu: two questions about the H100's memory, outside the step kernel
// (notes/gpu.md, run 105). Build: nvcc -O3 -arch=sm_90 -o bandwidth-probe bandwidth-probe.cu
//
// 1. Does the weight stream of the projections (a warp: 16 rows x 256 bytes a chunk, the
//    next chunk loaded before this one is used, 4 KB a warp in flight) run slower with
//    8-byte loads (the bf16 path: 16 loads a lane a chunk) than with 16-byte loads (the fp32
//    path: 8 loads a lane a chunk)?
// 2. How fast can a state matrix be read and written back in place (the mLSTM memory,
//    RetNet's retention), against a copy from one buffer to another and cudaMemcpy?
#include "probe.cuh"

constexpr int THREADS = 256;

__device__ __forceinline__ float4 ld16(const char *q)
{
    float4 v;
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.f32 {%0, %1, %2, %3}, [%4];"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "l"(q));
    return v;
}
__device__ __forceinline__ uint2 ld8(const char *q)
{
    uint2 v;
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(q));
    return v;
}

// Rows of `ld` bytes; each CTA a contiguous range of 16-row tiles, each warp a tile at a
// time, 256 bytes of each of its 16 rows a chunk: lane (g, t4) rows g and g + 8, its bytes
// at 16 t4 + 64 u (16-byte loads, u < 4) or 8 t4 + 32 u (8-byte loads, u < 8).
template <bool WIDE> __global__ void __launch_bounds__(THREADS, 1) stream_rows(const char *w, int tiles, long ld, float *out)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int lo = (int)((long)tiles * blockIdx.x / gridDim.x), hi = (int)((long)tiles * (blockIdx.x + 1) / gridDim.x);
    float acc = 0.0f;
    for (int tile = lo + warp; tile < hi; tile += THREADS / 32) {
        const char *ra = w + ((long)tile * 16 + g) * ld, *rb = ra + 8 * ld;
        if (WIDE) {
            float4 a[4], b[4];
            for (int u = 0; u < 4; u++) a[u] = ld16(ra + 16 * t4 + 64 * u), b[u] = ld16(rb + 16 * t4 + 64 * u);
            for (long c = 256; c <= ld; c += 256) {
                float s = 0.0f;
                for (int u = 0; u < 4; u++) s += (a[u].x + a[u].y) + (b[u].z + b[u].w);
                if (c < ld)
                    for (int u = 0; u < 4; u++) a[u] = ld16(ra + c + 16 * t4 + 64 * u), b[u] = ld16(rb + c + 16 * t4 + 64 * u);
                acc += s;
            }
        } else {
            uint2 a[8], b[8];
            for (int u = 0; u < 8; u++) a[u] = ld8(ra + 8 * t4 + 32 * u), b[u] = ld8(rb + 8 * t4 + 32 * u);
            for (long c = 256; c <= ld; c += 256) {
                unsigned s = 0;
                for (int u = 0; u < 8; u++) s += (a[u].x ^ b[u].y);
                if (c < ld)
                    for (int u = 0; u < 8; u++) a[u] = ld8(ra + c + 8 * t4 + 32 * u), b[u] = ld8(rb + c + 8 * t4 + 32 * u);
                acc += (float)s;
            }
        }
    }
    if (acc == -1.0f) out[0] = acc; // never: keeps the loads
}

// n float4 per thread-group pass: each thread 8 float4 in flight (outer_update's groups of 8),
// read streaming, scaled, written streaming to dst (dst == src: in place).
__global__ void __launch_bounds__(THREADS, 1) rmw(const float4 *src, float4 *dst, long n)
{
    const long stride = (long)gridDim.x * THREADS;
    for (long i0 = (long)blockIdx.x * THREADS + threadIdx.x; i0 < n; i0 += 8 * stride) {
        float4 r[8];
#pragma unroll
        for (int u = 0; u < 8; u++)
            if (i0 + u * stride < n) r[u] = __ldcs(src + i0 + u * stride);
#pragma unroll
        for (int u = 0; u < 8; u++)
            if (i0 + u * stride < n) {
                float4 v = r[u];
                v.x = 0.999f * v.x + 1e-3f;
                v.y = 0.999f * v.y + 1e-3f;
                v.z = 0.999f * v.z + 1e-3f;
                v.w = 0.999f * v.w + 1e-3f;
                __stcs(dst + i0 + u * stride, v);
            }
    }
}

int main()
{
    int sms;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const long bytes = 1L << 30; // 1 GiB: well past L2
    char *a, *b;
    float *out;
    CHECK(cudaMalloc(&a, bytes));
    CHECK(cudaMalloc(&b, bytes));
    CHECK(cudaMalloc(&out, 4));
    CHECK(cudaMemset(a, 0x3c, bytes));
    CHECK(cudaMemset(b, 0x3c, bytes));
    const int iters = 10;
    // 1. the weight stream: rows of 8 KB (H = 2048 fp32), of 4 KB, of 16 KB
    for (long ld : {4096L, 8192L, 16384L}) {
        const int tiles = (int)(bytes / (16 * ld));
        const float t16 = time_ms([&] { stream_rows<true><<<sms, THREADS>>>(a, tiles, ld, out); }, iters);
        const float t8 = time_ms([&] { stream_rows<false><<<sms, THREADS>>>(a, tiles, ld, out); }, iters);
        const double gb = (double)tiles * 16 * ld / 1e9;
        printf("rows of %5ld bytes: 16-byte loads %7.1f GB/s, 8-byte loads %7.1f GB/s\n", ld, gb / t16 * 1e3,
               gb / t8 * 1e3);
    }
    // 2. in place against a copy (bytes read + written)
    const long n4 = bytes / 16;
    const float tin = time_ms([&] { rmw<<<sms, THREADS>>>((const float4 *)a, (float4 *)a, n4); }, iters);
    const float tcp = time_ms([&] { rmw<<<sms, THREADS>>>((const float4 *)a, (float4 *)b, n4); }, iters);
    const float tmc = time_ms([&] { CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); }, iters);
    const double rw = 2.0 * bytes / 1e9;
    printf("read + write 1 GiB: in place %7.1f GB/s, to another buffer %7.1f GB/s, cudaMemcpy %7.1f GB/s\n",
           rw / tin * 1e3, rw / tcp * 1e3, rw / tmc * 1e3);
    // 2b. in place at 2 CTAs an SM (more bytes in flight)
    const float tin2 = time_ms([&] { rmw<<<2 * sms, THREADS>>>((const float4 *)a, (float4 *)a, n4); }, iters);
    const float tin4 = time_ms([&] { rmw<<<4 * sms, THREADS>>>((const float4 *)a, (float4 *)a, n4); }, iters);
    printf("in place, 2 and 4 CTAs an SM: %7.1f / %7.1f GB/s\n", rw / tin2 * 1e3, rw / tin4 * 1e3);
    return 0;
}
