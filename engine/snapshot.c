/*
 * snapshot.c - an instance's whole state, and its JSON form.
 *
 * The store keeps the snapshot as opaque JSON text for years, so the form
 * is documented here and only ever extended (new keys, optional on read);
 * "format" changes only when a key changes meaning. Keys always come in
 * this order, so the same snapshot always gives the same bytes. Instants
 * are ISO 8601 UTC strings ("2026-11-28T09:30:00Z") or null.
 *
 *   {
 *     "format": 1,
 *     "flow": {"id": "monthly-plan", "version": 1},
 *     "instance": "I-42",
 *     "status": "active" | "completed" | "recalled",
 *     "state": "review",                 active top-level state
 *     "regions": [{"region": "sales", "state": "docs-check"}, ...],
 *                                        when "state" is a parallel
 *     "initiator": "li",
 *     "version": 3,                      +1 per successful command
 *     "acted": false,                    see dk_snapshot.acted
 *     "created_at": "...", "updated_at": "...",
 *     "vars": [{"name": "phases", "type": "number", "value": 3}, ...],
 *                                        value: JSON number for number,
 *                                        true/false for boolean, string
 *                                        for string and date
 *     "states": [{"state": "review", "entered_at": "...", "visits": 2,
 *                 "deadlines": [{"due_at": "...", "next_remind": "...",
 *                                "missed": false}],
 *                 "escalated": ["zhao"]}, ...],
 *     "votes": [{"state": "board", "user": "wei", "actor": "li",
 *                "transition": "approve", "at": "..."}],
 *     "evidence": [{"kind": "plan", "state": "draft", "visit": 1,
 *                   "state_entered_at": "...", "at": "...", "by": "li",
 *                   "name": "plan.pdf", "sha256": "ab..", "size": 1234}]
 *   }
 */
#include "engine/internal.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *dk_instance_status_name(dk_instance_status s)
{
	switch (s) {
	case DK_INSTANCE_ACTIVE: return "active";
	case DK_INSTANCE_COMPLETED: return "completed";
	case DK_INSTANCE_RECALLED: return "recalled";
	}
	return "active";
}

static const char *type_name(dk_var_type t)
{
	switch (t) {
	case DK_VAR_STRING: return "string";
	case DK_VAR_NUMBER: return "number";
	case DK_VAR_BOOLEAN: return "boolean";
	case DK_VAR_DATE: return "date";
	}
	return "string";
}

/* ---- memory ------------------------------------------------------------

A snapshot made by the engine lives in pool blocks it owns (snap->mem, see
pool.c). A snapshot whose mem is NULL (none is made that way now) owns each
piece as its own allocation. */

/* A new, zeroed snapshot in a block of at least size bytes. */
static dk_snapshot *snap_new(size_t size)
{
	dk_pool_block *head = dk__pool_block_new(DK_POOL_ALIGN(sizeof(dk_snapshot)) + size, NULL);
	dk_snapshot *s = dk__pool_take(&head, sizeof(*s));
	memset(s, 0, sizeof(*s));
	s->mem = head;
	return s;
}

dk_snapshot *dk__snap_new(void)
{
	return snap_new(2 * DK_POOL_SLACK);
}

void *dk__snap_alloc(dk_snapshot *s, size_t n)
{
	void *p;
	if (!s->mem)
		return dk_calloc(1, n);
	p = dk__pool_take((dk_pool_block **)&s->mem, n);
	memset(p, 0, n);
	return p;
}

char *dk__snap_strdup(dk_snapshot *s, const char *str)
{
	size_t n;
	char *p;
	if (!str)
		return NULL;
	if (!s->mem)
		return dk_strdup(str);
	n = strlen(str) + 1;
	p = dk__pool_take((dk_pool_block **)&s->mem, n);
	memcpy(p, str, n);
	return p;
}

void dk__snap_release(dk_snapshot *s, void *p)
{
	if (!s->mem)
		free(p);
}

void *dk__snap_grow(dk_snapshot *s, void *p, size_t old, size_t n)
{
	void *q;
	if (!s->mem)
		return dk_realloc(p, n);
	q = dk__pool_take((dk_pool_block **)&s->mem, n);
	if (old)
		memcpy(q, p, old < n ? old : n);
	return q;
}

void dk__snap_setstr(dk_snapshot *s, char **field, const char *value)
{
	dk__snap_release(s, *field);
	*field = dk__snap_strdup(s, value);
}

/* ---- lifetime ---------------------------------------------------------- */

void dk__value_clear(dk_value *v)
{
	free(v->name);
	free(v->text);
	memset(v, 0, sizeof(*v));
}

static void value_copy_into(dk_snapshot *s, dk_value *dst, const dk_value *src)
{
	*dst = *src;
	dst->name = dk__snap_strdup(s, src->name);
	dst->text = dk__snap_strdup(s, src->text);
}

void dk__snap_state_reset(dk_snapshot *s, dk_snap_state *st)
{
	dk__snap_release(s, st->deadlines);
	st->deadlines = NULL;
	st->ndeadlines = 0;
	for (size_t i = 0; i < st->nescalated; i++)
		dk__snap_release(s, st->escalated[i]);
	dk__snap_release(s, st->escalated);
	st->escalated = NULL;
	st->nescalated = 0;
}

static void vote_clear(dk_snapshot *s, dk_snap_vote *v)
{
	dk__snap_release(s, v->state);
	dk__snap_release(s, v->user);
	dk__snap_release(s, v->actor);
	dk__snap_release(s, v->transition);
}

static void evidence_clear(dk_snap_evidence *e)
{
	free(e->kind);
	free(e->state);
	free(e->by);
	free(e->name);
	free(e->sha256);
}

/* A snapshot that owns each piece separately (mem NULL). */
static void free_pieces(dk_snapshot *s)
{
	free(s->flow_id);
	free(s->instance);
	free(s->state);
	for (size_t i = 0; i < s->nregions; i++) {
		free(s->regions[i].region);
		free(s->regions[i].state);
	}
	free(s->regions);
	for (size_t i = 0; i < s->nstates; i++) {
		dk__snap_state_reset(s, &s->states[i]);
		free(s->states[i].state);
	}
	free(s->states);
	for (size_t i = 0; i < s->nvars; i++)
		dk__value_clear(&s->vars[i]);
	free(s->vars);
	free(s->initiator);
	for (size_t i = 0; i < s->nvotes; i++)
		vote_clear(s, &s->votes[i]);
	free(s->votes);
	for (size_t i = 0; i < s->nevidence; i++)
		evidence_clear(&s->evidence[i]);
	free(s->evidence);
	free(s);
}

void dk_snapshot_free(dk_snapshot *s)
{
	if (!s)
		return;
	if (!s->mem) {
		free_pieces(s);
		return;
	}
	/* the struct lives in the oldest block: mem is read before any free */
	dk__pool_free(s->mem);
}

static size_t str_size(const char *str)
{
	return str ? DK_POOL_ALIGN(strlen(str) + 1) : 0;
}

