#include "protocol.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* ---------------- line reader ---------------- */

void line_reader_init(line_reader_t *r, int fd, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->cap = cap;
    r->buf = xmalloc(cap + 1);
}

void line_reader_free(line_reader_t *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* Look for a complete line in the buffer (or the end of an oversized one). */
static int take_line(line_reader_t *r, char **line, size_t *len, line_status_t *st)
{
    char *start = r->buf + r->consumed;
    size_t avail = r->len - r->consumed;
    char *nl = memchr(start, '\n', avail);
    if (r->discarding) {
        if (!nl) {
            r->discarded += avail;
            r->len = r->consumed = 0;
            return 0;
        }
        r->discarded += (size_t)(nl - start);
        r->consumed += (size_t)(nl - start) + 1;
        r->discarding = 0;
        *len = r->discarded;
        *st = LINE_OVERSIZED;
        return 1;
    }
    if (nl) {
        size_t n = (size_t)(nl - start); /* <= cap: the buffer holds cap + 1 bytes */
        *nl = '\0';
        if (n && start[n - 1] == '\r') start[--n] = '\0'; /* tolerate CRLF */
        r->consumed += (size_t)(nl - start) + 1;
        *line = start;
        *len = n;
        *st = LINE_OK;
        return 1;
    }
    if (avail > r->cap) { /* no newline within cap bytes: drop this line */
        r->discarding = 1;
        r->discarded = avail;
        r->len = r->consumed = 0;
    }
    return 0;
}

line_status_t line_reader_next(line_reader_t *r, int timeout_ms, char **line, size_t *len,
                               char *err)
{
    line_status_t st;
    for (;;) {
        if (take_line(r, line, len, &st)) return st;
        /* compact, then read more */
        if (r->consumed) {
            memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
            r->len -= r->consumed;
            r->consumed = 0;
        }
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int pr = poll(&p, 1, timeout_ms);
        if (pr < 0) {
            if (errno == EINTR) return LINE_TIMEOUT;
            seterr(err, "poll: %s", strerror(errno));
            return LINE_ERROR;
        }
        if (pr == 0) return LINE_TIMEOUT;
        ssize_t got = read(r->fd, r->buf + r->len, r->cap + 1 - r->len);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            seterr(err, "read: %s", strerror(errno));
            return LINE_ERROR;
        }
        if (got == 0) return LINE_EOF;
        r->len += (size_t)got;
    }
}

/* ---------------- parsing ---------------- */

static const char *const type_names[] = {
    [MSG_REGISTER] = "register",
    [MSG_INFERENCE_REQUEST] = "inference_request",
    [MSG_INFERENCE_RESPONSE] = "inference_response",
    [MSG_SCORE_UPDATE] = "score_update",
    [MSG_HEARTBEAT] = "heartbeat",
    [MSG_ERROR] = "error",
};

const char *msg_type_name(msg_type_t t)
{
    return (unsigned)t < ARRAY_LEN(type_names) ? type_names[t] : "?";
}

int proto_symbol_valid(const char *name)
{
    if (strncmp(name, "SYM_", 4) != 0) return 0;
    size_t digits = strlen(name + 4);
    if (digits < 1 || digits > 9) return 0;
    for (const char *p = name + 4; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

/* Copy of the line with bare NaN / Infinity / -Infinity (outside strings) turned into the
 * strings "NaN", "Infinity", "-Infinity", so strict JSON parsing accepts the line and the
 * feature check names the value. NULL when there are none. */
static char *quote_nonfinite_tokens(const char *s, size_t len, size_t *out_len)
{
    static const char *const tokens[] = {"NaN", "Infinity", "-Infinity"};
    char *out = NULL;
    size_t o = 0, copied = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
            continue;
        }
        if (c != 'N' && c != 'I' && c != '-') continue;
        for (size_t t = 0; t < ARRAY_LEN(tokens); t++) {
            size_t tl = strlen(tokens[t]);
            if (len - i < tl || memcmp(s + i, tokens[t], tl) != 0) continue;
            if (!out) out = xmalloc(len + 2 * len / 3 + 8); /* each token grows by 2 bytes */
            memcpy(out + o, s + copied, i - copied);
            o += i - copied;
            out[o++] = '"';
            memcpy(out + o, tokens[t], tl);
            o += tl;
            out[o++] = '"';
            i += tl - 1;
            copied = i + 1;
            break;
        }
    }
    if (!out) return NULL;
    memcpy(out + o, s + copied, len - copied);
    o += len - copied;
    *out_len = o;
    return out;
}

