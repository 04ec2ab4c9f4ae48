/* The generator: out/ is up to date for every spec, generation is deterministic, every
 * spec's kernel compiles with NVRTC (no GPU needed), compiler errors quote the generated
 * line, the device layout is aligned and the cubin cache is safe to share. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emit.h"
#include "jit.h"
#include "layout.h"
#include "model.h"
#include "nvrtc_build.h"
#include "spec.h"
#include "templates.h"
#include "testutil.h"
#include "util.h"

typedef struct {
    char path[256];
} spec_path_t;

static void load_spec(const char *path, spec_t *s)
{
    char err[SPEC_ERR_MAX];
    cr_assert_eq(spec_load(path, s, err), 0, "%s", err);
}

static void free_params(struct criterion_test_params *p) { cr_free(p->params); }

ParameterizedTestParameters(gen, spec_compiles)
{
    glob_t g;
    size_t n = 0;
    spec_path_t *paths = NULL;
    if (glob("specs/*.yaml", 0, NULL, &g) == 0) {
        n = g.gl_pathc;
        paths = cr_malloc(n * sizeof *paths);
        for (size_t i = 0; i < n; i++) snprintf(paths[i].path, sizeof paths[i].path, "%s", g.gl_pathv[i]);
        globfree(&g);
    }
    return cr_make_param_array(spec_path_t, paths, n, free_params);
}

/* Bytes a spec's kernel may spill to local memory: none, but with fp16 weights ptxas keeps
 * one value that the stage loop reads once a stage (the stage index) in local memory, in
 * every arrangement of the widening tried, and gives its register to the projections (one
 * cvt a weight where bf16's is a shift): the step as fast as bf16's within 1-2%
 * (notes/gpu.md, runs 203-205). With fp32 weights and a state write-back period the same 8
 * bytes go to local memory, and the step is 8-12% faster at batch 8-64 than writing back
 * every step without them (run 214). */
static int spill_allowance(const spec_t *s)
{
    const int fp32_writeback = s->precision.weights == PRECISION_FP32 && s->state.writeback > 1;
    return s->precision.weights == PRECISION_FP16 || fp32_writeback ? 8 : 0;
}

/* Every spec's kernel compiles for sm_90 into one function within its spill allowance
 * (until the towers had their own barriers, the golden 'medium' spec's spilled 8 bytes:
 * notes/gpu.md, runs 136-145 and 162). */
ParameterizedTest(spec_path_t *sp, gen, spec_compiles, .timeout = 600)
{
    spec_t s;
    char err[ERR_MAX], file[SPEC_NAME_MAX + 8];
    char *src;
    size_t len;
    load_spec(sp->path, &s);
    cr_assert_eq(emit_kernel(&s, sp->path, &src, &len, err), 0, "%s", err);
    snprintf(file, sizeof file, "%s.cu", s.name);
    nvrtc_build_t b;
    int rc = nvrtc_build(src, file, "sm_90", &b, err);
    cr_assert_eq(rc, 0, "%s\n%s", err, b.log ? b.log : "");
    cr_log_info("%s: %d registers, %d bytes smem, %d bytes stack, spills %d/%d", file, b.registers,
                b.shared_bytes, b.stack_bytes, b.spill_stores, b.spill_loads);
    cr_expect_gt(b.registers, 0, "no register count in the ptxas report:\n%s", b.log);
    cr_expect_leq(b.spill_stores, spill_allowance(&s), "%s spills %d bytes (allowed: %d)", file, b.spill_stores,
                  spill_allowance(&s));
    /* a tower's phases called out of line cost the full-size step 7-10% (notes/gpu.md, run 97;
     * 2-6% on purpose, run 219) */
    cr_expect_eq(b.stray_functions, 0, "%s has %d device functions out of line:\n%s", file, b.stray_functions, b.log);
    cr_expect_gt(b.cubin_size, 1000);
    nvrtc_build_free(&b);
    free(src);
}