/* What a packed copy of s needs, every piece aligned as pool_take does. */
static size_t packed_size(const dk_snapshot *s)
{
	size_t n = str_size(s->flow_id) + str_size(s->instance) + str_size(s->state) +
	           str_size(s->initiator);
	n += DK_POOL_ALIGN(s->nregions * sizeof(*s->regions));
	for (size_t i = 0; i < s->nregions; i++)
		n += str_size(s->regions[i].region) + str_size(s->regions[i].state);
	n += DK_POOL_ALIGN(s->nstates * sizeof(*s->states));
	for (size_t i = 0; i < s->nstates; i++) {
		const dk_snap_state *a = &s->states[i];
		n += str_size(a->state) + DK_POOL_ALIGN(a->ndeadlines * sizeof(*a->deadlines)) +
		     DK_POOL_ALIGN(a->nescalated * sizeof(char *));
		for (size_t j = 0; j < a->nescalated; j++)
			n += str_size(a->escalated[j]);
	}
	n += DK_POOL_ALIGN(s->nvars * sizeof(*s->vars));
	for (size_t i = 0; i < s->nvars; i++)
		n += str_size(s->vars[i].name) + str_size(s->vars[i].text);
	n += DK_POOL_ALIGN(s->nvotes * sizeof(*s->votes));
	for (size_t i = 0; i < s->nvotes; i++)
		n += str_size(s->votes[i].state) + str_size(s->votes[i].user) +
		     str_size(s->votes[i].actor) + str_size(s->votes[i].transition);
	n += DK_POOL_ALIGN(s->nevidence * sizeof(*s->evidence));
	for (size_t i = 0; i < s->nevidence; i++) {
		const dk_snap_evidence *e = &s->evidence[i];
		n += str_size(e->kind) + str_size(e->state) + str_size(e->by) + str_size(e->name) +
		     str_size(e->sha256);
	}
	return n;
}

/* n elements of size from src into d's block, or NULL when n is 0: most
 * arrays of a snapshot are empty (no regions, votes, deadlines or
 * escalations). */
static void *dup_array(dk_snapshot *d, const void *src, size_t n, size_t size)
{
	void *p;
	if (n == 0)
		return NULL;
	p = dk__pool_take((dk_pool_block **)&d->mem, n * size);
	memcpy(p, src, n * size);
	return p;
}

/* A copy of str at *at, which moves past it; strings need no alignment. */
static char *bump_str(char **at, const char *str)
{
	char *p = *at;
	if (!str)
		return NULL;
	*at = stpcpy(p, str) + 1;
	return p;
}

/* p moved by delta (NULL stays NULL): a pointer into a block that was
 * copied whole. */
#define MOVED(p, delta) ((p) ? (void *)((char *)(p) + (delta)) : NULL)

/* A copy of s made by copying its one block whole and moving every
 * pointer into the copy; NULL when s is not in one block or carries more
 * than three times its packed size again in what commands replaced (then
 * a packing copy sheds that). Commands add to a snapshot but free nothing,
 * so one packing copy in a few is enough to keep the garbage bounded, and
 * the others cost a memcpy instead of a copy of every string (a packing
 * copy costs about as much as copying a few kilobytes whole). */
static dk_snapshot *dup_whole(const dk_snapshot *s)
{
	const dk_pool_block *b = s->mem;
	dk_pool_block *nb;
	ptrdiff_t delta;
	dk_snapshot *d;
	if (!b || b->next || !b->packed || b->used > 4 * b->packed ||
	    (const char *)s != (const char *)b->data)
		return NULL;
	nb = dk__pool_block_new(b->used + DK_POOL_SLACK, NULL);
	memcpy(nb->data, b->data, b->used);
	nb->used = b->used;
	nb->packed = b->packed;
	delta = (char *)nb->data - (const char *)b->data;
	d = (dk_snapshot *)(void *)nb->data;
	d->mem = nb;
	d->flow_id = MOVED(d->flow_id, delta);
	d->instance = MOVED(d->instance, delta);
	d->state = MOVED(d->state, delta);
	d->initiator = MOVED(d->initiator, delta);
	d->regions = MOVED(d->regions, delta);
	for (size_t i = 0; d->regions && i < d->nregions; i++) {
		d->regions[i].region = MOVED(d->regions[i].region, delta);
		d->regions[i].state = MOVED(d->regions[i].state, delta);
	}
	d->states = MOVED(d->states, delta);
	for (size_t i = 0; d->states && i < d->nstates; i++) {
		dk_snap_state *c = &d->states[i];
		c->state = MOVED(c->state, delta);
		c->deadlines = MOVED(c->deadlines, delta);
		c->escalated = MOVED(c->escalated, delta);
		for (size_t j = 0; c->escalated && j < c->nescalated; j++)
			c->escalated[j] = MOVED(c->escalated[j], delta);
	}
	d->vars = MOVED(d->vars, delta);
	for (size_t i = 0; d->vars && i < d->nvars; i++) {
		d->vars[i].name = MOVED(d->vars[i].name, delta);
		d->vars[i].text = MOVED(d->vars[i].text, delta);
	}
	d->votes = MOVED(d->votes, delta);
	for (size_t i = 0; d->votes && i < d->nvotes; i++) {
		dk_snap_vote *v = &d->votes[i];
		v->state = MOVED(v->state, delta);
		v->user = MOVED(v->user, delta);
		v->actor = MOVED(v->actor, delta);
		v->transition = MOVED(v->transition, delta);
	}
	d->evidence = MOVED(d->evidence, delta);
	for (size_t i = 0; d->evidence && i < d->nevidence; i++) {
		dk_snap_evidence *e = &d->evidence[i];
		e->kind = MOVED(e->kind, delta);
		e->state = MOVED(e->state, delta);
		e->by = MOVED(e->by, delta);
		e->name = MOVED(e->name, delta);
		e->sha256 = MOVED(e->sha256, delta);
	}
	return d;
}

