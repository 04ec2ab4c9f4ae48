// state-phase-probe.cu: what separates the mLSTM memory phase of the fused kernel at batch 50
// (402-449 us a block) from its access pattern alone (293 us, state-pattern-probe.cu)?
// Build: nvcc -O3 -arch=sm_90 -o state-phase-probe state-phase-probe.cu
//
// The phase's work as the kernel does it: 50 entries x 8 heads of a 512 x 512 fp32 matrix C,
// tasks of 64 rows x 128 columns (32 a head), C = f C + k[i] v[j] in place and a part of q C
// (a float4 a lane) stored a task, on 87 CTAs of 8 warps. Each variant adds one of the kernel's
// circumstances to the one before:
//   packed:   the 400 matrices one after the other (the probe of run 110, at 64 rows)
//   slots:    an entry's 8 matrices 153.5 MB after the entry before (a symbol's state slot)
//   +stream:  45 more CTAs read 96 MB once meanwhile (the MLP ups' weights beside the phase)
//   +count:   an acquire-release add a task on its head's count (the kernel of run 112)
//   runs:     a warp takes a contiguous run of its CTA's tasks and counts a head's with one add
//   runs, no count
#include "probe.cuh"

constexpr int THREADS = 256, WARPS = THREADS / 32, D = 512, ROWS = 64, HEADS = 8, ENTRIES = 50;
constexpr int CHUNKS = D / 128, RC = D / ROWS, TASKS_HEAD = CHUNKS * RC, TASKS = ENTRIES * HEADS * TASKS_HEAD;
constexpr int STATE_CTAS = 87, STREAM_CTAS = 45;
constexpr long SLOT_BYTES = 153500000L / 256 * 256, STREAM_BYTES = 96L << 20;

enum Count { NONE, PER_TASK, PER_RUN };

struct Args {
    float *c;        // entry e, head h: c + e * entry_floats + h * D * D
    long entry_floats;
    const float4 *w; // STREAM_BYTES streamed by the CTAs past STATE_CTAS
    float *parts;    // [entry][head][RC][D]
    unsigned *counts; // [entry][head]
    float *out;
    bool stream_only; // the state CTAs do nothing
};

// One task: rows rc * ROWS .. of column chunk `chunk` of matrix (e, h); 8 float4 a lane in flight.
__device__ void task(const Args &a, int t)
{
    const int lane = threadIdx.x & 31;
    const int head = t / TASKS_HEAD, e = head / HEADS, h = head % HEADS;
    const int chunk = (t / RC) % CHUNKS, rc = t % RC;
    float4 *S = (float4 *)(a.c + e * a.entry_floats + (long)h * D * D + (long)rc * ROWS * D + chunk * 128) + lane;
    const float4 v = make_float4(1e-3f, 2e-3f, 3e-3f, 4e-3f);
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 1
    for (int i0 = 0; i0 < ROWS; i0 += 8) {
        float4 r[8];
#pragma unroll
        for (int u = 0; u < 8; u++) r[u] = __ldcs(S + (long)(i0 + u) * (D / 4));
#pragma unroll
        for (int u = 0; u < 8; u++) {
            const float ki = 1e-3f * (i0 + u), qi = 1e-2f * (i0 + u);
            r[u] = make_float4(0.999f * r[u].x + ki * v.x, 0.999f * r[u].y + ki * v.y, 0.999f * r[u].z + ki * v.z,
                               0.999f * r[u].w + ki * v.w);
            __stcs(S + (long)(i0 + u) * (D / 4), r[u]);
            acc = make_float4(acc.x + qi * r[u].x, acc.y + qi * r[u].y, acc.z + qi * r[u].z, acc.w + qi * r[u].w);
        }
    }
    *((float4 *)(a.parts + ((long)head * RC + rc) * D + chunk * 128) + lane) = acc;
}

__device__ void count_add(unsigned *count, unsigned n)
{
    __syncwarp();
    unsigned old = 0;
    if ((threadIdx.x & 31) == 0) asm volatile("atom.add.acq_rel.gpu.u32 %0, [%1], %2;" : "=r"(old) : "l"(count), "r"(n) : "memory");
    old = __shfl_sync(0xffffffffu, old, 0);
    if ((threadIdx.x & 31) == 0 && old + n == TASKS_HEAD) *(volatile unsigned *)count = 0;
}

