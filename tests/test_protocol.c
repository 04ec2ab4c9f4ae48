/* The wire protocol: line reader, message parsing and validation, builders, addresses and
 * recorded-stream CSV errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "csv_stream.h"
#include "net.h"
#include "protocol.h"
#include "util.h"

#define F 79

static void fill_features(float *f, int n, int seed)
{
    for (int i = 0; i < n; i++) f[i] = (float)sin(0.37 * (i + 1) + seed) * 1.5f;
}

/* A request line with one row per id; row i gets features seeded by ids[i]. */
static char *request_line(int n, const int64_t *ids, const char *const *symbols)
{
    float *feat = xmalloc((size_t)n * F * sizeof *feat);
    for (int i = 0; i < n; i++) fill_features(feat + (size_t)i * F, F, (int)ids[i]);
    char err[ERR_MAX];
    char *line = msg_build_request(n, ids, symbols, feat, F, 1700000000.25, err);
    cr_assert(line, "%s", err);
    free(feat);
    return line;
}

static int parse(const char *line, message_t *m, char *err)
{
    return msg_parse(line, strlen(line), F, m, err);
}

static void expect_refused(const char *line, const char *fragment)
{
    message_t m;
    char err[ERR_MAX] = "";
    cr_assert_eq(parse(line, &m, err), -1, "accepted: %s", line);
    cr_assert(strstr(err, fragment), "error '%s' does not mention '%s'", err, fragment);
}

Test(protocol, request_roundtrip_is_exact)
{
    int64_t ids[3] = {7, 8, 1234567890123LL};
    const char *syms[3] = {"SYM_000", "SYM_017", "SYM_017"};
    char *line = request_line(3, ids, syms);
    cr_assert_eq(line[strlen(line) - 1], '\n');
    message_t m;
    char err[ERR_MAX];
    cr_assert_eq(parse(line, &m, err), 0, "%s", err);
    cr_assert_eq(m.type, MSG_INFERENCE_REQUEST);
    cr_assert_eq(m.n, 3);
    cr_assert_eq(m.num_rejected, 0);
    cr_assert_eq(m.timestamp, 1700000000.25);
    float want[F];
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(m.ids[i], ids[i]);
        cr_assert_str_eq(m.symbols[i], syms[i]);
        fill_features(want, F, (int)ids[i]);
        cr_assert(!memcmp(want, m.features + i * F, sizeof want), "row %d features differ", i);
    }
    msg_free(&m);
    free(line);
}

Test(protocol, response_roundtrip_is_bit_exact)
{
    int64_t ids[2] = {3, 4};
    double pred[8] = {0.1, -1.0 / 3.0, 1e-300, 12345.678901234567, -0.0, 2.5e-7, M_PI, -M_E};
    char err[ERR_MAX];
    char *line = msg_build_response(2, ids, pred, 1.5, err);
    cr_assert(line, "%s", err);
    message_t m;
    cr_assert_eq(msg_parse(line, strlen(line), 0, &m, err), 0, "%s", err);
    cr_assert_eq(m.type, MSG_INFERENCE_RESPONSE);
    cr_assert_eq(m.n, 2);
    cr_assert(!memcmp(pred, m.predictions, sizeof pred), "predictions changed on the wire");
    msg_free(&m);
    free(line);
    pred[5] = NAN;
    cr_assert_null(msg_build_response(2, ids, pred, 1.5, err), "NaN written as JSON");
    cr_assert(strstr(err, "not finite"), "%s", err);
}

Test(protocol, other_messages_parse)
{
    message_t m;
    char err[ERR_MAX];
    const char *score = "{\"message_type\":\"score_update\",\"unique_ids\":[1,2],"
                        "\"trade_pnls\":[0.5,-1],\"accuracies\":[1,0],\"latencies_ms\":[3.5,4]}";
    cr_assert_eq(parse(score, &m, err), 0, "%s", err);
    cr_assert_eq(m.n, 2);
    cr_assert_eq(m.latencies_ms[0], 3.5);
    cr_assert_eq(m.trade_pnls[1], -1);
    msg_free(&m);
    cr_assert_eq(parse("{\"message_type\":\"heartbeat\",\"timestamp\":12.5}", &m, err), 0, "%s", err);
    cr_assert_eq(m.timestamp, 12.5);
    msg_free(&m);
    cr_assert_eq(parse("{\"message_type\":\"error\",\"error\":\"slow\",\"details\":null}", &m, err), 0);
    cr_assert_str_eq(m.error, "slow");
    cr_assert_null(m.details);
    msg_free(&m);
    cr_assert_eq(parse("{\"message_type\":\"register\"}", &m, err), 0);
    cr_assert_eq(m.type, MSG_REGISTER);
    msg_free(&m);
}