/* out/<name>.cu is exactly what the generator makes now from specs/<name>.yaml. */
Test(gen, out_is_up_to_date)
{
    glob_t g;
    cr_assert_eq(glob("specs/*.yaml", 0, NULL, &g), 0, "no specs/*.yaml (run from the repository root)");
    int stale = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        spec_t s;
        char err[ERR_MAX], out[256];
        char *src, *have;
        size_t len, have_len = 0;
        load_spec(g.gl_pathv[i], &s);
        cr_assert_eq(emit_kernel(&s, g.gl_pathv[i], &src, &len, err), 0, "%s", err);
        snprintf(out, sizeof out, "out/%s.cu", s.name);
        have = read_all(out, &have_len);
        if (!have || have_len != len || memcmp(have, src, len)) {
            cr_log_error("%s is stale or missing: run bin/stepfuse gen --spec %s", out, g.gl_pathv[i]);
            stale++;
        }
        free(have);
        free(src);
    }
    globfree(&g);
    cr_expect_eq(stale, 0, "%d generated kernels in out/ are stale", stale);
}

Test(gen, deterministic_and_marked_generated)
{
    spec_t s;
    char err[ERR_MAX];
    char *a, *b;
    size_t la, lb;
    load_spec("specs/small.yaml", &s);
    cr_assert_eq(emit_kernel(&s, "specs/small.yaml", &a, &la, err), 0, "%s", err);
    cr_assert_eq(emit_kernel(&s, "specs/small.yaml", &b, &lb, err), 0, "%s", err);
    cr_expect(la == lb && !memcmp(a, b, la), "two generations of one spec differ");
    cr_expect(!strncmp(a, "// Generated by stepfuse gen from small.yaml", 44), "first line: %.80s", a);
    cr_expect(strstr(a, "extern \"C\" __global__") != NULL);
    cr_expect(strstr(a, "constexpr int H = 64, P = 128, NBLOCKS = 2") != NULL, "sizes are not baked in");
    cr_expect(strstr(a, "@@") == NULL || strstr(a, "(marked @@...@@)") != NULL, "a marker was left unfilled");
    free(a);
    free(b);
}

Test(gen, rejects_sizes_the_kernel_cannot_load)
{
    spec_t s;
    spec_set_defaults(&s);
    snprintf(s.name, sizeof s.name, "odd");
    s.hidden_size = 66; /* not a multiple of 4 */
    s.proj_size = 64;
    s.tower_depth = 1;
    s.num_heads = 2;
    s.num_features = 79;
    spec_derive(&s);
    char err[ERR_MAX] = "", *src = NULL;
    size_t len;
    cr_assert_eq(emit_kernel(&s, "odd.yaml", &src, &len, err), -1);
    cr_expect(strstr(err, "hidden_size = 66") != NULL, "message: %s", err);
}

/* The projections stage a window of every entry's inputs in shared memory: a max_batch
 * whose smallest window does not fit is refused by name; the largest that fits is taken. */
Test(gen, rejects_a_batch_the_staging_cannot_hold)
{
    spec_t s;
    load_spec("specs/small.yaml", &s);
    char err[ERR_MAX] = "", *src = NULL;
    size_t len;
    s.batch.max_batch = 1;
    const int largest = STAGE_WINDOW_FLOATS / emit_staged_window_floats(&s);
    s.batch.max_batch = largest + 1;
    cr_assert_eq(emit_kernel(&s, "big.yaml", &src, &len, err), -1);
    cr_expect(strstr(err, "max_batch") != NULL, "message: %s", err);
    s.batch.max_batch = largest;
    cr_assert_eq(emit_kernel(&s, "big.yaml", &src, &len, err), 0, "%s", err);
    free(src);
}

/* Weight tensors of a spec in the given precision: no two share a byte, each starts on 16
 * bytes except the sLSTM gates' state matrices, whose rows follow their input matrices'
 * (rows twice as long), matrices (and only they) in 16 bits when the spec says so. Returns the
 * weight bytes. */