/* A copy of s packed into one block: the arrays, then the strings. */
static dk_snapshot *dup_packed(const dk_snapshot *s)
{
	/* everything live in s was carved from its blocks, each piece
	 * aligned, so their use bounds what a packed copy needs without
	 * walking every string (what a command left behind counts too, once) */
	dk_snapshot *d =
	    snap_new((s->mem ? dk__pool_used(s->mem) : packed_size(s)) + DK_POOL_SLACK);
	dk_pool_block *b = d->mem;
	char *at;
	*d = *s;
	d->mem = b;
	/* the arrays first, aligned; then every string in one run after them
	 * (the block was made big enough for both) */
	d->regions = dup_array(d, s->regions, s->nregions, sizeof(*d->regions));
	d->states = dup_array(d, s->states, s->nstates, sizeof(*d->states));
	for (size_t i = 0; i < s->nstates; i++) {
		const dk_snap_state *a = &s->states[i];
		dk_snap_state *c = &d->states[i];
		c->deadlines = dup_array(d, a->deadlines, a->ndeadlines, sizeof(*c->deadlines));
		c->escalated = dup_array(d, a->escalated, a->nescalated, sizeof(char *));
	}
	d->vars = dup_array(d, s->vars, s->nvars, sizeof(*d->vars));
	d->votes = dup_array(d, s->votes, s->nvotes, sizeof(*d->votes));
	d->evidence = dup_array(d, s->evidence, s->nevidence, sizeof(*d->evidence));
	assert(d->mem == b); /* all in the first block */
	at = (char *)b->data + b->used;
	d->flow_id = bump_str(&at, s->flow_id);
	d->instance = bump_str(&at, s->instance);
	d->state = bump_str(&at, s->state);
	d->initiator = bump_str(&at, s->initiator);
	for (size_t i = 0; i < s->nregions; i++) {
		d->regions[i].region = bump_str(&at, s->regions[i].region);
		d->regions[i].state = bump_str(&at, s->regions[i].state);
	}
	for (size_t i = 0; i < s->nstates; i++) {
		const dk_snap_state *a = &s->states[i];
		dk_snap_state *c = &d->states[i];
		c->state = bump_str(&at, a->state);
		for (size_t j = 0; j < a->nescalated; j++)
			c->escalated[j] = bump_str(&at, a->escalated[j]);
	}
	for (size_t i = 0; i < s->nvars; i++) {
		d->vars[i].name = bump_str(&at, s->vars[i].name);
		d->vars[i].text = bump_str(&at, s->vars[i].text);
	}
	for (size_t i = 0; i < s->nvotes; i++) {
		d->votes[i].state = bump_str(&at, s->votes[i].state);
		d->votes[i].user = bump_str(&at, s->votes[i].user);
		d->votes[i].actor = bump_str(&at, s->votes[i].actor);
		d->votes[i].transition = bump_str(&at, s->votes[i].transition);
	}
	for (size_t i = 0; i < s->nevidence; i++) {
		const dk_snap_evidence *a = &s->evidence[i];
		dk_snap_evidence *c = &d->evidence[i];
		c->kind = bump_str(&at, a->kind);
		c->state = bump_str(&at, a->state);
		c->by = bump_str(&at, a->by);
		c->name = bump_str(&at, a->name);
		c->sha256 = bump_str(&at, a->sha256);
	}
	b->used = DK_POOL_ALIGN((size_t)(at - (char *)b->data));
	b->packed = b->used;
	assert(b->used <= b->cap);
	return d;
}

dk_snapshot *dk_snapshot_dup(const dk_snapshot *s)
{
	dk_snapshot *d = dup_whole(s);
	return d ? d : dup_packed(s);
}

/* ---- lookups and edits ------------------------------------------------- */

const dk_value *dk_snapshot_var(const dk_snapshot *snap, const char *name)
{
	for (size_t i = 0; snap && i < snap->nvars; i++)
		if (strcmp(snap->vars[i].name, name) == 0)
			return &snap->vars[i];
	return NULL;
}

const dk_snap_state *dk_snapshot_state(const dk_snapshot *snap, const char *state)
{
	/* the first byte tells most state ids apart without a call */
	for (size_t i = 0; snap && i < snap->nstates; i++)
		if (snap->states[i].state[0] == state[0] &&
		    strcmp(snap->states[i].state, state) == 0)
			return &snap->states[i];
	return NULL;
}

dk_snap_state *dk__snap_state(dk_snapshot *snap, const char *state, int create)
{
	for (size_t i = 0; i < snap->nstates; i++)
		if (snap->states[i].state[0] == state[0] &&
		    strcmp(snap->states[i].state, state) == 0)
			return &snap->states[i];
	if (!create)
		return NULL;
	snap->states = dk__snap_grow(snap, snap->states, snap->nstates * sizeof(*snap->states),
	                             (snap->nstates + 1) * sizeof(*snap->states));
	dk_snap_state *st = &snap->states[snap->nstates++];
	memset(st, 0, sizeof(*st));
	st->state = dk__snap_strdup(snap, state);
	return st;
}

size_t dk_snapshot_active(const dk_snapshot *snap, const char **ids, size_t max)
{
	if (!snap->state)
		return 0;
	if (snap->nregions == 0) {
		if (max > 0)
			ids[0] = snap->state;
		return 1;
	}
	for (size_t i = 0; i < snap->nregions && i < max; i++)
		ids[i] = snap->regions[i].state;
	return snap->nregions;
}

int dk__snap_is_active(const dk_snapshot *snap, const char *state)
{
	if (snap->state && strcmp(snap->state, state) == 0)
		return 1;
	for (size_t i = 0; i < snap->nregions; i++)
		if (strcmp(snap->regions[i].state, state) == 0)
			return 1;
	return 0;
}

void dk__snap_set_var(dk_snapshot *snap, const dk_flow *flow, const dk_value *v)
{
	for (size_t i = 0; i < snap->nvars; i++) {
		if (strcmp(snap->vars[i].name, v->name) == 0) {
			dk__snap_release(snap, snap->vars[i].text);
			snap->vars[i].type = v->type;
			snap->vars[i].number = v->number;
			snap->vars[i].boolean = v->boolean;
			snap->vars[i].text = dk__snap_strdup(snap, v->text);
			return;
		}
	}
	/* keep the declaration order: find the position of the first
	 * variable declared after v */
	size_t decl = 0;
	while (decl < flow->nvars && strcmp(flow->vars[decl].name, v->name) != 0)
		decl++;
	size_t at = snap->nvars;
	for (size_t i = 0; i < snap->nvars; i++) {
		size_t k = 0;
		while (k < flow->nvars && strcmp(flow->vars[k].name, snap->vars[i].name) != 0)
			k++;
		if (k > decl) {
			at = i;
			break;
		}
	}
	snap->vars = dk__snap_grow(snap, snap->vars, snap->nvars * sizeof(*snap->vars),
	                           (snap->nvars + 1) * sizeof(*snap->vars));
	memmove(&snap->vars[at + 1], &snap->vars[at], (snap->nvars - at) * sizeof(*snap->vars));
	value_copy_into(snap, &snap->vars[at], v);
	snap->nvars++;
}

void dk__snap_drop_votes(dk_snapshot *snap, const char *state)
{
	size_t j = 0;
	for (size_t i = 0; i < snap->nvotes; i++) {
		if (strcmp(snap->votes[i].state, state) == 0)
			vote_clear(snap, &snap->votes[i]);
		else
			snap->votes[j++] = snap->votes[i];
	}
	snap->nvotes = j;
}

/* ---- to JSON ----------------------------------------------------------- */

static json_t *jtime(int64_t t)
{
	char s[DK_TIME_STRLEN];
	if (t == 0)
		return json_null();
	dk_time_format(s, t);
	return json_string(s);
}

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Through a jansson tree: what dk_snapshot_to_json falls back on when a
 * string is not UTF-8 (jansson leaves out what holds it). */
