/* safetensors reader and writer: round trips, and one test per class of broken file. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"
#include "testutil.h"
#include "tmpdir.h"
#include "util.h"

static char dir[TMPDIR_PATH_MAX];

static void setup(void)
{
    tmpdir_make(dir);
}

static void teardown(void)
{
    tmpdir_remove(dir);
}

TestSuite(safetensors, .init = setup, .fini = teardown);

/* Write a file by hand: 8-byte header length, the header text, then data_len data bytes
 * (a non-zero pattern). Returns the path. */
static const char *write_raw(const char *name, uint64_t header_len, const char *header,
                             size_t data_len)
{
    static char path[TMPDIR_PATH_MAX];
    tmpdir_file(dir, name, path);
    FILE *fp = fopen(path, "wb");
    cr_assert(fp);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(header_len >> (8 * i));
    fwrite(len8, 1, 8, fp);
    fwrite(header, 1, strlen(header), fp);
    for (size_t i = 0; i < data_len; i++) fputc((int)(i * 7 + 1), fp);
    cr_assert(fclose(fp) == 0);
    return path;
}

static const char *write_header(const char *name, const char *header, size_t data_len)
{
    return write_raw(name, strlen(header), header, data_len);
}

/* st_open must fail with a message containing every given fragment. */
static void expect_open_error(const char *path, const char *frag1, const char *frag2)
{
    st_file_t f;
    char err[ERR_MAX] = "";
    cr_assert_eq(st_open(path, &f, err), -1, "%s: opened although broken", path);
    cr_log_info("%s", err);
    cr_assert(strstr(err, path), "message does not name the file: %s", err);
    cr_assert(strstr(err, frag1), "message lacks '%s': %s", frag1, err);
    if (frag2) cr_assert(strstr(err, frag2), "message lacks '%s': %s", frag2, err);
}

/* ---------------------------------------------------------------- writer round trip */

Test(safetensors, writer_round_trip)
{
    const float a[2][3] = {{1.5f, -2.25f, 3.0f}, {4.0f, 1e-30f, -0.0f}};
    const int32_t b[4] = {7, -8, 2147483647, -2147483647 - 1};
    const double c = 3.141592653589793;
    const st_decl_t decls[] = {
        {"a", ST_F32, 2, {2, 3}}, {"b.int", ST_I32, 1, {4}}, {"c", ST_F64, 0, {0}}};
    const st_meta_t meta[] = {{"spec", "tiny"}, {"seed", "42"}};
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    tmpdir_file(dir, "rt.safetensors", path);
    st_writer_t *w = st_writer_open_meta(path, decls, 3, meta, 2, err);
    cr_assert(w, "%s", err);
    /* in uneven pieces, across tensor boundaries */
    const char *pa = (const char *)a;
    cr_assert_eq(st_writer_write(w, pa, 5, err), 0, "%s", err);
    cr_assert_eq(st_writer_write(w, pa + 5, sizeof a - 5, err), 0, "%s", err);
    cr_assert_eq(st_writer_write(w, b, sizeof b, err), 0, "%s", err);
    cr_assert_eq(st_writer_write(w, &c, sizeof c, err), 0, "%s", err);
    cr_assert_eq(st_writer_close(w, err), 0, "%s", err);
    cr_assert_eq(tmpdir_count(dir), 1, "temporary file left behind");

    st_file_t f;
    cr_assert_eq(st_open(path, &f, err), 0, "%s", err);
    cr_assert_eq(f.count, 3);
    cr_assert_str_eq(st_metadata(&f, "spec"), "tiny");
    cr_assert_str_eq(st_metadata(&f, "seed"), "42");
    cr_assert_null(st_metadata(&f, "nope"));
    /* data section 8-byte aligned: the header is padded with spaces */
    uint64_t hlen;
    memcpy(&hlen, f.map, 8);
    cr_assert_eq(hlen % 8, 0, "header length %llu", (unsigned long long)hlen);

    const st_tensor_t *ta = st_find(&f, "a"), *tb = st_find(&f, "b.int"), *tc = st_find(&f, "c");
    cr_assert(ta && tb && tc);
    cr_assert(ta->dtype == ST_F32 && ta->ndim == 2 && ta->shape[0] == 2 && ta->shape[1] == 3);
    cr_assert_eq(ta->numel, 6);
    cr_assert(tb->dtype == ST_I32 && tb->ndim == 1 && tb->numel == 4);
    cr_assert(tc->dtype == ST_F64 && tc->ndim == 0 && tc->numel == 1);
    cr_assert_eq(memcmp(ta->data, a, sizeof a), 0);
    cr_assert_eq(memcmp(tb->data, b, sizeof b), 0);

    double a64[6], c64;
    int32_t b32[4];
    cr_assert_eq(st_read_f64(ta, a64, err), 0, "%s", err);
    for (int i = 0; i < 6; i++) cr_assert_eq(a64[i], (double)a[i / 3][i % 3]);
    cr_assert_eq(st_read_i32(tb, b32, err), 0, "%s", err);
    cr_assert_eq(memcmp(b32, b, sizeof b), 0);
    cr_assert_eq(st_read_f64(tc, &c64, err), 0, "%s", err);
    cr_assert_eq(c64, c);
    cr_assert_eq(st_read_f32(tb, (float *)b32, err), -1);
    cr_assert(strstr(err, "'b.int'") && strstr(err, "I32"), "%s", err);
    st_close(&f);
}

