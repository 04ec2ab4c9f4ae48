/* The serving loop against scripted servers and the replay server, over loopback.
 * The cpu engine on specs/tiny.yaml with generated weights; every answer is compared with
 * the same requests fed straight to an engine, one at a time, and must be bit-identical. */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "csv_stream.h"
#include "engine.h"
#include "loopback.h"
#include "net.h"
#include "protocol.h"
#include "replay.h"
#include "serve.h"
#include "slot_map.h"
#include "snapshot.h"
#include "spec.h"
#include "util.h"
#include "weights.h"

#define F 79
#define MAX_ANSWERS 256
#define SERVER_WAIT_S 10.0

/* ---------------- model ---------------- */

typedef struct {
    spec_t spec;
    weights_t w;
    model_identity_t id;
    char dir[64];
    char weights_path[128];
} model_fixture_t;

static void model_open(model_fixture_t *m, uint64_t seed)
{
    char err[ERR_MAX];
    cr_assert_eq(spec_load("specs/tiny.yaml", &m->spec, err), 0, "%s", err);
    snprintf(m->dir, sizeof m->dir, "/tmp/stepfuse-serve-XXXXXX");
    cr_assert(mkdtemp(m->dir));
    snprintf(m->weights_path, sizeof m->weights_path, "%s/w.safetensors", m->dir);
    cr_assert_eq(weights_generate(&m->spec, seed, m->weights_path, 0, err), 0, "%s", err);
    cr_assert_eq(weights_load(m->weights_path, &m->spec, &m->w, err), 0, "%s", err);
    model_identity(&m->spec, &m->w, &m->id);
}

static void model_close(model_fixture_t *m)
{
    weights_free(&m->w);
    unlink(m->weights_path);
    char state[128];
    snprintf(state, sizeof state, "%s/state.bin", m->dir);
    unlink(state);
    rmdir(m->dir);
}

static engine_t *engine_for(model_fixture_t *m, int max_symbols)
{
    char err[ERR_MAX];
    engine_options_t eo = {.backend = "cpu", .max_symbols = max_symbols};
    engine_t *e = engine_create(&m->spec, &m->w, &eo, err);
    cr_assert(e, "%s", err);
    return e;
}

/* Outputs of requests fed one at a time to a fresh engine: out [n, 4]. */
static void direct_outputs(model_fixture_t *m, int n, const char *const *symbols,
                           const float *features, double *out)
{
    engine_t *e = engine_for(m, 64);
    slot_map_t map;
    slot_map_init(&map, 64);
    char err[ERR_MAX];
    for (int i = 0; i < n; i++) {
        int added, slot = slot_map_get_or_add(&map, symbols[i], &added);
        cr_assert(slot >= 0);
        cr_assert_eq(engine_step(e, 1, &slot, features + (size_t)i * F, out + 4 * i, err), 0,
                     "%s", err);
    }
    slot_map_free(&map);
    engine_destroy(e);
}

static void features_of(int id, float *f)
{
    for (int j = 0; j < F; j++) f[j] = (float)(sin(0.7 * j + 1.3 * id) * 1.2);
}

/* ---------------- scripted server ---------------- */

/* Script entries: a protocol line to send; "@wait N": read until N answers in all (or
 * SERVER_WAIT_S); "@sleep MS": read for MS milliseconds; "@close": hang up and accept the
 * next connection. At the end the server
 * waits for `expect` answers, then hangs up. */
typedef struct {
    const char *const *script;
    int count;
    int expect;
    int listen_fd, port;
    int64_t ids[MAX_ANSWERS];
    double preds[MAX_ANSWERS][4];
    int answers, connections, heartbeats;
} script_server_t;

/* Read until `want` answers in all, for at most `polls` polls of 50 ms. */
static void read_answers(script_server_t *s, line_reader_t *r, int want, int polls_max)
{
    char err[ERR_MAX], *line;
    size_t len;
    for (int polls = 0; s->answers < want && polls < polls_max; polls++) {
        line_status_t st = line_reader_next(r, 50, &line, &len, err);
        if (st == LINE_EOF || st == LINE_ERROR) return;
        message_t m;
        if (st != LINE_OK || msg_parse(line, len, 0, &m, err)) continue;
        s->heartbeats += m.type == MSG_HEARTBEAT;
        if (m.type == MSG_INFERENCE_RESPONSE)
            for (int i = 0; i < m.n && s->answers < MAX_ANSWERS; i++, s->answers++) {
                s->ids[s->answers] = m.ids[i];
                memcpy(s->preds[s->answers], m.predictions + 4 * i, sizeof s->preds[0]);
            }
        msg_free(&m);
    }
}

