/*
 * runner.h - applies commands to instances, one store transaction each.
 *
 * The runner is the only place where the pure engine (engine.h) meets the
 * store (store.h): it loads what a command needs, asks the engine to
 * decide, and writes the new snapshot, audit events, tasks, timers and
 * outbox rows in ONE transaction. A call that returns 0 is on disk.
 *
 * Reads come back as jansson objects shaped like the REST API's bodies, so
 * the command line (human or --json) and the server print the same facts.
 *
 * A dk_runner is used by one thread at a time. Everything returned through
 * an out parameter is the caller's: json_t with json_decref, strings with
 * free().
 */
#ifndef DK_ENGINE_RUNNER_H
#define DK_ENGINE_RUNNER_H

#include "definitions/flow.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dk_runner dk_runner;

/* A variable assignment as the user typed it: --var NAME=VALUE. */
typedef struct {
	const char *name;
	const char *value;
} dk_kv;

/* Uploads through r no longer pack the archive when its loose objects
 * pass the threshold: someone else calls dk_runner_archive_gc (in `docket
 * serve`, the note thread), so that no upload's answer waits for a pack. */
void dk_runner_defer_gc(dk_runner *r);

/* Packs the archive's loose objects if they are past the default threshold
 * (DK_ARCHIVE_AUTO_GC; one packer at a time across processes, see
 * dk_archive_maybe_gc), deferred or not. *ran (may be NULL) says whether it
 * did. */
int dk_runner_archive_gc(dk_runner *r, int *ran);

/* Opens (creating when needed) the home: database and archive. */
int dk_runner_open(dk_runner **out, const char *home);
void dk_runner_free(dk_runner *r);

/* The clock for every command of this runner (DOCKET_NOW or the system
 * clock when 0). */
void dk_runner_set_now(dk_runner *r, int64_t now);
int64_t dk_runner_now(dk_runner *r);

/* The runner's store connection, lent: for writes that must join a batch's
 * transaction (`docket serve` keeps Idempotency-Key answers there). */
typedef struct dk_store dk_store;
dk_store *dk_runner_store(dk_runner *r);

/* ---- batches: several commands, one commit ----
 *
 * `docket serve` makes concurrent requests durable together: one
 * transaction, each command inside its own savepoint, one commit (one
 * fsync) for all. Between dk_runner_batch_begin and dk_runner_batch_commit
 * start, act and recall each run in a savepoint of their own instead of a
 * transaction: one that fails undoes only its own writes and returns its
 * own error, the others stay. Nothing is durable, and nothing may be
 * acknowledged, before dk_runner_batch_commit returned 0. Other write
 * commands (deploy, org, delegate, tick, attach) refuse to run inside a
 * batch.
 *
 * dk_runner_savepoint / _release / _rollback_to let the caller wrap a
 * command with writes of its own (the answer kept for an Idempotency-Key)
 * so that both stay or go together; they nest. */
int dk_runner_batch_begin(dk_runner *r);
int dk_runner_savepoint(dk_runner *r);
int dk_runner_release(dk_runner *r);
int dk_runner_rollback_to(dk_runner *r);
/* Commits the batch. On failure nothing of the batch remains, and every
 * command in it failed. */
int dk_runner_batch_commit(dk_runner *r);
/* Abandons the batch: nothing of it remains. Harmless when none is open. */
void dk_runner_batch_abort(dk_runner *r);

/* ---- archive notes of state changes (runner_notes.c) ----
 *
 * A state change (start, transition, recall) is done once the database
 * committed it; its note on the instance's archive ref (an empty-change
 * commit, so `git log refs/docket/instances/ID` tells the story) is written
 * later, from the audit trail, by a catch-up: `docket serve`'s note thread
 * after each batch, `docket archive sync`, a tick that finds notes
 * waiting, and the commands that write the archive anyway (attach, archive
 * gc and push, verify --repair) before their own writes. */
typedef struct {
	size_t written; /* notes written */
	size_t skipped; /* already in the archive (a catch-up cut short before its mark) */
	size_t failed;  /* not written: they wait for the next catch-up */
	size_t rounds;  /* batches of the archive written (two flushes each) */
} dk_notes_sync;

/* Writes the notes of every state change after the mark, in commit order,
 * and moves the mark past them; serialised with every other catch-up (of
 * any thread or process) by a lock in the archive. A note that cannot be
 * written is a warning on stderr and counted in out->failed: the mark
 * stays before it and the next catch-up tries again. Returns 0, or a
 * negative dk_err when the database or the lock failed. */
int dk_runner_notes_catch_up(dk_runner *r, dk_notes_sync *out);
/* The lock that serialises catch-ups (and uploads, which catch up first
 * under it, so an instance's notes and uploads chain in event order): a
 * flock on HOME/archive.git/docket-notes.flock through a descriptor of the
 * caller's own, so threads exclude each other too. *fd goes to
 * dk_runner_notes_unlock. */
