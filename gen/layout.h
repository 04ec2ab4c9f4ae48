/* Device memory layout of a spec's fused kernel: where every weight tensor, every state
 * tensor of a symbol's slot and every activation of the batch lives, in floats.
 *
 * The generator bakes these offsets into the kernel source as constants; the runtime
 * uses the same layout_t to upload weights and initialise state, so the two agree by
 * construction. Weight offsets are in bytes, state and activation offsets in floats; all
 * are multiples of 16 bytes for vector loads. With precision.state bf16 the mLSTM memory and
 * Mamba2's SSM state hold two elements a float; they start at 0, which is 0 in either
 * precision. RetNet's retention stays fp32 (README, Accuracy). With state.writeback > 1 the
 * mLSTM and RetNet blocks also hold the log of the steps since their matrices were stored
 * (layout_log_entry). */
#ifndef STEPFUSE_LAYOUT_H
#define STEPFUSE_LAYOUT_H

#include <stdint.h>

#include "model.h"
#include "spec.h"

#define LAYOUT_NAME_MAX 48

/* Rows of a RetNet or mLSTM state matrix one warp task updates: the retrievals of a head
 * come out as ceil(head size / KERNEL_STATE_ROWS) partial sums, added where they are read.
 * 64 rows: a task's fixed part (its gates, q and k rows, the count of finished tasks) is paid
 * for twice the rows of 32, and batch 1 still has 256 mLSTM tasks (notes/gpu.md, runs
 * 110-112: 32, 64 and 128 rows; batch 1 in bf16 2% slower than with 32). */
#ifndef KERNEL_STATE_ROWS
#define KERNEL_STATE_ROWS 64
#endif

/* Columns of the mLSTM input and forget gate projections (8 rows of 3 x inner size at full
 * size) one warp task sums: the gates come out as ceil(3 inner / KERNEL_GATE_COLS) partial
 * sums per head, added where they are read. */
#define KERNEL_GATE_COLS 1024
#define LAYOUT_MAX_REGIONS 24

/* A named piece of state (per block) or scratch (per tower). */
typedef struct {
    char name[LAYOUT_NAME_MAX];
    int64_t offset; /* state: from the block's start; scratch: from the scratch buffer start */
    int64_t floats; /* state: size; scratch: floats per batch entry (the row stride) */
    float init;     /* state: initial value of every element */
} region_t;

typedef struct {
    /* weights: one entry per catalogue tensor at weight_offset bytes, rows of `row`
     * elements of weight_elem bytes (4: fp32, 2: bf16 or fp16) stored `ld` elements apart; a sLSTM
     * gate's input and state matrices share rows (ld twice the row, the state matrix's
     * offset the input matrix's plus a row) */
    int64_t *weight_offset;
    int64_t *weight_rows, *weight_row, *weight_ld;
    int *weight_elem;
    int64_t weight_bytes;
    int64_t tower_block0[NUM_TOWERS];      /* byte offset of towers.k.blocks.0's first tensor */
    int64_t tower_block_stride[NUM_TOWERS];

    /* state of one symbol: tower k's block l starts at state_base[k] + l * state_block[k] */
    int64_t state_base[NUM_TOWERS], state_block[NUM_TOWERS];
    region_t state[NUM_TOWERS][LAYOUT_MAX_REGIONS];
    int state_count[NUM_TOWERS];
    int64_t slot_floats;

    /* activations of the batch: each region is [max_batch][floats] */
    region_t scratch[NUM_TOWERS][LAYOUT_MAX_REGIONS];
    int scratch_count[NUM_TOWERS];
    int64_t scratch_floats;
} layout_t;

/* Lay out a derived spec. Fails (message in err) when a size the kernel loads with float4
 * is not a multiple of 4, or when the catalogue is not block-regular. */
int layout_build(const spec_t *s, const catalogue_t *c, layout_t *out, char *err);
void layout_free(layout_t *l);

/* Tower k's state region `name`, or NULL. */
const region_t *layout_state_region(const layout_t *l, int k, const char *name);

/* Fill one slot's initial state image: slot_floats floats. */
void layout_initial_state(const spec_t *s, const layout_t *l, float *slot);

/* State write-back (spec key state.writeback = K > 1): the mLSTM memory C and RetNet's R are
 * stored every K-th step of a symbol only. Each block keeps the count of steps logged since
 * (`m_logged`, `R_logged`, int32 bits) and their updates S = f S + a v^T, K - 1 entries
 * (`m_log`, `R_log`) of layout_log_entry floats: a [heads][dim], v [heads][dim], f [heads]. A
 * step replays the logged updates on each element it reads, in order and with the same
 * operations as when it is stored, so the values are those of storing every step. */
int64_t layout_log_entry(int heads, int dim);

/* Floats of a slot that hold the model's state: all but the write-back logs and counts. */
int64_t layout_model_state_floats(const spec_t *s, const layout_t *l);

/* Apply a slot image's logged updates to its matrices and empty the logs: the image then
 * holds the model's state. A saved slot (save_slot) keeps its log, so that snapshots stay a
 * copy: at full size the replay takes the host a fraction of a second a slot. */
void layout_flush_state(const spec_t *s, const layout_t *l, float *slot);

#endif
