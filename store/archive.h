/*
 * archive.h - the evidence archive: a bare git repository HOME/archive.git
 * written with libgit2, which any plain git can read.
 *
 * Every instance has one ref, refs/docket/instances/ID. Each upload is a
 * blob, a tree and a commit on that ref whose parent is the previous tip;
 * the tree is the previous tip's tree plus STATE/KIND/NAME, so the tip
 * always shows every file ever attached (a same-name upload replaces the
 * path in the new tree; the old blob stays in history). State changes are
 * commits on the same ref with the tip's tree unchanged, so
 * `git log refs/docket/instances/ID` tells the whole story.
 *
 * Commit messages end in trailers (git interpret-trailers syntax):
 *
 *   attach KIND/NAME                      approve: review -> in-progress
 *                                         (or "start: -> draft")
 *   Docket-Instance: ID                   Docket-Instance: ID
 *   Docket-Flow: FLOW                     Docket-Flow: FLOW
 *   Docket-State: STATE                   Docket-State: STATE (the new one)
 *   Docket-Evidence: KIND                 Docket-Transition: TRANSITION
 *   Docket-Name: NAME                     Docket-Actor: USER
 *   Docket-Sha256: HEX                    Docket-Event: KEY
 *   Docket-Size: BYTES
 *   Docket-Actor: USER
 *   Docket-Event: KEY
 *
 * Docket-Event is the key that joins git with the database: the caller
 * makes it before the git commit (dk_archive_event_key) and stores the same
 * key on the database row, so verify can tell which commits a crash left
 * unrecorded. Docket-Actor is the user id (the author line carries the
 * display name and e-mail, which may change in the org directory later).
 * Note commits are empty-change commits rather than small audit files
 * because the database already holds the audit event; git only has to tell
 * the story in order and bind it to the files, and an empty change keeps
 * `git show` of an upload commit showing exactly the one file.
 *
 * Durability: an upload's objects (one pack when the file is under 1 MB,
 * written into objects/pack unflushed) and the intent of its ref's move
 * are written as one record of the ref journal and flushed with one
 * fdatasync(2) of it before the ref moves by compare-and-swap; the pack
 * files and the move are made durable by a later flush, and after a
 * restart dk_archive_open writes back the packs and puts every ref
 * forward from the journal before it returns (archive_refs.c). So an
 * upload that returned 0 survives power loss, and concurrent uploads to
 * one instance never lose a commit. A big file's loose object, and a
 * note's objects and ref, are flushed with syncfs(2) instead: a note's
 * objects before its ref moves and the ref before it returns. With
 * DOCKET_ARCHIVE_SYNC=file libgit2 fsyncs every file, refs included, and
 * there is no journal; archive.c says why. A stale .lock left by a crash
 * is removed (see archive.c for the rule), not reported as a permanent
 * error.
 *
 * Threads: a dk_archive holds one git_repository and is used by one thread
 * at a time. Open one per thread; any number may work on one home at once,
 * in one process or several. Uploads of one process that wait for their
 * flush at the same time share it, and one pack (group commit,
 * archive_pack.c); uploads to one instance take turns.
 *
 * Errors: every function returns 0 or a negative dk_err with a message in
 * dk_error_last(); libgit2's own message is kept inside ours.
 */
#ifndef DK_STORE_ARCHIVE_H
#define DK_STORE_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

typedef struct dk_archive dk_archive;

#define DK_ARCHIVE_OID_HEXSZ 40  /* git object ids: SHA-1, 40 hex digits */
#define DK_ARCHIVE_NAME_MAX  255 /* bytes of one file name (UTF-8) */

/* Checks the DOCKET_ARCHIVE_SYNC setting (see archive.c): 0, or DK_EUSAGE
 * with a message when it is anything but "syncfs" (the default) or
 * "file". dk_archive_open checks it too; a caller that opens the archive
 * only after its database commit checks it first, so that a typo is
 * refused before anything is written. */
int dk_archive_check_settings(void);

/* Opens HOME/archive.git, creating HOME and a bare repository on first use
 * (atomically: two processes opening a new home at once both succeed).
 * *out is the caller's; free it with dk_archive_free. */
int dk_archive_open(dk_archive **out, const char *home);
void dk_archive_free(dk_archive *a);

/* The repository's path (HOME/archive.git). Lent. */
const char *dk_archive_path(const dk_archive *a);

/* Loose objects past which a put packs them (dk_archive_maybe_gc); 0 turns
 * automatic packing off. The default is DK_ARCHIVE_AUTO_GC. Automatic
 * packing also runs once there are more than DK_ARCHIVE_AUTO_PACKS packs
 * (each batch of notes writes one), and merges them. */
