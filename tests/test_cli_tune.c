/* stepfuse tune as a process: its argument errors everywhere, and on a GPU (skips where there
 * is none) a short tune of the small golden model: it starts from the engine's table and
 * writes every round's weights and towers' ends, the weights rebalanced in range. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_gpu.h"
#include "testutil.h"
#include "tmpdir.h"
#include "tower_balance.h"

#define TUNE "./bin/stepfuse tune"

Test(cli_tune, arguments)
{
    expect_command(TUNE " --help", 0, "usage: stepfuse tune --spec S");
    expect_command(TUNE, 2, "--spec is required");
    expect_command(TUNE " --spec specs/tiny.yaml --batch 1,,8", 2,
                   "--batch wants up to 16 comma-separated integers 1..4096");
    expect_command(TUNE " --spec specs/tiny.yaml --batch 1,8,", 2, "got '1,8,'");
    expect_command(TUNE " --spec specs/tiny.yaml --rounds 33", 2, "--rounds wants at most 32");
    expect_command(TUNE " --spec specs/tiny.yaml --iters 0", 2, "--iters wants an integer >= 1");
    expect_command(TUNE " --spec specs/no-such.yaml", 1, "specs/no-such.yaml: cannot open spec");
}

static void expect_weights(json_t *a, const char *what)
{
    cr_assert(json_is_array(a) && json_array_size(a) == NUM_TOWERS, "%s: not %d weights", what, NUM_TOWERS);
    for (int k = 0; k < NUM_TOWERS; k++) {
        const json_int_t v = json_integer_value(json_array_get(a, (size_t)k));
        cr_expect(v >= 1 && v <= 100000, "%s: tower %d weight %lld", what, k, (long long)v);
    }
}

Test(cli_tune, rounds_on_the_small_model, .timeout = 300)
{
    SKIP_WITHOUT_GPU();
    char dir[TMPDIR_PATH_MAX], json[TMPDIR_PATH_MAX], cmd[2048], *out;
    tmpdir_make(dir);
    tmpdir_file(dir, "tune.json", json);
    char spec[TMPDIR_PATH_MAX];
    snprintf(spec, sizeof spec, "%s", shared_path("golden/small/config.yaml")); /* shared_path's buffer is reused */
    snprintf(cmd, sizeof cmd,
             "./bin/stepfuse tune --spec %s --weights %s --batch 1,5 --rounds 3 --iters 3 --confirm 1 --json %s", spec,
             shared_path("golden/small/weights.safetensors"), json);
    const int rc = run_command(cmd, 240, &out);
    cr_assert_eq(rc, 0, "%s: exit %d\n%s", cmd, rc, out);
    cr_expect(strstr(out, "as rows of the table"), "%s", out);
    free(out);

    json_error_t jerr;
    json_t *doc = json_load_file(json, 0, &jerr);
    cr_assert_not_null(doc, "%s: %s", json, jerr.text);
    json_t *batches = json_object_get(doc, "batches");
    cr_assert_eq(json_array_size(batches), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *b = json_array_get(batches, i);
        const int nb = (int)json_integer_value(json_object_get(b, "batch"));
        cr_expect_eq(nb, i ? 5 : 1);
        int table[NUM_TOWERS];
        gpu_tower_weights(nb, PRECISION_FP32, PRECISION_FP32, table);
        json_t *tw = json_object_get(b, "table_weights");
        expect_weights(tw, "table");
        for (int k = 0; k < NUM_TOWERS; k++)
            cr_expect_eq(json_integer_value(json_array_get(tw, (size_t)k)), table[k],
                         "batch %d tower %d: tune started from another weight than the engine's table", nb, k);
        expect_weights(json_object_get(b, "best_weights"), "best");
        cr_expect_gt(json_real_value(json_object_get(b, "table_ms")), 0);
        cr_expect_gt(json_real_value(json_object_get(b, "best_ms")), 0);
        json_t *rounds = json_object_get(b, "rounds");
        const size_t nr = json_array_size(rounds);
        cr_expect(nr >= 1 && nr <= 3, "batch %d: %zu rounds", nb, nr);
        for (size_t r = 0; r < nr; r++) {
            json_t *round = json_array_get(rounds, r), *w = json_object_get(round, "weights");
            expect_weights(w, "round");
            cr_expect_gt(json_real_value(json_object_get(round, "step_ms")), 0);
            json_t *ends = json_object_get(round, "tower_done_us");
            cr_assert_eq(json_array_size(ends), NUM_TOWERS);
            int top = 0;
            for (int k = 0; k < NUM_TOWERS; k++) {
                cr_expect_gt(json_real_value(json_array_get(ends, (size_t)k)), 0, "batch %d round %zu tower %d", nb, r, k);
                const int v = (int)json_integer_value(json_array_get(w, (size_t)k));
                top = v > top ? v : top;
            }
            if (r > 0) cr_expect_eq(top, TOWER_WEIGHT_MAX, "batch %d round %zu: rebalanced weights top at %d", nb, r, top);
        }
    }
    json_decref(doc);
    tmpdir_remove(dir);
}
