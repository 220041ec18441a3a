/*
 * archive_refmove.c - an upload moves its instance's ref without creating or
 * freeing an inode: the new value is written into a spare file the handle
 * owns, which then trades places with the ref.
 *
 * libgit2 (as git) moves a ref by writing ID.lock, a new file, and renaming
 * it over ID, which frees the old file. On file systems that discard freed
 * blocks synchronously that rename costs ~90 us, and on ext4 every inode
 * freed slows the creation of files for minutes after (recently_deleted()).
 * Here each handle keeps one spare file of 41 bytes (ARCHIVE/docket-spare/,
 * where plain git never looks) and moves a ref in four steps:
 *
 *   1. before the flush that precedes the move (dk_archive__ref_prepare,
 *      called by commit_on_ref ahead of dk_archive__pack_commit), "HEX\n"
 *      is written into the spare;
 *   2. renameat2(spare, ID.lock, RENAME_NOREPLACE) takes git's own lock
 *      with the content already in place: EEXIST means another writer (git,
 *      libgit2, another docket) holds it, and the caller sees GIT_ELOCKED
 *      exactly as from libgit2 (move_ref waits it out or removes it when
 *      stale);
 *   3. under the lock the ref's value is read (the loose file, else
 *      packed-refs, as git does) and compared with the expected one; on a
 *      mismatch the lock goes back to being the spare and the caller gets
 *      GIT_EMODIFIED or GIT_ENOTFOUND, as libgit2's
 *      git_reference_create_matching returns them;
 *   4. renameat2(ID.lock, ID, RENAME_EXCHANGE) puts the new value in place
 *      (a reader sees the old file or the new one, never none), and ID.lock,
 *      now the old file, is renamed back to the spare. No inode and no
 *      block is freed. When there was no loose file (a new instance, or a
 *      ref only in packed-refs) the lock is renamed onto ID and the next
 *      upload makes a new spare.
 *
 * Why the value is written before the flush. The spare is a recycled inode:
 * its block is overwritten in place, and nothing orders that write before
 * the renames on disk (ext4's replace-via-rename allocation does not apply
 * to an overwrite or an exchange). Had the value been written after the
 * flush, a power loss before the next one could leave ID naming the spare
 * with the block's previous content: another instance's old commit. Written
 * before the flush, the content is on disk before the ref may name it, so
 * after a power loss ID is the old value or the new one, both whole. For
 * that reason only a value prepared this way is moved here; anything else
 * (notes, whose batches move many refs after one flush; recovery) goes
 * through libgit2. When the round's flush is the ref journal's fdatasync
 * alone (archive_refs.c), it does not cover the spare: after a power loss
 * recovery puts right, from the journal's intent, a ref whose file came
 * back with another instance's commit.
 *
 * Crashes. A crash between steps 2 and 4 leaves ID.lock holding the new
 * value, one after the exchange leaves ID.lock holding the old one; either
 * is a lock like one libgit2 leaves, removed by move_ref's stale-lock rule
 * once older than a minute and never applied. The lock's mtime must not
 * make a live lock look stale: the spare's is refreshed when it was written
 * long ago (a wait for another writer's lock), and the old file's before it
 * becomes ID.lock for a moment in step 4. Spares of processes that died are
 * removed by dk_archive_gc (dk_archive__spares_sweep). A handle whose spare
 * vanished (swept, or removed by hand) makes a new one.
 *
 * Handles come and go (`docket attach` is one process per upload): a freed
 * handle renames its spare to docket-spare/free-RANDOM, and a new handle
 * claims one by renaming it to its own name (atomic: losing a race means
 * trying the next).
 *
 * Reflogs. docket's repositories set core.logAllRefUpdates=false, so
 * libgit2 kept no reflog for refs/docket/instances/ (with false it logs
 * nothing; with true it logs only refs under heads/, remotes/, notes/ or
 * with a log already); when the setting is anything but false, the handle
 * moves refs through libgit2, which keeps the log as configured.
 *
 * Where renameat2's flags are not supported (EINVAL, ENOSYS, EOPNOTSUPP:
 * some network and FUSE file systems, old kernels) the handle falls back to
 * libgit2 for good, and so it does with DOCKET_ARCHIVE_SYNC=file, where each
 * ref must be fsynced before its rename (libgit2 does that).
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPARE_DIR "docket-spare"
/* A ref file: 40 hex digits and a newline. */
#define HEX_LEN ((size_t)GIT_OID_HEXSZ)
#define REF_LEN (GIT_OID_HEXSZ + 1)
/* A lock whose mtime is older than this gets a fresh one before it is
 * taken (archive.c judges locks over 60 s stale). */
