/* safetensors files: a read-only mmap view, and a streaming writer.
 * Format: u64 little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data. */
#ifndef STEPFUSE_SAFETENSORS_H
#define STEPFUSE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

/* Any other dtype name in a file is rejected with an error naming it. */
typedef enum { ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL
} st_dtype_t;

typedef struct {
    char *name;
    const char *path; /* the file it lives in, for messages */
    st_dtype_t dtype;
    char dtype_name[16]; /* as written in the file, for messages */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    uint64_t nbytes;
    const void *data; /* into the mapping; may be unaligned */
} st_tensor_t;

typedef struct {
    char *path;
    void *map;
    size_t map_len;
    st_tensor_t *tensors; /* in data order (ascending offsets) */
    int count;
    char **meta_keys, **meta_values; /* "__metadata__": string -> string */
    int meta_count;
} st_file_t;

size_t st_dtype_size(st_dtype_t t);
const char *st_dtype_name(st_dtype_t t);

/* Open and validate a file: header length, JSON, dtypes, shapes against byte counts,
 * offsets inside the file. Errors name the file (and the tensor where there is one). */
int st_open(const char *path, st_file_t *f, char *err);
void st_close(st_file_t *f);
const st_tensor_t *st_find(const st_file_t *f, const char *name);
const char *st_metadata(const st_file_t *f, const char *key); /* NULL when absent */

/* Copy a tensor's values out as float/double (from F32, F64 or BF16; I32 from I32, or
 * from I64 when every value fits). Errors name the file and the tensor. */
int st_read_f32(const st_tensor_t *t, float *dst, char *err);
int st_read_f64(const st_tensor_t *t, double *dst, char *err);
int st_read_i32(const st_tensor_t *t, int32_t *dst, char *err);

/* Streaming writer: declare every tensor up front, then write their data in the same
 * order, in as many pieces as convenient. The file appears at `path` atomically on
 * st_writer_close (written to a temporary name, then renamed). */
typedef struct st_writer st_writer_t;
typedef struct {
    const char *name;
    st_dtype_t dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
} st_decl_t;
typedef struct {
    const char *key, *value;
} st_meta_t;

/* The header is padded with spaces to a multiple of 8 bytes, so data starts 8-aligned. */
st_writer_t *st_writer_open(const char *path, const st_decl_t *decls, int count, char *err);
/* Same, with a "__metadata__" object of nmeta string pairs. */
st_writer_t *st_writer_open_meta(const char *path, const st_decl_t *decls, int count,
                                 const st_meta_t *meta, int nmeta, char *err);
int st_writer_write(st_writer_t *w, const void *data, size_t nbytes, char *err);
int st_writer_close(st_writer_t *w, char *err); /* also frees w; fails if data is short */
void st_writer_abort(st_writer_t *w);           /* removes the temporary file, frees w */

#endif