Test(protocol, whole_message_refusals)
{
    expect_refused("{\"message_type\": \"inference_request\", ", "malformed JSON");
    expect_refused("not json at all", "malformed JSON");
    expect_refused("[1, 2]", "expected a JSON object");
    expect_refused("{\"unique_ids\": []}", "missing field 'message_type'");
    expect_refused("{\"message_type\": 5}", "'message_type' is a number");
    expect_refused("{\"message_type\": \"buy_everything\"}", "unknown message_type 'buy_everything'");
    expect_refused("{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"SYM_001\"],"
                   "\"timestamp\":1}",
                   "missing field 'features'");
    expect_refused("{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":\"SYM_001\","
                   "\"features\":[[1]],\"timestamp\":1}",
                   "'symbols' is a string, expected an array");
    expect_refused("{\"message_type\":\"inference_request\",\"unique_ids\":[1,2],\"symbols\":[\"SYM_001\"],"
                   "\"features\":[[1]],\"timestamp\":1}",
                   "'symbols' has 1 entries but 'unique_ids' has 2");
    expect_refused("{\"message_type\":\"inference_request\",\"unique_ids\":[\"a\"],\"symbols\":[\"SYM_001\"],"
                   "\"features\":[[1]],\"timestamp\":1}",
                   "unique_ids[0] is a string");
    expect_refused("{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"SYM_001\"],"
                   "\"features\":[[1]],\"timestamp\":\"now\"}",
                   "'timestamp' is a string, expected a number");
    expect_refused("{\"message_type\":\"inference_response\",\"unique_ids\":[1],\"predictions\":[[1,2,3]],"
                   "\"client_timestamp\":1}",
                   "predictions[0] is not an array of 4 numbers");
    expect_refused("{\"message_type\":\"score_update\",\"unique_ids\":[1],\"trade_pnls\":[1],"
                   "\"accuracies\":[1,2],\"latencies_ms\":[1]}",
                   "'accuracies' has 2 entries but 'unique_ids' has 1");
    expect_refused("{\"message_type\":\"heartbeat\"}", "missing field 'timestamp'");
}

/* Replace row `row`, feature `col` of a built request line by `text`. */
static char *with_feature(const char *line, int row, int col, const char *text)
{
    const char *p = strstr(line, "\"features\":[");
    cr_assert(p);
    p += strlen("\"features\":[");
    for (int r = 0; r < row; r++) p = strchr(p, ']') + 2; /* "],[" */
    p++;                                                   /* '[' of the row */
    for (int c = 0; c < col; c++) p = strchr(p, ',') + 1;
    const char *end = p + strcspn(p, ",]");
    size_t n = strlen(line) + strlen(text) + 1;
    char *out = xmalloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(p - line), line, text, end);
    return out;
}

