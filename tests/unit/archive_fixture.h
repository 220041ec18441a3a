/*
 * archive_fixture.h - the fixture the archive's unit tests share: a home
 * in a temporary directory with its archive open, removed after each test.
 * Included by one test file each (test_archive*.c), after cmocka.
 */
#ifndef DK_TESTS_ARCHIVE_FIXTURE_H
#define DK_TESTS_ARCHIVE_FIXTURE_H

#include "store/archive.h"

#include <stdio.h>
#include <stdlib.h>

#define T0 1795858200 /* 2026-11-28T09:30:00Z */

typedef struct {
	char dir[256];  /* the temporary directory */
	char home[300]; /* dir/home */
	char git[400];  /* home/archive.git */
	dk_archive *a;
} fixture;

/* Makes TMPDIR/docket-NAME.RANDOM and opens the archive of its home. */
static int fixture_setup(void **state, const char *name)
{
	fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	/* mkdtemp's template: six X become the random part */
	snprintf(f->dir, sizeof(f->dir), "%s/docket-%s.XXXXXX", tmp, name);
	if (mkdtemp(f->dir)) {
		snprintf(f->home, sizeof(f->home), "%s/home", f->dir);
		snprintf(f->git, sizeof(f->git), "%s/archive.git", f->home);
	}
	if (!f->home[0] || dk_archive_open(&f->a, f->home) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[600];

	dk_archive_free(f->a);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

#endif
