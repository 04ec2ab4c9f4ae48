/* The model spec: dimensions, precision and batch limits of one ensemble.
 *
 * A spec is a YAML file whose keys are those of the golden config.yaml files plus
 * `precision`, `state` and `batch`. spec_load() parses and validates it; every error names
 * file:line:col and quotes the offending line. spec_derive() fills the derived sizes. */
#ifndef STEPFUSE_SPEC_H
#define STEPFUSE_SPEC_H

#include <stddef.h>

#define SPEC_ERR_MAX 1024
#define SPEC_NAME_MAX 64
#define NUM_TOWERS 4

/* How matrices (precision.weights) or the state matrices (precision.state) are stored; fp16
 * is a weights precision only. */
typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 = 1, PRECISION_FP16 = 2 } precision_t;

/* Tower order is fixed by the model: outputs are xLSTM, Mamba2, RetNet, Hawk. */
typedef enum { TOWER_XLSTM = 0, TOWER_MAMBA2 = 1, TOWER_RETNET = 2, TOWER_HAWK = 3 } tower_t;

typedef struct {
    char name[SPEC_NAME_MAX]; /* file basename without .yaml: names out/<name>.cu */

    /* top level (required) */
    int hidden_size;  /* H */
    int proj_size;    /* P: input_up and MLP width */
    int tower_depth;  /* L: blocks per tower */
    int num_heads;    /* NH: default for the per-layer head counts */
    int num_features; /* F */

    struct { int head_size, bc_head_size, conv_kernel, expand; } mamba2;
    struct { int num_heads; } retnet;
    struct { int num_blocks; double c; int conv_kernel; } hawk;
    struct {
        int mlstm_num_heads, slstm_num_heads, expand, qkv_block_size, conv_kernel;
    } xlstm;

    struct { precision_t weights, state; } precision;
    /* The mLSTM memory and RetNet's retention are written back every `writeback` steps of a
     * symbol; the steps between log their updates and replay them (1: every step). */
    struct { int writeback; } state;
    struct { int max_batch, max_symbols; } batch;

    /* derived by spec_derive() */
    struct {
        int mamba_inner;   /* E = expand * H */
        int mamba_heads;   /* NM = E / head_size */
        int retnet_head;   /* D = H / retnet.num_heads */
        int slstm_block;   /* H / slstm_num_heads */
        int mlstm_inner;   /* E = expand * H */
        int mlstm_head;    /* DM = E / mlstm_num_heads */
        int qkv_blocks;    /* E / qkv_block_size */
        int hawk_block;    /* H / hawk.num_blocks */
    } d;
} spec_t;

/* Architecture defaults for every optional key (the required ones are left 0). */
void spec_set_defaults(spec_t *s);

/* Fill s->d from the primary sizes. Call after validation. */
void spec_derive(spec_t *s);

/* Parse and validate a spec file. On error returns -1 and writes
 * "path:line:col: message\n  <quoted line>" into err (SPEC_ERR_MAX bytes). */
int spec_load(const char *path, spec_t *out, char *err);

/* Same, from a string in memory; `path` is only used in messages and for the name. */
int spec_parse(const char *text, size_t len, const char *path, spec_t *out, char *err);

/* "fp32", "bf16" or "fp16", and back (-1: none of them). */
const char *precision_name(precision_t p);
int precision_parse(const char *name, precision_t *p);
/* Bytes of one element stored in that precision. */
int precision_bytes(precision_t p);
/* Whether the spec stores its matrices or its state below fp32: a mode whose function is not
 * the fp32 model's. */
int spec_rounded(const spec_t *s);

#endif
