/* Code emission: one spec -> the CUDA source of its fused step kernel, built from the
 * templates in templates/ (embedded in the binary at build time) with the spec's sizes,
 * memory layout and stage table filled in at their markers. Same spec, same bytes. */
#ifndef STEPFUSE_EMIT_H
#define STEPFUSE_EMIT_H

#include <stddef.h>

#include "spec.h"

/* Phases of each tower's layer in the templates (checked by a static_assert there). */
#define XLSTM_LAYER_PHASES 9
#define MAMBA2_LAYER_PHASES 3
#define RETNET_LAYER_PHASES 3
#define HAWK_LAYER_PHASES 3

/* Threads per CTA of the generated kernel. */
#define KERNEL_THREADS 256

/* Weight float4 loads per lane kept in flight by a projection row (divided among its
 * matrices), and batch entries per accumulator tile. Overridable at build time
 * (-DKERNEL_ROW_UNROLL=...) to compare variants. */
#ifndef KERNEL_ROW_UNROLL
#define KERNEL_ROW_UNROLL 8
#endif
#ifndef KERNEL_BATCH_TILE
#define KERNEL_BATCH_TILE 8
#endif

/* Shared memory for the staged inputs of a projection (dynamic, floats): enough for a
 * tile of KERNEL_BATCH_TILE entries of the longest input, at most STAGE_FLOATS_MAX. */
#define STAGE_FLOATS_MAX 32768
int emit_stage_floats(const spec_t *s);

/* The kernel's symbol name for a spec: "stepfuse_<name>" (non-identifier chars -> '_'). */
void emit_kernel_name(const spec_t *s, char *out, size_t size);

/* Generate the source for spec s (derived); spec_path is named in the first line.
 * *src is malloc'd and NUL terminated. */
int emit_kernel(const spec_t *s, const char *spec_path, char **src, size_t *len, char *err);

#endif
