/* stepfuse spec: validate a spec and print it with every default and derived size
 * resolved, plus the size of its weights. The output is itself a valid spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "model.h"
#include "spec.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: stepfuse spec --spec SPEC.yaml\n\n"
            "Validate a spec and print it resolved: every key including defaults, the derived\n"
            "sizes (as comments), the tensor and parameter counts and the weight bytes.\n"
            "Exits 1 with file:line:col and the offending line if the spec is invalid.\n\n"
            "options:\n"
            "  --spec PATH   the spec to check (see specs/README.md for the format)\n"
            "  --help        this message\n");
}

/* The shortest decimal form that reads back as the same double. */
static void format_double(double x, char *buf, size_t size)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, x);
        if (strtod(buf, NULL) == x) return;
    }
}

static void print_spec(const spec_t *s, const char *path)
{
    printf("# spec '%s' from %s, with every default resolved\n", s->name, path);
    printf("hidden_size: %d\nproj_size: %d\ntower_depth: %d\nnum_heads: %d\nnum_features: %d\n",
           s->hidden_size, s->proj_size, s->tower_depth, s->num_heads, s->num_features);
    printf("mamba2:\n  head_size: %d\n  bc_head_size: %d\n  conv_kernel: %d\n  expand: %d\n",
           s->mamba2.head_size, s->mamba2.bc_head_size, s->mamba2.conv_kernel,
           s->mamba2.expand);
    printf("  # derived: inner size %d, %d heads\n", s->d.mamba_inner, s->d.mamba_heads);
    printf("retnet:\n  num_heads: %d\n", s->retnet.num_heads);
    printf("  # derived: head size %d\n", s->d.retnet_head);
    char c[32];
    format_double(s->hawk.c, c, sizeof c);
    printf("hawk:\n  num_blocks: %d\n  c: %s\n  conv_kernel: %d\n", s->hawk.num_blocks, c,
           s->hawk.conv_kernel);
    printf("  # derived: block size %d\n", s->d.hawk_block);
    printf("xlstm:\n  mlstm_num_heads: %d\n  slstm_num_heads: %d\n  expand: %d\n"
           "  qkv_block_size: %d\n  conv_kernel: %d\n",
           s->xlstm.mlstm_num_heads, s->xlstm.slstm_num_heads, s->xlstm.expand,
           s->xlstm.qkv_block_size, s->xlstm.conv_kernel);
    printf("  # derived: sLSTM block size %d, mLSTM inner size %d, mLSTM head size %d, "
           "%d q/k/v blocks\n",
           s->d.slstm_block, s->d.mlstm_inner, s->d.mlstm_head, s->d.qkv_blocks);
    printf("towers: [xlstm, mamba2, retnet, hawk]\n");
    printf("precision:\n  weights: %s\n  state: %s\n", precision_name(s->precision.weights),
           precision_name(s->precision.state));
    printf("state:\n  writeback: %d\n", s->state.writeback);
    printf("batch:\n  max_batch: %d\n  max_symbols: %d\n", s->batch.max_batch,
           s->batch.max_symbols);
}

static void print_weights(const spec_t *s)
{
    catalogue_t c;
    catalogue_build(s, &c);
    const int64_t fp32_bytes = 4 * c.total_numel;
    const int64_t stored_bytes = catalogue_bytes(&c, s->precision.weights);
    printf("# weights: %d tensors, %lld parameters\n", c.count, (long long)c.total_numel);
    printf("# fp32 weight bytes: %lld (%.3f GB)\n", (long long)fp32_bytes, fp32_bytes / 1e9);
    printf("# stored weight bytes (matrices %s, the rest fp32): %lld (%.3f GB)\n", precision_name(s->precision.weights),
           (long long)stored_bytes, stored_bytes / 1e9);
    catalogue_free(&c);
}

int cmd_spec(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--spec") && i + 1 < argc) {
            path = argv[++i];
            continue;
        }
        fprintf(stderr, "stepfuse spec: %s '%s'\n",
                strcmp(argv[i], "--spec") ? "unknown argument" : "missing value after", argv[i]);
        usage(stderr);
        return 2;
    }
    if (!path) {
        fprintf(stderr, "stepfuse spec: --spec is required\n");
        usage(stderr);
        return 2;
    }
    spec_t s;
    char err[SPEC_ERR_MAX];
    if (spec_load(path, &s, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    print_spec(&s, path);
    print_weights(&s);
    return 0;
}
