/* test_archive_refmove.c - an instance's ref moved by exchanging it with the
 * handle's spare file (store/archive_refmove.c): compare-and-swap semantics
 * as libgit2's, with and without the exchange, locks held by plain git and
 * left by crashes, threads and processes on one instance, the spare pool,
 * gc's sweep, and the inodes that an upload no longer frees. */
#include "store/archive_priv.h"
#include "util/buf.h"
#include "util/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/archive_fixture.h"

static int setup(void **state)
{
	return fixture_setup(state, "refmove");
}

/* Runs a shell command; its stdout, trimmed of the last newline. */
static char *run(int *status, const char *fmt, ...)
{
	char cmd[2048], chunk[4096];
	dk_buf out = DK_BUF_INIT;
	va_list ap;
	size_t n;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		dk_buf_put(&out, chunk, n);
	st = pclose(p);
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	dk_buf_puts(&out, "");
	while (out.len && out.ptr[out.len - 1] == '\n')
		out.ptr[--out.len] = '\0';
	return dk_buf_detach(&out);
}

static int git_ok(fixture *f, const char *args)
{
	int st;
	free(run(&st, "git --git-dir='%s' %s >/dev/null 2>&1", f->git, args));
	return st == 0;
}

/* A real commit (an empty tree, a message) made by plain git. */
static git_oid commit_of(fixture *f, const char *msg)
{
	git_oid id;
	int st;
	char *tree = run(&st, "git --git-dir='%s' mktree </dev/null", f->git);
	char *hex = run(&st, "git --git-dir='%s' commit-tree %s -m '%s'", f->git, tree, msg);
	assert_int_equal(st, 0);
	assert_int_equal(git_oid_fromstr(&id, hex), 0);
	free(tree);
	free(hex);
	return id;
}

/* The ref's value as plain git reads it (loose or packed), "" when none. */
static char *git_value(fixture *f, const char *ref)
{
	return run(NULL, "git --git-dir='%s' rev-parse -q --verify %s", f->git, ref);
}

static int same(fixture *f, const char *ref, const git_oid *id)
{
	char hex[GIT_OID_HEXSZ + 1];
	char *v = git_value(f, ref);
	int eq;
	git_oid_tostr(hex, sizeof(hex), id);
	eq = strcmp(v, hex) == 0;
	free(v);
	return eq;
}

static ino_t ino_at(fixture *f, const char *rel)
{
	char p[800];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", f->git, rel);
	return stat(p, &st) == 0 ? st.st_ino : 0;
}

static int exists(fixture *f, const char *rel)
{
	return ino_at(f, rel) != 0;
}

/* How many entries of docket-spare/ start with prefix; the name of the last
 * into name (may be NULL); with inos, their inodes (at most 64). */
static int spares_inos(fixture *f, const char *prefix, char name[256], ino_t *inos)
{
	char p[600];
	int n = 0;
	snprintf(p, sizeof(p), "%s/docket-spare", f->git);
	DIR *d = opendir(p);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		if (!strncmp(e->d_name, prefix, strlen(prefix))) {
			if (inos && n < 64)
				inos[n] = e->d_ino;
			n++;
			if (name)
				snprintf(name, 256, "docket-spare/%.200s", e->d_name);
		}
	closedir(d);
	return n;
}

static int spares(fixture *f, const char *prefix, char name[256])
{
	return spares_inos(f, prefix, name, NULL);
}

static int cas(fixture *f, const char *ref, const git_oid *to, const git_oid *from)
{
	git_reference *r = NULL;
	int rc;
	dk_archive__ref_prepare(f->a, to);
	rc = dk_archive__ref_cas(&r, f->a, ref, to, from);
	git_reference_free(r);
	return rc;
}

/* The compare-and-swap answers as git_reference_create_matching does, with
 * the exchange (exchange = 1) and through libgit2 (0), for loose refs and
 * for refs only in packed-refs. */
