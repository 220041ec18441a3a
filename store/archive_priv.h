/*
 * archive_priv.h - what the store/archive*.c files share and nobody else
 * sees: the handle's layout and the libgit2 error conversion.
 */
#ifndef DK_STORE_ARCHIVE_PRIV_H
#define DK_STORE_ARCHIVE_PRIV_H

#include "store/archive.h"
#include "util/buf.h"

#include <git2.h>

struct dk_archive {
	git_repository *repo; /* owned; used by one thread at a time */
	char *path;           /* HOME/archive.git */
	unsigned int auto_gc; /* loose objects before a put packs them; 0 = never */
	int dirfd;            /* the repository directory, for syncfs(2); -1 when closed */
	int per_file;         /* DOCKET_ARCHIVE_SYNC=file: libgit2 fsyncs every file */
	int no_flush;         /* dk_archive_set_flush(a, 0): benchmarks filling an archive */
	git_odb *raw_odb;     /* archive_raw.c's writer of stored-block blobs; NULL until used */
	struct dk_flush_group *flush;      /* the barrier shared with the process's other handles */
	struct dk_archive_pack_view *pack; /* archive_pack.c's view; NULL until used */
	int jfd; /* archive_refs.c's journal; -1: none (refs flushed as they move) */
	struct dk_journal_state *jstate; /* its shared state (mapped); NULL without */
	int64_t jsize;                   /* its size in bytes */
	int loose;           /* an upload wrote a loose object (a big blob): its round syncfs's */
	unsigned int writes; /* uploads and note batches since the repository was opened */
	struct dk_archive_commits *commits; /* archive_pack.c's group commit of uploads */
	struct dk_archive_refmove *refmove; /* archive_refmove.c's spare; NULL until used */
	struct dk_archive_spares *spares;   /* archive_spare.c's pool names; NULL until used */
};

#define DK_ARCHIVE_REF_PREFIX "refs/docket/instances/"
#define DK_ARCHIVE_CHUNK      ((size_t)64 * 1024)

/* Records "archive: WHAT: <libgit2's message>" as code and returns code. */
int dk_archive__git_error(int code, const char *what);

/* "refs/docket/instances/ID" into out (size DK_ARCHIVE_REFNAME_MAX) after
 * checking the id. */
#define DK_ARCHIVE_REFNAME_MAX 256
int dk_archive__refname(char *out, const char *instance);

/* The instance's tip into out: 0, or DK_ENOTFOUND without a message. */
int dk_archive__tip(git_oid *out, dk_archive *a, const char *instance);
/* Moves refname to id if it still points at tip (NULL: if it does not
 * exist yet), as one compare-and-swap under the ref's lock. */
int dk_archive__ref_cas(git_reference **out, dk_archive *a, const char *refname, const git_oid *id,
                        const git_oid *tip);

/* The durability barrier: once it returns 0, everything written to the
 * archive before it (objects, packs, refs, renames) is on disk. With the
 * default DOCKET_ARCHIVE_SYNC=syncfs it is one syncfs(2) of the archive's
 * file system; with =file libgit2 has fsynced each file as it wrote it, and
 * the barrier has nothing left to do. DK_EINTERNAL when the flush failed
 * (then nothing written since the last barrier may be relied on). */
int dk_archive__barrier(dk_archive *a);

/* The same barrier for the file system holding the directory at path
 * (another repository: a new archive, a local push target). */
int dk_archive__flush_path(const char *path);

/* Files from this size up are sampled (dk_archive__incompressible). */
#define DK_ARCHIVE_RAW_MIN ((int64_t)1024 * 1024)

/* 1 when the regular file fd of size bytes samples as incompressible
 * (every one of 8 samples of 32 KiB spread over it at 7.9 bits of entropy
 * per byte or more), so deflate would only spend time on it; 0 otherwise
 * and for files under DK_ARCHIVE_RAW_MIN. Reads with pread: fd's offset
 * does not move. */
int dk_archive__incompressible(int fd, int64_t size);

/* 1 when len bytes at data (DK_ARCHIVE_STORED_MIN or more) measure as
 * incompressible (7.9 bits of entropy per byte or more, as
 * dk_archive__incompressible's samples): a pack stores such an object in
 * deflate's stored blocks rather than spend deflate's time on it. */
