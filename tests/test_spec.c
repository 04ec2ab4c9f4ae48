/* The spec format: every golden config and every file in specs/ parses, defaults and
 * derived sizes are right, each error class reports the exact line:col and message,
 * and the tensor catalogue of the golden specs matches the golden weight files. */
#include <criterion/criterion.h>
#include <glob.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model.h"
#include "spec.h"
#include "testutil.h"

/* <shared>/golden/<case>/<file>, in shared_path's buffer */
static const char *golden_file(const char *case_name, const char *file)
{
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/%s", case_name, file);
    return shared_path(rel);
}

/* The five required keys, after a comment line: extra text goes from line 6 on. */
#define BASE "# test spec\nhidden_size: 64\nproj_size: 64\ntower_depth: 1\nnum_features: 79\n"

static int parse(const char *text, spec_t *s, char *err)
{
    return spec_parse(text, strlen(text), "specs/t.yaml", s, err);
}

static void expect_error(const char *text, const char *expected)
{
    spec_t s;
    char err[SPEC_ERR_MAX] = "";
    cr_assert_eq(parse(text, &s, err), -1, "spec was accepted, expected error:\n%s", expected);
    cr_assert_str_eq(err, expected, "\ngot:      %s\nexpected: %s", err, expected);
}

static void expect_ok(const char *text, spec_t *s)
{
    char err[SPEC_ERR_MAX] = "";
    cr_assert_eq(parse(text, s, err), 0, "valid spec rejected: %s", err);
}

/* Every key and derived size equal (the names may differ). */
static void expect_same_spec(const spec_t *a, const spec_t *b, const char *what)
{
#define SAME(field) cr_expect_eq(a->field, b->field, "%s: " #field " differs", what)
    SAME(hidden_size); SAME(proj_size); SAME(tower_depth); SAME(num_heads); SAME(num_features);
    SAME(mamba2.head_size); SAME(mamba2.bc_head_size); SAME(mamba2.conv_kernel);
    SAME(mamba2.expand); SAME(retnet.num_heads); SAME(hawk.num_blocks); SAME(hawk.c);
    SAME(hawk.conv_kernel); SAME(xlstm.mlstm_num_heads); SAME(xlstm.slstm_num_heads);
    SAME(xlstm.expand); SAME(xlstm.qkv_block_size); SAME(xlstm.conv_kernel);
    SAME(precision.weights); SAME(precision.state); SAME(batch.max_batch);
    SAME(batch.max_symbols); SAME(d.mamba_inner); SAME(d.mamba_heads); SAME(d.retnet_head);
    SAME(d.slstm_block); SAME(d.mlstm_inner); SAME(d.mlstm_head); SAME(d.qkv_blocks);
    SAME(d.hawk_block);
#undef SAME
}

/* ---- valid specs ---- */

Test(spec, golden_configs_parse_as_they_are)
{
    static const struct {
        const char *name;
        int H, P, L, NH;
    } cases[] = {{"small", 64, 128, 2, 4}, {"medium", 256, 512, 2, 8}, {"long", 64, 96, 2, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[SPEC_ERR_MAX] = "";
        const char *path = golden_file(cases[i].name, "config.yaml");
        spec_t s;
        cr_assert_eq(spec_load(path, &s, err), 0, "%s", err);
        cr_expect_str_eq(s.name, "config");
        cr_expect_eq(s.hidden_size, cases[i].H, "%s", path);
        cr_expect_eq(s.proj_size, cases[i].P, "%s", path);
        cr_expect_eq(s.tower_depth, cases[i].L, "%s", path);
        cr_expect_eq(s.num_heads, cases[i].NH, "%s", path);
        cr_expect_eq(s.num_features, 79, "%s", path);
        cr_expect_eq(s.xlstm.slstm_num_heads, cases[i].NH / 2, "%s", path);
        cr_expect_eq(s.d.retnet_head, cases[i].H / cases[i].NH, "%s", path);
    }
}

Test(spec, every_file_in_specs_parses)
{
    glob_t g;
    cr_assert_eq(glob("specs/*.yaml", 0, NULL, &g), 0, "no specs/*.yaml (run from the repo root)");
    cr_expect_geq(g.gl_pathc, 5, "expected at least hackathon, small, medium, long, tiny");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char err[SPEC_ERR_MAX] = "", name[SPEC_NAME_MAX];
        spec_t s;
        cr_expect_eq(spec_load(g.gl_pathv[i], &s, err), 0, "%s", err);
        snprintf(name, sizeof name, "%.*s", (int)(strlen(g.gl_pathv[i]) - 11), g.gl_pathv[i] + 6);
        cr_expect_str_eq(s.name, name, "%s", g.gl_pathv[i]);
    }
    globfree(&g);
}

