/*
 * store.h - docket's durable state behind a narrow interface.
 *
 * Today one implementation: a SQLite file HOME/docket.db (WAL,
 * synchronous=FULL, foreign keys on). The interface is written so that a
 * PostgreSQL implementation can sit behind it later without the engine
 * changing. Nothing here knows flow semantics: an instance snapshot is opaque
 * JSON text, event data is opaque JSON text.
 *
 * Conventions, for every function below:
 * - Returns 0 on success or a negative dk_err with dk_error_last() saying
 *   what went wrong and what to do: DK_ENOTFOUND for a missing row,
 *   DK_ECONFLICT for a busy database ("the database is busy; try again"),
 *   a stale version or a uniqueness/foreign-key violation, DK_EINVALID for
 *   bad arguments, DK_EINTERNAL for anything else (SQLite's message inside).
 * - Transactions are explicit: the runner calls dk_store_begin, then any
 *   number of writes, then dk_store_commit (or dk_store_rollback). Every
 *   function marked WRITE must run inside such a transaction and returns
 *   DK_EINTERNAL otherwise. Read functions work inside or outside one.
 * - Instants are seconds since the epoch, UTC (util/time.h). 0 means "none"
 *   wherever a field says so.
 * - Rows that come back are the caller's: every string in them is an owned
 *   copy. A single row filled through `out` is released with the row type's
 *   _free (which frees the members, not the struct itself). An array
 *   returned through `**out, size_t *n` is released with the matching
 *   _rows_free(rows, n), which frees every row and the array. On failure
 *   nothing needs freeing: *out is NULL and *n is 0.
 * - Strings passed in are lent for the duration of the call only.
 * - A dk_store is one connection: use it from one thread at a time. Several
 *   processes may open the same home at once; writers queue on the write
 *   lock for at most the busy timeout.
 */
#ifndef DK_STORE_STORE_H
#define DK_STORE_STORE_H

#include "definitions/flow.h"

#include <stddef.h>
#include <stdint.h>

typedef struct dk_store dk_store;

/* The schema version this build creates and understands. */
#define DK_STORE_SCHEMA_VERSION 9

/* ---- opening and transactions ------------------------------------------ */

/* Opens (creating when missing) HOME/docket.db, creating HOME with mode 0700
 * when it does not exist, and brings the schema up to date: each pending
 * migration runs in its own transaction. Refuses (DK_EINVALID) a database
 * whose schema is newer than this build knows. On success *out is the
 * caller's, closed with dk_store_close. */
int dk_store_open(dk_store **out, const char *home);

/* Closes the connection, rolling back any transaction left open. NULL is
 * accepted. */
void dk_store_close(dk_store *s);

/* How long a writer waits for the write lock before DK_ECONFLICT "the
 * database is busy"; 10 000 ms by default. */
void dk_store_set_busy_timeout(dk_store *s, int ms);

/* The schema version found on disk after migrations (user_version). */
int dk_store_schema_version(dk_store *s, int *out);

/* BEGIN IMMEDIATE: takes the write lock now, so a transaction never fails
 * half-way for lack of it. DK_ECONFLICT when still busy after the timeout;
 * DK_EINTERNAL when a transaction is already open on this handle. */
int dk_store_begin(dk_store *s);
/* Makes the transaction durable; on failure the transaction is rolled back
 * and nothing of it remains. */
int dk_store_commit(dk_store *s);
/* Abandons the transaction. Harmless when none is open. */
int dk_store_rollback(dk_store *s);
/* 1 when a write transaction is open on this handle (dk_store_begin), 0
 * otherwise: a read transaction (dk_store_read_begin) is not one. */
int dk_store_in_transaction(dk_store *s);
/* Several reads that should see one state of the database, and pay for
 * one read transaction instead of one per statement: a deferred BEGIN when
 * no transaction is open (*began = 1), nothing inside one (*began = 0).
 * dk_store_read_end(s, began) ends what _begin began; nothing else. */
