/* State files: every used slot's state plus the symbol -> slot map, so a restarted client
 * continues exactly where it stopped (bit-identical outputs).
 *
 * Layout (host byte order): magic "SFSTATE1"; spec name [64]; u64 spec hash, weights hash,
 * state bytes per slot; u32 slot count, u32 zero; count symbol names [16]; count states;
 * u64 FNV-1a checksum of everything before it. Written to a temporary file, fsync'ed and
 * renamed over the old one, so a crash leaves either the old or the new file. */
#ifndef STEPFUSE_SNAPSHOT_H
#define STEPFUSE_SNAPSHOT_H

#include <stdint.h>

#include "engine.h"
#include "slot_map.h"
#include "spec.h"
#include "weights.h"

typedef struct {
    char spec_name[SPEC_NAME_MAX];
    uint64_t spec_hash;    /* every dimension and precision of the spec */
    uint64_t weights_hash; /* tensor names, sizes and a sample of values of every tensor */
} model_identity_t;

void model_identity(const spec_t *s, const weights_t *w, model_identity_t *id);

/* A copy of every used slot's state and the map, taken between engine steps, so the slow
 * part (writing and fsync'ing the file) can run beside the serving loop. */
typedef struct {
    int count;
    size_t state_bytes;
    char (*names)[PROTO_SYMBOL_MAX]; /* [count] */
    unsigned char *states;           /* [count, state_bytes] */
} snapshot_image_t;

int snapshot_capture(engine_t *e, const slot_map_t *map, snapshot_image_t *img, char *err);
int snapshot_write(const char *path, const model_identity_t *id, const snapshot_image_t *img,
                   char *err);
void snapshot_image_free(snapshot_image_t *img);

/* capture + write */
int snapshot_save(const char *path, const model_identity_t *id, engine_t *e,
                  const slot_map_t *map, char *err);

/* 1: restored into e and map; 0: no file at path (nothing changed); -1: refused or
 * unreadable, with err saying why (another spec or weights, truncated, corrupt...). */
int snapshot_load(const char *path, const model_identity_t *id, engine_t *e, slot_map_t *map,
                  char *err);

#endif
