/* The C reference of one ensemble step (../shared/MODEL.md), in float64 or float32,
 * one request at a time on one symbol's host state. It is the oracle for the GPU kernel. */
#ifndef STEPFUSE_REFERENCE_H
#define STEPFUSE_REFERENCE_H

#include <stddef.h>

#include "spec.h"
#include "weights.h"

typedef enum { REF_FP64, REF_FP32 } ref_precision_t;

typedef struct ref_model ref_model_t;

/* Bind a spec's weights (kept by reference: w must outlive the model). */
ref_model_t *ref_create(const spec_t *s, const weights_t *w, ref_precision_t p);
void ref_destroy(ref_model_t *m);

/* One symbol's state is an opaque block of ref_state_bytes() bytes. */
size_t ref_state_bytes(const ref_model_t *m);
void ref_state_init(const ref_model_t *m, void *state);

/* features: [F]; out: [4] in tower order xLSTM, Mamba2, RetNet, Hawk. */
void ref_step(const ref_model_t *m, void *state, const float *features, double out[4]);

#endif