int dk_store_read_begin(dk_store *s, int *began);
void dk_store_read_end(dk_store *s, int began);
/* A savepoint inside the open transaction, for one unit of work among
 * several sharing the transaction (a due timer of a tick's batch, a
 * request of a batch `docket serve` commits at once): undoing the unit
 * leaves its batch-mates' writes in place. They nest: _release and
 * _rollback act on the most recent one still open. _release keeps the
 * unit's writes (they commit with the transaction, or go with an outer
 * unit rolled back); _rollback undoes them and ends the savepoint. When
 * the database gave the whole transaction up (some I/O errors do),
 * _rollback fails: nothing of any unit remains. */
int dk_store_savepoint(dk_store *s);
int dk_store_savepoint_release(dk_store *s);
int dk_store_savepoint_rollback(dk_store *s);

/* ---- flows ------------------------------------------------------------- */

typedef struct {
	char *flow_id;
	int version;
	char sha256[65]; /* hex SHA-256 of bytes */
	char *bytes;     /* the flow file, NUL-terminated; NULL in list results */
	size_t len;
	char *title; /* NULL when none */
	int64_t deployed_at;
} dk_flow_row;
void dk_flow_row_free(dk_flow_row *r);
void dk_flow_rows_free(dk_flow_row *rows, size_t n);

/* WRITE. Stores a flow version; its SHA-256 is computed here from bytes.
 * The same id, version and bytes again is a no-op: returns 0 with
 * *unchanged = 1 (unchanged may be NULL). The same id and version with other
 * bytes is DK_ECONFLICT ("... raise version= in the file ..."). */
int dk_store_flow_put(dk_store *s, const char *flow_id, int version, const char *title,
                      const void *bytes, size_t len, int64_t now, int *unchanged);
/* One flow version with its bytes; version 0 means the latest.
 * DK_ENOTFOUND when absent. */
int dk_store_flow_get(dk_store *s, const char *flow_id, int version, dk_flow_row *out);
/* Flows ordered by id then version, without bytes: the latest version of
 * each, or every version when all_versions is set. */
int dk_store_flow_list(dk_store *s, int all_versions, dk_flow_row **out, size_t *n);

/* ---- the org directory ------------------------------------------------- */

/* WRITE. Replaces users, departments, holidays and the org file (bytes, its
 * SHA-256, timezone) in one go. */
int dk_store_org_replace(dk_store *s, const dk_org *org, const void *bytes, size_t len,
                         int64_t now);
/* The org file last loaded, NUL-terminated, for dk_org_load_buffer: *out is
 * the caller's (free()). DK_ENOTFOUND when no org was ever loaded. */
int dk_store_org_bytes(dk_store *s, char **out, size_t *len);
/* The hex SHA-256 of that file, as dk_store_org_replace stored it: a
 * cheap check of whether a copy loaded earlier is still current.
 * DK_ENOTFOUND when no org was ever loaded. */
int dk_store_org_sha256(dk_store *s, char out[65]);
/* SQLite's PRAGMA data_version for this connection: it changes whenever
 * another connection (or process) commits to the database, not on this
 * connection's own commits. Cheap (no table is read): lets a caller keep
 * what it read until anyone writes. */
int dk_store_data_version(dk_store *s, int64_t *out);
/* 1 when a user with that id is in the org, 0 when not, <0 on error. */
int dk_store_user_exists(dk_store *s, const char *id);

/* ---- compiled flows and org directories --------------------------------- */

/* The compiled form (definitions/compiled.c) of a flow or org file: kind
 * is "flow" or "org", sha256 the file's as stored with it, src and len
 * its bytes as read from the store now. *out (free()) is the body only
 * when a row of that format was stored for those very bytes (length and
 * CRC-32 alike); otherwise DK_ENOTFOUND, and the caller compiles the
 * file itself. */
