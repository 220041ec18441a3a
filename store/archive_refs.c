/*
 * archive_refs.c - an upload made durable with one flush: the ref journal
 * that lets an upload return before the move of its ref is on disk, and
 * puts that move back after a power loss.
 *
 * An upload used to flush twice: its objects, then (after the
 * compare-and-swap of the instance's ref) the ref, so that a ref never
 * names an object that is not on disk and nothing is reported stored
 * before its ref is. Now it flushes once. Before that flush it has
 * written its objects (one pack, archive_pack.c) and appended to
 * ARCHIVE/docket-refs.journal one line, its intent:
 *
 *   refs/docket/instances/ID FROM TO        (FROM: 40 zeros for a new ref)
 *
 * The flush makes the objects and the intent durable together; then the
 * ref moves from FROM to TO by compare-and-swap, unflushed, and the
 * upload returns. The next flush of anyone (the next upload, a note, gc,
 * a rotation of the journal) makes the ref itself durable.
 *
 * After a power loss the ref may be older than an upload that returned
 * success (the rename of its lock file was not on disk yet), missing (a
 * new ref), or unreadable (a zero-length file). Its intent is on disk,
 * and so are the objects it names. The journal's first line holds the
 * boot id (/proc/sys/kernel/random/boot_id) under which it was written;
 * dk_archive_open reads it, and when it is another boot's (the machine
 * restarted since) it recovers before the handle is returned, so no
 * reader or writer sees the refs before they are put right:
 *
 *   for each ref in the journal, its last intent whose commit is sound
 *   (commit, trees and the blobs that changed since its parent read back
 *   and match their ids); when the ref on disk is missing, unreadable or
 *   an ancestor of that commit, the ref is set to it; when the ref is
 *   that commit or a descendant of it (a later note, already flushed),
 *   or has diverged from it (a move by something other than docket), it
 *   is left as it is.
 *
 * Then one flush, and the journal starts again with this boot's id.
 * Recovery holds flock(LOCK_EX) on the journal; uploads hold LOCK_SH from
 * their intent to their compare-and-swap, so recovery (and rotation,
 * below) never runs between an intent and its move.
 *
 * Why "the last sound intent" is the ref's value. Uploads to one ref are
 * serialised, across threads and processes, by a lock of the ref
 * (dk_archive__ref_lock: an open file description lock on one byte of the
 * journal, at an offset hashed from the ref name) held from reading the
 * tip to the compare-and-swap. So the intents of one ref are appended in
 * the order of its moves, each from the tip its writer read under the
 * lock, and an intent is appended only after the previous upload of that
 * ref finished its move (or died). The intents of acknowledged uploads
 * were flushed before their moves, so they are in the journal; the last
 * intent of a ref is either an acknowledged upload's, or one whose writer
 * died before its move or whose flush never happened:
 *  - died before its move: its objects were flushed (or it is not sound
 *    and is passed over), and its FROM was the tip; moving the ref onto it
 *    makes visible an upload nobody was told of, as a crash between the
 *    git commit and the database commit always could (verify --repair
 *    records it);
 *  - not flushed: either its objects did not all reach the disk (not
 *    sound: passed over for the intent before it, which is an
 *    acknowledged upload's), or they did, and it is the case above.
 * A compare-and-swap that fails under the lock means a note moved the
 * ref (notes do not take the lock; they flush their moves before they
 * return): the upload writes a new intent from the new tip. If power is
 * lost before that, the last intent's commit has diverged from the ref
 * on disk (the note's, flushed), which is kept.
 *
 * The journal is cut back to its first line once it passes
 * JOURNAL_MAX bytes, after a flush that made every ref it speaks of
 * durable. Without a readable boot id (not Linux), or with
 * DOCKET_ARCHIVE_SYNC=file (libgit2 fsyncs each ref as it moves), there is
 * no journal and an upload flushes its ref before it returns, as before.
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_NAME  "docket-refs.journal"
#define JOURNAL_MAGIC "docket-refs 1 boot "
/* Cut back past this many bytes (about 10,000 uploads). */
#define JOURNAL_MAX ((off_t)1024 * 1024)
/* Offsets of the ref locks: bytes of the journal file past any size it
 * reaches (locks on bytes beyond the end are allowed and write nothing). */
#define REF_LOCK_BASE  ((off_t)1 << 40)
#define REF_LOCK_SLOTS ((off_t)1 << 20)

static int boot_id(char out[64])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	size_t n;

	out[0] = '\0';
	if (!f)
		return -1;
	n = fread(out, 1, 63, f);
	fclose(f);
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		n--;
	out[n] = '\0';
	return n ? 0 : -1;
}

static int journal_error(dk_archive *a, const char *what)
{
	return dk_error_set(DK_EINTERNAL, "archive: cannot %s %s/" JOURNAL_NAME ": %s", what,
	                    a->path, strerror(errno));
}

