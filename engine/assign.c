/*
 * assign.c - who is assigned to a state, and who may act.
 *
 * An assignment is resolved against the org and the instance each time it
 * is needed, so the tasks always follow the current org directory. Acting
 * is allowed for an assignee, or for someone a delegation lets act for an
 * assignee at the clock ("V for U"); a transition's role= narrows both:
 * the assignee acted as (U, or V acting for themselves) must hold the role.
 * The events then carry actor V and on_behalf_of U.
 */
#include "engine/internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void users_push(dk_users *u, char *user, const char *role, int own)
{
	if (u->cap == 0) {
		u->users = u->users_in;
		u->roles = u->roles_in;
		u->own = u->own_in;
		u->cap = DK_USERS_INLINE;
	} else if (u->n == u->cap) {
		size_t cap = u->cap * 2;
		char **users = dk_malloc(cap * sizeof(char *));
		char **roles = dk_malloc(cap * sizeof(char *));
		unsigned char *owns = dk_malloc(cap);
		memcpy(users, u->users, u->n * sizeof(char *));
		memcpy(roles, u->roles, u->n * sizeof(char *));
		memcpy(owns, u->own, u->n);
		if (u->users != u->users_in) {
			free(u->users);
			free(u->roles);
			free(u->own);
		}
		u->users = users;
		u->roles = roles;
		u->own = owns;
		u->cap = cap;
	}
	u->users[u->n] = user;
	u->roles[u->n] = (char *)role;
	u->own[u->n] = (unsigned char)own;
	u->n++;
}

void dk__users_add(dk_users *u, const char *user, const char *role)
{
	if (!user || !*user || dk__users_has(u, user))
		return;
	users_push(u, (char *)user, role, 0);
}

int dk__users_has(const dk_users *u, const char *user)
{
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->users[i], user) == 0)
			return 1;
	return 0;
}

void dk__users_free(dk_users *u)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->own[i])
			free(u->users[i]);
	if (u->users != u->users_in) {
		free(u->users);
		free(u->roles);
		free(u->own);
	}
	memset(u, 0, sizeof(*u));
}

/* Adds every whitespace-separated word of s. */
static void add_words(dk_users *out, const char *s)
{
	if (!s)
		return;
	while (*s) {
		while (*s && isspace((unsigned char)*s))
			s++;
		const char *e = s;
		while (*e && !isspace((unsigned char)*e))
			e++;
		if (e > s) {
			char *w = dk_strndup(s, (size_t)(e - s));
			if (dk__users_has(out, w))
				free(w);
			else
				users_push(out, w, NULL, 1); /* out owns the word */
		}
		s = e;
	}
}

int dk__assignees(dk_users *out, dk_run *run, const dk_state *st, const dk_assign *a)
{
	const dk_org *org = run->env->org;
	xmlXPathObjectPtr r;
	const char *one;
	int err;
	switch (a->kind) {
	case DK_ASSIGN_NONE: break;
	case DK_ASSIGN_INITIATOR: dk__users_add(out, run->snap->initiator, NULL); break;
	case DK_ASSIGN_USER: dk__users_add(out, a->text, NULL); break;
	case DK_ASSIGN_ROLE:
		for (size_t i = 0; org && i < org->nusers; i++)
			if (dk_user_has_role(&org->users[i], a->text))
				dk__users_add(out, org->users[i].id, a->text);
		break;
	case DK_ASSIGN_XPATH:
		if (!a->expr)
			break;
		if (dk__eval_simple_string(&one, run, st->id, a->expr)) {
			/* one word (a user id) is lent as it is: it lasts the
			 * command; several are split into copies */
			const char *c = one;
			while (*c && !isspace((unsigned char)*c))
				c++;
			if (*c)
				add_words(out, one);
			else
				dk__users_add(out, one, NULL);
			break;
		}
		if ((err = dk__eval(&r, run, st->id, a->expr)) < 0)
			return err;
		if (r->type == XPATH_NODESET) {
			for (int i = 0; r->nodesetval && i < r->nodesetval->nodeNr; i++) {
				xmlChar *s = xmlXPathCastNodeToString(r->nodesetval->nodeTab[i]);
				add_words(out, (const char *)s);
				dk_xml_free(s);
			}
		} else {
			xmlChar *s = xmlXPathCastToString(r);
			add_words(out, (const char *)s);
			dk_xml_free(s);
		}
		xmlXPathFreeObject(r);
		break;
	}
	return 0;
}

static int has_role(dk_run *run, const char *user, const char *role);

int dk__state_actors(dk_users *out, dk_run *run, const dk_state *st)
{
	return dk__state_actors_rec(out, run, st, dk_snapshot_state(run->snap, st->id));
}

int dk__state_actors_rec(dk_users *out, dk_run *run, const dk_state *st, const dk_snap_state *rec)
{
	int err = dk__assignees(out, run, st, &st->assign);
	if (err < 0)
		return err;
	/* an escalated user's task carries the role they were escalated
	 * through, so role-limited delegations and the inbox see it */
	for (size_t i = 0; rec && i < rec->nescalated; i++) {
		const char *role = NULL;
		for (size_t d = 0; d < st->ndeadlines && !role; d++) {
			const dk_assign *e = &st->deadlines[d].escalate;
			if (st->deadlines[d].has_escalate && e->kind == DK_ASSIGN_ROLE &&
			    has_role(run, rec->escalated[i], e->text))
				role = e->text;
		}
		dk__users_add(out, rec->escalated[i], role);
	}
	return 0;
}

