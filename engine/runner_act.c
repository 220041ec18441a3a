/*
 * runner_act.c - the write commands: start, act, recall (tick: runner_tick.c).
 *
 * Each one runs inside a single BEGIN IMMEDIATE transaction: the write lock
 * is taken before the snapshot is read, so two processes acting on one
 * instance are serialised and the loser sees the winner's snapshot (and
 * gets "not available" or a stale-version refusal, exit 5). apply() writes
 * everything the engine decided; any failure rolls it all back.
 */
#include "engine/engine.h"
#include "engine/runner_int.h"
#include "util/buf.h"
#include "util/error.h"
#include "web-hooks/hooks.h"

#include <stdlib.h>
#include <string.h>

/* "a,b" from the snapshot's active states, for the instance row. */
static char *state_summary(const dk_snapshot *snap)
{
	const char *ids[64];
	size_t n = dk_snapshot_active(snap, ids, 64);
	dk_buf b = DK_BUF_INIT;
	for (size_t i = 0; i < n && i < 64; i++) {
		if (i)
			dk_buf_putc(&b, ',');
		dk_buf_puts(&b, ids[i]);
	}
	return dk_buf_detach(&b);
}

/* The env the engine needs: flow, org, and the delegations in force for
 * actor at now. *dels is the caller's (free()); rows keep the strings. */
int dk_runner_load_env(dk_runner *r, dk_engine_env *env, const dk_flow *flow, const char *actor,
                       dk_delegation_row **rows, size_t *nrows, dk_delegation **dels)
{
	const dk_org *org;
	int error;

	*rows = NULL;
	*nrows = 0;
	*dels = NULL;
	if ((error = dk_runner_org(r, &org)) < 0)
		return error;
	env->flow = flow;
	env->org = org;
	if (actor &&
	    (error = dk_store_delegation_active(r->store, env->now, actor, rows, nrows)) < 0)
		return error;
	if (*nrows) {
		*dels = dk_calloc(*nrows, sizeof(**dels));
		for (size_t i = 0; i < *nrows; i++) {
			(*dels)[i].from = (*rows)[i].from_user;
			(*dels)[i].to = (*rows)[i].to_user;
			(*dels)[i].role = (*rows)[i].role;
			(*dels)[i].starts_at = (*rows)[i].created_at;
			(*dels)[i].ends_at = (*rows)[i].until;
		}
	}
	env->delegations = *dels;
	env->ndelegations = *nrows;
	return 0;
}

/* The assignees of the open tasks in res, for webhook payloads. */
static size_t task_users(const dk_engine_result *res, const char **users, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < res->ntasks && n < max; i++) {
		size_t j;
		for (j = 0; j < n; j++)
			if (strcmp(users[j], res->tasks[i].user) == 0)
				break;
		if (j == n)
			users[n++] = res->tasks[i].user;
	}
	return n;
}

/* The signed action links of he's assignees: their moves, the home's
 * link key (made on first use, in this transaction) and the expiry. Only
 * when some subscription will carry them. */
static int link_actions(dk_runner *r, const dk_instance_row *row, const dk_engine_result *res,
                        dk_hook_event *he, dk_link **links, unsigned char *key)
{
	int error, any = 0;

	if (!he->nassignees || !res->ntasks)
		return 0;
	if ((error = dk_store_hook_any(r->store, &any)) < 0 || !any)
		return error;
	if ((error = dk_runner_link_actions(r, row, res, he->assignees, he->nassignees, links,
	                                    &he->nactions)) < 0 ||
	    !he->nactions)
		return error;
	if ((error = dk_link_key(key, &he->link_key_len, r->store, 1, he->at)) < 0 ||
	    (error = dk_link_expiry(&he->link_expires, he->at)) < 0) {
		free(*links);
		*links = NULL;
		return error;
	}
	he->actions = *links;
	he->link_key = key;
	return 0;
}