static void cas_case(fixture *f, int exchange)
{
	const char *ref = "refs/docket/instances/i-cas", *lock = "refs/docket/instances/i-cas.lock";
	git_oid a = commit_of(f, "a"), b = commit_of(f, "b"), c = commit_of(f, "c");
	char spare[256];

	dk_archive__refmove_force_fallback(f->a, !exchange);
	/* created when absent */
	assert_int_equal(cas(f, ref, &a, NULL), 0);
	assert_int_equal(dk_archive__refmove_exchanges(f->a), exchange);
	assert_true(same(f, ref, &a));
	/* not when present */
	assert_int_equal(cas(f, ref, &b, NULL), GIT_EMODIFIED);
	assert_true(same(f, ref, &a));
	assert_false(exists(f, lock));
	/* moved from the right value; with the exchange the old file
	 * becomes the spare */
	ino_t before = ino_at(f, ref);
	assert_int_equal(cas(f, ref, &b, &a), 0);
	assert_true(same(f, ref, &b));
	if (exchange) {
		assert_int_equal(spares(f, "h-", spare), 1);
		assert_int_equal(ino_at(f, spare), before);
	}
	/* not from a wrong one */
	assert_int_equal(cas(f, ref, &c, &a), GIT_EMODIFIED);
	assert_true(same(f, ref, &b));
	assert_false(exists(f, lock));
	/* a value expected of a ref that does not exist */
	assert_int_equal(cas(f, "refs/docket/instances/i-none", &c, &a), GIT_ENOTFOUND);
	assert_false(exists(f, "refs/docket/instances/i-none"));
	/* only in packed-refs (git pack-refs --all removes the loose file) */
	assert_true(git_ok(f, "pack-refs --all"));
	assert_false(exists(f, ref));
	assert_int_equal(cas(f, ref, &c, NULL), GIT_EMODIFIED);
	assert_int_equal(cas(f, ref, &c, &a), GIT_EMODIFIED);
	assert_false(exists(f, ref));
	assert_int_equal(cas(f, ref, &c, &b), 0);
	assert_true(exists(f, ref));
	/* the exchange's spare became the loose file (pack-refs had removed
	 * the directory: made again) */
	if (exchange)
		assert_int_equal(spares(f, "h-", NULL), 0);
	assert_true(same(f, ref, &c));
	/* and on from the loose file */
	assert_int_equal(cas(f, ref, &a, &c), 0);
	assert_true(same(f, ref, &a));
	assert_false(exists(f, lock));
	/* a value not prepared moves through libgit2 */
	dk_archive__ref_prepare(f->a, &c);
	git_reference *r = NULL;
	assert_int_equal(dk_archive__ref_cas(&r, f->a, ref, &b, &a), 0);
	git_reference_free(r);
	assert_true(same(f, ref, &b));
	assert_true(git_ok(f, "fsck --full --strict"));
}

static void cas_by_exchange(void **state)
{
	cas_case(*state, 1);
}

static void cas_through_libgit2(void **state)
{
	cas_case(*state, 0);
}

/* The fallback stays the handle's once renameat2 is refused; and the
 * per-file sync mode moves through libgit2. */
static void per_file_mode_uses_libgit2(void **state)
{
	fixture *f = *state;
	dk_archive *a = NULL;
	git_reference *r = NULL;
	git_oid x = commit_of(f, "x");

	setenv("DOCKET_ARCHIVE_SYNC", "file", 1);
	assert_int_equal(dk_archive_open(&a, f->home), 0);
	unsetenv("DOCKET_ARCHIVE_SYNC");
	dk_archive__ref_prepare(a, &x);
	assert_int_equal(dk_archive__ref_cas(&r, a, "refs/docket/instances/i-pf", &x, NULL), 0);
	git_reference_free(r);
	assert_int_equal(dk_archive__refmove_exchanges(a), 0);
	assert_int_equal(spares(f, "", NULL), 0);
	dk_archive_free(a);
	assert_true(same(f, "refs/docket/instances/i-pf", &x));
}

/* ---- uploads ------------------------------------------------------------- */

static int put(dk_archive *a, fixture *f, const char *instance, int k)
{
	char path[600], name[64], data[64];
	dk_archive_put_result r;
	dk_archive_put_opts o = DK_ARCHIVE_PUT_OPTS_INIT;
	snprintf(name, sizeof(name), "f%d.pdf", k);
	snprintf(path, sizeof(path), "%s/%d-%s", f->dir, (int)getpid(), name);
	snprintf(data, sizeof(data), "upload %d of %d", k, (int)getpid());
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	fputs(data, fp);
	fclose(fp);
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
	return dk_archive_put_file(&r, a, &o, path);
}