static int accept_registered(script_server_t *s, line_reader_t *r)
{
    char err[ERR_MAX], *line;
    size_t len;
    int fd = net_accept(s->listen_fd, (int)(SERVER_WAIT_S * 1e3), 5, err);
    if (fd < 0) return -1;
    line_reader_init(r, fd, PROTO_LINE_MAX);
    if (line_reader_next(r, (int)(SERVER_WAIT_S * 1e3), &line, &len, err) != LINE_OK ||
        !strstr(line, "\"register\"")) {
        line_reader_free(r);
        close(fd);
        return -1;
    }
    s->connections++;
    return fd;
}

static void *script_server_main(void *arg)
{
    script_server_t *s = arg;
    line_reader_t r;
    int fd = accept_registered(s, &r);
    for (int i = 0; i < s->count && fd >= 0; i++) {
        const char *e = s->script[i];
        if (!strncmp(e, "@wait ", 6)) {
            read_answers(s, &r, atoi(e + 6), SERVER_WAIT_S * 20);
        } else if (!strncmp(e, "@sleep ", 7)) {
            read_answers(s, &r, INT_MAX, atoi(e + 7) / 50);
        } else if (!strcmp(e, "@close")) {
            line_reader_free(&r);
            close(fd);
            fd = accept_registered(s, &r);
        } else {
            char err[ERR_MAX];
            if (net_send_all(fd, e, strlen(e), err)) break;
        }
    }
    if (fd >= 0) {
        read_answers(s, &r, s->expect, SERVER_WAIT_S * 20);
        line_reader_free(&r);
        close(fd);
    }
    return NULL;
}

/* ---------------- client ---------------- */

typedef struct {
    serve_options_t o;
    serve_stats_t stats;
    atomic_int stop;
    int rc;
    char err[ERR_MAX];
    char *log_text;
    size_t log_len;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    c->rc = serve_run(&c->o, &c->stats, c->err);
    return NULL;
}

static void client_start(client_t *c, pthread_t *t, int port, engine_t *e,
                         const model_identity_t *id, const char *state_file,
                         double heartbeat_every)
{
    memset(c, 0, sizeof *c);
    c->o = (serve_options_t){.host = "127.0.0.1", .port = port, .engine = e, .identity = id,
                             .state_file = state_file, .heartbeat_every = heartbeat_every,
                             .stop = &c->stop};
    c->o.log = open_memstream(&c->log_text, &c->log_len);
    pthread_create(t, NULL, client_main, c);
}

static void client_stop(client_t *c, pthread_t t)
{
    atomic_store(&c->stop, 1);
    pthread_join(t, NULL);
    fclose(c->o.log);
}

static void assert_logged(const client_t *c, const char *fragment)
{
    cr_assert(c->log_text && strstr(c->log_text, fragment), "log does not mention '%s':\n%s",
              fragment, c->log_text ? c->log_text : "");
}

/* Run a script against a client of engine e; the server thread ends by itself. */
static void run_script_every(script_server_t *s, client_t *c, engine_t *e,
                             const model_identity_t *id, double heartbeat_every)
{
    char err[ERR_MAX];
    s->listen_fd = net_listen("127.0.0.1", 0, &s->port, err);
    cr_assert(s->listen_fd >= 0, "%s", err);
    pthread_t server, client;
    pthread_create(&server, NULL, script_server_main, s);
    client_start(c, &client, s->port, e, id, NULL, heartbeat_every);
    pthread_join(server, NULL);
    client_stop(c, client);
    close(s->listen_fd);
}

/* A one-request line with num_features features. */
static void run_script(script_server_t *s, client_t *c, engine_t *e, const model_identity_t *id)
{
    run_script_every(s, c, e, id, 0);
}

static char *request_with(int64_t id, const char *symbol, int num_features)
{
    float f[F];
    features_of((int)id, f);
    char err[ERR_MAX];
    char *line = msg_build_request(1, &id, &symbol, f, num_features, clock_wall_s(), err);
    cr_assert(line, "%s", err);
    return line;
}