int dk_store_compiled_get(dk_store *s, const char *kind, const char *sha256, int format,
                          const void *src, size_t len, char **out);
/* WRITE. Stores (or replaces) body as the compiled form of src. */
int dk_store_compiled_put(dk_store *s, const char *kind, const char *sha256, int format,
                          const void *src, size_t len, const char *body);

/* ---- instances --------------------------------------------------------- */

typedef struct {
	char *id; /* "1", "2", ...: assigned by the store, never reused */
	char *flow_id;
	int flow_version;
	/* Current state ids, comma-separated ("review" or
	 * "docs-check,finance-check"): the store indexes each for listing. */
	char *state;
	char *snapshot;  /* opaque JSON owned by the engine */
	int64_t version; /* optimistic counter: 1 at creation, +1 per update */
	char *initiator;
	char *title; /* NULL when none */
	int64_t created_at;
	int64_t updated_at;
	int final;
	char *status; /* "active", "completed" or "recalled" */
} dk_instance_row;
void dk_instance_row_free(dk_instance_row *r);
void dk_instance_rows_free(dk_instance_row *rows, size_t n);

/* WRITE. Inserts a new instance from row (id and version ignored; status
 * NULL means "active"; updated_at 0 means created_at). On success row->id
 * receives the new id (owned by row: any previous value is freed) and
 * row->version is 1. The flow version must be deployed (else DK_ECONFLICT). */
int dk_store_instance_create(dk_store *s, dk_instance_row *row);
/* DK_ENOTFOUND when there is no such instance. */
int dk_store_instance_get(dk_store *s, const char *id, dk_instance_row *out);
/* WRITE. Compare-and-set: writes state, snapshot, title, updated_at, final
 * and status of instance row->id only if its version is still
 * expect_version, and sets row->version to expect_version + 1. DK_ECONFLICT
 * ("instance N was changed by someone else ...") when the version moved,
 * DK_ENOTFOUND when the instance does not exist. */
int dk_store_instance_update(dk_store *s, dk_instance_row *row, int64_t expect_version);

/* What dk_store_instance_list selects; NULL / 0 fields do not filter. */
typedef struct {
	const char *flow;      /* flow id */
	const char *state;     /* one of the current state ids */
	const char *initiator; /* user id */
	const char *status;    /* "active", "completed", "recalled" */
	int64_t overdue_at;    /* an open task is due before this instant */
	size_t limit;          /* 0: no limit */
	size_t offset;
} dk_instance_filter;
#define DK_INSTANCE_FILTER_INIT                                                                    \
	{                                                                                          \
		NULL, NULL, NULL, NULL, 0, 0, 0                                                    \
	}

/* Instances matching f, newest first. Every filter is served by an index,
 * so listing stays fast with millions of instances. */
int dk_store_instance_list(dk_store *s, const dk_instance_filter *f, dk_instance_row **out,
                           size_t *n);

/* ---- events: the append-only audit trail ------------------------------- */

typedef struct {
	char *instance_id;
	int64_t seq; /* 1, 2, 3... per instance, no gaps */
	char *type;  /* e.g. "started", "transition", "evidence" */
	char *actor;
	char *on_behalf_of; /* the delegator when acting by delegation; NULL */
	int64_t at;
	char *from_state; /* NULL when not applicable */
	char *to_state;
	char *transition;
	char *comment;
	char *data; /* opaque JSON (variable changes...) or NULL */
	/* The event's place in commit order (its rowid), across instances;
	 * filled by dk_store_event_list and dk_store_noted_pending. */
	int64_t order;
	/* dk_store_noted_pending only: the instance's flow, version and
	 * state summary now. */
	char *flow_id;
	int flow_version;
	char *state;
} dk_event_row;
void dk_event_row_free(dk_event_row *r);
void dk_event_rows_free(dk_event_row *rows, size_t n);

/* WRITE. Appends ev to its instance's trail; ev->seq receives the next
 * number (the last one + 1, within this transaction). */
