// ---- kernel.cu: the persistent step kernel ----------------------------------------------------
// One launch = one ensemble step for a batch of distinct slots. The CTAs of the grid are dealt
// to the towers once a launch, in proportion to cost (tower_cost: bytes and FMAs of a unit,
// summed over the step). Stage s runs, for each tower, the phase the stage table gives it (or
// nothing), the tower's units split over its CTAs in equal shares of cost; the tower's own
// barrier separates its phases, so that no tower waits for another's.

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
// block_rows), which waits for the tower barrier itself.
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

__device__ __forceinline__ void tower_run(const Params &p, int tower, int phase, int l, int lo, int hi)
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

// This CTA's part of a stage: units [lo, hi) of its tower's phase (lo == hi: nothing).
struct StagePart {
    int lo, hi;
};

// Tower k's units in stage s and the cost of one (0, 0: idle).
__device__ __forceinline__ void stage_units(const Params &p, int s, int k, int &units, long &cost)
{
    const int ph = STAGES[s][k].phase;
    units = ph < 0 ? 0 : tower_units(k, ph, p.nb);
    cost = ph < 0 ? 0 : SPLIT_BY_COST ? tower_cost(k, ph, p.nb) : 1;
}

// A tower's CTAs: the grid is dealt to the towers once a launch, in proportion to each
// tower's cost summed over the stages and weighed by p.tower_weight (largest remainders, at
// least one CTA a tower), so that a CTA runs one tower's phases all step and waits only for
// its tower's CTAs. The engine launches at least NUM_TOWERS CTAs and chooses the weights by
// batch size (runtime/engine_gpu.c): what the unit costs miss of a whole tower.

struct Group {
    int tower, first, ctas;
};

__shared__ unsigned long long tower_totals[NUM_TOWERS]; // tower_group's sums over the stages

// Called by every thread of the CTA: a stage per thread adds its costs to the towers' sums
// (integers: the same in any order), then every thread deals the CTAs from them.
__device__ Group tower_group(const Params &p)
{
    if (threadIdx.x < NUM_TOWERS) tower_totals[threadIdx.x] = 0;
    __syncthreads();
    for (int s = threadIdx.x; s < NUM_STAGES; s += THREADS)
        for (int k = 0; k < NUM_TOWERS; k++) {
            int units;
            long cost;
            stage_units(p, s, k, units, cost);
            if (units) atomicAdd(&tower_totals[k], (unsigned long long)(units * cost * p.tower_weight[k]));
        }
    __syncthreads();
    long total[NUM_TOWERS], rem[NUM_TOWERS], sum = 0;
    int ctas[NUM_TOWERS], given = 0;
    for (int k = 0; k < NUM_TOWERS; k++) sum += total[k] = (long)tower_totals[k];
    for (int k = 0; k < NUM_TOWERS; k++) {
        ctas[k] = max(1L, gridDim.x * total[k] / sum);
        rem[k] = gridDim.x * total[k] % sum;
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
    Group g = {0, 0, ctas[0]};
    while (blockIdx.x >= g.first + g.ctas) {
        g.first += g.ctas;
        g.ctas = ctas[++g.tower];
    }
    return g;
}

// This CTA's part of stage s: its tower's units split over the tower's CTAs in equal shares
// of cost.
__device__ StagePart stage_part(const Params &p, int s, const Group &g)
{
    int units;
    long cost;
    stage_units(p, s, g.tower, units, cost);
    StagePart sp = {0, 0};
    if (units == 0) return sp;
    const long part = units * cost;
    // A unit runs on one CTA: one costlier than a CTA's share (a CTA-per-entry phase at
    // small batches) counts as one share, or the CTAs whose shares it covers would idle.
    const long share = part / g.ctas + 1, c = min(cost, share), all = units * c;
    const int i = blockIdx.x - g.first;
    cost_part(all * i / g.ctas, all * (i + 1) / g.ctas, c, units, sp.lo, sp.hi);
    return sp;
}

// Every stage's part of this CTA, worked out once per launch (a stage per thread), so that a
// stage starts with its work right after the tower barrier.
__shared__ StagePart stage_parts[NUM_STAGES];

// This CTA's tower value of stage s, after the times.
__device__ __forceinline__ unsigned long long &trace_tower_at(const Params &p, int s)
{
    return p.trace[(NUM_STAGES + 1) * gridDim.x * 2 + s * gridDim.x + blockIdx.x];
}

__device__ __forceinline__ void trace_start(const Params &p, int tower)
{
    unsigned sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    trace_at(p, 0, 0) = trace_at(p, 0, 1) = global_ns();
    trace_tower_at(p, NUM_STAGES) = sm; // the rows after the towers' (step_trace.h)
    trace_tower_at(p, NUM_STAGES + 1) = tower;
}

// Stage s done by the CTA of tower k: traced, then the tower barrier's arrival (none after the
// last stage). A stage where the tower is idle has no barrier: traced as done once the barrier
// before is passed, which the traced step waits for there.
__device__ __forceinline__ void stage_done(const Params &p, int s, int k, bool idle, const StagePart &sp)
{
    if (p.trace) {
        tower_wait(p); // a CTA without work in s has not passed the barrier before it
        __syncthreads();
        if (threadIdx.x == 0) {
            trace_at(p, s + 1, 0) = global_ns();
            trace_tower_at(p, s) = sp.lo < sp.hi ? k : NUM_TOWERS;
            if (idle || s + 1 == NUM_STAGES) trace_at(p, s + 1, 1) = trace_at(p, s + 1, 0);
        }
    }
    if (!idle && s + 1 < NUM_STAGES) tower_arrive(p, s);
}

extern "C" __global__ void __launch_bounds__(THREADS, 1) KERNEL_NAME(Params p)
{
    const Group g = tower_group(p);
    if (p.trace && threadIdx.x == 0) trace_start(p, g.tower);
    for (int s = threadIdx.x; s < NUM_STAGES; s += THREADS) stage_parts[s] = stage_part(p, s, g);
    if (threadIdx.x == 0) {
        bar_stage = -1;
        set_barrier(p, g.tower, blockIdx.x == g.first, g.ctas);
    }
    __syncthreads();
    for (int s = 0; s < NUM_STAGES; s++) {
        const StagePart sp = stage_parts[s];
        const StageEntry e = STAGES[s][g.tower];
        if (sp.lo < sp.hi) {
            // a phase that opens with a projection waits for the barrier in it (proj_rows_mma
            // once its first weights are asked for); any other waits now
            if (!opens_with_projection(g.tower, e.phase)) tower_wait(p);
            tower_run(p, g.tower, e.phase, e.block, sp.lo, sp.hi);
        }
        stage_done(p, s, g.tower, e.phase < 0, sp);
    }
}