/* Locks or unlocks (type F_WRLCK / F_UNLCK) byte at of the journal, as an
 * open file description lock: held per handle, so threads of one process
 * exclude each other as processes do. Waits. */
static int ofd_lock(int fd, off_t at, short type)
{
	struct flock l;
	memset(&l, 0, sizeof(l));
	l.l_type = type;
	l.l_whence = SEEK_SET;
	l.l_start = at;
	l.l_len = 1;
	while (fcntl(fd, F_OFD_SETLKW, &l) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

static int lock_file(int fd, int how)
{
	while (flock(fd, how) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* ---- recovery ------------------------------------------------------------ */

typedef struct {
	char *ref;
	git_oid from, to;
	size_t at; /* line number: the order of the intents */
} intent;

static int by_ref_then_last(const void *x, const void *y)
{
	const intent *a = x, *b = y;
	int c = strcmp(a->ref, b->ref);
	if (c)
		return c;
	return a->at < b->at ? 1 : a->at > b->at ? -1 : 0;
}

/* Parses "REF FROM TO" (a line without its newline); 0 or -1. */
static int parse_intent(intent *out, char *line)
{
	char *sp2 = strrchr(line, ' '), *sp1;
	int valid = 0;

	if (!sp2)
		return -1;
	*sp2 = '\0';
	sp1 = strrchr(line, ' ');
	if (!sp1)
		return -1;
	*sp1 = '\0';
	if (strlen(sp1 + 1) != GIT_OID_HEXSZ || strlen(sp2 + 1) != GIT_OID_HEXSZ ||
	    git_oid_fromstr(&out->from, sp1 + 1) < 0 || git_oid_fromstr(&out->to, sp2 + 1) < 0 ||
	    strncmp(line, DK_ARCHIVE_REF_PREFIX, strlen(DK_ARCHIVE_REF_PREFIX)) != 0 ||
	    git_reference_name_is_valid(&valid, line) < 0 || !valid)
		return -1;
	out->ref = line;
	return 0;
}

/* Does the blob read back whole and match its id? */
static int blob_sound(dk_archive *a, const git_oid *id)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(hex, sizeof(hex), id);
	return dk_archive_get_blob(a, hex, NULL, NULL, NULL, NULL) == 0;
}

/* Are tree and everything in it that base (its parent's tree at the same
 * path; NULL: none) does not hold sound? What base holds was on disk
 * before (an earlier flush). libgit2 checks each object's id as it reads
 * it (strict hash verification). */
static int tree_sound(dk_archive *a, const git_tree *tree, const git_tree *base, int depth)
{
	size_t n = git_tree_entrycount(tree);

	if (depth > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const git_tree_entry *b =
		    base ? git_tree_entry_byname(base, git_tree_entry_name(e)) : NULL;
		git_object_t type = git_tree_entry_type(e);
		int ok = 1;

		if (b && git_oid_equal(git_tree_entry_id(b), git_tree_entry_id(e)))
			continue;
		if (type == GIT_OBJECT_TREE) {
			git_tree *sub = NULL, *subbase = NULL;
			if (git_tree_lookup(&sub, a->repo, git_tree_entry_id(e)) < 0)
				return 0;
			if (b && git_tree_entry_type(b) == GIT_OBJECT_TREE &&
			    git_tree_lookup(&subbase, a->repo, git_tree_entry_id(b)) < 0)
				subbase = NULL;
			ok = tree_sound(a, sub, subbase, depth + 1);
			git_tree_free(subbase);
			git_tree_free(sub);
		} else if (type == GIT_OBJECT_BLOB) {
			ok = blob_sound(a, git_tree_entry_id(e));
		}
		if (!ok)
			return 0;
	}
	return 1;
}

/* Is the commit id, and what it adds to its first parent, on disk whole? */
static int commit_sound(dk_archive *a, const git_oid *id)
{
	git_commit *c = NULL, *p = NULL;
	git_tree *t = NULL, *pt = NULL;
	int ok = 0;

	if (git_commit_lookup(&c, a->repo, id) < 0 || git_commit_tree(&t, c) < 0)
		goto done;
	if (git_commit_parentcount(c) > 0 &&
	    (git_commit_parent(&p, c, 0) < 0 || git_commit_tree(&pt, p) < 0))
		pt = NULL; /* check the whole tree */
	ok = tree_sound(a, t, pt, 0);
done:
	git_tree_free(pt);
	git_tree_free(t);
	git_commit_free(p);
	git_commit_free(c);
	git_error_clear();
	return ok;
}

/* Is ref on disk at commit to, or at a descendant of it? */
static int at_or_past(dk_archive *a, const char *ref, const git_oid *to)
{
	git_oid cur;
	git_commit *c = NULL;
	int yes = 0;

	if (git_reference_name_to_id(&cur, a->repo, ref) == 0 &&
	    git_commit_lookup(&c, a->repo, &cur) == 0)
		yes = git_oid_equal(&cur, to) || git_graph_descendant_of(a->repo, &cur, to) == 1;
	git_commit_free(c);
	git_error_clear();
	return yes;
}

/* Puts ref onto to, where recover found it is not already (at_or_past):
 * when it is missing, unreadable or behind to (see the top of this file).
 * A ref that went another way is left alone. Returns 1 when it moved it,
 * 0 when it left it, or an error when it could not write it: the journal
 * must then keep the intent for the next open to try again. */
static int put_forward(dk_archive *a, const char *ref, const git_oid *to)
{
	git_oid cur;
	git_commit *c = NULL;
	git_reference *r = NULL;
	int rc = git_reference_name_to_id(&cur, a->repo, ref);

	if (rc == 0 && git_commit_lookup(&c, a->repo, &cur) == 0) {
		git_commit_free(c);
		if (git_graph_descendant_of(a->repo, to, &cur) != 1) {
			git_error_clear();
			return 0; /* diverged: not a move this journal lost */
		}
	} else if (rc != GIT_ENOTFOUND) {
		/* a damaged file libgit2 cannot parse, or one naming no
		 * commit: out of the way */
		dk_buf p = DK_BUF_INIT;
		dk_buf_printf(&p, "%s/%s", a->path, ref);
		unlink(p.ptr);
		dk_buf_free(&p);
	}
	git_error_clear();
	if (git_reference_create(&r, a->repo, ref, to, 1, "docket: recovered after a restart") <
	    0) {
		const git_error *e = git_error_last();
		char hex[GIT_OID_HEXSZ + 1];
		git_oid_tostr(hex, sizeof(hex), to);
		rc = dk_error_set(
		    DK_EINTERNAL,
		    "archive: cannot put %s back onto %s after a restart: %s; make "
		    "%s/%s writable (and the disk not full), then run the command again",
		    ref, hex, e ? e->message : "unknown error", a->path, ref);
		git_error_clear();
		return rc;
	}
	git_reference_free(r);
	return 1;
}

/* Puts every ref of the journal's intents right (under LOCK_EX). */
static int recover(dk_archive *a, char *text, size_t len)
{
	intent *v = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	char *p = text, *end = text + len;

	/* the first line is the header */
	p = len ? memchr(p, '\n', len) : NULL;
	p = p ? p + 1 : end;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		intent it;
		if (!nl)
			break; /* a torn last line: never flushed, never acted on */
		*nl = '\0';
		if (parse_intent(&it, p) == 0) {
			if (n == cap) {
				cap = cap ? 2 * cap : 256;
				v = dk_realloc(v, cap * sizeof(*v));
			}
			it.at = lineno;
			v[n++] = it;
		}
		lineno++;
		p = nl + 1;
	}
	if (n)
		qsort(v, n, sizeof(*v), by_ref_then_last);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && !strcmp(v[j].ref, v[i].ref))
			j++;
		/* v[i..j) is one ref's intents, the last first. Most refs
		 * are where their last intent put them (any clean restart):
		 * that is cheap to see, and nothing to check further. */
		if (at_or_past(a, v[i].ref, &v[i].to)) {
			i = j;
			continue;
		}
		for (size_t k = i; k < j; k++)
			if (commit_sound(a, &v[k].to)) {
				int error = put_forward(a, v[k].ref, &v[k].to);
				if (error < 0) {
					free(v);
					return error;
				}
				break;
			}
		i = j;
	}
	free(v);
	/* The refs put right on disk before the journal forgets why. With
	 * no intent there was nothing to put right, and nothing to flush. */
	return n ? dk_archive__barrier(a) : 0;
}