static int to_json_tree(char **out, const dk_snapshot *s)
{
	json_t *root = json_object(), *a;
	json_object_set_new(root, "format", json_integer(DK_SNAPSHOT_FORMAT));
	json_object_set_new(
	    root, "flow",
	    json_pack("{s:o,s:i}", "id", jstr(s->flow_id), "version", s->flow_version));
	json_object_set_new(root, "instance", jstr(s->instance));
	json_object_set_new(root, "status", json_string(dk_instance_status_name(s->status)));
	json_object_set_new(root, "state", jstr(s->state));
	a = json_array();
	for (size_t i = 0; i < s->nregions; i++)
		json_array_append_new(a,
		                      json_pack("{s:o,s:o}", "region", jstr(s->regions[i].region),
		                                "state", jstr(s->regions[i].state)));
	json_object_set_new(root, "regions", a);
	json_object_set_new(root, "initiator", jstr(s->initiator));
	json_object_set_new(root, "version", json_integer(s->version));
	json_object_set_new(root, "acted", json_boolean(s->acted));
	json_object_set_new(root, "created_at", jtime(s->created_at));
	json_object_set_new(root, "updated_at", jtime(s->updated_at));
	a = json_array();
	for (size_t i = 0; i < s->nvars; i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:o}", "name", s->vars[i].name, "type",
		                                   type_name(s->vars[i].type), "value",
		                                   (json_t *)dk__value_json(&s->vars[i])));
	json_object_set_new(root, "vars", a);
	a = json_array();
	for (size_t i = 0; i < s->nstates; i++) {
		const dk_snap_state *st = &s->states[i];
		json_t *o = json_object(), *dl = json_array(), *esc = json_array();
		json_object_set_new(o, "state", jstr(st->state));
		json_object_set_new(o, "entered_at", jtime(st->entered_at));
		json_object_set_new(o, "visits", json_integer(st->visits));
		for (size_t j = 0; j < st->ndeadlines; j++)
			json_array_append_new(
			    dl, json_pack("{s:o,s:o,s:b}", "due_at", jtime(st->deadlines[j].due_at),
			                  "next_remind", jtime(st->deadlines[j].next_remind),
			                  "missed", st->deadlines[j].missed));
		json_object_set_new(o, "deadlines", dl);
		for (size_t j = 0; j < st->nescalated; j++)
			json_array_append_new(esc, json_string(st->escalated[j]));
		json_object_set_new(o, "escalated", esc);
		json_array_append_new(a, o);
	}
	json_object_set_new(root, "states", a);
	a = json_array();
	for (size_t i = 0; i < s->nvotes; i++) {
		const dk_snap_vote *v = &s->votes[i];
		json_array_append_new(a, json_pack("{s:o,s:o,s:o,s:o,s:o}", "state", jstr(v->state),
		                                   "user", jstr(v->user), "actor", jstr(v->actor),
		                                   "transition", jstr(v->transition), "at",
		                                   jtime(v->at)));
	}
	json_object_set_new(root, "votes", a);
	a = json_array();
	for (size_t i = 0; i < s->nevidence; i++) {
		const dk_snap_evidence *e = &s->evidence[i];
		json_t *o = json_object();
		json_object_set_new(o, "kind", jstr(e->kind));
		json_object_set_new(o, "state", jstr(e->state));
		json_object_set_new(o, "visit", json_integer(e->visit));
		json_object_set_new(o, "state_entered_at", jtime(e->state_entered_at));
		json_object_set_new(o, "at", jtime(e->at));
		json_object_set_new(o, "by", jstr(e->by));
		json_object_set_new(o, "name", jstr(e->name));
		json_object_set_new(o, "sha256", jstr(e->sha256));
		json_object_set_new(o, "size", json_integer(e->size));
		json_array_append_new(a, o);
	}
	json_object_set_new(root, "evidence", a);
	/* Compact: the text is rewritten with every step, and a third of an
	 * indented one was whitespace (its parse and its page share too).
	 * Snapshots stored indented still read the same. */
	*out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!*out)
		return dk_error_set(DK_EINTERNAL, "cannot write the snapshot as JSON");
	return 0;
}

/* ---- to JSON, written straight ----------------------------------------

The same bytes as to_json_tree, without the tree: a step writes its
snapshot once, and building and dumping jansson's objects cost as much as
the engine's whole decision. Each member is written after sep (',' or
nothing); a string that is not UTF-8 (or a NULL where the tree takes no
null) makes the writer return -1, and the caller starts again through the
tree, which leaves out what holds it as before. */

static void wkey(dk_buf *b, char sep, const char *key)
{
	if (sep)
		dk_buf_putc(b, sep);
	dk__json_quote(b, key);
	dk_buf_putc(b, ':');
}

static int wtext(dk_buf *b, const char *val)
{
	if (!val) {
		dk_buf_puts(b, "null");
		return 0;
	}
	if (!dk__utf8_valid(val))
		return -1;
	dk__json_quote(b, val);
	return 0;
}

static int wstr(dk_buf *b, char sep, const char *key, const char *val)
{
	wkey(b, sep, key);
	return wtext(b, val);
}

static void wtime(dk_buf *b, char sep, const char *key, int64_t t)
{
	char text[DK_TIME_STRLEN];

	wkey(b, sep, key);
	if (t == 0) {
		dk_buf_puts(b, "null");
		return;
	}
	dk_time_format(text, t);
	dk__json_quote(b, text);
}

static void wint(dk_buf *b, char sep, const char *key, int64_t val)
{
	wkey(b, sep, key);
	dk__json_int(b, val);
}

static void wbool(dk_buf *b, char sep, const char *key, int val)
{
	wkey(b, sep, key);
	dk_buf_puts(b, val ? "true" : "false");
}

static int write_states(dk_buf *b, const dk_snapshot *s)
{
	wkey(b, ',', "states");
	dk_buf_putc(b, '[');
	for (size_t i = 0; i < s->nstates; i++) {
		const dk_snap_state *st = &s->states[i];
		dk_buf_puts(b, i ? ",{" : "{");
		if (wstr(b, 0, "state", st->state) < 0)
			return -1;
		wtime(b, ',', "entered_at", st->entered_at);
		wint(b, ',', "visits", st->visits);
		wkey(b, ',', "deadlines");
		dk_buf_putc(b, '[');
		for (size_t j = 0; j < st->ndeadlines; j++) {
			dk_buf_puts(b, j ? ",{" : "{");
			wtime(b, 0, "due_at", st->deadlines[j].due_at);
			wtime(b, ',', "next_remind", st->deadlines[j].next_remind);
			wbool(b, ',', "missed", st->deadlines[j].missed);
			dk_buf_putc(b, '}');
		}
		dk_buf_putc(b, ']');
		wkey(b, ',', "escalated");
		dk_buf_putc(b, '[');
		for (size_t j = 0; j < st->nescalated; j++) {
			if (j)
				dk_buf_putc(b, ',');
			if (!st->escalated[j] || wtext(b, st->escalated[j]) < 0)
				return -1;
		}
		dk_buf_puts(b, "]}");
	}
	dk_buf_putc(b, ']');
	return 0;
}

