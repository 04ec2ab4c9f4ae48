/* The replay server and the serving loop in one process, over 127.0.0.1 on an ephemeral
 * port: what `stepfuse demo` runs, and what the end-to-end tests check. */
#ifndef STEPFUSE_LOOPBACK_H
#define STEPFUSE_LOOPBACK_H

#include "csv_stream.h"
#include "replay.h"
#include "serve.h"

/* Plays s to a serving loop with options so (its host, port and stop flag are filled in
 * here) under replay options ro (its `finished` flag likewise). r and stats get both
 * sides' outcome; -1 with err when either side fails. */
int loopback_run(const csv_stream_t *s, replay_options_t ro, serve_options_t so,
                 replay_result_t *r, serve_stats_t *stats, char *err);

#endif