int dk_store_event_append(dk_store *s, dk_event_row *ev);
/* The trail of one instance in seq order (empty for an unknown id). */
int dk_store_event_list(dk_store *s, const char *instance_id, dk_event_row **out, size_t *n);

/* ---- archive notes: how far the archive has caught up ------------------ */

/* The order (rowid) of the last event the archive notes have caught up
 * with; events after it wait for their note. */
int dk_store_noted_get(dk_store *s, int64_t *last);
/* WRITE. Moves the mark forward to last (never back). */
int dk_store_noted_set(dk_store *s, int64_t last);
/* Up to limit events after the mark `after` whose type is one of types
 * (NULL-terminated, at most 4), in commit order, each with its instance's
 * flow, version and state. *upto gets how far they cover: the order of the
 * last one when limit was reached, else the last event's order of the
 * whole trail as it was read (so events of other types are passed too). */
int dk_store_noted_pending(dk_store *s, int64_t after, const char *const *types, size_t limit,
                           dk_event_row **out, size_t *n, int64_t *upto);
/* How many events of types (as above) come after the mark; cheap when
 * none do (an index range on the rowid). */
int dk_store_noted_count(dk_store *s, const char *const *types, int64_t *count);

/* ---- tasks: open work per assignee ------------------------------------- */

typedef struct {
	char *instance_id;
	char *state_id;
	char *user_id;
	char *role;     /* the role the task was given through, or NULL */
	int64_t due_at; /* 0: no deadline */
	int64_t created_at;
	/* Filled by the list functions from the instance: */
	char *flow_id;
	char *title;
	char *state; /* the instance's state summary */
	/* dk_store_task_list_for_user with delegations: the user whose task
	 * this is when it reached the listed user by delegation, else NULL. */
	char *on_behalf_of;
} dk_task_row;
void dk_task_row_free(dk_task_row *r);
void dk_task_rows_free(dk_task_row *rows, size_t n);

/* WRITE. Makes tasks[0..n) the open tasks of the instance (only state_id,
 * user_id, role, due_at and created_at are read): a task already open with
 * the same state, user, role and due time stays as it is (its created_at
 * too), the others close, the missing ones open. n = 0 clears. */
int dk_store_task_replace_for_instance(dk_store *s, const char *instance_id,
                                       const dk_task_row *tasks, size_t n);
/* The open tasks of user_id, soonest due first (no deadline last). When
 * delegated_at is not 0, also the tasks of every user who delegated to
 * user_id by a delegation active at that instant (for all roles or for the
 * task's role), with on_behalf_of set. limit 0: no limit. */
int dk_store_task_list_for_user(dk_store *s, const char *user_id, int64_t delegated_at,
                                size_t limit, size_t offset, dk_task_row **out, size_t *n);
/* The open tasks of one instance, by user id. */
int dk_store_task_list_for_instance(dk_store *s, const char *instance_id, dk_task_row **out,
                                    size_t *n);

/* ---- delegations ------------------------------------------------------- */

typedef struct {
	int64_t id;
	char *from_user; /* who hands over authority */
	char *to_user;   /* who may act for them */
	char *role;      /* only for this role; NULL: all roles */
	int64_t until;   /* active from created_at up to (not including) until */
	int64_t created_at;
	char *created_by;
} dk_delegation_row;
void dk_delegation_row_free(dk_delegation_row *r);
void dk_delegation_rows_free(dk_delegation_row *rows, size_t n);

/* WRITE. Sets row->id. */
int dk_store_delegation_add(dk_store *s, dk_delegation_row *row);
/* WRITE. DK_ENOTFOUND when there is no such delegation. */
int dk_store_delegation_remove(dk_store *s, int64_t id);
/* Every delegation, oldest first. */
int dk_store_delegation_list(dk_store *s, dk_delegation_row **out, size_t *n);
/* The delegations that let to_user act for someone at instant at
 * (created_at <= at < until). */
