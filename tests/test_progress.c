/* Progress bar: what it draws, and that it stays quiet when it should. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <string.h>

#include "progress.h"

static void captured_stderr(char *buf, size_t len)
{
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
}

Test(progress, bytes_bar_ends_at_total, .init = cr_redirect_stderr)
{
    progress_t *p = progress_start("weights", 2500000000ull, NULL, PROGRESS_ALWAYS);
    cr_assert(p);
    progress_update(p, 1250000000ull);
    progress_update(p, 2500000000ull);
    progress_finish(p);
    char out[4096];
    captured_stderr(out, sizeof out);
    const char *last = strrchr(out, '\r');
    cr_assert(last, "no bar drawn: '%s'", out);
    cr_assert(strstr(last, "weights [##############################] 100%"), "%s", last);
    cr_assert(strstr(last, "2.50 GB / 2.50 GB"), "%s", last);
    cr_assert(strstr(last, "MB/s"), "%s", last);
    cr_assert_eq(out[strlen(out) - 1], '\n', "the final line is not ended");
}

Test(progress, count_bar_shows_units, .init = cr_redirect_stderr)
{
    progress_t *p = progress_start("replay", 40, "req", PROGRESS_ALWAYS);
    progress_update(p, 10);
    progress_finish(p); /* draws the state it was left in */
    char out[4096];
    captured_stderr(out, sizeof out);
    const char *last = strrchr(out, '\r');
    cr_assert(last && strstr(last, " 25%") && strstr(last, "10 req / 40 req") &&
                  strstr(last, "req/s") && strstr(last, "ETA"),
              "%s", out);
}

Test(progress, off_and_auto_without_terminal_are_silent, .init = cr_redirect_stderr)
{
    /* stderr is redirected to a pipe here, so AUTO must stay quiet */
    cr_assert_null(progress_start("x", 10, NULL, PROGRESS_OFF));
    cr_assert_null(progress_start("x", 10, NULL, PROGRESS_AUTO));
    progress_update(NULL, 5);
    progress_finish(NULL);
    fprintf(stderr, "end");
    char out[64];
    captured_stderr(out, sizeof out);
    cr_assert_str_eq(out, "end");
}