Test(protocol, bad_requests_are_refused_alone)
{
    int64_t ids[4] = {10, 11, 12, 13};
    const char *syms[4] = {"SYM_001", "SYM_002", "AAPL", "SYM_003"};
    char *line = request_line(4, ids, syms);
    /* row 0: a bare NaN token (as Python's json writes it); row 1: a huge value */
    char *a = with_feature(line, 0, 3, "NaN");
    char *b = with_feature(a, 1, 5, "1e300");
    message_t m;
    char err[ERR_MAX];
    cr_assert_eq(parse(b, &m, err), 0, "%s", err);
    cr_assert_eq(m.n, 4);
    cr_assert_eq(m.num_rejected, 3);
    cr_assert(strstr(m.rejected[0], "feature 3 is NaN"), "%s", m.rejected[0]);
    cr_assert(strstr(m.rejected[1], "feature 5 = 1e+300 is beyond"), "%s", m.rejected[1]);
    cr_assert(strstr(m.rejected[2], "'AAPL' is not SYM_"), "%s", m.rejected[2]);
    cr_assert_str_eq(m.rejected[3], "");
    float want[F];
    fill_features(want, F, 13);
    cr_assert(!memcmp(want, m.features + 3 * F, sizeof want));
    msg_free(&m);

    char *c = with_feature(line, 3, 0, "-Infinity");
    cr_assert_eq(parse(c, &m, err), 0, "%s", err);
    cr_assert(strstr(m.rejected[3], "feature 0 is -Infinity"), "%s", m.rejected[3]);
    msg_free(&m);
    /* a token inside a string is left alone */
    char *d = with_feature(line, 0, 1, "\"NaN, Infinity\"");
    cr_assert_eq(parse(d, &m, err), 0, "%s", err);
    cr_assert(strstr(m.rejected[0], "feature 1 is a string"), "%s", m.rejected[0]);
    msg_free(&m);
    free(a), free(b), free(c), free(d), free(line);
}

Test(protocol, wrong_feature_count_is_refused_alone)
{
    const char *line =
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1,2],\"symbols\":[\"SYM_001\","
        "\"SYM_002\"],\"features\":[[1,2,3],\"x\"],\"timestamp\":1}";
    message_t m;
    char err[ERR_MAX];
    cr_assert_eq(parse(line, &m, err), 0, "%s", err);
    cr_assert_eq(m.num_rejected, 2);
    cr_assert(strstr(m.rejected[0], "3 features, expected 79"), "%s", m.rejected[0]);
    cr_assert(strstr(m.rejected[1], "row is a string"), "%s", m.rejected[1]);
    msg_free(&m);
}

Test(protocol, symbol_names)
{
    cr_assert(proto_symbol_valid("SYM_000"));
    cr_assert(proto_symbol_valid("SYM_123456789"));
    cr_assert(!proto_symbol_valid("SYM_"));
    cr_assert(!proto_symbol_valid("SYM_1234567890"));
    cr_assert(!proto_symbol_valid("sym_001"));
    cr_assert(!proto_symbol_valid("SYM_01a"));
    cr_assert(!proto_symbol_valid("SYM_-1"));
    cr_assert(!proto_symbol_valid(""));
}

Test(protocol, line_reader_caps_lines_and_goes_on)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    line_reader_t r;
    line_reader_init(&r, sv[0], 64);
    char big[300];
    memset(big, 'x', sizeof big);
    /* a line in two pieces, a CRLF line, an oversized line, then a normal one */
    cr_assert_eq(write(sv[1], "hel", 3), 3);
    char *line, err[ERR_MAX];
    size_t len;
    cr_assert_eq(line_reader_next(&r, 10, &line, &len, err), LINE_TIMEOUT);
    cr_assert_eq(write(sv[1], "lo\nworld\r\n", 10), 10);
    cr_assert_eq(write(sv[1], big, sizeof big), (ssize_t)sizeof big);
    cr_assert_eq(write(sv[1], "\nafter\n", 7), 7);
    cr_assert_eq(line_reader_next(&r, 1000, &line, &len, err), LINE_OK);
    cr_assert_str_eq(line, "hello");
    cr_assert_eq(line_reader_next(&r, 1000, &line, &len, err), LINE_OK);
    cr_assert_str_eq(line, "world");
    cr_assert_eq(line_reader_next(&r, 1000, &line, &len, err), LINE_OVERSIZED);
    cr_assert_eq(len, sizeof big);
    cr_assert_eq(line_reader_next(&r, 1000, &line, &len, err), LINE_OK);
    cr_assert_str_eq(line, "after");
    close(sv[1]);
    cr_assert_eq(line_reader_next(&r, 1000, &line, &len, err), LINE_EOF);
    line_reader_free(&r);
    close(sv[0]);
}

