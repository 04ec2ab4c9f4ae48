#include "replay_reference.h"

#include "engine.h"

int replay_reference(const spec_t *spec, const weights_t *w, const csv_stream_t *s, int limit,
                     int fp64, double *out, char *err)
{
    request_stream_t head = s->req; /* the first `limit` requests: a prefix needs no others */
    head.n = limit < s->req.n ? limit : s->req.n;
    int slots = 0; /* slots go by first appearance: the prefix uses 0 .. max */
    for (int i = 0; i < head.n; i++)
        if (head.slot[i] >= slots) slots = head.slot[i] + 1;
    engine_options_t eo = {.backend = "cpu", .fp64 = fp64, .max_symbols = slots ? slots : 1};
    engine_t *e = engine_create(spec, w, &eo, err);
    if (!e) return -1;
    int rc = stream_run(e, &head, e->max_batch, out, err);
    engine_destroy(e);
    return rc;
}