int dk_runner_notes_lock(dk_runner *r, int *fd);
/* Uploads write their files under the lock shared: no catch-up writes a
 * note while they do, but uploads of other threads and processes go at
 * the same time (and share their flushes; store/archive.h). An upload
 * takes it shared at once when no note waits, else exclusive to catch up
 * first and then turns it into a shared one (dk_runner_notes_share; not
 * atomic: a catch-up may come in between, writing only notes of state
 * changes committed before the upload). A state change committed while
 * an upload writes gets its note after the upload, as it did when
 * uploads held the lock exclusive. */
int dk_runner_notes_lock_shared(dk_runner *r, int *fd);
void dk_runner_notes_share(int fd);
void dk_runner_notes_unlock(int fd);
/* dk_runner_notes_catch_up for a caller that holds the lock. */
int dk_runner_notes_catch_up_locked(dk_runner *r, dk_notes_sync *out);
/* How many state changes wait for their note: one indexed read, and no
 * archive (nor libgit2) is touched. */
int dk_runner_notes_waiting(dk_runner *r, int64_t *count);
/* Calls fn for each instance with a state change after the mark (once
 * each, in commit order of their first such change). */
int dk_runner_notes_waiting_instances(dk_runner *r, int (*fn)(const char *instance, void *payload),
                                      void *payload);

/* The state changes of instance (started, fired, recalled: those that get
 * an archive note) whose Docket-Event key ("ID:SEQ") have() does not find
 * in the instance's history. *out gets an array of {seq, type,
 * transition, state, event, pending}: pending when the event is after the
 * catch-up's mark (its note is simply not written yet), else the note is
 * missing (a ref moved back, a note lost). With repair the missing ones
 * (not the pending) are written now, in order, on top of what the history
 * holds. have returns 1 when the key is there. */
int dk_runner_notes_missing(dk_runner *r, json_t **out, const char *instance,
                            int (*have)(const char *key, void *payload), void *payload, int repair);

/* ---- definitions and org ---- */

/* Checks and stores a flow file. *out gets {"flow","version","sha256",
 * "unchanged"}. Same bytes again: unchanged = true, nothing written. Same
 * id and version with other bytes: DK_ECONFLICT. Check errors go to diags
 * (DK_EINVALID). */
int dk_runner_deploy(dk_runner *r, json_t **out, const char *path, dk_diags *diags);
/* Replaces the org directory. *out: {"users","depts","sha256"}. */
int dk_runner_org_load(dk_runner *r, json_t **out, const char *path, dk_diags *diags);
/* [{"flow","version","title","sha256","deployed_at"}] latest of each, or
 * every version when all. */
int dk_runner_flows(dk_runner *r, json_t **out, int all);

/* ---- instances ---- */

typedef struct {
	const char *flow;  /* flow id, latest version */
	const char *actor; /* the initiator */
	const dk_kv *vars;
	size_t nvars;
	const char *title; /* NULL: the flow's title */
} dk_start_opts;

/* Starts an instance; *out gets the instance as dk_runner_show gives it. */
int dk_runner_start(dk_runner *r, json_t **out, const dk_start_opts *opts);

/* An instance as read and parsed ahead of a write, outside its
 * transaction (dk_runner_show_preload). The write reads the instance's row
 * as ever, and when it is still at the version preloaded it takes the
 * parsed snapshot from here instead of parsing it again: the parse moves
 * from the one thread that writes to the request threads. */
typedef struct dk_preload dk_preload;
void dk_preload_free(dk_preload *p);

typedef struct {
	const char *instance;
	const char *transition;
	const char *actor;
	const char *comment; /* NULL when none */
	const dk_kv *vars;
	size_t nvars;
	int64_t expect_version; /* 0: no check */
	const dk_preload *pre;  /* NULL, or the instance preloaded (lent) */
} dk_act_opts;

/* Fires a transition. *out: {"instance","from","to","version","status",
 * "events":[...]} */
int dk_runner_act(dk_runner *r, json_t **out, const dk_act_opts *opts);

/* The initiator withdraws the instance to its initial state. */
int dk_runner_recall(dk_runner *r, json_t **out, const char *instance, const char *actor,
                     const char *comment);

/* val's text as json_dumps(val, JSON_INDENT(1)) writes it, byte for byte,
 * its length in *len: an API answer's body. Without the table jansson's
 * dump fills on every call to detect loops (a tenth of a GET's time went
 * to json_dumps). NULL, as json_dumps gives, when val is neither an
 * object nor an array. */
char *dk_json_indented(const json_t *val, size_t *len);