static int count_entries(const dk_archive_entry *e, void *payload)
{
	(void)e;
	(*(int *)payload)++;
	return 0;
}

static int history(fixture *f, const char *instance)
{
	int n = 0;
	assert_int_equal(dk_archive_walk(f->a, instance, 0, count_entries, &n), 0);
	return n;
}

/* Files of the archive outside objects/pack (every inode an upload could
 * make or free there), counted. */
static int files_outside_packs(fixture *f)
{
	int st;
	char *s = run(&st, "find '%s' -path '*/objects/pack' -prune -o -print | wc -l", f->git);
	int n = atoi(s);
	free(s);
	return n;
}

/* 100 uploads to one instance: the ref and the spare trade the same two
 * inodes, and nothing but packs is created in the archive. */
static void uploads_free_no_inode(void **state)
{
	fixture *f = *state;
	const char *ref = "refs/docket/instances/i-ino";
	char spare[256];

	dk_archive_set_auto_gc(f->a, 0);
	assert_int_equal(put(f->a, f, "i-ino", 0), 0); /* creates the ref */
	assert_int_equal(put(f->a, f, "i-ino", 1), 0); /* makes the spare */
	assert_int_equal(spares(f, "h-", spare), 1);
	ino_t pair[2] = {ino_at(f, ref), ino_at(f, spare)};
	int files = files_outside_packs(f);
	assert_true(pair[0] && pair[1] && pair[0] != pair[1]);
	for (int k = 2; k < 102; k++) {
		assert_int_equal(put(f->a, f, "i-ino", k), 0);
		ino_t now = ino_at(f, ref);
		assert_true(now == pair[0] || now == pair[1]);
		assert_int_equal(ino_at(f, spare), now == pair[0] ? pair[1] : pair[0]);
	}
	assert_int_equal(files_outside_packs(f), files);
	assert_int_equal(history(f, "i-ino"), 102);
	/* through libgit2 each upload writes a new file */
	dk_archive__refmove_force_fallback(f->a, 1);
	ino_t was = ino_at(f, ref);
	assert_int_equal(put(f->a, f, "i-ino", 102), 0);
	assert_int_not_equal(ino_at(f, ref), was);
	assert_int_equal(history(f, "i-ino"), 103);
	assert_true(git_ok(f, "fsck --full --strict"));
}

/* A lock made by hand as plain git makes it (ID.lock, O_EXCL): while it is
 * young the upload waits for it and never takes it; left by a crash (old)
 * it is removed whichever value it holds, never applied: the new value
 * (died between taking the lock and the exchange) or the old one (died
 * after the exchange, before the old file went back to the spare). */
typedef struct {
	const char *lock;
	int unlinked;
} holder;

static void *remove_later(void *arg)
{
	holder *h = arg;
	struct timespec ts = {0, 300 * 1000000L};
	nanosleep(&ts, NULL);
	h->unlinked = unlink(h->lock);
	return NULL;
}