#define FRESH_SECONDS 10
/* Spares kept in the pool for new handles; gc removes any beyond. */
#define POOL_MAX 64

struct dk_archive_refmove {
	int mode;     /* 0: not decided yet, 1: exchange, -1: libgit2 */
	int forced;   /* dk_archive__refmove_force_fallback */
	int fd;       /* the spare, open read-write; -1: none yet */
	int size_ok;  /* its size is REF_LEN */
	int claimed;  /* the pool was tried */
	int prepared; /* the spare holds prepared_id, written before a flush */
	git_oid prepared_id;
	time_t written_at; /* when the spare was written (its mtime) */
	char name[64];     /* SPARE_DIR "/h-PID-COUNT-RANDOM", relative to the archive */
};

static struct dk_archive_refmove *state_of(dk_archive *a)
{
	if (!a->refmove) {
		a->refmove = dk_calloc(1, sizeof(*a->refmove));
		a->refmove->fd = -1;
	}
	return a->refmove;
}

/* Decides once whether this handle may move refs by exchange. */
static int decide(dk_archive *a, struct dk_archive_refmove *rm)
{
	git_config *cfg = NULL;
	int logall = 0, rc;

	if (rm->mode)
		return rm->mode;
	rm->mode = -1;
	if (rm->forced || a->per_file || a->dirfd < 0)
		return rm->mode;
	if (git_repository_config(&cfg, a->repo) < 0) {
		git_error_clear();
		return rm->mode;
	}
	/* "always" is no boolean: an error, and libgit2 then. */
	rc = git_config_get_bool(&logall, cfg, "core.logAllRefUpdates");
	git_config_free(cfg);
	git_error_clear();
	/* unset: a bare repository's default, false (the archive is bare) */
	if ((rc == 0 && !logall) || rc == GIT_ENOTFOUND)
		rm->mode = 1;
	return rm->mode;
}

/* Renames a spare of the pool to rm->name: 0 when one was claimed. */
static int claim_from_pool(dk_archive *a, struct dk_archive_refmove *rm)
{
	int dfd = openat(a->dirfd, SPARE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	int claimed = -1;

	if (dfd < 0)
		return -1;
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return -1;
	}
	for (struct dirent *e; claimed < 0 && (e = readdir(d));) {
		char from[sizeof(rm->name) + 256];
		if (strncmp(e->d_name, "free-", 5) != 0)
			continue;
		snprintf(from, sizeof(from), SPARE_DIR "/%s", e->d_name);
		if (renameat(a->dirfd, from, a->dirfd, rm->name) == 0)
			claimed = 0; /* else another handle took it first */
	}
	closedir(d);
	return claimed;
}