static char *request(int64_t id, const char *symbol) { return request_with(id, symbol, F); }

/* line with [from, to) replaced by text */
static char *splice(const char *line, const char *from, const char *to, const char *text)
{
    size_t n = strlen(line) + strlen(text) + 1;
    char *out = xmalloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(from - line), line, text, to);
    return out;
}

/* The answer to id in s, or NULL. */
static const double *answer(const script_server_t *s, int64_t id)
{
    for (int i = 0; i < s->answers; i++)
        if (s->ids[i] == id) return s->preds[i];
    return NULL;
}

/* Every id in ids answered with exactly the direct outputs of (ids, symbols) in order; no
 * other id answered. */
static void assert_answers(model_fixture_t *m, const script_server_t *s, int n,
                           const int64_t *ids, const char *const *symbols)
{
    float *feat = xmalloc((size_t)n * F * sizeof *feat);
    double *want = xmalloc((size_t)n * 4 * sizeof *want);
    for (int i = 0; i < n; i++) features_of((int)ids[i], feat + (size_t)i * F);
    direct_outputs(m, n, symbols, feat, want);
    cr_assert_eq(s->answers, n, "%d answers, expected %d", s->answers, n);
    double scale = 0;
    for (int i = 0; i < n; i++) {
        const double *got = answer(s, ids[i]);
        cr_assert(got, "request %lld not answered", (long long)ids[i]);
        for (int k = 0; k < 4; k++) {
            cr_assert_eq(got[k], want[4 * i + k], "request %lld tower %d: %.17g != %.17g (diff %.3g)",
                         (long long)ids[i], k, got[k], want[4 * i + k], got[k] - want[4 * i + k]);
            scale += fabs(want[4 * i + k]);
        }
    }
    cr_assert(scale > 0, "all outputs are zero: the comparison proves nothing");
    free(feat);
    free(want);
}

TestSuite(serve, .timeout = 60);

Test(serve, bad_inputs_are_refused_and_others_served)
{
    model_fixture_t m;
    model_open(&m, 11);
    engine_t *e = engine_for(&m, 0);
    char *big = xmalloc(PROTO_LINE_MAX + 100);
    memset(big, ' ', PROTO_LINE_MAX + 98);
    memcpy(big, "{\"message_type\":\"heartbeat\",\"timestamp\":1}", 42);
    big[PROTO_LINE_MAX + 98] = '\n';
    big[PROTO_LINE_MAX + 99] = '\0';
    char *r1 = request(1, "SYM_001"), *r5 = request(5, "SYM_003"), *r8 = request(8, "SYM_001");
    char *short_row = request_with(3, "SYM_002", F - 1);
    char *r4 = request(4, "SYM_002"), *r6 = request(6, "SYM_002"), *r7 = request(7, "SYM_002");
    char *first_value = strstr(r4, "[[") + 2;
    char *nan_line = splice(r4, first_value, strchr(first_value, ','), "NaN");
    first_value = strstr(r6, "[[") + 2;
    char *huge_line = splice(r6, first_value, strchr(first_value, ','), "1e300");
    char *sym_line = splice(r7, strstr(r7, "SYM_002"), strstr(r7, "SYM_002") + 7, "AAPL");
    const char *script[] = {
        r1,
        "this is not JSON\n",
        "{\"message_type\":\"bogus\"}\n",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[2],\"symbols\":[\"SYM_002\"],"
        "\"timestamp\":1}\n",
        short_row,
        nan_line,
        r5,
        huge_line,
        sym_line,
        big,
        r8,
        "{\"message_type\":\"error\",\"error\":\"too slow\",\"details\":\"p99 above 50 ms\"}\n",
        /* the answers, then hang up and wait for the client to come back: it has then
         * read every line above */
        "@wait 3",
        "@close",
    };
    script_server_t s = {.script = script, .count = ARRAY_LEN(script), .expect = 3};
    client_t c;
    run_script(&s, &c, e, &m.id);
    const int64_t ids[] = {1, 5, 8};
    const char *syms[] = {"SYM_001", "SYM_003", "SYM_001"};
    assert_answers(&m, &s, 3, ids, syms);
    assert_logged(&c, "malformed JSON");
    assert_logged(&c, "unknown message_type 'bogus'");
    assert_logged(&c, "missing field 'features'");
    assert_logged(&c, "request 3 refused: ");
    assert_logged(&c, "features, expected 79");
    assert_logged(&c, "request 4 refused: feature 0 is NaN");
    assert_logged(&c, "request 6 refused: feature 0 = 1e+300 is beyond");
    assert_logged(&c, "request 7 refused: symbol 'AAPL' is not SYM_<digits>");
    assert_logged(&c, "longer than the 1048576-byte limit");
    assert_logged(&c, "server error: too slow: p99 above 50 ms");
    cr_assert_eq(c.rc, 0, "%s", c.err);
    cr_assert_eq(c.stats.answered, 3);
    cr_assert_eq(c.stats.refused, 4);
    cr_assert_eq(c.stats.bad_messages, 4);
    free(big), free(r1), free(r5), free(r8), free(short_row);
    free(r4), free(r6), free(r7), free(nan_line), free(huge_line), free(sym_line);
    free(c.log_text);
    engine_destroy(e);
    model_close(&m);
}

