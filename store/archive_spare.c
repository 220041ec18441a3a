/*
 * archive_spare.c - the files of the packs gc merges away are written again
 * as new packs: no inode is freed by a merge and none allocated by an
 * upload.
 *
 * Why. Every upload writes one small pack (a .pack of ~5 KB and its .idx
 * of ~1 KB) and gc's merges delete the packs they merge: two inodes freed
 * per upload. On ext4, allocating an inode scans past every inode freed in
 * the last minutes in its block group (recently_deleted()), and with the
 * `discard` mount option freeing blocks issues a synchronous discard: an
 * upload's two new files cost 122 us (730 us after another run's
 * deletions) against 38 us when they are recycled inodes of merged packs.
 * archive_refmove.c does the same for refs; this file reuses its directory
 * (ARCHIVE/docket-spare/, where plain git never looks) and conventions.
 *
 * 1. gc retires (dk_archive__spare_retire) a merged pack's .idx and .pack
 *    where it unlinked them, and only then: once the merged pack is on
 *    disk and checked to hold every object (archive_gc.c, merge_packs),
 *    .idx first so that no new reader opens the pack. A file of at most
 *    DK_ARCHIVE_SPARE_SIZE_MAX bytes, with no other link (a local `git
 *    clone` hard-links packs: overwriting the inode would change the
 *    clone's pack), owned by us (a lease needs it), is renamed to
 *    docket-spare/new-SIZE-RANDOM after a chmod to 0600 (the writer must
 *    open it for writing without privileges), up to
 *    DK_ARCHIVE_SPARE_POOL_MAX files; anything else is unlinked as before.
 *    .rev, .bitmap and .mtimes are unlinked as before. Then one flush
 *    (dk_archive__barrier; in the per-file mode an fsync of both
 *    directories) puts those renames on disk, and only then are they
 *    renamed to docket-spare/pack-SIZE-RANDOM, the names writers take
 *    (SIZE in bytes, so a writer can pick one of its size without a
 *    stat). Why: an overwrite in place is not ordered after the rename on
 *    disk (a journal orders metadata, not data written over old blocks).
 *    Were a spare written into while the rename that took it out of
 *    objects/pack was not yet on disk, a power loss could bring back the
 *    merged pack's name over another pack's bytes: a damaged pack beside
 *    the merged one, which readers could hit first. Unlinking had no such
 *    case (freed blocks are not reused before the unlink commits).
 *
 * 2. A pack writer wanting a file for a small pack or index (the size is
 *    known: archive_pack.c holds a pack of up to 1 MiB in memory until its
 *    end) lists the pool once per handle and caches the names (listing
 *    again when they are used up and gc has pooled files since, or a
 *    second has passed: gc may run in another process). It picks the name
 *    whose size is the same number of blocks (else fewer: the file grows;
 *    else more: shrinking frees blocks, the cost avoided, but the inode is
 *    still spared) and opens it O_RDWR. Before writing anything it checks
 *    that nobody else has the file open or mapped:
 *    fcntl(F_SETLEASE, F_WRLCK) is refused with EAGAIN whenever another
 *    open file description of the inode exists. In fs/locks.c,
 *    check_conflicting_open() (Linux 5.3 on; before, it refused when the
 *    inode or dentry had any other reference at all, stricter still)
 *    grants a write lease only when i_writecount and i_readcount count
 *    exactly the requester's own file: a libgit2 reader (another handle,
 *    another process, plain git) that mapped the old .idx or opened the
 *    old .pack keeps its struct file, opened read-only and so counted in
 *    i_readcount, until it closes and munmaps it (a mapping holds a
 *    reference to the file). The lease is dropped at once (F_UNLCK):
 *    only the check is wanted. Overwriting a file someone still has
 *    mapped would hand them another pack's bytes: this check is what
 *    makes recycling safe. A refused spare is closed and left in the pool
 *    for later (its reader lets go when its handle opens the repository
 *    again, archive.c's dk_archive__wrote). Where leases are not to be
 *    had (EINVAL: fs.leases-enable=0, NFS, FUSE; ENOLCK; EACCES: not the
 *    owner; ENOSYS) the handle stops recycling and makes new files as
 *    before. At most SPARE_TRIES names are tried per file.
 *
 *    The check comes before the claim: the spare is then renamed to a name
 *    of the handle's own (docket-spare/p-PID-COUNT-RANDOM), which is
 *    atomic, so of two writers that both checked one spare only one gets
 *    it (the other's rename finds ENOENT and it closes its descriptor
 *    without having written). Checking first costs a refused spare no
 *    rename out and back. Nobody can open a pooled file between the check
 *    and the claim but another writer doing the same: its name is in
 *    docket-spare/ only, and whoever opened it by its old name in
 *    objects/pack still has it open and was counted.
 *
 * 3. The content is written with pwrite from offset 0, the file is cut
 *    to the exact size only when it was longer, fchmod 0444 as packs are,
 *    fsync in the per-file sync mode (DOCKET_ARCHIVE_SYNC=file) before the
 *    caller renames it into objects/pack under the pack's name, .pack
 *    first, then .idx: the index appearing makes the pack visible, as for
 *    a new file.
 *
 * 4. Crashes. A spare is never named by git: a crash leaves a file in
 *    docket-spare/ (pooled, or under a writer's name) or a temporary file
 *    in objects/pack, as before. dk_archive__spares_sweep (gc) removes
 *    writers' files of processes that are gone and pooled or staged ones
 *    past DK_ARCHIVE_SPARE_POOL_MAX; gc's list_packs removes stale
 *    temporary ones; a staged file a crash left is published by a later
 *    gc that retires files, after its own flush.
 *
 * Durability. A recycled file's blocks are overwritten in place, and
 * nothing orders that write before the renames on disk. An upload's pack
 * is not flushed before its ref moves: its round's record in the ref
 * journal (archive_refs.c) holds the pack's and the index's bytes, read
 * back from these files, and only the journal is fdatasynced. After a
 * power loss, a pack under its new name may hold the old pack's bytes, a
 * mix, or a new file's unwritten blocks: to recovery all the same, a pack
 * that is not its record's bytes, written again from the record before
 * any ref is read. Where a record retires, the syncfs that retires it
 * writes the recycled blocks back as any others. A merged pack is written
 * into spares too and is flushed (dk_archive__barrier) and checked before
 * the packs it replaces go, as before.
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPARE_DIR   "docket-spare"
#define SPARE_TRIES 4

typedef struct {
	char name[48]; /* "pack-SIZE-RANDOM" */
	off_t size;
} pooled;

