/*
 * engine.h - the pure state machine that runs flow instances.
 *
 * The engine is a function: (compiled flow, org, delegations, instance
 * snapshot, command, clock) -> (new snapshot, events, the complete set of
 * open tasks, the complete set of armed timers), or a typed refusal. It does
 * no I/O, reads no clock and keeps no state between calls; the same inputs
 * always give the same outputs. The runner (engine/runner.c) loads the
 * inputs from the store, calls one dk_engine_* command and writes the
 * result back in one transaction.
 *
 * Call sequence for the runner:
 *
 *     dk_engine_env env = DK_ENGINE_ENV_INIT;
 *     env.flow = flow; env.org = org;            // lent, must outlive the call
 *     env.delegations = d; env.ndelegations = n; // lent
 *     env.now = clock;                           // dk_time_now() in the runner
 *
 *     dk_snapshot *snap = NULL;
 *     dk_engine_result res = DK_ENGINE_RESULT_INIT;
 *     if ((err = dk_snapshot_from_json(&snap, stored_json)) < 0) goto cleanup;
 *     dk_fire_cmd cmd = DK_FIRE_CMD_INIT;
 *     cmd.transition = "approve"; cmd.actor = "wei"; cmd.expect_version = 3;
 *     if ((err = dk_engine_fire(&res, &env, snap, &cmd)) < 0)
 *             goto cleanup;            // dk_error_last() says what to do
 *     dk_snapshot_to_json(&json, res.snapshot);  // store it, opaque
 *     // insert res.events; replace the instance's tasks with res.tasks and
 *     // its timers with res.timers; all in the same transaction
 *   cleanup:
 *     dk_engine_result_free(&res);
 *     dk_snapshot_free(snap);
 *
 * dk_engine_start needs no snapshot. On refusal *out is left empty (nothing
 * to free, but freeing it is harmless) and the input snapshot is untouched:
 * commands never modify their input.
 *
 * Ownership: everything reachable from a dk_engine_result is owned by it
 * and released by dk_engine_result_free; like a snapshot's, its arrays and
 * strings are not separate allocations (dk_engine_result_set_data and
 * dk_engine_result_merge are the ways to change one). A dk_snapshot from
 * dk_snapshot_from_json / dk_snapshot_dup is freed with dk_snapshot_free;
 * a snapshot is read-only outside the engine (its arrays and strings are
 * not separate allocations, so never free or replace one of them).
 * Strings passed in (actor, comment, vars) are lent for the call only.
 *
 * Refusals (return value, message in dk_error_last()):
 *   DK_ENOTFOUND   the transition or evidence kind is not in the flow
 *                  (the message lists the ones that are)
 *   DK_EFORBIDDEN  the actor may not act here (names who may)
 *   DK_ECONFLICT   not available in the current state, stale
 *                  expect_version, instance already final, already voted
 *   DK_EPRECOND    guard false, evidence missing or frozen, comment missing
 *   DK_EINVALID    a variable is unknown, of the wrong type or missing; an
 *                  expression failed to evaluate; a snapshot does not parse
 *
 * The firing rules (run to completion, quorum, parallel join, deadlines)
 * are described at the top of engine/fire.c; the snapshot's JSON form at
 * the top of engine/snapshot.c.
 */
#ifndef DK_ENGINE_ENGINE_H
#define DK_ENGINE_ENGINE_H

#include "definitions/flow.h"

#include <stddef.h>
#include <stdint.h>

/* The actor recorded for what the engine does by itself (deadline fire,
 * parallel join). */
#define DK_SYSTEM_ACTOR "system"

/* ---- the snapshot: one instance's whole state -------------------------- */

typedef enum {
	DK_INSTANCE_ACTIVE,
	DK_INSTANCE_COMPLETED, /* a top-level final state was reached */
	DK_INSTANCE_RECALLED   /* recalled to the initial state; active again
	                        * as soon as a transition fires */
} dk_instance_status;

/* A typed value. text is the canonical text form for every type (numbers
 * as XPath prints them, booleans "true"/"false", dates ISO 8601). */
typedef struct {
	char *name;
	dk_var_type type;
	char *text;
	double number; /* DK_VAR_NUMBER */
	int boolean;   /* DK_VAR_BOOLEAN */
} dk_value;

/* One deadline of the current visit of a state (index = position in the
 * state's <deadline> list). */
typedef struct {
	int64_t due_at;      /* 0 when the at= expression gave no date */
	int64_t next_remind; /* 0 when no <remind> */
	int missed;          /* the deadline timer has fired */
} dk_snap_deadline;

/* Every state ever entered: when it was last entered and how often. */
typedef struct {
	char *state;
	int64_t entered_at;
	int visits;
	/* valid while the state is active (current visit) */
	dk_snap_deadline *deadlines;
	size_t ndeadlines;
	char **escalated; /* users added by escalation in this visit */
	size_t nescalated;
} dk_snap_state;

/* A region of the active parallel and its active state. */
typedef struct {
	char *region;
	char *state;
} dk_snap_region;

