/* The replay server: the server side of ../shared/PROTOCOL.md for one client. It waits for
 * `register`, plays a recorded stream at its recorded pace (one inference_request per row,
 * unique_id = row index), records when and what each request is answered, and sends a
 * score_update per answer. The game's scoring is not public: the replay's stand-in scores
 * accuracy as the fraction of towers whose prediction has the sign of the recorded target,
 * and pnl as the mean of sign(prediction) * target. */
#ifndef STEPFUSE_REPLAY_H
#define STEPFUSE_REPLAY_H

#include <stdatomic.h>
#include <stdio.h>

#include "csv_stream.h"

typedef struct {
    double speed;           /* 1: recorded pace, 2: twice as fast; 0: as fast as answered */
    int window;             /* speed 0: requests in flight at most (0: 32) */
    double accept_timeout;  /* seconds to wait for the client to connect and register */
    double drain_timeout;   /* seconds to wait for answers after the last request */
    int progress;           /* progress bar on stderr (a progress_mode_t) */
    FILE *log;              /* NULL: stderr */
    atomic_int *finished;   /* if set: set to 1 once the stream is played and drained, and
                               the client gets a second to hang up first (an in-process
                               client uses it as its stop flag) */
} replay_options_t;

typedef struct {
    int n;                /* requests of the stream */
    int sent;
    double *latency_ms;   /* [n] send to answer; < 0: not answered */
    double *predictions;  /* [n, 4] the client's answers */
    long responses;       /* inference_response messages */
    long bad_messages;    /* refused as a whole (logged) */
    long unknown_ids;     /* answers for ids never sent (logged) */
    long duplicate_answers;
    double duration_s;    /* first send to last answer (or to the end of the drain) */
} replay_result_t;

typedef struct {
    int fd;
    int port; /* the bound port (useful with port 0) */
} replay_server_t;

int replay_listen(replay_server_t *srv, const char *host, int port, char *err);
void replay_close(replay_server_t *srv);

/* Accept one client, wait for its register, play the stream, drain, close the connection.
 * -1 with err when no client registers or the connection fails before the end. */
int replay_serve(replay_server_t *srv, const csv_stream_t *s, const replay_options_t *o,
                 replay_result_t *r, char *err);
void replay_result_free(replay_result_t *r);

#endif
