#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define MAGIC "SFSTATE1"
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

typedef struct {
    char magic[8];
    char spec_name[SPEC_NAME_MAX];
    uint64_t spec_hash, weights_hash, state_bytes;
    uint32_t count, zero;
} header_t;

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

void model_identity(const spec_t *s, const weights_t *w, model_identity_t *id)
{
    memset(id, 0, sizeof *id);
    snprintf(id->spec_name, sizeof id->spec_name, "%s", s->name);
    char dims[512];
    int n = snprintf(dims, sizeof dims,
                     "H=%d P=%d L=%d NH=%d F=%d mamba2=%d,%d,%d,%d retnet=%d hawk=%d,%.17g,%d "
                     "xlstm=%d,%d,%d,%d,%d precision=%d,%d",
                     s->hidden_size, s->proj_size, s->tower_depth, s->num_heads,
                     s->num_features, s->mamba2.head_size, s->mamba2.bc_head_size,
                     s->mamba2.conv_kernel, s->mamba2.expand, s->retnet.num_heads,
                     s->hawk.num_blocks, s->hawk.c, s->hawk.conv_kernel,
                     s->xlstm.mlstm_num_heads, s->xlstm.slstm_num_heads, s->xlstm.expand,
                     s->xlstm.qkv_block_size, s->xlstm.conv_kernel, (int)s->precision.weights,
                     (int)s->precision.state);
    /* a write-back period changes the slot's layout; without one the hash is as before it */
    if (s->state.writeback > 1) n += snprintf(dims + n, sizeof dims - (size_t)n, " writeback=%d", s->state.writeback);
    id->spec_hash = fnv(FNV_OFFSET, dims, (size_t)n);
    /* Hashing every value of a multi-GB checkpoint would delay each start by seconds; up
     * to 4096 evenly spaced values per tensor tell any two checkpoints or seeds apart. */
    uint64_t h = FNV_OFFSET;
    for (int t = 0; t < w->cat.count; t++) {
        const tensor_desc_t *d = &w->cat.t[t];
        h = fnv(h, d->name, strlen(d->name));
        h = fnv(h, &d->numel, sizeof d->numel);
        int64_t stride = d->numel > 4096 ? d->numel / 4096 : 1;
        for (int64_t i = 0; i < d->numel; i += stride) h = fnv(h, &w->data[t][i], sizeof(float));
        h = fnv(h, &w->data[t][d->numel - 1], sizeof(float));
    }
    id->weights_hash = h;
}

