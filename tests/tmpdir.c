#include "tmpdir.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void tmpdir_make(char dir[TMPDIR_PATH_MAX])
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, TMPDIR_PATH_MAX, "%s/stepfuse-test-XXXXXX", base && *base ? base : "/tmp");
    cr_assert(mkdtemp(dir), "cannot create a scratch directory under %s", dir);
}

const char *tmpdir_file(const char *dir, const char *name, char out[TMPDIR_PATH_MAX])
{
    snprintf(out, TMPDIR_PATH_MAX, "%s/%s", dir, name);
    return out;
}

int tmpdir_count(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert(d, "cannot list %s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void tmpdir_remove(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
