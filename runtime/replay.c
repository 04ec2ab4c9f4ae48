#include "replay.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "logline.h"
#include "net.h"
#include "progress.h"
#include "protocol.h"
#include "util.h"

#define POLL_MS 100
#define SEND_TIMEOUT_S 10.0
#define HEARTBEAT_S 5.0

typedef struct {
    const csv_stream_t *s;
    const replay_options_t *o;
    replay_result_t *r;
    int fd;
    line_reader_t reader;
    double *sent_at; /* [n] monotonic seconds */
    pthread_mutex_t lock; /* guards everything below and r's counters */
    pthread_cond_t changed;
    pthread_mutex_t send_lock; /* one writer at a time on fd */
    int answered, in_flight;
    int closing;   /* the player is done: receiver exits */
    int gone;      /* receiver saw the client go */
    double last_answer_at;
} play_t;

#define logf_(o, ...) log_line((o)->log, "replay", __VA_ARGS__)

static void sleep_until(double t)
{
    struct timespec ts = {.tv_sec = (time_t)t, .tv_nsec = (long)((t - floor(t)) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) {}
}

static void deadline_in(struct timespec *ts, double seconds)
{
    clock_gettime(CLOCK_REALTIME, ts);
    double t = (double)ts->tv_sec + (double)ts->tv_nsec * 1e-9 + seconds;
    ts->tv_sec = (time_t)t;
    ts->tv_nsec = (long)((t - floor(t)) * 1e9);
}

static int send_line(play_t *p, char *line, char *err)
{
    if (!line) return -1;
    pthread_mutex_lock(&p->send_lock);
    int rc = net_send_all(p->fd, line, strlen(line), err);
    pthread_mutex_unlock(&p->send_lock);
    free(line);
    return rc;
}

/* The replay's stand-in for the game's score: accuracy is the fraction of towers whose
 * prediction has the sign of the recorded target; pnl is the mean of sign(prediction) *
 * target (a unit position in the predicted direction). */
static void score(const double *pred, const double *target, double *accuracy, double *pnl)
{
    double agree = 0, gain = 0;
    for (int k = 0; k < PROTO_NUM_OUTPUTS; k++) {
        double sign = (pred[k] > 0) - (pred[k] < 0);
        agree += sign * target[k] > 0;
        gain += sign * target[k];
    }
    *accuracy = agree / PROTO_NUM_OUTPUTS;
    *pnl = gain / PROTO_NUM_OUTPUTS;
}

static void handle_response(play_t *p, const message_t *m, double now)
{
    replay_result_t *r = p->r;
    int64_t *ids = xmalloc((size_t)m->n * sizeof *ids);
    double *lat = xmalloc((size_t)m->n * 3 * sizeof *lat), *acc = lat + m->n, *pnl = acc + m->n;
    int k = 0;
    pthread_mutex_lock(&p->lock);
    r->responses++;
    for (int i = 0; i < m->n; i++) {
        int64_t id = m->ids[i];
        if (id < 0 || id >= r->sent) {
            r->unknown_ids++;
            logf_(p->o, "answer for unknown id %lld ignored", (long long)id);
            continue;
        }
        if (r->latency_ms[id] >= 0) {
            r->duplicate_answers++;
            logf_(p->o, "second answer for id %lld ignored", (long long)id);
            continue;
        }
        r->latency_ms[id] = (now - p->sent_at[id]) * 1e3;
        memcpy(r->predictions + id * PROTO_NUM_OUTPUTS, m->predictions + (size_t)i * PROTO_NUM_OUTPUTS,
               PROTO_NUM_OUTPUTS * sizeof(double));
        ids[k] = id;
        lat[k] = r->latency_ms[id];
        score(m->predictions + (size_t)i * PROTO_NUM_OUTPUTS, p->s->targets + id * 4, &acc[k],
              &pnl[k]);
        k++;
        p->answered++;
        p->in_flight--;
    }
    if (k) p->last_answer_at = now;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    char err[ERR_MAX];
    if (k && send_line(p, msg_build_score_update(k, ids, pnl, acc, lat, err), err))
        logf_(p->o, "cannot send score_update: %s", err);
    free(ids);
    free(lat);
}

/* Reads the client's messages; also sends the server's heartbeat every HEARTBEAT_S. */
static void *receiver_main(void *arg)
{
    play_t *p = arg;
    char err[ERR_MAX];
    double next_heartbeat = clock_mono_s() + HEARTBEAT_S;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int closing = p->closing;
        pthread_mutex_unlock(&p->lock);
        if (closing) break;
        char *line;
        size_t len;
        line_status_t st = line_reader_next(&p->reader, POLL_MS, &line, &len, err);
        double now = clock_mono_s();
        if (now >= next_heartbeat) {
            char herr[ERR_MAX];
            if (send_line(p, msg_build_heartbeat(clock_wall_s(), herr), herr))
                logf_(p->o, "cannot send heartbeat: %s", herr);
            next_heartbeat = now + HEARTBEAT_S;
        }
        if (st == LINE_TIMEOUT || (st == LINE_OK && !len)) continue;
        if (st == LINE_EOF || st == LINE_ERROR) {
            pthread_mutex_lock(&p->lock);
            int expected = p->o->finished && atomic_load(p->o->finished);
            if (!p->closing && !expected)
                logf_(p->o, "client %s", st == LINE_EOF ? "closed the connection" : err);
            p->gone = 1;
            pthread_cond_broadcast(&p->changed);
            pthread_mutex_unlock(&p->lock);
            break;
        }
        message_t m;
        if (st == LINE_OVERSIZED) {
            logf_(p->o, "discarded a line of %zu bytes from the client (limit %d)", len,
                  PROTO_LINE_MAX);
        } else if (msg_parse(line, len, 0, &m, err)) {
            logf_(p->o, "message refused: %s; line: %.120s%s", err, line, len > 120 ? "..." : "");
        } else {
            if (m.type == MSG_INFERENCE_RESPONSE) handle_response(p, &m, now);
            else if (m.type != MSG_HEARTBEAT)
                logf_(p->o, "ignored a '%s' message from the client", msg_type_name(m.type));
            msg_free(&m);
            continue;
        }
        pthread_mutex_lock(&p->lock);
        p->r->bad_messages++;
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

int replay_listen(replay_server_t *srv, const char *host, int port, char *err)
{
    srv->fd = net_listen(host, port, &srv->port, err);
    return srv->fd < 0 ? -1 : 0;
}

void replay_close(replay_server_t *srv)
{
    if (srv->fd >= 0) close(srv->fd);
    srv->fd = -1;
}

void replay_result_free(replay_result_t *r)
{
    free(r->latency_ms);
    free(r->predictions);
    memset(r, 0, sizeof *r);
}

/* Wait for the client's register; anything else first is logged and skipped. */
static int await_register(play_t *p, double timeout_s, char *err)
{
    double until = clock_mono_s() + timeout_s;
    while (clock_mono_s() < until) {
        char *line;
        size_t len;
        line_status_t st = line_reader_next(&p->reader, POLL_MS, &line, &len, err);
        if (st == LINE_EOF) return seterr(err, "client closed the connection before register");
        if (st == LINE_ERROR) return -1;
        if (st != LINE_OK || !len) continue;
        message_t m;
        char perr[ERR_MAX];
        if (msg_parse(line, len, 0, &m, perr)) {
            logf_(p->o, "before register: message refused: %s", perr);
            continue;
        }
        msg_type_t type = m.type;
        msg_free(&m);
        if (type == MSG_REGISTER) return 0;
        logf_(p->o, "before register: ignored a '%s' message", msg_type_name(type));
    }
    return seterr(err, "client did not register within %.0f s", timeout_s);
}

/* Send request i once its time has come (or, at speed 0, once the window has room). */
static int play_one(play_t *p, int i, double start, double *offset_ms, char *err)
{
    const csv_stream_t *s = p->s;
    const replay_options_t *o = p->o;
    int window = o->window > 0 ? o->window : 32;
    *offset_ms += s->delay_ms[i];
    if (o->speed > 0) {
        sleep_until(start + *offset_ms * 1e-3 / o->speed);
    } else {
        pthread_mutex_lock(&p->lock);
        while (p->in_flight >= window && !p->gone) pthread_cond_wait(&p->changed, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_lock(&p->lock);
    int gone = p->gone;
    pthread_mutex_unlock(&p->lock);
    if (gone) return seterr(err, "client is gone");
    int64_t id = i;
    const char *symbol = s->names[i];
    char *line = msg_build_request(1, &id, &symbol,
                                   s->req.features + (size_t)i * (size_t)s->req.num_features,
                                   s->req.num_features, clock_wall_s(), err);
    pthread_mutex_lock(&p->lock);
    p->sent_at[i] = clock_mono_s();
    p->r->sent++;
    p->in_flight++;
    pthread_mutex_unlock(&p->lock);
    return send_line(p, line, err);
}

int replay_serve(replay_server_t *srv, const csv_stream_t *s, const replay_options_t *o,
                 replay_result_t *r, char *err)
{
    int n = s->req.n;
    memset(r, 0, sizeof *r);
    r->n = n;
    r->latency_ms = xmalloc((size_t)n * sizeof *r->latency_ms);
    r->predictions = xcalloc((size_t)n * PROTO_NUM_OUTPUTS, sizeof *r->predictions);
    for (int i = 0; i < n; i++) r->latency_ms[i] = -1;
    int fd = net_accept(srv->fd, (int)(o->accept_timeout * 1e3), SEND_TIMEOUT_S, err);
    if (fd < 0) return -1;
    play_t p = {.s = s, .o = o, .r = r, .fd = fd};
    p.sent_at = xcalloc((size_t)n, sizeof *p.sent_at);
    line_reader_init(&p.reader, fd, PROTO_LINE_MAX);
    pthread_mutex_init(&p.lock, NULL);
    pthread_mutex_init(&p.send_lock, NULL);
    pthread_cond_init(&p.changed, NULL);
    int rc = await_register(&p, o->accept_timeout, err);
    if (!rc) {
        logf_(o, "client registered; playing %d requests over %d symbols%s", n,
              s->req.num_symbols, o->speed > 0 ? "" : " as fast as they are answered");
        pthread_t receiver;
        pthread_create(&receiver, NULL, receiver_main, &p);
        progress_t *bar = progress_start("replay", (uint64_t)n, "req", (progress_mode_t)o->progress);
        double start = clock_mono_s(), offset_ms = 0;
        char perr[ERR_MAX];
        for (int i = 0; i < n; i++) {
            if (play_one(&p, i, start, &offset_ms, perr)) {
                logf_(o, "stopped after %d of %d requests: %s", i, n, perr);
                break;
            }
            progress_update(bar, (uint64_t)i + 1);
        }
        progress_finish(bar);
        /* drain: the last answers */
        struct timespec until;
        deadline_in(&until, o->drain_timeout);
        pthread_mutex_lock(&p.lock);
        while (p.answered < r->sent && !p.gone)
            if (pthread_cond_timedwait(&p.changed, &p.lock, &until)) break;
        if (p.answered < r->sent)
            logf_(o, "%d of %d requests sent were not answered%s", r->sent - p.answered, r->sent,
                  p.gone ? "" : " within the drain timeout");
        if (o->finished) {
            atomic_store(o->finished, 1);
            deadline_in(&until, 1.0);
            while (!p.gone)
                if (pthread_cond_timedwait(&p.changed, &p.lock, &until)) break;
        }
        p.closing = 1;
        if (r->sent) r->duration_s = (p.answered ? p.last_answer_at : clock_mono_s()) - p.sent_at[0];
        pthread_mutex_unlock(&p.lock);
        shutdown(fd, SHUT_RDWR);
        pthread_join(receiver, NULL);
    }
    close(fd);
    line_reader_free(&p.reader);
    free(p.sent_at);
    pthread_mutex_destroy(&p.lock);
    pthread_mutex_destroy(&p.send_lock);
    pthread_cond_destroy(&p.changed);
    return rc;
}
