/*
 * runner_tick.c - docket tick: fire every timer due at the clock.
 *
 * Timers are taken in batches of up to TICK_BATCH, one BEGIN IMMEDIATE ..
 * COMMIT per batch, so the fsync that synchronous=FULL asks of a commit is
 * paid once per batch rather than once per timer. Inside a batch the due
 * timers of one instance are one unit behind a savepoint, fired in due
 * order on one load and one write of the instance: their deletion, the
 * new snapshot, audit events, tasks, re-armed timers and outbox rows stand
 * or fall together. A unit that fails (a damaged snapshot, a flow that no
 * longer loads, a write refused) is rolled back alone and its timer
 * dropped with a timer.dropped event that says why, so it neither undoes
 * its batch-mates nor wedges every later tick.
 *
 * Two ticks at once (cron and serve, or two crons): the write lock
 * serialises their batches, each batch reads the due timers after taking
 * the lock, and a timer is deleted in the same unit that acts on it; only
 * the unit whose DELETE removed the row goes on, so no timer fires twice.
 *
 * State changes a timer made (a <fire> transition and what follows it)
 * get their archive notes as a user's act does: from the audit trail, by
 * the catch-up (runner_notes.c; `docket tick` runs one when notes wait).
 */
#include "engine/engine.h"
#include "engine/runner_int.h"
#include "util/buf.h"
#include "util/error.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_BATCH      256
#define TICK_MAX_ROUNDS 100000

/* The audit note of a timer dropped by the runner (the engine's own drops,
 * of timers that outlived their state, come back as results). */
static int drop_timer(dk_runner *r, const dk_timer_row *t, int64_t now, const char *why)
{
	dk_event_row er = {0};
	json_t *data =
	    json_pack("{s:s, s:s, s:s}", "note", why, "timer", t->kind, "state", t->state_id);
	char *text = json_dumps(data, JSON_COMPACT);
	int error;

	er.instance_id = t->instance_id;
	er.type = DK_EV_TIMER_DROP;
	er.actor = DK_SYSTEM_ACTOR;
	er.at = now;
	er.data = text;
	error = dk_store_event_append(r->store, &er);
	free(text);
	json_decref(data);
	return error;
}

/* Fires, in the open transaction, every timer of t's instance that is due
 * at now (t among them), in due order, on one load and one write of the
 * instance: an overdue instance usually has its reminder and its deadline
 * due together. Rows another tick took first are skipped. *fired gets how
 * many fired. */
static int fire_timers(dk_runner *r, const dk_timer_row *t, int64_t now, int *fired)
{
	dk_engine_result acc = DK_ENGINE_RESULT_INIT, res = DK_ENGINE_RESULT_INIT;
	dk_timer_row *due = NULL;
	dk_loaded l;
	size_t n = 0, taken = 0;
	int error;

	*fired = 0;
	memset(&l, 0, sizeof(l));
	if ((error = dk_store_timer_due_for_instance(r->store, t->instance_id, now, &due, &n)) < 0)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		int deleted = 0;
		if ((error = dk_store_timer_delete(r->store, &due[i], &deleted)) < 0)
			goto cleanup;
		if (!deleted)
			due[i].id = 0; /* another tick has it */
		taken += (size_t)deleted;
	}
	if (!taken || (error = dk_runner_load(r, &l, t->instance_id, NULL, now)) < 0)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		dk_timer timer = {0};
		if (!due[i].id)
			continue;
		timer.instance = due[i].instance_id;
		timer.kind = due[i].kind;
		timer.state = due[i].state_id;
		timer.due_at = due[i].due_at;
		timer.payload = due[i].payload;
		error = dk_engine_timer(&res, &l.env, acc.snapshot ? acc.snapshot : l.snap, &timer);
		if (error == DK_EINTERNAL)
			goto cleanup;
		if (error < 0) {
			/* A refusal (say, the guard of a <fire> transition is
			 * false) must not wedge every later tick: the timer is
			 * dropped and the audit trail says why. */
			if ((error = drop_timer(r, &due[i], now, dk_error_last())) < 0)
				goto cleanup;
			continue;
		}
		dk_engine_result_merge(&acc, &res);
		(*fired)++;
	}
	if (acc.snapshot)
		error = dk_runner_apply(r, &l.row, &acc, NULL);
cleanup:
	dk_engine_result_free(&res);
	dk_engine_result_free(&acc);
	dk_loaded_free(&l);
	dk_timer_rows_free(due, n);
	return error;
}

/* One instance's due timers as one unit of the batch. A failure undoes
 * this unit's writes only, then deletes t with a timer.dropped event
 * naming the error (the instance's other due timers come round on their
 * own and meet the same fate); only a failure to do even that fails the
 * batch. */
static int fire_unit(dk_runner *r, const dk_timer_row *t, int64_t now, int *fired)
{
	char *why;
	int error, deleted = 0;

	if ((error = dk_store_savepoint(r->store)) < 0)
		return error;
	if (fire_timers(r, t, now, fired) == 0)
		return dk_store_savepoint_release(r->store);
	*fired = 0;
	why = dk_strdup(dk_error_last());
	if ((error = dk_store_savepoint_rollback(r->store)) == 0 &&
	    (error = dk_store_timer_delete(r->store, t, &deleted)) == 0 &&
	    (error = drop_timer(r, t, now, why)) == 0)
		fprintf(stderr,
		        "docket: warning: instance %s: its %s timer of '%s' could not fire and was "
		        "dropped (%s); docket log %s shows it\n",
		        t->instance_id, t->kind, t->state_id, why, t->instance_id);
	free(why);
	return error;
}

int dk_runner_tick(dk_runner *r, size_t *fired)
{
	dk_timer_row *due = NULL;
	size_t n = 0;
	int64_t now;
	int error;

	*fired = 0;
	if ((error = dk_runner_clock(r, &now)) < 0)
		return error;
	for (size_t rounds = 0;;) {
		const dk_org *org;
		int64_t next = 0;
		size_t done = 0;

		/* Most ticks find nothing due: one indexed read answers that
		 * without taking the write lock. */
		if ((error = dk_store_timer_next_due(r->store, &next)) < 0)
			goto cleanup;
		if (!next || next > now)
			break;
		if ((error = dk_store_begin(r->store)) < 0)
			goto cleanup;
		if ((error = dk_runner_org(r, &org)) < 0 ||
		    (error = dk_runner_hooks_off(r, &r->no_hooks)) < 0 ||
		    (error = dk_store_timer_due(r->store, now, TICK_BATCH, &due, &n)) < 0)
			goto fail;
		r->org_pinned = 1;
		for (size_t i = 0; i < n; i++) {
			int one = 0;
			if ((error = fire_unit(r, &due[i], now, &one)) < 0)
				goto fail;
			done += (size_t)one;
		}
		r->org_pinned = r->no_hooks = 0;
		if ((error = dk_store_commit(r->store)) < 0)
			goto fail;
		*fired += done;
		dk_timer_rows_free(due, n);
		due = NULL;
		/* Firing re-arms the instance's timers under new ids, so rows
		 * fetched with it were skipped: go round until a batch finds
		 * nothing due. Each firing moves a snapshot forward (reminders
		 * step past now, deadlines are marked missed) and each failure
		 * deletes its timer, so this ends. */
		if (n == 0 || (done == 0 && n < TICK_BATCH) || ++rounds > TICK_MAX_ROUNDS)
			break;
		n = 0;
	}
	goto cleanup;
fail:
	r->org_pinned = r->no_hooks = 0;
	dk_store_rollback(r->store);
cleanup:
	dk_timer_rows_free(due, n);
	return error;
}
