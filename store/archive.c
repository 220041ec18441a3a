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
 * Objects are written, and with fsync on synced, before the ref moves, so
 * a ref never points at something that is not on disk.
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

/* libgit2 counts git_libgit2_init calls; every open takes one reference and
 * every free drops it, so the library is shut down with the last archive.
 * The fsync option is global and reset by a full shutdown, so it is set on
 * every open (a plain store of an int). */
static void library_up(void)
{
	git_libgit2_init();
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
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
static int create_repository(const char *path)
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
	int error = 0;

	*out = NULL;
	library_up();
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
	if (git_repository_open_bare(&a->repo, path.ptr) < 0) {
		if (access(path.ptr, F_OK) == 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot open the repository");
			goto cleanup;
		}
		if ((error = create_repository(path.ptr)) < 0)
			goto cleanup;
		if (git_repository_open_bare(&a->repo, path.ptr) < 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot open the repository");
			goto cleanup;
		}
	}
	a->path = dk_buf_detach(&path);
	*out = a;
	a = NULL;
cleanup:
	dk_buf_free(&path);
	if (a) {
		git_repository_free(a->repo);
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
	git_repository_free(a->repo);
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

/* Builds the new tree from the tip's tree (NULL when the ref is new). */
typedef int (*tree_fn)(git_oid *out, dk_archive *a, git_tree *baseline, void *payload);

typedef struct {
	git_oid commit;
	git_oid parent;
	int has_parent;
	int retries;
} commit_result;

static int commit_on_ref(commit_result *res, dk_archive *a, const char *instance,
                         const git_signature *author, const char *message, tree_fn make_tree,
                         void *payload)
{
	char refname[DK_ARCHIVE_REFNAME_MAX];
	git_signature *committer = NULL;
	long waited_ms = 0;
	int error;

	memset(res, 0, sizeof(*res));
	if ((error = dk_archive__refname(refname, instance)) < 0)
		return error;
	if (git_signature_new(&committer, "docket", "docket@docket.invalid", author->when.time, 0) <
	    0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot make the committer line");

	for (int round = 0;; round++) {
		git_commit *parent = NULL;
		git_tree *baseline = NULL, *tree = NULL;
		git_reference *ref = NULL;
		git_oid tip, tree_id;
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
		if (has_tip && (git_commit_lookup(&parent, a->repo, &tip) < 0 ||
		                git_commit_tree(&baseline, parent) < 0)) {
			error =
			    dk_archive__git_error(DK_EINTERNAL, "cannot read the instance's tip");
			goto round_done;
		}
		if ((error = make_tree(&tree_id, a, baseline, payload)) < 0)
			goto round_done;
		if (git_tree_lookup(&tree, a->repo, &tree_id) < 0 ||
		    git_commit_create(&res->commit, a->repo, NULL, author, committer, NULL, message,
		                      tree, has_tip ? 1 : 0,
		                      (const git_commit **)(has_tip ? &parent : NULL)) < 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot write the commit");
			goto round_done;
		}
		if (has_tip)
			rc = git_reference_create_matching(&ref, a->repo, refname, &res->commit, 1,
			                                   &tip, NULL);
		else
			rc = git_reference_create(&ref, a->repo, refname, &res->commit, 0, NULL);
		if (rc == 0) {
			res->has_parent = has_tip;
			if (has_tip)
				git_oid_cpy(&res->parent, &tip);
		} else if (rc == GIT_EMODIFIED || rc == GIT_EEXISTS) {
			res->retries++;
			error = 1; /* another writer moved the ref: again from its tip */
		} else if (rc == GIT_ELOCKED) {
			res->retries++;
			if ((error = handle_locked(a, refname, &waited_ms)) == 0)
				error = 1;
		} else {
			error =
			    dk_archive__git_error(DK_EINTERNAL, "cannot move the instance's ref");
		}
	round_done:
		git_reference_free(ref);
		git_tree_free(tree);
		git_tree_free(baseline);
		git_commit_free(parent);
		if (error != 1)
			break;
	}
	git_signature_free(committer);
	return error;
}

/* ---- uploads --------------------------------------------------------------- */

typedef struct {
	const char *path;
	git_oid blob;
} put_tree_payload;

static int put_tree(git_oid *out, dk_archive *a, git_tree *baseline, void *payload)
{
	put_tree_payload *p = payload;
	git_tree_update upd;
	git_treebuilder *tb = NULL;
	git_tree *empty = NULL;
	git_oid empty_id;
	int error = 0;

	memset(&upd, 0, sizeof(upd));
	upd.action = GIT_TREE_UPDATE_UPSERT;
	upd.id = p->blob;
	upd.filemode = GIT_FILEMODE_BLOB;
	upd.path = p->path;
	if (!baseline) {
		/* git_tree_create_updated wants a tree to start from. */
		if (git_treebuilder_new(&tb, a->repo, NULL) < 0 ||
		    git_treebuilder_write(&empty_id, tb) < 0 ||
		    git_tree_lookup(&empty, a->repo, &empty_id) < 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot write the empty tree");
			goto cleanup;
		}
		baseline = empty;
	}
	if (git_tree_create_updated(out, a->repo, baseline, 1, &upd) < 0)
		error = dk_archive__git_error(DK_EINTERNAL, "cannot write the tree");
cleanup:
	git_tree_free(empty);
	git_treebuilder_free(tb);
	return error;
}

static void hex_of(char *out, const unsigned char *md, size_t n)
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
	hex_of(sha256, digest, 32);
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

static int blobstream_sink(void *s, const char *data, size_t len)
{
	git_writestream *ws = s;
	if (ws->write(ws, data, len) < 0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot write the blob");
	return 0;
}

/* Writes the blob. A regular file's size is known, so its bytes go
 * straight into one loose object (git_odb_open_wstream: deflated and
 * hashed as they pass). A pipe's size is not, so it goes through
 * git_blob_create_from_stream, which spools to a temporary file first.
 * Either way nothing is held whole in memory, and on any failure the
 * temporary file is removed and no object appears. */
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
		if (o->max_size > 0 && st.st_size > o->max_size)
			return too_big(o, st.st_size, 0);
		if (git_repository_odb(&odb, a->repo) < 0 ||
		    git_odb_open_wstream(&os, odb, (git_object_size_t)st.st_size, GIT_OBJECT_BLOB) <
		        0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot start the blob");
			goto cleanup;
		}
		if ((error = stream_fd(size, sha256, fd, o, st.st_size, odb_sink, os)) < 0)
			goto cleanup;
		if (git_odb_stream_finalize_write(blob, os) < 0)
			error = dk_archive__git_error(DK_EINTERNAL, "cannot finish the blob");
	} else {
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
	dk_buf path = DK_BUF_INIT, msg = DK_BUF_INIT;
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = dk_archive_put_check(o, -1)) < 0)
		return error;
	if ((error = write_blob(&tp.blob, &out->size, out->sha256, a, o, fd)) < 0)
		goto cleanup;
	dk_buf_printf(&path, "%s/%s/%s", o->state, o->kind, o->name);
	tp.path = path.ptr;
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
	/* The upload is durable now; packing is housekeeping, and a failure
	 * there must not turn a stored upload into a reported failure (the
	 * next put tries again). */
	dk_archive_maybe_gc(NULL, a);
	dk_error_clear();
cleanup:
	git_signature_free(author);
	dk_buf_free(&path);
	dk_buf_free(&msg);
	return error;
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

static int note_tree(git_oid *out, dk_archive *a, git_tree *baseline, void *payload)
{
	git_treebuilder *tb = NULL;
	int error = 0;
	(void)payload;
	if (baseline) {
		git_oid_cpy(out, git_tree_id(baseline));
		return 0;
	}
	if (git_treebuilder_new(&tb, a->repo, NULL) < 0 || git_treebuilder_write(out, tb) < 0)
		error = dk_archive__git_error(DK_EINTERNAL, "cannot write the empty tree");
	git_treebuilder_free(tb);
	return error;
}

int dk_archive_note(char commit_out[DK_ARCHIVE_OID_HEXSZ + 1], dk_archive *a,
                    const dk_archive_note_opts *o)
{
	git_signature *author = NULL;
	commit_result cr;
	dk_buf msg = DK_BUF_INIT;
	int error;

	if (commit_out)
		commit_out[0] = '\0';
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
	dk_buf_printf(&msg, "%s: %s -> %s\n\n", o->transition,
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
				dk_buf_putc(&msg, ' ');
			dk_buf_put(&msg, p + i, l);
			dk_buf_putc(&msg, '\n');
			i += l + 1;
		}
		if (len)
			dk_buf_putc(&msg, '\n');
	}
	dk_buf_printf(&msg,
	              "Docket-Instance: %s\nDocket-Flow: %s\nDocket-State: %s\n"
	              "Docket-Transition: %s\nDocket-Actor: %s\nDocket-Event: %s\n",
	              o->instance, o->flow, o->state, o->transition, o->actor, o->event);
	if ((error = make_author(&author, o->actor, o->author_name, o->author_email, o->time)) < 0)
		goto cleanup;
	if ((error = commit_on_ref(&cr, a, o->instance, author, msg.ptr, note_tree, NULL)) < 0)
		goto cleanup;
	if (commit_out)
		git_oid_tostr(commit_out, DK_ARCHIVE_OID_HEXSZ + 1, &cr.commit);
	dk_archive_maybe_gc(NULL, a);
	dk_error_clear();
cleanup:
	git_signature_free(author);
	dk_buf_free(&msg);
	return error;
}
