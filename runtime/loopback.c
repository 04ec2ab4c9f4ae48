#include "loopback.h"

#include <pthread.h>
#include <string.h>

#include "util.h"

typedef struct {
    serve_options_t o;
    serve_stats_t *stats;
    int rc;
    char err[ERR_MAX];
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    c->rc = serve_run(&c->o, c->stats, c->err);
    return NULL;
}

int loopback_run(const csv_stream_t *s, replay_options_t ro, serve_options_t so,
                 replay_result_t *r, serve_stats_t *stats, char *err)
{
    replay_server_t srv;
    memset(r, 0, sizeof *r);
    memset(stats, 0, sizeof *stats);
    if (replay_listen(&srv, "127.0.0.1", 0, err)) return -1;
    atomic_int finished = 0; /* the replay sets it when done: the client's stop flag */
    client_t c = {.o = so, .stats = stats};
    c.o.host = "127.0.0.1";
    c.o.port = srv.port;
    c.o.stop = &finished;
    ro.finished = &finished;
    pthread_t client;
    pthread_create(&client, NULL, client_main, &c);
    int rc = replay_serve(&srv, s, &ro, r, err);
    atomic_store(&finished, 1); /* also when the replay failed */
    pthread_join(client, NULL);
    replay_close(&srv);
    if (!rc && c.rc) rc = seterr(err, "%s", c.err);
    return rc;
}