static json_t *get_field(json_t *obj, const char *type, const char *key, char *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) seterr(err, "%s: missing field '%s'", type, key);
    return v;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int get_number(json_t *obj, const char *type, const char *key, double *out, char *err)
{
    json_t *v = get_field(obj, type, key, err);
    if (!v) return -1;
    if (!json_is_number(v))
        return seterr(err, "%s: field '%s' is %s, expected a number", type, key, json_kind(v));
    *out = json_number_value(v);
    return 0;
}

/* An array field; its length must equal *n unless *n < 0 (then it sets *n). */
static json_t *get_array(json_t *obj, const char *type, const char *key, int *n,
                         const char *first_key, char *err)
{
    json_t *v = get_field(obj, type, key, err);
    if (!v) return NULL;
    if (!json_is_array(v)) {
        seterr(err, "%s: field '%s' is %s, expected an array", type, key, json_kind(v));
        return NULL;
    }
    int len = (int)json_array_size(v);
    if (*n >= 0 && len != *n) {
        seterr(err, "%s: '%s' has %d entries but '%s' has %d", type, key, len, first_key, *n);
        return NULL;
    }
    *n = len;
    return v;
}

static int parse_ids(json_t *arr, const char *type, message_t *m, char *err)
{
    m->ids = xcalloc((size_t)m->n, sizeof *m->ids);
    for (int i = 0; i < m->n; i++) {
        json_t *v = json_array_get(arr, (size_t)i);
        if (!json_is_integer(v))
            return seterr(err, "%s: unique_ids[%d] is %s, expected an integer", type, i,
                          json_kind(v));
        m->ids[i] = json_integer_value(v);
    }
    return 0;
}

static int parse_numbers(json_t *arr, const char *type, const char *key, int n, double **out,
                         char *err)
{
    *out = xcalloc((size_t)n, sizeof **out);
    for (int i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, (size_t)i);
        if (!json_is_number(v))
            return seterr(err, "%s: %s[%d] is %s, expected a number", type, key, i,
                          json_kind(v));
        (*out)[i] = json_number_value(v);
    }
    return 0;
}

/* Why one feature row cannot be used, or "" when it can. */
static void check_feature_row(json_t *row, int F, float *dst, char *reason)
{
    reason[0] = '\0';
    if (!json_is_array(row)) {
        snprintf(reason, PROTO_REASON_MAX, "features row is %s, expected an array",
                 json_kind(row));
        return;
    }
    int len = (int)json_array_size(row);
    if (len != F) {
        snprintf(reason, PROTO_REASON_MAX, "%d features, expected %d", len, F);
        return;
    }
    for (int j = 0; j < F; j++) {
        json_t *v = json_array_get(row, (size_t)j);
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            if (!strcmp(s, "NaN") || !strcmp(s, "Infinity") || !strcmp(s, "-Infinity"))
                snprintf(reason, PROTO_REASON_MAX, "feature %d is %s", j, s);
            else
                snprintf(reason, PROTO_REASON_MAX, "feature %d is a string, expected a number",
                         j);
            return;
        }
        if (!json_is_number(v)) {
            snprintf(reason, PROTO_REASON_MAX, "feature %d is %s, expected a number", j,
                     json_kind(v));
            return;
        }
        double x = json_number_value(v);
        if (!isfinite(x) || fabs(x) > PROTO_FEATURE_ABS_MAX) {
            snprintf(reason, PROTO_REASON_MAX, "feature %d = %g is beyond +-%g", j, x,
                     PROTO_FEATURE_ABS_MAX);
            return;
        }
        dst[j] = (float)x;
    }
}

