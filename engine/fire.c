/*
 * fire.c - starting instances, firing transitions, recall.
 *
 * How a command runs (after QP/C: each command runs to completion, exit and
 * entry are explicit, and every step leaves an event):
 *
 *   1. Refusals come first and change nothing: the command works on a copy
 *      of the snapshot, which only becomes the result when every check has
 *      passed. The order is: instance final or stale version (conflict),
 *      unknown transition (not found), not available in any active state
 *      (conflict), actor (forbidden), the command's variables (invalid),
 *      comment, evidence of this visit, guard (precondition).
 *   2. Taking a transition runs its <set>s in order (each sees the ones
 *      before), records transition.fired with the variable changes, exits
 *      the source (a parallel exits every region first), enters the target
 *      and, when a region move left every region of the parallel in a
 *      final state, takes the parallel's on="done" transition as the
 *      system actor in the same command. Entering a top-level final state
 *      completes the instance.
 *   3. Entering a state stamps its entry time, counts the visit, forgets
 *      the votes and escalations of the previous visit and computes its
 *      deadlines (after= from the entry on the zone's calendar, at= by
 *      evaluating the expression now). Entering a parallel enters the
 *      initial state of each region, in document order.
 *   4. In a quorum state a firing is a vote: see quorum.c. Only when the
 *      votes decide does step 2 run.
 *   5. Finally the version goes up by one and the complete sets of open
 *      tasks and armed timers are derived from the new snapshot
 *      (result.c); tasks that are new give task.assigned events.
 *
 * Which transition: the id is looked up in every active innermost state
 * (the top-level state, or each region's state) and in the parallel
 * itself. When it is in several, the ones the actor may fire are kept; if
 * that is still more than one, the command must name the state.
 *
 * Recall: the initiator may take the instance back to the initial state as
 * long as nobody else has acted since the initiator's last firing
 * (snapshot.acted). The instance is then "recalled" until the next firing.
 */
#include "engine/internal.h"

#include <stdlib.h>
#include <string.h>

static int compute_deadlines(dk_run *run, const dk_state *st, dk_snap_state *rec)
{
	/* Days and months are counted on the zone's wall clock, so P1D across
	 * a daylight-saving change lands at the same local time; PT24H stays
	 * 24 real hours. */
	const char *zone;
	int err;
	if (st->ndeadlines == 0)
		return 0;
	rec->deadlines = dk__snap_alloc(run->snap, st->ndeadlines * sizeof(*rec->deadlines));
	rec->ndeadlines = st->ndeadlines;
	zone = dk__zone(run);
	for (size_t i = 0; i < st->ndeadlines; i++) {
		const dk_deadline *dl = &st->deadlines[i];
		dk_snap_deadline *sd = &rec->deadlines[i];
		if (dl->has_after)
			sd->due_at = dk__add_local(zone, run->env->now, &dl->after);
		else if (dl->at && (err = dk__eval_time(&sd->due_at, run, st->id, dl->at)) < 0)
			return err;
		if (dl->has_remind)
			sd->next_remind = dk__add_local(zone, run->env->now, &dl->remind_every);
	}
	return 0;
}

static void set_region(dk_snapshot *snap, const dk_region *r, const char *state)
{
	for (size_t i = 0; i < snap->nregions; i++) {
		if (strcmp(snap->regions[i].region, r->id) == 0) {
			dk__snap_setstr(snap, &snap->regions[i].state, state);
			return;
		}
	}
	snap->regions = dk__snap_grow(snap, snap->regions, snap->nregions * sizeof(*snap->regions),
	                              (snap->nregions + 1) * sizeof(*snap->regions));
	snap->regions[snap->nregions].region = dk__snap_strdup(snap, r->id);
	snap->regions[snap->nregions].state = dk__snap_strdup(snap, state);
	snap->nregions++;
}

static void clear_regions(dk_snapshot *snap)
{
	for (size_t i = 0; i < snap->nregions; i++) {
		dk__snap_release(snap, snap->regions[i].region);
		dk__snap_release(snap, snap->regions[i].state);
	}
	snap->nregions = 0;
}

