// ---- kernel.cu: the persistent step kernel ----------------------------------------------------
// One launch = one ensemble step for a batch of distinct slots. Stage s runs, for each tower,
// the phase the stage table gives it (or nothing); all towers' units of work of a stage are
// split evenly over every CTA of the grid, then a grid barrier separates the stages.

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

extern "C" __global__ void __launch_bounds__(THREADS, 1) KERNEL_NAME(Params p)
{
    for (int s = 0; s < NUM_STAGES; s++) {
        int units[4], total = 0;
        for (int k = 0; k < 4; k++) {
            const int ph = STAGES[s][k].phase;
            units[k] = ph < 0 ? 0 : tower_units(k, ph, p.nb);
            total += units[k];
        }
        // this CTA's contiguous share of the stage's units, all towers concatenated
        const int lo = (int)((long)total * blockIdx.x / gridDim.x);
        const int hi = (int)((long)total * (blockIdx.x + 1) / gridDim.x);
        int base = 0;
        for (int k = 0; k < 4; k++) {
            int a, e;
            if (part(lo, hi, base, units[k], a, e)) tower_run(p, k, STAGES[s][k].phase, STAGES[s][k].block, a, e);
            base += units[k];
        }
        if (s + 1 < NUM_STAGES) grid_barrier(p.bar);
    }
}