/* A countersign vote in the current visit of a quorum state. */
typedef struct {
	char *state;
	char *user;  /* the assignee whose vote it is */
	char *actor; /* who cast it (differs with delegation) */
	char *transition;
	int64_t at;
} dk_snap_vote;

/* An upload, recorded against the visit of the state it was made in. */
typedef struct {
	char *kind;
	char *state;
	int visit;
	int64_t state_entered_at; /* entry of that visit: base of due="P7D" */
	int64_t at;
	char *by;
	char *name;   /* file name */
	char *sha256; /* hex, or NULL */
	int64_t size;
} dk_snap_evidence;

typedef struct dk_snapshot {
	int format; /* DK_SNAPSHOT_FORMAT */
	char *flow_id;
	int flow_version;
	char *instance;
	dk_instance_status status;
	char *state;             /* the active top-level state (a parallel or simple) */
	dk_snap_region *regions; /* when state is a parallel: one per region */
	size_t nregions;
	dk_snap_state *states;
	size_t nstates;
	dk_value *vars; /* in the flow's declaration order, only those set */
	size_t nvars;
	char *initiator;
	dk_snap_vote *votes;
	size_t nvotes;
	dk_snap_evidence *evidence;
	size_t nevidence;
	int64_t version; /* 1 after start, +1 per successful command */
	int acted;       /* someone other than the initiator acted since the
	                  * initiator last fired: recall is no longer allowed */
	int64_t created_at, updated_at;
	/* private to the engine: the blocks that hold the snapshot, its
	 * arrays and its strings (engine/snapshot.c); never touch */
	void *mem;
} dk_snapshot;

#define DK_SNAPSHOT_FORMAT 1

/* JSON text (documented in engine/snapshot.c), keys in a fixed order so
 * the same snapshot always gives the same bytes. *out is the caller's,
 * free(). Returns 0. */
int dk_snapshot_to_json(char **out, const dk_snapshot *snap);
/* Parses JSON text. Returns 0 and *out (free with dk_snapshot_free) or
 * DK_EINVALID with a message. */
int dk_snapshot_from_json(dk_snapshot **out, const char *json);
dk_snapshot *dk_snapshot_dup(const dk_snapshot *snap);
void dk_snapshot_free(dk_snapshot *snap);

/* Lookups: NULL when absent. Lent. */
const dk_value *dk_snapshot_var(const dk_snapshot *snap, const char *name);
const dk_snap_state *dk_snapshot_state(const dk_snapshot *snap, const char *state);
/* The active states, innermost: the top-level state when simple, else the
 * active state of each region. Writes at most max ids (lent) and returns
 * how many there are. */
size_t dk_snapshot_active(const dk_snapshot *snap, const char **ids, size_t max);
const char *dk_instance_status_name(dk_instance_status s);

/* ---- inputs ------------------------------------------------------------ */

/* U (from) lets V (to) act for them between starts_at and ends_at
 * (0 = open). With role set, only where U acts in that role: the state is
 * assigned to role:ROLE or the transition narrows to role ROLE. */
typedef struct {
	const char *from;
	const char *to;
	const char *role; /* NULL: the whole of U's authority */
	int64_t starts_at, ends_at;
} dk_delegation;

typedef struct {
	const dk_flow *flow;
	const dk_org *org; /* may be NULL: no users, no roles */
	const dk_delegation *delegations;
	size_t ndelegations;
	int64_t now;
} dk_engine_env;

#define DK_ENGINE_ENV_INIT                                                                         \
	{                                                                                          \
		NULL, NULL, NULL, 0, 0                                                             \
	}

typedef struct {
	const char *transition;
	const char *actor;
	const char *comment;     /* NULL or "" when none */
	const char *const *vars; /* "K=V" strings, set before guards run */
	size_t nvars;
	int64_t expect_version; /* 0: do not check */
	/* when the transition id is available in more than one active state
	 * (regions of a parallel), the state to fire it in; else NULL */
	const char *state;
} dk_fire_cmd;

#define DK_FIRE_CMD_INIT                                                                           \
	{                                                                                          \
		NULL, NULL, NULL, NULL, 0, 0, NULL                                                 \
	}

typedef struct {
	const char *kind; /* evidence kind id */
	const char *actor;
	const char *name; /* file name as uploaded */
	const char *sha256;
	int64_t size;
} dk_evidence_cmd;

/* ---- outputs ----------------------------------------------------------- */

/* Event types; they match the webhook event names. */
#define DK_EV_STARTED    "instance.started"
#define DK_EV_FIRED      "transition.fired"
#define DK_EV_ASSIGNED   "task.assigned"
#define DK_EV_REMINDER   "task.reminder"
#define DK_EV_ESCALATED  "task.escalated"
#define DK_EV_MISSED     "deadline.missed"
#define DK_EV_VOTE       "vote.cast"
#define DK_EV_COMPLETED  "instance.completed"
#define DK_EV_RECALLED   "instance.recalled"
#define DK_EV_EVIDENCE   "evidence.attached"
#define DK_EV_TIMER_DROP "timer.dropped"