Test(serve, symbols_beyond_max_symbols_are_refused)
{
    model_fixture_t m;
    model_open(&m, 12);
    engine_t *e = engine_for(&m, 2);
    char *r[6] = {request(1, "SYM_000"), request(2, "SYM_001"), request(3, "SYM_002"),
                  request(4, "SYM_000"), request(5, "SYM_002"), request(6, "SYM_001")};
    const char *script[] = {r[0], r[1], r[2], r[3], r[4], r[5]};
    script_server_t s = {.script = script, .count = 6, .expect = 4};
    client_t c;
    run_script(&s, &c, e, &m.id);
    const int64_t ids[] = {1, 2, 4, 6};
    const char *syms[] = {"SYM_000", "SYM_001", "SYM_000", "SYM_001"};
    assert_answers(&m, &s, 4, ids, syms);
    assert_logged(&c, "symbol SYM_002 refused: all 2 state slots (max_symbols) are taken");
    cr_assert_eq(c.stats.refused, 2);
    for (int i = 0; i < 6; i++) free(r[i]);
    free(c.log_text);
    engine_destroy(e);
    model_close(&m);
}

Test(serve, reconnects_after_the_server_hangs_up_and_keeps_state)
{
    model_fixture_t m;
    model_open(&m, 13);
    engine_t *e = engine_for(&m, 0);
    char *a = request(1, "SYM_001"), *b = request(2, "SYM_002"), *lost = request(3, "SYM_003");
    char *c1 = request(4, "SYM_001"), *c2 = request(5, "SYM_002");
    /* the server hangs up right after a request, before its answer can arrive */
    const char *script[] = {a, b, "@wait 2", lost, "@close", c1, c2};
    script_server_t s = {.script = script, .count = ARRAY_LEN(script), .expect = 4};
    client_t c;
    run_script(&s, &c, e, &m.id);
    cr_assert_eq(s.connections, 2, "the client did not come back");
    /* SYM_003's request may or may not have run (its answer cannot reach the closed
     * connection); SYM_001 and SYM_002 must go on exactly */
    const int64_t ids[] = {1, 2, 4, 5};
    const char *syms[] = {"SYM_001", "SYM_002", "SYM_001", "SYM_002"};
    assert_answers(&m, &s, 4, ids, syms);
    assert_logged(&c, "connection lost: server closed the connection");
    assert_logged(&c, "again (all symbol states kept)");
    free(a), free(b), free(lost), free(c1), free(c2);
    free(c.log_text);
    engine_destroy(e);
    model_close(&m);
}

Test(serve, refused_connection_is_a_clear_error)
{
    model_fixture_t m;
    model_open(&m, 14);
    engine_t *e = engine_for(&m, 0);
    char err[ERR_MAX];
    int port, fd = net_listen("127.0.0.1", 0, &port, err); /* a port nobody listens on */
    close(fd);
    client_t c;
    pthread_t t;
    client_start(&c, &t, port, e, &m.id, NULL, 0);
    pthread_join(t, NULL);
    fclose(c.o.log);
    cr_assert_eq(c.rc, -1);
    char want[64];
    snprintf(want, sizeof want, "connect 127.0.0.1:%d: Connection refused", port);
    cr_assert(strstr(c.err, want), "%s", c.err);
    free(c.log_text);
    engine_destroy(e);
    model_close(&m);
}

