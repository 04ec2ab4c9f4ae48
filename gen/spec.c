/* Spec parsing and validation with libyaml.
 *
 * The file is loaded as a libyaml node tree. Every mapping has a table of keys ->
 * handlers (unknown keys are errors); the table says which node type each value must
 * be, and its handler checks the value and records where it was written. The dimension
 * checks run once the whole file is read, on the spec with its defaults resolved, and
 * point at the value the user has to change. */
#include "spec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Upper bound of every size: keeps all products (expand * H * ...) far inside int64. */
#define SIZE_LIMIT (1 << 20)
#define EXPAND_LIMIT 16
/* A state task loads its whole log into registers before staging it (StateStream::stage_log):
 * 7 steps of it at 8, the period measured (notes/gpu.md, runs 213-217). */
#define WRITEBACK_LIMIT 8
/* A spec is a few KiB; libyaml takes quadratic time on deeply nested flow collections,
 * so a bound on the size bounds the time a malformed file can take. */
#define SPEC_TEXT_LIMIT (64 << 10)
#define MAX_FIELDS 32

typedef struct {
    size_t field;     /* offset in spec_t */
    yaml_mark_t mark; /* start of its value */
} field_mark_t;

typedef struct {
    const char *path, *text;
    size_t len;
    char *err;
    yaml_document_t doc;
    spec_t spec;
    field_mark_t marks[MAX_FIELDS];
    int nmarks;
} ctx_t;

typedef struct entry entry_t;
typedef struct mapping mapping_t;

/* What a key's value is: the node type it must be, how to say so, how to read it. */
typedef struct {
    yaml_node_type_t node_type;
    const char *expected;
    int (*parse)(ctx_t *c, const entry_t *e, const char *name, yaml_node_t *value);
} kind_t;

struct entry {
    const char *key;
    const kind_t *kind;
    size_t field;             /* offset in spec_t (scalar kinds) */
    int min, max;             /* integer range */
    const mapping_t *section; /* nested mapping */
    int required;
};

struct mapping {
    const char *name; /* qualifies keys in messages ("mamba2.head_size"); NULL at top level */
    const entry_t *entries;
    size_t count;
};

/* ---- errors ---- */

/* "path:line:col: message" and the quoted source line; marks are 0-based. */
__attribute__((format(printf, 3, 4))) static int fail(ctx_t *c, yaml_mark_t at,
                                                      const char *fmt, ...)
{
    char msg[SPEC_ERR_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    const char *line = c->text, *end = c->text + c->len;
    for (size_t i = 0; i < at.line && line < end; i++) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        line = nl ? nl + 1 : end;
    }
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol) eol = end;
    if (eol > line && eol[-1] == '\r') eol--;
    snprintf(c->err, SPEC_ERR_MAX, "%s:%zu:%zu: %s\n  | %.*s", c->path, at.line + 1,
             at.column + 1, msg, (int)(eol - line), line);
    return -1;
}

/* libyaml reports reader errors (bad encoding) as a byte offset only. */
static yaml_mark_t mark_at_offset(const ctx_t *c, size_t offset)
{
    yaml_mark_t m = {0};
    for (size_t i = 0; i < offset && i < c->len; i++) {
        if (c->text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)c->text[i] & 0xC0) != 0x80) {
            m.column++; /* columns count characters, not UTF-8 continuation bytes */
        }
    }
    return m;
}

/* How a node reads in a message: "a mapping", "'2.5'", "the string \"64\"". */
static const char *describe(const yaml_node_t *n, char *buf, size_t size)
{
    if (n->type == YAML_MAPPING_NODE) return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE) return "a sequence";
    const char *v = (const char *)n->data.scalar.value;
    int plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (plain && n->data.scalar.length == 0) return "an empty value";
    snprintf(buf, size, plain ? "'%.40s'" : "the string \"%.40s\"", v);
    return buf;
}

/* ---- values ---- */

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int *int_field(spec_t *s, size_t field) { return (int *)((char *)s + field); }

