/* runner_int.h - what the runner's files share; private to engine/. */
#ifndef DK_ENGINE_RUNNER_INT_H
#define DK_ENGINE_RUNNER_INT_H

#include "engine/engine.h"
#include "engine/runner.h"
#include "store/archive.h"
#include "store/store.h"

struct dk_runner {
	char *home;
	dk_store *store;
	dk_flow **flows; /* compiled flows, cached: deployed versions never change */
	size_t nflows;
	dk_org *org; /* reloaded when the stored org's SHA-256 changes */
	int64_t fixed_now;
	dk_archive *archive; /* opened on first use */
	/* Set by dk_runner_defer_gc: its archive never packs by itself. */
	int no_auto_gc;
	/* Set by a tick while it holds the write lock: the org cannot change
	 * under it, so dk_runner_org skips re-reading and re-hashing it for
	 * every timer and event of the batch. */
	int org_pinned;
	/* Set by a tick or a serve batch for one batch (under the write lock)
	 * when no webhook subscription is enabled: events then need no
	 * payload at all. */
	int no_hooks;
	int depth; /* savepoint levels open through the runner */
	int batch; /* a batch is open: commands use savepoints */
};

/* The archive of the home, opened on first use. Lent. */
int dk_runner_archive(dk_runner *r, dk_archive **out);

int dk_runner_clock(dk_runner *r, int64_t *now);
/* *out = 1 when no webhook subscription is enabled (read under the write
 * lock, it holds until the commit). */
int dk_runner_hooks_off(dk_runner *r, int *out);
int dk_runner_flow(dk_runner *r, const dk_flow **out, const char *id, int version);
int dk_runner_org(dk_runner *r, const dk_org **out);
int dk_runner_get_instance(dk_runner *r, dk_instance_row *out, const char *id);
int dk_runner_earliest_due(dk_runner *r, const char *instance, int64_t *out);

/* The engine's environment for actor at env->now: flow, org and the
 * delegations in force. *dels (free()) and *rows (dk_delegation_rows_free)
 * are the caller's. */
int dk_runner_load_env(dk_runner *r, dk_engine_env *env, const dk_flow *flow, const char *actor,
                       dk_delegation_row **rows, size_t *nrows, dk_delegation **dels);
/* An instance loaded for a command: its row, snapshot and the engine's
 * environment for the actor (flow, org, delegations in force). Everything
 * in it is owned by it; dk_loaded_free releases it all. */
struct dk_preload {
	int64_t version; /* of the row snap was parsed from */
	dk_snapshot *snap;
};

typedef struct {
	dk_instance_row row;
	dk_snapshot *snap;
	int snap_lent; /* snap is a preload's: not freed with l */
	dk_engine_env env;
	dk_delegation_row *drows;
	size_t ndrows;
	dk_delegation *dels;
} dk_loaded;

/* Loads instance id for actor (NULL: the system) at env.now = now. On
 * failure l is still safe to free. */
int dk_runner_load(dk_runner *r, dk_loaded *l, const char *id, const char *actor, int64_t now);
/* dk_runner_load taking the snapshot from pre (may be NULL) when the row
 * read is still at pre's version. */
int dk_runner_load_pre(dk_runner *r, dk_loaded *l, const char *id, const char *actor, int64_t now,
                       const dk_preload *pre);
void dk_loaded_free(dk_loaded *l);

/* Writes what the engine decided for row inside the open transaction:
 * snapshot (compare-and-set), events, tasks, timers, outbox rows.
 * *first_seq (may be NULL) gets the seq of the first event appended. */
int dk_runner_apply(dk_runner *r, dk_instance_row *row, const dk_engine_result *res,
                    int64_t *first_seq);

/* What a step asks of the engine, given the loaded instance. */
typedef int (*dk_decide_fn)(dk_engine_result *res, const dk_loaded *l, const void *arg);

/* One user command on one instance, the shape every write takes: take the
 * write lock, load, let decide ask the engine (inside the transaction, so
 * it may also write), write it all, commit. *out gets the step as JSON. */
int dk_runner_step(dk_runner *r, json_t **out, const char *instance, const char *actor,
                   dk_decide_fn decide, const void *arg);

/* The moves each of users may make now on the tasks res leaves open, one
 * dk_link each (state, visit, transition, user; strings lent from res and
 * the flow), into *out (free()) and *n. For webhook action links. */
int dk_runner_link_actions(dk_runner *r, const dk_instance_row *row, const dk_engine_result *res,
                           const char *const *users, size_t nusers, struct dk_link **out,
                           size_t *n);

json_t *dk_json_time(int64_t t);
json_t *dk_json_strn(const char *s);
json_t *dk_event_json(const dk_event_row *e);
json_t *dk_task_json(const dk_task_row *t, int64_t now);

#endif