/* Opens the handle's spare, claiming one from the pool or making one. */
static int spare_open(dk_archive *a, struct dk_archive_refmove *rm)
{
	static const char zeros[REF_LEN] = "0000000000000000000000000000000000000000\n";
	int fd, made = 0;

	if (!rm->name[0]) {
		/* unique among the process's handles by the count (a name two
		 * handles shared would mix their values), among processes by
		 * the pid; the random part tells this run's from an earlier
		 * process's of the same pid */
		static unsigned long handles;
		unsigned char r[4] = {0};
		RAND_bytes(r, sizeof(r));
		snprintf(rm->name, sizeof(rm->name), SPARE_DIR "/h-%ld-%lu-%02x%02x%02x%02x",
		         (long)getpid(), __atomic_add_fetch(&handles, 1, __ATOMIC_RELAXED), r[0],
		         r[1], r[2], r[3]);
	}
	if (!rm->claimed) {
		rm->claimed = 1;
		claim_from_pool(a, rm);
	}
	fd = openat(a->dirfd, rm->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(a->dirfd, SPARE_DIR, 0777) < 0 && errno != EEXIST)
			return -1;
		fd = openat(a->dirfd, rm->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		            0666);
		made = 1;
	}
	if (fd < 0)
		return -1;
	/* A new spare gets its block now, so that step 1 only overwrites. */
	if (made && pwrite(fd, zeros, REF_LEN, 0) != REF_LEN) {
		close(fd);
		unlinkat(a->dirfd, rm->name, 0);
		return -1;
	}
	rm->fd = fd;
	rm->size_ok = made;
	return 0;
}

static void spare_close(struct dk_archive_refmove *rm)
{
	if (rm->fd >= 0)
		close(rm->fd);
	rm->fd = -1;
	rm->prepared = 0;
}

void dk_archive__ref_prepare(dk_archive *a, const git_oid *id)
{
	struct dk_archive_refmove *rm = state_of(a);
	char hex[REF_LEN];
	struct stat st;

	rm->prepared = 0;
	if (decide(a, rm) < 0 || (rm->fd < 0 && spare_open(a, rm) < 0))
		return;                      /* libgit2 moves it */
	git_oid_tostr(hex, sizeof(hex), id); /* 40 digits and a NUL */
	hex[HEX_LEN] = '\n';
	if (pwrite(rm->fd, hex, REF_LEN, 0) != REF_LEN)
		return;
	if (!rm->size_ok) {
		if (fstat(rm->fd, &st) < 0 ||
		    (st.st_size != REF_LEN && ftruncate(rm->fd, REF_LEN) < 0))
			return;
		rm->size_ok = 1;
	}
	git_oid_cpy(&rm->prepared_id, id);
	rm->written_at = time(NULL);
	rm->prepared = 1;
}

static int unsupported(int e)
{
	return e == EINVAL || e == ENOSYS || e == EOPNOTSUPP; /* ENOTSUP on Linux too */
}

/* Gives up git's lock taken in step 2: it becomes the spare again. */
static void unlock(dk_archive *a, struct dk_archive_refmove *rm, const char *lock)
{
	if (renameat(a->dirfd, lock, a->dirfd, rm->name) < 0) {
		unlinkat(a->dirfd, lock, 0);
		spare_close(rm);
	}
}

/* Parses a loose ref's content as git does: 40 hex digits, then the end or
 * white space. 0, or -1 for anything else (a symbolic ref, damage). */
static int parse_loose(git_oid *out, const char *buf, ssize_t n)
{
	if (n < GIT_OID_HEXSZ || (n > GIT_OID_HEXSZ && !isspace((unsigned char)buf[HEX_LEN])))
		return -1;
	char hex[GIT_OID_HEXSZ + 1];
	memcpy(hex, buf, HEX_LEN);
	hex[HEX_LEN] = '\0';
	return git_oid_fromstr(out, hex) < 0 ? -1 : 0;
}

/* Makes the directories above refname that are missing: 0, or -1 when
 * one cannot be made. */