int dk__enter(dk_run *run, const dk_state *st)
{
	dk_snap_state *rec;
	int err;
	if (st->region)
		set_region(run->snap, st->region, st->id);
	else {
		dk__snap_setstr(run->snap, &run->snap->state, st->id);
		clear_regions(run->snap);
	}
	rec = dk__snap_state(run->snap, st->id, 1);
	dk__snap_state_reset(run->snap, rec);
	rec->entered_at = run->env->now;
	rec->visits++;
	dk__snap_drop_votes(run->snap, st->id);
	if ((err = compute_deadlines(run, st, rec)) < 0)
		return err;
	if (st->kind == DK_STATE_PARALLEL) {
		for (size_t i = 0; i < st->nregions; i++)
			if ((err = dk__enter(run, st->regions[i]->initial)) < 0)
				return err;
	}
	if (st->final && !st->region) {
		run->snap->status = DK_INSTANCE_COMPLETED;
		dk_event *e = dk__event(run, DK_EV_COMPLETED);
		e->to = dk__rkeep(run, st->id);
	}
	return 0;
}

static void exit_state(dk_run *run, const dk_state *st)
{
	dk_snap_state *rec = dk__snap_state(run->snap, st->id, 0);
	if (st->kind == DK_STATE_PARALLEL) {
		for (size_t i = 0; i < run->snap->nregions; i++) {
			const dk_state *rs = dk_flow_state(run->flow, run->snap->regions[i].state);
			if (rs)
				exit_state(run, rs);
		}
		clear_regions(run->snap);
	}
	if (rec)
		dk__snap_state_reset(run->snap, rec);
	dk__snap_drop_votes(run->snap, st->id);
}

static int all_regions_final(dk_run *run)
{
	for (size_t i = 0; i < run->snap->nregions; i++) {
		const dk_state *rs = dk_flow_state(run->flow, run->snap->regions[i].state);
		if (!rs || !rs->final)
			return 0;
	}
	return run->snap->nregions > 0;
}

int dk__take(dk_run *run, const dk_state *from, const dk_transition *t, const char *on_behalf,
             const char *comment, dk_changes *var_changes)
{
	dk_changes own = {NULL, 0};
	dk_changes *changes = var_changes ? var_changes : &own;
	dk_buf data = DK_BUF_INIT;
	const dk_state *parallel = from->region ? from->region->parallel : NULL;
	int err = 0;
	for (size_t i = 0; i < t->nsets; i++) {
		const dk_set *s = &t->sets[i];
		const dk_var *decl = dk_flow_var(run->flow, s->var);
		xmlXPathObjectPtr r;
		dk_value v;
		if (!decl) {
			err =
			    dk_error_set(DK_EINVALID, "<set var='%s'> (line %d) names no variable",
			                 s->var, s->line);
			goto cleanup;
		}
		if ((err = dk__eval(&r, run, from->id, s->value)) < 0)
			goto cleanup;
		err = dk__value_from_xpath(&v, decl, r);
		xmlXPathFreeObject(r);
		if (err < 0)
			goto cleanup;
		dk__var_change(changes, dk_snapshot_var(run->snap, decl->name), &v);
		dk__snap_set_var(run->snap, run->flow, &v);
		dk__value_clear(&v);
	}
	dk_event *e = dk__event(run, DK_EV_FIRED);
	e->on_behalf_of = on_behalf ? dk__rstr(run, on_behalf) : NULL;
	e->from = dk__rkeep(run, from->id);
	e->to = dk__rkeep(run, t->target->id);
	e->transition = dk__rkeep(run, t->id ? t->id : "done");
	e->comment = comment && *comment ? dk__rstr(run, comment) : NULL;
	if (changes->n) {
		dk__scratch_take(&data);
		dk_buf_puts(&data, "{\"vars\":");
		dk__changes_write(&data, changes);
		dk_buf_putc(&data, '}');
		e->data = dk__rstr(run, dk_buf_cstr(&data));
		dk__scratch_give(&data);
	} else {
		e->data = dk__rstr(run, "{}");
	}

	if (run->snap->status == DK_INSTANCE_RECALLED)
		run->snap->status = DK_INSTANCE_ACTIVE;
	exit_state(run, from);
	if ((err = dk__enter(run, t->target)) < 0)
		goto cleanup;
	if (parallel && t->target->region && all_regions_final(run)) {
		for (size_t i = 0; i < parallel->ntransitions; i++) {
			const dk_transition *join = &parallel->transitions[i];
			if (!join->on_done)
				continue;
			const char *saved = run->actor;
			run->actor = DK_SYSTEM_ACTOR;
			err = dk__take(run, parallel, join, NULL, NULL, NULL);
			run->actor = saved;
			break;
		}
	}
cleanup:
	dk__changes_free(&own);
	return err;
}