struct dk_archive_spares {
	int stopped;     /* leases refused for good: new files only */
	int unsupported; /* tests: leases answer EINVAL */
	pooled *v;       /* the names listed and not tried yet */
	size_t n, cap;
	unsigned long gen; /* pool_gen when listed */
	time_t listed_at;  /* 0: never */
	off_t blk;         /* the file system's block size */
	unsigned long long reused, refused, made;
};

/* Bumped whenever this process's gc pools files: a handle whose names are
 * used up lists the pool again only when it changed (or a second passed:
 * another process's gc). */
static unsigned long pool_gen;

static struct dk_archive_spares *state_of(dk_archive *a)
{
	if (!a->spares) {
		a->spares = dk_calloc(1, sizeof(*a->spares));
		a->spares->blk = 4096; /* until the pool's directory says */
	}
	return a->spares;
}

/* Lists the pool into s->v. */
static void list_pool(dk_archive *a, struct dk_archive_spares *s)
{
	int dfd = openat(a->dirfd, SPARE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	DIR *d;

	s->n = 0;
	s->gen = __atomic_load_n(&pool_gen, __ATOMIC_RELAXED);
	s->listed_at = time(NULL);
	if (dfd < 0)
		return;
	if (fstat(dfd, &st) == 0 && st.st_blksize > 0)
		s->blk = st.st_blksize;
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return;
	}
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		long long size;
		if (strncmp(e->d_name, "pack-", 5) != 0 ||
		    strlen(e->d_name) >= sizeof(s->v[0].name))
			continue;
		size = strtoll(e->d_name + 5, &end, 10);
		if (end == e->d_name + 5 || *end != '-' || size < 0)
			continue;
		if (s->n == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 64;
			s->v = dk_realloc(s->v, s->cap * sizeof(*s->v));
		}
		memcpy(s->v[s->n].name, e->d_name, strlen(e->d_name) + 1); /* fits: checked */
		s->v[s->n++].size = (off_t)size;
	}
	closedir(d);
}

/* Takes the best name for len bytes out of s->v into out: the same number
 * of blocks, else the most blocks below, else the fewest above. 0, or -1
 * when none is left. */
