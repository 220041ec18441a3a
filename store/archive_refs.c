/*
 * archive_refs.c - an upload made durable with one fdatasync: the ref
 * journal, which holds each round of uploads whole (its pack, the pack's
 * index, the intents of its ref moves), so that neither the pack files
 * nor the refs need a flush of their own, and which puts them back after
 * a power loss.
 *
 * An upload used to flush with syncfs(2): its pack (archive_pack.c) and a
 * line of intent in this journal, then the move of its ref unflushed.
 * syncfs writes back every dirty inode of the file system and cost 300 to
 * 450 us here, most of an upload. Now a round of uploads (one, or all that
 * waited at once: archive_pack.c's group commit) writes its pack and index
 * into objects/pack as before, unflushed (plain git and every reader see
 * them at once), and one record into ARCHIVE/docket-refs.journal:
 *
 *   header (64 bytes): "dkjrec2\n", the salt (8 bytes), its sequence
 *     number (8), the lengths of the pack, the index and the intents (4
 *     each), CRC-32 (zlib) of the header (this field as 0) and all that
 *     follows
 *   the pack's bytes, the index's bytes, the intent lines:
 *     refs/docket/instances/ID FROM TO        (FROM: 40 zeros for a new ref)
 *
 * with pwrite at an offset reserved for it, then one fdatasync(2) of the
 * journal (about 135 us here), shared by the round's uploads; then each
 * moves its ref by compare-and-swap, unflushed, and returns.
 *
 * The file. Its first line, "docket-journal 2 boot ID salt HEX tail T
 * size N", names the boot (/proc/sys/kernel/random/boot_id) it was
 * written under, the salt of its records and where the live ones start
 * (below). From byte 4096 on it is a ring: the record of sequence number
 * S (its byte count since the salt was chosen, a multiple of 64) lies at
 * 4096 + S mod (N - 4096); one that would run past the end is not written
 * there, and the next starts again at 4096. It is made once at its full
 * size (JOURNAL_BYTES, 8 MiB;
 * a test may ask DOCKET_TEST_JOURNAL_BYTES when it is made), written with
 * zeros and fsynced, and never truncated or grown: a record overwrites
 * blocks that exist, so its fdatasync writes no metadata (appending with
 * O_APPEND measured much slower: every append changes the size).
 *
 * Reserving. Records of several processes (`docket attach`, `docket
 * serve`) go into one journal, so the sequence number is reserved by an
 * atomic fetch-add on a counter (head) in a page shared by all of them: the file
 * docket-refs.state, mapped MAP_SHARED by every handle (one page of the
 * page cache, so every mapping in every process sees the same counter).
 * It needs no system call and serialises nothing (a lock around a
 * read-modify-write of the counter would cost two flock calls a round
 * and make the rounds of processes wait for each other), and it is never
 * flushed: after a restart its value does not matter, because recovery
 * scans the whole journal. Without a shared mapping there is no journal.
 * A record may overwrite only retired records (head - tail stays within
 * the ring); one that would not is not written (see the end).
 *
 * What a power loss leaves, and why recovery finds every record an
 * acknowledged upload needs. An upload returns only after its record's
 * fdatasync returned, so its record is whole on disk. A record may be:
 *  - torn (a round whose flush never completed): its checksum, or the
 *    SHA-1 trailer of its pack, does not match, and it is passed over. No
 *    upload of it was acknowledged and no ref was moved onto it: the moves
 *    come after the flush;
 *  - never written (a writer died between reserving and writing): zeros,
 *    or an older record's bytes under an older salt. Recovery looks for a
 *    header at every multiple of 64 rather than walking from one record
 *    to the next, so such a hole hides none of the records after it;
 *  - retired (its sequence number below the tail of the first line), or
 *    of an earlier boot's salt: passed over (see below why its uploads no
 *    longer need it), as is one not at the place its number gives (an old
 *    record whose start a later one did not overwrite). A salt is 64
 *    random bits chosen at each restart and kept in the
 *    archive's directory only, so the bytes of an uploaded file cannot
 *    make a header of the current salt, and a whole record is skipped as
 *    a whole.
 *
 * Recovery. The journal's first line names another boot (the machine
 * restarted since): dk_archive_open, under flock(LOCK_EX) on the journal
 * before it returns the handle, takes every whole live record of the salt
 * in the order of their sequence numbers; writes its pack and index again (temporary
 * file, rename) when either is missing, short or not the record's bytes;
 * gathers its intents; then puts the refs right:
 *
 *   for each ref, its last intent whose commit is sound (commit, trees
 *   and the blobs that changed since its parent read back and match
 *   their ids); when the ref on disk is missing, unreadable, an ancestor
 *   of that commit, or docket's commit of another instance, the ref is
 *   set to it; when the ref is that commit or a descendant of it (a later
 *   note, already flushed), or has diverged from it otherwise (a move by
 *   something other than docket), it is left as it is.
 *
 * Another instance's commit: an upload moves its ref by exchanging the
 * ref's file with a spare it wrote the new value into before the round's
 * flush (archive_refmove.c). The journal's fdatasync does not make that
 * spare's content durable (syncfs did), so after a power loss the ref's
 * file may hold what the spare held before: a commit of whichever
 * instance the spare last moved. Such a ref has a live intent (the move
 * came after the last retiring syncfs), which puts it right; a ref of
 * this instance's own older value is an ancestor, put forward as any.
 *
 * Then one syncfs, and the journal starts again under this boot with a
 * new salt. A pack gc had merged away comes back beside the merged one:
 * the same objects twice, which git allows and the next gc merges.
 *
 * Why "the last sound intent" is the ref's value. Uploads to one ref are
 * serialised, across threads and processes, by a lock of the ref
 * (dk_archive__ref_lock: an open file description lock on one byte of the
 * journal, at an offset hashed from the ref name) held from reading the
 * tip to the compare-and-swap. The sequence number of an upload's record
 * is reserved while the upload holds that lock (the round's leader
 * reserves while every upload of the round waits under its own ref lock),
 * and within one salt sequence numbers only grow; so the intents of one
 * ref are in the order of its moves, each from the tip its writer read under the lock,
 * and an intent is written only after the previous upload of that ref
 * finished its move (or died). The records of acknowledged uploads were
 * flushed before their moves, so they are in the journal, or retired, and
 * then their moves are on disk (the retiring syncfs came after them), so
 * the ref on disk is at or past every retired intent. The last live
 * intent of a ref is either an acknowledged upload's, or one whose writer
 * died before its move or whose flush never completed:
 *  - died before its move: its record was written (it is whole), and its
 *    FROM was the tip; moving the ref onto it makes visible an upload
 *    nobody was told of, as a crash between the git commit and the
 *    database commit always could (verify --repair records it);
 *  - flush never completed: the record is torn (passed over for the
 *    intent before it, which is an acknowledged upload's), or it reached
 *    the disk whole, and it is the case above.
 * A compare-and-swap that fails under the lock means a note moved the
 * ref (notes do not take the lock; they flush their moves before they
 * return): the upload writes a new record from the new tip. If power is
 * lost before that, the last intent's commit has diverged from the ref
 * on disk (the note's, flushed), which is kept.
 *
 * Retiring (rotation). Once more than half of the ring is live (head -
 * tail), the next upload (maybe_rotate, in dk_archive__intent, before its
 * own record) retires what is there: it takes flock(LOCK_EX) on the
 * journal, which waits for the uploads in flight (they hold LOCK_SH from
 * before their record is reserved until their move is done; new ones hold
 * back meanwhile, for about a round), notes the head H and lets go; then,
 * while the other uploads go on writing records past H, one syncfs makes
 * every pack and every ref the records below H speak of durable, and the
 * tail becomes H, in the first line too (fdatasynced). A power loss before
 * that line is on disk leaves the old tail: recovery then redoes what is
 * done already. Only that upload waits for the syncfs (one rotation at a
 * time: an OFD lock on the journal, not waited for). The first line is
 * otherwise written only after such a flush, or when the journal is made,
 * so a first line lost or torn hides nothing: the journal is then made
 * anew.
 *
 * Not through the journal alone: a round with an upload of a big file (a
 * loose object streamed to disk, DK_ARCHIVE_RAW_MIN and up) still writes
 * its record but flushes with syncfs; a record that does not fit (the
 * ring filled faster than it is retired, or one record larger than a
 * quarter of it) is not written, the round flushes with syncfs, and each upload flushes
 * its ref after its move, before it returns. Notes flush with syncfs
 * (archive.c). Without a readable boot id (not Linux), without a shared
 * mapping, or with DOCKET_ARCHIVE_SYNC=file (libgit2 fsyncs each file and
 * ref as it writes it) there is no journal and an upload flushes its ref
 * before it returns. A journal of the text format of older dockets (a
 * boot line, then one intent a line) is recovered from when it is
 * another boot's, and then made anew.
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define JOURNAL_NAME "docket-refs.journal"
#define STATE_NAME   "docket-refs.state"
/* The first line of the text journal of an older docket. */
#define OLD_MAGIC  "docket-refs 1 boot "
#define HEAD_MAGIC "docket-journal 2 boot "
/* The first line lives in the first HEAD_BYTES; records follow, each at
 * an offset that is a multiple of REC_ALIGN, with a header of REC_HEAD
 * bytes. */