static int64_t check_weight_layout(spec_t s, precision_t weights)
{
    char err[ERR_MAX];
    catalogue_t c;
    layout_t l;
    s.precision.weights = weights;
    catalogue_build(&s, &c);
    cr_assert_eq(layout_build(&s, &c, &l, err), 0, "%s", err);
    unsigned char *used = xcalloc((size_t)l.weight_bytes, 1);
    int64_t matrices = 0, paired = 0;
    for (int i = 0; i < c.count; i++) {
        const int elem = c.t[i].matrix && weights != PRECISION_FP32 ? 2 : 4;
        const int64_t row = l.weight_row[i] * elem, ld = l.weight_ld[i] * elem;
        matrices += c.t[i].matrix;
        cr_expect_eq(l.weight_elem[i], elem, "%s: %d bytes an element", c.t[i].name, l.weight_elem[i]);
        cr_expect_eq(l.weight_rows[i] * l.weight_row[i], c.t[i].numel, "%s", c.t[i].name);
        if (strstr(c.t[i].name, ".slstm.") && strstr(c.t[i].name, "gate_state.weight")) {
            paired++;
            cr_expect_eq(l.weight_offset[i], l.weight_offset[i - 1] + row, "%s: a row after %s", c.t[i].name,
                         c.t[i - 1].name);
            cr_expect_eq(ld, 2 * row, "%s: rows %lld bytes apart", c.t[i].name, (long long)ld);
        } else {
            cr_expect_eq(l.weight_offset[i] % 16, 0, "%s at %lld", c.t[i].name, (long long)l.weight_offset[i]);
        }
        cr_assert_leq(l.weight_offset[i] + (l.weight_rows[i] - 1) * ld + row, l.weight_bytes, "%s ends past the weights",
                      c.t[i].name);
        for (int64_t r = 0; r < l.weight_rows[i]; r++) {
            unsigned char *at = used + l.weight_offset[i] + r * ld;
            cr_expect_null(memchr(at, 1, (size_t)row), "%s row %lld overlaps another tensor", c.t[i].name, (long long)r);
            memset(at, 1, (size_t)row);
        }
    }
    cr_expect_gt(matrices, 4 * 4 * s.tower_depth, "the projections are matrices");
    cr_expect_eq(paired, 4 * s.tower_depth, "a sLSTM gate's state matrix in its input matrix's rows");
    free(used);
    const int64_t bytes = l.weight_bytes;
    layout_free(&l);
    catalogue_free(&c);
    return bytes;
}

/* Every tensor, state region and activation starts on 16 bytes; the sLSTM m starts at
 * -infinity and everything else at zero. */
Test(gen, layout_is_aligned_and_initialised)
{
    spec_t s;
    char err[ERR_MAX];
    catalogue_t c;
    layout_t l;
    load_spec("specs/medium.yaml", &s);
    const int64_t fp32 = check_weight_layout(s, PRECISION_FP32);
    for (precision_t p = PRECISION_BF16; p <= PRECISION_FP16; p++) {
        const int64_t half = check_weight_layout(s, p);
        cr_expect(half < fp32 * 0.55 && half > fp32 * 0.45, "%s weights %lld bytes, fp32 %lld", precision_name(p),
                  (long long)half, (long long)fp32);
    }
    catalogue_build(&s, &c);
    cr_assert_eq(layout_build(&s, &c, &l, err), 0, "%s", err);
    cr_expect_eq(l.slot_floats % 4, 0);
    float *slot = xmalloc((size_t)l.slot_floats * sizeof *slot);
    layout_initial_state(&s, &l, slot);
    int64_t neg_inf = 0, zeros = 0;
    for (int64_t i = 0; i < l.slot_floats; i++) {
        if (isinf(slot[i]) && slot[i] < 0) neg_inf++;
        else if (slot[i] == 0.0f) zeros++;
    }
    cr_expect_eq(neg_inf, (int64_t)s.hidden_size * s.tower_depth, "sLSTM m: %lld floats at -inf", (long long)neg_inf);
    cr_expect_eq(neg_inf + zeros, l.slot_floats);
    for (int k = 0; k < NUM_TOWERS; k++)
        for (int r = 0; r < l.scratch_count[k]; r++)
            cr_expect_eq(l.scratch[k][r].offset % 4, 0, "scratch %s", l.scratch[k][r].name);
    free(slot);
    layout_free(&l);
    catalogue_free(&c);
}

/* precision.state bf16 halves the mLSTM memory and Mamba2's SSM state (two elements a float)
 * and nothing else: RetNet's retention stays fp32. */