Test(spec, golden_specs_equal_golden_configs)
{
    static const char *cases[] = {"small", "medium", "long"};
    for (size_t i = 0; i < 3; i++) {
        char path[512], err[SPEC_ERR_MAX] = "";
        spec_t golden, ours;
        cr_assert_eq(spec_load(golden_file(cases[i], "config.yaml"), &golden, err), 0, "%s", err);
        snprintf(path, sizeof path, "specs/%s.yaml", cases[i]);
        cr_assert_eq(spec_load(path, &ours, err), 0, "%s", err);
        expect_same_spec(&ours, &golden, path);
    }
}

Test(spec, defaults_and_derived_sizes)
{
    spec_t s;
    expect_ok(BASE "num_heads: 4\n", &s);
    cr_expect_str_eq(s.name, "t");
    cr_expect_eq(s.hidden_size, 64);
    cr_expect_eq(s.proj_size, 64);
    cr_expect_eq(s.tower_depth, 1);
    cr_expect_eq(s.num_heads, 4);
    cr_expect_eq(s.num_features, 79);
    cr_expect_eq(s.mamba2.head_size, 64);
    cr_expect_eq(s.mamba2.bc_head_size, 128);
    cr_expect_eq(s.mamba2.conv_kernel, 4);
    cr_expect_eq(s.mamba2.expand, 2);
    cr_expect_eq(s.retnet.num_heads, 4, "retnet.num_heads defaults to num_heads");
    cr_expect_eq(s.hawk.num_blocks, 4);
    cr_expect_eq(s.hawk.c, 8.0);
    cr_expect_eq(s.hawk.conv_kernel, 4);
    cr_expect_eq(s.xlstm.mlstm_num_heads, 4, "mlstm_num_heads defaults to num_heads");
    cr_expect_eq(s.xlstm.slstm_num_heads, 2, "slstm_num_heads defaults to num_heads / 2");
    cr_expect_eq(s.xlstm.expand, 2);
    cr_expect_eq(s.xlstm.qkv_block_size, 4);
    cr_expect_eq(s.xlstm.conv_kernel, 4);
    cr_expect_eq(s.precision.weights, PRECISION_FP32);
    cr_expect_eq(s.precision.state, PRECISION_FP32);
    cr_expect_eq(s.batch.max_batch, 64);
    cr_expect_eq(s.batch.max_symbols, 64);
    cr_expect_eq(s.d.mamba_inner, 128);
    cr_expect_eq(s.d.mamba_heads, 2);
    cr_expect_eq(s.d.retnet_head, 16);
    cr_expect_eq(s.d.slstm_block, 32);
    cr_expect_eq(s.d.mlstm_inner, 128);
    cr_expect_eq(s.d.mlstm_head, 32);
    cr_expect_eq(s.d.qkv_blocks, 32);
    cr_expect_eq(s.d.hawk_block, 16);
}

Test(spec, one_head_gives_one_slstm_head)
{
    spec_t s;
    expect_ok(BASE "num_heads: 1\n", &s);
    cr_expect_eq(s.xlstm.slstm_num_heads, 1, "max(1, 1 / 2) = 1");
    cr_expect_eq(s.d.retnet_head, 64);
}

/* Every optional key away from its default. */
static const char EXPLICIT[] = BASE "num_heads: 4\n"
                   "mamba2:\n  head_size: 32\n  bc_head_size: 16\n  conv_kernel: 2\n  expand: 3\n"
                   "retnet: {num_heads: 2}\n"
                   "hawk: {num_blocks: 8, c: 0.1, conv_kernel: 8}\n"
                   "xlstm: {mlstm_num_heads: 8, slstm_num_heads: 16, expand: 1,\n"
                   "        qkv_block_size: 8, conv_kernel: 3}\n"
                   "precision: {weights: bf16, state: bf16}\n"
                   "batch: {max_batch: 3, max_symbols: 5}\n";