#define HEAD_BYTES 4096
#define REC_ALIGN  64
#define REC_HEAD   64
/* A record's first 8 bytes: "dkjrec2\n" */
static const unsigned char REC_MAGIC[8] = {'d', 'k', 'j', 'r', 'e', 'c', '2', '\n'};
/* The size of a new journal (rotated at half: about 700 small uploads). */
#define JOURNAL_BYTES ((int64_t)8 * 1024 * 1024)
/* Offsets of the ref locks: bytes of the journal file past any size it
 * reaches (locks on bytes beyond the end are allowed and write nothing). */
#define REF_LOCK_BASE ((off_t)1 << 40)
/* The byte whose lock one rotation at a time holds. */
#define ROTATE_LOCK    (REF_LOCK_BASE - 1)
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
	return dk_error_set(DK_EINTERNAL,
	                    "archive: cannot %s %s/" JOURNAL_NAME
	                    ": %s; check that the archive's folder is writable by this user and "
	                    "the disk is not full, then run the command again",
	                    what, a->path, strerror(errno));
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

/* Takes the write lock of byte at, or fails (EAGAIN) when it is held. */
static int ofd_trylock(int fd, off_t at)
{
	struct flock l;
	memset(&l, 0, sizeof(l));
	l.l_type = F_WRLCK;
	l.l_whence = SEEK_SET;
	l.l_start = at;
	l.l_len = 1;
	return fcntl(fd, F_OFD_SETLK, &l);
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

/* Is c docket's commit of another instance than ref's (its
 * Docket-Instance trailer names another)? */
static int other_instance(const git_commit *c, const char *ref)
{
	static const char key[] = "\nDocket-Instance: ";
	const char *msg = git_commit_message(c), *at, *id = ref + strlen(DK_ARCHIVE_REF_PREFIX);
	size_t n = strlen(id);

	if (!msg || !(at = strstr(msg, key)))
		return 0;
	at += strlen(key);
	return !(strncmp(at, id, n) == 0 && (at[n] == '\n' || at[n] == '\0'));
}

/* Puts ref onto to, where recover found it is not already (at_or_past):
 * when it is missing, unreadable, behind to, or naming another instance's
 * commit (see the top of this file). A ref that went another way is left
 * alone. Returns 1 when it moved it, 0 when it left it, or an error when
 * it could not write it: the journal must then keep the intent for the
 * next open to try again. */
static int put_forward(dk_archive *a, const char *ref, const git_oid *to)
{
	git_oid cur;
	git_commit *c = NULL;
	git_reference *r = NULL;
	int rc = git_reference_name_to_id(&cur, a->repo, ref);

	if (rc == 0 && git_commit_lookup(&c, a->repo, &cur) == 0) {
		int stale = other_instance(c, ref);
		git_commit_free(c);
		if (!stale && git_graph_descendant_of(a->repo, to, &cur) != 1) {
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

/* Adds the intent lines of text[0..len) (each "REF FROM TO\n"; a torn
 * last line is passed over) to v, numbered on from *seq. */
static void add_intents(intent **v, size_t *n, size_t *cap, size_t *seq, char *text, size_t len)
{
	char *p = text, *end = text + len;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		intent it;
		if (!nl)
			break; /* a torn last line: never flushed, never acted on */
		*nl = '\0';
		if (parse_intent(&it, p) == 0) {
			if (*n == *cap) {
				*cap = *cap ? 2 * *cap : 256;
				*v = dk_realloc(*v, *cap * sizeof(**v));
			}
			it.at = (*seq)++;
			(*v)[(*n)++] = it;
		}
		p = nl + 1;
	}
}

/* Puts every ref of the intents v[0..n) right (under LOCK_EX); v is
 * sorted here. */
static int put_intents(dk_archive *a, intent *v, size_t n)
{
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
				if (error < 0)
					return error;
				break;
			}
		i = j;
	}
	return 0;
}

/* Recovers from a journal of the text format docket wrote before the
 * records (its first line "docket-refs 1 boot ID", then one intent a
 * line), under LOCK_EX: a home last written by an older docket. */
static int recover_text(dk_archive *a, char *text, size_t len)
{
	intent *v = NULL;
	size_t n = 0, cap = 0, seq = 0;
	char *p = len ? memchr(text, '\n', len) : NULL;
	int error;

	p = p ? p + 1 : text + len; /* the first line is the header */
	add_intents(&v, &n, &cap, &seq, p, (size_t)(text + len - p));
	error = put_intents(a, v, n);
	free(v);
	return error;
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

/* ---- the journal file ------------------------------------------------------ */

/* The journal's shared state, a page of JOURNAL_STATE mapped MAP_SHARED by
 * every handle of every process: where the next record goes, and the salt
 * of the records written now. Never flushed: after a restart it is put
 * right by recovery. */
struct dk_journal_state {
	uint64_t head; /* the next record's sequence number (fetch-add) */
	uint64_t tail; /* records below it are retired */
	uint64_t salt;
	uint64_t draining; /* a rotation waits for the uploads in flight */
};

typedef struct {
	char boot[64];
	uint64_t salt;
	uint64_t tail;
	int64_t size;
} journal_head;

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t round_up(uint64_t n)
{
	return (n + REC_ALIGN - 1) & ~(uint64_t)(REC_ALIGN - 1);
}

/* The size of a journal made now: JOURNAL_BYTES, or for tests
 * DOCKET_TEST_JOURNAL_BYTES (so that a few uploads fill it). */
static int64_t wanted_size(void)
{
	const char *e = getenv("DOCKET_TEST_JOURNAL_BYTES");
	long long v;

	if (!e || !*e)
		return JOURNAL_BYTES;
	v = strtoll(e, NULL, 10);
	if (v < HEAD_BYTES + 4096 || v > ((long long)1 << 32))
		return JOURNAL_BYTES;
	return (int64_t)v & ~(int64_t)(REC_ALIGN - 1);
}

/* One number of the first line, in base, after the word `word`: "WORD N"
 * at *p, moving *p past it. */
static int head_number(const char **p, const char *word, int base, unsigned long long *out)
{
	size_t wl = strlen(word);
	char *end;

	if (strncmp(*p, word, wl) != 0 || !isxdigit((unsigned char)(*p)[wl]))
		return -1;
	errno = 0;
	*out = strtoull(*p + wl, &end, base);
	if (errno || end == *p + wl)
		return -1;
	*p = end;
	return 0;
}

/* The first line's fields after its magic: "BOOT salt HEX tail N size N"
 * and nothing more (strtoull rather than sscanf, which reports no
 * overflow). */
static int head_fields(const char *s, char *boot, size_t bootsz, unsigned long long *salt,
                       unsigned long long *tail, unsigned long long *size)
{
	size_t n = strcspn(s, " ");
	const char *p = s + n;

	if (n == 0 || n >= bootsz)
		return -1;
	memcpy(boot, s, n);
	boot[n] = '\0';
	if (head_number(&p, " salt ", 16, salt) < 0 || head_number(&p, " tail ", 10, tail) < 0 ||
	    head_number(&p, " size ", 10, size) < 0 || *p != '\0')
		return -1;
	return 0;
}

/* Reads the journal's first line "docket-journal 2 boot ID salt HEX size
 * N"; -1 when it is not one (new, the older text journal, torn). */
static int read_head(int fd, journal_head *h)
{
	char b[256];
	ssize_t r = pread(fd, b, sizeof(b) - 1, 0);
	unsigned long long salt, tail, size;
	size_t ml = strlen(HEAD_MAGIC);
	char *nl;

	if (r <= 0)
		return -1;
	b[r] = '\0';
	nl = memchr(b, '\n', (size_t)r);
	if (!nl || strncmp(b, HEAD_MAGIC, ml) != 0)
		return -1;
	*nl = '\0';
	if (head_fields(b + ml, h->boot, sizeof(h->boot), &salt, &tail, &size) < 0 || salt == 0 ||
	    size < HEAD_BYTES + REC_ALIGN || size % REC_ALIGN != 0)
		return -1;
	h->salt = salt;
	h->tail = tail;
	h->size = (int64_t)size;
	return 0;
}

/* Writes h as the journal's first line, flushed. Records are written only
 * after it, and it is written again only after a flush that made
 * everything its records speak of durable, so a line lost or torn with the
 * power hides nothing (the open starts a new journal). */
static int write_head(dk_archive *a, int fd, const journal_head *h)
{
	char line[256];
	int n = snprintf(line, sizeof(line), HEAD_MAGIC "%s salt %016llx tail %llu size %lld\n",
	                 h->boot, (unsigned long long)h->salt, (unsigned long long)h->tail,
	                 (long long)h->size);

	if (n < 0 || (size_t)n >= sizeof(line))
		return dk_error_set(DK_EINTERNAL, "archive: the journal's boot id is too long");
	if (dk_pwrite_all(fd, line, (size_t)n, 0) < 0 || fdatasync(fd) < 0)
		return journal_error(a, "write");
	return 0;
}

/* A new salt under the same boot: the journal's records so far are
 * forgotten, and it fills again from its start. Under LOCK_EX, after a
 * flush that made everything the records speak of durable. */
static int restart(dk_archive *a, int fd, const char *boot, int64_t size)
{
	journal_head h;
	int error;

	memset(&h, 0, sizeof(h));
	snprintf(h.boot, sizeof(h.boot), "%s", boot);
	h.size = size;
	do {
		if (getrandom(&h.salt, sizeof(h.salt), 0) != (ssize_t)sizeof(h.salt))
			return journal_error(a, "salt");
	} while (h.salt == 0);
	if ((error = write_head(a, fd, &h)) < 0)
		return error;
	__atomic_store_n(&a->jstate->salt, h.salt, __ATOMIC_SEQ_CST);
	__atomic_store_n(&a->jstate->tail, (uint64_t)0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&a->jstate->head, (uint64_t)0, __ATOMIC_SEQ_CST);
	a->jsize = size;
	return 0;
}

/* A journal made anew (none, the older text one, or its first line
 * unreadable): written with zeros to its size and flushed once, so that
 * a record later overwrites blocks that exist (its fdatasync then writes
 * no metadata), then restart. */
static int make_journal(dk_archive *a, int fd, const char *boot)
{
	static const char zeros[65536];
	int64_t size = wanted_size();
	struct stat st;

	if (fstat(fd, &st) < 0)
		return journal_error(a, "stat");
	for (int64_t at = st.st_size; at < size;) {
		size_t n = (size_t)(size - at < (int64_t)sizeof(zeros) ? size - at
		                                                       : (int64_t)sizeof(zeros));
		if (dk_pwrite_all(fd, zeros, n, at) < 0)
			return journal_error(a, "make");
		at += (int64_t)n;
	}
	if (st.st_size < size && fsync(fd) < 0)
		return journal_error(a, "make");
	return restart(a, fd, boot, size);
}

/* Flush everything (every pack and ref the records speak of), then
 * restart: under LOCK_EX and the rotation lock, when the state page was
 * lost. */
static int start_again(dk_archive *a)
{
	char boot[64];
	int error;

	if ((error = dk_archive__flush(a)) < 0)
		return error;
	if (boot_id(boot) < 0)
		return dk_error_set(DK_EINTERNAL, "archive: cannot read the boot id any more");
	return restart(a, a->jfd, boot, a->jsize);
}

/* The shared state page, mapped; NULL when it cannot be (then no
 * journal: refs are flushed as they move). */
static struct dk_journal_state *map_state(dk_archive *a)
{
	dk_buf path = DK_BUF_INIT;
	struct stat st;
	void *p = MAP_FAILED;
	int fd;

	dk_buf_printf(&path, "%s/" STATE_NAME, a->path);
	fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	dk_buf_free(&path);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && (st.st_size >= 4096 || ftruncate(fd, 4096) == 0))
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/* Is there a whole record of salt at p (avail bytes on)? Its length
 * (header included) into *total. */
static int record_at(const unsigned char *p, uint64_t avail, uint64_t salt, uint64_t *total)
{
	unsigned char h[REC_HEAD], sum[20];
	uint64_t plen, ilen, tlen;
	uint32_t crc;

	if (avail < REC_HEAD || memcmp(p, REC_MAGIC, sizeof(REC_MAGIC)) != 0 ||
	    get_le64(p + 8) != salt)
		return 0;
	plen = get_le32(p + 24);
	ilen = get_le32(p + 28);
	tlen = get_le32(p + 32);
	*total = REC_HEAD + plen + ilen + tlen;
	if (*total > avail)
		return 0;
	memcpy(h, p, REC_HEAD);
	put_le32(h + 36, 0);
	crc = (uint32_t)crc32(0L, h, REC_HEAD);
	crc = (uint32_t)crc32(crc, p + REC_HEAD, (uInt)(plen + ilen + tlen));
	if (crc != get_le32(p + 36))
		return 0;
	if (plen == 0)
		return ilen == 0;
	/* a pack (header, trailer) and its index (header, fan-out, the
	 * pack's trailer and its own), the pack's trailer its SHA-1 */
	p += REC_HEAD;
	return plen >= 32 && ilen >= 8 + 1024 + 40 && !memcmp(p, "PACK", 4) &&
	       dk_archive__sha1(sum, p, plen - 20) == 0 && !memcmp(sum, p + plen - 20, 20) &&
	       !memcmp(p + plen + ilen - 40, sum, 20);
}

/* Does the file at path hold exactly data[0..len)? */
static int holds(const char *path, const unsigned char *data, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), same = 0;
	struct stat st;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size == len) {
		unsigned char *got = dk_malloc(len ? len : 1);
		size_t n = 0;
		while (n < len) {
			ssize_t r = pread(fd, got + n, len - n, (off_t)n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			n += (size_t)r;
		}
		same = n == len && !memcmp(got, data, len);
		free(got);
	}
	close(fd);
	return same;
}

/* The record's pack and index on disk as the record has them: written
 * again (temporary file, rename) when either is missing, short or
 * different. A pack gc merged into another comes back beside the merged
 * one: the same objects twice, which git allows and the next gc merges. */
static int put_back_pack(dk_archive *a, const unsigned char *pack, size_t plen,
                         const unsigned char *idx, size_t ilen, int *wrote)
{
	dk_buf path = DK_BUF_INIT, p = DK_BUF_INIT, i = DK_BUF_INIT;
	const unsigned char *sum = pack + plen - 20;
	char hex[41];
	int error = 0, same;

	dk_archive__hex(hex, sum, 20);
	dk_buf_printf(&path, "%s/objects/pack/pack-%s.pack", a->path, hex);
	same = holds(path.ptr, pack, plen);
	dk_buf_clear(&path);
	dk_buf_printf(&path, "%s/objects/pack/pack-%s.idx", a->path, hex);
	same = same && holds(path.ptr, idx, ilen);
	if (!same) {
		dk_buf_put(&p, pack, plen);
		dk_buf_put(&i, idx, ilen);
		error = dk_archive__pack_files(a, &p, &i, sum, 0, NULL);
		(*wrote)++;
	}
	dk_buf_free(&path);
	dk_buf_free(&p);
	dk_buf_free(&i);
	return error;
}

typedef struct {
	uint64_t seq, at;
} found;

static int by_seq(const void *x, const void *y)
{
	const found *p = x, *q = y;
	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/* Recovery after a restart (under LOCK_EX): every whole record of the
 * journal's salt not retired (its sequence number at or past the first
 * line's tail), in the order of their sequence numbers: its pack and index
 * put back, its intents gathered; then the refs put right from the intents
 * (put_intents). Every aligned offset is looked at, so a record reserved
 * and never written (its writer died: zeros, or an older record's bytes)
 * hides none after it. */
static int recover_records(dk_archive *a, int fd, const journal_head *h)
{
	dk_buf b = DK_BUF_INIT;
	intent *v = NULL;
	found *f = NULL;
	size_t n = 0, cap = 0, seq = 0, nf = 0, fcap = 0;
	uint64_t end, at = HEAD_BYTES, ring = (uint64_t)h->size - HEAD_BYTES;
	int error = 0, wrote = 0;

	if (read_journal(&b, fd) < 0) {
		error = journal_error(a, "read");
		goto cleanup;
	}
	end = b.len < (uint64_t)h->size ? b.len : (uint64_t)h->size;
	while (at + REC_HEAD <= end) {
		unsigned char *p = (unsigned char *)b.ptr + at;
		uint64_t total = 0, s;
		if (!record_at(p, end - at, h->salt, &total)) {
			at += REC_ALIGN;
			continue;
		}
		s = get_le64(p + 16);
		if (s >= h->tail && HEAD_BYTES + s % ring == at) {
			if (nf == fcap) {
				fcap = fcap ? 2 * fcap : 256;
				f = dk_realloc(f, fcap * sizeof(*f));
			}
			f[nf].seq = s;
			f[nf++].at = at;
		}
		at += round_up(total);
	}
	if (nf)
		qsort(f, nf, sizeof(*f), by_seq);
	for (size_t i = 0; i < nf; i++) {
		unsigned char *p = (unsigned char *)b.ptr + f[i].at;
		uint64_t plen = get_le32(p + 24), ilen = get_le32(p + 28);
		if (plen && (error = put_back_pack(a, p + REC_HEAD, plen, p + REC_HEAD + plen, ilen,
		                                   &wrote)) < 0)
			goto cleanup;
		add_intents(&v, &n, &cap, &seq, (char *)p + REC_HEAD + plen + ilen,
		            get_le32(p + 32));
	}
	if (wrote) {
		git_odb *odb = NULL;
		if (git_repository_odb(&odb, a->repo) == 0)
			git_odb_refresh(odb);
		git_odb_free(odb);
		git_error_clear();
	}
	error = put_intents(a, v, n);
cleanup:
	free(f);
	free(v);
	dk_buf_free(&b);
	return error;
}

/* Opens the journal; when it was written under another boot, or is not
 * one yet, takes LOCK_EX and puts things right first. */
static int open_locked(dk_archive *a, int fd, const char *boot)
{
	journal_head h;
	dk_buf b = DK_BUF_INIT;
	int error = 0;

	if (read_head(fd, &h) == 0) {
		a->jsize = h.size;
		if (strcmp(h.boot, boot) != 0) {
			/* A restart: the packs and refs back from the
			 * records, all of it flushed, a new salt. */
			if ((error = recover_records(a, fd, &h)) == 0 &&
			    (error = dk_archive__flush(a)) == 0)
				error = restart(a, fd, boot, h.size);
		} else if (__atomic_load_n(&a->jstate->salt, __ATOMIC_SEQ_CST) != h.salt) {
			/* this boot's, but its state page is not (lost):
			 * where records end is not known, so start again */
			a->jfd = fd;
			if (ofd_lock(fd, ROTATE_LOCK, F_WRLCK) < 0)
				return journal_error(a, "lock");
			error = start_again(a);
			ofd_lock(fd, ROTATE_LOCK, F_UNLCK);
		}
		dk_buf_free(&b);
		return error;
	}
	/* New, or the text journal of an older docket, or a first line
	 * lost: by write_head's rule nothing in it is needed but the older
	 * journal's intents. */
	if (read_journal(&b, fd) < 0) {
		error = journal_error(a, "read");
	} else if (b.len > 0) {
		size_t ml = strlen(OLD_MAGIC), bl = strlen(boot);
		if (b.len >= ml && !memcmp(b.ptr, OLD_MAGIC, ml) &&
		    !(b.len > ml + bl && !memcmp(b.ptr + ml, boot, bl) && b.ptr[ml + bl] == '\n'))
			error = recover_text(a, b.ptr, b.len);
		if (!error)
			error = dk_archive__flush(a);
	}
	if (!error)
		error = make_journal(a, fd, boot);
	dk_buf_free(&b);
	return error;
}

int dk_archive__journal_open(dk_archive *a)
{
	dk_buf path = DK_BUF_INIT;
	journal_head h;
	struct stat st;
	char boot[64];
	int error = 0, fd;

	a->jfd = -1;
	a->jstate = NULL;
	if (a->per_file || boot_id(boot) < 0)
		return 0; /* no journal: refs flushed as they move */
	dk_buf_printf(&path, "%s/" JOURNAL_NAME, a->path);
	fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	dk_buf_free(&path);
	if (fd < 0)
		return journal_error(a, "open");
	if (!(a->jstate = map_state(a))) {
		close(fd);
		return 0; /* no shared page: refs flushed as they move */
	}
	/* The usual case: this boot's, the state page its. */
	if (read_head(fd, &h) == 0 && !strcmp(h.boot, boot) &&
	    h.salt == __atomic_load_n(&a->jstate->salt, __ATOMIC_SEQ_CST) && fstat(fd, &st) == 0 &&
	    st.st_size >= h.size) {
		a->jfd = fd;
		a->jsize = h.size;
		return 0;
	}
	if (lock_file(fd, LOCK_EX) < 0) {
		error = journal_error(a, "lock");
	} else {
		error = open_locked(a, fd, boot);
		lock_file(fd, LOCK_UN);
	}
	if (error < 0) {
		a->jfd = -1;
		munmap(a->jstate, 4096);
		a->jstate = NULL;
		close(fd);
		return error;
	}
	a->jfd = fd;
	return 0;
}

void dk_archive__journal_close(dk_archive *a)
{
	if (a->jfd >= 0)
		close(a->jfd);
	if (a->jstate)
		munmap(a->jstate, 4096);
	a->jfd = -1;
	a->jstate = NULL;
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

/* Retires the records below the journal's head once more than half of
 * it is live: waits (LOCK_EX) until no upload is between its record and
 * its move, notes the head, lets the uploads go on (they write past it),
 * flushes with syncfs (every pack and ref the records below the noted head
 * speak of is on disk then), and moves the tail there, in the first line
 * too. One process at a time (the rotation lock, not waited for: another
 * rotating is enough). Called before the caller's own LOCK_SH. */
static int maybe_rotate(dk_archive *a)
{
	uint64_t ring = (uint64_t)a->jsize - HEAD_BYTES, head;
	journal_head h;
	int error = 0;

	if (a->no_flush || __atomic_load_n(&a->jstate->head, __ATOMIC_SEQ_CST) -
	                           __atomic_load_n(&a->jstate->tail, __ATOMIC_SEQ_CST) <=
	                       ring / 2)
		return 0;
	if (ofd_trylock(a->jfd, ROTATE_LOCK) < 0)
		return 0; /* another is at it */
	if (__atomic_load_n(&a->jstate->head, __ATOMIC_SEQ_CST) -
	        __atomic_load_n(&a->jstate->tail, __ATOMIC_SEQ_CST) <=
	    ring / 2)
		goto done; /* it just was */
	/* New uploads hold back (in dk_archive__intent) while it waits, so
	 * that the wait ends with the uploads in flight now. */
	__atomic_store_n(&a->jstate->draining, (uint64_t)1, __ATOMIC_SEQ_CST);
	if (lock_file(a->jfd, LOCK_EX) < 0) {
		__atomic_store_n(&a->jstate->draining, (uint64_t)0, __ATOMIC_SEQ_CST);
		error = journal_error(a, "lock");
		goto done;
	}
	head = __atomic_load_n(&a->jstate->head, __ATOMIC_SEQ_CST);
	lock_file(a->jfd, LOCK_UN);
	__atomic_store_n(&a->jstate->draining, (uint64_t)0, __ATOMIC_SEQ_CST);
	if ((error = dk_archive__flush(a)) < 0)
		goto done;
	/* A first line that does not read back (torn, overwritten) is made
	 * again from what this process knows: it runs under this boot (a
	 * journal of another boot was recovered when it opened), and the
	 * salt and size are the mapped state's and the handle's. */
	if (read_head(a->jfd, &h) < 0) {
		memset(&h, 0, sizeof(h));
		if (boot_id(h.boot) < 0) {
			error = dk_error_set(DK_EINTERNAL,
			                     "archive: cannot read this system's boot id");
			goto done;
		}
		h.salt = __atomic_load_n(&a->jstate->salt, __ATOMIC_SEQ_CST);
		h.size = a->jsize;
	}
	h.tail = head;
	if ((error = write_head(a, a->jfd, &h)) < 0)
		goto done;
	__atomic_store_n(&a->jstate->tail, head, __ATOMIC_SEQ_CST);
done:
	ofd_lock(a->jfd, ROTATE_LOCK, F_UNLCK);
	return error;
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
	/* A rotation only makes room: one that fails (its syncfs, its first
	 * line) leaves the ring as full as it was, and a record that does not
	 * fit makes its round flush with syncfs instead (journal_put), which
	 * reports a failing disk to this upload itself. */
	if (maybe_rotate(a) < 0)
		dk_error_clear();
	/* Hold back while a rotation waits for the uploads in flight (about
	 * one round); at most a second, should its process have died. */
	for (int i = 0; i < 10000 && __atomic_load_n(&a->jstate->draining, __ATOMIC_SEQ_CST); i++)
		usleep(100);
	if (lock_file(a->jfd, LOCK_SH) < 0) {
		line[0] = '\0';
		return journal_error(a, "lock");
	}
	return 0;
}

int dk_archive__journal_put(dk_archive *a, const dk_buf *pack, const dk_buf *idx,
                            const dk_buf *intents, int sync)
{
	unsigned char h[REC_HEAD];
	uint64_t len, padded, at, salt, ring = (uint64_t)a->jsize - HEAD_BYTES;
	uint32_t crc;
	dk_buf rec = DK_BUF_INIT;
	int error = 1;

	if (a->jfd < 0 || !a->jstate)
		return 0;
	len = REC_HEAD + (uint64_t)pack->len + idx->len + intents->len;
	padded = round_up(len);
	if (pack->len > UINT32_MAX || idx->len > UINT32_MAX || intents->len > UINT32_MAX ||
	    padded > ring / 4)
		return 0; /* too big for it: syncfs */
	salt = __atomic_load_n(&a->jstate->salt, __ATOMIC_SEQ_CST);
	/* A reservation that would run past the end of the ring is left
	 * unwritten, and the next one starts at the beginning. */
	do
		at = __atomic_fetch_add(&a->jstate->head, padded, __ATOMIC_SEQ_CST);
	while (at % ring + padded > ring);
	/* It overwrites the records ring bytes before it: only retired ones. */
	if (at + padded - __atomic_load_n(&a->jstate->tail, __ATOMIC_SEQ_CST) > ring)
		return 0; /* full until the next rotation: syncfs */
	memset(h, 0, sizeof(h));
	memcpy(h, REC_MAGIC, sizeof(REC_MAGIC));
	put_le64(h + 8, salt);
	put_le64(h + 16, at);
	put_le32(h + 24, (uint32_t)pack->len);
	put_le32(h + 28, (uint32_t)idx->len);
	put_le32(h + 32, (uint32_t)intents->len);
	crc = (uint32_t)crc32(0L, h, REC_HEAD);
	crc = (uint32_t)crc32(crc, (const Bytef *)pack->ptr, (uInt)pack->len);
	crc = (uint32_t)crc32(crc, (const Bytef *)idx->ptr, (uInt)idx->len);
	crc = (uint32_t)crc32(crc, (const Bytef *)intents->ptr, (uInt)intents->len);
	put_le32(h + 36, crc);
	dk_buf_grow(&rec, len);
	dk_buf_put(&rec, h, REC_HEAD);
	dk_buf_put(&rec, pack->ptr, pack->len);
	dk_buf_put(&rec, idx->ptr, idx->len);
	dk_buf_put(&rec, intents->ptr, intents->len);
	if (dk_pwrite_all(a->jfd, rec.ptr, rec.len, (off_t)(HEAD_BYTES + at % ring)) < 0)
		error = journal_error(a, "write");
	if (error == 1 && sync && fdatasync(a->jfd) < 0)
		error = dk_error_set(DK_EINTERNAL,
		                     "archive: cannot flush %s/" JOURNAL_NAME
		                     " to disk: %s; nothing written since the last flush is safe; "
		                     "check the disk and run docket verify",
		                     a->path, strerror(errno));
	dk_buf_free(&rec);
	return error;
}

void dk_archive__intent_done(dk_archive *a)
{
	if (a->jfd >= 0)
		lock_file(a->jfd, LOCK_UN);
}