#define DK_ARCHIVE_AUTO_GC    2000
#define DK_ARCHIVE_AUTO_PACKS 32
void dk_archive_set_auto_gc(dk_archive *a, unsigned int loose_objects);

/* For benchmarks that fill an archive quickly, never for docket itself:
 * on = 0 stops flushing to disk (nothing written from then on is durable
 * until a later write flushes with on = 1 again). */
void dk_archive_set_flush(dk_archive *a, int on);

/* ---- names ------------------------------------------------------------ */

/* Checks an uploaded file name. Names are refused, never rewritten: the
 * name is how people fetch the file back (`evidence get ID NAME`), so a
 * silently changed name would be a surprise, and the uploader can always
 * pick another with --name. Refused, with a message saying what to do:
 * empty, ".", "..", '/' or '\\' (no directories or absolute paths), control
 * characters (C0, DEL, C1) and bidirectional overrides (which make
 * "report\u202Efdp.exe" display as "reportexe.pdf"), leading or trailing
 * spaces, a trailing dot, ".git" and its 8.3 alias "git~1" in any case,
 * more than DK_ARCHIVE_NAME_MAX bytes, invalid UTF-8. Everything else,
 * Chinese included, is kept byte for byte.
 * On success *out (when out is not NULL) is a copy the caller frees. */
int dk_archive_safe_name(char **out, const char *name);

/* Checks an instance id for use in a ref name: 1-200 bytes of letters,
 * digits, '.', '_' and '-', not starting with '.' or '-', no "..", not
 * ending in ".lock". */
int dk_archive_check_instance(const char *instance);

/* A fresh random event key (a UUID, 36 characters) for Docket-Event. */
void dk_archive_event_key(char out[37]);

/* ---- uploads ---------------------------------------------------------- */

typedef struct {
	unsigned int version;
	const char *instance;     /* required */
	const char *flow;         /* required, e.g. "monthly-plan@1" */
	const char *state;        /* required: the instance's state now */
	const char *kind;         /* required: evidence kind id */
	const char *name;         /* required: file name, see dk_archive_safe_name */
	const char *event;        /* required: Docket-Event key */
	const char *actor;        /* required: user id of the uploader */
	const char *author_name;  /* NULL: the actor */
	const char *author_email; /* NULL: ACTOR@docket.invalid */
	int64_t time;             /* author and committer time, epoch seconds */
	int64_t max_size;         /* bytes, 0 = no limit */
	const char *const *types; /* lower-case extensions, ntypes 0 = any */
	size_t ntypes;
} dk_archive_put_opts;

#define DK_ARCHIVE_PUT_OPTS_VERSION 1
#define DK_ARCHIVE_PUT_OPTS_INIT                                                                   \
	{                                                                                          \
		.version = DK_ARCHIVE_PUT_OPTS_VERSION                                             \
	}

typedef struct {
	char blob[DK_ARCHIVE_OID_HEXSZ + 1];
	char commit[DK_ARCHIVE_OID_HEXSZ + 1];
	char parent[DK_ARCHIVE_OID_HEXSZ + 1]; /* "" for the instance's first commit */
	char sha256[65];
	int64_t size;
	int retries; /* compare-and-swap retries it took (for tests and benchmarks) */
} dk_archive_put_result;

/* Archives the bytes read from fd (to its end) as opts->name. The file is
 * streamed in 64 KiB chunks into the object database, never held whole in
 * memory; its SHA-256 and size are computed in the same pass. A regular
 * file is checked against max_size before anything is written; anything
 * larger than max_size is refused (DK_EINVALID) while streaming, with no
 * object left behind and the ref untouched. The extension of name must be
 * one of types when types are given (DK_EINVALID). On success *out holds
 * the ids; the ref has moved, and the objects and the journaled intent of
 * the move are on disk (the move is put back from it after a power loss;
 * see Durability above). fd stays open. */
int dk_archive_put(dk_archive_put_result *out, dk_archive *a, const dk_archive_put_opts *opts,
                   int fd);

/* The same reading the file at path (DK_ENOTFOUND when it does not exist). */
int dk_archive_put_file(dk_archive_put_result *out, dk_archive *a, const dk_archive_put_opts *opts,
                        const char *path);

/* Checks name and type rules of opts without storing anything (so a caller
 * can refuse early); size is checked when size >= 0. */
int dk_archive_put_check(const dk_archive_put_opts *opts, int64_t size);

/* ---- state changes ---------------------------------------------------- */

