/* The stage table (see stage_table.h). */
#include "stage_table.h"

#include "emit.h"
#include "util.h"

const int tower_layer_phases[NUM_TOWERS] = {XLSTM_LAYER_PHASES, MAMBA2_LAYER_PHASES,
                                            RETNET_LAYER_PHASES, HAWK_LAYER_PHASES};

/* A window fits the longest tower: its layer phases and the MLP's two. */
int stage_slots(void)
{
    int w = 0;
    for (int k = 0; k < NUM_TOWERS; k++)
        if (tower_layer_phases[k] + 2 > w) w = tower_layer_phases[k] + 2;
    return w;
}

int stage_count(const spec_t *s) { return 2 + s->tower_depth * stage_slots() + 1; }

stage_entry_t *stage_table(const spec_t *s)
{
    const int W = stage_slots(), n = stage_count(s);
    stage_entry_t *t = xmalloc((size_t)n * NUM_TOWERS * sizeof *t);
    for (int k = 0; k < NUM_TOWERS; k++) {
        t[0 * NUM_TOWERS + k] = (stage_entry_t){PHASE_IN_UP, 0};
        t[1 * NUM_TOWERS + k] = (stage_entry_t){PHASE_IN_DOWN, 0};
        t[(n - 1) * NUM_TOWERS + k] = (stage_entry_t){PHASE_OUT, 0};
        const int phases = tower_layer_phases[k] + 2; /* layer phases, MLP up, MLP down */
        for (int l = 0; l < s->tower_depth; l++) {
            stage_entry_t *window = t + (2 + (size_t)l * W) * NUM_TOWERS + k;
            for (int slot = 0; slot < W; slot++) window[slot * NUM_TOWERS] = (stage_entry_t){PHASE_IDLE, l};
            /* phase i goes to slot i * W / phases: increasing, distinct since phases <= W */
            for (int i = 0; i < phases; i++) {
                const int phase = i < phases - 2 ? i : i == phases - 2 ? PHASE_MLP_UP : PHASE_MLP_DOWN;
                window[(i * W / phases) * NUM_TOWERS] = (stage_entry_t){phase, l};
            }
        }
    }
    return t;
}

const char *phase_name(int tower, int phase)
{
    static const char *const layer[NUM_TOWERS][XLSTM_LAYER_PHASES] = {
        {"xlstm.0", "xlstm.1", "xlstm.2", "xlstm.3", "xlstm.4", "xlstm.5", "xlstm.6", "xlstm.7", "xlstm.8"},
        {"mamba2.0", "mamba2.1", "mamba2.2"},
        {"retnet.0", "retnet.1", "retnet.2"},
        {"hawk.0", "hawk.1", "hawk.2"}};
    static const char *const mlp[NUM_TOWERS][2] = {{"xlstm.mlp_up", "xlstm.mlp_down"},
                                                   {"mamba2.mlp_up", "mamba2.mlp_down"},
                                                   {"retnet.mlp_up", "retnet.mlp_down"},
                                                   {"hawk.mlp_up", "hawk.mlp_down"}};
    if (tower < 0 || tower >= NUM_TOWERS) return "?";
    switch (phase) {
    case PHASE_IDLE: return "-";
    case PHASE_IN_UP: return "in_up";
    case PHASE_IN_DOWN: return "in_down";
    case PHASE_OUT: return "out";
    case PHASE_MLP_UP: return mlp[tower][0];
    case PHASE_MLP_DOWN: return mlp[tower][1];
    }
    return phase >= 0 && phase < tower_layer_phases[tower] ? layer[tower][phase] : "?";
}