Test(protocol, addresses)
{
    char host[NET_HOST_MAX], err[ERR_MAX];
    int port;
    cr_assert_eq(net_parse_addr("127.0.0.1:9000", NULL, host, &port, err), 0, "%s", err);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 9000);
    cr_assert_eq(net_parse_addr("[::1]:80", NULL, host, &port, err), 0, "%s", err);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(net_parse_addr("8080", "127.0.0.1", host, &port, err), 0, "%s", err);
    cr_assert_eq(port, 8080);
    cr_assert_eq(net_parse_addr("8080", NULL, host, &port, err), -1);
    cr_assert(strstr(err, "expected HOST:PORT"), "%s", err);
    cr_assert_eq(net_parse_addr("localhost:99999", NULL, host, &port, err), -1);
    cr_assert(strstr(err, "not a number in 0..65535"), "%s", err);
    cr_assert_eq(net_parse_addr(":80", NULL, host, &port, err), -1);
    cr_assert(strstr(err, "missing host"), "%s", err);
    cr_assert_eq(net_connect("no-such-host.invalid", 80, 1, err), -1);
    cr_assert(strstr(err, "no-such-host.invalid"), "%s", err);
}

static void expect_csv_error(const char *text, const char *fragment)
{
    char path[] = "/tmp/stepfuse-csv-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    csv_stream_t s;
    char err[ERR_MAX] = "";
    int rc = csv_stream_load(path, &s, err);
    unlink(path);
    cr_assert_eq(rc, -1, "accepted: %s", text);
    cr_assert(strstr(err, path), "error '%s' does not name the file", err);
    cr_assert(strstr(err, fragment), "error '%s' does not mention '%s'", err, fragment);
}

Test(protocol, csv_errors_name_file_and_line)
{
    const char *head = "symbol,delay_ms,feature_00,feature_01,target_00,target_01,target_02,target_03\n";
    char text[1024];
    expect_csv_error("", "empty file");
    expect_csv_error("symbol,delay,feature_00\n", ":1: header");
    expect_csv_error("symbol,delay_ms,feature_00,feature_02,target_00,target_01,target_02,target_03\n",
                     ":1: column 4 is 'feature_02', expected 'feature_01'");
    expect_csv_error(head, "no requests");
    snprintf(text, sizeof text, "%sSYM_001,1,0.5,0.25,0,0,0,0\nSYM_002,1,0.5,0,0,0,0\n", head);
    expect_csv_error(text, ":3: 7 fields, expected 8");
    snprintf(text, sizeof text, "%sSYM_001,1,0.5,abc,0,0,0,0\n", head);
    expect_csv_error(text, ":2: feature_01: 'abc' is not a finite number");
    snprintf(text, sizeof text, "%sSYM_001,-2,0.5,1,0,0,0,0\n", head);
    expect_csv_error(text, ":2: delay_ms: -2 is negative");
    snprintf(text, sizeof text, "%sIBM,1,0.5,1,0,0,0,0\n", head);
    expect_csv_error(text, ":2: symbol 'IBM' is not SYM_<digits>");
    snprintf(text, sizeof text, "%sSYM_001,1,0.5,1,0,nan,0,0\n", head);
    expect_csv_error(text, ":2: target_01");
}

Test(protocol, recorded_streams_load)
{
    csv_stream_t s;
    char err[ERR_MAX];
    cr_assert_eq(csv_stream_load("tests/data/small.csv", &s, err), 0, "%s", err);
    cr_assert_eq(s.req.n, 1000);
    cr_assert_eq(s.req.num_features, 79);
    cr_assert_eq(s.req.num_symbols, 39);
    cr_assert_str_eq(s.names[0], "SYM_005");
    cr_assert_eq(s.req.symbol[0], 5);
    cr_assert_eq(s.req.slot[0], 0);
    double sum = 0;
    for (int i = 0; i < s.req.n; i++) {
        cr_assert(s.delay_ms[i] >= 1 && s.delay_ms[i] < 100, "row %d delay %g", i, s.delay_ms[i]);
        sum += fabs(s.req.features[(size_t)i * 79]);
        cr_assert(fabs(s.targets[4 * i]) < 0.35);
    }
    cr_assert(sum > 1, "features look all zero");
    csv_stream_free(&s);
}
