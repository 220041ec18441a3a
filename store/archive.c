/*
 * archive.c - opening the evidence archive, checking names, and writing to
 * it: uploads (blob, tree, commit) and state-change notes, each moving an
 * instance's ref by compare-and-swap.
 *
 * How a commit lands (commit_on_ref): read the tip, build the new tree on
 * the tip's tree, write the commit with the tip as parent, then move the
 * ref only if it still points at that tip. When another writer got there
 * first (GIT_EMODIFIED, or GIT_EEXISTS for a new ref) we start again from
 * the fresh tip; the commit we built is left unreferenced and gc packs it
 * away. When the ref's .lock exists (GIT_ELOCKED) someone is mid-update:
 * we wait a little and retry, unless the lock is stale (see lock_is_stale).
 *
 * Durability by barrier. libgit2 can fsync every file it writes
 * (GIT_OPT_ENABLE_FSYNC_GITDIR): each loose object, its fan-out directory,
 * each ref's lock file and the refs directory, twelve flushes for one
 * upload and four for one note, each a journal commit and a disk cache
 * flush of its own. docket switches that off and makes a unit of work
 * durable at explicit points instead (dk_archive__barrier). A batch of
 * notes (dk_archive_notes: a chunk of a catch-up, engine/runner_notes.c)
 * is one unit however many notes and instances it holds, its commits
 * written as one pack (archive_pack.c) rather than a loose file each:
 * every object of the unit written, one flush; the refs moved, one flush;
 * then success. An upload is one flush: its blob (under 1 MB), trees and
 * commit as one pack (unflushed), the same pack with its index and the
 * intent of its ref's move as one record of the ref journal, one
 * fdatasync of the journal, then the move and success; the journal puts
 * the pack and the move back after a power loss (archive_refs.c says how
 * and why that is enough). Uploads of several threads waiting at once
 * share that pack, that record and that flush (archive_pack.c). Without
 * the journal (no boot id, or the per-file mode below), or when the
 * record does not fit in it, the upload flushes with syncfs and its moved
 * ref is flushed before success, as a note's is. That flush is syncfs(2)
 * on the repository's directory: it writes back every dirty inode of the
 * file system and flushes the disk cache, so every object (and every
 * rename that put one in place) is on disk when it returns, and since
 * Linux 5.8 it reports write-back errors. git's own core.fsyncMethod=batch
 * works the same way. So a ref still never names an object that is not on
 * disk, and nothing is reported stored before its ref is (or, for an
 * upload, the journaled intent that puts its ref back) is on disk.
 *
 * syncfs flushes the whole file system, other programs' dirty data too: on
 * a file system shared with heavy writers that can cost more than the
 * files docket wrote. DOCKET_ARCHIVE_SYNC=file puts back libgit2's fsync of
 * every file (and the barrier has nothing left to do); the default is
 * DOCKET_ARCHIVE_SYNC=syncfs. Either way the same ordering holds.
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2/sys/commit.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A lock older than this is stale; see lock_is_stale. */
#define STALE_LOCK_SECONDS 60
/* How long a live lock is waited for before giving up. */
#define LOCK_WAIT_SECONDS 30
/* Compare-and-swap rounds before giving up (each one means another writer
 * moved the ref; thousands in a row means something is wrong). */
#define MAX_CAS_ROUNDS 10000

int dk_archive__git_error(int code, const char *what)
{
	const git_error *e = git_error_last();
	return dk_error_set(code, "archive: %s: %s", what, e && e->message ? e->message : "failed");
}

int dk_archive__oid(git_oid *out, const char *hex, const char *what)
{
	if (!hex || strlen(hex) != DK_ARCHIVE_OID_HEXSZ || git_oid_fromstr(out, hex) < 0)
		return dk_error_set(DK_EINVALID, "%s '%s' is not a git object id (40 hex digits)",
		                    what, hex ? hex : "");
	return 0;
}

/* ---- opening ------------------------------------------------------------ */

/* DOCKET_ARCHIVE_SYNC: how archive writes reach the disk (see the top of
 * this file). Returns 1 for "file", 0 for "syncfs" (the default), or a
 * negative dk_err for anything else. */
static int sync_mode(void)
{
	const char *m = getenv("DOCKET_ARCHIVE_SYNC");
	if (!m || !*m || !strcmp(m, "syncfs"))
		return 0;
	if (!strcmp(m, "file"))
		return 1;
	return dk_error_set(DK_EUSAGE,
	                    "DOCKET_ARCHIVE_SYNC is '%s'; set it to syncfs (the default: one "
	                    "flush of the file system per batch of writes) or file (fsync every "
	                    "file as it is written)",
	                    m);
}

int dk_archive_check_settings(void)
{
	int mode = sync_mode();
	return mode < 0 ? mode : 0;
}

/* libgit2 counts git_libgit2_init calls; every open takes one reference and
 * every free drops it, so the library is shut down with the last archive.
 * The fsync option is global and reset by a full shutdown, so it is set on
 * every open (a plain store of an int): on only in the per-file mode; in
 * the default mode dk_archive__barrier makes writes durable instead. */
static void library_up(int per_file)
{
	git_libgit2_init();
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, per_file);
}

/* syncfs(2) of the file system holding the directory open as fd. Since
 * Linux 5.8 it reports write-back errors that happened since the fd was
 * opened, not only its own, so a failed write of any earlier object shows
 * here. */
static int flush_fs(int fd, const char *path)
{
	if (syncfs(fd) < 0)
		return dk_error_set(DK_EINTERNAL,
		                    "archive: cannot flush %s to disk: %s; nothing written since "
		                    "the last flush is safe; check the disk and run docket verify",
		                    path, strerror(errno));
	return 0;
}

int dk_archive__flush_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), error;
	if (fd < 0)
		return dk_error_set(DK_EINTERNAL, "archive: cannot open %s to flush it: %s", path,
		                    strerror(errno));
	error = flush_fs(fd, path);
	close(fd);
	return error;
}

void dk_archive_set_flush(dk_archive *a, int on)
{
	a->no_flush = !on;
	if (a->per_file)
		git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, on ? 1 : 0);
}

/*
 * Shared barriers. Every archive handle of the process whose repository
 * lives on one file system belongs to one flush group. A barrier needs a
 * syncfs that starts after the caller's writes; one that is already
 * running may have started before them and does not count, but the next
 * one does, and it counts for every caller that arrived meanwhile: while
 * one syncfs runs, the threads that reach a barrier wait, and one syncfs
 * then serves them all (group commit, as api/writer.c does for SQLite).
 * A lone writer pays exactly what it paid before, one syncfs per barrier;
 * N threads uploading at once pay far fewer than 2N. Ordering is kept per
 * caller: its objects are on disk before its ref moves, its ref before it
 * returns.
 *
 * The group's syncfs runs on a descriptor of its own (a dup of the first
 * handle's directory), so a write-back error is reported by the flush that
 * first sees it, to every caller that flush serves, and to those of any
 * later flush that finishes before they look (failed >= need).
 */
struct dk_flush_group {
	struct dk_flush_group *next;
	dev_t dev;
	int fd;
	unsigned int users;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned long long started, done; /* syncfs calls begun and ended */
	unsigned long long failed;        /* the last one that failed; 0: none */
	int failed_errno;
	int busy;
};

static pthread_mutex_t groups_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dk_flush_group *groups;

static int group_join(dk_archive *a)
{
	struct stat st;
	struct dk_flush_group *g;

	if (fstat(a->dirfd, &st) < 0)
		return dk_error_set(DK_EINTERNAL, "archive: cannot stat %s: %s", a->path,
		                    strerror(errno));
	pthread_mutex_lock(&groups_mu);
	for (g = groups; g && g->dev != st.st_dev; g = g->next)
		;
	if (!g) {
		int fd = fcntl(a->dirfd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			pthread_mutex_unlock(&groups_mu);
			return dk_error_set(DK_EINTERNAL, "archive: cannot open %s: %s", a->path,
			                    strerror(errno));
		}
		g = dk_calloc(1, sizeof(*g));
		g->dev = st.st_dev;
		g->fd = fd;
		pthread_mutex_init(&g->mu, NULL);
		pthread_cond_init(&g->cv, NULL);
		g->next = groups;
		groups = g;
	}
	g->users++;
	a->flush = g;
	pthread_mutex_unlock(&groups_mu);
	return 0;
}