static int write_votes(dk_buf *b, const dk_snapshot *s)
{
	wkey(b, ',', "votes");
	dk_buf_putc(b, '[');
	for (size_t i = 0; i < s->nvotes; i++) {
		const dk_snap_vote *v = &s->votes[i];
		dk_buf_puts(b, i ? ",{" : "{");
		if (wstr(b, 0, "state", v->state) < 0 || wstr(b, ',', "user", v->user) < 0 ||
		    wstr(b, ',', "actor", v->actor) < 0 ||
		    wstr(b, ',', "transition", v->transition) < 0)
			return -1;
		wtime(b, ',', "at", v->at);
		dk_buf_putc(b, '}');
	}
	dk_buf_putc(b, ']');
	return 0;
}

static int write_evidence(dk_buf *b, const dk_snapshot *s)
{
	wkey(b, ',', "evidence");
	dk_buf_putc(b, '[');
	for (size_t i = 0; i < s->nevidence; i++) {
		const dk_snap_evidence *e = &s->evidence[i];
		dk_buf_puts(b, i ? ",{" : "{");
		if (wstr(b, 0, "kind", e->kind) < 0 || wstr(b, ',', "state", e->state) < 0)
			return -1;
		wint(b, ',', "visit", e->visit);
		wtime(b, ',', "state_entered_at", e->state_entered_at);
		wtime(b, ',', "at", e->at);
		if (wstr(b, ',', "by", e->by) < 0 || wstr(b, ',', "name", e->name) < 0 ||
		    wstr(b, ',', "sha256", e->sha256) < 0)
			return -1;
		wint(b, ',', "size", e->size);
		dk_buf_putc(b, '}');
	}
	dk_buf_putc(b, ']');
	return 0;
}

static int write_snapshot(dk_buf *b, const dk_snapshot *s)
{
	dk_buf_putc(b, '{');
	wint(b, 0, "format", DK_SNAPSHOT_FORMAT);
	wkey(b, ',', "flow");
	dk_buf_putc(b, '{');
	if (wstr(b, 0, "id", s->flow_id) < 0)
		return -1;
	wint(b, ',', "version", s->flow_version);
	dk_buf_putc(b, '}');
	if (wstr(b, ',', "instance", s->instance) < 0 ||
	    wstr(b, ',', "status", dk_instance_status_name(s->status)) < 0 ||
	    wstr(b, ',', "state", s->state) < 0)
		return -1;
	wkey(b, ',', "regions");
	dk_buf_putc(b, '[');
	for (size_t i = 0; i < s->nregions; i++) {
		dk_buf_puts(b, i ? ",{" : "{");
		if (wstr(b, 0, "region", s->regions[i].region) < 0 ||
		    wstr(b, ',', "state", s->regions[i].state) < 0)
			return -1;
		dk_buf_putc(b, '}');
	}
	dk_buf_putc(b, ']');
	if (wstr(b, ',', "initiator", s->initiator) < 0)
		return -1;
	wint(b, ',', "version", s->version);
	wbool(b, ',', "acted", s->acted);
	wtime(b, ',', "created_at", s->created_at);
	wtime(b, ',', "updated_at", s->updated_at);
	wkey(b, ',', "vars");
	dk_buf_putc(b, '[');
	for (size_t i = 0; i < s->nvars; i++) {
		dk_buf_puts(b, i ? ",{" : "{");
		/* json_pack's "s" takes no NULL */
		if (!s->vars[i].name || wstr(b, 0, "name", s->vars[i].name) < 0 ||
		    wstr(b, ',', "type", type_name(s->vars[i].type)) < 0)
			return -1;
		wkey(b, ',', "value");
		if (dk__value_write(b, &s->vars[i]) < 0)
			return -1;
		dk_buf_putc(b, '}');
	}
	dk_buf_putc(b, ']');
	if (write_states(b, s) < 0 || write_votes(b, s) < 0 || write_evidence(b, s) < 0)
		return -1;
	dk_buf_putc(b, '}');
	return 0;
}

int dk_snapshot_to_json(char **out, const dk_snapshot *s)
{
	dk_buf b = DK_BUF_INIT;

	*out = NULL;
	if (write_snapshot(&b, s) < 0) {
		dk_buf_free(&b);
		return to_json_tree(out, s);
	}
	*out = dk_buf_detach(&b);
	return 0;
}

/* ---- from JSON --------------------------------------------------------- */

/* Reading is strict about types and lenient about missing keys, so older
 * snapshots that lack a newer optional key still load. */
typedef struct {
	const char *where;
	int bad;
	dk_snapshot *s; /* the strings go into its block */
} rd;

static char *rstr(rd *r, json_t *o, const char *key, const char *where)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		r->bad = 1;
		r->where = where;
		return NULL;
	}
	return dk__snap_strdup(r->s, json_string_value(v));
}

static int64_t rtime(rd *r, json_t *o, const char *key, const char *where)
{
	json_t *v = json_object_get(o, key);
	int64_t t = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || dk_time_parse(&t, json_string_value(v)) < 0) {
		r->bad = 1;
		r->where = where;
		return 0;
	}
	return t;
}

static int64_t rinteger(rd *r, json_t *o, const char *key, const char *where)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v)) {
		r->bad = 1;
		r->where = where;
		return 0;
	}
	return (int64_t)json_integer_value(v);
}

static int rbool(rd *r, json_t *o, const char *key, const char *where)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		r->bad = 1;
		r->where = where;
		return 0;
	}
	return json_is_true(v);
}

static json_t *rarr(rd *r, json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (v && !json_is_array(v)) {
		r->bad = 1;
		r->where = key;
		return NULL;
	}
	return v;
}

/* n zeroed elements in s's block, NULL when n is 0 */
static void *array_of(dk_snapshot *s, size_t n, size_t size)
{
	return n ? dk__snap_alloc(s, n * size) : NULL;
}

/* A number variable's text, as XPath casts it. */
static void number_text(dk_snapshot *s, dk_value *v)
{
	char b[16];
	if (dk__number_int_text(b, v->number)) {
		v->text = dk__snap_strdup(s, b);
	} else {
		xmlChar *t = xmlXPathCastNumberToString(v->number);
		v->text = dk__snap_strdup(s, (const char *)t);
		dk_xml_free(t);
	}
}

static int rvalue(dk_snapshot *s, dk_value *v, json_t *o)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	json_t *val = json_object_get(o, "value");
	const char *name = json_string_value(json_object_get(o, "name"));
	if (!type || !name || !val)
		return -1;
	v->name = dk__snap_strdup(s, name);
	if (strcmp(type, "number") == 0) {
		v->type = DK_VAR_NUMBER;
		if (json_is_null(val))
			v->number = NAN;
		else if (json_is_number(val))
			v->number = json_number_value(val);
		else
			return -1;
		number_text(s, v);
	} else if (strcmp(type, "boolean") == 0) {
		if (!json_is_boolean(val))
			return -1;
		v->type = DK_VAR_BOOLEAN;
		v->boolean = json_is_true(val);
		v->text = dk__snap_strdup(s, v->boolean ? "true" : "false");
	} else if (strcmp(type, "string") == 0 || strcmp(type, "date") == 0) {
		if (!json_is_string(val))
			return -1;
		v->type = type[0] == 's' ? DK_VAR_STRING : DK_VAR_DATE;
		v->text = dk__snap_strdup(s, json_string_value(val));
	} else {
		return -1;
	}
	return 0;
}

