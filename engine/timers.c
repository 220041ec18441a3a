/*
 * timers.c - deadlines coming due.
 *
 * Timers are derived from the snapshot (result.c): each deadline of each
 * active state has one timer for the deadline itself, until it has fired,
 * and one for its next reminder. The payload names the state, its visit
 * and the deadline's index, so a timer that outlived its state visit is
 * recognised and dropped (with a timer.dropped event for the audit trail)
 * instead of acting on a later visit.
 *
 *   remind    task.reminder for every open task of the state; the next
 *             reminder is `every` later (skipping those already past).
 *   deadline  deadline.missed; then, when the deadline says so,
 *             escalate: the escalation target is added to the state's
 *             actors (task.escalated, and a task of their own), and
 *             fire: the transition is taken by the system actor. Its guard
 *             still holds it back; comment and evidence are not asked of
 *             the system.
 */
#include "engine/internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int drop(dk_engine_result *out, dk_run *run, const dk_snapshot *snap, const dk_timer *timer,
                const char *why)
{
	dk_event *e = dk__event(run, DK_EV_TIMER_DROP);
	json_t *d = json_pack("{s:s,s:s,s:s}", "kind", timer->kind ? timer->kind : "", "state",
	                      timer->state ? timer->state : "", "reason", why);
	e->from = timer->state ? dk__rstr(run, timer->state) : NULL;
	e->data = dk__rtake(run, json_dumps(d, JSON_COMPACT));
	json_decref(d);
	/* nothing changed but the trail: same snapshot, same version */
	return dk__finish(run, snap);
}

static void add_escalated(dk_snapshot *snap, dk_snap_state *rec, const char *user)
{
	for (size_t i = 0; i < rec->nescalated; i++)
		if (strcmp(rec->escalated[i], user) == 0)
			return;
	rec->escalated = dk__snap_grow(snap, rec->escalated, rec->nescalated * sizeof(char *),
	                               (rec->nescalated + 1) * sizeof(char *));
	rec->escalated[rec->nescalated++] = dk__snap_strdup(snap, user);
}

static int remind(dk_run *run, const dk_state *st, const dk_deadline *dl, dk_snap_deadline *sd)
{
	dk_pool_block *scratch = NULL;
	dk_task *tasks = NULL;
	size_t n = 0;
	int err = dk__desired_tasks(run, &scratch, &tasks, &n);
	if (err < 0) {
		dk__pool_free(scratch);
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(tasks[i].state, st->id) == 0) {
			dk_event *e = dk__event(run, DK_EV_REMINDER);
			e->actor = (char *)DK_SYSTEM_ACTOR;
			e->user = dk__rstr(run, tasks[i].user);
			e->to = dk__rstr(run, st->id);
			json_t *d =
			    json_pack("{s:s,s:s}", "assignee", tasks[i].user, "state", st->id);
			if (sd->due_at) {
				char s[DK_TIME_STRLEN];
				dk_time_format(s, sd->due_at);
				json_object_set_new(d, "due_at", json_string(s));
			}
			e->data = dk__rtake(run, json_dumps(d, JSON_COMPACT));
			json_decref(d);
		}
	}
	dk__pool_free(scratch);
	/* skip reminders a late tick missed; the loader refuses intervals
	 * under a minute, the check keeps a zero one from looping */
	while (sd->next_remind <= run->env->now) {
		int64_t next = dk__add_local(dk__zone(run), sd->next_remind, &dl->remind_every);
		sd->next_remind = next > sd->next_remind ? next : run->env->now + 60;
	}
	return 0;
}

static int escalate(dk_run *run, const dk_state *st, const dk_deadline *dl, dk_snap_state *rec)
{
	dk_users before = {0}, to = {0};
	dk_buf from = DK_BUF_INIT;
	int err;
	if ((err = dk__state_actors(&before, run, st)) < 0 ||
	    (err = dk__assignees(&to, run, st, &dl->escalate)) < 0)
		goto cleanup;
	dk__describe_users(&from, run, &before);
	for (size_t i = 0; i < to.n; i++) {
		if (dk__users_has(&before, to.users[i]))
			continue;
		add_escalated(run->snap, rec, to.users[i]);
		dk_event *e = dk__event(run, DK_EV_ESCALATED);
		e->actor = (char *)DK_SYSTEM_ACTOR;
		e->user = dk__rstr(run, to.users[i]);
		e->to = dk__rstr(run, st->id);
		json_t *d = json_pack("{s:s,s:s,s:s}", "assignee", to.users[i], "state", st->id,
		                      "from", dk_buf_cstr(&from));
		e->data = dk__rtake(run, json_dumps(d, JSON_COMPACT));
		json_decref(d);
	}
cleanup:
	dk__users_free(&before);
	dk__users_free(&to);
	dk_buf_free(&from);
	return err;
}

