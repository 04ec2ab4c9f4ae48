#include "serve.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "logline.h"
#include "net.h"
#include "protocol.h"
#include "slot_map.h"
#include "util.h"

#define POLL_MS 100           /* how often blocked threads look at the stop flags */
#define BACKOFF_FIRST_S 0.1
#define BACKOFF_MAX_S 5.0
#define SEND_TIMEOUT_S 10.0

typedef struct {
    int64_t id;
    char symbol[PROTO_SYMBOL_MAX];
    float *features; /* [F] */
} pending_t;

typedef struct {
    char symbol[PROTO_SYMBOL_MAX];
    int count;
} symbol_count_t;

/* State shared by the reader thread and the serving thread, under `lock`. */
typedef struct {
    const serve_options_t *o;
    serve_stats_t *stats;
    int F;
    int fd;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pending_t *queue; /* ring */
    int head, len, cap;
    symbol_count_t *pending_per_symbol; /* symbols with queued requests */
    int num_pending_symbols;
    int lost;             /* reader saw the connection end */
    int closing;          /* serving thread asks the reader to exit */
    /* score updates since the last summary */
    long score_n;
    double score_latency_sum, score_accuracy_sum, score_pnl_sum;
} shared_t;

#define logf_(o, ...) log_line((o)->log, "serve", __VA_ARGS__)

/* ---------------- queue (caller holds lock) ---------------- */

static symbol_count_t *pending_count(shared_t *sh, const char *symbol, int create)
{
    for (int i = 0; i < sh->num_pending_symbols; i++)
        if (!strcmp(sh->pending_per_symbol[i].symbol, symbol)) return &sh->pending_per_symbol[i];
    if (!create) return NULL;
    symbol_count_t *c = &sh->pending_per_symbol[sh->num_pending_symbols++];
    snprintf(c->symbol, sizeof c->symbol, "%s", symbol);
    c->count = 0;
    return c;
}

static void queue_push(shared_t *sh, int64_t id, const char *symbol, const float *features)
{
    symbol_count_t *c = pending_count(sh, symbol, 0);
    if (sh->len >= SERVE_MAX_PENDING || (c && c->count >= SERVE_MAX_PENDING_PER_SYMBOL)) {
        sh->stats->dropped++;
        logf_(sh->o, "request %lld (%s) dropped: %s", (long long)id, symbol,
              c && c->count >= SERVE_MAX_PENDING_PER_SYMBOL
                  ? "100 requests of this symbol already pending"
                  : "too many requests pending");
        return;
    }
    if (sh->len == sh->cap) { /* grow the ring, unrolled into order */
        int cap = sh->cap ? 2 * sh->cap : 256;
        pending_t *q = xmalloc((size_t)cap * sizeof *q);
        for (int i = 0; i < sh->len; i++) q[i] = sh->queue[(sh->head + i) % sh->cap];
        free(sh->queue);
        sh->queue = q;
        sh->head = 0;
        sh->cap = cap;
        sh->pending_per_symbol =
            realloc(sh->pending_per_symbol, (size_t)cap * sizeof *sh->pending_per_symbol);
        if (!sh->pending_per_symbol) abort();
    }
    if (!c) c = pending_count(sh, symbol, 1);
    c->count++;
    pending_t *p = &sh->queue[(sh->head + sh->len) % sh->cap];
    p->id = id;
    snprintf(p->symbol, sizeof p->symbol, "%s", symbol);
    p->features = xmalloc((size_t)sh->F * sizeof(float));
    memcpy(p->features, features, (size_t)sh->F * sizeof(float));
    sh->len++;
}

static pending_t queue_pop(shared_t *sh)
{
    pending_t p = sh->queue[sh->head];
    sh->head = (sh->head + 1) % sh->cap;
    sh->len--;
    symbol_count_t *c = pending_count(sh, p.symbol, 0);
    if (c && --c->count == 0) *c = sh->pending_per_symbol[--sh->num_pending_symbols];
    return p;
}

/* ---------------- reader thread ---------------- */

