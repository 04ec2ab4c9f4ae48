/* The replay server against a scripted client, and its report. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "csv_stream.h"
#include "net.h"
#include "protocol.h"
#include "replay.h"
#include "replay_report.h"
#include "util.h"

#define NEVER_ANSWERED 3
#define ANSWERED_TWICE 5

static void prediction_of(int64_t id, double *p)
{
    p[0] = (double)id;
    p[1] = -(double)id;
    p[2] = 0.5;
    p[3] = 1.0 / (double)(id + 1);
}

static int send_text(int fd, const char *text)
{
    char err[ERR_MAX];
    return net_send_all(fd, text, strlen(text), err);
}

static int answer(int fd, int64_t id)
{
    double p[4];
    prediction_of(id, p);
    char err[ERR_MAX];
    char *line = msg_build_response(1, &id, p, clock_wall_s(), err);
    int rc = net_send_all(fd, line, strlen(line), err);
    free(line);
    return rc;
}

typedef struct {
    int port, requests_seen;
} client_t;

/* Registers (after a stray line), answers every request but one, one of them twice, adds
 * an unknown id and a malformed line, and reads until the server hangs up. */
static void *client_main(void *arg)
{
    client_t *c = arg;
    char err[ERR_MAX], *line;
    size_t len;
    int fd = net_connect("127.0.0.1", c->port, 5, err);
    if (fd < 0) return NULL;
    send_text(fd, "{\"message_type\":\"heartbeat\",\"timestamp\":1}\n");
    send_text(fd, "{\"message_type\":\"register\"}\n");
    line_reader_t r;
    line_reader_init(&r, fd, PROTO_LINE_MAX);
    for (int polls = 0; polls < 400; polls++) { /* 20 s at most */
        line_status_t st = line_reader_next(&r, 50, &line, &len, err);
        if (st == LINE_EOF || st == LINE_ERROR) break;
        message_t m;
        if (st != LINE_OK || msg_parse(line, len, 0, &m, err)) continue;
        for (int i = 0; m.type == MSG_INFERENCE_REQUEST && i < m.n; i++) {
            int64_t id = m.ids[i];
            c->requests_seen++;
            if (id != NEVER_ANSWERED) answer(fd, id);
            if (id == ANSWERED_TWICE) answer(fd, id);
            if (id == 10) {
                answer(fd, 1000);
                send_text(fd, "{\"message_type\":\"inference_response\",\"unique_ids\":[11]}\n");
            }
        }
        msg_free(&m);
    }
    line_reader_free(&r);
    close(fd);
    return NULL;
}

