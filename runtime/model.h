/* The tensor catalogue: every parameter tensor a spec's model has, with its original
 * state_dict name, shape and how the weight generator initialises it.
 *
 * This one table serves the weights loader (presence, dtype, shape checks), the weight
 * generator, the C reference (which looks tensors up by name) and the GPU layout. */
#ifndef STEPFUSE_MODEL_H
#define STEPFUSE_MODEL_H

#include <stdint.h>

#include "spec.h"

#define TENSOR_NAME_MAX 96
#define TENSOR_MAX_DIMS 3

typedef enum {
    INIT_LINEAR,       /* N(0, 1/fan_in): Linear, BlockLinear and conv weights */
    INIT_BIAS,         /* small N(0, bias_std) */
    INIT_NORM,         /* near 1: RMSNorm, LayerNorm, GroupNorm weights */
    INIT_ONES,         /* exactly 1: Mamba2 d, mLSTM learnable_skip */
    INIT_MAMBA_A,      /* uniform in [-16, -1] */
    INIT_RGLRU_A,      /* uniform in (0.9, 0.999) */
    INIT_RETNET_DECAY, /* decay[n] = 1 - 2^(-5-n) */
    INIT_RETNET_ANGLE, /* angle[2j] = angle[2j+1] = 1 / 10000^(j / (D/2 - 1)) */
} init_kind_t;

typedef struct {
    char name[TENSOR_NAME_MAX];
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t numel;
    init_kind_t init;
    int fan_in; /* INIT_LINEAR: inputs per output */
    int tower;  /* 0..3, or -1 for the shared output_proj */
    int matrix; /* a Linear or BlockLinear weight: streamed by the projections and stored in
                   the spec's weight precision (every other tensor stays fp32) */
} tensor_desc_t;

typedef struct {
    tensor_desc_t *t;
    int count;
    int64_t total_numel;
} catalogue_t;

/* Build the catalogue of a validated (derived) spec, in a fixed deterministic order. */
void catalogue_build(const spec_t *s, catalogue_t *c);
void catalogue_free(catalogue_t *c);

/* Format a tensor name into dst (TENSOR_NAME_MAX bytes); a name that does not fit is a
 * programming error and aborts. */
__attribute__((format(printf, 2, 3))) void tensor_name(char *dst, const char *fmt, ...);

/* Bytes of the weights stored in the given precision: matrices in it, the rest fp32. */
int64_t catalogue_bytes(const catalogue_t *c, precision_t weights);

/* Index of a tensor by name, or -1. */
int catalogue_find(const catalogue_t *c, const char *name);

#endif