#define DK_ARCHIVE_STORED_MIN ((size_t)4096)
int dk_archive__incompressible_buf(const void *data, size_t len);

/* The odb whose one backend writes blobs as loose objects of deflate's
 * stored blocks (archive_raw.c); owned by a, made on first use. Only
 * git_odb_open_wstream of blobs may be used on it. */
int dk_archive__raw_odb(git_odb **out, dk_archive *a);

/* ---- small objects as one pack (archive_pack.c) ---- */

/* The archive's pack view into *out (lent, owned by a, made on first use):
 * a repository whose object writes are held in memory and whose reads see
 * the archive's objects too. Build commits and trees through it, then
 * write all it holds at once with dk_archive__pack_write. No refs. One
 * writer at a time, as the handle. */
int dk_archive__pack_repo(git_repository **out, dk_archive *a);
/* How many objects the view holds for the next pack. */
size_t dk_archive__pack_count(const dk_archive *a);
/* Writes pack and idx (sum: the pack's SHA-1 trailer) into objects/pack
 * under their name, each through a temporary file and a rename, the pack
 * first; fsynced there when flush. name_out (may be NULL): "pack-HEX". */
int dk_archive__pack_files(dk_archive *a, const dk_buf *pack, const dk_buf *idx,
                           const unsigned char sum[20], int flush, char name_out[64]);
/* Writes the held objects as one pack (and its index) into objects/pack,
 * name_out (may be NULL) getting "pack-HEX", "" when there was nothing to
 * write; then forgets them, written or not. On disk only after the next
 * dk_archive__barrier. */
int dk_archive__pack_write(dk_archive *a, char name_out[64]);
/* Forgets the objects held for the next pack without writing them. */
void dk_archive__pack_discard(dk_archive *a);
/* Forgets them once their pack is written, keeping the commits and trees
 * for reads through the view (the next upload's parent; see held_backend
 * in archive_pack.c). */
void dk_archive__pack_keep(dk_archive *a);
/* Points the view's reads at repo's objects (a handle's repository opened
 * afresh, dk_archive__wrote), keeping what the view remembers: what it
 * holds and wrote are objects, the same in any repository of the archive. */
void dk_archive__pack_rebase(dk_archive *a, git_repository *repo);
/* The bytes of an object the view holds in memory (held for the next pack,
 * or a commit or tree kept from the last ones), lent until the view next
 * forgets objects (dk_archive__pack_keep, _discard, _write): 1, or 0 when
 * it does not hold it (read it through the view's odb then). They were
 * hashed when they were written, so unlike git_odb_read this does not
 * hash them again. */
int dk_archive__pack_peek(const dk_archive *a, const git_oid *id, const void **data, size_t *len,
                          git_object_t *type);
/* on = 1: the objects written through the view until on = 0 are docket's
 * own trees and commits, written again rather than looked up on disk
 * (held_freshen in archive_pack.c says why). */
void dk_archive__pack_own(dk_archive *a, int on);
/* n bytes of md as 2n lower-case hex digits and a NUL into out. */
void dk_archive__hex(char *out, const unsigned char *md, size_t n);
/* SHA-1 of data (OpenSSL) into out: 0, or -1 when it cannot be made. */
int dk_archive__sha1(unsigned char out[20], const void *data, size_t len);
/* Frees the view (dk_archive_free). */
void dk_archive__pack_free(dk_archive *a);

/* A pack written as a stream into objects/pack (gitformat-pack(5),
 * version 2): begin announces how many entries it will hold, each entry is
 * put in turn (written to a temporary file through a buffer of 1 MiB,
 * hashed as it goes, so memory stays bounded whatever the pack's size),
 * and finish writes the checksum, makes the index (ids sorted, each
 * entry's CRC32 and offset), and renames the pack and then its index into
 * place as "pack-HEX" (name_out, may be NULL). On disk only after the
 * next dk_archive__barrier (in the per-file mode both files and the
 * directory are fsynced by finish). finish and abort free the writer,
 * abort removing what was written. */
typedef struct dk_archive_pack_out dk_archive_pack_out;
int dk_archive__pack_begin(dk_archive_pack_out **out, dk_archive *a, uint32_t count);
/* Where the next entry starts (an OFS_DELTA's base is named by it). */
uint64_t dk_archive__pack_offset(const dk_archive_pack_out *w);
/* Puts an object whole, deflated (stored blocks for a blob that does not
 * compress). */
