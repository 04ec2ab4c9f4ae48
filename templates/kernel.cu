// ---- kernel.cu: the persistent step kernel ----------------------------------------------------
// One launch = one ensemble step for a batch of distinct slots. Stage s runs, for each tower,
// the phase the stage table gives it (or nothing); all towers' units of work of a stage are
// split over every CTA of the grid in equal shares of cost (tower_cost: bytes and FMAs of a
// unit), then a grid barrier separates the stages.

struct StageEntry {
    signed char phase; // tower phase, PH_* for the shared ones, -1: idle
    signed char block; // block index of the phase
};

// @@stage_table@@

static_assert(XLSTM::PHASES == XLSTM_PHASES && Mamba2::PHASES == MAMBA2_PHASES &&
                  RetNet::PHASES == RETNET_PHASES && Hawk::PHASES == HAWK_PHASES,
              "the generator's phase counts disagree with the templates");

__device__ __forceinline__ int tower_units(int tower, int phase, int nb)
{
    if (phase >= PH_IN_UP) return common_units(phase);
    switch (tower) {
    case 0: return XLSTM::units(phase, nb);
    case 1: return Mamba2::units(phase, nb);
    case 2: return RetNet::units(phase, nb);
    default: return Hawk::units(phase, nb);
    }
}

__device__ __forceinline__ long tower_cost(int tower, int phase, int nb)
{
    if (phase >= PH_IN_UP) return common_cost(phase, nb);
    switch (tower) {
    case 0: return XLSTM::cost(phase, nb);
    case 1: return Mamba2::cost(phase, nb);
    case 2: return RetNet::cost(phase, nb);
    default: return Hawk::cost(phase, nb);
    }
}

// The units of [0, count) whose start (base + u * cost) lies in the cost range [a, b).
__device__ __forceinline__ bool cost_part(long a, long b, long base, long cost, int count, int &lo, int &hi)
{
    const auto first = [&](long x) { return x <= base ? 0L : min((long)count, (x - base + cost - 1) / cost); };
    lo = (int)first(a);
    hi = (int)first(b);
    return lo < hi;
}

__device__ void tower_run(const Params &p, int tower, int phase, int l, int lo, int hi)
{
    if (phase >= PH_IN_UP) {
        const TowerCommon t = tower == 0   ? tower_common<L_xlstm>()
                              : tower == 1 ? tower_common<L_mamba2>()
                              : tower == 2 ? tower_common<L_retnet>()
                                           : tower_common<L_hawk>();
        common_run(p, t, tower, phase, l, lo, hi);
        return;
    }
    switch (tower) {
    case 0: XLSTM::run(p, phase, l, lo, hi); break;
    case 1: Mamba2::run(p, phase, l, lo, hi); break;
    case 2: RetNet::run(p, phase, l, lo, hi); break;
    default: Hawk::run(p, phase, l, lo, hi); break;
    }
}

// This CTA's share of stage s.
__device__ void run_stage(const Params &p, int s)
{
    int units[4];
    long cost[4], total = 0;
    for (int k = 0; k < 4; k++) {
        const int ph = STAGES[s][k].phase;
        units[k] = ph < 0 ? 0 : tower_units(k, ph, p.nb);
        cost[k] = ph < 0 ? 0 : SPLIT_BY_COST ? tower_cost(k, ph, p.nb) : 1;
        total += units[k] * cost[k];
    }
    // A unit runs on one CTA: one costlier than a CTA's share (a CTA-per-entry phase at
    // small batches) counts as one share, or the CTAs whose shares it covers would idle.
    const long share = total / gridDim.x + 1;
    total = 0;
    for (int k = 0; k < 4; k++) {
        cost[k] = min(cost[k], share);
        total += units[k] * cost[k];
    }
    // this CTA's contiguous share of the stage's cost, all towers' units concatenated
    const long a = total * blockIdx.x / gridDim.x, b = total * (blockIdx.x + 1) / gridDim.x;
    long base = 0;
    for (int k = 0; k < 4; k++) {
        int lo, hi;
        if (units[k] && cost_part(a, b, base, cost[k], units[k], lo, hi))
            tower_run(p, k, STAGES[s][k].phase, STAGES[s][k].block, lo, hi);
        base += units[k] * cost[k];
    }
}

// Per-stage trace (p.trace non-null; the normal path pays one uniform branch per stage):
// thread 0 of each CTA writes %globaltimer (ns, one clock for all SMs) to
// p.trace[(row * gridDim.x + blockIdx.x) * 2 + i], (NUM_STAGES + 1) * gridDim.x * 2 values:
// row 0 = {step start, step start}, row s + 1 = {stage s done by every warp of the CTA;
// grid barrier released} (the last stage has no barrier: released right after done).
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

__device__ __forceinline__ void traced_barrier(const Params &p, int s)
{
    __syncthreads();
    if (threadIdx.x == 0) trace_at(p, s + 1, 0) = global_ns();
    if (s + 1 < NUM_STAGES) grid_barrier(p.bar);
    if (threadIdx.x == 0) trace_at(p, s + 1, 1) = global_ns();
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) KERNEL_NAME(Params p)
{
    if (p.trace && threadIdx.x == 0) trace_at(p, 0, 0) = trace_at(p, 0, 1) = global_ns();
    for (int s = 0; s < NUM_STAGES; s++) {
        run_stage(p, s);
        if (p.trace) traced_barrier(p, s);
        else if (s + 1 < NUM_STAGES) grid_barrier(p.bar);
    }
}