static void group_leave(struct dk_flush_group *g)
{
	struct dk_flush_group **p;
	if (!g)
		return;
	pthread_mutex_lock(&groups_mu);
	if (--g->users == 0) {
		for (p = &groups; *p != g; p = &(*p)->next)
			;
		*p = g->next;
		close(g->fd);
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->cv);
		free(g);
	}
	pthread_mutex_unlock(&groups_mu);
}

static int group_flush(struct dk_flush_group *g, const char *path)
{
	unsigned long long need;
	int failed;

	pthread_mutex_lock(&g->mu);
	need = g->started + 1; /* the next syncfs to start is the first that counts */
	while (g->done < need) {
		unsigned long long gen;
		int rc, e;
		if (g->busy) {
			pthread_cond_wait(&g->cv, &g->mu);
			continue;
		}
		g->busy = 1;
		gen = ++g->started;
		pthread_mutex_unlock(&g->mu);
		rc = syncfs(g->fd);
		e = errno;
		pthread_mutex_lock(&g->mu);
		g->busy = 0;
		g->done = gen;
		if (rc < 0) {
			g->failed = gen;
			g->failed_errno = e;
		}
		pthread_cond_broadcast(&g->cv);
	}
	failed = g->failed >= need ? g->failed_errno : 0;
	pthread_mutex_unlock(&g->mu);
	if (failed)
		return dk_error_set(DK_EINTERNAL,
		                    "archive: cannot flush %s to disk: %s; nothing written since "
		                    "the last flush is safe; check the disk and run docket verify",
		                    path, strerror(failed));
	return 0;
}

int dk_archive__flush(dk_archive *a)
{
	return group_flush(a->flush, a->path);
}

int dk_archive__barrier(dk_archive *a)
{
	if (a->per_file || a->no_flush)
		return 0;
	return group_flush(a->flush, a->path);
}

static int remove_tree(const char *path)
{
	/* Only used on a temporary repository we created ourselves. */
	dk_buf b = DK_BUF_INIT;
	DIR *d;
	d = opendir(path);
	if (!d)
		return unlink(path);
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		dk_buf_clear(&b);
		dk_buf_printf(&b, "%s/%s", path, e->d_name);
		remove_tree(b.ptr);
	}
	closedir(d);
	dk_buf_free(&b);
	return rmdir(path);
}

/* Creates the bare repository under a temporary name and renames it into
 * place, so a half-made repository is never seen and two first opens at
 * once both end up with the same one. */
static int create_repository(const char *path, int per_file)
{
	dk_buf tmp = DK_BUF_INIT;
	git_repository *repo = NULL;
	git_config *cfg = NULL;
	unsigned char rnd[6];
	int error = 0;

	RAND_bytes(rnd, sizeof(rnd));
	dk_buf_printf(&tmp, "%s.new-%ld-%02x%02x%02x%02x%02x%02x", path, (long)getpid(), rnd[0],
	              rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	if (git_repository_init(&repo, tmp.ptr, 1) < 0) {
		error = dk_archive__git_error(DK_EINTERNAL, "cannot create the repository");
		goto cleanup;
	}
	/* No reflogs: the history of each ref is the commit chain itself. And
	 * no automatic gc by a plain git that reads the archive: docket packs
	 * with its own rules (big blobs stay loose). */
	if (git_repository_config(&cfg, repo) < 0 ||
	    git_config_set_bool(cfg, "core.logAllRefUpdates", 0) < 0 ||
	    git_config_set_int32(cfg, "gc.auto", 0) < 0) {
		error = dk_archive__git_error(DK_EINTERNAL, "cannot configure the repository");
		goto cleanup;
	}
	git_config_free(cfg);
	cfg = NULL;
	git_repository_free(repo);
	repo = NULL;
	/* Its files reach the disk before it appears under its name. */
	if (!per_file && (error = dk_archive__flush_path(tmp.ptr)) < 0)
		goto cleanup;
	if (rename(tmp.ptr, path) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY) {
			error = dk_error_set(DK_EINTERNAL, "archive: cannot create %s: %s", path,
			                     strerror(errno));
		}
		/* else another process created it first: use theirs */
		remove_tree(tmp.ptr);
	}
cleanup:
	if (error < 0)
		remove_tree(tmp.ptr);
	git_config_free(cfg);
	git_repository_free(repo);
	dk_buf_free(&tmp);
	return error;
}

int dk_archive_open(dk_archive **out, const char *home)
{
	dk_archive *a = NULL;
	dk_buf path = DK_BUF_INIT;
	int error = 0, per_file;

	*out = NULL;
	if ((per_file = sync_mode()) < 0)
		return per_file;
	library_up(per_file);
	if (!home || !*home) {
		error = dk_error_set(DK_EUSAGE,
		                     "no home directory; pass --home DIR or set DOCKET_HOME");
		goto cleanup;
	}
	if (mkdir(home, 0700) < 0 && errno != EEXIST) {
		error = dk_error_set(DK_EINVALID, "cannot create home %s: %s; check the path", home,
		                     strerror(errno));
		goto cleanup;
	}
	dk_buf_printf(&path, "%s/archive.git", home);
	a = dk_calloc(1, sizeof(*a));
	a->auto_gc = DK_ARCHIVE_AUTO_GC;
	a->per_file = per_file;
	a->dirfd = -1;
	a->jfd = -1;
	if (git_repository_open_bare(&a->repo, path.ptr) < 0) {
		if (access(path.ptr, F_OK) == 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot open the repository");
			goto cleanup;
		}
		if ((error = create_repository(path.ptr, per_file)) < 0)
			goto cleanup;
		if (git_repository_open_bare(&a->repo, path.ptr) < 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot open the repository");
			goto cleanup;
		}
	}
	a->dirfd = open(path.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->dirfd < 0) {
		error = dk_error_set(DK_EINTERNAL, "archive: cannot open %s: %s", path.ptr,
		                     strerror(errno));
		goto cleanup;
	}
	a->path = dk_buf_detach(&path);
	if ((error = group_join(a)) < 0 || (error = dk_archive__commits_join(a)) < 0 ||
	    (error = dk_archive__journal_open(a)) < 0)
		goto cleanup;
	*out = a;
	a = NULL;
cleanup:
	dk_buf_free(&path);
	if (a) {
		dk_archive__commits_leave(a);
		group_leave(a->flush);
		dk_archive__pack_free(a);
		git_odb_free(a->raw_odb);
		git_repository_free(a->repo);
		if (a->dirfd >= 0)
			close(a->dirfd);
		free(a->path);
		free(a);
	}
	if (error < 0)
		git_libgit2_shutdown();
	return error;
}

void dk_archive_free(dk_archive *a)
{
	if (!a)
		return;
	dk_archive__journal_close(a);
	dk_archive__refmove_free(a);
	dk_archive__spare_free(a);
	dk_archive__commits_leave(a);
	group_leave(a->flush);
	dk_archive__pack_free(a);
	git_odb_free(a->raw_odb);
	git_repository_free(a->repo);
	if (a->dirfd >= 0)
		close(a->dirfd);
	free(a->path);
	free(a);
	git_libgit2_shutdown();
}

const char *dk_archive_path(const dk_archive *a)
{
	return a->path;
}

void dk_archive_set_auto_gc(dk_archive *a, unsigned int loose_objects)
{
	a->auto_gc = loose_objects;
}

/* ---- names -------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s and its code point, or 0 when it is not
 * valid UTF-8 (overlong forms, surrogates and values past U+10FFFF are
 * invalid). */