Test(serve, heartbeats_and_score_updates)
{
    model_fixture_t m;
    model_open(&m, 15);
    engine_t *e = engine_for(&m, 0);
    char *r1 = request(1, "SYM_004");
    const char *script[] = {
        r1, "@wait 1",
        "{\"message_type\":\"score_update\",\"unique_ids\":[1],\"trade_pnls\":[0.25],"
        "\"accuracies\":[0.75],\"latencies_ms\":[1.5]}\n",
        "{\"message_type\":\"heartbeat\",\"timestamp\":1700000000.5}\n",
        "@sleep 700"};
    script_server_t s = {.script = script, .count = ARRAY_LEN(script), .expect = 1};
    client_t c;
    run_script_every(&s, &c, e, &m.id, 0.2);
    cr_assert(s.heartbeats >= 2 && s.heartbeats <= 10, "%d heartbeats in about 0.7 s, every 0.2 s",
              s.heartbeats);
    assert_logged(&c, "scores: 1 requests, mean latency 1.500 ms, mean accuracy 0.75, pnl +0.25");
    const int64_t ids[] = {1};
    const char *syms[] = {"SYM_004"};
    assert_answers(&m, &s, 1, ids, syms);
    free(r1);
    free(c.log_text);
    engine_destroy(e);
    model_close(&m);
}

/* ---------------- replay end to end ---------------- */

/* Play s to a client of engine e over loopback (as the demo does); returns the result. */
static replay_result_t play(const csv_stream_t *s, engine_t *e, const model_identity_t *id,
                            const char *state_file, double speed, serve_stats_t *stats)
{
    char *log_text = NULL, err[ERR_MAX];
    size_t log_len;
    FILE *log = open_memstream(&log_text, &log_len);
    replay_options_t ro = {.speed = speed, .window = 8, .accept_timeout = 10,
                           .drain_timeout = 10, .log = log};
    serve_options_t so = {.engine = e, .identity = id, .state_file = state_file, .log = log};
    replay_result_t r;
    serve_stats_t st;
    int rc = loopback_run(s, ro, so, &r, &st, err);
    fclose(log);
    cr_assert_eq(rc, 0, "%s\n%s", err, log_text);
    free(log_text);
    if (stats) *stats = st;
    return r;
}

/* Every request of [from, from + r->n) answered, bit-identical to want [.., 4]. */
static void assert_replay_exact(const replay_result_t *r, const double *want, const char *what)
{
    double scale = 0;
    for (int i = 0; i < r->n; i++) {
        cr_assert(r->latency_ms[i] >= 0, "%s: request %d not answered", what, i);
        for (int k = 0; k < 4; k++) {
            double got = r->predictions[4 * i + k], exp = want[4 * i + k];
            cr_assert_eq(got, exp, "%s: request %d tower %d: %.17g != %.17g (diff %.3g)", what, i,
                         k, got, exp, got - exp);
            scale += fabs(exp);
        }
    }
    cr_assert(scale > 0, "%s: all outputs zero", what);
}

static double *direct_stream(model_fixture_t *m, const csv_stream_t *s)
{
    engine_t *e = engine_for(m, s->req.num_symbols);
    double *out = xmalloc((size_t)s->req.n * 4 * sizeof *out);
    char err[ERR_MAX];
    cr_assert_eq(stream_run(e, &s->req, 1, out, err), 0, "%s", err);
    engine_destroy(e);
    return out;
}

static void replay_end_to_end(const char *data, double speed)
{
    model_fixture_t m;
    model_open(&m, 21);
    csv_stream_t s;
    char err[ERR_MAX];
    cr_assert_eq(csv_stream_load(data, &s, err), 0, "%s", err);
    double *want = direct_stream(&m, &s);
    engine_t *e = engine_for(&m, 64);
    serve_stats_t stats;
    replay_result_t r = play(&s, e, &m.id, NULL, speed, &stats);
    cr_assert_eq(r.sent, s.req.n);
    assert_replay_exact(&r, want, data);
    cr_assert_eq(stats.answered, s.req.n);
    cr_assert_eq(stats.refused + stats.dropped + stats.bad_messages, 0);
    cr_assert_eq(r.bad_messages + r.unknown_ids + r.duplicate_answers, 0);
    replay_result_free(&r);
    engine_destroy(e);
    free(want);
    csv_stream_free(&s);
    model_close(&m);
}

