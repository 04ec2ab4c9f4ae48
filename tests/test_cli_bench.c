/* stepfuse bench as a process: its argument errors everywhere, and on a GPU (skips where there
 * is none) the small golden model with fp16 matrices at batch 1 with --check 3: the check's
 * three symbols fit the engines although the batch is one entry, and the JSON reports the
 * engines against the reference of the mode and the mode against the fp32 model. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_gpu.h"
#include "testutil.h"
#include "tmpdir.h"
#include "util.h"

#define BENCH "./bin/stepfuse bench"

Test(cli_bench, arguments)
{
    expect_command(BENCH " --help", 0, "usage: stepfuse bench --spec S");
    expect_command(BENCH, 2, "--spec is required");
    expect_command(BENCH " --spec specs/tiny.yaml --batch 0", 2,
                   "--batch wants up to 16 comma-separated integers 1..4096, got '0'");
    expect_command(BENCH " --spec specs/tiny.yaml --check -1", 2, "--check wants an integer >= 0");
    expect_command(BENCH " --spec specs/tiny.yaml --baseline foo", 2, "--baseline is one of cublas, none");
    expect_command(BENCH " --spec specs/no-such.yaml", 1, "specs/no-such.yaml: cannot open spec");
}

/* The rel_l2 of comparison `key` in the bench JSON, every output finite. */
static double rel_l2(json_t *doc, const char *key)
{
    json_t *c = json_object_get(doc, key);
    cr_assert_not_null(c, "no '%s' in the JSON", key);
    cr_expect_eq(json_integer_value(json_object_get(c, "nonfinite")), 0, "%s: outputs not finite", key);
    return json_real_value(json_object_get(c, "rel_l2"));
}

Test(cli_bench, check_of_an_fp16_mode_at_batch_1, .timeout = 300)
{
    SKIP_WITHOUT_GPU();
    char dir[TMPDIR_PATH_MAX], spec[TMPDIR_PATH_MAX], json[TMPDIR_PATH_MAX], cmd[2048], *out;
    tmpdir_make(dir);
    size_t len;
    char *config = read_all(shared_path("golden/small/config.yaml"), &len);
    cr_assert_not_null(config);
    FILE *f = fopen(tmpdir_file(dir, "small-fp16.yaml", spec), "w");
    cr_assert_not_null(f);
    fprintf(f, "%.*s\nprecision: {weights: fp16}\n", (int)len, config);
    cr_assert_eq(fclose(f), 0);
    free(config);
    snprintf(cmd, sizeof cmd, BENCH " --spec %s --weights %s --batch 1 --iters 3 --check 3 --no-jit-time --json %s",
             spec, shared_path("golden/small/weights.safetensors"), tmpdir_file(dir, "bench.json", json));
    const int rc = run_command(cmd, 240, &out);
    cr_assert_eq(rc, 0, "%s: exit %d\n%s", cmd, rc, out);
    cr_expect(strstr(out, "3 requests on 3 symbols"), "%s", out);
    free(out);

    json_error_t jerr;
    json_t *doc = json_load_file(json, 0, &jerr);
    cr_assert_not_null(doc, "%s: %s", json, jerr.text);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "weights_precision")), "fp16");
    cr_expect_eq(json_integer_value(json_object_get(doc, "reference_requests")), 3);
    const double fused = rel_l2(doc, "fused_vs_reference_fp64"), unfused = rel_l2(doc, "unfused_vs_reference_fp64");
    const double mode = rel_l2(doc, "fused_vs_fp32_model_reference_fp64");
    cr_expect_leq(fused, 1e-5, "fused against the reference of the fp16 mode: %.3e", fused);
    cr_expect_leq(unfused, 1e-5, "unfused against the reference of the fp16 mode: %.3e", unfused);
    cr_expect(mode > 1e-6 && mode < 1e-2, "the fp16 mode against the fp32 model: %.3e outside (1e-6, 1e-2)", mode);
    json_decref(doc);
    tmpdir_remove(dir);
}