/* Fields not relevant to a type are NULL. data is a JSON object (text)
 * with the details: variable changes {"vars":{"k":{"from":..,"to":..}}},
 * the assignee of a task, the vote, the evidence. */
typedef struct {
	char *type;
	int64_t at;
	char *actor;
	char *on_behalf_of; /* "V for U": actor V, on_behalf_of U */
	char *user;         /* whom a task/vote event concerns */
	char *from, *to;    /* states */
	char *transition;
	char *comment;
	char *data;
} dk_event;

/* The event as one JSON object (text, caller frees): {"type", "at",
 * "instance", "actor", "on_behalf_of", "user", "from", "to", "transition",
 * "comment", "data": {...}}, fields that are NULL left out. For the audit
 * log, `log --json` and webhook payloads. instance may be NULL. */
int dk_event_to_json(char **out, const dk_event *e, const char *instance);

/* An open task: user should act in state. */
typedef struct {
	char *instance;
	char *state;
	char *user;
	char *role;     /* the role it came through, or NULL */
	int64_t due_at; /* the state's first deadline, 0 when none */
} dk_task;

/* A timer to arm. kind is "remind", or for a deadline "fire" (it fires a
 * transition), "escalate" (it escalates) or "deadline" (it only records
 * deadline.missed). Hand the whole timer back to dk_engine_timer when due;
 * payload (JSON) identifies the state visit and deadline. */
typedef struct {
	char *instance;
	char *kind;
	char *state;
	int64_t due_at;
	char *payload;
} dk_timer;

typedef struct {
	dk_snapshot *snapshot;
	dk_event *events;
	size_t nevents;
	dk_task *tasks;
	size_t ntasks;
	dk_timer *timers;
	size_t ntimers;
	/* private to the engine: the blocks that hold the arrays and strings
	 * of events, tasks and timers (engine/pool.c); never touch */
	void *mem;
} dk_engine_result;

#define DK_ENGINE_RESULT_INIT                                                                      \
	{                                                                                          \
		NULL, NULL, 0, NULL, 0, NULL, 0, NULL                                              \
	}

void dk_engine_result_free(dk_engine_result *res);
/* Replaces e's data (e is one of res's events) with a copy of data. */
void dk_engine_result_set_data(dk_engine_result *res, dk_event *e, const char *data);
/* acc gets next's events after its own, and next's snapshot, tasks and
 * timers (a later result supersedes them); next is left empty. */
void dk_engine_result_merge(dk_engine_result *acc, dk_engine_result *next);

/* ---- commands ---------------------------------------------------------- */

/* A new instance: vars are "K=V" strings checked against the flow's
 * declared types, defaults applied, required ones enforced. */
int dk_engine_start(dk_engine_result *out, const dk_engine_env *env, const char *instance,
                    const char *initiator, const char *const *vars, size_t nvars);

/* The actor takes a transition (or casts a vote in a quorum state). */
int dk_engine_fire(dk_engine_result *out, const dk_engine_env *env, const dk_snapshot *snap,
                   const dk_fire_cmd *cmd);

/* The initiator takes the instance back to the initial state, allowed
 * while nobody else has acted since the initiator's last transition. */
int dk_engine_recall(dk_engine_result *out, const dk_engine_env *env, const dk_snapshot *snap,
                     const char *actor, const char *comment);

/* A timer from a previous result came due (env->now >= due_at). A timer of
 * a state visit that is over is dropped with a timer.dropped event. */
int dk_engine_timer(dk_engine_result *out, const dk_engine_env *env, const dk_snapshot *snap,
                    const dk_timer *timer);

/* An upload is about to be archived: checks the kind, the actor and the
 * freeze, and records it against the current visit. Call before writing
 * to the archive; commit both together. */
int dk_engine_evidence(dk_engine_result *out, const dk_engine_env *env, const dk_snapshot *snap,
                       const dk_evidence_cmd *cmd);

/* No command: the tasks and timers the snapshot implies (the snapshot in
 * *out is a copy, no events). For `show` and for rebuilding the tables. */
int dk_engine_view(dk_engine_result *out, const dk_engine_env *env, const dk_snapshot *snap);

/* The transitions actor may fire now, as ids (lent from the flow) written
 * to ids (at most max); returns how many there are. For `show`/inbox. */
size_t dk_engine_available(const dk_engine_env *env, const dk_snapshot *snap, const char *actor,
                           const char **ids, size_t max);

/* ---- expressions ------------------------------------------------------- */

/* 1 when the engine implements the dk: function name (local part). */
int dk_engine_has_fn(const char *name);

/* Evaluates expr against snap (may be NULL: no variables) as a string;
 * *out is the caller's (free()). For tests and `docket check --eval`. */
int dk_engine_eval_string(char **out, const dk_engine_env *env, const dk_snapshot *snap,
                          const char *actor, const dk_xpath *expr);

#endif