static int int_value(const spec_t *s, size_t field)
{
    return *(const int *)((const char *)s + field);
}

static void record(ctx_t *c, size_t field, yaml_mark_t mark)
{
    if (c->nmarks < MAX_FIELDS) c->marks[c->nmarks++] = (field_mark_t){field, mark};
}

static const yaml_mark_t *mark_of(const ctx_t *c, size_t field)
{
    for (int i = 0; i < c->nmarks; i++)
        if (c->marks[i].field == field) return &c->marks[i].mark;
    return NULL;
}

static int wrong_type(ctx_t *c, const char *name, const char *expected, yaml_node_t *v)
{
    char buf[64];
    return fail(c, v->start_mark, "%s must be %s, got %s", name, expected,
                describe(v, buf, sizeof buf));
}

/* A plain decimal integer: optional '-', digits, no leading zeros (YAML 1.1 reads
 * 010 as octal), no quotes. */
static int parse_int(ctx_t *c, const entry_t *e, const char *name, yaml_node_t *v)
{
    const char *s = scalar(v), *digits = s + (s[0] == '-');
    size_t n = strlen(digits);
    if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || n == 0 ||
        strspn(digits, "0123456789") != n || (digits[0] == '0' && n > 1))
        return wrong_type(c, name, e->kind->expected, v);
    errno = 0;
    long x = strtol(s, NULL, 10);
    if (errno == ERANGE || x < e->min || x > e->max)
        return fail(c, v->start_mark, "%s must be between %d and %d, got %s", name, e->min,
                    e->max, s);
    *int_field(&c->spec, e->field) = (int)x;
    record(c, e->field, v->start_mark);
    return 0;
}

/* A finite decimal number > 0 (hawk.c, the exponent scale of the RG-LRU). */
static int parse_positive(ctx_t *c, const entry_t *e, const char *name, yaml_node_t *v)
{
    const char *s = scalar(v);
    char *end;
    size_t n = strlen(s);
    if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || n == 0 ||
        strspn(s, "0123456789.eE+-") != n)
        return wrong_type(c, name, e->kind->expected, v);
    errno = 0;
    double x = strtod(s, &end);
    if (*end != '\0') return wrong_type(c, name, e->kind->expected, v);
    if (errno == ERANGE || !isfinite(x) || !(x > 0))
        return fail(c, v->start_mark, "%s must be a finite number > 0, got %s", name, s);
    *(double *)((char *)&c->spec + e->field) = x;
    record(c, e->field, v->start_mark);
    return 0;
}

/* A precision of those the kind names; the state has no fp16 form. */
static int parse_precision(ctx_t *c, const entry_t *e, const char *name, yaml_node_t *v)
{
    precision_t p;
    const int state = e->field == offsetof(spec_t, precision.state);
    if (!precision_parse(scalar(v), &p) && !(state && p == PRECISION_FP16)) {
        *(precision_t *)((char *)&c->spec + e->field) = p;
        record(c, e->field, v->start_mark);
        return 0;
    }
    return wrong_type(c, name, e->kind->expected, v);
}

/* The towers are fixed; the key only documents (and pins) the output order. */
static int parse_towers(ctx_t *c, const entry_t *e, const char *name, yaml_node_t *v)
{
    static const char *order[NUM_TOWERS] = {"xlstm", "mamba2", "retnet", "hawk"};
    const char *want = "exactly [xlstm, mamba2, retnet, hawk] (the model's output order)";
    yaml_node_item_t *items = v->data.sequence.items.start;
    size_t n = (size_t)(v->data.sequence.items.top - items);
    char buf[64];
    (void)e;
    for (size_t i = 0; i < n && i < NUM_TOWERS; i++) {
        yaml_node_t *item = yaml_document_get_node(&c->doc, items[i]);
        if (item->type != YAML_SCALAR_NODE || strcmp(scalar(item), order[i]) != 0)
            return fail(c, item->start_mark, "%s must be %s: item %zu is %s, expected %s", name,
                        want, i + 1, describe(item, buf, sizeof buf), order[i]);
    }
    if (n < NUM_TOWERS)
        return fail(c, v->start_mark, "%s must be %s: %s is missing", name, want, order[n]);
    if (n > NUM_TOWERS) {
        yaml_node_t *extra = yaml_document_get_node(&c->doc, items[NUM_TOWERS]);
        return fail(c, extra->start_mark, "%s must be %s: unexpected item %s", name, want,
                    describe(extra, buf, sizeof buf));
    }
    return 0;
}