Test(spec, explicit_keys_override_defaults)
{
    spec_t s;
    expect_ok(EXPLICIT, &s);
    cr_expect_eq(s.mamba2.head_size, 32);
    cr_expect_eq(s.mamba2.bc_head_size, 16);
    cr_expect_eq(s.mamba2.conv_kernel, 2);
    cr_expect_eq(s.d.mamba_inner, 192);
    cr_expect_eq(s.d.mamba_heads, 6);
    cr_expect_eq(s.retnet.num_heads, 2);
    cr_expect_eq(s.d.retnet_head, 32);
    cr_expect_eq(s.hawk.num_blocks, 8);
    cr_expect_eq(s.hawk.c, 0.1);
    cr_expect_eq(s.hawk.conv_kernel, 8);
    cr_expect_eq(s.d.hawk_block, 8);
    cr_expect_eq(s.xlstm.mlstm_num_heads, 8);
    cr_expect_eq(s.xlstm.slstm_num_heads, 16);
    cr_expect_eq(s.d.slstm_block, 4);
    cr_expect_eq(s.d.mlstm_inner, 64);
    cr_expect_eq(s.d.mlstm_head, 8);
    cr_expect_eq(s.d.qkv_blocks, 8);
    cr_expect_eq(s.xlstm.conv_kernel, 3);
    cr_expect_eq(s.precision.weights, PRECISION_BF16);
    cr_expect_eq(s.precision.state, PRECISION_BF16);
    cr_expect_eq(s.batch.max_batch, 3);
    cr_expect_eq(s.batch.max_symbols, 5);
}

Test(spec, fp16_weights)
{
    spec_t s;
    expect_ok(BASE "num_heads: 2\nprecision: {weights: fp16}\n", &s);
    cr_expect_eq(s.precision.weights, PRECISION_FP16);
    cr_expect_eq(s.precision.state, PRECISION_FP32);
    cr_expect_str_eq(precision_name(s.precision.weights), "fp16");
    cr_expect_eq(precision_bytes(PRECISION_FP16), 2);
}

Test(spec, state_writeback)
{
    spec_t s;
    expect_ok(BASE "num_heads: 2\n", &s);
    cr_expect_eq(s.state.writeback, 1, "every step unless the spec says otherwise");
    expect_ok(BASE "num_heads: 2\nstate: {writeback: 8}\n", &s);
    cr_expect_eq(s.state.writeback, 8);
}

Test(spec, hackathon_is_the_full_size_model)
{
    char err[SPEC_ERR_MAX] = "";
    spec_t s;
    cr_assert_eq(spec_load("specs/hackathon.yaml", &s, err), 0, "%s", err);
    cr_expect_eq(s.hidden_size, 2048);
    cr_expect_eq(s.proj_size, 4096);
    cr_expect_eq(s.tower_depth, 12);
    cr_expect_eq(s.num_heads, 8);
    cr_expect_eq(s.num_features, 79);
    cr_expect_eq(s.batch.max_batch, 64);
    cr_expect_eq(s.batch.max_symbols, 128);
    catalogue_t c;
    catalogue_build(&s, &c);
    /* MODEL.md: 1.985 B parameters, 7.94 GB in fp32 */
    cr_expect(c.total_numel > 1984500000 && c.total_numel < 1985500000, "%lld parameters",
              (long long)c.total_numel);
    catalogue_free(&c);
}

/* ---- one test per error class ---- */

Test(spec_error, yaml_syntax)
{
    expect_error(BASE "num_heads: 2\nmamba2: {head_size: 64\n",
                 "specs/t.yaml:8:1: YAML syntax error: while parsing a flow mapping did not "
                 "find expected ',' or '}'\n  | ");
    expect_error(BASE "num_heads: 2\n  bad: 1\n",
                 "specs/t.yaml:7:6: YAML syntax error: mapping values are not allowed in this "
                 "context\n  |   bad: 1");
}

Test(spec_error, invalid_utf8)
{
    expect_error(BASE "num_heads: 2 # \xff\n",
                 "specs/t.yaml:6:16: YAML syntax error: invalid leading UTF-8 octet\n"
                 "  | num_heads: 2 # \xff");
}

Test(spec_error, unknown_key_top_level)
{
    expect_error(BASE "num_heads: 2\nhiden_size: 64\n",
                 "specs/t.yaml:7:1: unknown key 'hiden_size' (allowed: hidden_size, proj_size, "
                 "tower_depth, num_heads, num_features, mamba2, retnet, hawk, xlstm, towers, "
                 "precision, state, batch)\n  | hiden_size: 64");
}