static int parse_request(json_t *o, int F, message_t *m, char *err)
{
    const char *t = "inference_request";
    int n = -1;
    json_t *ids = get_array(o, t, "unique_ids", &n, NULL, err);
    json_t *syms = ids ? get_array(o, t, "symbols", &n, "unique_ids", err) : NULL;
    json_t *feats = syms ? get_array(o, t, "features", &n, "unique_ids", err) : NULL;
    if (!feats || get_number(o, t, "timestamp", &m->timestamp, err)) return -1;
    m->n = n;
    if (parse_ids(ids, t, m, err)) return -1;
    if (F <= 0) { /* any count, taken from the first row */
        json_t *row0 = json_array_get(feats, 0);
        F = json_is_array(row0) ? (int)json_array_size(row0) : 0;
    }
    m->num_features = F;
    m->symbols = xcalloc((size_t)n, sizeof *m->symbols);
    m->features = xcalloc((size_t)n * (size_t)(F > 0 ? F : 1), sizeof *m->features);
    m->rejected = xcalloc((size_t)n, sizeof *m->rejected);
    for (int i = 0; i < n; i++) {
        char *reason = m->rejected[i];
        json_t *s = json_array_get(syms, (size_t)i);
        if (!json_is_string(s))
            snprintf(reason, PROTO_REASON_MAX, "symbol is %s, expected a string", json_kind(s));
        else if (!proto_symbol_valid(json_string_value(s)))
            snprintf(reason, PROTO_REASON_MAX, "symbol '%.40s' is not SYM_<digits>",
                     json_string_value(s));
        else
            strcpy(m->symbols[i], json_string_value(s));
        if (!reason[0])
            check_feature_row(json_array_get(feats, (size_t)i), F,
                              m->features + (size_t)i * (size_t)F, reason);
        m->num_rejected += reason[0] != '\0';
    }
    return 0;
}

static int parse_response(json_t *o, message_t *m, char *err)
{
    const char *t = "inference_response";
    int n = -1;
    json_t *ids = get_array(o, t, "unique_ids", &n, NULL, err);
    json_t *preds = ids ? get_array(o, t, "predictions", &n, "unique_ids", err) : NULL;
    if (!preds || get_number(o, t, "client_timestamp", &m->timestamp, err)) return -1;
    m->n = n;
    if (parse_ids(ids, t, m, err)) return -1;
    m->predictions = xcalloc((size_t)n * PROTO_NUM_OUTPUTS, sizeof *m->predictions);
    for (int i = 0; i < n; i++) {
        json_t *row = json_array_get(preds, (size_t)i);
        if (!json_is_array(row) || json_array_size(row) != PROTO_NUM_OUTPUTS)
            return seterr(err, "%s: predictions[%d] is not an array of %d numbers", t, i,
                          PROTO_NUM_OUTPUTS);
        for (int k = 0; k < PROTO_NUM_OUTPUTS; k++) {
            json_t *v = json_array_get(row, (size_t)k);
            if (!json_is_number(v))
                return seterr(err, "%s: predictions[%d][%d] is %s, expected a number", t, i, k,
                              json_kind(v));
            m->predictions[(size_t)i * PROTO_NUM_OUTPUTS + (size_t)k] = json_number_value(v);
        }
    }
    return 0;
}