int dk_store_delegation_active(dk_store *s, int64_t at, const char *to_user,
                               dk_delegation_row **out, size_t *n);

/* ---- timers ------------------------------------------------------------ */

typedef struct {
	int64_t id;
	char *instance_id;
	char *kind; /* e.g. "deadline", "remind", "escalate" */
	char *state_id;
	int64_t due_at;
	char *payload; /* opaque JSON or NULL */
} dk_timer_row;
void dk_timer_row_free(dk_timer_row *r);
void dk_timer_rows_free(dk_timer_row *rows, size_t n);

/* WRITE. Sets row->id. */
int dk_store_timer_add(dk_store *s, dk_timer_row *row);
/* WRITE. Removes every timer of the instance. */
int dk_store_timer_clear_for_instance(dk_store *s, const char *instance_id);
/* WRITE. Makes rows[0..n) (instance_id is not read) the instance's timers:
 * a timer already armed with the same kind, state, due time and payload
 * keeps its row, the others go, the missing ones are added. Sets each
 * rows[i].id. */
int dk_store_timer_replace_for_instance(dk_store *s, const char *instance_id, dk_timer_row *rows,
                                        size_t n);
/* Timers due at now (due_at <= now), oldest first, at most limit (0: all). */
int dk_store_timer_due(dk_store *s, int64_t now, size_t limit, dk_timer_row **out, size_t *n);
/* The timers of one instance due at now, oldest first. */
int dk_store_timer_due_for_instance(dk_store *s, const char *instance_id, int64_t now,
                                    dk_timer_row **out, size_t *n);
/* WRITE. Deletes timer t (its id, while it is still armed with t's kind,
 * state and due time); *deleted is 1 when this call removed it and 0 when
 * it was already gone. Delete first, then act, in one transaction: two
 * concurrent ticks then never fire the same timer. */
int dk_store_timer_delete(dk_store *s, const dk_timer_row *t, int *deleted);
/* The earliest due_at of any timer, 0 when there is none. */
int dk_store_timer_next_due(dk_store *s, int64_t *out);

/* ---- evidence ---------------------------------------------------------- */

typedef struct {
	int64_t id;
	char *instance_id;
	char *kind; /* the flow's evidence id */
	char *name; /* unique within the instance */
	char *state_id;
	int visit; /* which visit of state_id it was uploaded in */
	int64_t size;
	char *sha256;
	char *git_commit;
	char *git_blob;
	char *uploader;
	int64_t uploaded_at;
	int64_t due_at; /* 0: no deadline */
	int late;
	int days_late;
	int64_t event_seq; /* the audit event that recorded the upload */
} dk_evidence_row;
void dk_evidence_row_free(dk_evidence_row *r);
void dk_evidence_rows_free(dk_evidence_row *rows, size_t n);

/* WRITE. Sets row->id. DK_ECONFLICT when the instance already holds
 * evidence of that name. */
int dk_store_evidence_add(dk_store *s, dk_evidence_row *row);
/* The evidence of one instance, in upload order. */
int dk_store_evidence_list(dk_store *s, const char *instance_id, dk_evidence_row **out, size_t *n);
/* DK_ENOTFOUND when the instance holds no evidence of that name. */
int dk_store_evidence_get(dk_store *s, const char *instance_id, const char *name,
                          dk_evidence_row *out);
/* Every evidence row of every instance, by instance then upload (verify). */
int dk_store_evidence_list_all(dk_store *s, dk_evidence_row **out, size_t *n);

/* ---- webhooks: subscriptions and the outbox ---------------------------- */