Test(spec_error, unknown_key_in_section)
{
    expect_error(BASE "num_heads: 2\nmamba2: {head_size: 64, d_state: 16}\n",
                 "specs/t.yaml:7:25: unknown key 'd_state' in mamba2 (allowed: head_size, "
                 "bc_head_size, conv_kernel, expand)\n  | mamba2: {head_size: 64, d_state: 16}");
    expect_error(BASE "num_heads: 2\nbatch:\n  max_batch: 4\n  size: 3\n",
                 "specs/t.yaml:9:3: unknown key 'size' in batch (allowed: max_batch, max_symbols)\n"
                 "  |   size: 3");
}

Test(spec_error, wrong_type_string_for_integer)
{
    expect_error(BASE "num_heads: \"2\"\n",
                 "specs/t.yaml:6:12: num_heads must be a decimal integer, got the string \"2\"\n"
                 "  | num_heads: \"2\"");
    expect_error(BASE "num_heads: two\n",
                 "specs/t.yaml:6:12: num_heads must be a decimal integer, got 'two'\n"
                 "  | num_heads: two");
}

Test(spec_error, wrong_type_float_for_integer)
{
    expect_error(BASE "num_heads: 2\nxlstm: {expand: 1.5}\n",
                 "specs/t.yaml:7:17: xlstm.expand must be a decimal integer, got '1.5'\n"
                 "  | xlstm: {expand: 1.5}");
}

Test(spec_error, wrong_type_non_decimal_integer)
{
    expect_error(BASE "num_heads: 010\n",
                 "specs/t.yaml:6:12: num_heads must be a decimal integer, got '010'\n"
                 "  | num_heads: 010");
    expect_error(BASE "num_heads: 0x2\n",
                 "specs/t.yaml:6:12: num_heads must be a decimal integer, got '0x2'\n"
                 "  | num_heads: 0x2");
}

Test(spec_error, wrong_type_mapping_for_scalar)
{
    expect_error(BASE "num_heads: {value: 2}\n",
                 "specs/t.yaml:6:12: num_heads must be a decimal integer, got a mapping\n"
                 "  | num_heads: {value: 2}");
    expect_error(BASE "num_heads: 2\nprecision: {weights: [fp32]}\n",
                 "specs/t.yaml:7:22: precision.weights must be fp32, bf16 or fp16, got a sequence\n"
                 "  | precision: {weights: [fp32]}");
}

Test(spec_error, wrong_type_scalar_for_section)
{
    expect_error(BASE "num_heads: 2\nhawk: 4\n",
                 "specs/t.yaml:7:7: hawk must be a mapping, got '4'\n  | hawk: 4");
    expect_error(BASE "num_heads: 2\nretnet:\n",
                 "specs/t.yaml:7:8: retnet must be a mapping, got an empty value\n  | retnet:");
    expect_error(BASE "num_heads: 2\ntowers: xlstm\n",
                 "specs/t.yaml:7:9: towers must be a sequence, got 'xlstm'\n  | towers: xlstm");
}

Test(spec_error, wrong_type_document)
{
    expect_error("# nothing\n",
                 "specs/t.yaml:1:1: empty spec: expected a mapping with hidden_size, proj_size, "
                 "tower_depth, num_heads and num_features\n  | # nothing");
    expect_error("- hidden_size: 64\n",
                 "specs/t.yaml:1:1: a spec must be a mapping of keys, got a sequence\n"
                 "  | - hidden_size: 64");
    expect_error(BASE "num_heads: 2\n---\nnum_heads: 4\n",
                 "specs/t.yaml:7:1: a spec is one YAML document, but a second one starts here\n"
                 "  | ---");
    expect_error(BASE "num_heads: 2\n[1]: 3\n",
                 "specs/t.yaml:7:1: keys must be names, got a sequence\n  | [1]: 3");
}

Test(spec_error, missing_required_key)
{
    expect_error(BASE "mamba2: {expand: 2}\n",
                 "specs/t.yaml:2:1: missing required key 'num_heads'\n  | hidden_size: 64");
    expect_error("{hidden_size: 64, proj_size: 64, tower_depth: 1, num_heads: 2}\n",
                 "specs/t.yaml:1:1: missing required key 'num_features'\n"
                 "  | {hidden_size: 64, proj_size: 64, tower_depth: 1, num_heads: 2}");
}

Test(spec_error, duplicate_key)
{
    expect_error(BASE "num_heads: 2\nproj_size: 128\n",
                 "specs/t.yaml:7:1: duplicate key 'proj_size' (first set on line 3)\n"
                 "  | proj_size: 128");
    expect_error(BASE "num_heads: 2\nhawk: {c: 8.0, c: 4.0}\n",
                 "specs/t.yaml:7:16: duplicate key 'hawk.c' (first set on line 7)\n"
                 "  | hawk: {c: 8.0, c: 4.0}");
}