static int parse_mapping(ctx_t *c, const mapping_t *m, yaml_node_t *node);

static int parse_section(ctx_t *c, const entry_t *e, const char *name, yaml_node_t *v)
{
    (void)name;
    return parse_mapping(c, e->section, v);
}

static const kind_t INTEGER = {YAML_SCALAR_NODE, "a decimal integer", parse_int};
static const kind_t POSITIVE = {YAML_SCALAR_NODE, "a number", parse_positive};
static const kind_t WEIGHTS_PRECISION = {YAML_SCALAR_NODE, "fp32, bf16 or fp16", parse_precision};
static const kind_t STATE_PRECISION = {YAML_SCALAR_NODE, "fp32 or bf16", parse_precision};
static const kind_t TOWERS = {YAML_SEQUENCE_NODE, "a sequence", parse_towers};
static const kind_t SECTION = {YAML_MAPPING_NODE, "a mapping", parse_section};

/* ---- key tables ---- */

#define SIZE(key, member) {key, &INTEGER, offsetof(spec_t, member), 1, SIZE_LIMIT, NULL, 0}
#define EXPAND(key, member) {key, &INTEGER, offsetof(spec_t, member), 1, EXPAND_LIMIT, NULL, 0}
#define CONV(key, member) {key, &INTEGER, offsetof(spec_t, member), 2, 8, NULL, 0}
#define REQUIRED(key, member) {key, &INTEGER, offsetof(spec_t, member), 1, SIZE_LIMIT, NULL, 1}
#define MAPPING(name, entries) {name, entries, sizeof entries / sizeof entries[0]}

static const entry_t mamba2_keys[] = {
    SIZE("head_size", mamba2.head_size),
    SIZE("bc_head_size", mamba2.bc_head_size),
    CONV("conv_kernel", mamba2.conv_kernel),
    EXPAND("expand", mamba2.expand),
};
static const entry_t retnet_keys[] = {
    SIZE("num_heads", retnet.num_heads),
};
static const entry_t hawk_keys[] = {
    SIZE("num_blocks", hawk.num_blocks),
    {"c", &POSITIVE, offsetof(spec_t, hawk.c), 0, 0, NULL, 0},
    CONV("conv_kernel", hawk.conv_kernel),
};
static const entry_t xlstm_keys[] = {
    SIZE("mlstm_num_heads", xlstm.mlstm_num_heads),
    SIZE("slstm_num_heads", xlstm.slstm_num_heads),
    EXPAND("expand", xlstm.expand),
    SIZE("qkv_block_size", xlstm.qkv_block_size),
    CONV("conv_kernel", xlstm.conv_kernel),
};
static const entry_t precision_keys[] = {
    {"weights", &WEIGHTS_PRECISION, offsetof(spec_t, precision.weights), 0, 0, NULL, 0},
    {"state", &STATE_PRECISION, offsetof(spec_t, precision.state), 0, 0, NULL, 0},
};
static const entry_t state_keys[] = {
    {"writeback", &INTEGER, offsetof(spec_t, state.writeback), 1, WRITEBACK_LIMIT, NULL, 0},
};
static const entry_t batch_keys[] = {
    SIZE("max_batch", batch.max_batch),
    SIZE("max_symbols", batch.max_symbols),
};

