/*
 * quorum.c - countersigning: votes and when they decide.
 *
 * In a state with quorum= every assignee has a task of their own, and
 * firing a transition there is a vote, recorded in the snapshot (one per
 * assignee per visit) and as a vote.cast event. The votes decide:
 *
 *   any  the first vote fires its transition.
 *   N    a transition fires when N assignees have chosen it.
 *   all  the state's FIRST transition (the consensus, e.g. "approve")
 *        fires when every assignee has chosen it; any other transition is
 *        a veto and fires at the first vote for it.
 *
 * Votes are forgotten when the state is left, so a state entered again
 * starts a new round. A delegate votes in the name of the assignee they
 * act for, so one person cannot vote twice through a delegation.
 */
#include "engine/internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static size_t votes_for(const dk_snapshot *snap, const char *state, const char *transition)
{
	size_t n = 0;
	for (size_t i = 0; i < snap->nvotes; i++)
		n += strcmp(snap->votes[i].state, state) == 0 &&
		     strcmp(snap->votes[i].transition, transition) == 0;
	return n;
}

static const char *quorum_name(const dk_state *st, char *buf, size_t len)
{
	switch (st->quorum) {
	case DK_QUORUM_ALL: return "all";
	case DK_QUORUM_ANY: return "any";
	case DK_QUORUM_N: snprintf(buf, len, "%d", st->quorum_n); return buf;
	default: return "none";
	}
}

int dk__vote(int *fire, dk_run *run, const dk_state *st, const dk_transition *t, const char *user)
{
	dk_snapshot *snap = run->snap;
	dk_users all = {0};
	char qbuf[16];
	int err = 0;
	size_t count;
	*fire = 0;
	for (size_t i = 0; i < snap->nvotes; i++)
		if (strcmp(snap->votes[i].state, st->id) == 0 &&
		    strcmp(snap->votes[i].user, user) == 0)
			return dk_error_set(DK_ECONFLICT,
			                    "%s has already voted '%s' in '%s'; the other "
			                    "countersigners decide now",
			                    user, snap->votes[i].transition, st->id);
	snap->votes = dk__snap_grow(snap, snap->votes, snap->nvotes * sizeof(*snap->votes),
	                            (snap->nvotes + 1) * sizeof(*snap->votes));
	dk_snap_vote *v = &snap->votes[snap->nvotes++];
	v->state = dk__snap_strdup(snap, st->id);
	v->user = dk__snap_strdup(snap, user);
	v->actor = dk__snap_strdup(snap, run->actor);
	v->transition = dk__snap_strdup(snap, t->id);
	v->at = run->env->now;
	count = votes_for(snap, st->id, t->id);

	if ((err = dk__state_actors(&all, run, st)) < 0)
		goto cleanup;
	switch (st->quorum) {
	case DK_QUORUM_ANY: *fire = 1; break;
	case DK_QUORUM_N: *fire = (int)count >= st->quorum_n; break;
	case DK_QUORUM_ALL:
		if (t != &st->transitions[0]) {
			*fire = 1; /* a veto */
		} else {
			size_t agreed = 0;
			for (size_t i = 0; i < all.n; i++)
				for (size_t j = 0; j < snap->nvotes; j++)
					agreed += strcmp(snap->votes[j].state, st->id) == 0 &&
					          strcmp(snap->votes[j].user, all.users[i]) == 0 &&
					          strcmp(snap->votes[j].transition, t->id) == 0;
			*fire = agreed >= all.n;
		}
		break;
	default: *fire = 1; break;
	}

	dk_event *e = dk__event(run, DK_EV_VOTE);
	e->user = dk__rstr(run, user);
	e->on_behalf_of = strcmp(user, run->actor) != 0 ? dk__rstr(run, user) : NULL;
	e->from = dk__rstr(run, st->id);
	e->transition = dk__rstr(run, t->id);
	json_t *d = json_pack("{s:s,s:s,s:i,s:i,s:b}", "quorum",
	                      quorum_name(st, qbuf, sizeof(qbuf)), "choice", t->id, "votes",
	                      (int)count, "assignees", (int)all.n, "decided", *fire);
	e->data = dk__rtake(run, json_dumps(d, JSON_COMPACT));
	json_decref(d);
cleanup:
	dk__users_free(&all);
	return err;
}
