// ---- common.cu: the pieces every tower shares --------------------------------------------
// Tower barrier, reductions, activations, causal conv, norm statistics and the one batched
// projection mechanism (weight rows streamed once, applied to every symbol of the batch).
// Sizes, the memory layout and the stage table are generated constants (marked @@...@@).

// Four consecutive fp16 weights of a matrix row as stored (precision.weights fp16; bf16 ones
// are a uint2, fp32 ones a float4).
struct Half4 {
    unsigned x, y;
};

// @@constants@@

// Scratch region of the batch: entry b's vector starts at off + b * stride (floats).
struct Buf {
    long off;
    int stride;
};

// @@layout@@

struct Params {
    const char *__restrict__ w;  // weights, WEIGHT_BYTES, generated layout (byte offsets)
    float *state;                // [max_symbols][SLOT_FLOATS]
    float *scr;                  // activations, SCRATCH_FLOATS
    const int *slots;            // [nb] state slot of each batch entry (distinct)
    const float *feats;          // [nb][F4], zero padded
    float *out;                  // [nb][4] in tower order
    unsigned *bar;               // the towers' barrier words, a 128-byte line each (tower_arrive), zero at first launch
    int nb;                      // batch size, 1..MAX_BATCH
    int tower_weight[NUM_TOWERS]; // per mille: the towers' shares of the grid (tower_group), by batch size
    unsigned long long *trace;   // nullptr, or per-stage times (trace_at)
};

// Per-CTA shared memory, one copy for the whole kernel (a __shared__ array inside a
// template would be one copy per instantiation).
__shared__ float rms_smem[MAX_BATCH];             // 1 / RMS of each entry's input (rms_stats)
__shared__ float warp_vecs[WARPS][2][STATE_ROWS]; // per warp: two row vectors
// dynamic: STAGE_FLOATS of staged projection inputs, then SUMS_WARP running sums per warp
extern __shared__ float4 stage_smem4[];
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
// State of block l of tower Lk (name: offset within the block), in floats from a slot's start.
template <class Lk> __device__ __forceinline__ long st_off(int l, long name)
{
    return Lk::st_base + (long)l * Lk::st_block + name;
}
// That state of batch entry b.
template <class Lk> __device__ __forceinline__ float *st(const Params &p, int b, int l, long name)
{
    return p.state + (long)p.slots[b] * SLOT_FLOATS + st_off<Lk>(l, name);
}
// A state matrix of batch entry b, in its stored precision.
template <class Lk> __device__ __forceinline__ StateElem *stm(const Params &p, int b, int l, long name)
{
    return (StateElem *)st<Lk>(p, b, l, name);
}

