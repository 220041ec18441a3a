/* test_archive_spare.c - packs written into the files of the packs gc merged
 * away (store/archive_spare.c): new packs take pooled inodes, the pool
 * stays within its cap, a spare someone still has open or mapped is never
 * written into (and its reader goes on reading the old pack), handles
 * without leases make new files, and gc sweeps what crashes leave. */
#include "store/archive_priv.h"
#include "util/buf.h"
#include "util/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/archive_fixture.h"

#define MAXI 4096

static int setup(void **state)
{
	if (fixture_setup(state, "spare") < 0)
		return -1;
	dk_archive_set_auto_gc(((fixture *)*state)->a, 0); /* the tests run gc themselves */
	return 0;
}

/* Upload k's content: a few KiB that differ per k. */
static void content(dk_buf *b, int k)
{
	dk_buf_clear(b);
	for (int i = 0; i < 200; i++)
		dk_buf_printf(b, "upload %d line %d of the report\n", k, i);
}

/* Uploads file fK.pdf to instance through a. */
static int put(dk_archive *a, fixture *f, const char *instance, int k)
{
	char path[600], name[64];
	dk_buf b = DK_BUF_INIT;
	dk_archive_put_result r;
	dk_archive_put_opts o = DK_ARCHIVE_PUT_OPTS_INIT;
	FILE *fp;
	int rc;

	snprintf(name, sizeof(name), "f%d.pdf", k);
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	content(&b, k);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	fwrite(b.ptr, 1, b.len, fp);
	fclose(fp);
	dk_buf_free(&b);
	o.instance = instance;
	o.flow = "plan@1";
	o.state = "draft";
	o.kind = "report";
	o.name = name;
	o.event = "ev-1";
	o.actor = "li";
	o.author_name = "Li";
	o.author_email = "li@example.com";
	o.time = T0;
	rc = dk_archive_put_file(&r, a, &o, path);
	unlink(path);
	return rc;
}

static int collect(const void *data, size_t len, void *payload)
{
	dk_buf_put(payload, data, len);
	return 0;
}

/* Reads fK.pdf of instance back through a and checks its bytes, k in
 * [0, n). */
static void reads_back(dk_archive *a, const char *instance, int n)
{
	dk_buf want = DK_BUF_INIT, got = DK_BUF_INIT;
	for (int k = 0; k < n; k++) {
		char path[64];
		snprintf(path, sizeof(path), "draft/report/f%d.pdf", k);
		content(&want, k);
		dk_buf_clear(&got);
		assert_int_equal(dk_archive_get(a, instance, NULL, path, collect, &got), 0);
		assert_int_equal(got.len, want.len);
		assert_memory_equal(got.ptr, want.ptr, want.len);
	}
	dk_buf_free(&want);
	dk_buf_free(&got);
}

/* Inodes of the entries of dir (under the archive) whose names start with
 * prefix (and end with suffix, may be ""): how many, into inos. */
static size_t inos_in(fixture *f, const char *dir, const char *prefix, const char *suffix,
                      ino_t *inos)
{
	char p[600];
	size_t n = 0, ls = strlen(suffix);
	DIR *d;

	snprintf(p, sizeof(p), "%s/%s", f->git, dir);
	d = opendir(p);
	for (struct dirent *e; d && (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || l < ls ||
		    strcmp(e->d_name + l - ls, suffix) != 0)
			continue;
		assert_true(n < MAXI);
		if (inos)
			inos[n] = e->d_ino;
		n++;
	}
	if (d)
		closedir(d);
	return n;
}

static int has(const ino_t *v, size_t n, ino_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return 1;
	return 0;
}

static int fsck_clean(fixture *f)
{
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "git --git-dir='%s' fsck --full >/dev/null 2>&1", f->git);
	return system(cmd) == 0;
}

/* gc as a put runs it: merge, then the handle opens its repository afresh
 * (archive.c, dk_archive__wrote), letting go of the merged packs. */
static void gc(dk_archive *a)
{
	dk_archive_gc_result res;
	assert_int_equal(dk_archive_gc(&res, a), 0);
	dk_archive__wrote(a, 1);
}

/* After uploads and gcs, every new pack file whose inode is not new came
 * from the pool, most do, the pool stays within its cap, and git and the
 * archive read everything. */
