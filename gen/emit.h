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

/* Projections (templates/common.cu, proj_rows): weight rows a warp streams together
 * (register blocking over rows: each staged input float4 feeds that many rows), and float4
 * weight loads per lane in flight over those rows. Overridable at build time
 * (-DKERNEL_WEIGHT_ROWS=8 ...) to compare variants. */
#ifndef KERNEL_WEIGHT_ROWS
#define KERNEL_WEIGHT_ROWS 4
#endif
#ifndef KERNEL_CHUNK_F4
#define KERNEL_CHUNK_F4 16
#endif

/* Stages split their units over the CTAs by cost (bytes and FMAs), or by count with
 * -DKERNEL_SPLIT_BY_COST=0 (for comparison). */
#ifndef KERNEL_SPLIT_BY_COST
#define KERNEL_SPLIT_BY_COST 1
#endif

/* Weight loads: not allocated in L1 (1: weights are read once per step; 8% faster at batch 1
 * on an H100) or read-only through L1 (0, __ldg; for comparison). */
#ifndef KERNEL_WEIGHTS_NO_L1
#define KERNEL_WEIGHTS_NO_L1 1
#endif

/* The L2's fetch from memory around a weight load, bytes: 0 (its default), 64, 128 or 256.
 * A warp loads 64 bytes of a row at a time, so 256 brings the row's next chunks into L2
 * before their loads: 2% faster at batch 1 on an H100, the same at batch 8 and 50 (run 68;
 * evicting the weights from L2 first did not change the step). */
#ifndef KERNEL_WEIGHTS_L2_PREFETCH
#define KERNEL_WEIGHTS_L2_PREFETCH 256
#endif

/* The body of a projection pass is inlined into every call site of proj_rows (1: about 20 s
 * of NVRTC + ptxas at full size), or one function per projection shape (0: about 10 s, but
 * 15% slower at batch 8 and 50 on an H100). */
#ifndef KERNEL_PROJ_INLINE
#define KERNEL_PROJ_INLINE 1
#endif

/* Projections run on tensor cores (1: mma.sync with fp32 split into two tf32 parts, see
 * proj_rows_mma) or on CUDA cores (0, for comparison). */
#ifndef KERNEL_TENSOR_CORES
#define KERNEL_TENSOR_CORES 1
#endif

/* Dynamic shared memory of the kernel, floats: the staged projection inputs (windows of
 * columns of every batch entry, STAGE_FLOATS) and each warp's running sums (SUMS_WARP). */
#define STAGE_FLOATS 32768
/* The floats one window of staged inputs may take: on tensor cores half the area (the next
 * window is copied into the other half while one is applied). */
#define STAGE_WINDOW_FLOATS (KERNEL_TENSOR_CORES ? STAGE_FLOATS / 2 : STAGE_FLOATS)
/* Floats between two entries' staged rows beyond the window (tensor cores: rows 16 floats
 * apart mod 32 banks, no bank conflicts); 20 where 16-bit weights are loaded 16 bytes at a
 * time (a lane's inputs 8 floats apart: rows 4 floats apart mod 8 banks). */
#define STAGE_PAD 16
#define STAGE_PAD_WIDE 20
/* The smallest window of staged inputs the projections need at the spec's max_batch (one
 * chunk of columns of every entry): at most STAGE_WINDOW_FLOATS. */
int emit_staged_window_floats(const spec_t *s);
int emit_sums_warp(const spec_t *s);
int emit_dynamic_smem_floats(const spec_t *s);

/* The kernel's symbol name for a spec: "stepfuse_<name>" (non-identifier chars -> '_'). */
void emit_kernel_name(const spec_t *s, char *out, size_t size);

/* Generate the source for spec s (derived); spec_path is named in the first line.
 * *src is malloc'd and NUL terminated. */
int emit_kernel(const spec_t *s, const char *spec_path, char **src, size_t *len, char *err);

#endif