/* fwrite that also feeds the checksum */
static int put(FILE *f, uint64_t *sum, const void *p, size_t n)
{
    *sum = fnv(*sum, p, n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int get(FILE *f, uint64_t *sum, void *p, size_t n)
{
    if (fread(p, 1, n, f) != n) return -1;
    *sum = fnv(*sum, p, n);
    return 0;
}

static void fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int snapshot_capture(engine_t *e, const slot_map_t *map, snapshot_image_t *img, char *err)
{
    img->count = map->count;
    img->state_bytes = e->ops->state_bytes(e);
    img->names = xmalloc((size_t)(map->count ? map->count : 1) * sizeof *img->names);
    memcpy(img->names, map->names, (size_t)map->count * sizeof *img->names);
    img->states = xmalloc((size_t)(map->count ? map->count : 1) * img->state_bytes);
    for (int s = 0; s < map->count; s++)
        if (e->ops->save_slot(e, s, img->states + (size_t)s * img->state_bytes, err)) {
            snapshot_image_free(img);
            return -1;
        }
    return 0;
}

void snapshot_image_free(snapshot_image_t *img)
{
    free(img->names);
    free(img->states);
    memset(img, 0, sizeof *img);
}

int snapshot_write(const char *path, const model_identity_t *id, const snapshot_image_t *img,
                   char *err)
{
    size_t tmp_len = strlen(path) + 32;
    char *tmp = xmalloc(tmp_len);
    snprintf(tmp, tmp_len, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        seterr(err, "%s: cannot write: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    header_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, 8);
    memcpy(h.spec_name, id->spec_name, SPEC_NAME_MAX);
    h.spec_hash = id->spec_hash;
    h.weights_hash = id->weights_hash;
    h.state_bytes = img->state_bytes;
    h.count = (uint32_t)img->count;
    uint64_t sum = FNV_OFFSET;
    int bad = put(f, &sum, &h, sizeof h) ||
              put(f, &sum, img->names, (size_t)img->count * sizeof *img->names) ||
              put(f, &sum, img->states, (size_t)img->count * img->state_bytes);
    uint64_t final_sum = sum;
    bad = bad || put(f, &sum, &final_sum, sizeof final_sum) || fflush(f) || fsync(fileno(f));
    int saved_errno = errno;
    if (fclose(f)) bad = 1;
    if (bad || rename(tmp, path)) {
        if (!bad) saved_errno = errno;
        seterr(err, "%s: cannot write state file: %s", path, strerror(saved_errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    fsync_dir_of(path);
    return 0;
}

int snapshot_save(const char *path, const model_identity_t *id, engine_t *e,
                  const slot_map_t *map, char *err)
{
    snapshot_image_t img;
    if (snapshot_capture(e, map, &img, err)) return -1;
    int rc = snapshot_write(path, id, &img, err);
    snapshot_image_free(&img);
    return rc;
}

int snapshot_load(const char *path, const model_identity_t *id, engine_t *e, slot_map_t *map,
                  char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        return seterr(err, "%s: cannot read state file: %s", path, strerror(errno));
    }
    header_t h;
    uint64_t sum = FNV_OFFSET;
    int rc = -1;
    void *buf = NULL;
    char (*names)[PROTO_SYMBOL_MAX] = NULL;
    size_t want_bytes = e->ops->state_bytes(e);
    if (get(f, &sum, &h, sizeof h) || memcmp(h.magic, MAGIC, 8)) {
        seterr(err, "%s: not a stepfuse state file (bad magic or too short)", path);
        goto out;
    }
    h.spec_name[SPEC_NAME_MAX - 1] = '\0';
    if (h.spec_hash != id->spec_hash || strcmp(h.spec_name, id->spec_name)) {
        seterr(err, "%s: made for spec '%s' (dimension hash %016llx), not for this spec '%s' "
                    "(%016llx); refusing it (move it away to start fresh)",
               path, h.spec_name, (unsigned long long)h.spec_hash, id->spec_name,
               (unsigned long long)id->spec_hash);
        goto out;
    }
    if (h.weights_hash != id->weights_hash) {
        seterr(err, "%s: made with other weights (hash %016llx, these are %016llx); refusing "
                    "it (move it away to start fresh)",
               path, (unsigned long long)h.weights_hash, (unsigned long long)id->weights_hash);
        goto out;
    }
    if (h.state_bytes != want_bytes) {
        seterr(err, "%s: %llu state bytes per slot, this engine has %zu", path,
               (unsigned long long)h.state_bytes, want_bytes);
        goto out;
    }
    if ((int64_t)h.count > map->capacity) {
        seterr(err, "%s: holds %u symbols, this engine has only %d slots (max_symbols)", path,
               h.count, map->capacity);
        goto out;
    }
    names = xcalloc(h.count ? h.count : 1, sizeof *names);
    if (get(f, &sum, names, h.count * sizeof *names)) {
        seterr(err, "%s: truncated (symbol names)", path);
        goto out;
    }
    buf = xmalloc(want_bytes);
    for (uint32_t s = 0; s < h.count; s++) {
        names[s][PROTO_SYMBOL_MAX - 1] = '\0';
        if (get(f, &sum, buf, want_bytes)) {
            seterr(err, "%s: truncated (state of slot %u)", path, s);
            goto out;
        }
        if (e->ops->load_slot(e, (int)s, buf, err)) goto out;
    }
    uint64_t stored;
    if (fread(&stored, sizeof stored, 1, f) != 1 || stored != sum) {
        seterr(err, "%s: checksum mismatch (file corrupt or truncated)", path);
        goto out;
    }
    slot_map_clear(map);
    for (uint32_t s = 0; s < h.count; s++) {
        int added;
        slot_map_get_or_add(map, names[s], &added);
    }
    rc = 1;
out:
    free(buf);
    free(names);
    fclose(f);
    return rc;
}