/* Queues a webhook delivery for each subscription that wants ev. */
static int enqueue_hook(dk_runner *r, const dk_instance_row *row, const dk_engine_result *res,
                        const dk_event *ev, int64_t seq)
{
	const char *users[256];
	unsigned char link_key[DK_LINK_KEY_BYTES];
	dk_link *links = NULL;
	dk_hook_event he = {0};
	const dk_org *org;
	int error, wanted = 0;

	if (r->no_hooks || !dk_hook_event_type_known(ev->type))
		return 0;
	/* Most events go to no subscription: their payload (JSON, the org's
	 * users looked up, a tenth of a durable step's time) is not made for
	 * nobody. */
	if ((error = dk_store_outbox_wanted(r->store, ev->type, row->flow_id, &wanted)) < 0 ||
	    !wanted)
		return error;
	if ((error = dk_runner_org(r, &org)) < 0)
		return error;
	he.type = ev->type;
	he.instance_id = row->id;
	he.seq = seq;
	he.at = ev->at;
	he.flow_id = row->flow_id;
	he.flow_version = row->flow_version;
	he.state = row->state;
	he.title = row->title;
	he.actor = ev->actor;
	he.on_behalf_of = ev->on_behalf_of;
	if (ev->user) {
		users[0] = ev->user;
		he.nassignees = 1;
	} else {
		he.nassignees = task_users(res, users, 256);
	}
	he.assignees = users;
	if ((error = link_actions(r, row, res, &he, &links, link_key)) < 0)
		return error;
	he.transition = ev->transition;
	he.comment = ev->comment;
	json_t *data = ev->data ? json_loads(ev->data, 0, NULL) : NULL;
	if (data && strcmp(ev->type, DK_EV_EVIDENCE) == 0) {
		he.evidence_kind = json_string_value(json_object_get(data, "kind"));
		he.evidence_name = json_string_value(json_object_get(data, "name"));
		he.evidence_sha256 = json_string_value(json_object_get(data, "sha256"));
	}
	error = dk_hook_enqueue(r->store, &he, org, ev->at);
	json_decref(data);
	free(links);
	return error;
}

/* Writes what the engine decided for instance row: snapshot (CAS on the
 * row's version), events, tasks, timers, outbox rows. Inside the caller's
 * transaction. */
int dk_runner_apply(dk_runner *r, dk_instance_row *row, const dk_engine_result *res,
                    int64_t *first_seq)
{
	char *json = NULL;
	int error;

	if ((error = dk_snapshot_to_json(&json, res->snapshot)) < 0)
		return error;
	free(row->snapshot);
	row->snapshot = json;
	free(row->state);
	row->state = state_summary(res->snapshot);
	free(row->status);
	row->status = dk_strdup(dk_instance_status_name(res->snapshot->status));
	row->final = res->snapshot->status == DK_INSTANCE_COMPLETED;
	row->updated_at = res->snapshot->updated_at;
	if ((error = dk_store_instance_update(r->store, row, row->version)) < 0)
		return error;
	/* Whether any subscription is enabled, asked once for the step's
	 * events rather than per event (most homes have none). */
	int hooks = !r->no_hooks && res->nevents > 0;
	if (hooks && (error = dk_store_hook_any(r->store, &hooks)) < 0)
		return error;
	for (size_t i = 0; i < res->nevents; i++) {
		const dk_event *e = &res->events[i];
		dk_event_row er = {0};
		er.instance_id = row->id;
		er.type = e->type;
		er.actor = e->actor;
		er.on_behalf_of = e->on_behalf_of;
		er.at = e->at;
		er.from_state = e->from;
		er.to_state = e->to;
		er.transition = e->transition;
		er.comment = e->comment;
		er.data = e->data;
		if ((error = dk_store_event_append(r->store, &er)) < 0 ||
		    (hooks && (error = enqueue_hook(r, row, res, e, er.seq)) < 0))
			return error;
		if (i == 0 && first_seq)
			*first_seq = er.seq;
	}
	dk_task_row *tasks = dk_calloc(res->ntasks ? res->ntasks : 1, sizeof(*tasks));
	for (size_t i = 0; i < res->ntasks; i++) {
		tasks[i].state_id = res->tasks[i].state;
		tasks[i].user_id = res->tasks[i].user;
		tasks[i].role = res->tasks[i].role;
		tasks[i].due_at = res->tasks[i].due_at;
		tasks[i].created_at = res->snapshot->updated_at;
	}
	error = dk_store_task_replace_for_instance(r->store, row->id, tasks, res->ntasks);
	free(tasks);
	if (error < 0)
		return error;
	dk_timer_row *timers = dk_calloc(res->ntimers ? res->ntimers : 1, sizeof(*timers));
	for (size_t i = 0; i < res->ntimers; i++) {
		timers[i].kind = res->timers[i].kind;
		timers[i].state_id = res->timers[i].state;
		timers[i].due_at = res->timers[i].due_at;
		timers[i].payload = res->timers[i].payload;
	}
	error = dk_store_timer_replace_for_instance(r->store, row->id, timers, res->ntimers);
	free(timers);
	return error;
}

