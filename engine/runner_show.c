/* runner_show.c - one instance as JSON: state, variables, tasks, moves. */
#include "engine/engine.h"
#include "engine/runner_int.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

static json_t *value_json(const dk_value *v)
{
	switch (v->type) {
	case DK_VAR_NUMBER:
		if (v->number == (double)(json_int_t)v->number)
			return json_integer((json_int_t)v->number);
		return json_real(v->number);
	case DK_VAR_BOOLEAN: return json_boolean(v->boolean);
	default: return json_string(v->text);
	}
}

/* Transition ids that can be taken from the active states (any actor). */
static json_t *available_json(const dk_flow *flow, const dk_snapshot *snap)
{
	json_t *arr = json_array();
	const char *ids[64];
	size_t n;

	if (snap->status == DK_INSTANCE_COMPLETED)
		return arr;
	n = dk_snapshot_active(snap, ids, 64);
	for (size_t i = 0; i < n && i < 64; i++) {
		const dk_state *st = dk_flow_state(flow, ids[i]);
		for (size_t t = 0; st && t < st->ntransitions; t++)
			json_array_append_new(arr, json_string(st->transitions[t].id));
	}
	/* Transitions declared on an enclosing parallel leave all regions. */
	const dk_state *top = dk_flow_state(flow, snap->state);
	if (top && top->kind == DK_STATE_PARALLEL)
		for (size_t t = 0; t < top->ntransitions; t++)
			if (!top->transitions[t].on_done)
				json_array_append_new(arr, json_string(top->transitions[t].id));
	return arr;
}

/* The ids actor may fire now, with the environment (org, delegations in
 * force) an act by actor would get. */
static int available_as(json_t **out, dk_runner *r, const dk_flow *flow, const dk_snapshot *snap,
                        const char *actor, int64_t now)
{
	dk_engine_env env = DK_ENGINE_ENV_INIT;
	dk_delegation_row *drows = NULL;
	dk_delegation *dels = NULL;
	size_t ndrows = 0, n;
	const char *ids[64];
	int error;

	*out = NULL;
	env.now = now;
	if ((error = dk_runner_load_env(r, &env, flow, actor, &drows, &ndrows, &dels)) < 0)
		goto cleanup;
	n = dk_engine_available(&env, snap, actor, ids, 64);
	*out = json_array();
	for (size_t i = 0; i < n && i < 64; i++)
		json_array_append_new(*out, json_string(ids[i]));
cleanup:
	free(dels);
	dk_delegation_rows_free(drows, ndrows);
	return error;
}

static int show(dk_runner *r, json_t **out, const char *instance, const char *actor,
                dk_preload **pre)
{
	dk_instance_row row = {0};
	dk_snapshot *snap = NULL;
	dk_task_row *tasks = NULL;
	size_t ntasks = 0;
	const dk_flow *flow;
	const char *ids[64];
	json_t *mine = NULL;
	int error, began = 0;
	int64_t now;

	*out = NULL;
	/* The row, its tasks, the org and the delegations are read in one
	 * read transaction: one consistent state, one round of locks. */
	if ((error = dk_runner_clock(r, &now)) < 0 ||
	    (error = dk_store_read_begin(r->store, &began)) < 0 ||
	    (error = dk_runner_get_instance(r, &row, instance)) < 0)
		goto cleanup;
	if ((error = dk_runner_flow(r, &flow, row.flow_id, row.flow_version)) < 0)
		goto cleanup;
	if (dk_snapshot_from_json(&snap, row.snapshot) < 0) {
		error = dk_error_set(DK_EINTERNAL, "instance %s has a damaged snapshot: %s",
		                     instance, dk_error_last());
		goto cleanup;
	}
	if ((error = dk_store_task_list_for_instance(r->store, instance, &tasks, &ntasks)) < 0)
		goto cleanup;
	if (pre) {
		/* Ahead of an act: only what the seeing check and If-Match
		 * read, not the page a GET shows. */
		json_t *users = json_array();
		for (size_t i = 0; i < ntasks; i++)
			json_array_append_new(users, json_pack("{s:s}", "user", tasks[i].user_id));
		*out = json_pack("{s:s, s:s, s:I, s:o}", "id", row.id, "initiator", snap->initiator,
		                 "version", (json_int_t)snap->version, "tasks", users);
		*pre = dk_calloc(1, sizeof(**pre));
		(*pre)->version = row.version;
		(*pre)->snap = snap;
		snap = NULL;
		goto cleanup;
	}
	if (actor && (error = available_as(&mine, r, flow, snap, actor, now)) < 0)
		goto cleanup;
	json_t *states = json_array(), *vars = json_object(), *tl = json_array();
	size_t n = dk_snapshot_active(snap, ids, 64);
	for (size_t i = 0; i < n && i < 64; i++)
		json_array_append_new(states, json_string(ids[i]));
	for (size_t i = 0; i < snap->nvars; i++)
		json_object_set_new(vars, snap->vars[i].name, value_json(&snap->vars[i]));
	for (size_t i = 0; i < ntasks; i++)
		json_array_append_new(tl, dk_task_json(&tasks[i], now));
	*out = json_pack(
	    "{s:s, s:s, s:i, s:o, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:I, s:o, s:o}", "id", row.id,
	    "flow", row.flow_id, "flow_version", row.flow_version, "title", dk_json_strn(row.title),
	    "status", dk_instance_status_name(snap->status), "state", row.state, "states", states,
	    "initiator", snap->initiator, "vars", vars, "tasks", tl, "available",
	    available_json(flow, snap), "version", (json_int_t)snap->version, "created_at",
	    dk_json_time(row.created_at), "updated_at", dk_json_time(row.updated_at));
	if (mine)
		json_object_set_new(*out, "available_transitions", mine);
	mine = NULL;
cleanup:
	dk_store_read_end(r->store, began);
	json_decref(mine);
	dk_task_rows_free(tasks, ntasks);
	dk_snapshot_free(snap);
	dk_instance_row_free(&row);
	return error;
}

int dk_runner_show(dk_runner *r, json_t **out, const char *instance)
{
	return show(r, out, instance, NULL, NULL);
}

int dk_runner_show_as(dk_runner *r, json_t **out, const char *instance, const char *actor)
{
	return show(r, out, instance, actor, NULL);
}

int dk_runner_show_preload(dk_runner *r, json_t **out, const char *instance, dk_preload **pre)
{
	*pre = NULL;
	return show(r, out, instance, NULL, pre);
}

void dk_preload_free(dk_preload *p)
{
	if (!p)
		return;
	dk_snapshot_free(p->snap);
	free(p);
}

int dk_runner_graph(dk_runner *r, dk_buf *out, const char *instance, const char *format)
{
	dk_instance_row row = {0};
	dk_snapshot *snap = NULL;
	const dk_flow *flow;
	const char *ids[65];
	int error;
	size_t n;

	if ((error = dk_runner_get_instance(r, &row, instance)) < 0 ||
	    (error = dk_runner_flow(r, &flow, row.flow_id, row.flow_version)) < 0)
		goto cleanup;
	if (dk_snapshot_from_json(&snap, row.snapshot) < 0) {
		error = dk_error_set(DK_EINTERNAL, "instance %s has a damaged snapshot: %s",
		                     instance, dk_error_last());
		goto cleanup;
	}
	n = dk_snapshot_active(snap, ids, 64);
	ids[n < 64 ? n : 64] = NULL;
	error = dk_flow_graph(out, flow, format, ids);
cleanup:
	dk_snapshot_free(snap);
	dk_instance_row_free(&row);
	return error;
}