static void handle_line(shared_t *sh, const char *line, size_t len)
{
    const serve_options_t *o = sh->o;
    char err[ERR_MAX];
    message_t m;
    if (msg_parse(line, len, sh->F, &m, err)) {
        pthread_mutex_lock(&sh->lock);
        sh->stats->bad_messages++;
        pthread_mutex_unlock(&sh->lock);
        logf_(o, "message refused: %s; line: %.120s%s", err, line, len > 120 ? "..." : "");
        return;
    }
    switch (m.type) {
    case MSG_INFERENCE_REQUEST:
        pthread_mutex_lock(&sh->lock);
        for (int i = 0; i < m.n; i++) {
            if (m.rejected[i][0]) {
                sh->stats->refused++;
                logf_(o, "request %lld refused: %s", (long long)m.ids[i], m.rejected[i]);
                continue;
            }
            sh->stats->requests++;
            queue_push(sh, m.ids[i], m.symbols[i], m.features + (size_t)i * (size_t)sh->F);
        }
        pthread_cond_signal(&sh->wake);
        pthread_mutex_unlock(&sh->lock);
        break;
    case MSG_SCORE_UPDATE:
        pthread_mutex_lock(&sh->lock);
        sh->stats->score_updates++;
        for (int i = 0; i < m.n; i++) {
            sh->score_n++;
            sh->score_latency_sum += m.latencies_ms[i];
            sh->score_accuracy_sum += m.accuracies[i];
            sh->score_pnl_sum += m.trade_pnls[i];
            if (o->verbose)
                logf_(o, "score: request %lld latency %.3f ms accuracy %.6g pnl %.6g",
                      (long long)m.ids[i], m.latencies_ms[i], m.accuracies[i], m.trade_pnls[i]);
        }
        pthread_mutex_unlock(&sh->lock);
        break;
    case MSG_ERROR:
        logf_(o, "server error: %s%s%s", m.error, m.details ? ": " : "",
              m.details ? m.details : "");
        break;
    case MSG_HEARTBEAT:
        if (o->verbose) logf_(o, "heartbeat from server (timestamp %.3f)", m.timestamp);
        break;
    default:
        logf_(o, "ignored a '%s' message: servers do not send those", msg_type_name(m.type));
        break;
    }
    msg_free(&m);
}

static void *reader_main(void *arg)
{
    shared_t *sh = arg;
    line_reader_t r;
    line_reader_init(&r, sh->fd, PROTO_LINE_MAX);
    char err[ERR_MAX];
    const char *why = NULL;
    for (;;) {
        pthread_mutex_lock(&sh->lock);
        int closing = sh->closing;
        pthread_mutex_unlock(&sh->lock);
        if (closing) break;
        char *line;
        size_t len;
        line_status_t st = line_reader_next(&r, POLL_MS, &line, &len, err);
        if (st == LINE_OK) {
            if (len) handle_line(sh, line, len);
        } else if (st == LINE_OVERSIZED) {
            pthread_mutex_lock(&sh->lock);
            sh->stats->bad_messages++;
            pthread_mutex_unlock(&sh->lock);
            logf_(sh->o, "discarded a line of %zu bytes: longer than the %d-byte limit", len,
                  PROTO_LINE_MAX);
        } else if (st == LINE_EOF) {
            why = "server closed the connection";
            break;
        } else if (st == LINE_ERROR) {
            why = err;
            break;
        }
    }
    line_reader_free(&r);
    pthread_mutex_lock(&sh->lock);
    if (why && !sh->closing) {
        sh->lost = 1;
        logf_(sh->o, "connection lost: %s", why);
    }
    pthread_cond_signal(&sh->wake);
    pthread_mutex_unlock(&sh->lock);
    return NULL;
}

/* ---------------- serving thread ---------------- */

/* Periodic snapshots are captured between steps and written by a thread of their own, so
 * the file write and fsync never hold up an answer. */
typedef struct {
    pthread_t thread;
    int running;     /* a write was started and not yet joined */
    atomic_int done; /* the write finished */
    snapshot_image_t img;
    const serve_options_t *o;
    int rc;
    char err[ERR_MAX];
} snapshot_writer_t;

/* What only the serving thread touches. */
typedef struct {
    slot_map_t map;
    slot_map_t refused_logged; /* symbols whose refusal was already logged */
    int *slots;
    float *features;
    double *out;
    int64_t *ids;
    snapshot_writer_t writer;
} worker_t;