int dk_archive__pack_put(dk_archive_pack_out *w, const git_oid *id, git_object_t type,
                         const void *data, size_t len);
/* Puts an entry's bytes as they are: head (an entry header, head_len may
 * be 0) then body. crc is the CRC32 of those bytes when the caller knows
 * it (checked against its source's index), NULL to compute it. */
int dk_archive__pack_put_raw(dk_archive_pack_out *w, const git_oid *id, const void *head,
                             size_t head_len, const void *body, size_t body_len,
                             const uint32_t *crc);
int dk_archive__pack_finish(dk_archive_pack_out *w, char name_out[64]);
void dk_archive__pack_abort(dk_archive_pack_out *w);

/* ---- an upload's trees (archive_tree.c) ---- */

/* Writes into a's pack view the trees of root (NULL: none)
 * with the path names[0]/.../names[n-1] set to blob as a file (mode
 * 100644), each new tree the old one's bytes with one entry spliced in or
 * replaced: the same trees git_tree_create_updated writes for that
 * update. The new root's id into out. DK_ECONFLICT when a name on the
 * path is there as another type (a file where a directory goes, or the
 * reverse), DK_EINVALID for a name git refuses in a tree (".git"),
 * DK_EINTERNAL for a damaged or unsorted tree or a failed read or write.
 * At most DK_ARCHIVE_TREE_DEPTH names. */
#define DK_ARCHIVE_TREE_DEPTH 8
int dk_archive__tree_put(git_oid *out, dk_archive *a, const git_oid *root, const char *const *names,
                         size_t n, const git_oid *blob);

/* ---- gc's merge of packs (archive_merge.c) ---- */

/* Writes every object of the packs names[0..n) (names "pack-HEX" in
 * objects/pack) into one new pack, each once, its name into name_out;
 * the old packs are left alone. Entries are copied as they are, their
 * CRC32 checked against their index; a delta whose base is not copied
 * from the same pack is written whole. A damaged source (an index that
 * does not check, an entry whose CRC32 differs) fails the merge and
 * nothing is written. The new pack is on disk only after the next
 * dk_archive__barrier. */
int dk_archive__merge_packs(dk_archive *a, char *const *names, size_t n, char name_out[64]);

/* ---- the ref journal (archive_refs.c) ---- */

/* Opens the handle's journal (after the flush group is joined) and, when
 * it was written under another boot, puts the refs right before anything
 * else reads them. */
int dk_archive__journal_open(dk_archive *a);
void dk_archive__journal_close(dk_archive *a);
/* Takes (on = 1) or drops the lock of refname that serialises uploads to
 * it, across threads and processes. Waits. */
int dk_archive__ref_lock(dk_archive *a, const char *refname, int on);
/* Makes the journal line of the intent "refname moves from `from` (NULL:
 * new) to `to`" into line ("" without a journal), to go into the journal
 * with the round's record (dk_archive__journal_put) before the move. On
 * success the journal stays share-locked until dk_archive__intent_done,
 * to be called once the move was tried, whatever came of it; a journal
 * past half full is rotated first. */
#define DK_ARCHIVE_INTENT_MAX (DK_ARCHIVE_REFNAME_MAX + 2 * 40 + 4)
int dk_archive__intent(dk_archive *a, char line[DK_ARCHIVE_INTENT_MAX], const char *refname,
                       const git_oid *from, const git_oid *to);
/* Writes a round's record (its pack, the pack's index, its intent lines)
 * into the journal, fdatasynced when sync: 1 once it is (durable when
 * sync), 0 when there is no journal or the record does not fit (the
 * caller then flushes with syncfs and flushes its moves after them), or an
 * error. The caller holds the journal's shared lock (an intent). */
int dk_archive__journal_put(dk_archive *a, const dk_buf *pack, const dk_buf *idx,
                            const dk_buf *intents, int sync);
void dk_archive__intent_done(dk_archive *a);

/* ---- moving a ref without freeing an inode (archive_refmove.c) ---- */

/* Writes id into the handle's spare ref file, to be called before the flush
 * that precedes the move of a ref to id: dk_archive__ref_cas then moves it
 * by exchanging the spare with the ref. Without it (or when the handle
 * cannot exchange) the ref is moved through libgit2. */