/* Through a jansson tree: every snapshot text, with the messages. */
static int from_json_tree(dk_snapshot **out, const char *text)
{
	json_error_t jerr;
	json_t *root = json_loads(text ? text : "", 0, &jerr), *a, *o;
	dk_snapshot *s = NULL;
	rd r = {NULL, 0, NULL};
	size_t i;
	const char *status;
	*out = NULL;
	if (!root || !json_is_object(root)) {
		dk_error_set(DK_EINVALID,
		             "the instance snapshot is not a JSON object (%s at line %d); "
		             "the store is damaged: restore the instance from a backup",
		             root ? "wrong type" : jerr.text, root ? 1 : jerr.line);
		json_decref(root);
		return DK_EINVALID;
	}
	if (rinteger(&r, root, "format", "format") > DK_SNAPSHOT_FORMAT) {
		json_decref(root);
		return dk_error_set(DK_EINVALID,
		                    "the instance snapshot has format %lld, newer than this docket "
		                    "understands (%d); upgrade docket",
		                    (long long)json_integer_value(json_object_get(root, "format")),
		                    DK_SNAPSHOT_FORMAT);
	}
	s = snap_new(text ? strlen(text) : 0);
	r.s = s;
	s->format = DK_SNAPSHOT_FORMAT;
	o = json_object_get(root, "flow");
	if (json_is_object(o)) {
		s->flow_id = rstr(&r, o, "id", "flow.id");
		s->flow_version = (int)rinteger(&r, o, "version", "flow.version");
	}
	s->instance = rstr(&r, root, "instance", "instance");
	status = json_string_value(json_object_get(root, "status"));
	if (!status || strcmp(status, "active") == 0)
		s->status = DK_INSTANCE_ACTIVE;
	else if (strcmp(status, "completed") == 0)
		s->status = DK_INSTANCE_COMPLETED;
	else if (strcmp(status, "recalled") == 0)
		s->status = DK_INSTANCE_RECALLED;
	else {
		r.bad = 1;
		r.where = "status";
	}
	s->state = rstr(&r, root, "state", "state");
	s->initiator = rstr(&r, root, "initiator", "initiator");
	s->version = rinteger(&r, root, "version", "version");
	s->acted = rbool(&r, root, "acted", "acted");
	s->created_at = rtime(&r, root, "created_at", "created_at");
	s->updated_at = rtime(&r, root, "updated_at", "updated_at");

	a = rarr(&r, root, "regions");
	s->regions = array_of(s, json_array_size(a), sizeof(*s->regions));
	json_array_foreach(a, i, o)
	{
		s->regions[i].region = rstr(&r, o, "region", "regions");
		s->regions[i].state = rstr(&r, o, "state", "regions");
		s->nregions++;
		if (!s->regions[i].region || !s->regions[i].state) {
			r.bad = 1;
			r.where = "regions";
		}
	}
	a = rarr(&r, root, "vars");
	s->vars = array_of(s, json_array_size(a), sizeof(*s->vars));
	json_array_foreach(a, i, o)
	{
		s->nvars++;
		if (rvalue(s, &s->vars[i], o) < 0) {
			r.bad = 1;
			r.where = "vars";
		}
	}
	a = rarr(&r, root, "states");
	s->states = array_of(s, json_array_size(a), sizeof(*s->states));
	json_array_foreach(a, i, o)
	{
		dk_snap_state *st = &s->states[s->nstates++];
		json_t *dl = rarr(&r, o, "deadlines"), *esc = rarr(&r, o, "escalated"), *x;
		size_t j;
		st->state = rstr(&r, o, "state", "states");
		if (!st->state) {
			r.bad = 1;
			r.where = "states";
		}
		st->entered_at = rtime(&r, o, "entered_at", "states.entered_at");
		st->visits = (int)rinteger(&r, o, "visits", "states.visits");
		st->deadlines = array_of(s, json_array_size(dl), sizeof(*st->deadlines));
		json_array_foreach(dl, j, x)
		{
			st->deadlines[j].due_at = rtime(&r, x, "due_at", "deadlines.due_at");
			st->deadlines[j].next_remind =
			    rtime(&r, x, "next_remind", "deadlines.next_remind");
			st->deadlines[j].missed = rbool(&r, x, "missed", "deadlines.missed");
			st->ndeadlines++;
		}
		st->escalated = array_of(s, json_array_size(esc), sizeof(char *));
		json_array_foreach(esc, j, x)
		{
			if (!json_is_string(x)) {
				r.bad = 1;
				r.where = "escalated";
				continue;
			}
			st->escalated[st->nescalated++] = dk__snap_strdup(s, json_string_value(x));
		}
	}
	a = rarr(&r, root, "votes");
	s->votes = array_of(s, json_array_size(a), sizeof(*s->votes));
	json_array_foreach(a, i, o)
	{
		dk_snap_vote *v = &s->votes[s->nvotes++];
		v->state = rstr(&r, o, "state", "votes");
		v->user = rstr(&r, o, "user", "votes");
		v->actor = rstr(&r, o, "actor", "votes");
		v->transition = rstr(&r, o, "transition", "votes");
		v->at = rtime(&r, o, "at", "votes.at");
		if (!v->state || !v->user || !v->transition) {
			r.bad = 1;
			r.where = "votes";
		}
	}
	a = rarr(&r, root, "evidence");
	s->evidence = array_of(s, json_array_size(a), sizeof(*s->evidence));
	json_array_foreach(a, i, o)
	{
		dk_snap_evidence *e = &s->evidence[s->nevidence++];
		e->kind = rstr(&r, o, "kind", "evidence");
		e->state = rstr(&r, o, "state", "evidence");
		e->visit = (int)rinteger(&r, o, "visit", "evidence.visit");
		e->state_entered_at = rtime(&r, o, "state_entered_at", "evidence");
		e->at = rtime(&r, o, "at", "evidence.at");
		e->by = rstr(&r, o, "by", "evidence");
		e->name = rstr(&r, o, "name", "evidence");
		e->sha256 = rstr(&r, o, "sha256", "evidence");
		e->size = rinteger(&r, o, "size", "evidence.size");
		if (!e->kind || !e->state) {
			r.bad = 1;
			r.where = "evidence";
		}
	}
	if (!s->flow_id || !s->state) {
		r.bad = 1;
		r.where = !s->flow_id ? "flow.id" : "state";
	}
	json_decref(root);
	if (r.bad) {
		dk_snapshot_free(s);
		return dk_error_set(DK_EINVALID,
		                    "the instance snapshot has a bad or missing '%s'; the store is "
		                    "damaged: restore the instance from a backup",
		                    r.where);
	}
	*out = s;
	return 0;
}