Test(gen, bf16_state_halves_the_state_matrices)
{
    spec_t s;
    char err[ERR_MAX];
    catalogue_t c;
    layout_t l32, l16;
    load_spec("specs/medium.yaml", &s);
    catalogue_build(&s, &c);
    cr_assert_eq(layout_build(&s, &c, &l32, err), 0, "%s", err);
    s.precision.state = PRECISION_BF16;
    cr_assert_eq(layout_build(&s, &c, &l16, err), 0, "%s", err);
    static const char *const matrices[NUM_TOWERS] = {"m_C", "ssm", NULL, NULL};
    int64_t saved = 0;
    for (int k = 0; k < NUM_TOWERS; k++) {
        cr_assert_eq(l16.state_count[k], l32.state_count[k]);
        for (int r = 0; r < l32.state_count[k]; r++) {
            const region_t *a = &l32.state[k][r], *b = &l16.state[k][r];
            const int matrix = matrices[k] && !strcmp(a->name, matrices[k]);
            const int64_t want = matrix ? (a->floats / 2 + 3) & ~(int64_t)3 : a->floats;
            cr_expect_eq(b->floats, want, "%s: %lld floats, fp32 %lld", a->name, (long long)b->floats,
                         (long long)a->floats);
            cr_expect_eq(b->offset % 4, 0, "%s", b->name);
            saved += (a->floats - b->floats) * s.tower_depth;
        }
    }
    cr_expect_gt(saved, l32.slot_floats / 3, "the matrices are most of the state");
    cr_expect_eq(l16.slot_floats, l32.slot_floats - saved);
    layout_free(&l16);
    layout_free(&l32);
    catalogue_free(&c);
}

/* A write-back period adds its logs to a slot and nothing else: the model's state (what the
 * bench's floor counts) is the slot of writing back every step. */
Test(gen, writeback_adds_only_the_logs)
{
    spec_t s;
    char err[ERR_MAX];
    catalogue_t c;
    layout_t l1, l8;
    load_spec("specs/medium.yaml", &s);
    catalogue_build(&s, &c);
    cr_assert_eq(layout_build(&s, &c, &l1, err), 0, "%s", err);
    s.state.writeback = 8;
    cr_assert_eq(layout_build(&s, &c, &l8, err), 0, "%s", err);
    cr_expect_gt(l8.slot_floats, l1.slot_floats);
    cr_expect_eq(layout_model_state_floats(&s, &l8), l1.slot_floats, "%lld model floats, %lld every step",
                 (long long)layout_model_state_floats(&s, &l8), (long long)l1.slot_floats);
    s.state.writeback = 1;
    cr_expect_eq(layout_model_state_floats(&s, &l1), l1.slot_floats);
    layout_free(&l8);
    layout_free(&l1);
    catalogue_free(&c);
}

/* state.writeback: the logged updates of a saved slot image applied to its matrices, S = f S +
 * a v^T per logged step in order (the product rounded, then one fma; a bf16 state rounded to
 * nearest after each), the counts back to 0 and every other float as it was. */