static int send_line(shared_t *sh, char *line, char *err)
{
    if (!line) return -1;
    int rc = net_send_all(sh->fd, line, strlen(line), err);
    free(line);
    return rc;
}

/* Run one batch and answer it; -1 only when the answer cannot be sent. */
static int run_batch(shared_t *sh, worker_t *b, pending_t *items, int n)
{
    const serve_options_t *o = sh->o;
    engine_t *e = o->engine;
    int F = sh->F, m = 0;
    long refused = 0;
    for (int i = 0; i < n; i++) {
        int added;
        int slot = slot_map_get_or_add(&b->map, items[i].symbol, &added);
        if (slot < 0) {
            refused++;
            int first;
            if (slot_map_get_or_add(&b->refused_logged, items[i].symbol, &first) >= 0 && first)
                logf_(o, "symbol %s refused: all %d state slots (max_symbols) are taken; its "
                         "requests are not answered, other symbols go on",
                      items[i].symbol, b->map.capacity);
            continue;
        }
        if (added) e->ops->reset_slot(e, slot);
        b->slots[m] = slot;
        b->ids[m] = items[i].id;
        memcpy(b->features + (size_t)m * (size_t)F, items[i].features, (size_t)F * sizeof(float));
        m++;
    }
    int rc = 0;
    char err[ERR_MAX];
    double t0 = clock_mono_s();
    if (m && engine_step(e, m, b->slots, b->features, b->out, err)) {
        logf_(o, "engine step of %d requests failed: %s; they are not answered", m, err);
        refused += m;
        m = 0;
    }
    double step_ms = (clock_mono_s() - t0) * 1e3;
    /* a non-finite output cannot be sent as JSON: leave that request out */
    int k = 0;
    for (int i = 0; i < m; i++) {
        const double *y = b->out + (size_t)i * PROTO_NUM_OUTPUTS;
        if (!isfinite(y[0]) || !isfinite(y[1]) || !isfinite(y[2]) || !isfinite(y[3])) {
            logf_(o, "request %lld (%s): engine output is not finite; not answered",
                  (long long)b->ids[i], b->map.names[b->slots[i]]);
            refused++;
            continue;
        }
        b->ids[k] = b->ids[i];
        memmove(b->out + (size_t)k * PROTO_NUM_OUTPUTS, y, PROTO_NUM_OUTPUTS * sizeof(double));
        k++;
    }
    if (k) {
        rc = send_line(sh, msg_build_response(k, b->ids, b->out, clock_wall_s(), err), err);
        if (rc) logf_(o, "cannot send the answers to %d requests: %s", k, err);
    }
    pthread_mutex_lock(&sh->lock);
    sh->stats->refused += refused;
    if (!rc) sh->stats->answered += k;
    sh->stats->batches += n > 0;
    sh->stats->step_ms_sum += step_ms;
    if (step_ms > sh->stats->step_ms_max) sh->stats->step_ms_max = step_ms;
    if (n > sh->stats->max_batch_seen) sh->stats->max_batch_seen = n;
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

static void log_score_summary(shared_t *sh)
{
    pthread_mutex_lock(&sh->lock);
    long n = sh->score_n;
    double lat = sh->score_latency_sum, acc = sh->score_accuracy_sum, pnl = sh->score_pnl_sum;
    sh->score_n = 0;
    sh->score_latency_sum = sh->score_accuracy_sum = sh->score_pnl_sum = 0;
    pthread_mutex_unlock(&sh->lock);
    if (n)
        logf_(sh->o, "scores: %ld requests, mean latency %.3f ms, mean accuracy %.6g, pnl %+.6g",
              n, lat / (double)n, acc / (double)n, pnl);
}

static void *writer_main(void *arg)
{
    snapshot_writer_t *w = arg;
    w->rc = snapshot_write(w->o->state_file, w->o->identity, &w->img, w->err);
    snapshot_image_free(&w->img);
    atomic_store(&w->done, 1);
    return NULL;
}

/* Join a finished (or, with wait, any) background write and log its outcome. */
static void writer_collect(shared_t *sh, snapshot_writer_t *w, int wait)
{
    if (!w->running || (!wait && !atomic_load(&w->done))) return;
    pthread_join(w->thread, NULL);
    w->running = 0;
    if (w->rc) {
        logf_(sh->o, "state not saved: %s", w->err);
        return;
    }
    pthread_mutex_lock(&sh->lock);
    sh->stats->snapshots++;
    pthread_mutex_unlock(&sh->lock);
    if (sh->o->verbose) logf_(sh->o, "state saved to %s", sh->o->state_file);
}

static void snapshot_in_background(shared_t *sh, worker_t *b)
{
    snapshot_writer_t *w = &b->writer;
    char err[ERR_MAX];
    writer_collect(sh, w, 0);
    if (w->running) {
        logf_(sh->o, "previous state file still being written: this snapshot is skipped");
        return;
    }
    if (snapshot_capture(sh->o->engine, &b->map, &w->img, err)) {
        logf_(sh->o, "state not saved: %s", err);
        return;
    }
    w->o = sh->o;
    atomic_store(&w->done, 0);
    w->running = 1;
    pthread_create(&w->thread, NULL, writer_main, w);
}

/* The last snapshot, when stopping: wait for any write in progress, then write. */
static void snapshot_final(shared_t *sh, worker_t *b)
{
    char err[ERR_MAX];
    writer_collect(sh, &b->writer, 1);
    if (snapshot_save(sh->o->state_file, sh->o->identity, sh->o->engine, &b->map, err)) {
        logf_(sh->o, "state not saved: %s", err);
        return;
    }
    sh->stats->snapshots++;
    logf_(sh->o, "state saved to %s (%d symbols)", sh->o->state_file, b->map.count);
}

static int stopping(const serve_options_t *o) { return o->stop && atomic_load(o->stop); }

/* Serve one connection until it is lost or we stop. */
static void serve_connection(shared_t *sh, worker_t *b, double *next_snapshot)
{
    const serve_options_t *o = sh->o;
    char err[ERR_MAX];
    if (send_line(sh, msg_build_register(err), err)) {
        logf_(o, "cannot register: %s", err);
        return;
    }
    sh->lost = sh->closing = 0;
    pthread_t reader;
    pthread_create(&reader, NULL, reader_main, sh);
    double heartbeat_every = o->heartbeat_every > 0 ? o->heartbeat_every : 5.0;
    double next_heartbeat = clock_mono_s() + heartbeat_every;
    int max_batch = o->engine->max_batch;
    pending_t *items = xmalloc((size_t)max_batch * sizeof *items);
    int lost = 0;
    while (!lost && !stopping(o)) {
        pthread_mutex_lock(&sh->lock);
        if (!sh->len && !sh->lost) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += POLL_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&sh->wake, &sh->lock, &until);
        }
        int n = 0;
        while (sh->len && n < max_batch) items[n++] = queue_pop(sh);
        lost = sh->lost;
        pthread_mutex_unlock(&sh->lock);
        if (n && run_batch(sh, b, items, n)) lost = 1;
        for (int i = 0; i < n; i++) free(items[i].features);
        double now = clock_mono_s();
        if (!lost && now >= next_heartbeat) {
            if (send_line(sh, msg_build_heartbeat(clock_wall_s(), err), err)) {
                logf_(o, "cannot send heartbeat: %s", err);
                lost = 1;
            }
            next_heartbeat = now + heartbeat_every;
            log_score_summary(sh);
        }
        if (o->state_file && o->snapshot_every > 0 && now >= *next_snapshot) {
            snapshot_in_background(sh, b);
            *next_snapshot = now + o->snapshot_every;
        }
    }
    free(items);
    pthread_mutex_lock(&sh->lock);
    sh->closing = 1;
    pthread_mutex_unlock(&sh->lock);
    shutdown(sh->fd, SHUT_RDWR);
    pthread_join(reader, NULL);
    log_score_summary(sh);
    /* what is still queued belongs to this connection: its ids mean nothing to the next */
    long discarded = 0;
    while (sh->len) {
        pending_t p = queue_pop(sh);
        free(p.features);
        discarded++;
    }
    sh->stats->dropped += discarded;
    if (discarded) logf_(o, "%ld pending requests of the closed connection dropped", discarded);
}