static int parse_score(json_t *o, message_t *m, char *err)
{
    const char *t = "score_update";
    int n = -1;
    json_t *ids = get_array(o, t, "unique_ids", &n, NULL, err);
    json_t *pnl = ids ? get_array(o, t, "trade_pnls", &n, "unique_ids", err) : NULL;
    json_t *acc = pnl ? get_array(o, t, "accuracies", &n, "unique_ids", err) : NULL;
    json_t *lat = acc ? get_array(o, t, "latencies_ms", &n, "unique_ids", err) : NULL;
    if (!lat) return -1;
    m->n = n;
    if (parse_ids(ids, t, m, err) || parse_numbers(pnl, t, "trade_pnls", n, &m->trade_pnls, err) ||
        parse_numbers(acc, t, "accuracies", n, &m->accuracies, err) ||
        parse_numbers(lat, t, "latencies_ms", n, &m->latencies_ms, err))
        return -1;
    return 0;
}

static int parse_error(json_t *o, message_t *m, char *err)
{
    json_t *e = get_field(o, "error", "error", err);
    if (!e) return -1;
    if (!json_is_string(e))
        return seterr(err, "error: field 'error' is %s, expected a string", json_kind(e));
    m->error = strdup(json_string_value(e));
    json_t *d = json_object_get(o, "details");
    if (d && !json_is_null(d)) {
        if (!json_is_string(d))
            return seterr(err, "error: field 'details' is %s, expected a string or null",
                          json_kind(d));
        m->details = strdup(json_string_value(d));
    }
    return 0;
}

int msg_parse(const char *line, size_t len, int num_features, message_t *m, char *err)
{
    memset(m, 0, sizeof *m);
    size_t fixed_len = 0;
    char *fixed = quote_nonfinite_tokens(line, len, &fixed_len);
    json_error_t je;
    json_t *o = json_loadb(fixed ? fixed : line, fixed ? fixed_len : len,
                           JSON_REJECT_DUPLICATES, &je);
    free(fixed);
    if (!o) return seterr(err, "malformed JSON at column %d: %s", je.column, je.text);
    int rc = -1;
    json_t *tv = json_object_get(o, "message_type");
    if (!json_is_object(o)) {
        seterr(err, "message is %s, expected a JSON object", json_kind(o));
    } else if (!tv) {
        seterr(err, "missing field 'message_type'");
    } else if (!json_is_string(tv)) {
        seterr(err, "field 'message_type' is %s, expected a string", json_kind(tv));
    } else {
        const char *name = json_string_value(tv);
        int found = 0;
        for (size_t t = 0; t < ARRAY_LEN(type_names); t++)
            if (!strcmp(name, type_names[t])) {
                m->type = (msg_type_t)t;
                found = 1;
            }
        if (!found) {
            seterr(err, "unknown message_type '%.60s'", name);
        } else {
            switch (m->type) {
            case MSG_REGISTER: rc = 0; break;
            case MSG_INFERENCE_REQUEST: rc = parse_request(o, num_features, m, err); break;
            case MSG_INFERENCE_RESPONSE: rc = parse_response(o, m, err); break;
            case MSG_SCORE_UPDATE: rc = parse_score(o, m, err); break;
            case MSG_HEARTBEAT: rc = get_number(o, "heartbeat", "timestamp", &m->timestamp, err); break;
            case MSG_ERROR: rc = parse_error(o, m, err); break;
            }
        }
    }
    json_decref(o);
    if (rc) msg_free(m);
    return rc;
}

void msg_free(message_t *m)
{
    free(m->ids);
    free(m->symbols);
    free(m->features);
    free(m->rejected);
    free(m->predictions);
    free(m->trade_pnls);
    free(m->accuracies);
    free(m->latencies_ms);
    free(m->error);
    free(m->details);
    memset(m, 0, sizeof *m);
}

/* ---------------- building ---------------- */

/* Takes ownership of o; appends the newline. */
static char *finish(json_t *o, char *err)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    if (!s) {
        seterr(err, "cannot encode message (a number is not finite)");
        return NULL;
    }
    size_t n = strlen(s);
    char *line = xmalloc(n + 2);
    memcpy(line, s, n);
    line[n] = '\n';
    line[n + 1] = '\0';
    free(s);
    return line;
}