static int pick(pooled *out, struct dk_archive_spares *s, size_t len)
{
	off_t need = ((off_t)len + s->blk - 1) / s->blk;
	size_t best = s->n;
	off_t best_b = 0;

	for (size_t i = 0; i < s->n; i++) {
		off_t b = (s->v[i].size + s->blk - 1) / s->blk;
		int better;
		if (best == s->n)
			better = 1;
		else if (b == need || best_b == need)
			better = b == need && best_b != need;
		else if ((b < need) != (best_b < need))
			better = b < need;
		else
			better = b < need ? b > best_b : b < best_b;
		if (better) {
			best = i;
			best_b = b;
		}
	}
	if (best == s->n)
		return -1;
	*out = s->v[best];
	s->v[best] = s->v[--s->n];
	return 0;
}

/* Opens a spare for len bytes, checked to be nobody else's, under a name
 * of the handle's own; its path into path, its size into old. The open
 * descriptor, or -1 (then the caller makes a new file). */
static int claim(dk_archive *a, struct dk_archive_spares *s, size_t len, dk_buf *path, off_t *old)
{
	static unsigned long count;
	int relisted = 0;

	for (int tries = 0; tries < SPARE_TRIES && !s->stopped;) {
		char from[sizeof(SPARE_DIR) + 64], own[sizeof(SPARE_DIR) + 64];
		unsigned char r[4] = {0};
		struct stat st;
		pooled p;
		int fd, rc, e;

		if (pick(&p, s, len) < 0) {
			if (relisted || (s->listed_at &&
			                 s->gen == __atomic_load_n(&pool_gen, __ATOMIC_RELAXED) &&
			                 time(NULL) == s->listed_at))
				return -1;
			list_pool(a, s);
			relisted = 1;
			continue;
		}
		tries++;
		snprintf(from, sizeof(from), SPARE_DIR "/%s", p.name);
		/* O_NONBLOCK: never wait for a lease someone holds on it */
		fd = openat(a->dirfd, from, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue; /* another writer took it */
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
			close(fd); /* not ours to overwrite */
			continue;
		}
		/* 2. nobody else has it open or mapped (see the top) */
		if (s->unsupported) {
			rc = -1;
			errno = EINVAL;
		} else {
			rc = fcntl(fd, F_SETLEASE, F_WRLCK);
		}
		e = errno;
		if (rc < 0) {
			close(fd);
			if (e == EAGAIN || e == EWOULDBLOCK) {
				s->refused++;
				continue;
			}
			s->stopped = 1; /* EINVAL, ENOLCK, EACCES, ENOSYS: new files */
			return -1;
		}
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
		RAND_bytes(r, sizeof(r));
		snprintf(own, sizeof(own), SPARE_DIR "/p-%ld-%lu-%02x%02x%02x%02x", (long)getpid(),
		         __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED), r[0], r[1], r[2], r[3]);
		if (renameat(a->dirfd, from, a->dirfd, own) < 0) {
			close(fd); /* another writer claimed it first */
			continue;
		}
		dk_buf_clear(path);
		dk_buf_printf(path, "%s/%s", a->path, own);
		*old = st.st_size;
		s->reused++;
		return fd;
	}
	return -1;
}

int dk_archive__spare_write(dk_archive *a, dk_buf *path, const char *dir, const void *data,
                            size_t len, int flush)
{
	struct dk_archive_spares *s = state_of(a);
	off_t old = 0;
	int fd = -1, error = 0;

	dk_buf_clear(path);
	if (a->dirfd >= 0 && len <= DK_ARCHIVE_SPARE_SIZE_MAX)
		fd = claim(a, s, len, path, &old);
	if (fd < 0) {
		dk_buf_clear(path);
		dk_buf_printf(path, "%s/tmp_pack_dk_XXXXXX", dir);
		fd = mkostemp(path->ptr, O_CLOEXEC);
		if (fd < 0) {
			error =
			    dk_error_set(DK_EINTERNAL,
			                 "archive: cannot create %s: %s; check that the archive's "
			                 "folder is writable and the disk is not full",
			                 path->ptr, strerror(errno));
			dk_buf_clear(path);
			return error;
		}
		s->made++;
	}
	/* Packs are read-only, as git makes them. */
	(void)fchmod(fd, 0444);
	if (dk_pwrite_all(fd, data, len, 0) < 0)
		error = -1;
	/* longer before: cut (growing needs no call, the write did it) */
	if (!error && old > (off_t)len && ftruncate(fd, (off_t)len) < 0)
		error = -1;
	if (!error && flush && fsync(fd) < 0)
		error = -1;
	if (close(fd) < 0 && !error)
		error = -1;
	if (error)
		error =
		    dk_error_set(DK_EINTERNAL,
		                 "archive: cannot write %s: %s; check that the disk is not full "
		                 "and run the command again",
		                 path->ptr, strerror(errno));
	if (error) {
		unlink(path->ptr);
		dk_buf_clear(path);
	}
	return error;
}

