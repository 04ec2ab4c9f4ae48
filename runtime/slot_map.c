#include "slot_map.h"

#include <string.h>

#include "util.h"

void slot_map_init(slot_map_t *m, int capacity)
{
    m->capacity = capacity;
    m->count = 0;
    m->names = xcalloc((size_t)capacity, sizeof *m->names);
}

void slot_map_free(slot_map_t *m)
{
    free(m->names);
    m->names = NULL;
    m->capacity = m->count = 0;
}

void slot_map_clear(slot_map_t *m) { m->count = 0; }

/* Linear: max_symbols is tens, and a lookup costs far less than a step. */
int slot_map_find(const slot_map_t *m, const char *name)
{
    for (int i = 0; i < m->count; i++)
        if (!strcmp(m->names[i], name)) return i;
    return -1;
}

int slot_map_get_or_add(slot_map_t *m, const char *name, int *added)
{
    *added = 0;
    int slot = slot_map_find(m, name);
    if (slot >= 0) return slot;
    if (m->count >= m->capacity) return -1;
    snprintf(m->names[m->count], PROTO_SYMBOL_MAX, "%s", name);
    *added = 1;
    return m->count++;
}