static void new_packs_take_pooled_inodes(void **state)
{
	fixture *f = *state;
	static ino_t pool[MAXI], before[MAXI], after[MAXI];
	unsigned long long reused0, reused, refused, made0, made;
	int k = 0;

	for (; k < 40; k++)
		assert_int_equal(put(f->a, f, "i-1", k), 0);
	for (int round = 0; round < 6; round++) {
		size_t np, nb, na, from_pool = 0, fresh = 0;
		gc(f->a);
		np = inos_in(f, "docket-spare", "pack-", "", pool);
		assert_true(np > 0);
		assert_true(np <= DK_ARCHIVE_SPARE_POOL_MAX);
		nb = inos_in(f, "objects/pack", "pack-", "", before);
		dk_archive__spare_stats(f->a, &reused0, &refused, &made0);
		for (int j = 0; j < 10; j++, k++)
			assert_int_equal(put(f->a, f, "i-1", k), 0);
		dk_archive__spare_stats(f->a, &reused, &refused, &made);
		na = inos_in(f, "objects/pack", "pack-", "", after);
		for (size_t i = 0; i < na; i++) {
			if (has(before, nb, after[i]))
				continue;
			if (has(pool, np, after[i]))
				from_pool++;
			else
				fresh++;
		}
		/* every upload's two files: a spare each, counted */
		assert_int_equal(from_pool + fresh, 20);
		assert_int_equal(from_pool, reused - reused0);
		assert_int_equal(fresh, made - made0);
		assert_true(from_pool >= 16);
		/* and they left the pool */
		assert_int_equal(inos_in(f, "docket-spare", "pack-", "", NULL), np - from_pool);
	}
	gc(f->a);
	assert_true(inos_in(f, "docket-spare", "pack-", "", NULL) <= DK_ARCHIVE_SPARE_POOL_MAX);
	assert_true(fsck_clean(f));
	reads_back(f->a, "i-1", k);
}

/* The pool never passes its cap: gc unlinks what does not fit. */
static void pool_stays_within_cap(void **state)
{
	fixture *f = *state;
	int k = 0;

	/* 3 * 256 files to retire, nothing written in between */
	dk_archive__spare_force_unsupported(f->a, 1);
	for (int round = 0; round < 3; round++) {
		for (int j = 0; j < 130; j++, k++)
			assert_int_equal(put(f->a, f, "i-cap", k), 0);
		gc(f->a);
		assert_true(inos_in(f, "docket-spare", "pack-", "", NULL) <=
		            DK_ARCHIVE_SPARE_POOL_MAX);
	}
	assert_int_equal(inos_in(f, "docket-spare", "pack-", "", NULL), DK_ARCHIVE_SPARE_POOL_MAX);
	assert_true(fsck_clean(f));
	reads_back(f->a, "i-cap", k);
}

/* A second handle that read objects from the packs (libgit2 maps their
 * .idx and .pack) and a mapping made here keep the merged packs' files
 * open: the writer refuses those spares (the lease is refused) and makes
 * new files; the old handle reads everything right, and once it is gone
 * the spares are taken. */
