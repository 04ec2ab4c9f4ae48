/* Scratch directories for tests: created under $TMPDIR (or /tmp), removed with their files. */
#ifndef STEPFUSE_TEST_TMPDIR_H
#define STEPFUSE_TEST_TMPDIR_H

#include <stddef.h>

#define TMPDIR_PATH_MAX 512

/* Create a fresh directory; aborts the test on failure. */
void tmpdir_make(char dir[TMPDIR_PATH_MAX]);
/* dir/name into out. */
const char *tmpdir_file(const char *dir, const char *name, char out[TMPDIR_PATH_MAX]);
/* Number of entries in dir (to find leftover temporary files). */
int tmpdir_count(const char *dir);
void tmpdir_remove(const char *dir);

#endif