Test(serve, replay_tiny_at_recorded_pace_is_exact) { replay_end_to_end("tests/data/tiny.csv", 1); }

Test(serve, replay_small_as_fast_as_answered_is_exact)
{
    replay_end_to_end("tests/data/small.csv", 0);
}

/* A prefix or suffix of a stream, sharing its arrays. */
static csv_stream_t slice(const csv_stream_t *s, int from, int n)
{
    csv_stream_t p = *s;
    p.req.n = n;
    p.req.symbol += from;
    p.req.slot += from;
    p.req.features += (size_t)from * F;
    p.names += from;
    p.delay_ms += from;
    p.targets += 4 * from;
    return p;
}

Test(serve, restart_from_snapshot_is_bit_identical)
{
    model_fixture_t m;
    model_open(&m, 31);
    csv_stream_t s;
    char err[ERR_MAX], state[128];
    snprintf(state, sizeof state, "%s/state.bin", m.dir);
    cr_assert_eq(csv_stream_load("tests/data/tiny.csv", &s, err), 0, "%s", err);
    double *want = direct_stream(&m, &s);
    int half = s.req.n / 2;
    csv_stream_t first = slice(&s, 0, half), second = slice(&s, half, s.req.n - half);

    engine_t *e1 = engine_for(&m, 64);
    replay_result_t r1 = play(&first, e1, &m.id, state, 0, NULL);
    engine_destroy(e1);
    assert_replay_exact(&r1, want, "before the restart");
    cr_assert_eq(access(state, R_OK), 0, "no state file written");

    engine_t *e2 = engine_for(&m, 64); /* a fresh process, as far as state goes */
    serve_stats_t stats;
    replay_result_t r2 = play(&second, e2, &m.id, state, 0, &stats);
    engine_destroy(e2);
    assert_replay_exact(&r2, want + 4 * half, "after the restart");
    cr_assert(stats.snapshots >= 1);

    replay_result_free(&r1);
    replay_result_free(&r2);
    free(want);
    csv_stream_free(&s);
    model_close(&m);
}

Test(serve, state_file_of_other_weights_or_spec_is_refused)
{
    model_fixture_t m;
    model_open(&m, 41);
    char err[ERR_MAX], state[128];
    snprintf(state, sizeof state, "%s/state.bin", m.dir);
    engine_t *e = engine_for(&m, 4);
    slot_map_t map;
    slot_map_init(&map, 4);
    int added;
    slot_map_get_or_add(&map, "SYM_007", &added);
    float f[F];
    features_of(1, f);
    double out[4];
    int slot = 0;
    cr_assert_eq(engine_step(e, 1, &slot, f, out, err), 0, "%s", err);
    cr_assert_eq(snapshot_save(state, &m.id, e, &map, err), 0, "%s", err);

    model_identity_t other = m.id;
    other.weights_hash ^= 1;
    cr_assert_eq(snapshot_load(state, &other, e, &map, err), -1);
    cr_assert(strstr(err, "made with other weights"), "%s", err);
    other = m.id;
    snprintf(other.spec_name, sizeof other.spec_name, "hackathon");
    other.spec_hash ^= 1;
    cr_assert_eq(snapshot_load(state, &other, e, &map, err), -1);
    cr_assert(strstr(err, "made for spec 'tiny'"), "%s", err);

    /* a truncated file is refused too */
    FILE *fp = fopen(state, "r+");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    cr_assert_eq(truncate(state, size - 5), 0);
    cr_assert_eq(snapshot_load(state, &m.id, e, &map, err), -1);
    cr_assert(strstr(err, "checksum") || strstr(err, "truncated"), "%s", err);
    cr_assert_eq(map.count, 1, "map changed by a refused file");

    unlink(state);
    cr_assert_eq(snapshot_load(state, &m.id, e, &map, err), 0, "a missing file is a fresh start");
    slot_map_free(&map);
    engine_destroy(e);
    model_close(&m);
}