/* {"id","flow","version","title","status","state","states":[...],
 *  "initiator","vars":{...},"tasks":[...],"available":[...],
 *  "instance_version","created_at","updated_at"} */
int dk_runner_show(dk_runner *r, json_t **out, const char *instance);
/* dk_runner_show, plus "available_transitions": the ids of "available"
 * that actor may fire now by the engine's own rules (assignee, role,
 * delegation in force; dk_engine_available), so a page offers only the
 * moves an act by actor would not refuse for who they are. */
int dk_runner_show_as(dk_runner *r, json_t **out, const char *instance, const char *actor);
/* What an act checks before it is queued, keeping the instance as it was
 * read in *pre (dk_preload_free) for the act that follows
 * (dk_act_opts.pre). *out holds only "id", "initiator", "version" and
 * "tasks" (each with its "user"): what dk_api_may_see and If-Match read,
 * not the whole page dk_runner_show builds. */
int dk_runner_show_preload(dk_runner *r, json_t **out, const char *instance, dk_preload **pre);
/* The diagram of the flow version instance runs on ("dot" or "mermaid"),
 * its current states highlighted, appended to out. */
int dk_runner_graph(dk_runner *r, dk_buf *out, const char *instance, const char *format);
/* The audit trail: [{"seq","type","at","actor","on_behalf_of","from","to",
 * "transition","comment","data"}] */
int dk_runner_log(dk_runner *r, json_t **out, const char *instance);

typedef struct {
	const char *flow, *state, *initiator, *status;
	int overdue;
	size_t limit;
} dk_list_opts;

int dk_runner_list(dk_runner *r, json_t **out, const dk_list_opts *opts);
/* Open tasks of a user (and of those who delegated to them). */
int dk_runner_inbox(dk_runner *r, json_t **out, const char *user);

/* ---- delegation ---- */

int dk_runner_delegate(dk_runner *r, json_t **out, const char *from, const char *to,
                       const char *role, const char *until, const char *by);
int dk_runner_delegations(dk_runner *r, json_t **out);

/* ---- timers ---- */

/* Fires every timer due at the clock. *fired gets how many. */
int dk_runner_tick(dk_runner *r, size_t *fired);

/* ---- evidence ---- */

typedef struct {
	const char *instance;
	const char *actor;
	const char *kind; /* the flow's evidence kind id */
	const char *path; /* the file to archive */
	const char *name; /* NULL: the file's base name */
	/* Test hook (`docket attach` sets it from DOCKET_FAULT=after-archive):
	 * stop right after the git commit, before the database, as a crash
	 * there would; DK_EINTERNAL. */
	int fault_after_archive;
} dk_attach_opts;

/* Archives a file as evidence: the engine checks kind, actor and freeze
 * first; the file streams into git (blob, tree, commit on the instance's
 * ref); then one store transaction records the upload, its audit event and
 * outbox rows. A crash between the git commit and the database commit
 * leaves an unrecorded archive commit that `docket verify --repair`
 * records. *out: {"instance","kind","name","size","sha256","commit","blob",
 * "state","due_at","late","days_late"} */
int dk_runner_attach(dk_runner *r, json_t **out, const dk_attach_opts *opts);
/* The evidence of an instance, in upload order, shaped as above. */
int dk_runner_evidence(dk_runner *r, json_t **out, const char *instance);

/* An upload already in the archive, to record in the database: the second
 * half of attach, and what `verify --repair` does for a commit a crash left
 * unrecorded (the engine checks again, against the snapshot as it is). */
typedef struct {
	const char *instance, *actor, *kind, *name;
	const char *event; /* Docket-Event key */
	const char *commit, *blob, *sha256;
	int64_t size;
	int64_t at; /* when it was uploaded */
} dk_evidence_record;

int dk_runner_evidence_record(dk_runner *r, json_t **out, const dk_evidence_record *rec);

/* ---- signed action links (runner_links.c) ---- */

struct dk_link; /* web-hooks/hooks.h */

/* What a verified link (dk_link_verify) would do, for the page it opens:
 * {"instance","flow","title","state","state_title","current","transition",
 *  "target","comment_required","open","why","version","user","user_name"}.
 * "open" is false (and "why" says so) once the instance left the link's
 * visit of its state or the move is no longer the user's. */
int dk_runner_link_view(dk_runner *r, json_t **out, const struct dk_link *link);

/* The act a link makes: as link->user, through the same engine rules as
 * dk_runner_act (delegation included), in one transaction that also marks
 * the link's nonce used. DK_ECONFLICT when the link is stale or already
 * used (the message says which); other refusals as dk_runner_act, and
 * then the link stays usable. */
int dk_runner_link_act(dk_runner *r, json_t **out, const struct dk_link *link, const char *comment);

#endif