size_t dk_archive__spare_pool(dk_archive *a)
{
	int dfd =
	    a->dirfd >= 0 ? openat(a->dirfd, SPARE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	size_t n = 0;
	DIR *d;

	if (dfd < 0)
		return 0;
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return 0;
	}
	for (struct dirent *e; (e = readdir(d));)
		n += !strncmp(e->d_name, "pack-", 5) || !strncmp(e->d_name, "new-", 4);
	closedir(d);
	return n;
}

/* fsync(2) of the directory at rel (relative to the archive): 0 or -1. */
static int fsync_at(dk_archive *a, const char *rel)
{
	int fd = openat(a->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

void dk_archive__spare_publish(dk_archive *a)
{
	int dfd;
	DIR *d;

	if (a->dirfd < 0)
		return;
	/* the renames out of objects/pack on disk before any spare is
	 * written into (see the top) */
	if (a->per_file ? fsync_at(a, "objects/pack") < 0 || fsync_at(a, SPARE_DIR) < 0
	                : dk_archive__barrier(a) < 0) {
		dk_error_clear();
		return; /* staged still: the next gc publishes them */
	}
	dfd = openat(a->dirfd, SPARE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return;
	}
	for (struct dirent *e; (e = readdir(d));) {
		char to[300];
		if (strncmp(e->d_name, "new-", 4) != 0 || strlen(e->d_name) > 200)
			continue;
		snprintf(to, sizeof(to), "pack-%s", e->d_name + 4);
		renameat(dfd, e->d_name, dfd, to);
	}
	closedir(d);
	__atomic_add_fetch(&pool_gen, 1, __ATOMIC_RELAXED);
}

void dk_archive__spare_retire(dk_archive *a, const char *rel, size_t *pool)
{
	struct stat st;

	if (a->dirfd >= 0 && *pool < DK_ARCHIVE_SPARE_POOL_MAX &&
	    fstatat(a->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    st.st_nlink == 1 && st.st_size <= (off_t)DK_ARCHIVE_SPARE_SIZE_MAX &&
	    st.st_uid == geteuid()) {
		char to[sizeof(SPARE_DIR) + 64];
		unsigned char r[6] = {0};
		int rc;
		RAND_bytes(r, sizeof(r));
		snprintf(to, sizeof(to), SPARE_DIR "/new-%lld-%02x%02x%02x%02x%02x%02x",
		         (long long)st.st_size, r[0], r[1], r[2], r[3], r[4], r[5]);
		/* its writer opens it for writing, without privileges too */
		(void)fchmodat(a->dirfd, rel, 0600, 0);
		rc = renameat(a->dirfd, rel, a->dirfd, to);
		if (rc < 0 && errno == ENOENT && mkdirat(a->dirfd, SPARE_DIR, 0777) == 0)
			rc = renameat(a->dirfd, rel, a->dirfd, to);
		if (rc == 0) {
			(*pool)++;
			return;
		}
	}
	if (a->dirfd >= 0) {
		unlinkat(a->dirfd, rel, 0);
	} else {
		dk_buf p = DK_BUF_INIT;
		dk_buf_printf(&p, "%s/%s", a->path, rel);
		unlink(p.ptr);
		dk_buf_free(&p);
	}
}

void dk_archive__spare_stats(const dk_archive *a, unsigned long long *reused,
                             unsigned long long *refused, unsigned long long *made)
{
	const struct dk_archive_spares *s = a->spares;

	*reused = s ? s->reused : 0;
	*refused = s ? s->refused : 0;
	*made = s ? s->made : 0;
}

void dk_archive__spare_force_unsupported(dk_archive *a, int on)
{
	struct dk_archive_spares *s = state_of(a);

	s->unsupported = on;
	s->stopped = 0;
}

void dk_archive__spare_free(dk_archive *a)
{
	if (!a->spares)
		return;
	free(a->spares->v);
	free(a->spares);
	a->spares = NULL;
}