Test(spec_error, size_out_of_range)
{
    expect_error(BASE "num_heads: 0\n",
                 "specs/t.yaml:6:12: num_heads must be between 1 and 1048576, got 0\n"
                 "  | num_heads: 0");
    expect_error(BASE "num_heads: 2\nbatch: {max_symbols: -4}\n",
                 "specs/t.yaml:7:22: batch.max_symbols must be between 1 and 1048576, got -4\n"
                 "  | batch: {max_symbols: -4}");
    expect_error(BASE "num_heads: 99999999999999999999999\n",
                 "specs/t.yaml:6:12: num_heads must be between 1 and 1048576, got "
                 "99999999999999999999999\n  | num_heads: 99999999999999999999999");
}

Test(spec_error, expand_out_of_range)
{
    expect_error(BASE "num_heads: 2\nmamba2: {expand: 0}\n",
                 "specs/t.yaml:7:18: mamba2.expand must be between 1 and 16, got 0\n"
                 "  | mamba2: {expand: 0}");
    expect_error(BASE "num_heads: 2\nxlstm:\n  expand: 0\n",
                 "specs/t.yaml:8:11: xlstm.expand must be between 1 and 16, got 0\n"
                 "  |   expand: 0");
}

Test(spec_error, conv_kernel_out_of_range)
{
    expect_error(BASE "num_heads: 2\nhawk:\n  conv_kernel: 1\n",
                 "specs/t.yaml:8:16: hawk.conv_kernel must be between 2 and 8, got 1\n"
                 "  |   conv_kernel: 1");
    expect_error(BASE "num_heads: 2\nmamba2: {conv_kernel: 9}\n",
                 "specs/t.yaml:7:23: mamba2.conv_kernel must be between 2 and 8, got 9\n"
                 "  | mamba2: {conv_kernel: 9}");
}

Test(spec_error, writeback_out_of_range)
{
    expect_error(BASE "num_heads: 2\nstate: {writeback: 9}\n",
                 "specs/t.yaml:7:20: state.writeback must be between 1 and 8, got 9\n"
                 "  | state: {writeback: 9}");
    expect_error(BASE "num_heads: 2\nstate:\n  writeback: 0\n",
                 "specs/t.yaml:8:14: state.writeback must be between 1 and 8, got 0\n"
                 "  |   writeback: 0");
}

Test(spec_error, hawk_c_out_of_range)
{
    expect_error(BASE "num_heads: 2\nhawk: {c: 0}\n",
                 "specs/t.yaml:7:11: hawk.c must be a finite number > 0, got 0\n  | hawk: {c: 0}");
    expect_error(BASE "num_heads: 2\nhawk: {c: 1e999}\n",
                 "specs/t.yaml:7:11: hawk.c must be a finite number > 0, got 1e999\n"
                 "  | hawk: {c: 1e999}");
    expect_error(BASE "num_heads: 2\nhawk: {c: .inf}\n",
                 "specs/t.yaml:7:11: hawk.c must be a number, got '.inf'\n  | hawk: {c: .inf}");
}

/* fp16 is a weights precision only; fp8 is none. */
Test(spec_error, precision_not_in_enum)
{
    expect_error(BASE "num_heads: 2\nprecision:\n  weights: fp16\n  state: fp16\n",
                 "specs/t.yaml:9:10: precision.state must be fp32 or bf16, got 'fp16'\n"
                 "  |   state: fp16");
    expect_error(BASE "num_heads: 2\nprecision: {weights: fp8}\n",
                 "specs/t.yaml:7:22: precision.weights must be fp32, bf16 or fp16, got 'fp8'\n"
                 "  | precision: {weights: fp8}");
}

Test(spec_error, towers_not_in_model_order)
{
    expect_error(BASE "num_heads: 2\ntowers: [xlstm, retnet, mamba2, hawk]\n",
                 "specs/t.yaml:7:17: towers must be exactly [xlstm, mamba2, retnet, hawk] (the "
                 "model's output order): item 2 is 'retnet', expected mamba2\n"
                 "  | towers: [xlstm, retnet, mamba2, hawk]");
    expect_error(BASE "num_heads: 2\ntowers: [xlstm, mamba2, retnet]\n",
                 "specs/t.yaml:7:9: towers must be exactly [xlstm, mamba2, retnet, hawk] (the "
                 "model's output order): hawk is missing\n  | towers: [xlstm, mamba2, retnet]");
    expect_error(BASE "num_heads: 2\ntowers:\n- xlstm\n- mamba2\n- retnet\n- hawk\n- gru\n",
                 "specs/t.yaml:12:3: towers must be exactly [xlstm, mamba2, retnet, hawk] (the "
                 "model's output order): unexpected item 'gru'\n  | - gru");
}