Test(safetensors, writer_short_data_fails_and_leaves_nothing)
{
    const st_decl_t decls[] = {{"x", ST_F32, 1, {4}}, {"y", ST_F32, 1, {4}}};
    const float v[6] = {1, 2, 3, 4, 5, 6};
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    st_writer_t *w = st_writer_open(tmpdir_file(dir, "short.safetensors", path), decls, 2, err);
    cr_assert(w, "%s", err);
    cr_assert_eq(st_writer_write(w, v, sizeof v, err), 0, "%s", err);
    cr_assert_eq(st_writer_close(w, err), -1);
    cr_assert(strstr(err, "'y'") && strstr(err, "24 of 32"), "%s", err);
    cr_assert_eq(tmpdir_count(dir), 0, "short file or temporary file left behind");
}

Test(safetensors, writer_rejects_extra_data)
{
    const st_decl_t decls[] = {{"x", ST_F32, 1, {2}}};
    const float v[3] = {1, 2, 3};
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    st_writer_t *w = st_writer_open(tmpdir_file(dir, "long.safetensors", path), decls, 1, err);
    cr_assert(w, "%s", err);
    cr_assert_eq(st_writer_write(w, v, sizeof v, err), -1);
    cr_assert(strstr(err, "4 more bytes"), "%s", err);
    st_writer_abort(w);
    cr_assert_eq(tmpdir_count(dir), 0);
}

Test(safetensors, writer_abort_keeps_the_old_file)
{
    const st_decl_t decls[] = {{"x", ST_F32, 1, {1}}};
    const float one = 1, two = 2;
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    tmpdir_file(dir, "keep.safetensors", path);
    st_writer_t *w = st_writer_open(path, decls, 1, err);
    cr_assert(w && st_writer_write(w, &one, 4, err) == 0 && st_writer_close(w, err) == 0, "%s", err);
    w = st_writer_open(path, decls, 1, err);
    cr_assert(w && st_writer_write(w, &two, 4, err) == 0, "%s", err);
    st_writer_abort(w);
    cr_assert_eq(tmpdir_count(dir), 1);
    st_file_t f;
    cr_assert_eq(st_open(path, &f, err), 0, "%s", err);
    float got;
    cr_assert_eq(st_read_f32(&f.tensors[0], &got, err), 0);
    cr_assert_eq(got, 1.0f, "the aborted write replaced the file");
    st_close(&f);
}