/* Reads the whole journal into b. */
static int read_journal(dk_buf *b, int fd)
{
	char chunk[65536];
	off_t at = 0;

	dk_buf_clear(b);
	for (;;) {
		ssize_t r = pread(fd, chunk, sizeof(chunk), at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		dk_buf_put(b, chunk, (size_t)r);
		at += r;
	}
}

/* Is the journal's first line this boot's? */
static int header_is(const dk_buf *b, const char *header)
{
	size_t hl = strlen(header);
	return b->len >= hl && !memcmp(b->ptr, header, hl);
}

int dk_archive__journal_open(dk_archive *a)
{
	dk_buf path = DK_BUF_INIT, b = DK_BUF_INIT, header = DK_BUF_INIT;
	char boot[64];
	char first[128];
	ssize_t r;
	int error = 0, fd;

	a->jfd = -1;
	if (a->per_file || boot_id(boot) < 0)
		return 0; /* no journal: refs flushed as they move */
	dk_buf_printf(&header, JOURNAL_MAGIC "%s\n", boot);
	dk_buf_printf(&path, "%s/" JOURNAL_NAME, a->path);
	fd = open(path.ptr, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		error = journal_error(a, "open");
		goto cleanup;
	}
	/* The usual case: written under this boot; nothing to do. */
	r = pread(fd, first, sizeof(first) - 1, 0);
	if (r >= (ssize_t)header.len && !memcmp(first, header.ptr, header.len)) {
		a->jfd = fd;
		goto cleanup;
	}
	if (lock_file(fd, LOCK_EX) < 0 || read_journal(&b, fd) < 0) {
		error = journal_error(a, "read");
		close(fd);
		goto cleanup;
	}
	if (!header_is(&b, header.ptr)) {
		/* Another boot's (or new, or its first line lost): put the
		 * refs right, flush, and start again under this boot. */
		a->jfd = fd; /* for the barrier's sake nothing else uses it yet */
		if ((error = recover(a, b.ptr, b.len)) < 0 || ftruncate(fd, 0) < 0 ||
		    dk_write_all(fd, header.ptr, header.len) < 0) {
			if (!error)
				error = journal_error(a, "write");
			a->jfd = -1;
			close(fd);
			goto cleanup;
		}
	}
	lock_file(fd, LOCK_UN);
	a->jfd = fd;
cleanup:
	dk_buf_free(&path);
	dk_buf_free(&b);
	dk_buf_free(&header);
	return error;
}

void dk_archive__journal_close(dk_archive *a)
{
	if (a->jfd >= 0)
		close(a->jfd);
	a->jfd = -1;
}

int dk_archive__journaled(const dk_archive *a)
{
	return a->jfd >= 0;
}

/* ---- uploads --------------------------------------------------------------- */

static off_t slot_of(const char *ref)
{
	/* FNV-1a */
	unsigned long long h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)ref; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return REF_LOCK_BASE + (off_t)(h % (unsigned long long)REF_LOCK_SLOTS);
}