static const mapping_t mamba2_map = MAPPING("mamba2", mamba2_keys);
static const mapping_t retnet_map = MAPPING("retnet", retnet_keys);
static const mapping_t hawk_map = MAPPING("hawk", hawk_keys);
static const mapping_t xlstm_map = MAPPING("xlstm", xlstm_keys);
static const mapping_t precision_map = MAPPING("precision", precision_keys);
static const mapping_t state_map = MAPPING("state", state_keys);
static const mapping_t batch_map = MAPPING("batch", batch_keys);

static const entry_t top_keys[] = {
    REQUIRED("hidden_size", hidden_size),
    REQUIRED("proj_size", proj_size),
    REQUIRED("tower_depth", tower_depth),
    REQUIRED("num_heads", num_heads),
    REQUIRED("num_features", num_features),
    {"mamba2", &SECTION, 0, 0, 0, &mamba2_map, 0},
    {"retnet", &SECTION, 0, 0, 0, &retnet_map, 0},
    {"hawk", &SECTION, 0, 0, 0, &hawk_map, 0},
    {"xlstm", &SECTION, 0, 0, 0, &xlstm_map, 0},
    {"towers", &TOWERS, 0, 0, 0, NULL, 0},
    {"precision", &SECTION, 0, 0, 0, &precision_map, 0},
    {"state", &SECTION, 0, 0, 0, &state_map, 0},
    {"batch", &SECTION, 0, 0, 0, &batch_map, 0},
};
static const mapping_t top_map = MAPPING(NULL, top_keys);

static void qualify(const mapping_t *m, const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s", m->name ? m->name : "", m->name ? "." : "", key);
}

static int unknown_key(ctx_t *c, const mapping_t *m, const char *key, yaml_mark_t at)
{
    char allowed[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < m->count && used < sizeof allowed; i++)
        used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", i ? ", " : "",
                                 m->entries[i].key);
    return fail(c, at, "unknown key '%.64s'%s%s (allowed: %s)", key, m->name ? " in " : "",
                m->name ? m->name : "", allowed);
}

static int parse_mapping(ctx_t *c, const mapping_t *m, yaml_node_t *node)
{
    yaml_node_pair_t *pairs = node->data.mapping.pairs.start;
    size_t n = (size_t)(node->data.mapping.pairs.top - pairs);
    char name[96], buf[64];

    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k = yaml_document_get_node(&c->doc, pairs[i].key);
        yaml_node_t *v = yaml_document_get_node(&c->doc, pairs[i].value);
        if (k->type != YAML_SCALAR_NODE)
            return fail(c, k->start_mark, "keys must be names, got %s",
                        describe(k, buf, sizeof buf));
        for (size_t j = 0; j < i; j++) {
            yaml_node_t *prev = yaml_document_get_node(&c->doc, pairs[j].key);
            if (prev->type == YAML_SCALAR_NODE && strcmp(scalar(prev), scalar(k)) == 0) {
                qualify(m, scalar(k), name, sizeof name);
                return fail(c, k->start_mark, "duplicate key '%s' (first set on line %zu)", name,
                            prev->start_mark.line + 1);
            }
        }
        const entry_t *e = NULL;
        for (size_t j = 0; j < m->count && !e; j++)
            if (strcmp(m->entries[j].key, scalar(k)) == 0) e = &m->entries[j];
        if (!e) return unknown_key(c, m, scalar(k), k->start_mark);
        qualify(m, e->key, name, sizeof name);
        if (v->type != e->kind->node_type) return wrong_type(c, name, e->kind->expected, v);
        if (e->kind->parse(c, e, name, v)) return -1;
    }

    for (size_t j = 0; j < m->count; j++) {
        int present = 0;
        for (size_t i = 0; i < n && !present; i++)
            present = strcmp(scalar(yaml_document_get_node(&c->doc, pairs[i].key)),
                             m->entries[j].key) == 0;
        if (m->entries[j].required && !present) {
            qualify(m, m->entries[j].key, name, sizeof name);
            return fail(c, node->start_mark, "missing required key '%s'", name);
        }
    }
    return 0;
}

