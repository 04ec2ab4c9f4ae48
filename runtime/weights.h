/* Model weights: loaded from safetensors with the original state_dict names and checked
 * against the spec's tensor catalogue, or generated deterministically for any spec. */
#ifndef STEPFUSE_WEIGHTS_H
#define STEPFUSE_WEIGHTS_H

#include <stdint.h>

#include "model.h"
#include "safetensors.h"
#include "spec.h"

typedef struct {
    catalogue_t cat;
    st_file_t file;
    float **data; /* per catalogue entry: fp32 values, aligned (a view of the mapping or a copy) */
    float **owned;
} weights_t;

/* Load and check: every catalogue tensor present with the catalogue's shape and dtype F32
 * (BF16 also accepted, widened exactly); no tensor outside the catalogue. Errors name the
 * tensor, e.g. "W.safetensors: towers.1.blocks.0.layer.a: shape [3] != expected [2]".
 * A spec with precision.weights bf16 or fp16 gets its matrices (catalogue `matrix`) rounded
 * to the nearest value of that precision: the values every engine of that spec computes with.
 * A matrix weight beyond fp16's range is an error. */
int weights_load(const char *path, const spec_t *s, weights_t *w, char *err);
void weights_free(weights_t *w);

/* fp32 values of a catalogue tensor; aborts on a name outside the catalogue (a bug). */
const float *weights_get(const weights_t *w, const char *name);

/* Write realistic random weights for spec s (see init_kind_t) to path as F32 safetensors,
 * tensors in catalogue order, spec name and seed in __metadata__. Deterministic: same spec +
 * seed, same bytes, whatever the thread count. progress: a progress_mode_t (progress.h).
 * threads: generating workers, 0 = one per core. */
int weights_generate(const spec_t *s, uint64_t seed, const char *path, int progress, char *err);
int weights_generate_threads(const spec_t *s, uint64_t seed, const char *path, int progress,
                             int threads, char *err);

/* Weights generated from (spec, seed), kept as <dir>/<spec name>-seed<N>.safetensors
 * (dir NULL: cache_dir()): loaded when present and valid, else generated there first. */
int weights_cached(const spec_t *s, uint64_t seed, const char *dir, weights_t *w, char *err);

#endif