/* Was evidence kind uploaded during the current visit of st (for a
 * parallel: during its current visit, in it or any region)? */
static int uploaded_this_visit(dk_run *run, const dk_state *st, const char *kind)
{
	const dk_snap_state *rec = dk_snapshot_state(run->snap, st->id);
	if (!rec)
		return 0;
	for (size_t i = 0; i < run->snap->nevidence; i++) {
		const dk_snap_evidence *e = &run->snap->evidence[i];
		if (strcmp(e->kind, kind) != 0)
			continue;
		if (strcmp(e->state, st->id) == 0 && e->visit == rec->visits)
			return 1;
		if (st->kind == DK_STATE_PARALLEL && e->at >= rec->entered_at) {
			const dk_state *es = dk_flow_state(run->flow, e->state);
			if (es && es->region && es->region->parallel == st)
				return 1;
		}
	}
	return 0;
}

int dk__check(dk_run *run, const dk_state *st, const dk_transition *t, const char *comment,
              int system)
{
	int ok, err;
	const char *tid = t->id ? t->id : "done";
	if (!system && t->comment_required && (!comment || !*comment))
		return dk_error_set(DK_EPRECOND,
		                    "transition '%s' requires a comment; add --comment TEXT", tid);
	for (size_t i = 0; !system && i < t->nrequires; i++) {
		const dk_evidence_kind *k = dk_flow_evidence(run->flow, t->requires[i]);
		if (uploaded_this_visit(run, st, t->requires[i]))
			continue;
		return dk_error_set(DK_EPRECOND,
		                    "transition '%s' requires evidence '%s' (%s); attach it with "
		                    "docket attach %s FILE --evidence %s",
		                    tid, t->requires[i], k && k->title ? k->title : t->requires[i],
		                    run -> snap -> instance ? run -> snap -> instance : "ID",
		                    t->requires[i]);
	}
	if (t->guard) {
		if ((err = dk__eval_bool(&ok, run, st->id, t->guard)) < 0)
			return err;
		if (!ok)
			return dk_error_set(DK_EPRECOND,
			                    "transition '%s' is not allowed now: its guard '%s' is "
			                    "false",
			                    tid, t->guard->text);
	}
	return 0;
}

/* ---- finding the transition -------------------------------------------- */

static void all_transition_ids(dk_buf *b, const dk_flow *flow)
{
	size_t n = 0;
	for (size_t i = 0; i < flow->nstates; i++) {
		for (size_t j = 0; j < flow->states[i].ntransitions; j++) {
			const char *id = flow->states[i].transitions[j].id;
			if (!id || flow->states[i].transitions[j].on_done)
				continue;
			int seen = 0;
			for (size_t k = 0; k <= i && !seen; k++)
				for (size_t l = 0; l < flow->states[k].ntransitions && !seen; l++) {
					if (k == i && l == j)
						break;
					const char *o = flow->states[k].transitions[l].id;
					seen = o && strcmp(o, id) == 0;
				}
			if (!seen)
				dk_buf_printf(b, "%s%s", n++ ? ", " : "", id);
		}
	}
}