typedef struct {
	unsigned int version;
	const char *instance;   /* required */
	const char *flow;       /* required */
	const char *from_state; /* NULL or "" when the instance starts */
	const char *state;      /* required: the state entered */
	const char *transition; /* required, e.g. "approve" or "start" */
	const char *event;      /* required: Docket-Event key */
	const char *actor;      /* required: user id */
	const char *author_name;
	const char *author_email;
	const char *comment; /* NULL or the actor's comment (body of the message) */
	int64_t time;
} dk_archive_note_opts;

#define DK_ARCHIVE_NOTE_OPTS_VERSION 1
#define DK_ARCHIVE_NOTE_OPTS_INIT                                                                  \
	{                                                                                          \
		.version = DK_ARCHIVE_NOTE_OPTS_VERSION                                            \
	}

/* Commits a state change on the instance's ref (tree unchanged). commit_out
 * (may be NULL) gets the commit id. A batch of one: see dk_archive_notes. */
int dk_archive_note(char commit_out[DK_ARCHIVE_OID_HEXSZ + 1], dk_archive *a,
                    const dk_archive_note_opts *opts);

/* Told how note i of a batch went: error 0 and text its commit id, or a
 * negative dk_err and text what went wrong. text is lent. */
typedef void (*dk_archive_note_fn)(size_t i, int error, const char *text, void *payload);

/* Commits notes[0..n) with two flushes for the whole batch: every commit
 * object is written into one new pack (two files however many notes, no
 * loose object; see archive_pack.c), one flush, every ref moves
 * (compare-and-swap; a ref another writer moved meanwhile is built on
 * again, its commits in one more pack), one flush. The notes
 * of one instance chain in the order given and its ref moves once, to the
 * last; when one of them cannot be written, the later ones of its
 * instance are not either (no gap reads as history), while other
 * instances' notes go on. done (may be NULL) hears of every note, in
 * order, once all are settled. Returns 0 when every note is in, else the
 * code of the first that is not. */
int dk_archive_notes(dk_archive *a, const dk_archive_note_opts *notes, size_t n,
                     dk_archive_note_fn done, void *payload);

/* ---- reading ---------------------------------------------------------- */

/* Receives bytes of a blob in order; returns 0 to go on, or a negative
 * dk_err to stop (it is passed back to the caller). */
typedef int (*dk_archive_write_fn)(const void *data, size_t len, void *payload);

/* A dk_archive_write_fn writing to the file descriptor *(int *)payload. */
int dk_archive_write_fd(const void *data, size_t len, void *payload);

/* The tip commit of an instance's ref into out; DK_ENOTFOUND when the
 * instance has nothing archived. */
int dk_archive_tip(char out[DK_ARCHIVE_OID_HEXSZ + 1], dk_archive *a, const char *instance);

/* Streams the file at path ("STATE/KIND/NAME") in commit rev of the
 * instance (rev NULL: the tip) to fn, byte-exact. Returns DK_ENOTFOUND
 * when there is no such file, DK_EINVALID when the stored object is
 * damaged (its git id no longer matches its bytes; some bytes may have
 * been passed to fn already). */
int dk_archive_get(dk_archive *a, const char *instance, const char *rev, const char *path,
                   dk_archive_write_fn fn, void *payload);

/* Streams the blob with id blob (hex) to fn (fn may be NULL to only hash
 * it), and gives its SHA-256 and size (either may be NULL). Loose blobs are
 * streamed in 64 KiB chunks; a packed blob (small, see dk_archive_gc) is
 * read whole. Errors as dk_archive_get. */
int dk_archive_get_blob(dk_archive *a, const char *blob, dk_archive_write_fn fn, void *payload,
                        char sha256_out[65], int64_t *size_out);

/* ---- history, for `docket verify` ------------------------------------- */

typedef enum {
	DK_ARCHIVE_ATTACH, /* an upload: the evidence fields are set */
	DK_ARCHIVE_NOTE,   /* a state change */
	DK_ARCHIVE_OTHER   /* a commit docket did not write (no Docket-Instance) */
} dk_archive_entry_type;

/* One commit of an instance's history. Every string is lent for the
 * duration of the callback; absent trailers are "". */
typedef struct {
	dk_archive_entry_type type;
	const char *commit;
	const char *instance, *flow, *state, *event, *actor;
	int64_t time; /* author time */
	const char *author_name, *author_email;
	/* DK_ARCHIVE_ATTACH */
	const char *kind, *name, *path; /* path = STATE/KIND/NAME */
	const char *blob;               /* "" when the path is missing from the tree */
	const char *sha256;             /* as recorded in the Docket-Sha256 trailer */
	int64_t size;                   /* as recorded in Docket-Size, -1 when absent */
	/* with DK_ARCHIVE_WALK_HASH only: the blob's bytes hashed now */
	const char *actual_sha256; /* "" when the blob is missing or unreadable */
	int64_t actual_size;
	const char *damage; /* "" when fine, else what is wrong, e.g. "altered: ..." */
	/* DK_ARCHIVE_NOTE */
	const char *transition;
} dk_archive_entry;

