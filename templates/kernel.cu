// ---- kernel.cu: the persistent step kernel ----------------------------------------------------
// One launch = one ensemble step for a batch of distinct slots. Stage s runs, for each tower,
// the phase the stage table gives it (or nothing); the CTAs of the grid are dealt to the
// towers in proportion to cost (tower_cost: bytes and FMAs of a unit), each tower's units
// split over its CTAs in equal shares of cost, then a grid barrier separates the stages.

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

// Whether the phase's first read of memory any stage writes is in a projection (proj_rows,
// block_rows), which waits for the grid barrier itself.
__device__ __forceinline__ bool opens_with_projection(int tower, int phase)
{
    if (phase >= PH_IN_UP) return true;
    switch (tower) {
    case 0: return XLSTM::opens_with_projection(phase);
    case 1: return Mamba2::opens_with_projection(phase);
    case 2: return RetNet::opens_with_projection(phase);
    default: return Hawk::opens_with_projection(phase);
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

// The units [lo, hi) of [0, count) whose start (u * cost) lies in the cost range [a, b).
__device__ __forceinline__ void cost_part(long a, long b, long cost, int count, int &lo, int &hi)
{
    const auto first = [&](long x) { return x <= 0 ? 0L : min((long)count, (x + cost - 1) / cost); };
    lo = (int)first(a);
    hi = (int)first(b);
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

// This CTA's part of a stage: units [lo, hi) of one tower's phase (lo == hi: nothing).
struct StagePart {
    int tower, lo, hi;
};

// This CTA's part of stage s. The CTAs are dealt to the towers in proportion to their
// phases' costs (largest remainders), so that no CTA runs two towers' phases: a CTA's rows of
// two towers' projections would take two passes, each staging its input. A tower's CTAs
// then split its units in equal shares of cost. The engine launches at least NUM_TOWERS CTAs.
__device__ StagePart stage_part(const Params &p, int s)
{
    int units[NUM_TOWERS], ctas[NUM_TOWERS], given = 0;
    long cost[NUM_TOWERS], part[NUM_TOWERS], rem[NUM_TOWERS], total = 0;
    for (int k = 0; k < NUM_TOWERS; k++) {
        const int ph = STAGES[s][k].phase;
        units[k] = ph < 0 ? 0 : tower_units(k, ph, p.nb);
        cost[k] = ph < 0 ? 0 : SPLIT_BY_COST ? tower_cost(k, ph, p.nb) : 1;
        total += units[k] * cost[k];
    }
    // A unit runs on one CTA: one costlier than a CTA's share (a CTA-per-entry phase at
    // small batches) counts as one share, or the CTAs whose shares it covers would idle.
    const long share = total / gridDim.x + 1;
    total = 0;
    for (int k = 0; k < NUM_TOWERS; k++) {
        cost[k] = min(cost[k], share);
        part[k] = units[k] * cost[k];
        total += part[k];
    }
    for (int k = 0; k < NUM_TOWERS; k++) {
        ctas[k] = units[k] ? max(1L, gridDim.x * part[k] / total) : 0;
        rem[k] = units[k] ? gridDim.x * part[k] % total : -1;
        given += ctas[k];
    }
    for (; given < (int)gridDim.x; given++) { // the rest to the largest remainders
        int best = 0;
        for (int k = 1; k < NUM_TOWERS; k++)
            if (rem[k] > rem[best]) best = k;
        ctas[best]++;
        rem[best] = -1;
    }
    for (; given > (int)gridDim.x; given--) { // a tower's minimum of one CTA, taken from the most
        int most = 0;
        for (int k = 1; k < NUM_TOWERS; k++)
            if (ctas[k] > ctas[most]) most = k;
        ctas[most]--;
    }
    int k = 0, first = 0; // this CTA's tower and the tower's first CTA
    while (blockIdx.x >= first + ctas[k]) first += ctas[k++];
    const int i = blockIdx.x - first;
    StagePart sp = {k, 0, 0};
    cost_part(part[k] * i / ctas[k], part[k] * (i + 1) / ctas[k], cost[k], units[k], sp.lo, sp.hi);
    return sp;
}

// Every stage's part of this CTA, worked out once per launch (a stage per thread), so that a
// stage starts with its work right after the grid barrier.
__shared__ StagePart stage_parts[NUM_STAGES];

// This CTA's tower value of stage s, after the times.
__device__ __forceinline__ unsigned long long &trace_tower_at(const Params &p, int s)
{
    return p.trace[(NUM_STAGES + 1) * gridDim.x * 2 + s * gridDim.x + blockIdx.x];
}

__device__ __forceinline__ void trace_start(const Params &p)
{
    unsigned sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    trace_at(p, 0, 0) = trace_at(p, 0, 1) = global_ns();
    trace_tower_at(p, NUM_STAGES) = sm; // the row after the towers' (step_trace.h)
}

// Stage s done by the CTA: traced, then the grid barrier's arrival (none after the last stage).
__device__ __forceinline__ void stage_done(const Params &p, int s, const StagePart &sp)
{
    if (p.trace) {
        grid_wait(p); // a CTA without work in s has not passed the barrier before it
        __syncthreads();
        if (threadIdx.x == 0) {
            trace_at(p, s + 1, 0) = global_ns();
            trace_tower_at(p, s) = sp.lo < sp.hi ? sp.tower : NUM_TOWERS;
            if (s + 1 == NUM_STAGES) trace_at(p, s + 1, 1) = trace_at(p, s + 1, 0);
        }
    }
    if (s + 1 < NUM_STAGES) grid_arrive(p, s);
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) KERNEL_NAME(Params p)
{
    if (p.trace && threadIdx.x == 0) trace_start(p);
    for (int s = threadIdx.x; s < NUM_STAGES; s += THREADS) stage_parts[s] = stage_part(p, s);
    if (threadIdx.x == 0) bar_stage = -1;
    __syncthreads();
    for (int s = 0; s < NUM_STAGES; s++) {
        const StagePart sp = stage_parts[s];
        const StageEntry e = STAGES[s][sp.tower];
        if (sp.lo < sp.hi) {
            // a phase that opens with a projection waits for the barrier in it (proj_rows_mma
            // once its first weights are asked for); any other waits now
            if (!opens_with_projection(sp.tower, e.phase)) grid_wait(p);
            tower_run(p, sp.tower, e.phase, e.block, sp.lo, sp.hi);
        }
        stage_done(p, s, sp);
    }
}
