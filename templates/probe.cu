// ---- probe.cu: how fast the fused kernel's weight access pattern can stream memory ----------
// Not part of the generated kernel: `stepfuse bench` compiles it on its own and runs both
// kernels over a matrix of `rows` rows of `ld` floats (ld a multiple of CHUNK), one CTA of
// 8 warps per SM as the fused kernel. Each CTA takes a contiguous range of rows, each warp
// groups of ROWS rows, in chunks of CHUNK columns (8 KB a warp), as proj_pass does; the
// kernels only add up what they read.
//   probe_registers: a lane loads its 16 float4 of a chunk into registers (proj_pass).
//   probe_bulk: lane 0 of each warp keeps SLOTS chunks in flight into shared memory with
//               bulk copies (cp.async.bulk, completion counted on an mbarrier per slot);
//               the warp adds up a chunk from shared memory and lane 0 refills its slot.

constexpr int THREADS = 256, WARPS = THREADS / 32;
constexpr int ROWS = 4, CHUNK = 512; // a warp's chunk: ROWS rows x CHUNK floats
constexpr int SLOTS = 3;             // chunks in flight per warp (probe_bulk)
constexpr int PROBE_BULK_SMEM = WARPS * SLOTS * ROWS * CHUNK * 4; // bytes; runtime/stream_probe.c launches with it
static_assert(PROBE_BULK_SMEM == 8 * 3 * 4 * 512 * 4, "runtime/stream_probe.c: PROBE_BULK_SMEM");

__device__ __forceinline__ float4 ld_stream(const float *q)
{
    float4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.f32 {%0, %1, %2, %3}, [%4];"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "l"(q));
    return v;
}

__device__ __forceinline__ float sum4(float4 v) { return (v.x + v.y) + (v.z + v.w); }

// Rows [lo, hi) of this CTA.
__device__ __forceinline__ void cta_rows(int rows, int &lo, int &hi)
{
    lo = (int)((long)rows * blockIdx.x / gridDim.x);
    hi = (int)((long)rows * (blockIdx.x + 1) / gridDim.x);
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) probe_registers(const float *w, int rows, int ld, float *out)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int lo, hi;
    cta_rows(rows, lo, hi);
    float acc = 0.0f;
    for (int r0 = lo + warp * ROWS; r0 < hi; r0 += WARPS * ROWS)
        for (int c = lane * 4; c < ld; c += CHUNK) {
            float4 v[ROWS][4];
#pragma unroll
            for (int r = 0; r < ROWS; r++)
#pragma unroll
                for (int u = 0; u < 4; u++)
                    v[r][u] = r0 + r < hi ? ld_stream(w + (long)(r0 + r) * ld + c + 128 * u) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
            for (int r = 0; r < ROWS; r++)
#pragma unroll
                for (int u = 0; u < 4; u++) acc += sum4(v[r][u]);
        }
    if (acc == -1.0f) out[0] = acc; // never (the matrix is positive): keeps the loads
}

__device__ __forceinline__ unsigned smem_addr(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

// Slot `slot` of this warp gets chunk k of the warp's sequence (row group k / chunks of a
// row, column chunk k % chunks): one bulk copy per row, all counted on the slot's mbarrier.
__device__ __forceinline__ void issue_chunk(const float *w, int ld, int r0, int hi, int c, float *dst,
                                            unsigned long long *bar)
{
    const int n = min(ROWS, hi - r0);
    asm volatile("{ .reg .b64 st; mbarrier.arrive.expect_tx.shared::cta.b64 st, [%0], %1; }" ::"r"(smem_addr(bar)),
                 "r"(n * CHUNK * 4)
                 : "memory");
    for (int r = 0; r < n; r++)
        asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                         smem_addr(dst + r * CHUNK)),
                     "l"(w + (long)(r0 + r) * ld + c), "r"(CHUNK * 4), "r"(smem_addr(bar))
                     : "memory");
}

__device__ __forceinline__ void wait_parity(unsigned long long *bar, unsigned parity)
{
    unsigned done = 0;
    while (!done)
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done)
                     : "r"(smem_addr(bar)), "r"(parity)
                     : "memory");
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) probe_bulk(const float *w, int rows, int ld, float *out)
{
    extern __shared__ float4 probe_ring4[]; // [WARPS][SLOTS][ROWS][CHUNK] floats
    __shared__ unsigned long long full[WARPS][SLOTS];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int lo, hi;
    cta_rows(rows, lo, hi);
    float *ring = (float *)probe_ring4 + warp * SLOTS * ROWS * CHUNK;
    const int per_row = ld / CHUNK, first = lo + warp * ROWS;
    const int groups = first < hi ? (hi - first + WARPS * ROWS - 1) / (WARPS * ROWS) : 0, chunks = groups * per_row;
    if (lane == 0) {
        for (int s = 0; s < SLOTS; s++)
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem_addr(&full[warp][s])) : "memory");
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        for (int k = 0; k < min(SLOTS, chunks); k++)
            issue_chunk(w, ld, first + k / per_row * WARPS * ROWS, hi, k % per_row * CHUNK,
                        ring + k % SLOTS * ROWS * CHUNK, &full[warp][k % SLOTS]);
    }
    __syncwarp();
    float acc = 0.0f;
    for (int k = 0; k < chunks; k++) {
        const int slot = k % SLOTS, r0 = first + k / per_row * WARPS * ROWS;
        wait_parity(&full[warp][slot], (unsigned)(k / SLOTS) & 1u);
        const float *chunk = ring + slot * ROWS * CHUNK;
        for (int r = 0; r < min(ROWS, hi - r0); r++)
#pragma unroll
            for (int u = 0; u < 4; u++) acc += sum4(*(const float4 *)(chunk + r * CHUNK + lane * 4 + 128 * u));
        __syncwarp(); // every lane has read the slot
        const int next = k + SLOTS;
        if (lane == 0 && next < chunks) {
            asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); // the reads before the copy's writes
            issue_chunk(w, ld, first + next / per_row * WARPS * ROWS, hi, next % per_row * CHUNK, ring + slot * ROWS * CHUNK,
                        &full[warp][slot]);
        }
    }
    if (acc == -1.0f) out[0] = acc;
}
