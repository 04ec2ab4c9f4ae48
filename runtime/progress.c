/* Progress bar (see progress.h). */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define BAR_WIDTH 30
#define REDRAW_S 0.1

struct progress {
    char label[48];
    const char *unit; /* NULL: bytes */
    uint64_t total, done;
    double start, last_draw;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "1.23 GB" for bytes, "12345 req" for counts. */
static void format_amount(const progress_t *p, double v, char *buf, size_t len)
{
    if (p->unit) {
        snprintf(buf, len, "%.0f %s", v, p->unit);
        return;
    }
    static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (v >= 1000 && u < (int)ARRAY_LEN(units) - 1) {
        v /= 1000;
        u++;
    }
    snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", v, units[u]);
}

static void format_duration(double s, char *buf, size_t len)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

static void draw(progress_t *p, double t)
{
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    double elapsed = t - p->start, rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    char bar[BAR_WIDTH + 1], done[32], total[32], rate_s[32], eta[32];
    int filled = (int)(frac * BAR_WIDTH);
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    format_amount(p, (double)p->done, done, sizeof done);
    format_amount(p, (double)p->total, total, sizeof total);
    if (p->unit)
        snprintf(rate_s, sizeof rate_s, "%.0f %s/s", rate, p->unit);
    else
        snprintf(rate_s, sizeof rate_s, "%.0f MB/s", rate / 1e6);
    if (p->done >= p->total)
        format_duration(elapsed, eta, sizeof eta);
    else if (rate > 0)
        format_duration((double)(p->total - p->done) / rate, eta, sizeof eta);
    else
        snprintf(eta, sizeof eta, "--:--");
    /* \033[K clears what a longer previous line left behind. */
    fprintf(stderr, "\r%s [%s] %3.0f%%  %s / %s  %s  %s %s\033[K", p->label, bar, 100 * frac,
            done, total, rate_s, p->done >= p->total ? "in" : "ETA", eta);
    fflush(stderr);
    p->last_draw = t;
}

progress_t *progress_start(const char *label, uint64_t total, const char *unit,
                           progress_mode_t mode)
{
    if (mode == PROGRESS_OFF || (mode == PROGRESS_AUTO && !isatty(STDERR_FILENO))) return NULL;
    progress_t *p = xcalloc(1, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->unit = unit;
    p->total = total;
    p->start = now_s();
    draw(p, p->start);
    return p;
}

void progress_update(progress_t *p, uint64_t done)
{
    if (!p) return;
    p->done = done;
    double t = now_s();
    if (t - p->last_draw >= REDRAW_S) draw(p, t);
}

void progress_finish(progress_t *p)
{
    if (!p) return;
    draw(p, now_s());
    fputc('\n', stderr);
    free(p);
}