/* Sleep up to `seconds`, waking early on stop. */
static void nap(const serve_options_t *o, double seconds)
{
    double until = clock_mono_s() + seconds;
    while (!stopping(o) && clock_mono_s() < until) {
        double left = until - clock_mono_s();
        struct timespec ts = {0, (long)(fmin(left, POLL_MS * 1e-3) * 1e9)};
        if (left > 0) nanosleep(&ts, NULL);
    }
}

int serve_run(const serve_options_t *o, serve_stats_t *stats, char *err)
{
    engine_t *e = o->engine;
    memset(stats, 0, sizeof *stats);
    shared_t sh = {.o = o, .stats = stats, .F = e->spec->num_features, .fd = -1};
    pthread_mutex_init(&sh.lock, NULL);
    pthread_cond_init(&sh.wake, NULL);
    worker_t b = {0};
    slot_map_init(&b.map, e->max_symbols);
    slot_map_init(&b.refused_logged, 1024);
    b.slots = xmalloc((size_t)e->max_batch * sizeof *b.slots);
    b.ids = xmalloc((size_t)e->max_batch * sizeof *b.ids);
    b.features = xmalloc((size_t)e->max_batch * (size_t)sh.F * sizeof *b.features);
    b.out = xmalloc((size_t)e->max_batch * PROTO_NUM_OUTPUTS * sizeof *b.out);
    int rc = 0;
    if (o->state_file) {
        int loaded = snapshot_load(o->state_file, o->identity, e, &b.map, err);
        if (loaded < 0) rc = -1;
        else if (loaded) logf_(o, "state restored from %s: %d symbols", o->state_file, b.map.count);
        else logf_(o, "no state file at %s yet: all symbols start fresh", o->state_file);
    }
    double next_snapshot = clock_mono_s() + o->snapshot_every;
    double backoff = BACKOFF_FIRST_S, lost_at = clock_mono_s();
    while (!rc && !stopping(o)) {
        char cerr[ERR_MAX];
        sh.fd = net_connect(o->host, o->port, SEND_TIMEOUT_S, cerr);
        if (sh.fd < 0) {
            if (!stats->connections) { /* never connected: a wrong address or no server */
                rc = seterr(err, "%s", cerr);
                break;
            }
            if (o->reconnect_for > 0 && clock_mono_s() - lost_at > o->reconnect_for) {
                rc = seterr(err, "%s; gave up after %.0f s without a server", cerr,
                            o->reconnect_for);
                break;
            }
            logf_(o, "%s; retrying in %.1f s", cerr, backoff);
            nap(o, backoff);
            backoff = fmin(2 * backoff, BACKOFF_MAX_S);
            continue;
        }
        stats->connections++;
        logf_(o, "connected to %s:%d%s", o->host, o->port,
              stats->connections > 1 ? " again (all symbol states kept)" : "");
        double connected_at = clock_mono_s();
        serve_connection(&sh, &b, &next_snapshot);
        close(sh.fd);
        sh.fd = -1;
        lost_at = clock_mono_s();
        /* a server that hangs up at once must not be hammered: back off unless the
         * connection was a healthy one */
        if (lost_at - connected_at > BACKOFF_MAX_S) {
            backoff = BACKOFF_FIRST_S;
        } else if (!stopping(o)) {
            logf_(o, "the connection lasted %.1f s; reconnecting in %.1f s", lost_at - connected_at,
                  backoff);
            nap(o, backoff);
            backoff = fmin(2 * backoff, BACKOFF_MAX_S);
        }
    }
    if (o->state_file && stats->connections) snapshot_final(&sh, &b);
    if (stats->connections)
        logf_(o, "stopped: %ld requests, %ld answered, %ld refused, %ld dropped, %ld bad messages, "
             "%ld batches (largest %d)",
          stats->requests, stats->answered, stats->refused, stats->dropped, stats->bad_messages,
          stats->batches, stats->max_batch_seen);
    free(sh.queue);
    free(sh.pending_per_symbol);
    free(b.slots);
    free(b.ids);
    free(b.features);
    free(b.out);
    slot_map_free(&b.map);
    slot_map_free(&b.refused_logged);
    pthread_mutex_destroy(&sh.lock);
    pthread_cond_destroy(&sh.wake);
    return rc;
}