int dk_engine_timer(dk_engine_result *out, const dk_engine_env *env, const dk_snapshot *snap,
                    const dk_timer *timer)
{
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_run run = {
	    .env = env, .flow = env->flow, .snap = NULL, .res = &res, .actor = DK_SYSTEM_ACTOR};
	json_t *p = NULL;
	const char *state;
	const dk_state *st;
	dk_snap_state *rec;
	size_t index;
	int visit, err = 0;
	memset(out, 0, sizeof(*out));
	if (!env->flow || strcmp(snap->flow_id, env->flow->id) != 0)
		return dk_error_set(DK_EINVALID, "the timer's instance runs another flow");
	if (env->now < timer->due_at)
		return dk_error_set(DK_ECONFLICT, "the %s timer of '%s' is not due yet",
		                    timer->kind ? timer->kind : "",
		                    timer->state ? timer->state : "");
	res.snapshot = dk_snapshot_dup(snap);
	run.snap = res.snapshot;
	p = json_loads(timer->payload ? timer->payload : "", 0, NULL);
	state = json_string_value(json_object_get(p, "state"));
	visit = (int)json_integer_value(json_object_get(p, "visit"));
	index = (size_t)json_integer_value(json_object_get(p, "deadline"));
	st = state ? dk_flow_state(env->flow, state) : NULL;
	rec = state ? dk__snap_state(run.snap, state, 0) : NULL;
	if (!st || !rec || !timer->kind) {
		err = drop(out, &run, snap, timer, "the timer names no state of this flow");
		goto done;
	}
	if (snap->status == DK_INSTANCE_COMPLETED) {
		err = drop(out, &run, snap, timer, "the instance is completed");
		goto done;
	}
	if (!dk__snap_is_active(snap, state) || rec->visits != visit) {
		err = drop(out, &run, snap, timer, "the state was left");
		goto done;
	}
	if (index >= st->ndeadlines || index >= rec->ndeadlines) {
		err = drop(out, &run, snap, timer, "the state has no such deadline");
		goto done;
	}
	const dk_deadline *dl = &st->deadlines[index];
	dk_snap_deadline *sd = &rec->deadlines[index];
	if (strcmp(timer->kind, "remind") == 0) {
		if (!dl->has_remind || sd->next_remind != timer->due_at) {
			err = drop(out, &run, snap, timer, "the reminder was already sent");
			goto done;
		}
		if ((err = remind(&run, st, dl, sd)) < 0)
			goto done;
	} else {
		if (sd->missed || sd->due_at != timer->due_at) {
			err = drop(out, &run, snap, timer, "the deadline was already handled");
			goto done;
		}
		sd->missed = 1;
		dk_event *e = dk__event(&run, DK_EV_MISSED);
		char s[DK_TIME_STRLEN];
		dk_time_format(s, sd->due_at);
		e->from = dk__rstr(&run, st->id);
		json_t *d = json_pack("{s:s,s:s}", "state", st->id, "due_at", s);
		e->data = dk__rtake(&run, json_dumps(d, JSON_COMPACT));
		json_decref(d);
		if (dl->has_escalate && (err = escalate(&run, st, dl, rec)) < 0)
			goto done;
		if (dl->fire_transition) {
			int ok = 1;
			if (dl->fire_transition->guard &&
			    (err = dk__eval_bool(&ok, &run, st->id, dl->fire_transition->guard)) <
			        0)
				goto done;
			if (!ok) {
				dk_event *n = dk__event(&run, DK_EV_TIMER_DROP);
				n->from = dk__rstr(&run, st->id);
				n->transition = dk__rstr(&run, dl->fire_transition->id);
				json_t *nd =
				    json_pack("{s:s,s:s,s:s}", "kind", timer->kind, "state", st->id,
				              "reason", "the transition's guard is false");
				n->data = dk__rtake(&run, json_dumps(nd, JSON_COMPACT));
				json_decref(nd);
			} else if ((err = dk__take(&run, st, dl->fire_transition, NULL, NULL,
			                           NULL)) < 0) {
				goto done;
			}
			run.snap->acted = 1;
		}
	}
	run.snap->version++;
	run.snap->updated_at = env->now;
	err = dk__finish(&run, snap);
done:
	json_decref(p);
	if (err < 0) {
		dk_engine_result_free(&res);
		return err;
	}
	*out = res;
	return 0;
}