Test(safetensors, writer_rejects_duplicate_names)
{
    const st_decl_t decls[] = {{"x", ST_F32, 1, {1}}, {"x", ST_F32, 1, {1}}};
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    cr_assert_null(st_writer_open(tmpdir_file(dir, "dup.safetensors", path), decls, 2, err));
    cr_assert(strstr(err, "'x' declared twice"), "%s", err);
    cr_assert_eq(tmpdir_count(dir), 0);
}

/* ---------------------------------------------------------------- conversions */

Test(safetensors, bf16_widens_exactly)
{
    /* bf16 bit patterns and their exact fp32 values */
    const uint16_t bits[5] = {0x3fc0, 0xbc00, 0x0001, 0x7f7f, 0x8000};
    const float want[5] = {1.5f, -0.0078125f, 9.18354961579912115600575419705e-41f,
                           3.38953138925153547590470800371e38f, -0.0f};
    const st_decl_t decls[] = {{"h", ST_BF16, 1, {5}}};
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    st_writer_t *w = st_writer_open(tmpdir_file(dir, "bf16.safetensors", path), decls, 1, err);
    cr_assert(w && st_writer_write(w, bits, sizeof bits, err) == 0 && st_writer_close(w, err) == 0,
              "%s", err);
    st_file_t f;
    cr_assert_eq(st_open(path, &f, err), 0, "%s", err);
    float got[5];
    cr_assert_eq(st_read_f32(&f.tensors[0], got, err), 0, "%s", err);
    for (int i = 0; i < 5; i++)
        cr_assert(memcmp(&got[i], &want[i], 4) == 0, "element %d: %a != %a", i, got[i], want[i]);
    st_close(&f);
}

Test(safetensors, i64_to_i32_range_checked)
{
    const int64_t v[2] = {5, (int64_t)1 << 40};
    const st_decl_t decls[] = {{"n", ST_I64, 1, {2}}};
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    st_writer_t *w = st_writer_open(tmpdir_file(dir, "i64.safetensors", path), decls, 1, err);
    cr_assert(w && st_writer_write(w, v, sizeof v, err) == 0 && st_writer_close(w, err) == 0, "%s",
              err);
    st_file_t f;
    cr_assert_eq(st_open(path, &f, err), 0, "%s", err);
    int32_t got[2];
    cr_assert_eq(st_read_i32(&f.tensors[0], got, err), -1);
    cr_assert(strstr(err, "'n'") && strstr(err, "element 1"), "%s", err);
    st_close(&f);
}

/* ---------------------------------------------------------------- broken files */

Test(safetensors, missing_file)
{
    char path[TMPDIR_PATH_MAX];
    expect_open_error(tmpdir_file(dir, "absent.safetensors", path), "cannot open",
                      "No such file");
}

Test(safetensors, shorter_than_header_length)
{
    char path[TMPDIR_PATH_MAX];
    FILE *fp = fopen(tmpdir_file(dir, "tiny.safetensors", path), "wb");
    fwrite("\x10\0\0", 1, 3, fp);
    fclose(fp);
    expect_open_error(path, "3 bytes", "too short");
}

Test(safetensors, header_length_beyond_file)
{
    const char *h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    expect_open_error(write_raw("hlen.safetensors", 1000, h, 4), "header length 1000",
                      "exceeds the file");
}

Test(safetensors, absurd_header_length)
{
    /* a sparse file larger than the header limit, so only the limit can reject it */
    char path[TMPDIR_PATH_MAX];
    const uint64_t len = 200ull << 20;
    write_raw("huge.safetensors", len, "{}", 0);
    tmpdir_file(dir, "huge.safetensors", path);
    cr_assert_eq(truncate(path, (off_t)(len + 8)), 0);
    expect_open_error(path, "absurd", NULL);
}

Test(safetensors, bad_json_reports_line_and_column)
{
    const char *h = "{\"x\":{\"dtype\":\"F32\",\n \"shape\":[1],, \"data_offsets\":[0,4]}}";
    expect_open_error(write_header("json.safetensors", h, 4), "line 2 column", NULL);
}