void dk_archive__ref_prepare(dk_archive *a, const git_oid *id);
/* The compare-and-swap of refname from tip (zeros: must not exist) to id
 * through the prepared spare: 0, GIT_ELOCKED, GIT_EMODIFIED, GIT_ENOTFOUND
 * (as git_reference_create_matching), or DK_ARCHIVE_REFMOVE_FALLBACK when
 * nothing was done and libgit2 must move it. */
#define DK_ARCHIVE_REFMOVE_FALLBACK 1
int dk_archive__ref_swap(dk_archive *a, const char *refname, const git_oid *id, const git_oid *tip);
/* Returns the handle's spare to the pool (dk_archive_free). */
void dk_archive__refmove_free(dk_archive *a);
/* Removes the spares of processes that are gone and those past the pool's
 * size (dk_archive_gc); returns how many. */
size_t dk_archive__spares_sweep(dk_archive *a);
/* Tests: on = 1 makes the handle move refs through libgit2 only. */
void dk_archive__refmove_force_fallback(dk_archive *a, int on);
/* 1 once the handle moves refs by exchange. */
int dk_archive__refmove_exchanges(const dk_archive *a);

/* ---- packs written into the files of merged packs (archive_spare.c) ---- */

/* Files of merged packs up to this size are pooled, up to this many. */
#define DK_ARCHIVE_SPARE_SIZE_MAX ((size_t)64 * 1024)
#define DK_ARCHIVE_SPARE_POOL_MAX 256
/* Writes len bytes (data) as a file to be renamed into objects/pack (dir):
 * a spare of the pool nobody else has open or mapped, else a new temporary
 * file in dir. Its path (to rename, or to unlink) into path; mode 0444;
 * fsynced when flush. 0, or an error (nothing left behind). */
int dk_archive__spare_write(dk_archive *a, dk_buf *path, const char *dir, const void *data,
                            size_t len, int flush);
/* gc: the spares there are now, pooled or staged. */
size_t dk_archive__spare_pool(dk_archive *a);
/* gc: renames the file of a merged pack at rel (relative to the archive)
 * into the pool, staged, counting it in *pool, or unlinks it (too big,
 * linked elsewhere, not ours, the pool full). */
void dk_archive__spare_retire(dk_archive *a, const char *rel, size_t *pool);
/* gc, after retiring: flushes, then lets writers take the staged spares. */
void dk_archive__spare_publish(dk_archive *a);
/* Tests and benchmarks: spares written into, refused (someone had them
 * open), new files made, by this handle. */
void dk_archive__spare_stats(const dk_archive *a, unsigned long long *reused,
                             unsigned long long *refused, unsigned long long *made);
/* Tests: on = 1 makes leases look unsupported (EINVAL). */
void dk_archive__spare_force_unsupported(dk_archive *a, int on);
void dk_archive__spare_free(dk_archive *a);

/* ---- uploads at once (archive_pack.c) ---- */

/* Joins (at open) or leaves (at free) the process's commit group of a's
 * repository. */
int dk_archive__commits_join(dk_archive *a);
void dk_archive__commits_leave(dk_archive *a);
/* Writes the objects held in a's view and the journal line intent (NULL:
 * none) with those of every other upload of the process to this
 * repository waiting at the same time: one pack, one record in the ref
 * journal, one flush. Returns once a flush that covers them is done: 0, or
 * the error of that round (message set); *kept (may be NULL): 1 when the
 * intent is in the journal, 0 when the move must be flushed once made.
 * The view is emptied either way. */
int dk_archive__pack_commit(dk_archive *a, const char *intent, int *kept);
/* Rounds written and uploads they carried, in this process, so far. */
void dk_archive__commits_stats(const dk_archive *a, unsigned long long *rounds,
                               unsigned long long *batches);

/* The flush of dk_archive__barrier whatever a's own setting (a round
 * flushes for its uploads that need it). */
int dk_archive__flush(dk_archive *a);

/* Counts a write and, every DK_ARCHIVE_REOPEN_WRITES of them or when ran_gc,
 * opens the handle's repository afresh (see archive.c). */
#define DK_ARCHIVE_REOPEN_WRITES 64
void dk_archive__wrote(dk_archive *a, int ran_gc);

/* Parses 40 hex digits; DK_EINVALID with a message naming what. */
int dk_archive__oid(git_oid *out, const char *hex, const char *what);

#endif