Test(replay, counts_answers_drops_and_bad_replies, .timeout = 30)
{
    csv_stream_t s;
    char err[ERR_MAX];
    cr_assert_eq(csv_stream_load("tests/data/tiny.csv", &s, err), 0, "%s", err);
    replay_server_t srv;
    cr_assert_eq(replay_listen(&srv, "127.0.0.1", 0, err), 0, "%s", err);
    client_t c = {.port = srv.port};
    pthread_t t;
    pthread_create(&t, NULL, client_main, &c);
    replay_options_t o = {.speed = 0, .window = 4, .accept_timeout = 5, .drain_timeout = 0.5};
    replay_result_t r;
    cr_assert_eq(replay_serve(&srv, &s, &o, &r, err), 0, "%s", err);
    pthread_join(t, NULL);
    replay_close(&srv);

    cr_assert_eq(c.requests_seen, 100);
    cr_assert_eq(r.sent, 100);
    cr_assert_eq(r.duplicate_answers, 1);
    cr_assert_eq(r.unknown_ids, 1);
    cr_assert_eq(r.bad_messages, 1, "the response without predictions");
    for (int i = 0; i < r.n; i++) {
        if (i == NEVER_ANSWERED) {
            cr_assert(r.latency_ms[i] < 0, "request %d counted as answered", i);
            continue;
        }
        cr_assert(r.latency_ms[i] >= 0 && r.latency_ms[i] < 5000, "request %d: latency %g", i,
                  r.latency_ms[i]);
        double want[4];
        prediction_of(i, want);
        cr_assert(!memcmp(want, r.predictions + 4 * i, sizeof want), "request %d answers differ", i);
    }

    /* reference = the answers, but RetNet of request 20 off by 0.5 */
    double *ref = xmalloc((size_t)r.n * 4 * sizeof *ref);
    memcpy(ref, r.predictions, (size_t)r.n * 4 * sizeof *ref);
    ref[4 * 20 + 2] += 0.5;
    replay_report_t rep = {.data = "tests/data/tiny.csv", .reference = "test"};
    replay_report_make(&r, ref, r.n, &rep);
    cr_assert_eq(rep.answered, 99);
    cr_assert_eq(rep.dropped, 1);
    cr_assert_eq(rep.compared, 99);
    cr_assert_eq(rep.accuracy.max_abs[0], 0);
    cr_assert(fabs(rep.accuracy.max_abs[2] - 0.5) < 1e-15, "%g", rep.accuracy.max_abs[2]);
    cr_assert(rep.accuracy.rel_l2[2] > 0);
    cr_assert(rep.p50_ms <= rep.p90_ms && rep.p90_ms <= rep.p99_ms && rep.p99_ms <= rep.max_ms);

    char path[] = "/tmp/stepfuse-report-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cr_assert_eq(replay_report_write_json(path, &rep, err), 0, "%s", err);
    json_error_t je;
    json_t *o_json = json_load_file(path, 0, &je);
    unlink(path);
    cr_assert(o_json, "report is not JSON: %s", je.text);
    cr_assert_eq(json_integer_value(json_object_get(o_json, "answered")), 99);
    cr_assert_eq(json_integer_value(json_object_get(o_json, "dropped")), 1);
    json_t *retnet = json_object_get(json_object_get(json_object_get(o_json, "accuracy"), "towers"), "RetNet");
    cr_assert(fabs(json_real_value(json_object_get(retnet, "max_abs")) - 0.5) < 1e-9);
    cr_assert(json_is_real(json_object_get(json_object_get(o_json, "latency_ms"), "p99")));
    json_decref(o_json);
    free(ref);
    replay_result_free(&r);
    csv_stream_free(&s);
}

Test(replay, percentiles_are_nearest_rank)
{
    replay_result_t r = {.n = 200, .sent = 200, .responses = 100, .duration_s = 2};
    r.latency_ms = xmalloc(200 * sizeof *r.latency_ms);
    r.predictions = xcalloc(200 * 4, sizeof *r.predictions);
    for (int i = 0; i < 200; i++) r.latency_ms[i] = i % 2 ? -1 : 100 - i / 2; /* 100 .. 1 */
    replay_report_t rep = {0};
    replay_report_make(&r, NULL, 0, &rep);
    cr_assert_eq(rep.answered, 100);
    cr_assert_eq(rep.dropped, 100);
    cr_assert_eq(rep.p50_ms, 50);
    cr_assert_eq(rep.p90_ms, 90);
    cr_assert_eq(rep.p99_ms, 99);
    cr_assert_eq(rep.max_ms, 100);
    cr_assert_eq(rep.mean_ms, 50.5);
    cr_assert_eq(rep.throughput, 50);
    cr_assert_eq(rep.compared, 0);
    replay_result_free(&r);
}

Test(replay, no_client_is_a_clear_error)
{
    csv_stream_t s;
    char err[ERR_MAX];
    cr_assert_eq(csv_stream_load("tests/data/tiny.csv", &s, err), 0, "%s", err);
    replay_server_t srv;
    cr_assert_eq(replay_listen(&srv, "127.0.0.1", 0, err), 0, "%s", err);
    replay_options_t o = {.speed = 1, .accept_timeout = 0.2};
    replay_result_t r;
    cr_assert_eq(replay_serve(&srv, &s, &o, &r, err), -1);
    cr_assert(strstr(err, "no client connected within 200 ms"), "%s", err);
    replay_result_free(&r);
    replay_close(&srv);
    csv_stream_free(&s);
}