/* ---- dimension constraints (../shared/MODEL.md) ---- */

/* Head counts left out of the file default to a function of num_heads (spec_derive). */
static const struct {
    size_t field;
    const char *rule;
} head_defaults[] = {
    {offsetof(spec_t, retnet.num_heads), "num_heads"},
    {offsetof(spec_t, xlstm.mlstm_num_heads), "num_heads"},
    {offsetof(spec_t, xlstm.slstm_num_heads), "max(1, num_heads / 2)"},
};

/* Where to point for a constraint on `field`: its value in the file; if it was left to
 * its default, the key that default comes from (num_heads, or hidden_size for the fixed
 * defaults), with a note saying so. */
static yaml_mark_t locate(const ctx_t *c, const spec_t *r, size_t field, const char *name,
                          char *note, size_t size)
{
    const yaml_mark_t *m = mark_of(c, field);
    note[0] = '\0';
    if (m) return *m;
    for (size_t i = 0; i < sizeof head_defaults / sizeof head_defaults[0]; i++) {
        if (head_defaults[i].field == field) {
            snprintf(note, size, "; %s defaults to %s = %d", name, head_defaults[i].rule,
                     int_value(r, field));
            return *mark_of(c, offsetof(spec_t, num_heads));
        }
    }
    snprintf(note, size, "; %s is %d by default", name, int_value(r, field));
    return *mark_of(c, offsetof(spec_t, hidden_size));
}

/* The value of `field` (named `name`) must divide `dividend` (described by `what`). */
static int check_divides(ctx_t *c, const spec_t *r, size_t field, const char *name,
                         int dividend, const char *what)
{
    int divisor = int_value(r, field);
    if (dividend % divisor == 0) return 0;
    char note[128];
    yaml_mark_t at = locate(c, r, field, name, note, sizeof note);
    return fail(c, at, "%s must divide %s (%d %% %d = %d%s)", name, what, dividend, divisor,
                dividend % divisor, note);
}

static int check_dims(ctx_t *c, const spec_t *r)
{
    const int H = r->hidden_size;
    char note[128];
    if (check_divides(c, r, offsetof(spec_t, num_heads), "num_heads", H, "hidden_size") ||
        check_divides(c, r, offsetof(spec_t, retnet.num_heads), "retnet.num_heads", H,
                      "hidden_size"))
        return -1;
    if (r->d.retnet_head % 2 != 0) { /* the rotation acts on pairs of elements */
        size_t field = offsetof(spec_t, retnet.num_heads);
        yaml_mark_t at = locate(c, r, field, "retnet.num_heads", note, sizeof note);
        return fail(c, at,
                    "the RetNet head size hidden_size / retnet.num_heads must be even "
                    "(%d / %d = %d%s)",
                    H, r->retnet.num_heads, r->d.retnet_head, note);
    }
    if (check_divides(c, r, offsetof(spec_t, xlstm.slstm_num_heads), "xlstm.slstm_num_heads",
                      H, "hidden_size") ||
        check_divides(c, r, offsetof(spec_t, xlstm.mlstm_num_heads), "xlstm.mlstm_num_heads",
                      r->d.mlstm_inner, "the mLSTM inner size xlstm.expand * hidden_size") ||
        check_divides(c, r, offsetof(spec_t, xlstm.qkv_block_size), "xlstm.qkv_block_size",
                      r->d.mlstm_inner, "the mLSTM inner size xlstm.expand * hidden_size") ||
        check_divides(c, r, offsetof(spec_t, mamba2.head_size), "mamba2.head_size",
                      r->d.mamba_inner, "the Mamba2 inner size mamba2.expand * hidden_size") ||
        check_divides(c, r, offsetof(spec_t, hawk.num_blocks), "hawk.num_blocks", H,
                      "hidden_size"))
        return -1;
    return 0;
}

/* ---- entry points ---- */

