/* Symbol name -> engine state slot. Slots are handed out in order of first appearance and
 * never reused, so a snapshot of the map plus the slots' states restores everything. */
#ifndef STEPFUSE_SLOT_MAP_H
#define STEPFUSE_SLOT_MAP_H

#include "protocol.h"

typedef struct {
    int capacity;                     /* the engine's max_symbols */
    int count;                        /* slots in use: 0 .. count-1 */
    char (*names)[PROTO_SYMBOL_MAX];  /* [capacity]: names[slot] */
} slot_map_t;

void slot_map_init(slot_map_t *m, int capacity);
void slot_map_free(slot_map_t *m);
void slot_map_clear(slot_map_t *m);

/* Slot of name, or -1. */
int slot_map_find(const slot_map_t *m, const char *name);

/* Slot of name, adding it when new (*added = 1: the caller resets that slot);
 * -1 when the map is full. */
int slot_map_get_or_add(slot_map_t *m, const char *name, int *added);

#endif