/* ---- dimension constraints: each points at the divisor ---- */

Test(spec_constraint, num_heads_divides_hidden_size)
{
    expect_error("# full size with a bad head count\nhidden_size: 2048\nproj_size: 4096\n"
                 "tower_depth: 12\nnum_features: 79\nretnet: {num_heads: 8}\n"
                 "xlstm: {mlstm_num_heads: 8, slstm_num_heads: 4}\nnum_heads:   6\n",
                 "specs/t.yaml:8:14: num_heads must divide hidden_size (2048 % 6 = 2)\n"
                 "  | num_heads:   6");
}

Test(spec_constraint, retnet_heads_divide_hidden_size)
{
    expect_error(BASE "num_heads: 2\nretnet: {num_heads: 3}\n",
                 "specs/t.yaml:7:21: retnet.num_heads must divide hidden_size (64 % 3 = 1)\n"
                 "  | retnet: {num_heads: 3}");
}

Test(spec_constraint, retnet_head_size_is_even)
{
    expect_error(BASE "num_heads: 2\nretnet:\n  num_heads: 64\n",
                 "specs/t.yaml:8:14: the RetNet head size hidden_size / retnet.num_heads must be "
                 "even (64 / 64 = 1)\n  |   num_heads: 64");
}

Test(spec_constraint, retnet_default_points_at_num_heads)
{
    expect_error("hidden_size: 80\nproj_size: 64\ntower_depth: 1\nnum_features: 79\n"
                 "num_heads: 16\nxlstm: {slstm_num_heads: 2}\nmamba2: {head_size: 32}\n",
                 "specs/t.yaml:5:12: the RetNet head size hidden_size / retnet.num_heads must be "
                 "even (80 / 16 = 5; retnet.num_heads defaults to num_heads = 16)\n"
                 "  | num_heads: 16");
}

Test(spec_constraint, slstm_heads_divide_hidden_size)
{
    expect_error(BASE "num_heads: 2\nxlstm: {slstm_num_heads: 5}\n",
                 "specs/t.yaml:7:26: xlstm.slstm_num_heads must divide hidden_size (64 % 5 = 4)\n"
                 "  | xlstm: {slstm_num_heads: 5}");
}

Test(spec_constraint, slstm_default_points_at_num_heads)
{
    /* 7 heads divide 14 (RetNet head size 2), but the 7 / 2 = 3 sLSTM heads do not */
    expect_error("hidden_size: 14\nproj_size: 64\ntower_depth: 1\nnum_features: 79\n"
                 "num_heads: 7\n",
                 "specs/t.yaml:5:12: xlstm.slstm_num_heads must divide hidden_size (14 % 3 = 2; "
                 "xlstm.slstm_num_heads defaults to max(1, num_heads / 2) = 3)\n"
                 "  | num_heads: 7");
}

Test(spec_constraint, mlstm_heads_divide_inner_size)
{
    expect_error(BASE "num_heads: 2\nxlstm: {mlstm_num_heads: 5, expand: 1}\n",
                 "specs/t.yaml:7:26: xlstm.mlstm_num_heads must divide the mLSTM inner size "
                 "xlstm.expand * hidden_size (64 % 5 = 4)\n"
                 "  | xlstm: {mlstm_num_heads: 5, expand: 1}");
}

Test(spec_constraint, qkv_block_size_divides_inner_size)
{
    expect_error(BASE "num_heads: 2\nxlstm: {qkv_block_size: 3, expand: 1}\n",
                 "specs/t.yaml:7:25: xlstm.qkv_block_size must divide the mLSTM inner size "
                 "xlstm.expand * hidden_size (64 % 3 = 1)\n"
                 "  | xlstm: {qkv_block_size: 3, expand: 1}");
}

Test(spec_constraint, mamba_head_size_divides_inner_size)
{
    expect_error(BASE "num_heads: 2\nmamba2: {head_size: 48}\n",
                 "specs/t.yaml:7:21: mamba2.head_size must divide the Mamba2 inner size "
                 "mamba2.expand * hidden_size (128 % 48 = 32)\n  | mamba2: {head_size: 48}");
}