template <Count COUNT, bool RUNS> __global__ void __launch_bounds__(THREADS, 1) phase(Args a)
{
    const int warp = threadIdx.x >> 5;
    if (blockIdx.x >= STATE_CTAS) { // the weights streamed beside the phase, 16 float4 a lane in flight
        const long n4 = STREAM_BYTES / 16, per = n4 / (gridDim.x - STATE_CTAS);
        const float4 *w = a.w + (blockIdx.x - STATE_CTAS) * per;
        float s = 0.0f;
        for (long i = threadIdx.x; i < per; i += 16L * THREADS) {
            float4 r[16];
#pragma unroll
            for (int u = 0; u < 16; u++) r[u] = i + u * THREADS < per ? __ldcs(w + i + u * THREADS) : float4{};
#pragma unroll
            for (int u = 0; u < 16; u++) s += r[u].x + r[u].w;
        }
        if (s == -1.0f) a.out[0] = s;
        return;
    }
    if (a.stream_only) return;
    const int lo = (int)((long)TASKS * blockIdx.x / STATE_CTAS), hi = (int)((long)TASKS * (blockIdx.x + 1) / STATE_CTAS);
    if (!RUNS) {
        for (int t = lo + warp; t < hi; t += WARPS) {
            task(a, t);
            if (COUNT == PER_TASK) count_add(a.counts + t / TASKS_HEAD, 1);
        }
        return;
    }
    const int first = lo + (int)((long)(hi - lo) * warp / WARPS), end = lo + (int)((long)(hi - lo) * (warp + 1) / WARPS);
    unsigned done = 0;
    for (int t = first; t < end; t++) {
        task(a, t);
        done++;
        if (COUNT == PER_RUN && ((t + 1) % TASKS_HEAD == 0 || t + 1 == end)) {
            count_add(a.counts + t / TASKS_HEAD, done);
            done = 0;
        }
    }
}

int main()
{
    const long mat_bytes = (long)HEADS * D * D * 4, state = (long)ENTRIES * mat_bytes;
    Args packed{}, slots{};
    float *c;
    CHECK(cudaMalloc(&c, ENTRIES * SLOT_BYTES));
    CHECK(cudaMemset(c, 0x3c, ENTRIES * SLOT_BYTES));
    CHECK(cudaMalloc((void **)&packed.w, STREAM_BYTES));
    CHECK(cudaMemset((void *)packed.w, 0x3c, STREAM_BYTES));
    CHECK(cudaMalloc(&packed.parts, (long)ENTRIES * HEADS * RC * D * 4));
    CHECK(cudaMalloc(&packed.counts, ENTRIES * HEADS * 4));
    CHECK(cudaMemset(packed.counts, 0, ENTRIES * HEADS * 4));
    CHECK(cudaMalloc(&packed.out, 4));
    packed.c = c;
    packed.entry_floats = mat_bytes / 4;
    slots = packed;
    slots.entry_floats = SLOT_BYTES / 4;
    const double gb = 2.0 * state / 1e9; // C read and written
    const auto row = [&](const char *name, float us) { printf("%-34s %7.1f us  %6.0f GB/s\n", name, us, gb / us * 1e6); };
    const int all = STATE_CTAS + STREAM_CTAS;
    row("packed", 1e3f * time_ms([&] { phase<NONE, false><<<STATE_CTAS, THREADS>>>(packed); }, 10));
    row("slots", 1e3f * time_ms([&] { phase<NONE, false><<<STATE_CTAS, THREADS>>>(slots); }, 10));
    row("slots +stream", 1e3f * time_ms([&] { phase<NONE, false><<<all, THREADS>>>(slots); }, 10));
    row("slots +stream +count a task", 1e3f * time_ms([&] { phase<PER_TASK, false><<<all, THREADS>>>(slots); }, 10));
    row("slots +stream, runs, count a run", 1e3f * time_ms([&] { phase<PER_RUN, true><<<all, THREADS>>>(slots); }, 10));
    row("slots +stream, runs, no count", 1e3f * time_ms([&] { phase<NONE, true><<<all, THREADS>>>(slots); }, 10));
    Args stream = slots;
    stream.stream_only = true;
    row("stream alone (45 CTAs)", 1e3f * time_ms([&] { phase<NONE, false><<<all, THREADS>>>(stream); }, 10));
    return 0;
}