typedef struct {
	int64_t id; /* subscription id, shown as N in `hooks list` */
	char *url;
	char *events;             /* space-separated event types, "" = all */
	char *flow;               /* flow id filter or NULL */
	char *secret;             /* "whsec_<base64>" */
	char *old_secret;         /* previous secret during rotation, or NULL */
	int64_t old_secret_until; /* rotation overlap end (unix s), 0 none */
	int enabled;
	int64_t created_at;
} dk_hook_row;
void dk_hook_row_free(dk_hook_row *r);
void dk_hook_rows_free(dk_hook_row *rows, size_t n);

/* WRITE. Inserts row (id ignored; events NULL means ""); sets row->id. */
int dk_store_hook_add(dk_store *s, dk_hook_row *row);
/* Every subscription by id; the caller frees each row and the array
 * (or dk_hook_rows_free). */
int dk_store_hook_list(dk_store *s, dk_hook_row **out, size_t *n);
/* DK_ENOTFOUND when absent. */
int dk_store_hook_get(dk_store *s, int64_t id, dk_hook_row *out);
/* WRITE. DK_ENOTFOUND when absent. */
int dk_store_hook_set_enabled(dk_store *s, int64_t id, int enabled);
/* WRITE. Removes the subscription and its deliveries. DK_ENOTFOUND when
 * absent. */
int dk_store_hook_remove(dk_store *s, int64_t id);
/* WRITE. The current secret becomes old_secret (valid until overlap_until),
 * new_secret becomes current. DK_ENOTFOUND when absent. */
int dk_store_hook_rotate(dk_store *s, int64_t id, const char *new_secret, int64_t overlap_until);

/* The outbox: one row per (event, matching subscription), written in the
 * same transaction as the event by dk_store_outbox_enqueue. */
typedef enum { DK_DELIVERY_PENDING, DK_DELIVERY_DELIVERED, DK_DELIVERY_DEAD } dk_delivery_status;
typedef struct {
	int64_t id; /* the webhook-id */
	int64_t hook_id;
	char *event_type;
	char *instance_id; /* ordering key; may be NULL */
	char *body;        /* exact JSON bytes to send, fixed at enqueue */
	int64_t created_at;
	int attempts;
	int64_t next_attempt_at;
	dk_delivery_status status;
	int last_status_code; /* HTTP status of last attempt, 0 = none/transport error */
	char *last_error;     /* NULL when none */
	int64_t delivered_at; /* 0 until delivered */
} dk_delivery_row;
void dk_delivery_row_free(dk_delivery_row *r);
void dk_delivery_rows_free(dk_delivery_row *rows, size_t n);

/* WRITE. For each subscription that is enabled and matches event_type (its
 * events is "" or lists event_type) and flow (its flow is NULL or equals
 * flow_id), inserts a pending delivery with body, due at now. Call inside
 * the caller's transaction, the one that records the event. */
int dk_store_outbox_enqueue(dk_store *s, const char *event_type, const char *flow_id,
                            const char *instance_id, const char *body, int64_t now);
/* *out = 1 when dk_store_outbox_enqueue would queue a delivery for an event
 * of event_type on flow_id (some enabled subscription matches), else 0:
 * the body need not be made for nobody. */
int dk_store_outbox_wanted(dk_store *s, const char *event_type, const char *flow_id, int *out);
/* Pending deliveries due at now (next_attempt_at <= now), oldest first, at
 * most limit (0: all), skipping any whose (hook_id, instance_id) has an
 * OLDER pending row still waiting (per-instance order), and those of
 * disabled subscriptions (they wait, untouched, until it is enabled). */
int dk_store_outbox_due(dk_store *s, int64_t now, size_t limit, dk_delivery_row **out, size_t *n);
/* The same, only among deliveries whose id is above after: the next page
 * of a walk through the due set, or only what is new since a walk. */
int dk_store_outbox_due_after(dk_store *s, int64_t now, int64_t after, size_t limit,
                              dk_delivery_row **out, size_t *n);
/* WRITE. Records an attempt (attempts + 1, last_status_code = http_status,
 * last_error = error): status DELIVERED (delivered_at = now), or PENDING
 * again at next_attempt_at, or DEAD. DK_ENOTFOUND when absent. */