/* ---- from JSON, read straight -------------------------------------------

The text dk_snapshot_to_json writes (compact, the keys in their order,
integers, strings without escapes) is read without a jansson tree, which
cost more than the rest of a step's reading and deciding together. Any
other text, and anything the tree reader would refuse, makes the straight
reader give up (-1): an indented snapshot of an older build, an escaped
string, a real number, a missing or damaged member. from_json_tree then
reads it, or says what is wrong with it, as before. */

typedef struct {
	const char *p;
	dk_snapshot *s;
} sr;

static int sr_lit(sr *r, const char *t, size_t n)
{
	if (strncmp(r->p, t, n) != 0)
		return -1;
	r->p += n;
	return 0;
}
#define SR_LIT(r, t) sr_lit(r, t, sizeof(t) - 1)

/* sep (when not 0), then "key": */
static int sr_key(sr *r, char sep, const char *key)
{
	size_t n = strlen(key);
	if (sep && *r->p++ != sep)
		return -1;
	if (*r->p != '"' || strncmp(r->p + 1, key, n) != 0 || r->p[n + 1] != '"' ||
	    r->p[n + 2] != ':')
		return -1;
	r->p += n + 3;
	return 0;
}

/* A string without escapes into s's block, or null (*out NULL). */
static int sr_str(sr *r, char **out)
{
	const char *start;
	size_t n;

	*out = NULL;
	if (SR_LIT(r, "null") == 0)
		return 0;
	if (*r->p != '"')
		return -1;
	start = ++r->p;
	while (*r->p != '"') {
		if ((unsigned char)*r->p < 0x20 || *r->p == '\\')
			return -1; /* the end, a control byte or an escape */
		r->p++;
	}
	n = (size_t)(r->p - start);
	r->p++;
	*out = dk__pool_take((dk_pool_block **)&r->s->mem, n + 1);
	memcpy(*out, start, n);
	(*out)[n] = '\0';
	return 0;
}

static int sr_time(sr *r, int64_t *out)
{
	char text[DK_TIME_STRLEN + 8];
	const char *start;
	size_t n;

	*out = 0;
	if (SR_LIT(r, "null") == 0)
		return 0;
	if (*r->p != '"')
		return -1;
	start = ++r->p;
	while (*r->p && *r->p != '"')
		r->p++;
	n = (size_t)(r->p - start);
	if (*r->p != '"' || n >= sizeof(text))
		return -1;
	memcpy(text, start, n);
	text[n] = '\0';
	r->p++;
	return dk_time_parse(out, text) < 0 ? -1 : 0;
}

/* An integer of at most 18 digits (a real, or a longer one, gives up). */
static int sr_int(sr *r, int64_t *out)
{
	int neg = *r->p == '-', digits = 0;
	int64_t v = 0;

	if (neg)
		r->p++;
	if (r->p[0] == '0' && r->p[1] >= '0' && r->p[1] <= '9')
		return -1; /* not JSON */
	while (*r->p >= '0' && *r->p <= '9') {
		if (++digits > 18)
			return -1;
		v = v * 10 + (*r->p++ - '0');
	}
	if (!digits || *r->p == '.' || *r->p == 'e' || *r->p == 'E')
		return -1;
	*out = neg ? -v : v;
	return 0;
}