static int flow_has_transition(const dk_flow *flow, const char *id)
{
	for (size_t i = 0; i < flow->nstates; i++)
		for (size_t j = 0; j < flow->states[i].ntransitions; j++)
			if (flow->states[i].transitions[j].id &&
			    !flow->states[i].transitions[j].on_done &&
			    strcmp(flow->states[i].transitions[j].id, id) == 0)
				return 1;
	return 0;
}

/* Active states where transitions may be fired: the innermost ones, then
 * the parallel. */
static size_t firing_states(const dk_engine_env *env, const dk_snapshot *snap, const dk_state **out,
                            size_t max)
{
	size_t n = 0;
	const dk_state *top = snap->state ? dk_flow_state(env->flow, snap->state) : NULL;
	if (!top)
		return 0;
	for (size_t i = 0; i < snap->nregions && n < max; i++) {
		const dk_state *s = dk_flow_state(env->flow, snap->regions[i].state);
		if (s)
			out[n++] = s;
	}
	if (n < max)
		out[n++] = top;
	return n;
}

static const dk_transition *find_in(const dk_state *st, const char *id)
{
	for (size_t i = 0; i < st->ntransitions; i++)
		if (st->transitions[i].id && !st->transitions[i].on_done &&
		    strcmp(st->transitions[i].id, id) == 0)
			return &st->transitions[i];
	return NULL;
}

static void available_list(dk_buf *b, const dk_engine_env *env, const dk_snapshot *snap)
{
	const dk_state *st[64];
	size_t n = firing_states(env, snap, st, 64), k = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < st[i]->ntransitions; j++) {
			const dk_transition *t = &st[i]->transitions[j];
			if (!t->id || t->on_done)
				continue;
			dk_buf_printf(b, "%s%s", k++ ? ", " : "", t->id);
		}
	if (k == 0)
		dk_buf_puts(b, "none");
}

static void active_names(dk_buf *b, const dk_snapshot *snap)
{
	dk_buf_puts(b, snap->state);
	if (snap->nregions) {
		dk_buf_puts(b, " (");
		for (size_t i = 0; i < snap->nregions; i++)
			dk_buf_printf(b, "%s%s", i ? ", " : "", snap->regions[i].state);
		dk_buf_puts(b, ")");
	}
}

size_t dk_engine_available(const dk_engine_env *env, const dk_snapshot *snap, const char *actor,
                           const char **ids, size_t max)
{
	const dk_state *st[64];
	dk_run run = {.env = env,
	              .flow = env->flow,
	              .snap = (dk_snapshot *)snap,
	              .res = NULL,
	              .actor = actor};
	size_t n, k = 0;
	if (snap->status == DK_INSTANCE_COMPLETED)
		return 0;
	n = firing_states(env, snap, st, 64);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < st[i]->ntransitions; j++) {
			const dk_transition *t = &st[i]->transitions[j];
			char *behalf = NULL;
			int dup = 0;
			if (!t->id || t->on_done)
				continue;
			for (size_t l = 0; l < k && l < max; l++)
				dup |= strcmp(ids[l], t->id) == 0;
			if (dup || dk__authorize(&behalf, &run, st[i], t) < 0)
				continue;
			free(behalf);
			if (k < max)
				ids[k] = t->id;
			k++;
		}
	dk_error_clear();
	return k;
}

/* ---- commands ---------------------------------------------------------- */

static int check_flow(const dk_engine_env *env, const dk_snapshot *snap)
{
	if (!env->flow)
		return dk_error_set(DK_EINVALID, "no flow given to the engine");
	if (snap &&
	    (strcmp(snap->flow_id, env->flow->id) != 0 || snap->flow_version != env->flow->version))
		return dk_error_set(DK_EINVALID,
		                    "instance %s runs flow %s@%d, but %s@%d was given; load the "
		                    "flow version the instance was started with",
		                    snap->instance, snap->flow_id, snap->flow_version,
		                    env->flow->id, env->flow->version);
	return 0;
}