int dk_archive__ref_lock(dk_archive *a, const char *refname, int on)
{
	if (a->jfd < 0)
		return 0;
	if (ofd_lock(a->jfd, slot_of(refname), on ? F_WRLCK : F_UNLCK) < 0)
		return journal_error(a, on ? "lock a ref in" : "unlock a ref in");
	return 0;
}

int dk_archive__intent(dk_archive *a, char line[DK_ARCHIVE_INTENT_MAX], const char *refname,
                       const git_oid *from, const git_oid *to)
{
	char f[GIT_OID_HEXSZ + 1], t[GIT_OID_HEXSZ + 1];
	git_oid zero;
	int n;

	line[0] = '\0';
	if (a->jfd < 0)
		return 0;
	if (!from) {
		memset(&zero, 0, sizeof(zero));
		from = &zero;
	}
	git_oid_tostr(f, sizeof(f), from);
	git_oid_tostr(t, sizeof(t), to);
	n = snprintf(line, DK_ARCHIVE_INTENT_MAX, "%s %s %s\n", refname, f, t);
	if (n < 0 || n >= DK_ARCHIVE_INTENT_MAX) {
		line[0] = '\0';
		return dk_error_set(DK_EINTERNAL, "archive: ref name too long for the journal");
	}
	if (lock_file(a->jfd, LOCK_SH) < 0) {
		line[0] = '\0';
		return journal_error(a, "lock");
	}
	return 0;
}

int dk_archive__journal_write(dk_archive *a, int fd, const char *line)
{
	/* One write with O_APPEND: lines of writers at once do not mix. */
	if (dk_write_all(fd, line, strlen(line)) < 0)
		return journal_error(a, "write");
	return 0;
}

void dk_archive__intent_done(dk_archive *a)
{
	struct stat st;

	if (a->jfd < 0)
		return;
	lock_file(a->jfd, LOCK_UN);
	if (fstat(a->jfd, &st) < 0 || st.st_size <= JOURNAL_MAX)
		return;
	/* Cut back: once no intent is between its write and its move, one
	 * flush makes every ref the journal speaks of durable. Whoever gets
	 * the lock first does it; the others go on. */
	if (flock(a->jfd, LOCK_EX | LOCK_NB) < 0)
		return;
	if (fstat(a->jfd, &st) == 0 && st.st_size > JOURNAL_MAX && !a->no_flush &&
	    dk_archive__barrier(a) == 0) {
		char first[128];
		ssize_t r = pread(a->jfd, first, sizeof(first), 0);
		char *nl = r > 0 ? memchr(first, '\n', (size_t)r) : NULL;
		if (nl && ftruncate(a->jfd, (off_t)(nl - first + 1)) < 0) {
			/* left long: cut back next time */
		}
	}
	dk_error_clear();
	lock_file(a->jfd, LOCK_UN);
}
