/* Defaults and derived sizes of a spec. The defaults are those of the original
 * layers, as in the golden config.yaml files. */
#include "spec.h"

#include <string.h>

void spec_set_defaults(spec_t *s)
{
    memset(s, 0, sizeof *s);
    s->mamba2.head_size = 64;
    s->mamba2.bc_head_size = 128;
    s->mamba2.conv_kernel = 4;
    s->mamba2.expand = 2;
    s->retnet.num_heads = 0; /* 0 = num_heads */
    s->hawk.num_blocks = 4;
    s->hawk.c = 8.0;
    s->hawk.conv_kernel = 4;
    s->xlstm.mlstm_num_heads = 0; /* 0 = num_heads */
    s->xlstm.slstm_num_heads = 0; /* 0 = max(1, num_heads / 2) */
    s->xlstm.expand = 2;
    s->xlstm.qkv_block_size = 4;
    s->xlstm.conv_kernel = 4;
    s->precision.weights = PRECISION_FP32;
    s->precision.state = PRECISION_FP32;
    s->state.writeback = 1;
    s->batch.max_batch = 64;
    s->batch.max_symbols = 64;
}

void spec_derive(spec_t *s)
{
    if (s->retnet.num_heads == 0) s->retnet.num_heads = s->num_heads;
    if (s->xlstm.mlstm_num_heads == 0) s->xlstm.mlstm_num_heads = s->num_heads;
    if (s->xlstm.slstm_num_heads == 0)
        s->xlstm.slstm_num_heads = s->num_heads / 2 > 0 ? s->num_heads / 2 : 1;
    s->d.mamba_inner = s->mamba2.expand * s->hidden_size;
    s->d.mamba_heads = s->d.mamba_inner / s->mamba2.head_size;
    s->d.retnet_head = s->hidden_size / s->retnet.num_heads;
    s->d.slstm_block = s->hidden_size / s->xlstm.slstm_num_heads;
    s->d.mlstm_inner = s->xlstm.expand * s->hidden_size;
    s->d.mlstm_head = s->d.mlstm_inner / s->xlstm.mlstm_num_heads;
    s->d.qkv_blocks = s->d.mlstm_inner / s->xlstm.qkv_block_size;
    s->d.hawk_block = s->hidden_size / s->hawk.num_blocks;
}

const char *precision_name(precision_t p)
{
    return p == PRECISION_BF16 ? "bf16" : p == PRECISION_FP16 ? "fp16" : "fp32";
}

int precision_bytes(precision_t p) { return p == PRECISION_FP32 ? 4 : 2; }

int spec_rounded(const spec_t *s)
{
    return s->precision.weights != PRECISION_FP32 || s->precision.state != PRECISION_FP32;
}

int precision_parse(const char *name, precision_t *p)
{
    static const precision_t all[] = {PRECISION_FP32, PRECISION_BF16, PRECISION_FP16};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(name, precision_name(all[i]))) {
            *p = all[i];
            return 0;
        }
    return -1;
}