Test(gen, flush_applies_the_logged_updates)
{
    static const precision_t states[] = {PRECISION_FP32, PRECISION_BF16};
    for (size_t q = 0; q < ARRAY_LEN(states); q++) {
        spec_t s;
        char err[ERR_MAX];
        catalogue_t c;
        layout_t l;
        load_spec("specs/small.yaml", &s);
        s.state.writeback = 4;
        s.precision.state = states[q];
        catalogue_build(&s, &c);
        cr_assert_eq(layout_build(&s, &c, &l, err), 0, "%s", err);
        const size_t n = (size_t)l.slot_floats;
        float *slot = xmalloc(n * sizeof *slot), *want = xmalloc(n * sizeof *want);
        random_uniform(slot, n, 0x5eed + q, -1, 1);
        const int bf16 = states[q] == PRECISION_BF16;
        /* random floats everywhere: as bf16 pairs too, any bits are a state to flush */
        struct { int tower; const char *matrix, *logged, *log; int heads, dim, bf16; } towers[] = {
            {TOWER_XLSTM, "m_C", "m_logged", "m_log", s.xlstm.mlstm_num_heads, s.d.mlstm_head, bf16},
            {TOWER_RETNET, "R", "R_logged", "R_log", s.retnet.num_heads, s.d.retnet_head, 0},
        };
        for (size_t t = 0; t < ARRAY_LEN(towers); t++)
            for (int b = 0; b < s.tower_depth; b++) { /* blocks logged 3, 2, 1, 0 steps, ... */
                const int k = towers[t].tower;
                float *block = slot + l.state_base[k] + b * l.state_block[k];
                const int32_t count = (3 - b % 4 + 4) % 4;
                memcpy(block + layout_state_region(&l, k, towers[t].logged)->offset, &count, sizeof count);
            }
        memcpy(want, slot, n * sizeof *want);
        for (size_t t = 0; t < ARRAY_LEN(towers); t++) {
            const int k = towers[t].tower, H = towers[t].heads, D = towers[t].dim;
            const region_t *rm = layout_state_region(&l, k, towers[t].matrix);
            const region_t *rc = layout_state_region(&l, k, towers[t].logged);
            const region_t *rl = layout_state_region(&l, k, towers[t].log);
            cr_assert(rm && rc && rl, "the regions of %s", towers[t].matrix);
            const int64_t om = rm->offset, oc = rc->offset, ol = rl->offset;
            for (int b = 0; b < s.tower_depth; b++) {
                float *block = want + l.state_base[k] + b * l.state_block[k];
                int32_t count;
                memcpy(&count, block + oc, sizeof count);
                for (int p = 0; p < count; p++) {
                    const float *a = block + ol + p * layout_log_entry(H, D), *v = a + H * D, *f = v + H * D;
                    for (int e = 0; e < H * D * D; e++) {
                        const int head = e / (D * D), i = e / D % D, j = e % D;
                        float x;
                        if (towers[t].bf16) {
                            uint16_t h;
                            memcpy(&h, (char *)(block + om) + 2 * e, 2);
                            x = bf16_float(h);
                        } else {
                            x = block[om + e];
                        }
                        const float av = a[head * D + i] * v[head * D + j];
                        x = fmaf(f[head], x, av);
                        if (towers[t].bf16) {
                            const uint16_t h = bf16_bits(x);
                            memcpy((char *)(block + om) + 2 * e, &h, 2);
                        } else {
                            block[om + e] = x;
                        }
                    }
                }
                memset(block + oc, 0, sizeof count);
            }
        }
        float *before = xmalloc(n * sizeof *before);
        memcpy(before, slot, n * sizeof *before);
        layout_flush_state(&s, &l, slot);
        size_t changed = 0;
        for (size_t i = 0; i < n; i++) changed += memcmp(&slot[i], &before[i], sizeof *slot) != 0;
        cr_expect(memcmp(slot, want, n * sizeof *slot) == 0, "%s state: the flushed image differs",
                  precision_name(states[q]));
        cr_expect_gt(changed, n / 8, "%s state: %zu of %zu floats changed", precision_name(states[q]), changed, n);
        free(before);
        free(want);
        free(slot);
        layout_free(&l);
        catalogue_free(&c);
    }
}

/* A compilation error names the generated line and quotes it. */
Test(gen, compile_error_quotes_the_generated_line)
{
    const char *src = "extern \"C\" __global__ void k(float *x)\n{\n    x[0] = undefined_thing;\n}\n";
    nvrtc_build_t b;
    char err[ERR_MAX];
    cr_assert_eq(nvrtc_build(src, "broken.cu", "sm_90", &b, err), -1);
    cr_assert_not_null(b.log);
    cr_expect(strstr(b.log, "broken.cu(3)") != NULL, "log: %s", b.log);
    cr_expect(strstr(b.log, "| 3:     x[0] = undefined_thing;") != NULL, "log: %s", b.log);
    cr_expect(strstr(err, "broken.cu") != NULL, "err: %s", err);
    nvrtc_build_free(&b);
}

/* ptxas's report counts the functions NVVM left out of line: the kernel and the templates'
 * __noinline__ ones (by name) are not strays, any other is. */