int dk_engine_start(dk_engine_result *out, const dk_engine_env *env, const char *instance,
                    const char *initiator, const char *const *vars, size_t nvars)
{
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_run run = {.env = env, .flow = env->flow, .snap = NULL, .res = &res, .actor = initiator};
	const dk_flow *flow = env->flow;
	dk_changes all = {NULL, 0};
	int err;
	memset(out, 0, sizeof(*out));
	if ((err = check_flow(env, NULL)) < 0)
		return err;
	if (!initiator || !*initiator)
		return dk_error_set(DK_EINVALID,
		                    "starting an instance needs an initiator; name one "
		                    "with --as USER");
	res.snapshot = dk__snap_new();
	run.snap = res.snapshot;
	run.snap->format = DK_SNAPSHOT_FORMAT;
	run.snap->flow_id = dk__snap_strdup(run.snap, flow->id);
	run.snap->flow_version = flow->version;
	run.snap->instance = dk__snap_strdup(run.snap, instance);
	run.snap->status = DK_INSTANCE_ACTIVE;
	run.snap->initiator = dk__snap_strdup(run.snap, initiator);
	run.snap->version = 1;
	run.snap->created_at = run.snap->updated_at = env->now;
	for (size_t i = 0; i < flow->nvars; i++) {
		dk_value v;
		if (!flow->vars[i].default_value)
			continue;
		if ((err = dk__value_parse(&v, &flow->vars[i], flow->vars[i].default_value)) < 0)
			goto cleanup;
		dk__snap_set_var(run.snap, flow, &v);
		dk__value_clear(&v);
	}
	if ((err = dk__vars_assign(&run, vars, nvars, NULL)) < 0)
		goto cleanup;
	for (size_t i = 0; i < flow->nvars; i++) {
		if (flow->vars[i].required && !dk_snapshot_var(run.snap, flow->vars[i].name)) {
			err = dk_error_set(
			    DK_EINVALID,
			    "flow '%s' requires variable '%s' (%s); pass --var %s=VALUE", flow->id,
			    flow->vars[i].name,
			    flow->vars[i].type == DK_VAR_NUMBER    ? "number"
			    : flow->vars[i].type == DK_VAR_BOOLEAN ? "boolean"
			    : flow->vars[i].type == DK_VAR_DATE    ? "date"
			                                           : "string",
			    flow->vars[i].name);
			goto cleanup;
		}
	}
	dk_event *e = dk__event(&run, DK_EV_STARTED);
	e->to = dk__rstr(&run, flow->initial->id);
	for (size_t i = 0; i < run.snap->nvars; i++)
		dk__var_change(&all, NULL, &run.snap->vars[i]);
	{
		dk_jw w;
		dk__jw_begin(&w);
		dk__jw_str(&w, "flow", flow->id);
		dk__jw_int(&w, "version", flow->version);
		if (!w.bad) {
			dk_buf_puts(&w.b, ",\"vars\":");
			dk__changes_write(&w.b, &all);
		}
		e->data = dk__jw_end_in(&w, dk__res_mem(&res));
	}
	if ((err = dk__enter(&run, flow->initial)) < 0)
		goto cleanup;
	if ((err = dk__finish(&run, NULL)) < 0)
		goto cleanup;
	dk__changes_free(&all);
	*out = res;
	return 0;
cleanup:
	dk__changes_free(&all);
	dk_engine_result_free(&res);
	return err;
}

static int refuse_final(const dk_snapshot *snap)
{
	return dk_error_set(DK_ECONFLICT,
	                    "instance %s is already completed (final state '%s'); nothing more "
	                    "can happen to it",
	                    snap->instance, snap->state);
}