static void mapped_spares_are_refused(void **state)
{
	fixture *f = *state;
	static ino_t pool[MAXI], before[MAXI], after[MAXI];
	unsigned long long reused0, reused, refused0, refused, made;
	dk_archive *b = NULL;
	size_t np, nb, na;
	char mine[700];
	struct stat st;
	unsigned char *map, *copy;
	int k = 0, fd;
	DIR *d;

	for (; k < 30; k++)
		assert_int_equal(put(f->a, f, "i-2", k), 0);
	assert_int_equal(dk_archive_open(&b, f->home), 0);
	reads_back(b, "i-2", k); /* b maps every pack */
	gc(f->a);
	np = inos_in(f, "docket-spare", "pack-", "", pool);
	assert_true(np >= 20);
	/* one spare mapped here too, its descriptor closed: only the map
	 * holds it */
	snprintf(mine, sizeof(mine), "%s/docket-spare", f->git);
	d = opendir(mine);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (!strncmp(e->d_name, "pack-", 5)) {
			snprintf(mine, sizeof(mine), "%s/docket-spare/%s", f->git, e->d_name);
			break;
		}
	closedir(d);
	fd = open(mine, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	close(fd);
	copy = malloc((size_t)st.st_size);
	memcpy(copy, map, (size_t)st.st_size);

	nb = inos_in(f, "objects/pack", "pack-", "", before);
	dk_archive__spare_stats(f->a, &reused0, &refused0, &made);
	for (int j = 0; j < 8; j++, k++)
		assert_int_equal(put(f->a, f, "i-2", k), 0);
	/* what the old handle and the mapping hold is untouched */
	reads_back(b, "i-2", 30);
	assert_memory_equal(map, copy, (size_t)st.st_size);
	dk_archive__spare_stats(f->a, &reused, &refused, &made);
	assert_int_equal(reused, reused0);
	assert_true(refused > refused0);
	na = inos_in(f, "objects/pack", "pack-", "", after);
	for (size_t i = 0; i < na; i++)
		assert_false(!has(before, nb, after[i]) && has(pool, np, after[i]));
	reads_back(f->a, "i-2", k);

	/* the mapping goes, then the handle: their spares are taken */
	assert_int_equal(munmap(map, (size_t)st.st_size), 0);
	free(copy);
	dk_archive_free(b);
	/* a handle whose names are used up lists the pool again after gc
	 * pooled more, or a second later (gc may run in another process) */
	sleep(1);
	dk_archive__spare_stats(f->a, &reused0, &refused0, &made);
	for (int j = 0; j < 8; j++, k++)
		assert_int_equal(put(f->a, f, "i-2", k), 0);
	dk_archive__spare_stats(f->a, &reused, &refused, &made);
	assert_true(reused >= reused0 + 12);
	assert_true(fsck_clean(f));
	reads_back(f->a, "i-2", k);
}

/* Leases not to be had (here simulated): the handle stops recycling and
 * writes new files; the pool is left as it was. */
static void no_leases_make_new_files(void **state)
{
	fixture *f = *state;
	unsigned long long reused0, reused, refused0, refused, made0, made;
	size_t np;
	int k = 0;

	for (; k < 30; k++)
		assert_int_equal(put(f->a, f, "i-3", k), 0);
	gc(f->a);
	np = inos_in(f, "docket-spare", "pack-", "", NULL);
	assert_true(np > 0);
	dk_archive__spare_force_unsupported(f->a, 1);
	dk_archive__spare_stats(f->a, &reused0, &refused0, &made0);
	for (int j = 0; j < 5; j++, k++)
		assert_int_equal(put(f->a, f, "i-3", k), 0);
	dk_archive__spare_stats(f->a, &reused, &refused, &made);
	assert_int_equal(reused, reused0);
	assert_int_equal(refused, refused0);
	assert_int_equal(made, made0 + 10);
	assert_int_equal(inos_in(f, "docket-spare", "pack-", "", NULL), np);
	assert_true(fsck_clean(f));
	reads_back(f->a, "i-3", k);
	/* leases back: the pool is used */
	dk_archive__spare_force_unsupported(f->a, 0);
	for (int j = 0; j < 5; j++, k++)
		assert_int_equal(put(f->a, f, "i-3", k), 0);
	dk_archive__spare_stats(f->a, &reused, &refused, &made);
	assert_true(reused >= reused0 + 8);
	reads_back(f->a, "i-3", k);
}

/* What a crash leaves in docket-spare/ (a writer's spare of a process that
 * is gone) and a pool past its cap are swept by gc; a live process's
 * writer spare is kept. */
static void gc_sweeps_pack_spares(void **state)
{
	fixture *f = *state;
	char p[700];
	pid_t dead = fork();
	int st;

	if (dead == 0)
		_exit(0);
	assert_true(dead > 0);
	waitpid(dead, &st, 0);
	assert_int_equal(put(f->a, f, "i-4", 0), 0);
	snprintf(p, sizeof(p), "%s/docket-spare", f->git);
	mkdir(p, 0777);
	snprintf(p, sizeof(p), "%s/docket-spare/p-%ld-1-00000000", f->git, (long)dead);
	assert_int_equal(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	snprintf(p, sizeof(p), "%s/docket-spare/p-%ld-1-00000000", f->git, (long)getpid());
	assert_int_equal(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	for (int i = 0; i < DK_ARCHIVE_SPARE_POOL_MAX + 10; i++) {
		snprintf(p, sizeof(p), "%s/docket-spare/pack-10-%012x", f->git, i);
		assert_int_equal(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	}
	assert_int_equal(dk_archive_gc(NULL, f->a), 0);
	snprintf(p, sizeof(p), "p-%ld-", (long)dead);
	assert_int_equal(inos_in(f, "docket-spare", p, "", NULL), 0);
	snprintf(p, sizeof(p), "p-%ld-", (long)getpid());
	assert_int_equal(inos_in(f, "docket-spare", p, "", NULL), 1);
	assert_int_equal(inos_in(f, "docket-spare", "pack-", "", NULL), DK_ARCHIVE_SPARE_POOL_MAX);
	/* the pool's empty files serve as spares all the same */
	dk_archive__wrote(f->a, 1);
	assert_int_equal(put(f->a, f, "i-4", 1), 0);
	assert_true(fsck_clean(f));
	reads_back(f->a, "i-4", 2);
}

/* The per-file sync mode writes into spares too, each fsynced before its
 * rename. */
static void per_file_mode_recycles(void **state)
{
	fixture *f = *state;
	unsigned long long reused, refused, made;
	dk_archive *a = NULL;
	int k = 0;

	setenv("DOCKET_ARCHIVE_SYNC", "file", 1);
	assert_int_equal(dk_archive_open(&a, f->home), 0);
	unsetenv("DOCKET_ARCHIVE_SYNC");
	dk_archive_set_auto_gc(a, 0);
	for (; k < 30; k++)
		assert_int_equal(put(a, f, "i-5", k), 0);
	gc(a);
	for (int j = 0; j < 5; j++, k++)
		assert_int_equal(put(a, f, "i-5", k), 0);
	dk_archive__spare_stats(a, &reused, &refused, &made);
	assert_true(reused >= 8);
	reads_back(a, "i-5", k);
	dk_archive_free(a);
	assert_true(fsck_clean(f));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(new_packs_take_pooled_inodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(pool_stays_within_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(mapped_spares_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(no_leases_make_new_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(gc_sweeps_pack_spares, setup, teardown),
	    cmocka_unit_test_setup_teardown(per_file_mode_recycles, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
