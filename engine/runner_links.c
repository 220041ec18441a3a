/*
 * runner_links.c - the runner's side of signed action links: which moves
 * each assignee may make (for the links a webhook payload carries), what a
 * link still allows (for the page a link opens), and the act a link makes,
 * whose nonce is marked used in the act's own transaction.
 *
 * A link is for one visit of one state: once the instance left that
 * state, the link is stale even if the instance came back, because the
 * approver saw a notification about the earlier round.
 */
#include "engine/engine.h"
#include "engine/runner_int.h"
#include "util/buf.h"
#include "util/error.h"
#include "web-hooks/hooks.h"

#include <stdlib.h>
#include <string.h>

#define MAX_IDS 64

/* 1 when id is among the n ids. */
static int has(const char *const *ids, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return 1;
	return 0;
}

int dk_runner_link_actions(dk_runner *r, const dk_instance_row *row, const dk_engine_result *res,
                           const char *const *users, size_t nusers, dk_link **out, size_t *n)
{
	dk_engine_env env = DK_ENGINE_ENV_INIT;
	const dk_flow *flow;
	const dk_org *org;
	size_t cap = 0;
	int error;

	*out = NULL;
	*n = 0;
	if (!res->ntasks || !nusers)
		return 0;
	if ((error = dk_runner_flow(r, &flow, row->flow_id, row->flow_version)) < 0 ||
	    (error = dk_runner_org(r, &org)) < 0)
		return error;
	/* The assignee acts as themselves: no delegation is needed for that. */
	env.flow = flow;
	env.org = org;
	env.now = res->snapshot->updated_at;
	for (size_t u = 0; u < nusers; u++) {
		const char *ids[MAX_IDS];
		size_t nids = dk_engine_available(&env, res->snapshot, users[u], ids, MAX_IDS);
		if (nids > MAX_IDS)
			nids = MAX_IDS;
		for (size_t t = 0; t < res->ntasks; t++) {
			const dk_task *task = &res->tasks[t];
			const dk_state *st = dk_flow_state(flow, task->state);
			const dk_snap_state *ss = dk_snapshot_state(res->snapshot, task->state);
			if (strcmp(task->user, users[u]) != 0 || !st || !ss)
				continue;
			for (size_t k = 0; k < st->ntransitions; k++) {
				const dk_transition *tr = &st->transitions[k];
				if (!tr->id || tr->on_done || !has(ids, nids, tr->id))
					continue;
				if (*n == cap) {
					cap = cap ? cap * 2 : 8;
					*out = dk_realloc(*out, cap * sizeof(**out));
				}
				dk_link *l = &(*out)[(*n)++];
				memset(l, 0, sizeof(*l));
				l->state = task->state;
				l->visit = ss->visits;
				l->transition = tr->id;
				l->user = task->user;
			}
		}
	}
	return 0;
}

/* Why a link's move is not open any more, or 0 when it is. */
static int still_open(const dk_loaded *l, const dk_link *link)
{
	const char *ids[MAX_IDS];
	size_t n;
	const dk_snap_state *ss = dk_snapshot_state(l->snap, link->state);

	if (l->snap->status == DK_INSTANCE_COMPLETED)
		return dk_error_set(DK_ECONFLICT,
		                    "instance %s is finished (now in %s); nothing is "
		                    "left to do from this link",
		                    link->instance, l->row.state);
	n = dk_snapshot_active(l->snap, ids, MAX_IDS);
	if (!has(ids, n < MAX_IDS ? n : MAX_IDS, link->state) || !ss || ss->visits != link->visit)
		return dk_error_set(
		    DK_ECONFLICT,
		    "instance %s has moved on: this link was for step '%s', and the "
		    "instance is now in %s; open the inbox to see what it needs",
		    link->instance, link->state, l->row.state);
	n = dk_engine_available(&l->env, l->snap, link->user, ids, MAX_IDS);
	if (!has(ids, n < MAX_IDS ? n : MAX_IDS, link->transition))
		return dk_error_set(DK_ECONFLICT,
		                    "'%s' is no longer open to %s on instance %s (it may have been "
		                    "decided already); open the inbox to see what it needs",
		                    link->transition, link->user, link->instance);
	return 0;
}

int dk_runner_link_view(dk_runner *r, json_t **out, const struct dk_link *link)
{
	dk_loaded l;
	int64_t now;
	int error, open;

	*out = NULL;
	memset(&l, 0, sizeof(l));
	if ((error = dk_runner_clock(r, &now)) < 0)
		return error;
	if ((error = dk_runner_load(r, &l, link->instance, link->user, now)) < 0)
		goto cleanup;
	const dk_state *st = dk_flow_state(l.env.flow, link->state);
	const dk_transition *tr = NULL;
	for (size_t k = 0; st && k < st->ntransitions; k++)
		if (strcmp(st->transitions[k].id, link->transition) == 0)
			tr = &st->transitions[k];
	const dk_user *u = dk_org_user(l.env.org, link->user);
	open = still_open(&l, link) == 0;
	*out = json_pack("{s:s, s:s, s:o, s:s, s:o, s:s, s:s, s:o, s:b, s:b, s:I, s:s}", "instance",
	                 l.row.id, "flow", l.row.flow_id, "title", dk_json_strn(l.row.title),
	                 "state", link->state, "state_title", dk_json_strn(st ? st->title : NULL),
	                 "current", l.row.state, "transition", link->transition, "target",
	                 dk_json_strn(tr ? tr->to : NULL), "comment_required",
	                 tr && tr->comment_required, "open", open, "version",
	                 (json_int_t)l.snap->version, "user", link->user);
	json_object_set_new(*out, "user_name", dk_json_strn(u ? u->name : NULL));
	if (!open)
		json_object_set_new(*out, "why", json_string(dk_error_last()));
	dk_error_clear();
cleanup:
	dk_loaded_free(&l);
	return error;
}

struct link_arg {
	dk_runner *r;
	const dk_link *link;
	dk_fire_cmd cmd;
};

/* Inside the act's transaction: still open, then the nonce marked used,
 * then the engine decides. A refusal rolls the mark back with the rest. */
static int decide_link(dk_engine_result *res, const dk_loaded *l, const void *arg)
{
	const struct link_arg *a = arg;
	int error;

	if ((error = still_open(l, a->link)) < 0 ||
	    (error = dk_store_link_use(a->r->store, a->link->nonce, a->link->instance,
	                               a->link->user, a->link->transition, l->env.now)) < 0)
		return error;
	return dk_engine_fire(res, &l->env, l->snap, &a->cmd);
}

int dk_runner_link_act(dk_runner *r, json_t **out, const struct dk_link *link, const char *comment)
{
	struct link_arg a = {r, link, DK_FIRE_CMD_INIT};

	a.cmd.transition = link->transition;
	a.cmd.actor = link->user;
	a.cmd.comment = comment;
	a.cmd.state = link->state;
	return dk_runner_step(r, out, link->instance, link->user, decide_link, &a);
}