Test(safetensors, top_level_not_an_object)
{
    expect_open_error(write_header("arr.safetensors", "[1, 2]", 0), "not an object", NULL);
}

Test(safetensors, entry_not_an_object)
{
    expect_open_error(write_header("entry.safetensors", "{\"x\": 3}", 0), "tensor 'x'",
                      "not an object");
}

Test(safetensors, entry_missing_keys)
{
    expect_open_error(write_header("nodtype.safetensors",
                                   "{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                      "tensor 'x'", "missing 'dtype'");
    expect_open_error(write_header("noshape.safetensors",
                                   "{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
                      "tensor 'x'", "missing 'shape'");
    expect_open_error(write_header("nooffs.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}",
                                   4),
                      "tensor 'x'", "missing 'data_offsets'");
}

Test(safetensors, unknown_dtype)
{
    expect_open_error(write_header("dtype.safetensors",
                                   "{\"w\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                                   4),
                      "tensor 'w'", "unknown dtype 'F12'");
}

Test(safetensors, bad_shape)
{
    expect_open_error(write_header("neg.safetensors",
                                   "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}",
                                   4),
                      "tensor 'w'", "shape[1]");
    expect_open_error(write_header("real.safetensors",
                                   "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}",
                                   4),
                      "tensor 'w'", "shape[0]");
}

Test(safetensors, offsets_end_before_begin)
{
    expect_open_error(write_header("order.safetensors",
                                   "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}",
                                   8),
                      "tensor 'w'", "end < begin");
}

Test(safetensors, offsets_out_of_range)
{
    expect_open_error(write_header("range.safetensors",
                                   "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[96,100]}}",
                                   16),
                      "tensor 'w'", "beyond the 16-byte data section");
}

Test(safetensors, byte_count_mismatch)
{
    expect_open_error(write_header("count.safetensors",
                                   "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
                                   8),
                      "tensor 'w'", "needs 12");
}

Test(safetensors, truncated_data)
{
    /* a good file with its last 4 bytes cut off: the last tensor sticks out */
    const st_decl_t decls[] = {{"first", ST_F32, 1, {2}}, {"last", ST_F32, 1, {3}}};
    const float v[5] = {1, 2, 3, 4, 5};
    char path[TMPDIR_PATH_MAX], err[ERR_MAX];
    st_writer_t *w = st_writer_open(tmpdir_file(dir, "trunc.safetensors", path), decls, 2, err);
    cr_assert(w && st_writer_write(w, v, sizeof v, err) == 0 && st_writer_close(w, err) == 0, "%s",
              err);
    st_file_t f;
    cr_assert_eq(st_open(path, &f, err), 0, "%s", err);
    size_t len = f.map_len;
    st_close(&f);
    cr_assert_eq(truncate(path, (off_t)(len - 4)), 0);
    expect_open_error(path, "tensor 'last'", "truncated");
}

Test(safetensors, metadata_must_be_strings)
{
    expect_open_error(write_header("meta.safetensors", "{\"__metadata__\":{\"seed\":3}}", 0),
                      "__metadata__", "'seed'");
}

Test(safetensors, duplicate_tensor_names)
{
    const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    expect_open_error(write_header("twice.safetensors", h, 4), "duplicate", NULL);
}

/* ---------------------------------------------------------------- a real file */

Test(safetensors, golden_io_file_opens)
{
    const char *path = shared_path("golden/small/io.safetensors");
    char err[ERR_MAX];
    st_file_t f;
    cr_assert_eq(st_open(path, &f, err), 0, "%s", err);
    const st_tensor_t *e = st_find(&f, "expected");
    cr_assert(e, "no 'expected' in %s", path);
    cr_assert(e->dtype == ST_F64 && e->ndim == 2 && e->shape[1] == 4);
    /* tensors come back in data order */
    for (int i = 1; i < f.count; i++)
        cr_assert((const char *)f.tensors[i].data >= (const char *)f.tensors[i - 1].data);
    st_close(&f);
}
