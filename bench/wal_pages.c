/*
 * wal_pages.c - which pages each commit writes to the WAL, by table and
 * index: what a durable step costs the disk, counted instead of guessed.
 *
 * An LD_PRELOAD library for any program that opens a docket home (the
 * durable runs of bench/runner_steps, `docket act`, `docket serve`):
 *
 *   cc -O2 -shared -fPIC -o wal_pages.so bench/wal_pages.c -ldl -lsqlite3
 *   WAL_PAGES=out.txt LD_PRELOAD=./wal_pages.so \
 *       build/bench/runner_steps HOME transitions FLOW ORG 2000
 *
 * After each commit on a docket.db it reads the frames that commit
 * appended from the WAL file and names the b-tree each page belongs to
 * (SQLite's dbstat table, so the SQLite library must have it, as
 * Debian's does; a page on the freelist is "free"). WAL_PAGES gets one
 * line per commit: the number of frames, then one name per frame. At
 * exit it prints to stderr the commits, the mean frames per commit and
 * the mean per b-tree (those of 0.005 a commit or more). runner_steps'
 * transitions mode takes its steps in eight rounds of one step per
 * instance: the last 8 x N/8 lines are the timed steps, round by round.
 *
 * The hook runs inside the committing connection, after its commit: it
 * slows what it measures down (a dbstat scan per frame), so time nothing
 * with it loaded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NAMES 128

static FILE *out;
static int prev_frames;
static char wal_path[4096];
static long commits, frames;
static char names[MAX_NAMES][64];
static long counts[MAX_NAMES];
static int nnames;

static void tally(const char *name)
{
	int i;

	for (i = 0; i < nnames; i++)
		if (strcmp(names[i], name) == 0)
			break;
	if (i == nnames) {
		if (nnames == MAX_NAMES)
			return;
		snprintf(names[nnames++], sizeof names[0], "%s", name);
	}
	counts[i]++;
}

/* The b-tree page pgno is in, or "free". */
static void page_owner(sqlite3 *db, unsigned pgno, char *name, size_t size)
{
	sqlite3_stmt *st = NULL;

	snprintf(name, size, "free");
	if (sqlite3_prepare_v2(db, "SELECT name FROM dbstat WHERE pageno = ?1", -1, &st, NULL) !=
	    SQLITE_OK) {
		snprintf(name, size, "?");
		return;
	}
	sqlite3_bind_int64(st, 1, pgno);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(name, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static int on_commit(void *arg, sqlite3 *db, const char *schema, int n)
{
	unsigned char hdr[32], fh[24];
	unsigned page_size;
	int fd, i;

	(void)arg;
	(void)schema;
	if (n < prev_frames) /* the WAL started over */
		prev_frames = 0;
	if ((fd = open(wal_path, O_RDONLY)) < 0)
		return SQLITE_OK;
	if (pread(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) {
		close(fd);
		return SQLITE_OK;
	}
	page_size =
	    (unsigned)hdr[8] << 24 | (unsigned)hdr[9] << 16 | (unsigned)hdr[10] << 8 | hdr[11];
	fprintf(out, "%d", n - prev_frames);
	for (i = prev_frames; i < n; i++) {
		char name[64];
		off_t at = 32 + (off_t)i * (page_size + 24);
		if (pread(fd, fh, sizeof fh, at) != (ssize_t)sizeof fh)
			break;
		page_owner(db,
		           (unsigned)fh[0] << 24 | (unsigned)fh[1] << 16 | (unsigned)fh[2] << 8 |
		               fh[3],
		           name, sizeof name);
		fprintf(out, " %s", name);
		tally(name);
	}
	fprintf(out, "\n");
	close(fd);
	commits++;
	frames += n - prev_frames;
	prev_frames = n;
	return SQLITE_OK;
}

int sqlite3_open_v2(const char *file, sqlite3 **db, int flags, const char *vfs)
{
	static int (*real)(const char *, sqlite3 **, int, const char *);
	int rc;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "sqlite3_open_v2");
	rc = real(file, db, flags, vfs);
	if (rc == SQLITE_OK && strstr(file, "docket.db") && getenv("WAL_PAGES")) {
		if (!out && (out = fopen(getenv("WAL_PAGES"), "w")) == NULL)
			return rc;
		snprintf(wal_path, sizeof wal_path, "%s-wal", file);
		sqlite3_wal_hook(*db, on_commit, NULL);
	}
	return rc;
}

__attribute__((destructor)) static void summary(void)
{
	int i;

	if (!out || commits == 0)
		return;
	fclose(out);
	fprintf(stderr, "wal_pages: %ld commits, %.2f frames a commit:", commits,
	        (double)frames / (double)commits);
	for (i = 0; i < nnames; i++) /* the ones written once in a while */
		if ((double)counts[i] / (double)commits >= 0.005)
			fprintf(stderr, " %s %.2f", names[i], (double)counts[i] / (double)commits);
	fprintf(stderr, "\n");
}
