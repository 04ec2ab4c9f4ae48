#include "csv_stream.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slot_map.h"
#include "util.h"

/* Split a line at commas in place (the files have no quoting); returns the field count. */
static int split(char *line, char **fields, int max)
{
    int n = 0;
    for (char *p = line;;) {
        char *comma = strchr(p, ',');
        if (n < max) fields[n] = p;
        n++;
        if (!comma) break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

static int check_header(const char *path, char **f, int nf, int *F, char *err)
{
    *F = nf - 6;
    if (nf < 7 || strcmp(f[0], "symbol") || strcmp(f[1], "delay_ms"))
        return seterr(err, "%s:1: header must start with symbol,delay_ms,feature_00 and end "
                           "with target_00..target_03", path);
    char want[32];
    for (int j = 0; j < nf - 2; j++) {
        if (j < *F) snprintf(want, sizeof want, "feature_%02d", j);
        else snprintf(want, sizeof want, "target_%02d", j - *F);
        if (strcmp(f[2 + j], want))
            return seterr(err, "%s:1: column %d is '%.40s', expected '%s'", path, 3 + j,
                          f[2 + j], want);
    }
    return 0;
}

static int parse_number(const char *path, int line, const char *column, const char *text,
                        double *out, char *err)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno == ERANGE || !isfinite(v))
        return seterr(err, "%s:%d: %s: '%.40s' is not a finite number", path, line, column,
                      text);
    *out = v;
    return 0;
}

int csv_stream_load(const char *path, csv_stream_t *s, char *err)
{
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "r");
    if (!f) return seterr(err, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, F = 0, rows_cap = 0, rc = -1, max_fields = 0;
    char **fields = NULL;
    slot_map_t slots = {0};
    request_stream_t *r = &s->req;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (lineno == 1) {
            max_fields = 1;
            for (char *p = line; *p; p++) max_fields += *p == ',';
            fields = xmalloc((size_t)max_fields * sizeof *fields);
            if (check_header(path, fields, split(line, fields, max_fields), &F, err)) goto out;
            r->num_features = F;
            continue;
        }
        if (!len) continue; /* a trailing empty line */
        int nf = split(line, fields, max_fields);
        if (nf != F + 6) {
            seterr(err, "%s:%d: %d fields, expected %d", path, lineno, nf, F + 6);
            goto out;
        }
        if (!proto_symbol_valid(fields[0])) {
            seterr(err, "%s:%d: symbol '%.40s' is not SYM_<digits>", path, lineno, fields[0]);
            goto out;
        }
        if (r->n == rows_cap) {
            rows_cap = rows_cap ? 2 * rows_cap : 1024;
            s->names = realloc(s->names, (size_t)rows_cap * sizeof *s->names);
            s->delay_ms = realloc(s->delay_ms, (size_t)rows_cap * sizeof *s->delay_ms);
            s->targets = realloc(s->targets, (size_t)rows_cap * 4 * sizeof *s->targets);
            r->symbol = realloc(r->symbol, (size_t)rows_cap * sizeof *r->symbol);
            r->features = realloc(r->features, (size_t)rows_cap * (size_t)F * sizeof(float));
            if (!s->names || !s->delay_ms || !s->targets || !r->symbol || !r->features) {
                seterr(err, "%s: out of memory at line %d", path, lineno);
                goto out;
            }
        }
        int i = r->n;
        snprintf(s->names[i], PROTO_SYMBOL_MAX, "%s", fields[0]);
        r->symbol[i] = (int32_t)strtol(fields[0] + 4, NULL, 10);
        if (parse_number(path, lineno, "delay_ms", fields[1], &s->delay_ms[i], err)) goto out;
        if (s->delay_ms[i] < 0) {
            seterr(err, "%s:%d: delay_ms: %g is negative", path, lineno, s->delay_ms[i]);
            goto out;
        }
        for (int j = 0; j < F + 4; j++) {
            char column[32];
            double v;
            if (j < F) snprintf(column, sizeof column, "feature_%02d", j);
            else snprintf(column, sizeof column, "target_%02d", j - F);
            if (parse_number(path, lineno, column, fields[2 + j], &v, err)) goto out;
            if (j < F) r->features[(size_t)i * (size_t)F + (size_t)j] = (float)v;
            else s->targets[(size_t)i * 4 + (size_t)(j - F)] = v;
        }
        r->n++;
    }
    if (lineno == 0) {
        seterr(err, "%s: empty file (no header line)", path);
        goto out;
    }
    if (r->n == 0) {
        seterr(err, "%s: no requests after the header", path);
        goto out;
    }
    /* slots by first appearance of each name */
    r->slot = xmalloc((size_t)r->n * sizeof *r->slot);
    slot_map_init(&slots, r->n);
    for (int i = 0; i < r->n; i++) {
        int added;
        r->slot[i] = slot_map_get_or_add(&slots, s->names[i], &added);
    }
    r->num_symbols = slots.count;
    rc = 0;
out:
    slot_map_free(&slots);
    free(fields);
    free(line);
    fclose(f);
    if (rc) csv_stream_free(s);
    return rc;
}

void csv_stream_free(csv_stream_t *s)
{
    stream_free(&s->req);
    free(s->names);
    free(s->delay_ms);
    free(s->targets);
    memset(s, 0, sizeof *s);
}