int dk_engine_fire(dk_engine_result *out, const dk_engine_env *env, const dk_snapshot *snap,
                   const dk_fire_cmd *cmd)
{
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_run run = {.env = env,
	              .flow = env->flow,
	              .snap = (dk_snapshot *)snap,
	              .res = &res,
	              .actor = cmd->actor};
	const dk_state *st[64], *from = NULL;
	const dk_transition *t = NULL, *found[64];
	size_t n;
	char *behalf = NULL;
	dk_changes changes = {NULL, 0};
	dk_buf b = DK_BUF_INIT;
	int err = 0, fire = 1;
	memset(out, 0, sizeof(*out));
	if ((err = check_flow(env, snap)) < 0)
		return err;
	if (!cmd->transition || !cmd->actor)
		return dk_error_set(DK_EINVALID, "firing needs a transition and an actor");
	if (snap->status == DK_INSTANCE_COMPLETED)
		return refuse_final(snap);
	if (cmd->expect_version && cmd->expect_version != snap->version)
		return dk_error_set(DK_ECONFLICT,
		                    "instance %s is at version %lld, not %lld: someone acted in "
		                    "between; look at it with docket show %s and retry",
		                    snap->instance, (long long)snap->version,
		                    (long long)cmd->expect_version, snap->instance);
	/* an id an active state has is in the flow: the whole flow is
	 * searched only when none has it */
	n = firing_states(env, snap, st, 64);
	{
		int active = 0;
		for (size_t i = 0; i < n; i++)
			active |= (found[i] = find_in(st[i], cmd->transition)) != NULL;
		if (!active && !flow_has_transition(env->flow, cmd->transition)) {
			all_transition_ids(&b, env->flow);
			err = dk_error_set(DK_ENOTFOUND,
			                   "flow '%s' has no transition '%s'; it has: %s",
			                   env->flow->id, cmd->transition, dk_buf_cstr(&b));
			goto cleanup;
		}
	}

	/* find where it can fire; among several, keep those the actor may
	 * fire */
	{
		const dk_state *cand[64];
		const dk_transition *cand_t[64];
		size_t nc = 0, nauth = 0;
		int first_err = 0;
		char first_msg[1024];
		first_msg[0] = '\0';
		for (size_t i = 0; i < n; i++) {
			if (cmd->state && strcmp(cmd->state, st[i]->id) != 0)
				continue;
			if (found[i]) {
				cand_t[nc] = found[i];
				cand[nc++] = st[i];
			}
		}
		if (nc == 0) {
			dk_buf a = DK_BUF_INIT;
			active_names(&a, snap);
			available_list(&b, env, snap);
			err =
			    dk_error_set(DK_ECONFLICT,
			                 "transition '%s' is not available in state '%s'; "
			                 "available: %s",
			                 cmd->transition, cmd->state ? cmd->state : dk_buf_cstr(&a),
			                 dk_buf_cstr(&b));
			dk_buf_free(&a);
			goto cleanup;
		}
		for (size_t i = 0; i < nc; i++) {
			char *who = NULL;
			int e = dk__authorize(&who, &run, cand[i], cand_t[i]);
			if (e < 0) {
				if (!first_err) {
					first_err = e;
					snprintf(first_msg, sizeof(first_msg), "%s",
					         dk_error_last());
				}
				continue;
			}
			if (nauth++ == 0) {
				from = cand[i];
				t = cand_t[i];
				behalf = who;
			} else {
				free(who);
			}
		}
		if (nauth == 0) {
			err = dk_error_set(first_err, "%s", first_msg);
			goto cleanup;
		}
		if (nauth > 1) {
			for (size_t i = 0; i < nc; i++)
				dk_buf_printf(&b, "%s%s", i ? ", " : "", cand[i]->id);
			err = dk_error_set(
			    DK_ECONFLICT,
			    "transition '%s' is available in several active states (%s); "
			    "name the state to fire it in",
			    cmd->transition, dk_buf_cstr(&b));
			goto cleanup;
		}
	}
	res.snapshot = dk_snapshot_dup(snap);
	run.snap = res.snapshot;
	if ((err = dk__vars_assign(&run, cmd->vars, cmd->nvars, &changes)) < 0)
		goto cleanup;
	if ((err = dk__check(&run, from, t, cmd->comment, 0)) < 0)
		goto cleanup;
	if (from->quorum != DK_QUORUM_NONE && from->kind == DK_STATE_SIMPLE) {
		if ((err = dk__vote(&fire, &run, from, t, behalf ? behalf : cmd->actor)) < 0)
			goto cleanup;
		/* the vote carries the voter's comment; its variables too
		 * when it does not fire (else transition.fired has them) */
		dk_event *v = &res.events[res.nevents - 1];
		v->comment = cmd->comment && *cmd->comment ? dk__rstr(&run, cmd->comment) : NULL;
		if (!fire && changes.n && v->data && *v->data == '{') {
			/* the vote's object with "vars" added last */
			dk_buf d = DK_BUF_INIT;
			size_t len = strlen(v->data);
			dk_buf_put(&d, v->data, len - 1);
			if (len > 2)
				dk_buf_putc(&d, ',');
			dk_buf_puts(&d, "\"vars\":");
			dk__changes_write(&d, &changes);
			dk_buf_putc(&d, '}');
			v->data = dk__rstr(&run, dk_buf_cstr(&d));
			dk_buf_free(&d);
		}
	}
	if (fire && (err = dk__take(&run, from, t, behalf, cmd->comment, &changes)) < 0)
		goto cleanup;
	run.snap->acted =
	    !(strcmp(cmd->actor, snap->initiator ? snap->initiator : "") == 0 && !behalf && fire);
	run.snap->version++;
	run.snap->updated_at = env->now;
	if ((err = dk__finish(&run, snap)) < 0)
		goto cleanup;
	*out = res;
	memset(&res, 0, sizeof(res));
cleanup:
	dk__changes_free(&changes);
	free(behalf);
	dk_buf_free(&b);
	dk_engine_result_free(&res);
	return err;
}

