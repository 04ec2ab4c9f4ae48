/* The stage table of the fused kernel: for each stage of a step, the phase and block each
 * tower runs (templates/kernel.cu runs a tower's phases in stage order, a barrier of the
 * tower's CTAs after each). One function makes it, for the generated STAGES constant and for
 * the per-stage trace report. */
#ifndef STEPFUSE_STAGE_TABLE_H
#define STEPFUSE_STAGE_TABLE_H

#include "spec.h"

/* Stage table phases: a tower's layer phase 0..n-1 (see the top of templates/<tower>.cu),
 * idle, or one of the phases every tower has; those have the values of the PH_* constants
 * of templates/common.cu and are emitted by name. */
enum { PHASE_IDLE = -1, PHASE_IN_UP = 100, PHASE_IN_DOWN, PHASE_MLP_UP, PHASE_MLP_DOWN, PHASE_OUT };

typedef struct {
    int phase; /* layer phase, PHASE_* */
    int block; /* block of the phase (0 for the input and output stages) */
} stage_entry_t;

/* Layer phases of each tower, in tower order. */
extern const int tower_layer_phases[NUM_TOWERS];

/* Stages of a step: 2 input stages, stage_slots() per block, 1 output stage. */
int stage_slots(void);
int stage_count(const spec_t *s);

/* The table [stage_count(s)][NUM_TOWERS] (malloc'd): input_up, input_down; per block a
 * window of stage_slots() slots over which each tower spreads its layer phases, then its
 * MLP's two, in order and evenly; output_proj. */
stage_entry_t *stage_table(const spec_t *s);

/* Printable name of a tower's phase: "in_up", "in_down", "out" (the same in every tower),
 * "xlstm.1", "hawk.mlp_down", ...; "-" when idle. */
const char *phase_name(int tower, int phase);

#endif