static int sr_bool(sr *r, int *out)
{
	if (SR_LIT(r, "true") == 0)
		*out = 1;
	else if (SR_LIT(r, "false") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* The members of the array r is at ('['), counted without reading them;
 * -1 on an escape (the reader gives up on those anyway). */
static long sr_count(const sr *r)
{
	const char *p = r->p;
	long depth = 0, n = 0;

	if (*p != '[')
		return -1;
	for (;; p++) {
		switch (*p) {
		case '\0': return -1;
		case '"':
			while (*++p != '"')
				if (!*p || *p == '\\')
					return -1;
			break;
		case '[':
		case '{': depth++; break;
		case ']':
		case '}':
			if (--depth == 0)
				return p == r->p + 1 ? 0 : n + 1;
			break;
		case ',': n += depth == 1; break;
		default: break;
		}
	}
}

/* ,"key":[ with its n members allocated in *arr (of size each) */
static int sr_array(sr *r, const char *key, void **arr, size_t *n, size_t size)
{
	long count;

	if (sr_key(r, ',', key) < 0 || (count = sr_count(r)) < 0)
		return -1;
	r->p++;
	*n = (size_t)count;
	*arr = array_of(r->s, *n, size);
	return 0;
}

/* the separator before member i of an array, or its end after the last */
static int sr_next(sr *r, size_t i, size_t n)
{
	return sr_lit(r, i + 1 < n ? "," : "]", 1);
}

static int sr_var(sr *r, dk_value *v)
{
	char *type = NULL;
	int64_t num = 0;

	if (SR_LIT(r, "{") < 0 || sr_key(r, 0, "name") < 0 || sr_str(r, &v->name) < 0 || !v->name ||
	    sr_key(r, ',', "type") < 0 || sr_str(r, &type) < 0 || !type ||
	    sr_key(r, ',', "value") < 0)
		return -1;
	if (strcmp(type, "number") == 0) {
		if (sr_int(r, &num) < 0)
			return -1;
		v->type = DK_VAR_NUMBER;
		v->number = (double)num;
		number_text(r->s, v);
	} else if (strcmp(type, "boolean") == 0) {
		v->type = DK_VAR_BOOLEAN;
		if (sr_bool(r, &v->boolean) < 0)
			return -1;
		v->text = dk__snap_strdup(r->s, v->boolean ? "true" : "false");
	} else if (strcmp(type, "string") == 0 || strcmp(type, "date") == 0) {
		v->type = type[0] == 's' ? DK_VAR_STRING : DK_VAR_DATE;
		if (sr_str(r, &v->text) < 0 || !v->text)
			return -1;
	} else {
		return -1;
	}
	return SR_LIT(r, "}");
}

static int sr_state(sr *r, dk_snap_state *st)
{
	int64_t visits;
	void *arr;

	if (SR_LIT(r, "{") < 0 || sr_key(r, 0, "state") < 0 || sr_str(r, &st->state) < 0 ||
	    !st->state || sr_key(r, ',', "entered_at") < 0 || sr_time(r, &st->entered_at) < 0 ||
	    sr_key(r, ',', "visits") < 0 || sr_int(r, &visits) < 0 ||
	    sr_array(r, "deadlines", &arr, &st->ndeadlines, sizeof(*st->deadlines)) < 0)
		return -1;
	st->visits = (int)visits;
	st->deadlines = arr;
	for (size_t j = 0; j < st->ndeadlines; j++) {
		dk_snap_deadline *d = &st->deadlines[j];
		if (SR_LIT(r, "{") < 0 || sr_key(r, 0, "due_at") < 0 ||
		    sr_time(r, &d->due_at) < 0 || sr_key(r, ',', "next_remind") < 0 ||
		    sr_time(r, &d->next_remind) < 0 || sr_key(r, ',', "missed") < 0 ||
		    sr_bool(r, &d->missed) < 0 || SR_LIT(r, "}") < 0 ||
		    sr_next(r, j, st->ndeadlines) < 0)
			return -1;
	}
	if (!st->ndeadlines && SR_LIT(r, "]") < 0)
		return -1;
	if (sr_array(r, "escalated", &arr, &st->nescalated, sizeof(char *)) < 0)
		return -1;
	st->escalated = arr;
	for (size_t j = 0; j < st->nescalated; j++)
		if (sr_str(r, &st->escalated[j]) < 0 || !st->escalated[j] ||
		    sr_next(r, j, st->nescalated) < 0)
			return -1;
	if (!st->nescalated && SR_LIT(r, "]") < 0)
		return -1;
	return SR_LIT(r, "}");
}

static int sr_vote(sr *r, dk_snap_vote *v)
{
	if (SR_LIT(r, "{") < 0 || sr_key(r, 0, "state") < 0 || sr_str(r, &v->state) < 0 ||
	    sr_key(r, ',', "user") < 0 || sr_str(r, &v->user) < 0 || sr_key(r, ',', "actor") < 0 ||
	    sr_str(r, &v->actor) < 0 || sr_key(r, ',', "transition") < 0 ||
	    sr_str(r, &v->transition) < 0 || sr_key(r, ',', "at") < 0 || sr_time(r, &v->at) < 0 ||
	    !v->state || !v->user || !v->transition)
		return -1;
	return SR_LIT(r, "}");
}

static int sr_evidence(sr *r, dk_snap_evidence *e)
{
	int64_t visit;

	if (SR_LIT(r, "{") < 0 || sr_key(r, 0, "kind") < 0 || sr_str(r, &e->kind) < 0 ||
	    sr_key(r, ',', "state") < 0 || sr_str(r, &e->state) < 0 ||
	    sr_key(r, ',', "visit") < 0 || sr_int(r, &visit) < 0 ||
	    sr_key(r, ',', "state_entered_at") < 0 || sr_time(r, &e->state_entered_at) < 0 ||
	    sr_key(r, ',', "at") < 0 || sr_time(r, &e->at) < 0 || sr_key(r, ',', "by") < 0 ||
	    sr_str(r, &e->by) < 0 || sr_key(r, ',', "name") < 0 || sr_str(r, &e->name) < 0 ||
	    sr_key(r, ',', "sha256") < 0 || sr_str(r, &e->sha256) < 0 ||
	    sr_key(r, ',', "size") < 0 || sr_int(r, &e->size) < 0 || !e->kind || !e->state)
		return -1;
	e->visit = (int)visit;
	return SR_LIT(r, "}");
}

/* Each list of the snapshot: ,"key":[ member, ... ] */
#define SR_LIST(r, key, arr, n, one)                                                               \
	do {                                                                                       \
		void *a_;                                                                          \
		if (sr_array(r, key, &a_, &(n), sizeof(*(arr))) < 0)                               \
			return -1;                                                                 \
		(arr) = a_;                                                                        \
		for (size_t i_ = 0; i_ < (n); i_++)                                                \
			if (one(r, &(arr)[i_]) < 0 || sr_next(r, i_, n) < 0)                       \
				return -1;                                                         \
		if (!(n) && SR_LIT(r, "]") < 0)                                                    \
			return -1;                                                                 \
	} while (0)

static int sr_region(sr *r, dk_snap_region *g)
{
	if (SR_LIT(r, "{") < 0 || sr_key(r, 0, "region") < 0 || sr_str(r, &g->region) < 0 ||
	    sr_key(r, ',', "state") < 0 || sr_str(r, &g->state) < 0 || !g->region || !g->state)
		return -1;
	return SR_LIT(r, "}");
}

static int sr_snapshot(sr *r)
{
	dk_snapshot *s = r->s;
	int64_t format, version;
	char *status = NULL;

	if (SR_LIT(r, "{") < 0 || sr_key(r, 0, "format") < 0 || sr_int(r, &format) < 0 ||
	    format != DK_SNAPSHOT_FORMAT || sr_key(r, ',', "flow") < 0 || SR_LIT(r, "{") < 0 ||
	    sr_key(r, 0, "id") < 0 || sr_str(r, &s->flow_id) < 0 || !s->flow_id ||
	    sr_key(r, ',', "version") < 0 || sr_int(r, &version) < 0 || SR_LIT(r, "}") < 0 ||
	    sr_key(r, ',', "instance") < 0 || sr_str(r, &s->instance) < 0 ||
	    sr_key(r, ',', "status") < 0 || sr_str(r, &status) < 0 || !status ||
	    sr_key(r, ',', "state") < 0 || sr_str(r, &s->state) < 0 || !s->state)
		return -1;
	s->flow_version = (int)version;
	if (strcmp(status, "active") == 0)
		s->status = DK_INSTANCE_ACTIVE;
	else if (strcmp(status, "completed") == 0)
		s->status = DK_INSTANCE_COMPLETED;
	else if (strcmp(status, "recalled") == 0)
		s->status = DK_INSTANCE_RECALLED;
	else
		return -1;
	SR_LIST(r, "regions", s->regions, s->nregions, sr_region);
	if (sr_key(r, ',', "initiator") < 0 || sr_str(r, &s->initiator) < 0 ||
	    sr_key(r, ',', "version") < 0 || sr_int(r, &s->version) < 0 ||
	    sr_key(r, ',', "acted") < 0 || sr_bool(r, &s->acted) < 0 ||
	    sr_key(r, ',', "created_at") < 0 || sr_time(r, &s->created_at) < 0 ||
	    sr_key(r, ',', "updated_at") < 0 || sr_time(r, &s->updated_at) < 0)
		return -1;
	SR_LIST(r, "vars", s->vars, s->nvars, sr_var);
	SR_LIST(r, "states", s->states, s->nstates, sr_state);
	SR_LIST(r, "votes", s->votes, s->nvotes, sr_vote);
	SR_LIST(r, "evidence", s->evidence, s->nevidence, sr_evidence);
	return SR_LIT(r, "}") < 0 || *r->p ? -1 : 0;
}

int dk_snapshot_from_json(dk_snapshot **out, const char *text)
{
	sr r;

	*out = NULL;
	/* jansson refuses text that is not UTF-8: so does this reader */
	if (text && dk__utf8_valid(text)) {
		r.p = text;
		r.s = snap_new(strlen(text));
		r.s->format = DK_SNAPSHOT_FORMAT;
		if (sr_snapshot(&r) == 0) {
			*out = r.s;
			return 0;
		}
		dk_snapshot_free(r.s);
	}
	return from_json_tree(out, text);
}