Test(spec_constraint, hawk_blocks_divide_hidden_size)
{
    expect_error(BASE "num_heads: 2\nhawk: {num_blocks: 6}\n",
                 "specs/t.yaml:7:20: hawk.num_blocks must divide hidden_size (64 % 6 = 4)\n"
                 "  | hawk: {num_blocks: 6}");
}

Test(spec_constraint, fixed_default_points_at_hidden_size)
{
    expect_error("hidden_size: 80\nproj_size: 64\ntower_depth: 1\nnum_features: 79\nnum_heads: 2\n",
                 "specs/t.yaml:1:14: mamba2.head_size must divide the Mamba2 inner size "
                 "mamba2.expand * hidden_size (160 % 64 = 32; mamba2.head_size is 64 by default)\n"
                 "  | hidden_size: 80");
}

Test(spec_error, oversized_text)
{
    static char text[70000];
    memset(text, '#', sizeof text - 1);
    spec_t s;
    char err[SPEC_ERR_MAX] = "";
    cr_assert_eq(spec_parse(text, strlen(text), "specs/t.yaml", &s, err), -1);
    cr_expect_str_eq(err, "specs/t.yaml: spec is larger than 65536 bytes");
}

Test(spec_error, bad_spec_name)
{
    spec_t s;
    char err[SPEC_ERR_MAX] = "";
    const char *text = BASE "num_heads: 2\n";
    cr_assert_eq(spec_parse(text, strlen(text), "specs/my spec.yaml", &s, err), -1);
    cr_expect_str_eq(err, "specs/my spec.yaml: the spec name 'my spec' names generated files: "
                          "use only letters, digits, '_' and '-'");
}

Test(spec_error, missing_file)
{
    spec_t s;
    char err[SPEC_ERR_MAX] = "";
    cr_assert_eq(spec_load("specs/no-such-spec.yaml", &s, err), -1);
    cr_expect_str_eq(err, "specs/no-such-spec.yaml: cannot open spec: No such file or directory");
}

/* ---- the catalogue of the golden specs against the golden weight files ---- */

/* The JSON header of a safetensors file: u64 little-endian length, then the JSON. */
static json_t *safetensors_header(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    unsigned char len_bytes[8];
    cr_assert_eq(fread(len_bytes, 1, 8, f), 8, "%s: short header", path);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | len_bytes[i];
    cr_assert(len > 0 && len < (1u << 26), "%s: header length %llu", path, (unsigned long long)len);
    char *text = malloc(len);
    cr_assert_eq(fread(text, 1, len, f), len, "%s: short header", path);
    fclose(f);
    json_error_t jerr;
    json_t *header = json_loadb(text, len, 0, &jerr);
    free(text);
    cr_assert_not_null(header, "%s: %s", path, jerr.text);
    return header;
}