static json_t *step_json(const dk_instance_row *row, const char *from, const dk_engine_result *res)
{
	json_t *events = json_array();
	for (size_t i = 0; i < res->nevents; i++)
		json_array_append_new(events, json_string(res->events[i].type));
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "instance", row->id, "from", from, "to",
	                 row->state, "version", (json_int_t)res->snapshot->version, "status",
	                 row->status, "events", events);
}

/* A command's transaction: its own one, or a savepoint inside the batch
 * `docket serve` opened. */
static int cmd_begin(dk_runner *r)
{
	return r->batch ? dk_runner_savepoint(r) : dk_store_begin(r->store);
}

/* Ends the command's transaction keeping its writes: alone, that is the
 * commit; in a batch, the savepoint is released and the batch's commit
 * (dk_runner_batch_commit) makes it durable. The archive notes of its
 * state changes are not written here: the catch-up writes them from the
 * audit trail (runner_notes.c). */
static int cmd_commit(dk_runner *r)
{
	int error;

	if (r->batch) {
		if ((error = dk_runner_release(r)) < 0) {
			dk_runner_rollback_to(r);
			return error;
		}
		return 0;
	}
	return dk_store_commit(r->store);
}

static void cmd_abort(dk_runner *r)
{
	if (r->batch)
		dk_runner_rollback_to(r);
	else
		dk_store_rollback(r->store);
}

int dk_runner_start(dk_runner *r, json_t **out, const dk_start_opts *opts)
{
	dk_engine_env env = DK_ENGINE_ENV_INIT;
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_instance_row row = {0};
	dk_delegation_row *drows = NULL;
	dk_delegation *dels = NULL;
	size_t ndrows = 0;
	const dk_flow *flow;
	const dk_org *org;
	char **vars = NULL;
	int error, began = 0;

	*out = NULL;
	if ((error = dk_runner_clock(r, &env.now)) < 0 ||
	    (error = dk_runner_flow(r, &flow, opts->flow, 0)) < 0 ||
	    (error = dk_runner_org(r, &org)) < 0)
		goto cleanup;
	if (org->nusers && !dk_org_user(org, opts->actor)) {
		error = dk_error_set(DK_EFORBIDDEN,
		                     "'%s' is not a user in the org directory; act as one of its "
		                     "users with --as",
		                     opts->actor);
		goto cleanup;
	}
	vars = dk_calloc(opts->nvars + 1, sizeof(*vars));
	for (size_t i = 0; i < opts->nvars; i++) {
		dk_buf b = DK_BUF_INIT;
		dk_buf_printf(&b, "%s=%s", opts->vars[i].name, opts->vars[i].value);
		vars[i] = dk_buf_detach(&b);
	}
	if ((error = dk_runner_load_env(r, &env, flow, opts->actor, &drows, &ndrows, &dels)) < 0)
		goto cleanup;
	/* Check the variables before anything is written. */
	if ((error = dk_engine_start(&res, &env, "0", opts->actor, (const char *const *)vars,
	                             opts->nvars)) < 0)
		goto cleanup;
	dk_engine_result_free(&res);
	if ((error = cmd_begin(r)) < 0)
		goto cleanup;
	began = 1;
	row.flow_id = dk_strdup(flow->id);
	row.flow_version = flow->version;
	row.state = dk_strdup("");
	row.snapshot = dk_strdup("{}");
	row.initiator = dk_strdup(opts->actor);
	row.title = dk_strdup(opts->title ? opts->title : flow->title);
	row.created_at = env.now;
	if ((error = dk_store_instance_create(r->store, &row)) < 0 ||
	    (error = dk_engine_start(&res, &env, row.id, opts->actor, (const char *const *)vars,
	                             opts->nvars)) < 0 ||
	    (error = dk_runner_apply(r, &row, &res, NULL)) < 0)
		goto cleanup;
	began = 0;
	if ((error = cmd_commit(r)) < 0)
		goto cleanup;
	error = dk_runner_show(r, out, row.id);
cleanup:
	if (began)
		cmd_abort(r);
	for (size_t i = 0; vars && i < opts->nvars; i++)
		free(vars[i]);
	free(vars);
	free(dels);
	dk_delegation_rows_free(drows, ndrows);
	dk_engine_result_free(&res);
	dk_instance_row_free(&row);
	return error;
}

int dk_runner_load(dk_runner *r, dk_loaded *l, const char *id, const char *actor, int64_t now)
{
	return dk_runner_load_pre(r, l, id, actor, now, NULL);
}