static int make_parents(int dirfd, const char *refname)
{
	char dir[DK_ARCHIVE_REFNAME_MAX];
	size_t n = strlen(refname);

	if (n >= sizeof(dir))
		return -1;
	memcpy(dir, refname, n + 1);
	for (char *p = strchr(dir, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(dirfd, dir, 0777) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

int dk_archive__ref_swap(dk_archive *a, const char *refname, const git_oid *id, const git_oid *tip)
{
	struct dk_archive_refmove *rm = a->refmove;
	char lock[DK_ARCHIVE_REFNAME_MAX + 8], buf[128];
	git_oid cur, zero;
	git_repository *view = NULL;
	git_odb *odb = NULL;
	struct stat st;
	int rfd, has = 0, rc;
	ssize_t n = 0;

	if (!rm || rm->mode <= 0 || !rm->prepared || rm->fd < 0 ||
	    !git_oid_equal(&rm->prepared_id, id))
		return DK_ARCHIVE_REFMOVE_FALLBACK;
	/* As libgit2 (strict object creation): a ref never names an object
	 * the repository does not have. Asked through the pack view, which
	 * holds the commit this handle just wrote (archive_pack.c, recent):
	 * asked of the repository, the miss rescanned objects/pack and mapped
	 * the new pack on every upload, a sixth of its time. */
	if (dk_archive__pack_repo(&view, a) < 0 || git_repository_odb(&odb, view) < 0) {
		git_error_clear();
		dk_error_clear();
		return DK_ARCHIVE_REFMOVE_FALLBACK;
	}
	rc = git_odb_exists(odb, id);
	git_odb_free(odb);
	if (!rc)
		return DK_ARCHIVE_REFMOVE_FALLBACK; /* libgit2 says so */
	snprintf(lock, sizeof(lock), "%s.lock", refname);
	if (time(NULL) - rm->written_at > FRESH_SECONDS) {
		futimens(rm->fd, NULL);
		rm->written_at = time(NULL);
	}

	/* 2. git's lock, the new value in it */
	rc = renameat2(a->dirfd, rm->name, a->dirfd, lock, RENAME_NOREPLACE);
	if (rc < 0 && errno == ENOENT && make_parents(a->dirfd, refname) == 0)
		/* git pack-refs (git gc) removes the directories it empties */
		rc = renameat2(a->dirfd, rm->name, a->dirfd, lock, RENAME_NOREPLACE);
	if (rc < 0) {
		int e = errno;
		if (e == EEXIST)
			return GIT_ELOCKED; /* prepared stays: tried again after the wait */
		if (unsupported(e))
			rm->mode = -1;
		else if (faccessat(a->dirfd, rm->name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			spare_close(rm); /* the spare vanished: a new one next time */
		/* else libgit2 says what is wrong */
		rm->prepared = 0;
		return DK_ARCHIVE_REFMOVE_FALLBACK;
	}

	/* 3. the ref's value under the lock */
	rfd = openat(a->dirfd, refname, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (rfd >= 0) {
		if (fstat(rfd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    (n = pread(rfd, buf, sizeof(buf), 0)) < 0 || parse_loose(&cur, buf, n) < 0)
			goto fallback; /* libgit2 says what it is */
		has = 1;
	} else if (errno == ENOENT) {
		/* only in packed-refs, or nowhere; the loose file cannot
		 * appear while we hold the lock */
		rc = git_reference_name_to_id(&cur, a->repo, refname);
		if (rc < 0 && rc != GIT_ENOTFOUND)
			goto fallback;
		git_error_clear();
		has = rc == 0;
	} else {
		goto fallback;
	}
	/* as git_reference_create_matching: a ref expected at zeros must
	 * not exist, one expected at a value must exist and hold it */
	memset(&zero, 0, sizeof(zero));
	if (git_oid_equal(tip, &zero) ? has : !has || !git_oid_equal(&cur, tip)) {
		char msg[DK_ARCHIVE_REFNAME_MAX + 40];
		unlock(a, rm, lock);
		rm->prepared = 0;
		if (rfd >= 0)
			close(rfd);
		if (has) {
			git_error_set_str(GIT_ERROR_REFERENCE,
			                  "old reference value does not match");
			return GIT_EMODIFIED;
		}
		snprintf(msg, sizeof(msg), "reference '%s' not found", refname);
		git_error_set_str(GIT_ERROR_REFERENCE, msg);
		return GIT_ENOTFOUND;
	}

	/* 4. the new value in place */
	if (rfd < 0) {
		/* no loose file: the lock becomes it, a new spare next time */
		if (renameat(a->dirfd, lock, a->dirfd, refname) < 0)
			goto fallback;
		spare_close(rm);
		return 0;
	}
	/* For a moment the old file is ID.lock: its mtime must not say stale. */
	if (time(NULL) - st.st_mtime > FRESH_SECONDS)
		futimens(rfd, NULL);
	if (renameat2(a->dirfd, lock, a->dirfd, refname, RENAME_EXCHANGE) < 0) {
		if (unsupported(errno))
			rm->mode = -1;
		goto fallback;
	}
	spare_close(rm);
	if (renameat(a->dirfd, lock, a->dirfd, rm->name) < 0) {
		/* still our lock (the ref is moved): out of the way */
		unlinkat(a->dirfd, lock, 0);
		close(rfd);
		return 0;
	}
	rm->fd = rfd;
	rm->size_ok = st.st_size == REF_LEN;
	return 0;

fallback:
	if (rfd >= 0)
		close(rfd);
	unlock(a, rm, lock);
	rm->prepared = 0;
	git_error_clear();
	return DK_ARCHIVE_REFMOVE_FALLBACK;
}

void dk_archive__refmove_force_fallback(dk_archive *a, int on)
{
	struct dk_archive_refmove *rm = state_of(a);
	rm->forced = on;
	rm->mode = 0;
	rm->prepared = 0;
}

int dk_archive__refmove_exchanges(const dk_archive *a)
{
	return a->refmove && a->refmove->mode > 0;
}

void dk_archive__refmove_free(dk_archive *a)
{
	struct dk_archive_refmove *rm = a->refmove;

	if (!rm)
		return;
	if (rm->fd >= 0 && a->dirfd >= 0) {
		/* back to the pool for the next handle */
		char to[64];
		unsigned char r[6] = {0};
		RAND_bytes(r, sizeof(r));
		snprintf(to, sizeof(to), SPARE_DIR "/free-%02x%02x%02x%02x%02x%02x", r[0], r[1],
		         r[2], r[3], r[4], r[5]);
		close(rm->fd);
		rm->fd = -1;
		renameat(a->dirfd, rm->name, a->dirfd, to);
	}
	spare_close(rm);
	free(rm);
	a->refmove = NULL;
}

/* The process id in "h-PID-COUNT-RANDOM" (a handle's ref spare) or
 * "p-PID-COUNT-RANDOM" (a pack spare being written, archive_spare.c), or 0. */
static long spare_pid(const char *name)
{
	char *end;
	long pid;

	if (strncmp(name, "h-", 2) != 0 && strncmp(name, "p-", 2) != 0)
		return 0;
	pid = strtol(name + 2, &end, 10);
	return end != name + 2 && *end == '-' && pid > 0 ? pid : 0;
}

size_t dk_archive__spares_sweep(dk_archive *a)
{
	int dfd = openat(a->dirfd, SPARE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t pool = 0, packs = 0, removed = 0;
	DIR *d;

	if (dfd < 0)
		return 0;
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return 0;
	}
	for (struct dirent *e; (e = readdir(d));) {
		long pid = spare_pid(e->d_name);
		int drop = 0;
		if (pid)
			/* a process gone (one in another pid namespace may
			 * look gone: its handle then makes a new spare) */
			drop = pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
		else if (!strncmp(e->d_name, "free-", 5))
			drop = ++pool > POOL_MAX;
		else if (!strncmp(e->d_name, "pack-", 5) || !strncmp(e->d_name, "new-", 4))
			drop = ++packs > DK_ARCHIVE_SPARE_POOL_MAX;
		if (drop && unlinkat(dfd, e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