static void format_shape(const tensor_desc_t *t, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? "," : "",
                                 (long long)t->shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* Appends every difference between the catalogue and the file's tensors to `report`. */
static int compare_catalogue(const catalogue_t *c, json_t *header, char *report, size_t size)
{
    size_t used = 0;
    int differences = 0;
#define REPORT(...)                                                                         \
    do {                                                                                    \
        differences++;                                                                      \
        if (used < size) used += (size_t)snprintf(report + used, size - used, __VA_ARGS__); \
    } while (0)
    const char *name;
    json_t *desc;
    json_object_foreach(header, name, desc) {
        if (strcmp(name, "__metadata__") == 0) continue;
        int i = catalogue_find(c, name);
        if (i < 0) {
            REPORT("  %s: in the file, not in the catalogue\n", name);
            continue;
        }
        json_t *shape = json_object_get(desc, "shape");
        int same = json_is_array(shape) && (int)json_array_size(shape) == c->t[i].ndim;
        for (int d = 0; same && d < c->t[i].ndim; d++)
            same = json_integer_value(json_array_get(shape, (size_t)d)) == c->t[i].shape[d];
        if (!same) {
            char *file_shape = json_dumps(shape, JSON_COMPACT), ours[64];
            format_shape(&c->t[i], ours, sizeof ours);
            REPORT("  %s: shape %s in the file, %s in the catalogue\n", name, file_shape, ours);
            free(file_shape);
        }
    }
    for (int i = 0; i < c->count; i++)
        if (!json_object_get(header, c->t[i].name))
            REPORT("  %s: in the catalogue, not in the file\n", c->t[i].name);
#undef REPORT
    return differences;
}

static void expect_catalogue_matches_golden(const char *case_name)
{
    char path[512], err[SPEC_ERR_MAX] = "", report[8192] = "";
    spec_t s;
    snprintf(path, sizeof path, "specs/%s.yaml", case_name);
    cr_assert_eq(spec_load(path, &s, err), 0, "%s", err);
    catalogue_t c;
    catalogue_build(&s, &c);
    const char *weights = golden_file(case_name, "weights.safetensors");
    json_t *header = safetensors_header(weights);
    cr_expect_gt(c.count, 100, "a two-block ensemble has well over 100 tensors");
    int differences = compare_catalogue(&c, header, report, sizeof report);
    cr_expect_eq(differences, 0,
                 "%d differences between the catalogue of specs/%s.yaml and %s:\n%s",
                 differences, case_name, weights, report);
    json_decref(header);
    catalogue_free(&c);
}

Test(catalogue, small_matches_golden_weights) { expect_catalogue_matches_golden("small"); }
Test(catalogue, medium_matches_golden_weights) { expect_catalogue_matches_golden("medium"); }
Test(catalogue, long_matches_golden_weights) { expect_catalogue_matches_golden("long"); }

/* ---- the spec command ---- */

/* Runs bin/stepfuse with `args`; returns its exit code and its output in `out`. */
static int run_stepfuse(const char *args, char *out, size_t size)
{
    char cmd[512], *text;
    snprintf(cmd, sizeof cmd, "./bin/stepfuse %s", args);
    const int rc = run_command(cmd, 60, &text);
    snprintf(out, size, "%s", text);
    free(text);
    return rc;
}

Test(spec_command, prints_a_resolved_spec_that_parses_back)
{
    static char out[16384];
    const char *paths[] = {"specs/hackathon.yaml", "specs/tiny.yaml"};
    for (size_t i = 0; i < 2; i++) {
        char args[256], err[SPEC_ERR_MAX] = "";
        snprintf(args, sizeof args, "spec --spec %s", paths[i]);
        cr_assert_eq(run_stepfuse(args, out, sizeof out), 0, "%s", out);
        spec_t printed, loaded;
        cr_assert_eq(spec_parse(out, strlen(out), paths[i], &printed, err), 0,
                     "the printed spec does not parse: %s\n%s", err, out);
        cr_assert_eq(spec_load(paths[i], &loaded, err), 0, "%s", err);
        expect_same_spec(&printed, &loaded, paths[i]);
    }
    cr_expect_not_null(strstr(out, "# weights: "), "no parameter count in:\n%s", out);
}

Test(spec_command, prints_every_non_default_key)
{
    static char out[16384];
    char path[] = "/tmp/stepfuse-spec-XXXXXX.yaml", args[256], err[SPEC_ERR_MAX] = "";
    int fd = mkstemps(path, 5);
    cr_assert_geq(fd, 0, "cannot create %s", path);
    const char *text = EXPLICIT;
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    snprintf(args, sizeof args, "spec --spec %s", path);
    int rc = run_stepfuse(args, out, sizeof out);
    unlink(path);
    cr_assert_eq(rc, 0, "%s", out);
    spec_t printed, parsed;
    cr_assert_eq(spec_parse(out, strlen(out), path, &printed, err), 0, "%s\n%s", err, out);
    expect_ok(text, &parsed);
    expect_same_spec(&printed, &parsed, "printed explicit spec");
}

Test(spec_command, hackathon_weight_bytes)
{
    static char out[16384];
    cr_assert_eq(run_stepfuse("spec --spec specs/hackathon.yaml", out, sizeof out), 0, "%s", out);
    cr_expect_not_null(strstr(out, "# fp32 weight bytes: 7940597892 (7.941 GB)"), "%s", out);
}

Test(spec_command, invalid_spec_exits_1_with_the_error)
{
    static char out[4096];
    cr_assert_eq(run_stepfuse("spec --spec specs/no-such-spec.yaml", out, sizeof out), 1, "%s",
                 out);
    cr_expect_str_eq(out, "specs/no-such-spec.yaml: cannot open spec: No such file or directory\n");
    cr_expect_eq(run_stepfuse("spec", out, sizeof out), 2, "no --spec is a usage error");
    cr_expect_eq(run_stepfuse("spec --help", out, sizeof out), 0);
    cr_expect_not_null(strstr(out, "usage: stepfuse spec --spec SPEC.yaml"), "%s", out);
}