/* The spec's name: the file's basename without .yaml; it names generated files. */
static int set_name(const char *path, spec_t *s, char *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".yaml") == 0) n -= 5;
    if (n == 0 || n >= SPEC_NAME_MAX) {
        snprintf(err, SPEC_ERR_MAX,
                 "%s: the spec name (file name without .yaml) must have 1 to %d characters", path,
                 SPEC_NAME_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = base[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-')) {
            snprintf(err, SPEC_ERR_MAX,
                     "%s: the spec name '%.*s' names generated files: use only letters, "
                     "digits, '_' and '-'",
                     path, (int)n, base);
            return -1;
        }
    }
    memcpy(s->name, base, n);
    s->name[n] = '\0';
    return 0;
}

static int syntax_error(ctx_t *c, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) {
        snprintf(c->err, SPEC_ERR_MAX, "%s: out of memory while parsing", c->path);
        return -1;
    }
    yaml_mark_t at = p->error == YAML_READER_ERROR ? mark_at_offset(c, p->problem_offset)
                                                   : p->problem_mark;
    if (p->context)
        return fail(c, at, "YAML syntax error: %s %s", p->context, p->problem);
    return fail(c, at, "YAML syntax error: %s", p->problem ? p->problem : "unknown problem");
}

static int parse_document(ctx_t *c, yaml_parser_t *p)
{
    char buf[64];
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    if (!root)
        return fail(c, c->doc.start_mark,
                    "empty spec: expected a mapping with hidden_size, proj_size, tower_depth, "
                    "num_heads and num_features");
    if (root->type != YAML_MAPPING_NODE)
        return fail(c, root->start_mark, "a spec must be a mapping of keys, got %s",
                    describe(root, buf, sizeof buf));
    if (parse_mapping(c, &top_map, root)) return -1;

    yaml_document_t next;
    if (!yaml_parser_load(p, &next)) return syntax_error(c, p);
    yaml_node_t *next_root = yaml_document_get_root_node(&next);
    yaml_mark_t at = next.start_mark;
    yaml_document_delete(&next);
    if (next_root) return fail(c, at, "a spec is one YAML document, but a second one starts here");

    spec_t r = c->spec;
    spec_derive(&r); /* resolves the head-count defaults; every divisor is >= 1 here */
    if (check_dims(c, &r)) return -1;
    c->spec = r;
    return 0;
}

int spec_parse(const char *text, size_t len, const char *path, spec_t *out, char *err)
{
    ctx_t c = {.path = path, .text = text, .len = len, .err = err};
    spec_set_defaults(&c.spec);
    if (set_name(path, &c.spec, err)) return -1;
    if (len > SPEC_TEXT_LIMIT) {
        snprintf(err, SPEC_ERR_MAX, "%s: spec is larger than %d bytes", path, SPEC_TEXT_LIMIT);
        return -1;
    }

    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        snprintf(err, SPEC_ERR_MAX, "%s: out of memory while parsing", path);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc;
    if (!yaml_parser_load(&p, &c.doc)) {
        rc = syntax_error(&c, &p); /* libyaml has already freed the document */
    } else {
        rc = parse_document(&c, &p);
        yaml_document_delete(&c.doc);
    }
    yaml_parser_delete(&p);
    if (rc == 0) *out = c.spec;
    return rc;
}

int spec_load(const char *path, spec_t *out, char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, SPEC_ERR_MAX, "%s: cannot open spec: %s", path, strerror(errno));
        return -1;
    }
    /* one byte over the limit is enough for spec_parse to reject a longer file */
    char *text = malloc(SPEC_TEXT_LIMIT + 1);
    size_t len = text ? fread(text, 1, SPEC_TEXT_LIMIT + 1, f) : 0;
    int failed = !text || ferror(f);
    fclose(f);
    int rc = -1;
    if (failed)
        snprintf(err, SPEC_ERR_MAX, "%s: cannot read spec", path);
    else
        rc = spec_parse(text, len, path, out, err);
    free(text);
    return rc;
}