int dk_store_delivery_record(dk_store *s, int64_t id, dk_delivery_status st, int http_status,
                             const char *error, int64_t next_attempt_at, int64_t now);
/* Deliveries by id; failed_only keeps those dead or whose last attempt
 * failed. */
int dk_store_delivery_list(dk_store *s, int failed_only, dk_delivery_row **out, size_t *n);
/* DK_ENOTFOUND when absent. */
int dk_store_delivery_get(dk_store *s, int64_t id, dk_delivery_row *out);
/* WRITE. Requeues a dead (or delivered) delivery: same id and body, status
 * pending, attempts back to 0, due now. DK_ECONFLICT when it is still
 * pending, DK_ENOTFOUND when absent. */
int dk_store_delivery_requeue(dk_store *s, int64_t id, int64_t now);
/* Earliest next_attempt_at among pending rows, 0 when none. */
int dk_store_outbox_next_due(dk_store *s, int64_t *out);

/* ---- API tokens -------------------------------------------------------- */

typedef struct {
	int64_t id;
	char *user_id;
	char *sha256; /* hex SHA-256 of the token; the token itself is never stored */
	char *name;   /* a label for listings, or NULL */
	int64_t created_at;
	int64_t expires_at; /* 0: never */
	int revoked;
} dk_token_row;
void dk_token_row_free(dk_token_row *r);
void dk_token_rows_free(dk_token_row *rows, size_t n);

/* WRITE. Sets row->id. DK_ECONFLICT when the hash is already stored. */
int dk_store_token_add(dk_store *s, dk_token_row *row);
/* The token with that hash, revoked or expired ones included (the caller
 * decides). DK_ENOTFOUND when absent. */
int dk_store_token_find_by_hash(dk_store *s, const char *sha256, dk_token_row *out);
/* Tokens of user_id (NULL: everyone's), by id. */
int dk_store_token_list(dk_store *s, const char *user_id, dk_token_row **out, size_t *n);
/* WRITE. DK_ENOTFOUND when absent. */
int dk_store_token_revoke(dk_store *s, int64_t id);

/* ---- idempotency keys of the API (sqlite_idempotency.c) ---------------- */

/* The answer kept for (user, key): the request it answered ("POST /path"),
 * its HTTP status and body (free() both). DK_ENOTFOUND when none. */
int dk_store_idempotency_get(dk_store *s, const char *user, const char *key, char **request,
                             int *status, char **body);
/* WRITE. Keeps the first answer for (user, key); a second put for the same
 * pair keeps the first. Keys older than a day are forgotten. */
int dk_store_idempotency_put(dk_store *s, const char *user, const char *key, const char *request,
                             int status, const char *body, int64_t now);

/* ---- signed action links (sqlite_links.c) ------------------------------ */

/* The HMAC key of action links: up to size bytes into out, *len of them.
 * DK_ENOTFOUND when none was made yet. */
int dk_store_link_key_get(dk_store *s, unsigned char *out, size_t size, size_t *len);
/* WRITE. Keeps key as THE key unless one is already kept (then nothing
 * changes: read it back with dk_store_link_key_get). */
int dk_store_link_key_put(dk_store *s, const unsigned char *key, size_t len, int64_t now);
/* 1 when the link with that nonce was used (*user, free(), and *at say
 * who and when), 0 when not, or a negative dk_err. */
int dk_store_link_used(dk_store *s, const char *nonce, char **user, int64_t *at);
/* *out = 1 when any webhook subscription is enabled: links are signed
 * only for payloads that will be sent. */
int dk_store_hook_any(dk_store *s, int *out);
/* WRITE. Marks the nonce used, in the transaction of the act it made.
 * DK_ECONFLICT when it already was. */
int dk_store_link_use(dk_store *s, const char *nonce, const char *instance, const char *user,
                      const char *transition, int64_t now);

#endif
