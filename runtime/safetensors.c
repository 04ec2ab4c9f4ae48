/* safetensors reader (mmap + validation) and atomic streaming writer (see safetensors.h). */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* A header this large is not a tensor index but a corrupt length field. */
#define ST_HEADER_MAX (100u << 20)

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ST_F64] = {"F64", 8}, [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
};

size_t st_dtype_size(st_dtype_t t)
{
    return (unsigned)t < ARRAY_LEN(dtypes) ? dtypes[t].size : 0;
}

const char *st_dtype_name(st_dtype_t t)
{
    return (unsigned)t < ARRAY_LEN(dtypes) ? dtypes[t].name : "?";
}

static int dtype_from_name(const char *name, st_dtype_t *t)
{
    for (size_t i = 0; i < ARRAY_LEN(dtypes); i++)
        if (strcmp(dtypes[i].name, name) == 0) {
            *t = (st_dtype_t)i;
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------- reader */

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* A JSON integer >= 0, or -1. */
static int64_t json_nonneg(const json_t *v)
{
    if (!json_is_integer(v)) return -1;
    json_int_t i = json_integer_value(v);
    return i < 0 ? -1 : (int64_t)i;
}

/* Parse one header entry into t; data_len is the size of the data section. */
static int parse_entry(const char *path, const char *name, json_t *e, uint64_t data_len,
                       const unsigned char *data, st_tensor_t *t, char *err)
{
    if (!json_is_object(e)) return seterr(err, "%s: tensor '%s': entry is not an object", path, name);
    json_t *dtype = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape");
    json_t *offs = json_object_get(e, "data_offsets");
    if (!dtype || !shape || !offs)
        return seterr(err, "%s: tensor '%s': missing '%s'", path, name,
                      !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!json_is_string(dtype))
        return seterr(err, "%s: tensor '%s': dtype is not a string", path, name);
    if (dtype_from_name(json_string_value(dtype), &t->dtype))
        return seterr(err, "%s: tensor '%s': unknown dtype '%.32s'", path, name,
                      json_string_value(dtype));
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", st_dtype_name(t->dtype));

    if (!json_is_array(shape))
        return seterr(err, "%s: tensor '%s': shape is not an array", path, name);
    if (json_array_size(shape) > ST_MAX_DIMS)
        return seterr(err, "%s: tensor '%s': %zu dimensions, at most %d supported", path, name,
                      json_array_size(shape), ST_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    t->numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        int64_t d = json_nonneg(json_array_get(shape, (size_t)i));
        if (d < 0)
            return seterr(err, "%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                          name, i);
        if (d > 0 && t->numel > INT64_MAX / d)
            return seterr(err, "%s: tensor '%s': shape too large", path, name);
        t->shape[i] = d;
        t->numel *= d;
    }
    t->nbytes = (uint64_t)t->numel * st_dtype_size(t->dtype);
    if (t->nbytes / st_dtype_size(t->dtype) != (uint64_t)t->numel)
        return seterr(err, "%s: tensor '%s': shape too large", path, name);

    if (!json_is_array(offs) || json_array_size(offs) != 2)
        return seterr(err, "%s: tensor '%s': data_offsets is not an array [begin, end]", path, name);
    int64_t begin = json_nonneg(json_array_get(offs, 0)), end = json_nonneg(json_array_get(offs, 1));
    if (begin < 0 || end < 0)
        return seterr(err, "%s: tensor '%s': data_offsets are not non-negative integers", path,
                      name);
    if (end < begin)
        return seterr(err, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "]: end < begin",
                      path, name, begin, end);
    if ((uint64_t)end > data_len)
        return seterr(err,
                      "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64
                      "] beyond the %" PRIu64 "-byte data section (truncated file?)",
                      path, name, begin, end, data_len);
    if ((uint64_t)(end - begin) != t->nbytes)
        return seterr(err,
                      "%s: tensor '%s': data_offsets span %" PRId64 " bytes, but %s shape of %" PRId64
                      " elements needs %" PRIu64,
                      path, name, end - begin, t->dtype_name, t->numel, t->nbytes);
    t->data = data + begin;
    return 0;
}

static int parse_metadata(const char *path, json_t *m, st_file_t *f, char *err)
{
    if (!json_is_object(m)) return seterr(err, "%s: __metadata__ is not an object", path);
    size_t n = json_object_size(m);
    f->meta_keys = xcalloc(n, sizeof(char *));
    f->meta_values = xcalloc(n, sizeof(char *));
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        if (!json_is_string(v))
            return seterr(err, "%s: __metadata__ '%s' is not a string", path, key);
        f->meta_keys[f->meta_count] = strdup(key);
        f->meta_values[f->meta_count++] = strdup(json_string_value(v));
    }
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const st_tensor_t *x = a, *y = b;
    if (x->data != y->data) return (const char *)x->data < (const char *)y->data ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int parse_header(st_file_t *f, const char *json, size_t len, const unsigned char *data,
                        uint64_t data_len, char *err)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return seterr(err, "%s: header JSON line %d column %d: %s", f->path, je.line, je.column,
                      je.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = seterr(err, "%s: header JSON is not an object", f->path);
        goto out;
    }
    f->tensors = xcalloc(json_object_size(root), sizeof *f->tensors);
    const char *name;
    json_t *e;
    json_object_foreach(root, name, e) {
        if (strcmp(name, "__metadata__") == 0) {
            if ((rc = parse_metadata(f->path, e, f, err))) goto out;
            continue;
        }
        st_tensor_t *t = &f->tensors[f->count++];
        t->name = strdup(name);
        t->path = f->path;
        if ((rc = parse_entry(f->path, name, e, data_len, data, t, err))) goto out;
    }
    qsort(f->tensors, (size_t)f->count, sizeof *f->tensors, by_offset);
out:
    json_decref(root);
    return rc;
}

int st_open(const char *path, st_file_t *f, char *err)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return seterr(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        seterr(err, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (sb.st_size < 8) {
        close(fd);
        return seterr(err, "%s: %lld bytes, too short for a safetensors file (8-byte header length)",
                      path, (long long)sb.st_size);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd); /* the mapping keeps the file */
    if (map == MAP_FAILED) return seterr(err, "%s: cannot mmap: %s", path, strerror(errno));
    f->path = strdup(path);
    f->map = map;
    f->map_len = (size_t)sb.st_size;

    const unsigned char *bytes = map;
    uint64_t hlen = read_le64(bytes);
    if (hlen > f->map_len - 8) {
        seterr(err, "%s: header length %" PRIu64 " exceeds the file (%zu bytes)", path, hlen,
               f->map_len);
        goto fail;
    }
    if (hlen > ST_HEADER_MAX) {
        seterr(err, "%s: header length %" PRIu64 " is absurd (limit %u bytes)", path, hlen,
               ST_HEADER_MAX);
        goto fail;
    }
    if (parse_header(f, (const char *)bytes + 8, hlen, bytes + 8 + hlen, f->map_len - 8 - hlen,
                     err))
        goto fail;
    return 0;
fail:
    st_close(f);
    return -1;
}

void st_close(st_file_t *f)
{
    if (f->map) munmap(f->map, f->map_len);
    for (int i = 0; i < f->count; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->tensors);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const st_tensor_t *st_find(const st_file_t *f, const char *name)
{
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *st_metadata(const st_file_t *f, const char *key)
{
    for (int i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* Element i of a possibly unaligned little-endian array (the host is little-endian). */
static double load_f64(const void *base, int64_t i)
{
    double v;
    memcpy(&v, (const char *)base + 8 * i, sizeof v);
    return v;
}

static float load_f32(const void *base, int64_t i)
{
    float v;
    memcpy(&v, (const char *)base + 4 * i, sizeof v);
    return v;
}

static uint16_t load_u16(const void *base, int64_t i)
{
    uint16_t v;
    memcpy(&v, (const char *)base + 2 * i, sizeof v);
    return v;
}

static int64_t load_i64(const void *base, int64_t i)
{
    int64_t v;
    memcpy(&v, (const char *)base + 8 * i, sizeof v);
    return v;
}

static int cannot_read(const st_tensor_t *t, const char *as, char *err)
{
    return seterr(err, "%s: tensor '%s': dtype %s cannot be read as %s", t->path, t->name,
                  t->dtype_name, as);
}

int st_read_f32(const st_tensor_t *t, float *dst, char *err)
{
    switch (t->dtype) {
    case ST_F32: memcpy(dst, t->data, t->nbytes); return 0;
    case ST_F64:
        for (int64_t i = 0; i < t->numel; i++) dst[i] = (float)load_f64(t->data, i);
        return 0;
    case ST_BF16:
        for (int64_t i = 0; i < t->numel; i++) dst[i] = bf16_float(load_u16(t->data, i));
        return 0;
    default: return cannot_read(t, "f32", err);
    }
}

int st_read_f64(const st_tensor_t *t, double *dst, char *err)
{
    switch (t->dtype) {
    case ST_F64: memcpy(dst, t->data, t->nbytes); return 0;
    case ST_F32:
        for (int64_t i = 0; i < t->numel; i++) dst[i] = load_f32(t->data, i);
        return 0;
    case ST_BF16:
        for (int64_t i = 0; i < t->numel; i++) dst[i] = bf16_float(load_u16(t->data, i));
        return 0;
    default: return cannot_read(t, "f64", err);
    }
}

int st_read_i32(const st_tensor_t *t, int32_t *dst, char *err)
{
    switch (t->dtype) {
    case ST_I32: memcpy(dst, t->data, t->nbytes); return 0;
    case ST_I64:
        for (int64_t i = 0; i < t->numel; i++) {
            int64_t v = load_i64(t->data, i);
            if (v < INT32_MIN || v > INT32_MAX)
                return seterr(err, "%s: tensor '%s': element %" PRId64 " = %" PRId64
                              " does not fit in int32", t->path, t->name, i, v);
            dst[i] = (int32_t)v;
        }
        return 0;
    default: return cannot_read(t, "i32", err);
    }
}

/* ---------------------------------------------------------------- writer */

struct st_writer {
    FILE *fp;
    char *path, *tmp;
    char **names;   /* declared tensors, for messages */
    uint64_t *ends; /* end offset of each tensor in the data section */
    int count;
    uint64_t total, written;
};

static void writer_free(st_writer_t *w)
{
    for (int i = 0; i < w->count; i++) free(w->names[i]);
    free(w->names);
    free(w->ends);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* The header JSON for the declarations, or NULL with err set. */
static char *header_json(const char *path, const st_decl_t *decls, int count, const st_meta_t *meta,
                         int nmeta, uint64_t *ends, char *err)
{
    json_t *root = json_object();
    if (nmeta > 0) {
        json_t *m = json_object();
        for (int i = 0; i < nmeta; i++) json_object_set_new(m, meta[i].key, json_string(meta[i].value));
        json_object_set_new(root, "__metadata__", m);
    }
    uint64_t offset = 0;
    for (int i = 0; i < count; i++) {
        const st_decl_t *d = &decls[i];
        if (json_object_get(root, d->name) || strcmp(d->name, "__metadata__") == 0) {
            seterr(err, "%s: tensor '%s' declared twice", path, d->name);
            goto fail;
        }
        if (d->ndim < 0 || d->ndim > ST_MAX_DIMS || st_dtype_size(d->dtype) == 0) {
            seterr(err, "%s: tensor '%s': bad declaration (ndim %d, dtype %d)", path, d->name,
                   d->ndim, (int)d->dtype);
            goto fail;
        }
        json_t *shape = json_array();
        uint64_t n = st_dtype_size(d->dtype);
        for (int k = 0; k < d->ndim; k++) {
            if (d->shape[k] < 0) {
                json_decref(shape);
                seterr(err, "%s: tensor '%s': negative dimension", path, d->name);
                goto fail;
            }
            json_array_append_new(shape, json_integer(d->shape[k]));
            n *= (uint64_t)d->shape[k];
        }
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(st_dtype_name(d->dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[II]", (json_int_t)offset, (json_int_t)(offset + n)));
        json_object_set_new(root, d->name, e);
        offset += n;
        ends[i] = offset;
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
fail:
    json_decref(root);
    return NULL;
}

st_writer_t *st_writer_open(const char *path, const st_decl_t *decls, int count, char *err)
{
    return st_writer_open_meta(path, decls, count, NULL, 0, err);
}

st_writer_t *st_writer_open_meta(const char *path, const st_decl_t *decls, int count,
                                 const st_meta_t *meta, int nmeta, char *err)
{
    static atomic_int serial;
    st_writer_t *w = xcalloc(1, sizeof *w);
    w->ends = xcalloc((size_t)count, sizeof *w->ends);
    char *json = header_json(path, decls, count, meta, nmeta, w->ends, err);
    if (!json) {
        writer_free(w);
        return NULL;
    }
    w->names = xcalloc((size_t)count, sizeof *w->names);
    for (w->count = 0; w->count < count; w->count++) w->names[w->count] = strdup(decls[w->count].name);
    w->total = count ? w->ends[count - 1] : 0;
    w->path = strdup(path);
    w->tmp = xmalloc(strlen(path) + 64);
    sprintf(w->tmp, "%s.tmp.%d.%d", path, (int)getpid(), atomic_fetch_add(&serial, 1));

    /* Pad with spaces so the data section starts 8-byte aligned. */
    size_t jlen = strlen(json), hlen = (jlen + 7) & ~(size_t)7;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    w->fp = fopen(w->tmp, "wb");
    if (!w->fp) {
        seterr(err, "%s: cannot create %s: %s", path, w->tmp, strerror(errno));
        free(json);
        writer_free(w);
        return NULL;
    }
    setvbuf(w->fp, NULL, _IOFBF, 1 << 20);
    fwrite(len8, 1, 8, w->fp);
    fwrite(json, 1, jlen, w->fp);
    for (size_t i = jlen; i < hlen; i++) fputc(' ', w->fp);
    free(json);
    if (ferror(w->fp)) {
        seterr(err, "%s: write failed: %s", w->tmp, strerror(errno));
        st_writer_abort(w);
        return NULL;
    }
    return w;
}

/* The tensor that holds data byte `at`, for messages. */
static const char *tensor_at(const st_writer_t *w, uint64_t at)
{
    for (int i = 0; i < w->count; i++)
        if (w->ends[i] > at) return w->names[i];
    return "?";
}

int st_writer_write(st_writer_t *w, const void *data, size_t nbytes, char *err)
{
    if (nbytes > w->total - w->written)
        return seterr(err, "%s: %zu more bytes than the %" PRIu64 " declared", w->path,
                      (size_t)(nbytes - (w->total - w->written)), w->total);
    if (fwrite(data, 1, nbytes, w->fp) != nbytes)
        return seterr(err, "%s: write failed in tensor '%s': %s", w->tmp,
                      tensor_at(w, w->written), strerror(errno));
    w->written += nbytes;
    return 0;
}

/* Make the rename itself durable. */
static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int st_writer_close(st_writer_t *w, char *err)
{
    if (w->written < w->total) {
        seterr(err, "%s: only %" PRIu64 " of %" PRIu64 " data bytes written (tensor '%s' incomplete)",
               w->path, w->written, w->total, tensor_at(w, w->written));
        st_writer_abort(w);
        return -1;
    }
    if (fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0) {
        seterr(err, "%s: write failed: %s", w->tmp, strerror(errno));
        st_writer_abort(w);
        return -1;
    }
    int rc = fclose(w->fp);
    w->fp = NULL;
    if (rc != 0) {
        seterr(err, "%s: close failed: %s", w->tmp, strerror(errno));
        st_writer_abort(w);
        return -1;
    }
    if (rename(w->tmp, w->path) != 0) {
        seterr(err, "%s: cannot rename to %s: %s", w->tmp, w->path, strerror(errno));
        st_writer_abort(w);
        return -1;
    }
    sync_dir(w->path);
    writer_free(w);
    return 0;
}

void st_writer_abort(st_writer_t *w)
{
    if (!w) return;
    if (w->fp) fclose(w->fp);
    unlink(w->tmp);
    writer_free(w);
}