// Activations written earlier in this launch are read around L1 (.cg): other SMs wrote them.
__device__ __forceinline__ float4 ld_act4(const float *q) { return __ldcg((const float4 *)q); }
__device__ __forceinline__ float ld_act(const float *q) { return __ldcg(q); }
// A weight tensor stored in fp32 (norms, biases, conv taps...) at byte offset `off`.
__device__ __forceinline__ const float *wvec(const Params &p, long off) { return (const float *)(p.w + off); }
// Read-only loads that do not allocate in L1: each weight is read once per step. L2 fetches
// WEIGHT_L2_PREFETCH bytes around each (gen/emit.h).
__device__ __forceinline__ float4 ld_no_l1(const float4 *q)
{
    float4 v;
    asm("ld.global.nc.L1::no_allocate" WEIGHT_L2_PREFETCH ".v4.f32 {%0, %1, %2, %3}, [%4];"
        : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
        : "l"(q));
    return v;
}
__device__ __forceinline__ uint2 ld_no_l1(const uint2 *q)
{
    uint2 v;
    asm("ld.global.nc.L1::no_allocate" WEIGHT_L2_PREFETCH ".v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(q));
    return v;
}
__device__ __forceinline__ uint4 ld_no_l1(const uint4 *q)
{
    uint4 v;
    asm("ld.global.nc.L1::no_allocate" WEIGHT_L2_PREFETCH ".v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(q));
    return v;
}
// 4 stored matrix weights; 8 16-bit ones (load_tile_chunk's 16-byte loads).
template <class T> __device__ __forceinline__ T ld_raw(const T *q) { return WEIGHTS_NO_L1 ? ld_no_l1(q) : __ldg(q); }
__device__ __forceinline__ Half4 ld_raw(const Half4 *q)
{
    const uint2 v = ld_raw((const uint2 *)q);
    return Half4{v.x, v.y};
}
// Elements i .. i + 3 (i a multiple of 4) of a matrix at byte offset `off`, as stored.
__device__ __forceinline__ MatRaw ld_mat4(const Params &p, long off, long i)
{
    return ld_raw((const MatRaw *)(p.w + off) + i / 4);
}
// Four stored values (weights, or state elements) as floats, each exactly: fp32 as is, bf16
// the top half of an fp32, fp16 converted.
__device__ __forceinline__ float4 unpack(float4 w) { return w; }
__device__ __forceinline__ float4 unpack(uint2 w)
{
    return make_float4(__uint_as_float(w.x << 16), __uint_as_float(w.x & 0xffff0000u), __uint_as_float(w.y << 16),
                       __uint_as_float(w.y & 0xffff0000u));
}
// volatile: the projections widen a chunk's weights in their entry-tile loop, and hoisted out
// of it the widened chunk took 64 registers more (20 bytes of spills)
__device__ __forceinline__ float half_to_float(unsigned short h)
{
    float f;
    asm volatile("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ float4 unpack(Half4 w)
{
    return make_float4(half_to_float(w.x & 0xffffu), half_to_float(w.x >> 16), half_to_float(w.y & 0xffffu),
                       half_to_float(w.y >> 16));
}

// The state matrices (mLSTM memory, RetNet retention, Mamba2's SSM state: 144 MB of a symbol's
// 153.5 at full size) are read and written once a step: streamed (evict-first), they leave L2
// to what is read again (notes/gpu.md, run 89: batch 1 -5%, batch 8 -4%). The mLSTM memory's
// and the SSM state's elements are StateElem: fp32, or bf16 (precision.state) widened exactly
// on load and rounded to nearest on store; RetNet's are fp32. st_state4 returns the values
// as stored, which is what the step reads on.
__device__ __forceinline__ float4 ld_state4(const float *q) { return __ldcs((const float4 *)q); }
__device__ __forceinline__ float4 st_state4(float *q, float4 v)
{
    __stcs((float4 *)q, v);
    return v;
}
__device__ __forceinline__ float4 ld_state4(const unsigned short *q) { return unpack(__ldcs((const uint2 *)q)); }
__device__ __forceinline__ uint2 bf16x4(float4 v)
{
    uint2 u; // cvt.rn.bf16x2.f32 d, a, b puts a in the upper half
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(u.x) : "f"(v.y), "f"(v.x));
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(u.y) : "f"(v.w), "f"(v.z));
    return u;
}
__device__ __forceinline__ float4 st_state4(unsigned short *q, float4 v)
{
    const uint2 u = bf16x4(v);
    __stcs((uint2 *)q, u);
    return unpack(u);
}
// The values st_state4 would store and return, without storing them.
__device__ __forceinline__ float4 as_stored4(const float *, float4 v) { return v; }
__device__ __forceinline__ float4 as_stored4(const unsigned short *, float4 v) { return unpack(bf16x4(v)); }

// ---- per-stage trace ------------------------------------------------------------------------
// p.trace non-null; the normal path pays one uniform branch per stage. Thread 0 of each CTA
// writes %globaltimer (ns, one clock for all SMs) to p.trace[(row * gridDim.x + blockIdx.x) *
// 2 + i], (NUM_STAGES + 1) * gridDim.x * 2 values: row 0 = {step start, step start}, row s + 1
// = {stage s done by every warp of the CTA; the CTA past stage s's tower barrier} (the last
// stage has no barrier: past it when done; a stage where the CTA's tower is idle: twice the
// time it passed the barrier before); then NUM_STAGES * gridDim.x values: the tower whose
// phase the CTA ran in each stage (NUM_TOWERS: none); then gridDim.x values: the SM each CTA
// ran on, and gridDim.x values: the CTA's tower (kernel.cu).
__device__ __forceinline__ unsigned long long global_ns()
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__device__ __forceinline__ unsigned long long &trace_at(const Params &p, int row, int i)
{
    return p.trace[(row * gridDim.x + blockIdx.x) * 2 + i];
}

// ---- tower barrier ------------------------------------------------------------------------
// The towers share no data within a step, so a tower's CTAs (its group, kernel.cu) wait only
// for each other, on the tower's own word. One atomic add per CTA: the group's first CTA adds
// 2^31 - (CTAs - 1), every other CTA 1, so the last arrival flips the word's top bit (and
// leaves its low bits as they were, for the next barrier and the next launch, whatever the
// group's size then). The add releases the CTA's writes (ordered before it by the CTA
// barrier) and acquires those of the CTAs before it; the last arrival has seen them all,
// every other CTA waits until it reads the bit flipped (an acquire). Needs every CTA
// resident (cooperative launch).
// In two halves: a CTA arrives when its stage is done and waits at the next stage's first
// read of anything another CTA writes. A projection asks for its first weights in between
// (read-only, written by no stage), so that their latency overlaps the barrier's.
__shared__ int bar_stage;      // the stage whose barrier this CTA arrived at and has not passed, or -1
__shared__ unsigned bar_old;   // the barrier word before thread 0's add
__shared__ unsigned *bar_word; // the word of the CTA's tower (set_barrier)
__shared__ unsigned bar_add;   // the CTA's add to it

// Thread 0: the CTA is one of the `ctas` CTAs of `tower`, the first of them or not. The words
// are 32 unsigneds apart (the engine's BARRIER_WORDS).
__device__ __forceinline__ void set_barrier(const Params &p, int tower, bool first, int ctas)
{
    bar_word = p.bar + 32 * tower;
    bar_add = first ? 0x80000000u - (ctas - 1) : 1u;
}

// Called by every thread of the CTA; returns at once where no barrier is pending.
__device__ void tower_wait(const Params &p)
{
    const int s = bar_stage;
    if (s < 0) return;
    if (threadIdx.x == 0) {
        const unsigned old = bar_old, add = bar_add;
        if (((old ^ (old + add)) & 0x80000000u) == 0) { // not the last arrival, which flipped the bit
            unsigned now;
            do asm volatile("ld.acquire.gpu.u32 %0, [%1];" : "=r"(now) : "l"(bar_word) : "memory");
            while (((old ^ now) & 0x80000000u) == 0);
        }
        if (p.trace) trace_at(p, s + 1, 1) = global_ns();
    }
    __syncthreads(); // every thread has read bar_stage, and thread 0 has acquired
    bar_stage = -1;  // the same value from every thread
}

// Stage s done: pass the barrier before (a CTA with no work in s has not), then arrive.
__device__ void tower_arrive(const Params &p, int s)
{
    tower_wait(p);
    __syncthreads(); // the CTA's writes of stage s are ordered before the add
    if (threadIdx.x == 0) {
        const unsigned add = bar_add;
        unsigned old;
        asm volatile("atom.add.acq_rel.gpu.u32 %0, [%1], %2;" : "=r"(old) : "l"(bar_word), "r"(add) : "memory");
        bar_old = old;
        bar_stage = s;
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

// N sums over the CTA at once; every thread gets the totals in v. Deterministic order: each
// thread's own terms, the warp's tree, then the warps in order.
template <int N> __device__ void block_sums(float (&v)[N])
{
    __shared__ float part[WARPS][N];
#pragma unroll
    for (int i = 0; i < N; i++) v[i] = warp_sum(v[i]);
    __syncthreads(); // part may still be read from a previous call
    if ((threadIdx.x & 31) == 0)
#pragma unroll
        for (int i = 0; i < N; i++) part[threadIdx.x >> 5][i] = v[i];
    __syncthreads();
#pragma unroll
    for (int i = 0; i < N; i++) {
        float t = 0.0f;
        for (int w = 0; w < WARPS; w++) t += part[w][i];
        v[i] = t;
    }
}
__device__ __forceinline__ float block_sum(float v)
{
    float a[1] = {v};
    block_sums(a);
    return a[0];
}

// ---- an H-long vector of one entry, in the CTA's registers ---------------------------------
// Thread t holds elements t + THREADS k in its slots k (zero past H): a CTA-per-entry phase
// reads each vector from L2 once and takes its statistics from registers, rather than paying
// an L2 round trip for each pass over it (notes/gpu.md, run 101).
constexpr int HPT = (H + THREADS - 1) / THREADS;
__device__ __forceinline__ int h_col(int k) { return threadIdx.x + THREADS * k; }
__device__ __forceinline__ void h_load(float (&x)[HPT], const float *src)
{
#pragma unroll
    for (int k = 0; k < HPT; k++) x[k] = h_col(k) < H ? ld_act(src + h_col(k)) : 0.0f;
}
// A weight vector of H (read-only: the non-coherent path). A CTA-per-entry phase loads the
// vectors it reads before its first store, so that the loads are in flight together: loads
// after a store wait for it (they may alias), a round trip each (notes/gpu.md, run 173; the
// sLSTM conv's taps and state aside, which held for every slot spill).
__device__ __forceinline__ void h_load_w(float (&x)[HPT], const float *src)
{
#pragma unroll
    for (int k = 0; k < HPT; k++) x[k] = h_col(k) < H ? __ldg(src + h_col(k)) : 0.0f;
}
__device__ __forceinline__ void h_store(float *dst, const float (&x)[HPT])
{
#pragma unroll
    for (int k = 0; k < HPT; k++)
        if (h_col(k) < H) dst[h_col(k)] = x[k];
}
// The group of slot k's element in groups of G (known at compile time where G is a multiple
// of THREADS).
template <int G> __device__ __forceinline__ int h_group(int k)
{
    return G % THREADS == 0 ? THREADS * k / G : h_col(k) / G;
}
// v[the group of slot k's element], by selection: an array in registers indexed at run time
// would be moved to local memory.
template <int G, int N> __device__ __forceinline__ float h_group_value(const float (&v)[N], int k)
{
    float r = v[0];
#pragma unroll
    for (int g = 1; g < N; g++)
        if (h_group<G>(k) == g) r = v[g];
    return r;
}
// Mean and 1/sqrt(variance + eps) of the elements of x in N groups of H / N (N = 1: the whole
// vector), the mean first (as the reference's LayerNorm and GroupNorm).
template <int N>
__device__ void h_group_stats(const float (&x)[HPT], float eps, float (&mean)[N], float (&rstd)[N])
{
    constexpr int G = H / N;
    float s[N] = {};
#pragma unroll
    for (int k = 0; k < HPT; k++)
#pragma unroll
        for (int g = 0; g < N; g++)
            if (h_col(k) < H && h_group<G>(k) == g) s[g] += x[k];
    block_sums(s);
#pragma unroll
    for (int g = 0; g < N; g++) mean[g] = s[g] / G, s[g] = 0.0f;
#pragma unroll
    for (int k = 0; k < HPT; k++)
#pragma unroll
        for (int g = 0; g < N; g++)
            if (h_col(k) < H && h_group<G>(k) == g) s[g] += (x[k] - mean[g]) * (x[k] - mean[g]);
    block_sums(s);
#pragma unroll
    for (int g = 0; g < N; g++) rstd[g] = 1.0f / sqrtf(s[g] / G + eps);
}

// ---- activations (exact forms of MODEL.md) -------------------------------------------------
__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float siluf(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float geluf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float softplusf(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float logsigmoidf(float x) { return fminf(x, 0.0f) - log1pf(expf(-fabsf(x))); }
__device__ __forceinline__ float reluf(float x) { return fmaxf(x, 0.0f); }

// ---- causal conv of one channel ------------------------------------------------------------
// Channel c of a causal conv layer: taps rows of ld4(K) (the channel's at taps + c * ld4(K)),
// bias[c], state K - 1 values a channel (oldest first); window = [state, x], and the
// channel's state shifts by one.
template <int K>
__device__ __forceinline__ float conv_step(const float *taps, const float *bias, float *state, int c, float x)
{
    const float *w = taps + c * ld4(K);
    float *s = state + c * (K - 1);
    float acc = bias[c];
#pragma unroll
    for (int j = 0; j < K - 1; j++) acc += w[j] * s[j];
    acc += w[K - 1] * x;
#pragma unroll
    for (int j = 0; j < K - 2; j++) s[j] = s[j + 1];
    s[K - 2] = x;
    return acc;
}

// ---- asynchronous copies to shared memory (cp.async) ------------------------------------------
__device__ __forceinline__ void cp_async16(float *dst, const float *src)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"((unsigned)__cvta_generic_to_shared(dst)),
                 "l"(src)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Wait until at most N of this thread's committed copy groups are in flight.
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

// A lane's 4 elements of a state row copied to shared memory by cp.async (evict-first in L2, as
// the loads of ld_state4): 16 bytes of fp32, 8 of bf16 (cp.async.cg takes 16 bytes only).
__device__ __forceinline__ unsigned long long evict_first_policy()
{
    unsigned long long pol;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
    return pol;
}
__device__ __forceinline__ void cp_async_state4(float4 *dst, const float *src, unsigned long long pol)
{
    asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;" ::"r"(
                     (unsigned)__cvta_generic_to_shared(dst)),
                 "l"(src), "l"(pol)
                 : "memory");
}
__device__ __forceinline__ void cp_async_state4(uint2 *dst, const unsigned short *src, unsigned long long pol)
{
    asm volatile("cp.async.ca.shared.global.L2::cache_hint [%0], [%1], 8, %2;" ::"r"(
                     (unsigned)__cvta_generic_to_shared(dst)),
                 "l"(src), "l"(pol)
                 : "memory");
}
template <class Elem> struct StateRawOf { using T = float4; };        // fp32: 4 elements as stored
template <> struct StateRawOf<unsigned short> { using T = uint2; };     // bf16

// ---- rank-one update of a state matrix -------------------------------------------------------
// S = f S + a v^T on a lane's four elements of a row (a the row's): the product first, then one
// fma, the operations the host's layout_flush_state repeats.
__device__ __forceinline__ float4 decay_add(float f, float4 s, float a, float4 v)
{
    return make_float4(__fmaf_rn(f, s.x, __fmul_rn(a, v.x)), __fmaf_rn(f, s.y, __fmul_rn(a, v.y)),
                       __fmaf_rn(f, s.z, __fmul_rn(a, v.z)), __fmaf_rn(f, s.w, __fmul_rn(a, v.w)));
}

// One entry's and block's log of its head matrices' updates (state.writeback = STATE_WRITEBACK
// > 1; layout.h): `logged` steps since the matrices were stored, each an entry of `entry`
// floats (a [heads][D], v [heads][D], f [heads]); this step's goes after them.
struct StateLog {
    float *entries;
    long entry;
    int logged;
};
template <class Lk>
__device__ __forceinline__ StateLog state_log(const Params &p, int b, int l, long log, long logged, long entry)
{
    return StateLog{st<Lk>(p, b, l, log), entry, STATE_WRITEBACK > 1 ? *(const int *)st<Lk>(p, b, l, logged) : 0};
}
// The count a step leaves: one more, or none after the step that stored.
__device__ __forceinline__ void commit_logged(int *logged) { *logged = *logged + 1 == STATE_WRITEBACK ? 0 : *logged + 1; }
// A warp's run of state tasks [first, end) (warp_tasks, StateTask) updates rows of the
// tasks' head matrices, a lane owning four columns: S[i][j] = f * S[i][j] + a[i] * v[j],
// returning sum_i q[i] * S_new[i][j] (RetNet retention, mLSTM memory). With a write-back
// period (STATE_WRITEBACK > 1) the rows are stored at the period's last step only; at the
// others each element first replays the updates logged since (StateLog), from the warp's
// shared sums (idle in a state phase), and the step logs its own. The rows go in groups
// of 8 through the warp's ring in the staging area (idle in a state phase), copied STATE_RING
// - 1 groups ahead across the run's tasks, so that a task's prologue (its gates, rows of q
// and k) and a head's tail run with the next rows in flight, where loads into registers kept
// one group of a task in flight (notes/gpu.md, runs 178-181: RetNet's phase 10% faster, the
// mLSTM memory as fast as before, bound by its SMs' share of the bandwidth). matrices(b):
// entry b's head matrices of the block, Elem each (fp32 or StateElem).
constexpr int STATE_RING = 4;
template <class Task, class Elem, class Matrices> struct StateStream {
    using Raw = typename StateRawOf<Elem>::T;
    static constexpr int GROUPS = (STATE_ROWS + 7) / 8; // of a task, the last ones empty where it has fewer rows
    static_assert(STATE_RING * WARPS * 8 * 32 * sizeof(Raw) <= STAGE_FLOATS * sizeof(float),
                  "the warps' rings fit the staging area");
    Raw *ring; // [STATE_RING][8 rows][32 lanes], at the lane's
    unsigned long long pol;
    int first, end, issued; // issued: groups of the run copied or under way
    Matrices matrices;

    __device__ StateStream(int first_, int end_, Matrices matrices_)
        : ring((Raw *)stage_smem + (threadIdx.x >> 5) * STATE_RING * 8 * 32 + (threadIdx.x & 31)),
          pol(evict_first_policy()), first(first_), end(end_), issued(0), matrices(matrices_)
    {
#pragma unroll 1
        for (int k = 0; k < STATE_RING - 1; k++) issue();
    }
    // Task t's first row at the lane's first column (nullptr where the lane has no columns),
    // its rows in `rows`.
    __device__ Elem *rows_of(int t, int &rows) const
    {
        const Task task(t);
        rows = task.rows;
        return task.col() < Task::DIM ? matrices(task.b) + task.offset() : nullptr;
    }
    // The run's next group into its slot (the group STATE_RING before it applied); a group past
    // the run's rows is an empty commit, so that the wait below always counts STATE_RING groups.
    __device__ void issue()
    {
        const int k = issued++, t = first + k / GROUPS, g = k % GROUPS;
        if (t < end) {
            int rows;
            const Elem *S = rows_of(t, rows);
            if (S)
#pragma unroll 1
                for (int u = 0; u < 8 && 8 * g + u < rows; u++)
                    cp_async_state4(ring + ((k % STATE_RING) * 8 + u) * 32, S + (long)(8 * g + u) * Task::DIM, pol);
        }
        cp_async_commit();
    }
    // Task t, the run's tasks in order, by every lane of the warp: 0 where the lane has no columns.
    __device__ float4 update(int t, float f, const float *a, float4 v, const float *q, const StateLog &log)
    {
        int rows;
        Elem *S = rows_of(t, rows);
        const Task task(t);
        const int k0 = (t - first) * GROUPS, lane = threadIdx.x & 31, replays = log.logged;
        const bool store = STATE_WRITEBACK == 1 || replays == STATE_WRITEBACK - 1;
        float *lf = stage_smem + STAGE_FLOATS + (threadIdx.x >> 5) * SUMS_WARP; // [8]: f of each logged step
        const float4 *lv = (const float4 *)(lf + 8) + lane;                  // [logged][32 lanes]: v
        const float *la = lf + 8 + (STATE_WRITEBACK - 1) * 128;               // [logged][STATE_ROWS]: a
        if constexpr (STATE_WRITEBACK > 1) {
            if (replays > 0) stage_log(task, log, rows, lf);
            if (!store) append_log(task, log, f, a, v, rows);
        }
        float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
        for (int g = 0; g < GROUPS; g++) { // all of them: group k of the run is group k % GROUPS of a task
            issue();
            cp_async_wait<STATE_RING - 1>();
            if (!S || 8 * g >= rows) continue;
            float4 rg[8]; // the group's rows, the logged updates replayed on all 8 at once
#pragma unroll
            for (int u = 0; u < 8; u++) rg[u] = unpack(ring[(((k0 + g) % STATE_RING) * 8 + u) * 32]);
#pragma unroll 1
            for (int k = 0; k < replays; k++) {
                const float fk = lf[k];
                const float4 vk = lv[k * 32], a0 = *(const float4 *)(la + k * STATE_ROWS + 8 * g),
                             a1 = *(const float4 *)(la + k * STATE_ROWS + 8 * g + 4);
                const float ak[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
#pragma unroll
                for (int u = 0; u < 8; u++) rg[u] = as_stored4(S, decay_add(fk, rg[u], ak[u], vk));
            }
#pragma unroll
            for (int u = 0; u < 8; u++) {
                const int i = 8 * g + u;
                if (i < rows) {
                    float4 r = decay_add(f, rg[u], a[i], v);
                    r = store ? st_state4(S + (long)i * Task::DIM, r) : as_stored4(S, r);
                    const float qi = q[i];
                    acc.x += qi * r.x;
                    acc.y += qi * r.y;
                    acc.z += qi * r.z;
                    acc.w += qi * r.w;
                }
            }
        }
        return acc;
    }
    // The logged updates task t's elements replay, into the warp's shared sums at lf: f of each
    // step, the lane's v of its columns, a of the task's rows. Out of line, as append_log: once a
    // task, and inlined the two took NVVM from 11 to 17 s of the cold JIT (notes/gpu.md, runs
    // 220-221); static, their arguments by value, so that the task and log stay in registers.
    static __device__ __noinline__ void stage_log(const Task task, const StateLog log, int rows, float *lf)
    {
        // every load of the log in flight before the first store (one round trip a task)
        constexpr int N = STATE_WRITEBACK - 1, RL = STATE_ROWS / 32; // RL: a's rows a lane
        constexpr long V = (long)Task::HEADS * Task::DIM;           // a, then v, then f in an entry
        static_assert(STATE_ROWS % 32 == 0 && 8 + N * (128 + STATE_ROWS) <= SUMS_WARP,
                      "a task's log fits the warp's shared sums (emit_sums_warp)");
        const int lane = threadIdx.x & 31, col = task.col();
        float4 v[N];
        float a[N][RL], f[N];
#pragma unroll
        for (int k = 0; k < N; k++) {
            const float *e = log.entries + k * log.entry;
            const bool in = k < log.logged;
            v[k] = in && col < Task::DIM ? ld_act4(e + V + task.n * Task::DIM + col) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
            for (int r = 0; r < RL; r++)
                a[k][r] = in && lane + 32 * r < rows ? ld_act(e + task.n * Task::DIM + task.i0 + lane + 32 * r) : 0.0f;
            f[k] = in && lane == 0 ? ld_act(e + 2 * V + task.n) : 0.0f;
        }
        __syncwarp(); // the warp's previous task has read them
#pragma unroll
        for (int k = 0; k < N; k++) {
            ((float4 *)(lf + 8))[k * 32 + lane] = v[k];
#pragma unroll
            for (int r = 0; r < RL; r++) lf[8 + N * 128 + k * STATE_ROWS + lane + 32 * r] = a[k][r];
            if (lane == 0) lf[k] = f[k];
        }
        __syncwarp();
    }
    // This step's update into the log after the steps logged: each task its rows' a (column
    // chunk 0) and its columns' v (row chunk 0), one task of the head its f.
    static __device__ __noinline__ void append_log(const Task task, const StateLog log, float f, const float *a, float4 v, int rows)
    {
        const int lane = threadIdx.x & 31, col = task.col();
        constexpr long V = (long)Task::HEADS * Task::DIM;
        float *e = log.entries + log.logged * log.entry;
        if (task.chunk == 0)
            for (int r = lane; r < rows; r += 32) e[task.n * Task::DIM + task.i0 + r] = a[r];
        if (task.rc == 0 && col < Task::DIM) *(float4 *)(e + V + task.n * Task::DIM + col) = v;
        if (task.rc == 0 && task.chunk == 0 && lane == 0) e[2 * V + task.n] = f;
    }
    // No copy left in flight into the ring (the empty groups past the run) when the phase ends.
    __device__ void finish() { cp_async_wait<0>(); }
};
template <class Task, class Elem, class Matrices>
__device__ __forceinline__ StateStream<Task, Elem, Matrices> state_stream(int first, int end, Matrices matrices)
{
    return StateStream<Task, Elem, Matrices>(first, end, matrices);
}

// ---- partial sums of a head's retrieval -------------------------------------------------------
// A head's state is updated by `tasks` warp tasks (row and column chunks), each writing its part
// (a row chunk's partial sum); the last to finish adds the parts up. A warp takes a contiguous
// run [first, end) of its CTA's tasks [lo, hi), not every WARPS-th, so that it counts the tasks
// it did of one head with one add, when it leaves the head: the add releases the task's state
// stores and waits for them (notes/gpu.md: a count a task cost 50 us a block at batch 50, runs
// 111-113).
__device__ __forceinline__ void warp_tasks(int lo, int hi, int &first, int &end)
{
    const int warp = threadIdx.x >> 5;
    first = lo + (int)((long)(hi - lo) * warp / WARPS);
    end = lo + (int)((long)(hi - lo) * (warp + 1) / WARPS);
}

// State task t of HEADS square D x D head matrices an entry (RetNet's R, the mLSTM's C): entry
// b, head n, rows [i0, i0 + rows) (row chunk rc) and columns chunk * 128 .. of its head, the
// column chunk fastest so that a warp's run shares a head's gates and a row chunk's rows.
template <int D, int HEADS_> struct StateTask {
    static constexpr int DIM = D, HEADS = HEADS_;
    static constexpr int CHUNKS = (D + 127) / 128;                  // 128-column chunks of a head
    static constexpr int RC = (D + STATE_ROWS - 1) / STATE_ROWS;    // row chunks: a head's parts
    static constexpr int PER_HEAD = CHUNKS * RC;
    __device__ static int count(int nb) { return nb * HEADS * PER_HEAD; }
    int b, n, rc, chunk, i0, rows;
    __device__ StateTask(int t)
        : b(t / (HEADS * PER_HEAD)), n(t / PER_HEAD % HEADS), rc(t / CHUNKS % RC), chunk(t % CHUNKS),
          i0(rc * STATE_ROWS), rows(min(STATE_ROWS, D - rc * STATE_ROWS))
    {
    }
    // the warp whose run starts at `first` meets a new head at task t
    __device__ static bool new_head(int t, int first) { return t == first || t % PER_HEAD == 0; }
    // the first of the lane's 4 columns of its head
    __device__ int col() const { return chunk * 128 + (threadIdx.x & 31) * 4; }
    // the lane's first element in the entry's head matrices: row i0, column col() of head n
    __device__ long offset() const { return ((long)n * D + i0) * D + col(); }
    // Where the warp's run meets new rows at task t: row(r) for r in [0, rows), the rows spread
    // over the lanes, between warp barriers (it writes the row vectors every lane reads).
    template <class F> __device__ void fill_rows(int t, int first, F row) const
    {
        if (t != first && chunk != 0) return;
        __syncwarp();
        for (int r = threadIdx.x & 31; r < rows; r += 32) row(r);
        __syncwarp();
    }
};

// After task t of the warp's run [.., end): counts t in `done` (the warp's tasks of t's head
// not yet counted) and, when the warp leaves the head, adds them to *count and returns true (for
// all lanes) if they were the head's last. Every other task of the head has then finished, so
// the last one may also overwrite the state they read. The count is back to 0 for the next
// step. As in the tower barrier, one acquire-release add: it releases the warp's writes (ordered
// before it by the warp barrier) and acquires those of the tasks counted before; no fence.sc
// (__threadfence), which waited for each task's state stores (run 112).
__device__ bool last_task_of_head(unsigned *count, int tasks, int t, int end, int &done)
{
    const int lane = threadIdx.x & 31;
    done++;
    if ((t + 1) % tasks != 0 && t + 1 < end) return false; // the warp's next task is this head's
    __syncwarp();
    unsigned old = 0;
    if (lane == 0) asm volatile("atom.add.acq_rel.gpu.u32 %0, [%1], %2;" : "=r"(old) : "l"(count), "r"(done) : "memory");
    const bool last = __shfl_sync(0xffffffffu, old, 0) + done == (unsigned)tasks;
    done = 0;
    if (!last) return false;
    if (lane == 0) *(volatile unsigned *)count = 0;
    __syncwarp(); // lane 0's acquire, for the other lanes
    return true;
}

// out[0 .. n) = (the `parts` parts at part + r * part_stride, added in a fixed order) / den, so
// that the result does not depend on which task finished last. A lane writes its own float4
// columns of out, which are those it reads back (head_output).
__device__ void sum_parts(const float *part, int part_stride, int parts, float den, float *out, int n)
{
    const int lane = threadIdx.x & 31;
    for (int c = lane * 4; c < n; c += 128) {
        float4 sum = ld_act4(part + c);
        for (int r = 1; r < parts; r++) {
            const float4 y = ld_act4(part + (long)r * part_stride + c);
            sum.x += y.x;
            sum.y += y.y;
            sum.z += y.z;
            sum.w += y.w;
        }
        *(float4 *)(out + c) = make_float4(sum.x / den, sum.y / den, sum.z / den, sum.w / den);
    }
}

// ---- inputs of a projection ----------------------------------------------------------------
enum { NORM_RMS = 1, NORM_LAYER = 2 };

// The input vector of batch entry b is base + b * stride (an activation, or the features).
// An input may be RMS-normalised over its whole length while it is staged (weight rms_w).
struct In {
    const float *base;
    long stride;
    const float *rms_w; // RMSNorm weight, or null
    float eps;
};

__device__ __forceinline__ In in_act(const Params &p, Buf b)
{
    In in = {};
    in.base = p.scr + b.off;
    in.stride = b.stride;
    return in;
}
__device__ __forceinline__ In in_rms(In in, float eps, const float *w)
{
    in.rms_w = w;
    in.eps = eps;
    return in;
}
__device__ __forceinline__ const float *in_row(const In &in, int b) { return in.base + (long)b * in.stride; }

// ---- the batched projection ----------------------------------------------------------------
// One matrix of a projection: rows of ld elements from byte offset w, optional fp32 bias.
// Matrices that share an input can be stacked into one projection (their rows one after the
// other), so that a CTA's rows of them take one staging of the input: `rows` is then the
// matrix's row count.
struct Mat {
    long w, bias;     // byte offsets into the weights; bias < 0: none
    int rows;         // rows of a stacked matrix
    long state = -1;  // the epilogue's state of row 0 (st_off), per_row floats a row; < 0: none
    int per_row = 0;
    // The epilogue reads and writes per_row floats of state at `state` a row (a causal conv's
    // past inputs, a recurrence's h): proj_rows asks L2 for them first (prefetch_epilogue_state).
    __device__ Mat with_state(long off, int floats) const { return Mat{w, bias, rows, off, floats}; }
};

__device__ __forceinline__ Mat mat(long w, long bias = -1, int rows = 0) { return Mat{w, bias, rows}; }

// The matrix of row o of a stack m[0 .. N) (rows of m[k] follow those of m[k - 1]); o becomes
// the row's index in that matrix.
template <int N> __device__ __forceinline__ int stack_index(const Mat (&m)[N], int &o)
{
    int k = 0;
    while (k < N - 1 && o >= m[k].rows) o -= m[k].rows, k++;
    return k;
}

// The part of the unit range [lo, hi) that falls in [base, base + count), shifted to 0.
__device__ __forceinline__ bool part(int lo, int hi, int base, int count, int &a, int &b)
{
    a = max(lo, base) - base;
    b = min(hi, base + count) - base;
    return a < b;
}

// Asks L2 for the state that the epilogue of rows [lo, hi) reads and writes (Mat::state), of
// every entry. An epilogue's loads are serial (one call's stores may alias the next call's
// loads), so at batch 50 a lane's 28 calls each waited for memory (notes/gpu.md, run 86).
template <int NM, int N>
__device__ void prefetch_epilogue_state(const Params &p, const Mat (&m)[N], int lo, int hi)
{
    int base = 0; // stack row of m[k]'s row 0
    for (int k = 0; k < N; k++) {
        int a = lo, e = hi; // rows of m[k] in the pass, in its own numbering
        if (NM == 1 && N > 1) { // a stack (stack_index): the last matrix takes the rest
            part(lo, hi, base, k == N - 1 ? hi - base : m[k].rows, a, e);
            base += m[k].rows;
        }
        if (m[k].state < 0 || a >= e) continue;
        const long first = m[k].state + (long)a * m[k].per_row, n = (long)(e - a) * m[k].per_row;
        const int lines = (int)((n * 4 + 127) / 128) + 1; // 128-byte lines an entry, at any alignment
        for (int i = threadIdx.x; i < p.nb * lines; i += THREADS) {
            const float *s = p.state + (long)p.slots[i / lines] * SLOT_FLOATS + first;
            const char *line = (const char *)((unsigned long)s & ~127UL) + 128L * (i % lines);
            if (line < (const char *)(s + n)) asm volatile("prefetch.global.L2 [%0];" ::"l"(line));
        }
    }
}

// Matrix j of row o of a projection: NM matrices sharing their row index (the sLSTM and RG-LRU
// gate pairs), or with NM = 1 a stack of N matrices; o becomes the row's index in it.
template <int NM, int N> __device__ __forceinline__ const Mat &mat_of_row(const Mat (&m)[N], int j, int &o)
{
    static_assert(NM == N || NM == 1, "a pair of matrices is not stacked");
    return m[NM > 1 ? j : stack_index(m, o)];
}

// Mean (0 for RMSNorm) and 1/std of x[0, n) over a warp: each lane adds its float4 columns
// in order, then one warp sum.
__device__ void warp_norm_stats(const float *x, int n, int norm, float eps, float &mean, float &rstd)
{
    const int lane = threadIdx.x & 31;
    mean = 0.0f;
    if (norm == NORM_LAYER) {
        float s = 0.0f;
#pragma unroll 8
        for (int c = lane * 4; c < n; c += 128) {
            const float4 v = ld_act4(x + c);
            s += (v.x + v.y) + (v.z + v.w);
        }
        mean = warp_sum(s) / n;
    }
    float s2 = 0.0f;
#pragma unroll 8
    for (int c = lane * 4; c < n; c += 128) {
        const float4 v = ld_act4(x + c);
        const float a = v.x - mean, b = v.y - mean, d = v.z - mean, e = v.w - mean;
        s2 += (a * a + b * b) + (d * d + e * e);
    }
    rstd = 1.0f / sqrtf(warp_sum(s2) / n + eps);
}

// 1 / RMS of input `in` (len elements) for every entry of the batch, one warp per entry, into
// rms_smem[entry].
__device__ void rms_stats(const Params &p, const In &in, int len)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int b = warp; b < p.nb; b += WARPS) {
        float mean, rstd;
        warp_norm_stats(in_row(in, b), len, NORM_RMS, in.eps, mean, rstd);
        if (lane == 0) rms_smem[b] = rstd;
    }
    __syncthreads();
}

// x normalised with mean and 1/std, then the norm's weight w and bias (if not null).
__device__ __forceinline__ float norm_value(float x, float mean, float rstd, const float *w, const float *bias, int c)
{
    float v = (x - mean) * rstd;
    if (w) v *= __ldg(w + c);
    if (bias) v += __ldg(bias + c);
    return v;
}
// Slot k of an H-long vector normalised with the statistics of its group (h_group_stats),
// before the norm's weight and bias (the caller's, loaded with h_load_w).
template <int N>
__device__ __forceinline__ float h_norm_value(const float (&x)[HPT], int k, const float (&mean)[N],
                                              const float (&rstd)[N])
{
    constexpr int G = H / N;
    return (x[k] - h_group_value<G>(mean, k)) * h_group_value<G>(rstd, k);
}

// A head's output once its sums are in, by the warp that added them (sum_parts):
// out = (norm(h) + skip_w * skip) * silu(gate) over the head's columns [c0, c0 + n) of
// every vector (skip optional), so that the projection reading it stages a plain input
// instead of every CTA normalising every entry. A lane reads back only its own float4
// columns of h.
__device__ void head_output(int c0, int n, const float *h, int norm, float eps, const float *w, const float *bias,
                            const float *skip_w, const float *skip, const float *gate, float *out)
{
    const int lane = threadIdx.x & 31;
    float mean, rstd;
    warp_norm_stats(h + c0, n, norm, eps, mean, rstd);
    for (int c = c0 + lane * 4; c < c0 + n; c += 128)
        for (int i = c; i < c + 4; i++) {
            float v = norm_value(ld_act(h + i), mean, rstd, w, bias, i);
            if (skip) v += __ldg(skip_w + i) * ld_act(skip + i);
            out[i] = v * siluf(ld_act(gate + i));
        }
}

// A thread's pairs (i, j) of an index space of n columns, THREADS apart in row-major order:
// the first, then each next by adding, not dividing.
struct PairWalk {
    int n, di, dj;
    __device__ __forceinline__ explicit PairWalk(int cols) : n(cols), di(THREADS / cols), dj(THREADS % cols) {}
    __device__ __forceinline__ void first(int &i, int &j) const
    {
        i = threadIdx.x / n;
        j = threadIdx.x % n;
    }
    __device__ __forceinline__ void next(int &i, int &j) const
    {
        i += di;
        j += dj;
        if (j >= n) {
            j -= n;
            i++;
        }
    }
};

// Staging: columns [c0, c0 + n) of every entry's input copied into xs[nb][stride] by
// cp.async (zeros from n to `span`), so that a window can be in flight while the one before is
// applied; RMS-normalised in place when NORM (rms_stats' statistics), each thread normalising the
// pairs it copied, which the wait makes visible to it. A thread's (entry, float4 column)
// pairs come from a PairWalk over the span.
__device__ void stage_copy(const Params &p, const In &in, int c0, int n, int span, int stride, float *xs)
{
    const int nb = p.nb;
    const PairWalk walk(span / 4);
    int j, k;
    for (walk.first(j, k); j < nb; walk.next(j, k)) {
        float *dst = xs + (long)j * stride + 4 * k;
        if (4 * k < n)
            cp_async16(dst, in_row(in, j) + c0 + 4 * k);
        else
            *(float4 *)dst = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    cp_async_commit();
}

// (x * rstd) * w, as the reference's RMSNorm, over the pairs this thread copied (stage_copy's
// walk), once they have arrived.
__device__ void stage_normalise(const Params &p, const In &in, int c0, int n, int span, int stride, float *xs)
{
    const PairWalk walk(span / 4);
    int j, k;
    for (walk.first(j, k); j < p.nb; walk.next(j, k)) {
        if (4 * k >= n) continue;
        float4 *x = (float4 *)(xs + (long)j * stride + 4 * k);
        const float rs = rms_smem[j];
        const float4 w = __ldg((const float4 *)(in.rms_w + c0 + 4 * k)), v = *x;
        *x = make_float4(v.x * rs * w.x, v.y * rs * w.y, v.z * rs * w.z, v.w * rs * w.w);
    }
}

// A window staged at once (the caller syncs before and after).
template <bool NORM>
__device__ void stage_window(const Params &p, const In &in, int c0, int n, int stride, float *xs)
{
    stage_copy(p, in, c0, n, stride, stride, xs);
    cp_async_wait<0>();
    if (NORM) stage_normalise(p, in, c0, n, stride, stride, xs);
}

// Each lane holds N partial sums a[i] (N a power of two, <= 32); afterwards lane l holds the
// warp's total of a[l / (32 / N)] (N - 1 + log2(32 / N) shuffles for N sums, the same
// addition tree as warp_sum's for every i).
template <int N> __device__ __forceinline__ float transpose_sum(float (&a)[N])
{
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int w = 16; w >= 1; w >>= 1) {
        const bool upper = lane & w;
        const int k = w * N / 32; // sums each lane keeps after this step
        if (k == 0) {
            a[0] += __shfl_xor_sync(0xffffffffu, a[0], w);
            continue;
        }
#pragma unroll
        for (int i = 0; i < N / 2; i++) {
            if (i >= k) break;
            const float send = upper ? a[i] : a[i + k], keep = upper ? a[i + k] : a[i];
            a[i] = keep + __shfl_xor_sync(0xffffffffu, send, w);
        }
    }
    return a[0];
}

// A lane's 4 weights of rows o0 .. o0 + RB - 1 of NM matrices at columns c + 128 u, as
// stored (zero past row `end` or column ld).
template <int NM, int RB, int U, int N>
__device__ __forceinline__ void load_weights(const Params &p, const Mat (&m)[N], int ld, int o0, int end, int c,
                                             MatRaw (&w)[NM][RB][U])
{
#pragma unroll
    for (int k = 0; k < NM; k++)
#pragma unroll
        for (int r = 0; r < RB; r++) {
            int o = o0 + r;
            const long mw = mat_of_row<NM>(m, k, o).w;
#pragma unroll
            for (int u = 0; u < U; u++)
                w[k][r][u] = o0 + r < end && c + 128 * u < ld ? ld_mat4(p, mw, (long)o * ld + c + 128 * u) : MatRaw{};
        }
}

// The shape of a projection of NM matrices on CUDA cores (see proj_rows).
template <int NM> struct ProjShape {
    static constexpr int NV = NM > WEIGHT_ROWS ? NM : WEIGHT_ROWS; // weight rows per warp
    static constexpr int RB = NV / NM, JT = 32 / NV;
    static constexpr int U_SMEM = STAGE_FLOATS / (MAX_BATCH * 128); // a window of CW fits
    static constexpr int U = CHUNK_F4 / NV < U_SMEM ? CHUNK_F4 / NV : U_SMEM;
    static constexpr int CW = 128 * U;
    static constexpr int NT_MAX = (MAX_BATCH + JT - 1) / JT;
    static constexpr int GW = SUMS_WARP / (NT_MAX * 32); // row groups per warp in a pass
    static constexpr int RP = WARPS * GW * RB;           // rows per pass
    static_assert(NV % NM == 0 && NV * JT == 32 && U >= 1 && GW >= 1, "projection shape");
};

// One pass of proj_rows: the sums of rows [pass0, pend) for every entry, in each warp's
// running sums (stage_smem after STAGE_FLOATS: [warp][GW][NT_MAX][32]). PROJ_PASS: inlined
// into each call site, or one function per projection shape (gen/emit.h); either way each
// call site of proj_rows costs compile time, so phases share one call site where they can.
template <int NM, bool NORM, int N>
__device__ PROJ_PASS void proj_pass(const Params &p, const In &in, const Mat (&m)[N], int len, int block,
                                       int pass0, int pend)
{
    using S = ProjShape<NM>;
    constexpr int RB = S::RB, JT = S::JT, U = S::U, CW = S::CW, NT_MAX = S::NT_MAX, GW = S::GW;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nb = p.nb;
    const int ld = ld4(len), nt = (nb + JT - 1) / JT;
    const int win = max(1, STAGE_FLOATS / (nb * CW)) * CW; // staged columns, a multiple of CW
    float *xs = stage_smem;                                            // [nb][span]
    float *sums = stage_smem + STAGE_FLOATS + warp * SUMS_WARP + lane; // [GW][NT_MAX][32]
    const int c_in = block ? (pass0 / block) * len : 0;                // input column of weight column 0
    for (int w0 = 0; w0 < ld; w0 += win) {
        const int n = min(win, ld - w0), span = (n + CW - 1) / CW * CW;
        __syncthreads(); // the previous window's readers are done
        stage_window<NORM>(p, in, c_in + w0, n, span, xs);
        __syncthreads();
        for (int i = 0; i < GW; i++) {
            const int o0 = pass0 + (warp + i * WARPS) * RB;
            if (o0 >= pend) break;
            float *run = sums + i * NT_MAX * 32;
            if (w0 == 0)
                for (int t = 0; t < nt; t++) run[t * 32] = 0.0f;
            for (int cw = 0; cw < span; cw += CW) {
                MatRaw wv[NM][RB][U];
                load_weights(p, m, ld, o0, pend, w0 + cw + lane * 4, wv);
                for (int t = 0; t < nt; t++) {
                    float acc[32];
#pragma unroll
                    for (int a = 0; a < 32; a++) acc[a] = 0.0f;
#pragma unroll
                    for (int jj = 0; jj < JT; jj++) {
                        const int j = t * JT + jj;
                        if (j >= nb) break;
#pragma unroll
                        for (int u = 0; u < U; u++) {
                            const float4 x = *(const float4 *)(xs + (long)j * span + cw + lane * 4 + 128 * u);
#pragma unroll
                            for (int k = 0; k < NM; k++)
#pragma unroll
                                for (int r = 0; r < RB; r++) {
                                    const float4 w = unpack(wv[k][r][u]);
                                    float &s = acc[(k * RB + r) * JT + jj];
                                    s = fmaf(w.x, x.x, s);
                                    s = fmaf(w.y, x.y, s);
                                    s = fmaf(w.z, x.z, s);
                                    s = fmaf(w.w, x.w, s);
                                }
                        }
                    }
                    run[t * 32] += transpose_sum<32>(acc);
                }
            }
        }
    }
}

// ---- projections on tensor cores ------------------------------------------------------------
// fp32 x fp32 products from tf32 tensor-core products (3xTF32): a = a_big + a_small, each a
// tf32 (the top 11 significant bits, then the next 11), and a b = a_big b_small +
// a_small b_big + a_big b_big, accumulated in fp32; the dropped a_small b_small and the bits
// below a_small are 2^-22 of the product. A bf16 or fp16 weight is its own tf32 (a_small = 0).
struct Tf32 {
    unsigned big, small;
};
// The tensor core takes a tf32 operand from an fp32 register and ignores its low 13 bits
// (truncation). So x rounded to tf32 (to nearest, ties away from zero: cvt.rna.tf32.f32 for
// finite x) is one integer add of half a tf32 ulp, masked only where the rounded value is
// used in fp32. The small part is rounded too: truncated, it served answers 3-4x less
// accurate at full size (notes/gpu.md, run 83).
__device__ __forceinline__ unsigned tf32_operand(float x) { return __float_as_uint(x) + 0x1000u; }
__device__ __forceinline__ Tf32 tf32_split(float x)
{
    const unsigned big = tf32_operand(x);
    return Tf32{big, tf32_operand(x - __uint_as_float(big & 0xffffe000u))};
}

// d += a b for one m16n8k8 tile: a 16 x 8 (rows g, g + 8; k t, t + 4 of lane 4g + t), b 8 x 8.
__device__ __forceinline__ void mma_tf32(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                         unsigned b0, unsigned b1)
{
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

constexpr bool EXACT_W = sizeof(MatRaw) == 8; // 16-bit weights are tf32 already (no small part)

// A lane's weights of one set of a tile chunk (rows qa, qb as stored) as tf32 operands
// [k-step][slot] (see mma_3xtf32): big parts in wb, small parts in ws (unused for 16-bit ones).
__device__ __forceinline__ void tf32_weights(MatRaw ra, MatRaw rb, unsigned (&wb)[2][4], unsigned (&ws)[2][4])
{
    const float4 a = unpack(ra), b = unpack(rb);
    const float w[2][4] = {{a.x, b.x, a.y, b.y}, {a.z, b.z, a.w, b.w}};
#pragma unroll
    for (int k = 0; k < 2; k++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const Tf32 v = tf32_split(w[k][i]);
            wb[k][i] = EXACT_W ? __float_as_uint(w[k][i]) : v.big;
            if (!EXACT_W) ws[k][i] = v.small;
        }
}

// One k-step of 8 columns, 3xTF32: wb, ws the big and small parts of the lane's weights
// {row g slot t, row g + 8 slot t, row g slot t + 4, row g + 8 slot t + 4}; x0, x1 its input
// at slots t, t + 4. Small terms first.
__device__ __forceinline__ void mma_3xtf32(float (&d)[4], const unsigned (&wb)[4], const unsigned (&ws)[4], float x0,
                                           float x1)
{
    const Tf32 b0 = tf32_split(x0), b1 = tf32_split(x1);
    if (!EXACT_W) mma_tf32(d, ws[0], ws[1], ws[2], ws[3], b0.big, b1.big);
    mma_tf32(d, wb[0], wb[1], wb[2], wb[3], b0.small, b1.small);
    mma_tf32(d, wb[0], wb[1], wb[2], wb[3], b0.big, b1.big);
}

// A lane's weights of a tile chunk: U sets of 4 of rows qa and qb (as stored, nullptr past
// the pass's rows) at columns c + tile_col<WIDE>(u) (zero past column ld). WIDE (16-bit rows of
// a multiple of 8 elements): sets 2v and 2v + 1 are one 16-byte load, half the load
// instructions of 8-byte ones (notes/gpu.md: the pattern alone streams 6% faster, run 105;
// the bf16 step at batch 1 4.5-6% faster, runs 107-108).
template <bool WIDE> __device__ __forceinline__ constexpr int tile_col(int u)
{
    return WIDE ? 32 * (u >> 1) + 4 * (u & 1) : 16 * u;
}
template <bool WIDE, int U, class Raw>
__device__ __forceinline__ void load_tile_chunk(const Raw *qa, const Raw *qb, int ld, int c, Raw (&ra)[U],
                                                Raw (&rb)[U])
{
    if constexpr (WIDE) {
        static_assert(sizeof(Raw) == 8 && U % 2 == 0, "16-byte loads of 16-bit weights");
#pragma unroll
        for (int v = 0; v < U / 2; v++) {
            const int col = c + tile_col<true>(2 * v);
            const uint4 a = qa && col < ld ? ld_raw((const uint4 *)(qa + col / 4)) : uint4{};
            const uint4 b = qb && col < ld ? ld_raw((const uint4 *)(qb + col / 4)) : uint4{};
            ra[2 * v] = Raw{a.x, a.y}, ra[2 * v + 1] = Raw{a.z, a.w};
            rb[2 * v] = Raw{b.x, b.y}, rb[2 * v + 1] = Raw{b.z, b.w};
        }
    } else {
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int i = (c + 16 * u) / 4;
            ra[u] = qa && c + 16 * u < ld ? ld_raw(qa + i) : Raw{};
            rb[u] = qb && c + 16 * u < ld ? ld_raw(qb + i) : Raw{};
        }
    }
}

// A warp's part of a projection pass: chunks s, s + ks, ... (slice s) of the tile whose rows
// start at o0, summed in slot `slot` of the warp's running sums; j is the next chunk to apply
// (chunks or more: none), s as dealt.
struct TileSlice {
    int o0, ks, slot, j;
};

// The pass's tiles are dealt to the warps in at most two groups that each fill the warps: a
// group of n tiles (n a power of two) gives each tile WARPS / n slices, so that a pass of 5
// tiles is 4 tiles of 2 slices and 1 of 8, every warp streaming 5/8 of a tile's weights. One
// slice a tile left 3 of 8 warps idle there and the pass as long as a tile's whole stream
// (at batch 50 xLSTM's MLP up, 73 rows a CTA: 20% faster, notes/gpu.md, run 187).
// Tiles of more than two binary digits (7), or `pairs` false (the warp's sums hold one slot),
// take one slice each; slices are capped by the chunks. Group g's slice of this warp (slot g)
// in ts; false: none (ts.j = chunks).
__device__ __forceinline__ bool tile_slice(int tiles, int chunks, bool pairs, int g, int pass0, int rb,
                                           TileSlice &ts)
{
    const int warp = threadIdx.x >> 5, top = 1 << (31 - __clz(tiles)), rest = tiles - top;
    const bool two = pairs && rest > 0 && (rest & (rest - 1)) == 0;
    const int n = g == 0 ? (two ? top : tiles) : two ? rest : 0, first = g == 0 ? 0 : top;
    const int ks = n ? max(1, min(WARPS / n, chunks)) : 1;
    const bool mine = warp < n * ks;
    ts = TileSlice{pass0 + (first + warp / ks) * rb, ks, g, mine ? warp % ks : chunks};
    return mine;
}

// The warp's other slice streams from its next chunk, other_j (then cur's).
__device__ __forceinline__ void other_turn(int tiles, int chunks, int pass0, int rb, TileSlice &cur, int &other_j)
{
    const int j = cur.j;
    tile_slice(tiles, chunks, true, 1 - cur.slot, pass0, rb, cur);
    cur.j = other_j;
    other_j = j;
}

// This lane's two rows of the tile at o0: tile rows g and g + 8 (NM = 2: row g of both matrices).
template <int NM> __device__ __forceinline__ void lane_rows(int o0, int &rg, int &rh)
{
    const int g = (threadIdx.x & 31) >> 2;
    rg = o0 + g;
    rh = NM == 1 ? o0 + g + 8 : o0 + g;
}

// This lane's two weight rows of the tile at o0 (lane_rows), as stored; nullptr past the
// pass's rows.
template <int NM, int N>
__device__ __forceinline__ void tile_rows(const Params &p, const Mat (&m)[N], int ld, int o0, int pend,
                                          const MatRaw *&qa, const MatRaw *&qb)
{
    int rg, rh;
    lane_rows<NM>(o0, rg, rh);
    int og = rg, oh = rh; // the rows in their matrices
    const long wg = mat_of_row<NM>(m, 0, og).w, wh = mat_of_row<NM>(m, NM - 1, oh).w;
    qa = rg < pend ? (const MatRaw *)(p.w + wg) + (long)og * ld / 4 : nullptr;
    qb = rh < pend ? (const MatRaw *)(p.w + wh) + (long)oh * ld / 4 : nullptr;
}

// proj_rows for one input and NM <= 2 matrices on tensor cores. A row tile is 16 weight rows
// (the mma's A): NM = 1, rows o0 .. o0 + 15; NM = 2, rows o0 .. o0 + 7 of matrix 0 over the
// same rows of matrix 1. A pass takes up to WARPS row tiles; where it has fewer, a tile's
// columns are split into ks slices (chunk j of the row goes to slice j % ks), a warp taking
// one or two (tile, slice) pairs (tile_slice). A warp streams its weights in chunks of CW
// columns, U loads a lane per tile row, the next chunk's loads issued before this one is
// applied to the batch (the mma's B) 8 entries at a time, across window boundaries; the k
// order inside a 16-column group is permuted so that a lane's float4 of weights and its
// float4 of input are its k-slots of two k-steps. Each 16 columns start from a zero
// accumulator and are added to the lane's running sums in fp32 (the tensor core's own
// accumulation truncates), kept in the warp's shared memory for the pass: a slot of 128
// floats an entry tile for each of its slices. The slices are added in order;
// their number depends on the rows of the pass, so the result can differ in the last bits
// with the batch and the schedule.
// The input is staged whole where every entry's row fits the staging area (and then once for
// all passes of the call that read the same columns), else in windows of columns: in the
// two halves of the area in turn, the next window copied while this one is applied, where a
// half holds DOUBLE_MIN_COLUMNS of every entry, else one window of the whole area at a time.
// With fewer columns a half, the barriers of twice as many windows cost more than the copies
// in flight save (notes/gpu.md, run 81: bf16 at batch 50 and 64, 256 and 128 columns a half,
// lost 8% and 20% with them, fp32 at 64, 192 columns, 3%; bf16 at 32, 384 columns, gained 2%).
constexpr int DOUBLE_MIN_COLUMNS = 384;
template <int NM, bool NORM, int LEN, int N, class Epi>
__device__ void proj_rows_mma(const Params &p, const In &in, const Mat (&m)[N], int block, int lo, int hi, Epi epi)
{
    constexpr int RB = 16 / NM;     // row indices per tile
    // sets of 4 weights per lane per tile row in a chunk: 4 float4 (fp32, split into two tf32
    // parts: 64 registers) or 8 of 8 bytes (bf16, fp16: loaded 16 bytes at a time where rows
    // allow; 64 registers widened), and the next chunk's as stored
    constexpr int U = CHUNK_F4 / 4;
    constexpr int CW = 16 * U;      // columns per chunk
    static_assert((CW + (EXACT_W ? STAGE_PAD_WIDE : STAGE_PAD)) * MAX_BATCH <= STAGE_FLOATS / 2,
                  "a chunk's inputs of every entry fit half the staging area");
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    constexpr int ld = ld4(LEN);
    const int nb = p.nb, nt = (nb + 7) / 8, chunks = (ld + CW - 1) / CW;
    // A lane's input columns match its weights': 4 t4 + tile_col(u), or 8 t4 + tile_col(u)
    // with 16-byte loads of 16-bit weights (load_tile_chunk), the staged rows PAD floats
    // beyond the window so that the 8 lanes of a quarter warp's float4 input load hit 32
    // distinct banks.
    constexpr bool wide = EXACT_W && ld % 8 == 0;
    constexpr int PAD = wide ? STAGE_PAD_WIDE : STAGE_PAD;
    const int lcol = wide ? 8 * t4 : 4 * t4;
    const bool whole = (CW * chunks + PAD) * nb <= STAGE_FLOATS;
    const int half_chunks = (STAGE_FLOATS / 2 / nb - PAD) / CW; // >= 1 (static_assert)
    const int nbuf = !whole && half_chunks * CW >= DOUBLE_MIN_COLUMNS ? 2 : 1;
    const int area_chunks = nbuf == 2 ? half_chunks : (STAGE_FLOATS / nb - PAD) / CW;
    float *xs = stage_smem;                                       // [nbuf][nb][stride]
    float4 *sums = (float4 *)(stage_smem + STAGE_FLOATS) + lane; // [warp][slot][tile][32]
    constexpr int SUMS4 = SUMS_WARP / 4;
    const bool pairs = 2 * nt * 128 <= SUMS_WARP; // a warp's sums hold two slices' slots
    if (lo >= hi) return;
    int staged_c = -1; // input column of the whole row staged by an earlier pass
    for (int pass0 = lo; pass0 < hi;) {
        int pend = min(hi, pass0 + WARPS * RB);
        if (block) pend = min(pend, (pass0 / block + 1) * block);
        const int c_in = block ? (pass0 / block) * LEN : 0; // input column of weight column 0
        const int tiles = (pend - pass0 + RB - 1) / RB;
        // the warp's slices (tile_slice): cur streams, other_j is the other's next chunk
        TileSlice cur, other;
        const bool has0 = tile_slice(tiles, chunks, pairs, 0, pass0, RB, cur);
        const bool has1 = tile_slice(tiles, chunks, pairs, 1, pass0, RB, other);
        const bool busy = has0 || has1;
        const int ks_n = max(cur.ks, other.ks); // powers of two unless capped by the chunks
        int other_j = other.j;
        if (other_j < min(cur.j, chunks)) other_turn(tiles, chunks, pass0, RB, cur, other_j);
        // windows of wc chunks: a multiple of the slices where the area allows, all about as wide
        int wc = chunks;
        if (!whole) {
            wc = area_chunks >= ks_n ? area_chunks - area_chunks % ks_n : area_chunks;
            const int nwin = (chunks + wc - 1) / wc, per = (chunks + nwin - 1) / nwin;
            wc = min(wc, (per + ks_n - 1) / ks_n * ks_n);
        }
        const int win = wc * CW, stride = win + PAD;
        const bool restage = !whole || staged_c != c_in;
        // The warp applies its chunks in column order (so window by window), the slice with the
        // lower next chunk streaming; the next chunk is loaded while this one is applied. The
        // first is asked for before the tower barrier is waited for (no stage writes weights),
        // so that its latency overlaps the barrier's.
        const MatRaw *qa, *qb; // this lane's two weight rows of cur's tile
        tile_rows<NM>(p, m, ld, cur.o0, pend, qa, qb);
        if (!busy) qa = qb = nullptr;
        MatRaw ra[U], rb[U]; // rows qa, qb of the next chunk, as stored
        load_tile_chunk<wide>(qa, qb, ld, cur.j * CW + lcol, ra, rb);
        tower_wait(p);
        for (int t = 0; t < (has1 ? 2 : 1) * nt; t++) sums[warp * SUMS4 + t * 32] = make_float4(0.f, 0.f, 0.f, 0.f);
        if (restage) {
            __syncthreads(); // the previous readers of the staging area are done
            stage_copy(p, in, c_in, min(win, ld), win, stride, xs);
            if (NORM && staged_c < 0) rms_stats(p, in, LEN); // once a call, the copies in flight
        }
        staged_c = c_in;
#pragma unroll 1
        for (int w0 = 0; w0 < ld; w0 += win) {
            float *buf = xs + (nbuf == 2 ? (w0 / win) & 1 : 0) * nb * stride;
            if (restage) {
                if (nbuf == 1 && w0 > 0) {
                    __syncthreads(); // the window before is applied
                    stage_copy(p, in, c_in + w0, min(win, ld - w0), win, stride, buf);
                }
                if (nbuf == 2 && w0 + win < ld) {
                    __syncthreads(); // the other buffer's window (the one before) is applied
                    stage_copy(p, in, c_in + w0 + win, min(win, ld - w0 - win), win, stride,
                               xs + ((w0 / win + 1) & 1) * nb * stride);
                    cp_async_wait<1>();
                } else {
                    cp_async_wait<0>();
                }
                if (NORM) stage_normalise(p, in, c_in + w0, min(win, ld - w0), win, stride, buf);
            }
            __syncthreads();
            if (w0 + win >= ld) prefetch_epilogue_state<NM>(p, m, pass0, pend); // arrives while applied
            if (!busy) continue;
#pragma unroll 1
            while (cur.j < chunks && cur.j * CW < w0 + win) {
                // the lane's weights as tf32 parts, [u][k-step][slot]: fp32 ones split once a
                // chunk; 16-bit ones kept as stored (ca, cb) and widened for each entry tile, one
                // instruction a weight, where holding them widened takes 64 registers more
                // (fp16's spilled; bf16's shifts the compiler had already moved there)
                MatRaw ca[EXACT_W ? U : 1], cb[EXACT_W ? U : 1];
                unsigned wb[EXACT_W ? 1 : U][2][4], ws[EXACT_W ? 1 : U][2][4];
#pragma unroll
                for (int u = 0; u < U; u++) {
                    if constexpr (EXACT_W) ca[u] = ra[u], cb[u] = rb[u];
                    else tf32_weights(ra[u], rb[u], wb[u], ws[u]);
                }
                const int j = cur.j;
                float4 *own = sums + warp * SUMS4 + cur.slot * nt * 32;
                cur.j += cur.ks;
                if (other_j < min(cur.j, chunks)) {
                    other_turn(tiles, chunks, pass0, RB, cur, other_j);
                    tile_rows<NM>(p, m, ld, cur.o0, pend, qa, qb);
                }
                if (cur.j < chunks) load_tile_chunk<wide>(qa, qb, ld, cur.j * CW + lcol, ra, rb);
                const float *x = buf + (j * CW - w0) + lcol;
#pragma unroll 1
                for (int t = 0; t < nt; t++) {
                    const int e = min(8 * t + g, nb - 1); // entries past the batch: discarded columns
                    float4 acc = own[t * 32];
#pragma unroll
                    for (int u = 0; u < U; u++) {
                        const float4 xv = *(const float4 *)(x + (long)e * stride + tile_col<wide>(u));
                        const int wu = EXACT_W ? 0 : u;
                        if constexpr (EXACT_W) tf32_weights(ca[u], cb[u], wb[0], ws[0]);
                        float d[4] = {0.f, 0.f, 0.f, 0.f};
                        mma_3xtf32(d, wb[wu][0], ws[wu][0], xv.x, xv.y);
                        mma_3xtf32(d, wb[wu][1], ws[wu][1], xv.z, xv.w);
                        acc.x += d[0];
                        acc.y += d[1];
                        acc.z += d[2];
                        acc.w += d[3];
                    }
                    own[t * 32] = acc;
                }
            }
        }
        __syncthreads(); // every slice's sums are in
        // lane (g, t4) holds rows rg, rh of a tile for entries 8t + 2 t4 and 8t + 2 t4 + 1; the
        // warp of slice s adds up the tile's slices of entry tiles t = s, s + ks, ...
#pragma unroll 1
        for (int group = 0; group < 2; group++) {
            TileSlice ts;
            if (!tile_slice(tiles, chunks, pairs, group, pass0, RB, ts)) continue;
            const int s = ts.j; // the slice, as dealt
            int rg, rh;
            lane_rows<NM>(ts.o0, rg, rh);
            float bg = 0.0f, bh = 0.0f;
            int og = rg, oh = rh;
            const Mat &mg = mat_of_row<NM>(m, 0, og), &mh = mat_of_row<NM>(m, NM - 1, oh);
            if (mg.bias >= 0 && rg < pend) bg = __ldg(wvec(p, mg.bias) + og);
            if (mh.bias >= 0 && rh < pend) bh = __ldg(wvec(p, mh.bias) + oh);
            const float4 *slice0 = sums + (warp - s) * SUMS4 + ts.slot * nt * 32;
            for (int t = s; t < nt; t += ts.ks) {
                float4 s4 = slice0[t * 32];
                for (int k = 1; k < ts.ks; k++) {
                    const float4 y = slice0[k * SUMS4 + t * 32];
                    s4.x += y.x;
                    s4.y += y.y;
                    s4.z += y.z;
                    s4.w += y.w;
                }
                const float acc[4] = {s4.x, s4.y, s4.z, s4.w};
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    const int b = 8 * t + 2 * t4 + i;
                    if (b >= nb) continue;
                    if constexpr (NM == 2) {
                        const float v[NM] = {acc[i] + bg, acc[2 + i] + bh};
                        if (rg < pend) epi(b, rg, v);
                    } else {
                        const float vg[1] = {acc[i] + bg}, vh[1] = {acc[2 + i] + bh};
                        if (rg < pend) epi(b, rg, vg);
                        if (rh < pend) epi(b, rh, vh);
                    }
                }
            }
        }
        __syncthreads(); // the sums are read before the next pass clears them
        pass0 = pend;
    }
}

// Rows [lo, hi) of NM <= 2 matrices that share their row index and input (or, NM = 1, of a
// stack of N matrices sharing the input: row o of the stack, see stack_index), applied to
// every entry of the batch: v = W x (+ bias), then epi(b, o, v[NM]) once per (entry, row). Every
// weight is read from memory once per call, whatever the batch size. On tensor cores,
// proj_rows_mma; with TENSOR_CORES = 0 (for comparison) on CUDA cores:
// - a warp owns RB consecutive rows (NV = NM * RB weight rows) and streams them in chunks of
//   U loads of 4 weights per lane (CW columns), kept in registers while they are applied to
//   every entry;
// - the CTA stages the inputs of all entries in shared memory, a window of columns at a
//   time (normalised there when NORM, statistics computed first for all entries);
// - per tile of JT entries a lane accumulates NV x JT = 32 partial dot products; one
//   transposing warp reduction leaves one sum per lane, added to the warp's running sums in
//   shared memory. The addition order does not depend on the batch or the schedule.
// Rows are taken in passes of RP rows (the running sums of a pass fit in shared memory).
// `block` > 0: row o reads the input at (o / block) * LEN, and a pass stays within one block
// of rows: a BlockLinear (LEN = block), or the sLSTM gates over [x | h] by head (LEN = 2 block).
// LEN is the dot length. NORM projections are never blocked.
template <int NM, bool NORM, int LEN, int N, class Epi>
__device__ void proj_rows(const Params &p, const In &in, const Mat (&m)[N], int block, int lo, int hi, Epi epi)
{
    static_assert(NM <= 2, "projections of one or two matrices");
    if constexpr (TENSOR_CORES) {
        proj_rows_mma<NM, NORM, LEN>(p, in, m, block, lo, hi, epi);
        return;
    }
    using S = ProjShape<NM>;
    constexpr int RB = S::RB, JT = S::JT, NT_MAX = S::NT_MAX, GW = S::GW;
    if (lo >= hi) return;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nb = p.nb, nt = (nb + JT - 1) / JT;
    const float *sums = stage_smem + STAGE_FLOATS + warp * SUMS_WARP + lane;
    tower_wait(p);
    if (NORM) rms_stats(p, in, LEN);
    for (int pass0 = lo; pass0 < hi;) {
        int pend = min(hi, pass0 + S::RP);
        if (block) pend = min(pend, (pass0 / block + 1) * block);
        prefetch_epilogue_state<NM>(p, m, pass0, pend);
        proj_pass<NM, NORM>(p, in, m, LEN, block, pass0, pend);
        // epilogue: lane (r, jj) gathers the NM sums of row o0 + r for entry t * JT + jj
        for (int i = 0; i < GW; i++) {
            const int o0 = pass0 + (warp + i * WARPS) * RB;
            if (o0 >= pend) break;
            const int r = lane / JT, jj = lane % JT, o = o0 + r;
            for (int t = 0; t < nt; t++) {
                const float total = sums[(i * NT_MAX + t) * 32];
                float v[NM];
#pragma unroll
                for (int k = 0; k < NM; k++) v[k] = __shfl_sync(0xffffffffu, total, ((k * RB + r) * JT + jj) & 31);
                const int b = t * JT + jj;
                if (r < RB && o < pend && b < nb) {
#pragma unroll
                    for (int k = 0; k < NM; k++) {
                        int ok = o;
                        const Mat &mk = mat_of_row<NM>(m, k, ok);
                        if (mk.bias >= 0) v[k] += __ldg(wvec(p, mk.bias) + ok);
                    }
                    epi(b, o, v);
                }
            }
        }
        pass0 = pend;
    }
}

// Rows [lo, hi) of a BlockLinear whose blocks (BLOCK elements, a multiple of 4) are narrower
// than a warp's chunk (the mLSTM q, k, v projections), for every entry: one thread per
// (entry, row), consecutive threads on consecutive rows of one entry (the weight loads
// coalesce, the input block is shared by the block's rows). A thread loads the weights and
// inputs of ITEMS pairs (16 float4) before it uses any; its pairs come from a PairWalk.
template <int BLOCK, class Epi>
__device__ void block_rows(const Params &p, const In &in, long w, int lo, int hi, Epi epi)
{
    constexpr int C4 = BLOCK / 4, ITEMS = C4 >= 8 ? 1 : 8 / C4;
    const int nb = p.nb;
    tower_wait(p);
    const PairWalk walk(hi - lo);
    int b0, r0; // this thread's next (entry, row - lo)
    walk.first(b0, r0);
    const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
    while (b0 < nb) {
        float4 wv[ITEMS][C4], xv[ITEMS][C4];
        int b = b0, r = r0;
#pragma unroll
        for (int i = 0; i < ITEMS; i++) {
            const int o = lo + r;
            const float *x = in_row(in, min(b, nb - 1)) + o / BLOCK * BLOCK;
#pragma unroll
            for (int c = 0; c < C4; c++) {
                wv[i][c] = b < nb ? unpack(ld_mat4(p, w, (long)o * BLOCK + 4 * c)) : zero;
                xv[i][c] = b < nb ? ld_act4(x + 4 * c) : zero;
            }
            walk.next(b, r);
        }
#pragma unroll
        for (int i = 0; i < ITEMS; i++) {
            float v = 0.0f;
#pragma unroll
            for (int c = 0; c < C4; c++) {
                v = fmaf(wv[i][c].x, xv[i][c].x, v);
                v = fmaf(wv[i][c].y, xv[i][c].y, v);
                v = fmaf(wv[i][c].z, xv[i][c].z, v);
                v = fmaf(wv[i][c].w, xv[i][c].w, v);
            }
            if (b0 < nb) {
                const float out[1] = {v};
                epi(b0, lo + r0, out);
            }
            walk.next(b0, r0);
        }
    }
}

// ---- phases every tower has ----------------------------------------------------------------
// input_up/input_down at the start, the MLP of every block, output_proj at the end.
enum { PH_IN_UP = 100, PH_IN_DOWN, PH_MLP_UP, PH_MLP_DOWN, PH_OUT };

// ---- cost of a unit of work --------------------------------------------------------------------
// A stage's units are split over the CTAs by cost, in quarter bytes of memory traffic: a
// projection row streams its weights once (4 bytes a float) and, per entry of the batch,
// stages its input and does its FMAs (3 quarter bytes a weight, from the per-stage trace at
// batch 50), plus `per_entry` for what its epilogue does per entry (measured, see the
// towers); a state task moves its bytes at about half the rate of a weight stream (fewer
// loads in flight).
__device__ __forceinline__ long row_cost(int nm, int len, int nb, long per_entry = 0)
{
    return (long)nm * ld4(len) * (16 + 3 * nb) + per_entry * nb;
}
__device__ __forceinline__ long state_cost(long bytes) { return 8 * bytes; }

__device__ __forceinline__ long common_cost(int phase, int nb)
{
    switch (phase) {
    case PH_IN_UP: return row_cost(1, F, nb);
    case PH_IN_DOWN: case PH_MLP_DOWN: return row_cost(1, P, nb);
    }
    return row_cost(1, H, nb); // MLP up, output
}

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
        In in = {};
        in.base = p.feats;
        in.stride = F4;
        Mat m[1] = {mat(t.input_up_weight, t.input_up_bias)};
        proj_rows<1, false, F>(p, in, m, 0, lo, hi,
                               [&](int b, int o, const float (&v)[1]) { sc(p, ap, b)[o] = reluf(v[0]); });
        break;
    }
    case PH_IN_DOWN: { // u = input_down(ap)   [H] <- [P]
        In in = in_act(p, ap);
        Mat m[1] = {mat(t.input_down_weight, t.input_down_bias)};
        proj_rows<1, false, P>(p, in, m, 0, lo, hi,
                               [&](int b, int o, const float (&v)[1]) { sc(p, u, b)[o] = v[0]; });
        break;
    }
    case PH_MLP_UP: { // ap = relu(fc1(RMSNorm(u; norm2)))   [P] <- [H]
        In in = in_rms(in_act(p, u), EPS_BLOCK, wvec(p, blk + t.norm2_weight));
        Mat m[1] = {mat(blk + t.fc1_weight, blk + t.fc1_bias)};
        proj_rows<1, true, H>(p, in, m, 0, lo, hi,
                              [&](int b, int o, const float (&v)[1]) { sc(p, ap, b)[o] = reluf(v[0]); });
        break;
    }
    case PH_MLP_DOWN: { // u += fc2(ap)   [H] <- [P]
        In in = in_act(p, ap);
        Mat m[1] = {mat(blk + t.fc2_weight, blk + t.fc2_bias)};
        proj_rows<1, false, P>(p, in, m, 0, lo, hi,
                               [&](int b, int o, const float (&v)[1]) { sc(p, u, b)[o] += v[0]; });
        break;
    }
    case PH_OUT: { // out[k] = output_proj(u), one output_proj shared by all towers
        In in = in_act(p, u);
        Mat m[1] = {mat(W_output_proj_weight, W_output_proj_bias)};
        proj_rows<1, false, H>(p, in, m, 0, lo, hi,
                               [&](int b, int, const float (&v)[1]) { p.out[b * 4 + tower] = v[0]; });
        break;
    }
    }
}