int dk_engine_recall(dk_engine_result *out, const dk_engine_env *env, const dk_snapshot *snap,
                     const char *actor, const char *comment)
{
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_run run = {.env = env, .flow = env->flow, .snap = NULL, .res = &res, .actor = actor};
	const dk_state *top;
	int err;
	memset(out, 0, sizeof(*out));
	if ((err = check_flow(env, snap)) < 0)
		return err;
	if (snap->status == DK_INSTANCE_COMPLETED)
		return refuse_final(snap);
	if (!actor || !snap->initiator || strcmp(actor, snap->initiator) != 0)
		return dk_error_set(DK_EFORBIDDEN,
		                    "%s may not recall instance %s: only its initiator (%s) may",
		                    actor ? actor : "(nobody)", snap->instance,
		                    snap->initiator ? snap->initiator : "");
	if (strcmp(snap->state, env->flow->initial->id) == 0)
		return dk_error_set(DK_ECONFLICT,
		                    "instance %s is already in its initial state '%s'; there is "
		                    "nothing to recall",
		                    snap->instance, snap->state);
	if (snap->acted)
		return dk_error_set(
		    DK_ECONFLICT,
		    "instance %s can no longer be recalled: it has been acted on in "
		    "state '%s' since you sent it; ask the assignee to return it",
		    snap->instance, snap->state);
	top = dk_flow_state(env->flow, snap->state);
	res.snapshot = dk_snapshot_dup(snap);
	run.snap = res.snapshot;
	if (top)
		exit_state(&run, top);
	dk_event *e = dk__event(&run, DK_EV_RECALLED);
	e->from = dk__rstr(&run, snap->state);
	e->to = dk__rstr(&run, env->flow->initial->id);
	e->comment = comment && *comment ? dk__rstr(&run, comment) : NULL;
	e->data = dk__rstr(&run, "{}");
	if ((err = dk__enter(&run, env->flow->initial)) < 0)
		goto cleanup;
	run.snap->status = DK_INSTANCE_RECALLED;
	run.snap->acted = 0;
	run.snap->version++;
	run.snap->updated_at = env->now;
	if ((err = dk__finish(&run, snap)) < 0)
		goto cleanup;
	*out = res;
	return 0;
cleanup:
	dk_engine_result_free(&res);
	return err;
}