/* Returns 0 to go on, a negative dk_err to stop the walk with that code. */
typedef int (*dk_archive_entry_fn)(const dk_archive_entry *e, void *payload);

#define DK_ARCHIVE_WALK_HASH 1u /* recompute SHA-256 of each attached blob */

/* Calls fn for each commit reachable from the instance's tip, oldest
 * first. DK_ENOTFOUND when the instance has no ref. */
int dk_archive_walk(dk_archive *a, const char *instance, unsigned int flags, dk_archive_entry_fn fn,
                    void *payload);

/* The seq of the newest state-change note in the instance's history (the
 * N of its Docket-Event trailer "INSTANCE:N"; uploads, whose keys are
 * random, are walked past), 0 when there is none or no ref. */
int dk_archive_noted_seq(int64_t *seq, dk_archive *a, const char *instance);

/* Calls fn for each instance id that has a ref, in ref-name order. */
int dk_archive_instances(dk_archive *a, int (*fn)(const char *instance, void *payload),
                         void *payload);

/* Is this commit recorded in the database? Join on e->commit (the
 * evidence row's git_commit) or e->event (Docket-Event), whichever the
 * caller keeps. Called before hashing, with the trailer fields, path and
 * blob set. Returns 1 yes, 0 no, negative to stop. */
typedef int (*dk_archive_known_fn)(const dk_archive_entry *e, void *payload);

/* Calls fn for each docket commit (attach or note) of the instance that
 * known() does not recognise, oldest first: the commits a crash between
 * git and the database left unrecorded. flags as walk; payload goes to
 * both callbacks. */
int dk_archive_unrecorded(dk_archive *a, const char *instance, unsigned int flags,
                          dk_archive_known_fn known, dk_archive_entry_fn fn, void *payload);

/* Is commit (hex) reachable from the instance's tip? 1 yes, 0 no (a ref
 * moved back or rewritten), or a negative dk_err. */
int dk_archive_reachable(dk_archive *a, const char *instance, const char *commit);

/* ---- packing and copies ----------------------------------------------- */

typedef struct {
	size_t packed;     /* loose objects written into the new pack */
	size_t kept_loose; /* big blobs left loose (stream both ways) */
	size_t removed;    /* loose files removed after the pack was checked */
	size_t packs;      /* packs in the repository afterwards */
	char pack[64];     /* the new pack's name, "" when there was nothing to pack */
} dk_archive_gc_result;

/* Blobs larger than this stay loose when packing, so they keep streaming
 * in and out without being held in memory. */
#define DK_ARCHIVE_GC_BIG_BLOB ((size_t)16 * 1024 * 1024)

/* Packs the loose objects into one new pack (git_packbuilder), then removes
 * each loose file only once the new pack's index is on disk and holds it.
 * Packs are merged so that, by size, each is at least twice all smaller
 * ones together (a few packs, never a rewrite of everything at once but
 * at doublings of the archive; see archive_gc.c). Safe to run
 * while other handles read and write. out may be NULL. */
int dk_archive_gc(dk_archive_gc_result *out, dk_archive *a);

/* Runs dk_archive_gc when the loose objects are estimated (git's way: one
 * fan-out directory of 256, scaled) to exceed the auto-gc threshold, or
 * the packs number more than DK_ARCHIVE_AUTO_PACKS. Sets *ran (may be
 * NULL) to 1 when it packed. */
int dk_archive_maybe_gc(int *ran, dk_archive *a);

/* The same against a threshold of loose_objects given here, whatever the
 * archive's own (for a caller that packs on behalf of archives whose
 * automatic packing is off, see dk_runner_defer_gc). */
int dk_archive_gc_past(int *ran, dk_archive *a, unsigned int loose_objects);

/* Pushes every ref under refs/docket/ to remote (a URL or a path; a path that
 * does not exist yet becomes a new bare repository). Fast-forward only, so
 * a remote whose history disagrees is reported (DK_ECONFLICT), never
 * overwritten. Pushing again with nothing new is a no-op. *pushed (may be
 * NULL) gets the number of refs offered. */
int dk_archive_push(size_t *pushed, dk_archive *a, const char *remote);

#endif