static void make_lock(const char *path, const char *hex, time_t age)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	struct timespec ts[2];
	assert_true(fd >= 0);
	assert_int_equal(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= age;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void locks_waited_or_removed(void **state)
{
	fixture *f = *state;
	char lock[600], hex[GIT_OID_HEXSZ + 1], old[GIT_OID_HEXSZ + 1];
	pthread_t t;
	git_oid tip;

	snprintf(lock, sizeof(lock), "%s/refs/docket/instances/i-lk.lock", f->git);
	assert_int_equal(put(f->a, f, "i-lk", 0), 0);
	assert_int_equal(put(f->a, f, "i-lk", 1), 0);
	assert_int_equal(dk_archive__refmove_exchanges(f->a), 1);
	assert_int_equal(dk_archive__tip(&tip, f->a, "i-lk"), 0);
	git_oid_tostr(old, sizeof(old), &tip);

	/* held by plain git: waited for */
	holder h = {lock, -1};
	make_lock(lock, old, 0);
	assert_int_equal(pthread_create(&t, NULL, remove_later, &h), 0);
	assert_int_equal(put(f->a, f, "i-lk", 2), 0);
	pthread_join(t, NULL);
	assert_int_equal(h.unlinked, 0);
	assert_int_equal(history(f, "i-lk"), 3);

	/* crash between the lock and the exchange: the lock holds a new
	 * value (a commit nobody was told of) */
	git_oid orphan = commit_of(f, "never acknowledged");
	git_oid_tostr(hex, sizeof(hex), &orphan);
	make_lock(lock, hex, 120);
	assert_int_equal(put(f->a, f, "i-lk", 3), 0);
	assert_false(exists(f, "refs/docket/instances/i-lk.lock"));
	assert_int_equal(history(f, "i-lk"), 4);
	char *s = run(NULL, "git --git-dir='%s' rev-list refs/docket/instances/i-lk | grep -c %s",
	              f->git, hex);
	assert_string_equal(s, "0");
	free(s);

	/* crash after the exchange: the lock holds the old value */
	assert_int_equal(dk_archive__tip(&tip, f->a, "i-lk"), 0);
	char *parent =
	    run(NULL, "git --git-dir='%s' rev-parse refs/docket/instances/i-lk~1", f->git);
	make_lock(lock, parent, 120);
	free(parent);
	assert_int_equal(put(f->a, f, "i-lk", 4), 0);
	assert_false(exists(f, "refs/docket/instances/i-lk.lock"));
	assert_int_equal(history(f, "i-lk"), 5);
	git_oid now;
	assert_int_equal(dk_archive__tip(&now, f->a, "i-lk"), 0);
	s = run(NULL, "git --git-dir='%s' rev-parse refs/docket/instances/i-lk~1", f->git);
	git_oid_tostr(hex, sizeof(hex), &tip);
	assert_string_equal(s, hex);
	free(s);
	assert_true(git_ok(f, "fsck --full --strict"));
}

/* Threads on their own handles and processes on theirs, all uploading to
 * one instance: no upload lost, and the processes' spares end in the pool,
 * where a new handle finds one. */
typedef struct {
	fixture *f;
	int id, n, failures;
} worker;

static void *put_many(void *arg)
{
	worker *w = arg;
	dk_archive *a = NULL;
	if (dk_archive_open(&a, w->f->home) < 0) {
		w->failures = w->n;
		return NULL;
	}
	for (int i = 0; i < w->n; i++)
		if (put(a, w->f, "i-many", w->id * 1000 + i) < 0)
			w->failures++;
	dk_archive_free(a);
	return NULL;
}

static void threads_and_processes_lose_nothing(void **state)
{
	fixture *f = *state;
	enum { THREADS = 4, PROCS = 3, EACH = 15 };
	pthread_t t[THREADS];
	worker w[THREADS];
	pid_t pids[PROCS];
	char name[256];

	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0) {
			worker me = {f, 100 + p, EACH, 0};
			put_many(&me);
			_exit(me.failures ? 1 : 0);
		}
	}
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){f, i, EACH, 0};
		assert_int_equal(pthread_create(&t[i], NULL, put_many, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	for (int p = 0; p < PROCS; p++) {
		int st;
		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(history(f, "i-many"), (THREADS + PROCS) * EACH);
	assert_false(exists(f, "refs/docket/instances/i-many.lock"));
	/* every handle gave its spare back */
	ino_t pooled[64];
	int pool = spares_inos(f, "free-", name, pooled), found = 0;
	assert_true(pool >= 1 && pool <= THREADS + PROCS);
	assert_int_equal(spares(f, "h-", NULL), 0);
	/* a new handle claims one rather than making a file */
	dk_archive *a = NULL;
	assert_int_equal(dk_archive_open(&a, f->home), 0);
	assert_int_equal(put(a, f, "i-many", 9999), 0);
	assert_int_equal(spares(f, "free-", NULL), pool - 1);
	for (int i = 0; i < pool; i++)
		found |= ino_at(f, "refs/docket/instances/i-many") == pooled[i];
	assert_true(found);
	dk_archive_free(a);
	assert_int_equal(spares(f, "free-", NULL), pool);
	assert_true(git_ok(f, "fsck --full --strict"));
}

/* gc removes the spares of processes that are gone and keeps the pool at
 * most 64; a handle whose spare was removed makes another. */
static void gc_sweeps_spares(void **state)
{
	fixture *f = *state;
	dk_archive_gc_result g;
	char p[800], mine[256];
	pid_t gone = fork();

	assert_true(gone >= 0);
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	assert_int_equal(put(f->a, f, "i-gc", 0), 0);
	assert_int_equal(put(f->a, f, "i-gc", 1), 0);
	assert_int_equal(spares(f, "h-", mine), 1);
	snprintf(p, sizeof(p), "%s/docket-spare/h-%ld-00000000", f->git, (long)gone);
	close(open(p, O_WRONLY | O_CREAT, 0644));
	for (int i = 0; i < 70; i++) {
		snprintf(p, sizeof(p), "%s/docket-spare/free-test%02d", f->git, i);
		close(open(p, O_WRONLY | O_CREAT, 0644));
	}
	assert_int_equal(dk_archive_gc(&g, f->a), 0);
	assert_int_equal(spares(f, "free-", NULL), 64);
	assert_int_equal(spares(f, "h-", NULL), 1);
	assert_true(exists(f, mine));
	/* removed under a live handle: it makes a new one */
	snprintf(p, sizeof(p), "%s/%s", f->git, mine);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(put(f->a, f, "i-gc", 2), 0);
	assert_int_equal(put(f->a, f, "i-gc", 3), 0);
	assert_true(exists(f, mine));
	assert_int_equal(history(f, "i-gc"), 4);
}

/* Plain git reads and writes the archive as before: log, show, fsck --full,
 * gc with docket-spare/ there, and update-ref, after which docket goes on
 * from where git put the ref. */
static void plain_git_alongside(void **state)
{
	fixture *f = *state;
	int st;

	for (int k = 0; k < 5; k++)
		assert_int_equal(put(f->a, f, "i-git", k), 0);
	char *s = run(
	    &st, "git --git-dir='%s' log --format=%%s refs/docket/instances/i-git | wc -l", f->git);
	assert_string_equal(s, "5");
	free(s);
	assert_true(git_ok(f, "show refs/docket/instances/i-git:draft/report/f4.pdf"));
	assert_true(git_ok(f, "fsck --full --strict"));
	s = run(&st, "git --git-dir='%s' fsck --full 2>&1", f->git);
	assert_null(strstr(s, "docket-spare"));
	free(s);
	assert_true(git_ok(f, "gc --quiet"));
	assert_true(git_ok(f, "fsck --full --strict"));
	/* git moves the ref back one commit, checking the old value */
	s = run(&st,
	        "git --git-dir='%1$s' update-ref refs/docket/instances/i-git "
	        "refs/docket/instances/i-git~1 $(git --git-dir='%1$s' rev-parse "
	        "refs/docket/instances/i-git) && echo moved",
	        f->git);
	assert_string_equal(s, "moved");
	free(s);
	assert_int_equal(history(f, "i-git"), 4);
	assert_int_equal(put(f->a, f, "i-git", 5), 0);
	assert_int_equal(history(f, "i-git"), 5);
	assert_int_equal(put(f->a, f, "i-git", 6), 0);
	assert_int_equal(history(f, "i-git"), 6);
	assert_true(git_ok(f, "fsck --full --strict"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(cas_by_exchange, setup, teardown),
	    cmocka_unit_test_setup_teardown(cas_through_libgit2, setup, teardown),
	    cmocka_unit_test_setup_teardown(per_file_mode_uses_libgit2, setup, teardown),
	    cmocka_unit_test_setup_teardown(uploads_free_no_inode, setup, teardown),
	    cmocka_unit_test_setup_teardown(locks_waited_or_removed, setup, teardown),
	    cmocka_unit_test_setup_teardown(threads_and_processes_lose_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(gc_sweeps_spares, setup, teardown),
	    cmocka_unit_test_setup_teardown(plain_git_alongside, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