/* What a user is in the org, for messages: "head of sales". */
static const char *org_title(dk_run *run, const char *user, char *buf, size_t len)
{
	const dk_org *org = run->env->org;
	for (size_t i = 0; org && i < org->ndepts; i++) {
		const dk_dept *d = &org->depts[i];
		if (d->head && strcmp(d->head, user) == 0) {
			snprintf(buf, len, "head of %s", d->id);
			return buf;
		}
	}
	for (size_t i = 0; org && i < org->ndepts; i++) {
		const dk_dept *d = &org->depts[i];
		if (d->division_leader && strcmp(d->division_leader, user) == 0) {
			snprintf(buf, len, "division leader over %s", d->id);
			return buf;
		}
	}
	return NULL;
}

void dk__describe_users(dk_buf *b, dk_run *run, const dk_users *u)
{
	for (size_t i = 0; i < u->n; i++)
		dk_buf_printf(b, "%s%s", i ? ", " : "", u->users[i]);
	if (u->n == 0)
		dk_buf_puts(b, "nobody");
}

/* "wei (head of sales)", "li (the initiator)", "li, wang (role employee)",
 * "ma, he (dk:members('employee', 'logistics'))". */
static void describe_assignment(dk_buf *b, dk_run *run, const dk_state *st, const dk_users *u)
{
	char buf[160];
	const char *title = u->n == 1 ? org_title(run, u->users[0], buf, sizeof(buf)) : NULL;
	dk__describe_users(b, run, u);
	switch (st->assign.kind) {
	case DK_ASSIGN_INITIATOR: dk_buf_puts(b, " (the initiator)"); break;
	case DK_ASSIGN_ROLE: dk_buf_printf(b, " (role %s)", st->assign.text); break;
	case DK_ASSIGN_XPATH: dk_buf_printf(b, " (%s)", title ? title : st->assign.text); break;
	default:
		if (title)
			dk_buf_printf(b, " (%s)", title);
		break;
	}
}

static int has_role(dk_run *run, const char *user, const char *role)
{
	const dk_user *u = run->env->org ? dk_org_user(run->env->org, user) : NULL;
	return u && dk_user_has_role(u, role);
}

/* Does a delegation let run->actor act for user here and now? via is the
 * role user holds the task through (NULL when none). */
static int delegated(dk_run *run, const char *user, const char *via, const dk_transition *t)
{
	const dk_engine_env *env = run->env;
	for (size_t i = 0; i < env->ndelegations; i++) {
		const dk_delegation *d = &env->delegations[i];
		if (!d->from || !d->to || strcmp(d->from, user) != 0 ||
		    strcmp(d->to, run->actor) != 0)
			continue;
		if (d->starts_at && env->now < d->starts_at)
			continue;
		if (d->ends_at && env->now >= d->ends_at)
			continue;
		if (d->role) {
			int match = (via && strcmp(via, d->role) == 0) ||
			            (t && t->role && strcmp(t->role, d->role) == 0);
			if (!match)
				continue;
		}
		return 1;
	}
	return 0;
}

/* Everyone who may act on st: its actors; for a parallel also those of
 * every active region state. */
static int candidates(dk_users *out, dk_run *run, const dk_state *st)
{
	int err = dk__state_actors(out, run, st);
	if (err < 0 || st->kind != DK_STATE_PARALLEL)
		return err;
	for (size_t i = 0; i < run->snap->nregions; i++) {
		const dk_state *rs = dk_flow_state(run->flow, run->snap->regions[i].state);
		if (rs && !rs->final && (err = dk__state_actors(out, run, rs)) < 0)
			return err;
	}
	return 0;
}

int dk__authorize(char **on_behalf, dk_run *run, const dk_state *st, const dk_transition *t)
{
	dk_users u = {0};
	dk_buf b = DK_BUF_INIT;
	int err;
	const char *role = t ? t->role : NULL;
	*on_behalf = NULL;
	if ((err = candidates(&u, run, st)) < 0)
		goto cleanup;
	if (dk__users_has(&u, run->actor) && (!role || has_role(run, run->actor, role)))
		goto cleanup;
	for (size_t i = 0; i < u.n; i++) {
		if (strcmp(u.users[i], run->actor) == 0)
			continue;
		if (role && !has_role(run, u.users[i], role))
			continue;
		if (delegated(run, u.users[i], u.roles[i], t)) {
			*on_behalf = dk_strdup(u.users[i]);
			goto cleanup;
		}
	}
	if (u.n == 0) {
		err = dk_error_set(DK_EFORBIDDEN,
		                   "%s may not act on '%s': nobody is assigned to it, only the "
		                   "system acts there",
		                   run->actor, st->id);
		goto cleanup;
	}
	describe_assignment(&b, run, st, &u);
	if (role && dk__users_has(&u, run->actor))
		err = dk_error_set(DK_EFORBIDDEN,
		                   "%s may not take '%s' in '%s': it needs role '%s', which %s "
		                   "does not have",
		                   run->actor, t->id, st->id, role, run->actor);
	else if (role)
		err = dk_error_set(DK_EFORBIDDEN,
		                   "%s may not act on '%s': it is assigned to %s, and '%s' needs "
		                   "role '%s'",
		                   run->actor, st->id, dk_buf_cstr(&b), t->id, role);
	else
		err = dk_error_set(DK_EFORBIDDEN, "%s may not act on '%s': it is assigned to %s",
		                   run->actor, st->id, dk_buf_cstr(&b));
cleanup:
	dk__users_free(&u);
	dk_buf_free(&b);
	return err;
}
