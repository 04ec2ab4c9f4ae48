/* The serving protocol (../shared/PROTOCOL.md): newline-delimited JSON objects over TCP,
 * each with a `message_type`. This file reads lines with a length cap, parses and validates
 * every message type, and builds the lines the client and the replay server send.
 *
 * Validation is two-level: a message that cannot be understood as a whole (malformed JSON,
 * unknown message_type, a missing or wrongly typed field, arrays whose lengths disagree) is
 * refused with one message; inside a valid inference_request, a single request with a bad
 * symbol name, a wrong feature count or a feature that is not finite or beyond
 * PROTO_FEATURE_ABS_MAX is refused alone (its reason is kept) and the others stand. */
#ifndef STEPFUSE_PROTOCOL_H
#define STEPFUSE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_LINE_MAX (1 << 20) /* longest accepted line, bytes (without the '\n') */
#define PROTO_SYMBOL_MAX 16      /* "SYM_" + up to 9 digits + NUL fits */
#define PROTO_REASON_MAX 160
#define PROTO_NUM_OUTPUTS 4 /* xLSTM, Mamba2, RetNet, Hawk */
/* Features of the recorded streams stay within |x| < 5; anything beyond 1e6 is a corrupt
 * value that would only overflow the float32 arithmetic downstream. */
#define PROTO_FEATURE_ABS_MAX 1e6

/* ---- line reader ---- */
typedef enum {
    LINE_OK,        /* *line holds one line without '\n', NUL-terminated */
    LINE_TIMEOUT,   /* nothing complete within the timeout; call again */
    LINE_OVERSIZED, /* a line longer than the cap was discarded; the stream goes on */
    LINE_EOF,       /* peer closed (a partial last line is dropped) */
    LINE_ERROR,     /* read error; message in err */
} line_status_t;

typedef struct {
    int fd;
    size_t cap; /* longest line kept */
    char *buf;  /* cap + 1 bytes */
    size_t len; /* bytes buffered */
    size_t consumed; /* bytes of buf already returned as lines */
    int discarding;  /* inside an oversized line: drop bytes until the next '\n' */
    size_t discarded; /* bytes of the oversized line so far */
} line_reader_t;

void line_reader_init(line_reader_t *r, int fd, size_t cap);
void line_reader_free(line_reader_t *r);
/* Next line; waits at most timeout_ms (<0: forever). On LINE_OVERSIZED, *len is the size
 * of the discarded line. The returned line stays valid until the next call. */
line_status_t line_reader_next(line_reader_t *r, int timeout_ms, char **line, size_t *len,
                               char *err);

/* ---- messages ---- */
typedef enum {
    MSG_REGISTER,
    MSG_INFERENCE_REQUEST,
    MSG_INFERENCE_RESPONSE,
    MSG_SCORE_UPDATE,
    MSG_HEARTBEAT,
    MSG_ERROR,
} msg_type_t;

const char *msg_type_name(msg_type_t t);

typedef struct {
    msg_type_t type;
    int n;            /* items: requests, responses or scores */
    int64_t *ids;     /* [n] */
    double timestamp; /* inference_request timestamp, heartbeat timestamp,
                         inference_response client_timestamp */
    /* inference_request */
    int num_features;                   /* F */
    char (*symbols)[PROTO_SYMBOL_MAX];  /* [n] */
    float *features;                    /* [n, F] */
    char (*rejected)[PROTO_REASON_MAX]; /* [n]: "" = valid, else why this request is refused */
    int num_rejected;
    /* inference_response */
    double *predictions; /* [n, 4] */
    /* score_update */
    double *trade_pnls, *accuracies, *latencies_ms; /* [n] each */
    /* error */
    char *error, *details; /* details may be NULL */
} message_t;

/* Parse one line. `num_features` is the F every inference_request row must have (0: accept
 * any count, all rows equal). Returns -1 with a one-line reason when the message as a whole
 * is refused; the message is then empty. Bare NaN, Infinity and -Infinity tokens, which
 * some JSON writers emit, are read as non-finite numbers (so only the requests holding them
 * are refused). */
int msg_parse(const char *line, size_t len, int num_features, message_t *m, char *err);
void msg_free(message_t *m);

/* 1 if `name` is SYM_ followed by 1 to 9 decimal digits. */
int proto_symbol_valid(const char *name);

/* Builders: each returns a malloc'd line ending in '\n' (caller frees), or NULL with err
 * set (a non-finite number cannot be written as JSON). */
char *msg_build_register(char *err);
char *msg_build_heartbeat(double timestamp, char *err);
char *msg_build_request(int n, const int64_t *ids, const char *const *symbols,
                        const float *features, int num_features, double timestamp, char *err);
char *msg_build_response(int n, const int64_t *ids, const double *predictions,
                         double client_timestamp, char *err);
char *msg_build_score_update(int n, const int64_t *ids, const double *trade_pnls,
                             const double *accuracies, const double *latencies_ms, char *err);
char *msg_build_error(const char *error, const char *details, char *err);

#endif