static json_t *new_message(const char *type)
{
    json_t *o = json_object();
    json_object_set_new(o, "message_type", json_string(type));
    return o;
}

/* json_real(NaN) is NULL: report it instead of writing a broken message. */
static int set_real(json_t *o, const char *key, double v)
{
    json_t *r = json_real(v);
    return r ? json_object_set_new(o, key, r) : -1;
}

static int append_real(json_t *arr, double v)
{
    json_t *r = json_real(v);
    return r ? json_array_append_new(arr, r) : -1;
}

static json_t *id_array(int n, const int64_t *ids)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static int set_reals(json_t *o, const char *key, int n, const double *v)
{
    json_t *a = json_array();
    int bad = 0;
    for (int i = 0; i < n; i++) bad |= append_real(a, v[i]);
    json_object_set_new(o, key, a);
    return bad ? -1 : 0;
}

char *msg_build_register(char *err) { return finish(new_message("register"), err); }

char *msg_build_heartbeat(double timestamp, char *err)
{
    json_t *o = new_message("heartbeat");
    if (set_real(o, "timestamp", timestamp)) json_decref(o), o = NULL;
    return finish(o, err);
}

char *msg_build_request(int n, const int64_t *ids, const char *const *symbols,
                        const float *features, int num_features, double timestamp, char *err)
{
    json_t *o = new_message("inference_request");
    json_object_set_new(o, "unique_ids", id_array(n, ids));
    json_t *syms = json_array(), *rows = json_array();
    int bad = 0;
    for (int i = 0; i < n; i++) {
        json_array_append_new(syms, json_string(symbols[i]));
        json_t *row = json_array();
        for (int j = 0; j < num_features; j++)
            bad |= append_real(row, features[(size_t)i * (size_t)num_features + (size_t)j]);
        json_array_append_new(rows, row);
    }
    json_object_set_new(o, "symbols", syms);
    json_object_set_new(o, "features", rows);
    bad |= set_real(o, "timestamp", timestamp);
    if (bad) json_decref(o), o = NULL;
    return finish(o, err);
}

char *msg_build_response(int n, const int64_t *ids, const double *predictions,
                         double client_timestamp, char *err)
{
    json_t *o = new_message("inference_response");
    json_object_set_new(o, "unique_ids", id_array(n, ids));
    json_t *rows = json_array();
    int bad = 0;
    for (int i = 0; i < n; i++) {
        json_t *row = json_array();
        for (int k = 0; k < PROTO_NUM_OUTPUTS; k++)
            bad |= append_real(row, predictions[(size_t)i * PROTO_NUM_OUTPUTS + (size_t)k]);
        json_array_append_new(rows, row);
    }
    json_object_set_new(o, "predictions", rows);
    bad |= set_real(o, "client_timestamp", client_timestamp);
    if (bad) json_decref(o), o = NULL;
    return finish(o, err);
}

char *msg_build_score_update(int n, const int64_t *ids, const double *trade_pnls,
                             const double *accuracies, const double *latencies_ms, char *err)
{
    json_t *o = new_message("score_update");
    json_object_set_new(o, "unique_ids", id_array(n, ids));
    int bad = set_reals(o, "trade_pnls", n, trade_pnls);
    bad |= set_reals(o, "accuracies", n, accuracies);
    bad |= set_reals(o, "latencies_ms", n, latencies_ms);
    if (bad) json_decref(o), o = NULL;
    return finish(o, err);
}

char *msg_build_error(const char *error, const char *details, char *err)
{
    json_t *o = new_message("error");
    json_object_set_new(o, "error", json_string(error));
    json_object_set_new(o, "details", details ? json_string(details) : json_null());
    return finish(o, err);
}