static size_t utf8_decode(const unsigned char *s, unsigned int *cp)
{
	unsigned int c = s[0], n, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 2, min = 0x80, c &= 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, min = 0x800, c &= 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, min = 0x10000, c &= 0x07;
	} else {
		return 0;
	}
	for (unsigned int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static int bad_name(const char *what, const char *name, const char *why)
{
	return dk_error_set(DK_EINVALID, "%s '%s' %s", what, name, why);
}

/* The rules of dk_archive_safe_name; what names the thing in messages. */
static int check_name(const char *name, const char *what)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t len;

	if (!name || !*name)
		return dk_error_set(DK_EINVALID, "%s is empty; give the file a name (--name NAME)",
		                    what);
	len = strlen(name);
	if (len > DK_ARCHIVE_NAME_MAX)
		return dk_error_set(DK_EINVALID,
		                    "%s is %zu bytes long; at most %d are kept; pick a shorter one "
		                    "with --name",
		                    what, len, DK_ARCHIVE_NAME_MAX);
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return bad_name(what, name, "is not a file name; pick a real one with --name");
	for (size_t i = 0; i < len;) {
		unsigned int cp;
		size_t n = utf8_decode(s + i, &cp);
		if (n == 0)
			return dk_error_set(DK_EINVALID,
			                    "%s is not valid UTF-8 (byte %zu); rename the file or "
			                    "pick a name with --name",
			                    what, i + 1);
		if (cp == '/' || cp == '\\')
			return bad_name(what, name,
			                "holds a path separator; give a plain file name, e.g. with "
			                "--name");
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
			return dk_error_set(
			    DK_EINVALID,
			    "%s holds a control character (U+%04X); rename the file "
			    "or pick a name with --name",
			    what, cp);
		if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
		    cp == 0x200e || cp == 0x200f)
			return dk_error_set(
			    DK_EINVALID,
			    "%s holds a text-direction control (U+%04X) that would "
			    "disguise its extension; rename the file or pick a name "
			    "with --name",
			    what, cp);
		i += n;
	}
	if (name[0] == ' ' || name[len - 1] == ' ')
		return bad_name(
		    what, name,
		    "starts or ends with a space; remove it or pick a name with --name");
	if (name[len - 1] == '.')
		return bad_name(what, name,
		                "ends with a dot; remove it or pick a name with --name");
	if (!strcasecmp(name, ".git") || !strcasecmp(name, "git~1"))
		return bad_name(what, name,
		                "is reserved by git; rename the file or pick a name with --name");
	return 0;
}

int dk_archive_safe_name(char **out, const char *name)
{
	int error;
	if (out)
		*out = NULL;
	if ((error = check_name(name, "file name")) < 0)
		return error;
	if (out)
		*out = dk_strdup(name);
	return 0;
}

int dk_archive_check_instance(const char *id)
{
	size_t len = id ? strlen(id) : 0;
	if (len == 0 || len > 200)
		return dk_error_set(DK_EINVALID, "instance id '%s' must be 1 to 200 characters",
		                    id ? id : "");
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return dk_error_set(
			    DK_EINVALID,
			    "instance id '%s' may hold only letters, digits, '.', '_' "
			    "and '-'",
			    id);
	}
	if (id[0] == '.' || id[0] == '-' || strstr(id, "..") ||
	    (len >= 5 && !strcmp(id + len - 5, ".lock")))
		return dk_error_set(DK_EINVALID,
		                    "instance id '%s' cannot name a git ref (leading '.' or '-', "
		                    "'..', or a '.lock' ending)",
		                    id);
	return 0;
}

int dk_archive__refname(char *out, const char *instance)
{
	int error, valid = 0;
	if ((error = dk_archive_check_instance(instance)) < 0)
		return error;
	snprintf(out, DK_ARCHIVE_REFNAME_MAX, DK_ARCHIVE_REF_PREFIX "%s", instance);
	if (git_reference_name_is_valid(&valid, out) < 0 || !valid)
		return dk_error_set(DK_EINVALID, "instance id '%s' cannot name a git ref",
		                    instance);
	return 0;
}