int dk_runner_load_pre(dk_runner *r, dk_loaded *l, const char *id, const char *actor, int64_t now,
                       const dk_preload *pre)
{
	const dk_flow *flow;
	int error;

	memset(l, 0, sizeof(*l));
	l->env.now = now;
	if ((error = dk_runner_get_instance(r, &l->row, id)) < 0 ||
	    (error = dk_runner_flow(r, &flow, l->row.flow_id, l->row.flow_version)) < 0)
		return error;
	/* Every update moves the version (compare-and-set): the same version
	 * is the same snapshot, which the engine only reads. */
	if (pre && pre->snap && pre->version == l->row.version) {
		l->snap = pre->snap;
		l->snap_lent = 1;
	} else if (dk_snapshot_from_json(&l->snap, l->row.snapshot) < 0)
		return dk_error_set(DK_EINTERNAL, "instance %s has a damaged snapshot: %s", id,
		                    dk_error_last());
	return dk_runner_load_env(r, &l->env, flow, actor, &l->drows, &l->ndrows, &l->dels);
}

void dk_loaded_free(dk_loaded *l)
{
	free(l->dels);
	dk_delegation_rows_free(l->drows, l->ndrows);
	if (!l->snap_lent)
		dk_snapshot_free(l->snap);
	dk_instance_row_free(&l->row);
	memset(l, 0, sizeof(*l));
}

/* One user command on one instance, the shape every write takes: take the
 * write lock, load, let the engine decide, write it all, commit, mirror
 * the state changes into the archive. *out gets the step as JSON. */
static int step(dk_runner *r, json_t **out, const char *instance, const char *actor,
                const dk_preload *pre, dk_decide_fn decide, const void *arg)
{
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_loaded l;
	char *from = NULL;
	int64_t now;
	int error;

	*out = NULL;
	memset(&l, 0, sizeof(l));
	if ((error = dk_runner_clock(r, &now)) < 0 || (error = cmd_begin(r)) < 0)
		return error;
	if ((error = dk_runner_load_pre(r, &l, instance, actor, now, pre)) < 0)
		goto fail;
	from = dk_strdup(l.row.state);
	if ((error = decide(&res, &l, arg)) < 0 ||
	    (error = dk_runner_apply(r, &l.row, &res, NULL)) < 0)
		goto fail;
	/* A failed commit has already rolled everything back. */
	if ((error = cmd_commit(r)) < 0)
		goto cleanup;
	*out = step_json(&l.row, from, &res);
	goto cleanup;
fail:
	cmd_abort(r);
cleanup:
	free(from);
	dk_engine_result_free(&res);
	dk_loaded_free(&l);
	return error;
}
static int decide_fire(dk_engine_result *res, const dk_loaded *l, const void *arg)
{
	return dk_engine_fire(res, &l->env, l->snap, arg);
}

int dk_runner_act(dk_runner *r, json_t **out, const dk_act_opts *opts)
{
	dk_fire_cmd cmd = DK_FIRE_CMD_INIT;
	char **vars = dk_calloc(opts->nvars + 1, sizeof(*vars));
	int error;

	for (size_t i = 0; i < opts->nvars; i++) {
		dk_buf b = DK_BUF_INIT;
		dk_buf_printf(&b, "%s=%s", opts->vars[i].name, opts->vars[i].value);
		vars[i] = dk_buf_detach(&b);
	}
	cmd.transition = opts->transition;
	cmd.actor = opts->actor;
	cmd.comment = opts->comment;
	cmd.vars = (const char *const *)vars;
	cmd.nvars = opts->nvars;
	cmd.expect_version = opts->expect_version;
	error = step(r, out, opts->instance, opts->actor, opts->pre, decide_fire, &cmd);
	for (size_t i = 0; i < opts->nvars; i++)
		free(vars[i]);
	free(vars);
	return error;
}
struct recall_arg {
	const char *actor, *comment;
};

static int decide_recall(dk_engine_result *res, const dk_loaded *l, const void *arg)
{
	const struct recall_arg *a = arg;
	return dk_engine_recall(res, &l->env, l->snap, a->actor, a->comment);
}

int dk_runner_recall(dk_runner *r, json_t **out, const char *instance, const char *actor,
                     const char *comment)
{
	struct recall_arg a = {actor, comment};
	return step(r, out, instance, actor, NULL, decide_recall, &a);
}

int dk_runner_step(dk_runner *r, json_t **out, const char *instance, const char *actor,
                   dk_decide_fn decide, const void *arg)
{
	return step(r, out, instance, actor, NULL, decide, arg);
}
