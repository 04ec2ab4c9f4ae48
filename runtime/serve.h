/* The serving loop: a client of the game server (../shared/PROTOCOL.md).
 *
 * A reader thread parses incoming lines and queues valid requests; the calling thread takes
 * whatever is queued (up to the engine's max_batch), runs it as one engine step, answers at
 * once and meanwhile the reader gathers the next batch. Symbols get state slots in order of
 * first appearance; when all max_symbols slots are taken, requests of new symbols are
 * refused (logged once per symbol, not answered) and every other symbol goes on.
 * A lost connection is re-established with exponential backoff; all state is kept. */
#ifndef STEPFUSE_SERVE_H
#define STEPFUSE_SERVE_H

#include <stdatomic.h>
#include <stdio.h>

#include "engine.h"
#include "snapshot.h"

#define SERVE_MAX_PENDING_PER_SYMBOL 100 /* as the reference client: more are dropped */
#define SERVE_MAX_PENDING 65536          /* all symbols together */

typedef struct {
    const char *host;
    int port;
    engine_t *engine;
    const model_identity_t *identity; /* recorded in and checked against the state file */
    const char *state_file;           /* NULL: no state file */
    double snapshot_every;            /* seconds; 0: only when stopping */
    double heartbeat_every;           /* seconds; 0: 5 */
    double reconnect_for;             /* give up after this long without a server; 0: never */
    FILE *log;                        /* NULL: stderr */
    int verbose;                      /* log every score update and heartbeat */
    atomic_int *stop;                 /* set non-zero to stop (snapshot, then return) */
} serve_options_t;

typedef struct {
    long requests;      /* valid requests received */
    long answered;
    long refused;       /* invalid requests, unknown symbols beyond max_symbols, engine errors */
    long dropped;       /* over the pending caps, or pending when the connection was lost */
    long bad_messages;  /* messages refused as a whole (and oversized lines) */
    long batches;
    int max_batch_seen;
    double step_ms_sum, step_ms_max; /* engine time per batch */
    long connections;
    long snapshots;
    long score_updates;
} serve_stats_t;

/* Restore the state file (if any), connect, serve until *stop; returns 0, or -1 with err
 * (first connection refused, state file refused, reconnect_for exceeded). */
int serve_run(const serve_options_t *o, serve_stats_t *stats, char *err);

#endif