void dk_archive_event_key(char out[37])
{
	unsigned char r[16];
	if (RAND_bytes(r, sizeof(r)) != 1) {
		/* RAND_bytes fails only without an entropy source; fall back on
		 * something still unique per process and instant. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		memset(r, 0, sizeof(r));
		memcpy(r, &ts, sizeof(ts) < sizeof(r) ? sizeof(ts) : sizeof(r));
		r[15] ^= (unsigned char)getpid();
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
	         r[13], r[14], r[15]);
}

/* A trailer value: present, one line, no control characters. */
static int check_field(const char *value, const char *what)
{
	if (!value || !*value)
		return dk_error_set(DK_EINVALID, "archive: %s is missing", what);
	if (strlen(value) > 1024)
		return dk_error_set(DK_EINVALID, "archive: %s is too long", what);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return dk_error_set(
			    DK_EINVALID, "archive: %s '%s' holds a control character", what, value);
	return 0;
}

/* "25.3 MB", "20 MB", "512 KB", "17 bytes" (units of 1024, as max-size). */
static void format_size(char out[48], int64_t n)
{
	static const char *units[] = {"KB", "MB", "GB", "TB"};
	double v = (double)n;
	int u = -1;
	if (n < 1024) {
		snprintf(out, 48, "%lld byte%s", (long long)n, n == 1 ? "" : "s");
		return;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	char num[32];
	snprintf(num, sizeof(num), "%.1f", v);
	size_t l = strlen(num);
	if (l > 2 && !strcmp(num + l - 2, ".0"))
		num[l - 2] = '\0';
	snprintf(out, 48, "%s %s", num, units[u]);
}

static int too_big(const dk_archive_put_opts *o, int64_t size, int at_least)
{
	char have[48], limit[48];
	format_size(have, size);
	format_size(limit, o->max_size);
	if (!strcmp(have, limit) || at_least)
		return dk_error_set(DK_EINVALID,
		                    "file is %s%s (%lld bytes); evidence '%s' accepts at most %s "
		                    "(%lld bytes)",
		                    at_least ? "more than " : "", have, (long long)size, o->kind,
		                    limit, (long long)o->max_size);
	return dk_error_set(DK_EINVALID, "file is %s; evidence '%s' accepts at most %s", have,
	                    o->kind, limit);
}

static int check_type(const dk_archive_put_opts *o)
{
	const char *dot = strrchr(o->name, '.');
	const char *ext = dot && dot != o->name ? dot + 1 : NULL;
	dk_buf allowed = DK_BUF_INIT;
	int error;

	if (o->ntypes == 0)
		return 0;
	for (size_t i = 0; ext && i < o->ntypes; i++)
		if (!strcasecmp(ext, o->types[i]))
			return 0;
	for (size_t i = 0; i < o->ntypes; i++)
		dk_buf_printf(&allowed, "%s%s", i ? ", " : "", o->types[i]);
	if (ext)
		error = dk_error_set(DK_EINVALID,
		                     "'%s' is a .%s file; evidence '%s' accepts only %s; convert "
		                     "it or attach it as another kind",
		                     o->name, ext, o->kind, allowed.ptr);
	else
		error = dk_error_set(DK_EINVALID,
		                     "'%s' has no extension; evidence '%s' accepts only %s; name "
		                     "it with one (--name)",
		                     o->name, o->kind, allowed.ptr);
	dk_buf_free(&allowed);
	return error;
}

int dk_archive_put_check(const dk_archive_put_opts *o, int64_t size)
{
	int error;
	if (!o || o->version != DK_ARCHIVE_PUT_OPTS_VERSION)
		return dk_error_set(DK_EINTERNAL, "archive: put options of an unknown version");
	if ((error = dk_archive_check_instance(o->instance)) < 0 ||
	    (error = check_field(o->flow, "flow")) < 0 ||
	    (error = check_field(o->event, "event key")) < 0 ||
	    (error = check_field(o->actor, "actor")) < 0 ||
	    (error = check_name(o->state, "state id")) < 0 ||
	    (error = check_name(o->kind, "evidence kind")) < 0 ||
	    (error = check_name(o->name, "file name")) < 0 || (error = check_type(o)) < 0)
		return error;
	if (size >= 0 && o->max_size > 0 && size > o->max_size)
		return too_big(o, size, 0);
	return 0;
}

/* ---- signatures ---------------------------------------------------------- */

/* git refuses '<', '>' and line breaks in signatures; a display name from
 * the org directory is cleaned of them rather than refused, because it is
 * decoration (Docket-Actor carries the user id). */
static int make_author(git_signature **out, const char *actor, const char *name, const char *email,
                       int64_t t)
{
	dk_buf n = DK_BUF_INIT, e = DK_BUF_INIT;
	int error = 0;

	for (const char *p = name && *name ? name : actor; *p; p++)
		if (*p != '<' && *p != '>' && (unsigned char)*p >= 0x20)
			dk_buf_putc(&n, *p);
	if (n.len == 0 || strspn(n.ptr, " ") == n.len)
		dk_buf_puts(&n, actor);
	if (email && *email && !strpbrk(email, "<>\n\r"))
		dk_buf_puts(&e, email);
	else
		dk_buf_printf(&e, "%s@docket.invalid", actor);
	if (git_signature_new(out, n.ptr, e.ptr, (git_time_t)t, 0) < 0 &&
	    git_signature_new(out, actor, "unknown@docket.invalid", (git_time_t)t, 0) < 0)
		error = dk_archive__git_error(DK_EINVALID, "cannot make the author line");
	dk_buf_free(&n);
	dk_buf_free(&e);
	return error;
}

/* ---- locks --------------------------------------------------------------- */

/*
 * Stale lock rule. libgit2 moves a ref by creating REF.lock with O_EXCL,
 * writing the new id, fsyncing and renaming it over REF; packed-refs is
 * rewritten the same way through packed-refs.lock. A live writer holds such
 * a lock for one small write and one fsync: milliseconds. The lock files
 * carry no owner pid, so "owner certainly gone" cannot be read from them;
 * age is the evidence instead: a lock whose mtime is more than 60 seconds
 * old was left by a process that died between creating and renaming it
 * (crash, kill -9, power loss). Removing it loses nothing: the ref file
 * still holds the last acknowledged value, and whatever the lock held was
 * never acknowledged to anyone. Younger locks are waited for.
 *
 * Removal is by rename to a unique name first, then a check that what we
 * renamed is the very file judged stale (same inode and mtime), so that a
 * writer who replaced the stale lock by a fresh one in between is not
 * robbed of it: its lock is linked back.
 */
static int lock_is_stale(const struct stat *st)
{
	return time(NULL) - st->st_mtime > STALE_LOCK_SECONDS;
}

/* Returns 1 when a stale lock was removed, 0 otherwise. */
static int recover_lock(const char *lock)
{
	struct stat st, st2;
	char moved[4096];
	unsigned char r[4];

	if (stat(lock, &st) < 0 || !lock_is_stale(&st))
		return 0;
	RAND_bytes(r, sizeof(r));
	snprintf(moved, sizeof(moved), "%s.stale-%ld-%02x%02x%02x%02x", lock, (long)getpid(), r[0],
	         r[1], r[2], r[3]);
	if (rename(lock, moved) < 0)
		return 0;
	if (stat(moved, &st2) == 0 &&
	    (st2.st_ino != st.st_ino || st2.st_mtime != st.st_mtime || !lock_is_stale(&st2))) {
		/* Not the file we judged: give it back. */
		if (link(moved, lock) == 0 || errno == EEXIST)
			unlink(moved);
		return 0;
	}
	unlink(moved);
	return 1;
}

/* Called on GIT_ELOCKED while moving refname. Returns 0 to retry (after a
 * stale lock was removed or a short wait), or an error once a live lock has
 * been waited for LOCK_WAIT_SECONDS. *waited_ms accumulates. */
static int handle_locked(dk_archive *a, const char *refname, long *waited_ms)
{
	char lock[4096];
	const char *others[] = {"packed-refs.lock", "index.lock"};
	int removed = 0;
	unsigned char r;

	snprintf(lock, sizeof(lock), "%s/%s.lock", a->path, refname);
	removed |= recover_lock(lock);
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		snprintf(lock, sizeof(lock), "%s/%s", a->path, others[i]);
		removed |= recover_lock(lock);
	}
	if (removed)
		return 0;
	if (*waited_ms > LOCK_WAIT_SECONDS * 1000L) {
		snprintf(lock, sizeof(lock), "%s/%s.lock", a->path, refname);
		return dk_error_set(DK_ECONFLICT,
		                    "archive: %s has been locked for %d s by another writer; if no "
		                    "docket process is running, it is removed once %d s old; try "
		                    "again",
		                    lock, LOCK_WAIT_SECONDS, STALE_LOCK_SECONDS);
	}
	/* Random 1-4 ms: writers that collided do not collide again in step. */
	RAND_bytes(&r, 1);
	long ms = 1 + (r & 3);
	struct timespec ts = {0, ms * 1000000L};
	nanosleep(&ts, NULL);
	*waited_ms += ms;
	return 0;
}

/* ---- commits on an instance's ref ---------------------------------------- */

int dk_archive__tip(git_oid *out, dk_archive *a, const char *instance)
{
	char refname[DK_ARCHIVE_REFNAME_MAX];
	int error;
	if ((error = dk_archive__refname(refname, instance)) < 0)
		return error;
	error = git_reference_name_to_id(out, a->repo, refname);
	if (error == GIT_ENOTFOUND)
		return DK_ENOTFOUND;
	if (error < 0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot read the instance's ref");
	return 0;
}

/* Builds the new tree in repo (the pack view) from the tip's tree's id
 * (NULL when the ref is new). */
typedef int (*tree_fn)(git_oid *out, git_repository *repo, const git_oid *baseline, void *payload);

typedef struct {
	git_oid commit;
	git_oid parent;
	int has_parent;
	int retries;
} commit_result;

/* Moves refname from tip to id, or creates it when tip is NULL, as one
 * compare-and-swap under the ref's lock: GIT_EMODIFIED when another writer
 * got there first. A value dk_archive__ref_prepare wrote before the flush
 * moves by exchanging the handle's spare file with the ref, under git's own
 * lock (archive_refmove.c: no inode freed); anything else through libgit2.
 * There a new ref is created "matching" the zero id, which libgit2 checks
 * under the lock; git_reference_create with force 0 checks that the ref
 * does not exist before taking the lock, so two writers could both pass and
 * the second overwrite the first one's commit. *out is NULL after an
 * exchange. */
int dk_archive__ref_cas(git_reference **out, dk_archive *a, const char *refname, const git_oid *id,
                        const git_oid *tip)
{
	git_oid none;
	int rc;

	*out = NULL;
	if (!tip) {
		memset(&none, 0, sizeof(none));
		tip = &none;
	}
	if ((rc = dk_archive__ref_swap(a, refname, id, tip)) != DK_ARCHIVE_REFMOVE_FALLBACK)
		return rc;
	return git_reference_create_matching(out, a->repo, refname, id, 1, tip, NULL);
}

/* Moves refname from tip to commit, waiting out live locks and removing
 * stale ones: 0, GIT_EMODIFIED / GIT_EEXISTS when another writer moved it
 * first, or a negative dk_err. */
static int move_ref(dk_archive *a, const char *refname, const git_oid *commit, const git_oid *tip,
                    long *waited_ms, int *retries)
{
	git_reference *ref = NULL;
	int rc, error;

	for (;;) {
		rc = dk_archive__ref_cas(&ref, a, refname, commit, tip);
		git_reference_free(ref);
		ref = NULL;
		if (rc != GIT_ELOCKED)
			break;
		(*retries)++;
		if ((error = handle_locked(a, refname, waited_ms)) < 0)
			return error;
	}
	if (rc == 0 || rc == GIT_EMODIFIED || rc == GIT_EEXISTS)
		return rc;
	return dk_archive__git_error(DK_EINTERNAL, "cannot move the instance's ref");
}

/*
 * One commit on an instance's ref: read the tip, build the new tree and
 * the commit in the pack view (archive_pack.c; the blob is in it already,
 * or on disk when it was big), write them as one pack, append the intent
 * of the move to the ref journal (archive_refs.c), flush once, and move
 * the ref by compare-and-swap. With the journal the upload is durable
 * then: the objects and the intent are on disk, and the move is put back
 * after a power loss from the intent. Without it (no boot id, or
 * DOCKET_ARCHIVE_SYNC=file), or when the round's record did not fit in it
 * (kept 0: the round flushed with syncfs), the moved ref is flushed
 * before success. The ref moves by exchange with the handle's spare file
 * (archive_refmove.c), its new value written before the flush.
 * Uploads to one ref are serialised by its lock (dk_archive__ref_lock), so
 * a compare-and-swap fails only when a note moved the ref meanwhile: then
 * again from the new tip.
 */
static int commit_on_ref(commit_result *res, dk_archive *a, const char *instance,
                         const git_signature *author, const char *message, tree_fn make_tree,
                         void *payload)
{
	char refname[DK_ARCHIVE_REFNAME_MAX], intent[DK_ARCHIVE_INTENT_MAX];
	git_signature *committer = NULL;
	git_repository *view = NULL;
	long waited_ms = 0;
	int error, locked = 0, kept = 0;

	memset(res, 0, sizeof(*res));
	if ((error = dk_archive__refname(refname, instance)) < 0 ||
	    (error = dk_archive__pack_repo(&view, a)) < 0)
		return error;
	if (git_signature_new(&committer, "docket", "docket@docket.invalid", author->when.time, 0) <
	    0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot make the committer line");
	if ((error = dk_archive__ref_lock(a, refname, 1)) < 0)
		goto cleanup;
	locked = 1;

	for (int round = 0;; round++) {
		git_commit *parent = NULL;
		git_oid tip, tree_id;
		const git_oid *parents[1] = {&tip};
		int has_tip, rc;

		if (round >= MAX_CAS_ROUNDS) {
			error = dk_error_set(DK_ECONFLICT,
			                     "archive: %s kept moving under %d attempts; try again",
			                     refname, MAX_CAS_ROUNDS);
			break;
		}
		rc = git_reference_name_to_id(&tip, a->repo, refname);
		if (rc < 0 && rc != GIT_ENOTFOUND) {
			error =
			    dk_archive__git_error(DK_EINTERNAL, "cannot read the instance's ref");
			break;
		}
		has_tip = rc == 0;
		if (has_tip && git_commit_lookup(&parent, view, &tip) < 0) {
			error =
			    dk_archive__git_error(DK_EINTERNAL, "cannot read the instance's tip");
			goto round_done;
		}
		/* the trees and the commit: new, not looked for on disk */
		dk_archive__pack_own(a, 1);
		error =
		    make_tree(&tree_id, view, has_tip ? git_commit_tree_id(parent) : NULL, payload);
		if (error == 0 &&
		    git_commit_create_from_ids(&res->commit, view, NULL, author, committer, NULL,
		                               message, &tree_id, has_tip ? 1 : 0, parents) < 0)
			error = dk_archive__git_error(DK_EINTERNAL, "cannot write the commit");
		dk_archive__pack_own(a, 0);
		if (error < 0)
			goto round_done;
		/* Every object of this round and the intent of the move on
		 * disk, in one flush, before the ref may name them; shared
		 * with the uploads of other threads waiting at the same time
		 * (archive_pack.c). */
		if ((error = dk_archive__intent(a, intent, refname, has_tip ? &tip : NULL,
		                                &res->commit)) < 0)
			goto round_done;
		/* The ref's new content, in the handle's spare, on disk with
		 * that flush (archive_refmove.c says why before); when the
		 * flush is the ref journal's alone, recovery puts right a ref
		 * that came back with the spare's old content
		 * (archive_refs.c). */
		dk_archive__ref_prepare(a, &res->commit);
		if ((error = dk_archive__pack_commit(a, intent[0] ? intent : NULL, &kept)) == 0)
			error = move_ref(a, refname, &res->commit, has_tip ? &tip : NULL,
			                 &waited_ms, &res->retries);
		dk_archive__intent_done(a);
		if (error == 0) {
			res->has_parent = has_tip;
			if (has_tip)
				git_oid_cpy(&res->parent, &tip);
			/* Without the journal (or with its record not in it:
			 * full) the moved ref is flushed before anyone hears of
			 * it. */
			if (!kept)
				error = dk_archive__barrier(a);
		} else if (error == GIT_EMODIFIED || error == GIT_EEXISTS) {
			res->retries++;
			error = 1; /* a note moved the ref: again from its tip */
		}
	round_done:
		git_commit_free(parent);
		if (error != 1)
			break;
	}
cleanup:
	dk_archive__pack_discard(a);
	if (locked)
		dk_archive__ref_lock(a, refname, 0);
	git_signature_free(committer);
	return error;
}

/* ---- uploads --------------------------------------------------------------- */

typedef struct {
	dk_archive *a;
	const char *names[3]; /* state, kind, file name */
	git_oid blob;
} put_tree_payload;

/* The tip's tree with STATE/KIND/NAME set to the blob, spliced from the
 * old trees' bytes (archive_tree.c). */
static int put_tree(git_oid *out, git_repository *repo, const git_oid *baseline, void *payload)
{
	put_tree_payload *p = payload;
	return dk_archive__tree_put(out, p->a, baseline, p->names, 3, &p->blob);
}

void dk_archive__hex(char *out, const unsigned char *md, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Reads fd to its end, passing each chunk to the hash and to write(). A
 * regular file must yield exactly `expect` bytes (it must not change while
 * we read it); otherwise max_size (when > 0) caps what is accepted. */
typedef int (*sink_fn)(void *sink, const char *data, size_t len);

static int stream_fd(int64_t *total, char sha256[65], int fd, const dk_archive_put_opts *o,
                     int64_t expect, sink_fn sink, void *sinkp)
{
	char *buf = dk_malloc(DK_ARCHIVE_CHUNK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[32];
	unsigned int dlen = 0;
	int error = 0;

	*total = 0;
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		error = dk_error_set(DK_EINTERNAL, "archive: cannot start SHA-256");
		goto cleanup;
	}
	for (;;) {
		ssize_t n = read(fd, buf, DK_ARCHIVE_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error =
			    dk_error_set(DK_EINVALID, "cannot read the file: %s", strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		*total += n;
		if (expect >= 0 && *total > expect) {
			error = dk_error_set(DK_ECONFLICT,
			                     "the file grew while it was being archived; attach it "
			                     "again once it is complete");
			goto cleanup;
		}
		if (o->max_size > 0 && *total > o->max_size) {
			error = too_big(o, *total, 1);
			goto cleanup;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		if ((error = sink(sinkp, buf, (size_t)n)) < 0)
			goto cleanup;
	}
	if (expect >= 0 && *total != expect) {
		error = dk_error_set(DK_ECONFLICT,
		                     "the file shrank while it was being archived; attach it again "
		                     "once it is complete");
		goto cleanup;
	}
	EVP_DigestFinal_ex(md, digest, &dlen);
	dk_archive__hex(sha256, digest, 32);
	sha256[64] = '\0';
cleanup:
	EVP_MD_CTX_free(md);
	free(buf);
	return error;
}

static int odb_sink(void *s, const char *data, size_t len)
{
	if (git_odb_stream_write(s, data, len) < 0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot write the blob");
	return 0;
}

static int buf_sink(void *s, const char *data, size_t len)
{
	dk_buf_put(s, data, len);
	return 0;
}

static int blobstream_sink(void *s, const char *data, size_t len)
{
	git_writestream *ws = s;
	if (ws->write(ws, data, len) < 0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot write the blob");
	return 0;
}

/* Writes the blob. A regular file under DK_ARCHIVE_RAW_MIN is read into
 * the pack view (memory; written with the tree and commit as one pack).
 * A bigger regular file's size is known, so its bytes go
 * straight into one loose object (git_odb_open_wstream: deflated and
 * hashed as they pass; a big one that samples as incompressible is laid
 * out in deflate's stored blocks instead, see archive_raw.c). A pipe's size is not, so it goes
 * through git_blob_create_from_stream, which spools to a temporary file first. Either way nothing
 * is held whole in memory, and on any failure the temporary file is removed and no object appears.
 */
static int write_blob(git_oid *blob, int64_t *size, char sha256[65], dk_archive *a,
                      const dk_archive_put_opts *o, int fd)
{
	struct stat st;
	git_odb *odb = NULL;
	git_odb_stream *os = NULL;
	git_writestream *ws = NULL;
	int error = 0;

	if (fstat(fd, &st) < 0)
		return dk_error_set(DK_EINVALID, "cannot read the file: %s", strerror(errno));
	if (S_ISDIR(st.st_mode))
		return dk_error_set(DK_EINVALID, "'%s' is a directory; attach one file at a time",
		                    o->name);
	if (S_ISREG(st.st_mode)) {
		git_odb *into;
		if (o->max_size > 0 && st.st_size > o->max_size)
			return too_big(o, st.st_size, 0);
		/* A small file goes into the pack view, to be written with its
		 * tree and commit as one pack (archive_pack.c). */
		if (st.st_size < DK_ARCHIVE_RAW_MIN) {
			git_repository *view = NULL;
			dk_buf b = DK_BUF_INIT;
			if ((error = dk_archive__pack_repo(&view, a)) == 0 &&
			    (error = stream_fd(size, sha256, fd, o, st.st_size, buf_sink, &b)) ==
			        0 &&
			    git_blob_create_from_buffer(blob, view, b.ptr ? b.ptr : "", b.len) < 0)
				error =
				    dk_archive__git_error(DK_EINTERNAL, "cannot write the blob");
			dk_buf_free(&b);
			return error;
		}
		/* Content that does not compress goes in stored blocks (see
		 * archive_raw.c); the rest is deflated by libgit2. */
		if (dk_archive__incompressible(fd, st.st_size)) {
			if ((error = dk_archive__raw_odb(&into, a)) < 0)
				goto cleanup;
		} else if (git_repository_odb(&odb, a->repo) < 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot start the blob");
			goto cleanup;
		} else {
			into = odb;
		}
		/* A loose object: its upload's round flushes with syncfs. */
		a->loose = 1;
		if (git_odb_open_wstream(&os, into, (git_object_size_t)st.st_size,
		                         GIT_OBJECT_BLOB) < 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot start the blob");
			goto cleanup;
		}
		if ((error = stream_fd(size, sha256, fd, o, st.st_size, odb_sink, os)) < 0)
			goto cleanup;
		if (git_odb_stream_finalize_write(blob, os) < 0)
			error = dk_archive__git_error(DK_EINTERNAL, "cannot finish the blob");
	} else {
		a->loose = 1;
		if (git_blob_create_from_stream(&ws, a->repo, NULL) < 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot start the blob");
			goto cleanup;
		}
		if ((error = stream_fd(size, sha256, fd, o, -1, blobstream_sink, ws)) < 0)
			goto cleanup;
		/* commit frees the stream, whatever it returns */
		git_writestream *w = ws;
		ws = NULL;
		if (git_blob_create_from_stream_commit(blob, w) < 0)
			error = dk_archive__git_error(DK_EINTERNAL, "cannot finish the blob");
	}
cleanup:
	if (ws)
		ws->free(ws);
	git_odb_stream_free(os);
	git_odb_free(odb);
	return error;
}

int dk_archive_put(dk_archive_put_result *out, dk_archive *a, const dk_archive_put_opts *o, int fd)
{
	put_tree_payload tp;
	git_signature *author = NULL;
	commit_result cr;
	dk_buf msg = DK_BUF_INIT;
	int error, ran = 0;

	memset(out, 0, sizeof(*out));
	if ((error = dk_archive_put_check(o, -1)) < 0)
		return error;
	if ((error = write_blob(&tp.blob, &out->size, out->sha256, a, o, fd)) < 0)
		goto cleanup;
	tp.a = a;
	tp.names[0] = o->state;
	tp.names[1] = o->kind;
	tp.names[2] = o->name;
	dk_buf_printf(&msg,
	              "attach %s/%s\n\n"
	              "Docket-Instance: %s\nDocket-Flow: %s\nDocket-State: %s\n"
	              "Docket-Evidence: %s\nDocket-Name: %s\nDocket-Sha256: %s\n"
	              "Docket-Size: %lld\nDocket-Actor: %s\nDocket-Event: %s\n",
	              o->kind, o->name, o->instance, o->flow, o->state, o->kind, o->name,
	              out->sha256, (long long)out->size, o->actor, o->event);
	if ((error = make_author(&author, o->actor, o->author_name, o->author_email, o->time)) < 0)
		goto cleanup;
	if ((error = commit_on_ref(&cr, a, o->instance, author, msg.ptr, put_tree, &tp)) < 0)
		goto cleanup;
	git_oid_tostr(out->blob, sizeof(out->blob), &tp.blob);
	git_oid_tostr(out->commit, sizeof(out->commit), &cr.commit);
	if (cr.has_parent)
		git_oid_tostr(out->parent, sizeof(out->parent), &cr.parent);
	out->retries = cr.retries;
	/* The upload is durable now (see commit_on_ref); packing is housekeeping, and a failure
	 * there must not turn a stored upload into a reported failure (the
	 * next put tries again). */
	dk_archive_maybe_gc(&ran, a);
	dk_error_clear();
	dk_archive__pack_discard(a);
	dk_archive__wrote(a, ran);
cleanup:
	dk_archive__pack_discard(a);
	git_signature_free(author);
	dk_buf_free(&msg);
	return error;
}

/*
 * libgit2 never forgets a pack it has seen: a miss rescans objects/pack and
 * adds the new ones, and a deleted one stays in the list (its map still
 * valid). Every upload writes a pack and gc merges them away, so a handle
 * that lives through thousands of uploads (the growth benchmark, serve's
 * request threads) searched thousands of packs, most long deleted, on
 * every lookup: an upload at 10,000 archived files cost three times one
 * at the first thousand. So a handle opens its repository afresh after a
 * gc it ran and every DK_ARCHIVE_REOPEN_WRITES writes (uploads, batches of
 * notes): about a millisecond, and never more than that many packs seen
 * and gone. The pack view is kept and reads through the new odb: it used
 * to go with the old one, and with it the last upload's commit and trees,
 * the ids its packs hold and its deflate streams, so the next upload read
 * its parent from disk again (a reopen cost 30 us an upload in all).
 */
void dk_archive__wrote(dk_archive *a, int ran_gc)
{
	git_repository *fresh = NULL;

	if (++a->writes < DK_ARCHIVE_REOPEN_WRITES && !ran_gc)
		return;
	if (dk_archive__pack_count(a) != 0 || git_repository_open_bare(&fresh, a->path) < 0) {
		git_error_clear();
		return; /* next time */
	}
	dk_archive__pack_rebase(a, fresh);
	git_repository_free(a->repo);
	a->repo = fresh;
	a->writes = 0;
}

int dk_archive_put_file(dk_archive_put_result *out, dk_archive *a, const dk_archive_put_opts *o,
                        const char *path)
{
	int fd, error;
	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return dk_error_set(DK_ENOTFOUND, "%s: no such file; check the path", path);
		return dk_error_set(DK_EINVALID, "%s: cannot open: %s", path, strerror(errno));
	}
	error = dk_archive_put(out, a, o, fd);
	close(fd);
	return error;
}

/* ---- state changes ---------------------------------------------------------- */

/* The message of a note: subject, the comment as its own paragraph, the
 * trailers. */
static void note_message(dk_buf *msg, const dk_archive_note_opts *o)
{
	dk_buf_printf(msg, "%s: %s -> %s\n\n", o->transition,
	              o->from_state && *o->from_state ? o->from_state : "(new)", o->state);
	if (o->comment && *o->comment) {
		/* The comment is its own paragraph before the trailers. A line
		 * starting with "---" would read to git as the start of a patch
		 * and hide the trailers, so such lines get a leading space; the
		 * database keeps the comment as written. */
		const char *p = o->comment;
		size_t len = strlen(p);
		while (len && (p[len - 1] == '\n' || p[len - 1] == ' ' || p[len - 1] == '\r'))
			len--;
		for (size_t i = 0; i < len;) {
			const char *nl = memchr(p + i, '\n', len - i);
			size_t l = nl ? (size_t)(nl - (p + i)) : len - i;
			if (l >= 3 && !strncmp(p + i, "---", 3))
				dk_buf_putc(msg, ' ');
			dk_buf_put(msg, p + i, l);
			dk_buf_putc(msg, '\n');
			i += l + 1;
		}
		if (len)
			dk_buf_putc(msg, '\n');
	}
	dk_buf_printf(msg,
	              "Docket-Instance: %s\nDocket-Flow: %s\nDocket-State: %s\n"
	              "Docket-Transition: %s\nDocket-Actor: %s\nDocket-Event: %s\n",
	              o->instance, o->flow, o->state, o->transition, o->actor, o->event);
}

static int check_note(const dk_archive_note_opts *o)
{
	int error;
	if (!o || o->version != DK_ARCHIVE_NOTE_OPTS_VERSION)
		return dk_error_set(DK_EINTERNAL, "archive: note options of an unknown version");
	if ((error = dk_archive_check_instance(o->instance)) < 0 ||
	    (error = check_field(o->flow, "flow")) < 0 ||
	    (error = check_field(o->state, "state")) < 0 ||
	    (error = check_field(o->transition, "transition")) < 0 ||
	    (error = check_field(o->event, "event key")) < 0 ||
	    (error = check_field(o->actor, "actor")) < 0 ||
	    (o->from_state && *o->from_state &&
	     (error = check_field(o->from_state, "previous state")) < 0))
		return error;
	return 0;
}

/*
 * A batch of notes. The notes of one instance form a chain: the first
 * one's parent is the ref's tip, each next one's parent the one before,
 * and the ref moves once, by compare-and-swap, from the tip it was built
 * on to the chain's last commit. Each round builds the chains still
 * pending in memory (the pack view of archive_pack.c), writes all their
 * commits as one pack, flushes once (dk_archive__barrier) and then moves
 * their refs;
 * a chain whose ref moved meanwhile is built again on the new tip in the
 * next round. Once no chain is pending, one more flush makes the moved
 * refs durable. So a batch costs two flushes however many notes and
 * instances it holds.
 */
enum { NOTE_PENDING = 1 };

typedef struct {
	int error; /* NOTE_PENDING, 0 once its ref moved, or a dk_err */
	char *why; /* the message of error */
	git_oid commit;
	git_signature *author, *committer; /* committer: docket, at the note's time */
	dk_buf msg;
} note_slot;

typedef struct {
	char refname[DK_ARCHIVE_REFNAME_MAX];
	size_t *idx; /* the chain's notes to write, in batch order */
	size_t n;
	size_t built; /* idx[0..built) are written in this round */
	git_oid tip;
	int has_tip;
	long waited_ms;
	int pending; /* its ref has not moved yet */
	char *why;   /* set once a note of the chain failed: later ones fail too */
} note_chain;

static void slot_fail(note_slot *s, int error, const char *why)
{
	if (s->error != NOTE_PENDING && s->error != 0)
		return;
	s->error = error;
	free(s->why);
	s->why = dk_strdup(why);
}

/* A note after a failed one of its instance: the notes of one instance go
 * in order or not at all, so a gap never reads as history. */
static void slot_fail_after(note_slot *s, const char *why)
{
	dk_buf b = DK_BUF_INIT;
	dk_buf_printf(&b, "an earlier note of its instance failed: %s", why);
	slot_fail(s, DK_EINTERNAL, b.ptr);
	dk_buf_free(&b);
}

/* Fails idx[from..n) of chain c with error and the message now in
 * dk_error_last(); the chain keeps the notes before them. */
static void chain_fail(note_slot *slots, note_chain *c, size_t from, int error)
{
	const char *why = dk_error_last();
	if (!c->why)
		c->why = dk_strdup(why);
	for (size_t k = from; k < c->n; k++) {
		if (k == from)
			slot_fail(&slots[c->idx[k]], error, c->why);
		else
			slot_fail_after(&slots[c->idx[k]], c->why);
	}
	c->n = from;
	if (c->built > from)
		c->built = from;
	c->pending = c->pending && c->n > 0;
}

/* Writes the commits of chain c on the ref's current tip into c->built. A
 * note that cannot be written fails with those after it; the chain keeps
 * the ones before. */
static void build_chain(dk_archive *a, git_repository *view, note_slot *slots, note_chain *c,
                        git_oid *empty, int *has_empty)
{
	git_oid tree_id, prev;
	git_commit *tip = NULL;
	int rc;

	c->built = 0;
	rc = git_reference_name_to_id(&c->tip, a->repo, c->refname);
	if (rc < 0 && rc != GIT_ENOTFOUND) {
		chain_fail(slots, c, 0,
		           dk_archive__git_error(DK_EINTERNAL, "cannot read the instance's ref"));
		return;
	}
	c->has_tip = rc == 0;
	if (c->has_tip) {
		if (git_commit_lookup(&tip, a->repo, &c->tip) < 0) {
			chain_fail(
			    slots, c, 0,
			    dk_archive__git_error(DK_EINTERNAL, "cannot read the instance's tip"));
			return;
		}
		git_oid_cpy(&tree_id, git_commit_tree_id(tip));
		git_commit_free(tip);
	} else {
		if (!*has_empty) {
			git_treebuilder *tb = NULL;
			rc = git_treebuilder_new(&tb, view, NULL) < 0 ||
			     git_treebuilder_write(empty, tb) < 0;
			git_treebuilder_free(tb);
			if (rc) {
				chain_fail(slots, c, 0,
				           dk_archive__git_error(DK_EINTERNAL,
				                                 "cannot write the empty tree"));
				return;
			}
			*has_empty = 1;
		}
		git_oid_cpy(&tree_id, empty);
	}
	git_oid_cpy(&prev, &c->tip);
	for (size_t k = 0; k < c->n; k++) {
		note_slot *sl = &slots[c->idx[k]];
		const git_oid *parents[1] = {&prev};
		size_t nparents = k == 0 && !c->has_tip ? 0 : 1;
		if (git_commit_create_from_ids(&sl->commit, view, NULL, sl->author, sl->committer,
		                               NULL, sl->msg.ptr, &tree_id, nparents,
		                               parents) < 0) {
			chain_fail(slots, c, k,
			           dk_archive__git_error(DK_EINTERNAL, "cannot write the commit"));
			return;
		}
		git_oid_cpy(&prev, &sl->commit);
		c->built = k + 1;
	}
}

/* Moves chain c's ref from the tip it was built on to its last commit.
 * Returns 1 when it moved, 0 when the chain must be built again on a new
 * tip, or a negative dk_err (the whole chain failed). */
static int move_chain(dk_archive *a, note_slot *slots, note_chain *c)
{
	git_reference *ref = NULL;
	const git_oid *last = &slots[c->idx[c->built - 1]].commit;
	int rc, error;

	rc = dk_archive__ref_cas(&ref, a, c->refname, last, c->has_tip ? &c->tip : NULL);
	git_reference_free(ref);
	/* A lock is waited for here, moving again from the same tip: going
	 * round the batch instead rebuilt the chain and wrote and flushed a
	 * pack on every wait, thousands of them behind one lock a crash left. */
	while (rc == GIT_ELOCKED) {
		if ((error = handle_locked(a, c->refname, &c->waited_ms)) < 0) {
			chain_fail(slots, c, 0, error);
			return error;
		}
		ref = NULL;
		rc = dk_archive__ref_cas(&ref, a, c->refname, last, c->has_tip ? &c->tip : NULL);
		git_reference_free(ref);
	}
	if (rc == 0) {
		for (size_t k = 0; k < c->built; k++)
			slots[c->idx[k]].error = 0;
		c->pending = 0;
		return 1;
	}
	if (rc == GIT_EMODIFIED || rc == GIT_EEXISTS)
		return 0; /* another writer moved the ref: again from its tip */
	error = dk_archive__git_error(DK_EINTERNAL, "cannot move the instance's ref");
	chain_fail(slots, c, 0, error);
	return error;
}

/* Groups the notes into chains, one per instance in order of first
 * appearance; a note refused here fails with the later ones of its
 * instance. Returns how many chains. */
static size_t make_chains(note_chain *chains, note_slot *slots, const dk_archive_note_opts *notes,
                          size_t n)
{
	size_t nchains = 0;
	int error;

	for (size_t i = 0; i < n; i++) {
		const dk_archive_note_opts *o = &notes[i];
		note_chain *c = NULL;
		for (size_t k = 0; k < nchains && !c; k++)
			if (o->instance && !strcmp(notes[chains[k].idx[0]].instance, o->instance))
				c = &chains[k];
		if (c && c->why) {
			slot_fail_after(&slots[i], c->why);
			continue;
		}
		if ((error = check_note(o)) < 0 ||
		    (!c &&
		     (error = dk_archive__refname(chains[nchains].refname, o->instance)) < 0) ||
		    (error = make_author(&slots[i].author, o->actor, o->author_name,
		                         o->author_email, o->time)) < 0 ||
		    (git_signature_new(&slots[i].committer, "docket", "docket@docket.invalid",
		                       (git_time_t)o->time, 0) < 0 &&
		     (error = dk_archive__git_error(DK_EINTERNAL,
		                                    "cannot make the committer line")) < 0)) {
			slot_fail(&slots[i], error, dk_error_last());
			if (c)
				c->why = dk_strdup(dk_error_last());
			continue;
		}
		if (!c) {
			c = &chains[nchains++];
			c->idx = dk_calloc(n, sizeof(*c->idx));
			c->pending = 1;
		}
		c->idx[c->n++] = i;
		note_message(&slots[i].msg, o);
	}
	return nchains;
}

/* Fails every pending chain, and those whose ref moved since the last
 * flush when moved is given (the flush meant for them failed). */
static void fail_all(note_slot *slots, note_chain *chains, size_t nchains, const int *moved,
                     int error)
{
	for (size_t c = 0; c < nchains; c++) {
		if ((moved && moved[c]) || chains[c].pending) {
			chain_fail(slots, &chains[c], 0, error);
		}
	}
}

static void write_batch(dk_archive *a, note_slot *slots, const dk_archive_note_opts *notes,
                        size_t n)
{
	note_chain *chains = dk_calloc(n ? n : 1, sizeof(*chains));
	int *moved = dk_calloc(n ? n : 1, sizeof(*moved));
	size_t nchains = make_chains(chains, slots, notes, n), pending = nchains;
	git_repository *view = NULL;
	git_oid empty;
	int has_empty = 0, error, unflushed = 0;

	if (nchains && (error = dk_archive__pack_repo(&view, a)) < 0) {
		fail_all(slots, chains, nchains, NULL, error);
		pending = 0;
	}
	for (int round = 0; pending; round++) {
		int built = 0;
		if (round >= MAX_CAS_ROUNDS) {
			fail_all(
			    slots, chains, nchains, NULL,
			    dk_error_set(DK_ECONFLICT,
			                 "archive: refs kept moving under %d attempts; try again",
			                 MAX_CAS_ROUNDS));
			break;
		}
		for (size_t c = 0; c < nchains; c++) {
			if (!chains[c].pending)
				continue;
			build_chain(a, view, slots, &chains[c], &empty, &has_empty);
			built |= chains[c].built > 0;
		}
		if (!built) {
			dk_archive__pack_discard(a);
			break;
		}
		/* Every chain's objects into one pack, and the pack (and the refs
		 * moved in an earlier round) on disk before any ref may name
		 * them. */
		if ((error = dk_archive__pack_write(a, NULL)) < 0 ||
		    (error = dk_archive__barrier(a)) < 0) {
			fail_all(slots, chains, nchains, moved, error);
			unflushed = 0;
			break;
		}
		memset(moved, 0, nchains * sizeof(*moved));
		unflushed = 0;
		pending = 0;
		for (size_t c = 0; c < nchains; c++) {
			if (!chains[c].pending)
				continue;
			int rc = move_chain(a, slots, &chains[c]);
			moved[c] = rc == 1;
			unflushed |= rc == 1;
			pending += rc == 0;
		}
	}
	/* The moved refs on disk before anyone hears of them. */
	if (unflushed && (error = dk_archive__barrier(a)) < 0)
		fail_all(slots, chains, nchains, moved, error);
	for (size_t c = 0; c < nchains; c++) {
		free(chains[c].idx);
		free(chains[c].why);
	}
	for (size_t i = 0; i < n; i++)
		if (slots[i].error == NOTE_PENDING) /* cannot happen; never report it written */
			slot_fail(&slots[i], DK_EINTERNAL, "archive: the note was not written");
	free(chains);
	free(moved);
}

int dk_archive_notes(dk_archive *a, const dk_archive_note_opts *notes, size_t n,
                     dk_archive_note_fn done, void *payload)
{
	note_slot *slots = dk_calloc(n ? n : 1, sizeof(*slots));
	int first = 0, ran = 0;

	for (size_t i = 0; i < n; i++) {
		slots[i].error = NOTE_PENDING;
	}
	write_batch(a, slots, notes, n);
	for (size_t i = 0; i < n; i++) {
		char hex[DK_ARCHIVE_OID_HEXSZ + 1] = "";
		if (slots[i].error == 0)
			git_oid_tostr(hex, sizeof(hex), &slots[i].commit);
		else if (!first)
			first = slots[i].error;
		if (done)
			done(i, slots[i].error, slots[i].error ? slots[i].why : hex, payload);
		free(slots[i].why);
		git_signature_free(slots[i].author);
		git_signature_free(slots[i].committer);
		dk_buf_free(&slots[i].msg);
	}
	free(slots);
	/* Packing is housekeeping: its failure is no failure of the notes. */
	dk_archive_maybe_gc(&ran, a);
	dk_archive__wrote(a, ran);
	dk_error_clear();
	return first;
}

typedef struct {
	char *commit_out;
	int error;
	char *why;
} one_note;

static void one_done(size_t i, int error, const char *text, void *payload)
{
	one_note *o = payload;
	(void)i;
	o->error = error;
	if (error)
		o->why = dk_strdup(text);
	else if (o->commit_out)
		snprintf(o->commit_out, DK_ARCHIVE_OID_HEXSZ + 1, "%s", text);
}

int dk_archive_note(char commit_out[DK_ARCHIVE_OID_HEXSZ + 1], dk_archive *a,
                    const dk_archive_note_opts *o)
{
	one_note one = {commit_out, 0, NULL};
	int error;

	if (commit_out)
		commit_out[0] = '\0';
	if ((error = check_note(o)) < 0)
		return error;
	dk_archive_notes(a, o, 1, one_done, &one);
	if (one.error)
		dk_error_set(one.error, "%s", one.why);
	free(one.why);
	return one.error;
}