Test(gen, counts_stray_functions)
{
    const char *src = "__device__ __noinline__ float stage_log(float *x) { return x[1] * 2.0f; }\n"
                      "__device__ __noinline__ float helper(float *x) { return x[2] + 1.0f; }\n"
                      "extern \"C\" __global__ void k(float *x) { x[0] = stage_log(x) + helper(x); }\n";
    nvrtc_build_t b;
    char err[ERR_MAX];
    cr_assert_eq(nvrtc_build(src, "stray.cu", "sm_90", &b, err), 0, "%s", err);
    cr_expect_eq(b.stray_functions, 1, "log:\n%s", b.log);
    nvrtc_build_free(&b);
}

/* The cubin cache: a second request is served from disk with the same bytes; two
 * processes filling an empty cache at once both succeed and leave one valid file. */
Test(gen, cubin_cache, .timeout = 300)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/stepfuse-cache-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    setenv("STEPFUSE_CACHE", dir, 1);
    const char *src = "extern \"C\" __global__ void k(float *x) { x[threadIdx.x] *= 2.0f; }\n";
    char err[ERR_MAX];
    void *a, *b;
    size_t la, lb;
    int cached;
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            void *c;
            size_t lc;
            int hit;
            _exit(jit_cubin(src, "k.cu", "sm_90", &c, &lc, &hit, err) ? 1 : 0);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status;
        waitpid(kids[i], &status, 0);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a concurrent compile failed");
    }
    cr_assert_eq(jit_cubin(src, "k.cu", "sm_90", &a, &la, &cached, err), 0, "%s", err);
    cr_expect_eq(cached, 1, "not served from the cache after two processes filled it");
    cr_assert_eq(jit_cubin(src, "k.cu", "sm_80", &b, &lb, &cached, err), 0, "%s", err);
    cr_expect_eq(cached, 0, "another arch must not hit the same entry");
    free(b);
    cr_assert_eq(jit_cubin(src, "k.cu", "sm_90", &b, &lb, &cached, err), 0, "%s", err);
    cr_expect(cached && la == lb && !memcmp(a, b, la), "cache returned different bytes");
    glob_t g;
    char pattern[600];
    snprintf(pattern, sizeof pattern, "%s/*", dir);
    cr_assert_eq(glob(pattern, 0, NULL, &g), 0);
    cr_expect_eq(g.gl_pathc, 2, "expected two cubins (sm_90, sm_80) and no temporaries, found %zu", g.gl_pathc);
    for (size_t i = 0; i < g.gl_pathc; i++) remove(g.gl_pathv[i]);
    globfree(&g);
    rmdir(dir);
    free(a);
    free(b);
}

/* The templates embedded in the binary are the files in templates/, byte for byte (the
 * Makefile's escaping of backslashes, quotes and trigraph marks included). */
Test(gen, embedded_templates_equal_the_files)
{
    cr_assert_gt(stepfuse_template_count, 0);
    for (int i = 0; i < stepfuse_template_count; i++) {
        char path[256];
        snprintf(path, sizeof path, "templates/%s", stepfuse_templates[i].name);
        size_t len;
        char *text = read_all(path, &len);
        cr_assert_not_null(text, "cannot read %s", path);
        cr_expect_str_eq(stepfuse_templates[i].text, text, "%s differs from its embedded copy", path);
        free(text);
    }
}

typedef struct {
    char name[16];
} template_name_t;

ParameterizedTestParameters(gen, standalone_templates_compile)
{
    static template_name_t names[] = {{"unfused.cu"}, {"probe.cu"}};
    return cr_make_param_array(template_name_t, names, sizeof names / sizeof names[0]);
}

/* Needs no GPU: a compile error in the templates compiled on their own (the unfused
 * engine's kernels, the bench's weight-stream probe) fails here, in CI. */
ParameterizedTest(template_name_t *t, gen, standalone_templates_compile, .timeout = 120)
{
    const char *src = template_text(t->name);
    cr_assert_not_null(src, "templates/%s is not embedded", t->name);
    nvrtc_build_t b;
    char err[ERR_MAX];
    const int rc = nvrtc_build(src, t->name, "sm_90", &b, err);
    cr_expect_eq(rc, 0, "%s\n%s", err, b.log ? b.log : "");
    nvrtc_build_free(&b);
}
