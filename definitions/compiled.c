/*
 * compiled.c - a loaded flow or org directory as JSON text, and back.
 *
 * Parsing a deployed flow and the org directory from XML is what made a
 * one-step command such as `docket act` load libxml2 (with the ICU and
 * libstdc++ it brings) and libcrypto (the flow's SHA-256) in every
 * process: more than the step itself. The store keeps this compiled form
 * beside each file instead (store: dk_store_compiled_get), and a command
 * rebuilds the model from it with jansson, which docket links anyway.
 *
 * The text holds every field the loader and the checks set, pointers as
 * indices (a transition's target, a region's states, a deadline's <fire>
 * transition); XPath expressions as their text and line, with their
 * simple form parsed again here and their libxml2 form compiled only when
 * an evaluation needs it (dk_xpath_comp). Reading it back checks every
 * member's type and every index's range: damaged text is DK_EINVALID, and
 * the caller loads the file itself. DK_COMPILED_FORMAT changes whenever
 * the text changes meaning, and the _Static_asserts below fail the build
 * when a model struct changes size, so a field added to the model is not
 * silently dropped here: add it to both directions, then the sizes.
 */
#include "definitions/internal.h"

#include "util/error.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__LP64__)
_Static_assert(sizeof(dk_flow) == 216, "dk_flow changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_state) == 144, "dk_state changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_transition) == 88, "dk_transition changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_deadline) == 128, "dk_deadline changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_region) == 48, "dk_region changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_evidence_kind) == 88,
               "dk_evidence_kind changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_var) == 32, "dk_var changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_set) == 24, "dk_set changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_assign) == 24, "dk_assign changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_xpath) == 32, "dk_xpath changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_org) == 136, "dk_org changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_user) == 56, "dk_user changed: update definitions/compiled.c");
_Static_assert(sizeof(dk_dept) == 40, "dk_dept changed: update definitions/compiled.c");
#endif

/* ---- writing ------------------------------------------------------------ */

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *jstrv(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *jduration(int has, const dk_duration *d)
{
	if (!has)
		return json_null();
	return json_pack("[i, i, i, I]", d->years, d->months, d->days, (json_int_t)d->seconds);
}

static json_t *jxpath(const dk_xpath *x)
{
	if (!x)
		return json_null();
	return json_pack("{s:s, s:i}", "text", x->text, "line", x->line);
}

static json_t *jassign(const dk_assign *a)
{
	return json_pack("{s:i, s:o, s:o}", "kind", (int)a->kind, "text", jstr(a->text), "expr",
	                 jxpath(a->expr));
}

static json_t *jindex(const void *p, const void *base, size_t size)
{
	if (!p)
		return json_integer(-1);
	return json_integer((json_int_t)(((const char *)p - (const char *)base) / (ptrdiff_t)size));
}

static json_t *jtransition(const dk_flow *f, const dk_transition *t)
{
	json_t *requires = jstrv(t->requires, t->nrequires), *sets = json_array();
	for (size_t i = 0; i < t->nsets; i++)
		json_array_append_new(sets,
		                      json_pack("{s:s?, s:o, s:i}", "var", t->sets[i].var, "value",
		                                jxpath(t->sets[i].value), "line", t->sets[i].line));
	return json_pack("{s:s?, s:s?, s:o, s:s?, s:o, s:o, s:b, s:o, s:b, s:i}", "id", t->id, "to",
	                 t->to, "target", jindex(t->target, f->states, sizeof(*f->states)), "role",
	                 t->role, "guard", jxpath(t->guard), "requires", requires,
	                 "comment_required", t->comment_required, "sets", sets, "on_done",
	                 t->on_done, "line", t->line);
}

static json_t *jdeadline(const dk_state *st, const dk_deadline *dl)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:s?, s:o, s:i}", "after",
	                 jduration(dl->has_after, &dl->after), "at", jxpath(dl->at), "remind",
	                 jduration(dl->has_remind, &dl->remind_every), "escalate",
	                 dl->has_escalate ? jassign(&dl->escalate) : json_null(), "fire", dl->fire,
	                 "fire_transition",
	                 jindex(dl->fire_transition, st->transitions, sizeof(*st->transitions)),
	                 "line", dl->line);
}

static json_t *jstate(const dk_flow *f, const dk_state *st)
{
	json_t *ts = json_array(), *ds = json_array(), *rs = json_null();
	for (size_t i = 0; i < st->ntransitions; i++)
		json_array_append_new(ts, jtransition(f, &st->transitions[i]));
	for (size_t i = 0; i < st->ndeadlines; i++)
		json_array_append_new(ds, jdeadline(st, &st->deadlines[i]));
	if (st->regions) {
		rs = json_array();
		for (size_t i = 0; i < st->nregions; i++)
			json_array_append_new(
			    rs, jindex(st->regions[i], f->regions, sizeof(*f->regions)));
	}
	return json_pack("{s:s?, s:s?, s:i, s:b, s:b, s:o, s:i, s:i, s:o, s:o, s:o, s:o, s:o, "
	                 "s:i}",
	                 "id", st->id, "title", st->title, "kind", (int)st->kind, "initial",
	                 st->initial, "final", st->final, "assign", jassign(&st->assign), "quorum",
	                 (int)st->quorum, "quorum_n", st->quorum_n, "freeze",
	                 st->freeze ? jstrv(st->freeze, st->nfreeze) : json_null(), "transitions",
	                 ts, "deadlines", ds, "regions", rs, "region",
	                 jindex(st->region, f->regions, sizeof(*f->regions)), "line", st->line);
}

static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

char *dk_flow_compiled(const dk_flow *f)
{
	json_t *roles = json_array(), *vars = json_array(), *ev = json_array(),
	       *states = json_array(), *regions = json_array();

	for (size_t i = 0; i < f->nroles; i++)
		json_array_append_new(roles, json_pack("[s, i]", f->roles[i], f->role_lines[i]));
	for (size_t i = 0; i < f->nvars; i++) {
		const dk_var *v = &f->vars[i];
		json_array_append_new(vars,
		                      json_pack("{s:s?, s:i, s:b, s:s?, s:i}", "name", v->name,
		                                "type", (int)v->type, "required", v->required,
		                                "default", v->default_value, "line", v->line));
	}
	for (size_t i = 0; i < f->nevidence; i++) {
		const dk_evidence_kind *e = &f->evidence[i];
		json_array_append_new(
		    ev, json_pack("{s:s?, s:s?, s:o, s:I, s:b, s:o, s:o, s:i}", "id", e->id,
		                  "title", e->title, "types", jstrv(e->types, e->ntypes),
		                  "max_size", (json_int_t)e->max_size, "multiple", e->multiple,
		                  "due_after", jduration(e->has_due_after, &e->due_after), "due_at",
		                  jxpath(e->due_at), "line", e->line));
	}
	for (size_t i = 0; i < f->nstates; i++)
		json_array_append_new(states, jstate(f, &f->states[i]));
	for (size_t i = 0; i < f->nregions; i++) {
		const dk_region *r = &f->regions[i];
		json_t *rs = json_array();
		for (size_t k = 0; k < r->nstates; k++)
			json_array_append_new(rs,
			                      jindex(r->states[k], f->states, sizeof(*f->states)));
		json_array_append_new(
		    regions, json_pack("{s:s?, s:o, s:o, s:o, s:i}", "id", r->id, "parallel",
		                       jindex(r->parallel, f->states, sizeof(*f->states)),
		                       "initial", jindex(r->initial, f->states, sizeof(*f->states)),
		                       "states", rs, "line", r->line));
	}
	return dump(json_pack("{s:i, s:s?, s:i, s:s?, s:s?, s:o, s:o, s:o, s:o, s:o, s:o, s:i}",
	                      "format", DK_COMPILED_FORMAT, "id", f->id, "version", f->version,
	                      "title", f->title, "timezone", f->timezone, "roles", roles, "vars",
	                      vars, "evidence", ev, "states", states, "regions", regions, "initial",
	                      jindex(f->initial, f->states, sizeof(*f->states)), "line", f->line));
}

char *dk_org_compiled(const dk_org *org)
{
	json_t *users = json_array(), *depts = json_array();

	for (size_t i = 0; i < org->nusers; i++) {
		const dk_user *u = &org->users[i];
		json_array_append_new(
		    users, json_pack("{s:s?, s:s?, s:s?, s:s?, s:o, s:i}", "id", u->id, "name",
		                     u->name, "email", u->email, "dept", u->dept, "roles",
		                     jstrv(u->roles, u->nroles), "line", u->line));
	}
	for (size_t i = 0; i < org->ndepts; i++) {
		const dk_dept *d = &org->depts[i];
		json_array_append_new(depts,
		                      json_pack("{s:s?, s:s?, s:s?, s:s?, s:i}", "id", d->id,
		                                "name", d->name, "head", d->head, "division_leader",
		                                d->division_leader, "line", d->line));
	}
	return dump(json_pack("{s:i, s:s?, s:o, s:o, s:o}", "format", DK_COMPILED_FORMAT,
	                      "timezone", org->timezone, "users", users, "depts", depts, "holidays",
	                      jstrv(org->holidays, org->nholidays)));
}

/* ---- reading ------------------------------------------------------------ */

/* The reader: the first problem met is kept, every later read gives a
 * harmless default, and the caller looks once at the end. */
typedef struct {
	const char *bad; /* NULL while all is well */
} rd;

static json_t *member(rd *r, const json_t *o, const char *key, json_type type, int nullable)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
	if (v && json_typeof(v) == type)
		return v;
	if (nullable && json_is_null(v))
		return NULL;
	if (!r->bad)
		r->bad = key;
	return NULL;
}

static char *rd_str(rd *r, const json_t *o, const char *key, int nullable)
{
	json_t *v = member(r, o, key, JSON_STRING, nullable);
	return v ? dk_strdup(json_string_value(v)) : NULL;
}

static int64_t rd_int(rd *r, const json_t *o, const char *key)
{
	json_t *v = member(r, o, key, JSON_INTEGER, 0);
	return v ? (int64_t)json_integer_value(v) : 0;
}

static int rd_bool(rd *r, const json_t *o, const char *key)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
	if (json_is_boolean(v))
		return json_is_true(v);
	if (!r->bad)
		r->bad = key;
	return 0;
}

/* An enum member, checked against its range. */
static int rd_enum(rd *r, const json_t *o, const char *key, int max)
{
	int64_t v = rd_int(r, o, key);
	if (v < 0 || v > max) {
		if (!r->bad)
			r->bad = key;
		return 0;
	}
	return (int)v;
}

static const json_t *rd_array(rd *r, const json_t *o, const char *key, size_t *n)
{
	json_t *v = member(r, o, key, JSON_ARRAY, 0);
	*n = v ? json_array_size(v) : 0;
	return v;
}

/* A NULL-terminated array of copies, as dk_split_words makes. */
static char **rd_strv(rd *r, const json_t *o, const char *key, size_t *n)
{
	const json_t *a = rd_array(r, o, key, n);
	char **v = dk_calloc(*n + 1, sizeof(*v));
	for (size_t i = 0; i < *n; i++) {
		const json_t *s = json_array_get(a, i);
		if (!json_is_string(s)) {
			if (!r->bad)
				r->bad = key;
			v[i] = dk_strdup("");
		} else {
			v[i] = dk_strdup(json_string_value(s));
		}
	}
	return v;
}

static int rd_duration(rd *r, const json_t *o, const char *key, dk_duration *d)
{
	json_t *v = member(r, o, key, JSON_ARRAY, 1);
	memset(d, 0, sizeof(*d));
	if (!v)
		return 0;
	json_int_t y = 0, m = 0, dd = 0, s = 0;
	if (json_unpack(v, "[IIII!]", &y, &m, &dd, &s) < 0) {
		if (!r->bad)
			r->bad = key;
		return 0;
	}
	d->years = (int)y;
	d->months = (int)m;
	d->days = (int)dd;
	d->seconds = (int64_t)s;
	return 1;
}

static dk_xpath *rd_xpath(rd *r, const json_t *o, const char *key)
{
	json_t *v = member(r, o, key, JSON_OBJECT, 1);
	if (!v)
		return NULL;
	char *text = rd_str(r, v, "text", 0);
	if (!text)
		return NULL;
	dk_xpath *x = dk_calloc(1, sizeof(*x));
	x->text = text;
	x->line = (int)rd_int(r, v, "line");
	x->simple = dk_xsimple_parse(text);
	return x; /* x->comp: compiled by dk_xpath_comp when evaluated */
}

static void rd_assign(rd *r, const json_t *o, dk_assign *a)
{
	a->kind = (dk_assign_kind)rd_enum(r, o, "kind", DK_ASSIGN_XPATH);
	a->text = rd_str(r, o, "text", 1);
	a->expr = rd_xpath(r, o, "expr");
	if (a->kind == DK_ASSIGN_XPATH && !a->expr && !r->bad)
		r->bad = "expr";
}

/* A pointer from an index into base[0..n), or NULL for -1. */
static const void *rd_index(rd *r, const json_t *o, const char *key, const void *base, size_t n,
                            size_t size)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : (json_t *)o;
	json_int_t i = json_is_integer(v) ? json_integer_value(v) : -2;
	if (i == -1)
		return NULL;
	if (i < 0 || (size_t)i >= n) {
		if (!r->bad)
			r->bad = key;
		return NULL;
	}
	return (const char *)base + (size_t)i * size;
}

static void rd_transition(rd *r, const json_t *o, dk_flow *f, dk_transition *t)
{
	size_t n = 0;
	const json_t *sets;

	t->id = rd_str(r, o, "id", 1);
	t->to = rd_str(r, o, "to", 1);
	t->target = rd_index(r, o, "target", f->states, f->nstates, sizeof(*f->states));
	t->role = rd_str(r, o, "role", 1);
	t->guard = rd_xpath(r, o, "guard");
	t->requires = rd_strv(r, o, "requires", &t->nrequires);
	t->comment_required = rd_bool(r, o, "comment_required");
	sets = rd_array(r, o, "sets", &n);
	t->nsets = n;
	t->sets = dk_calloc(n + 1, sizeof(*t->sets));
	for (size_t i = 0; i < n; i++) {
		const json_t *s = json_array_get(sets, i);
		t->sets[i].var = rd_str(r, s, "var", 1);
		t->sets[i].value = rd_xpath(r, s, "value");
		t->sets[i].line = (int)rd_int(r, s, "line");
	}
	t->on_done = rd_bool(r, o, "on_done");
	t->line = (int)rd_int(r, o, "line");
}

static void rd_deadline(rd *r, const json_t *o, dk_state *st, dk_deadline *dl)
{
	json_t *esc = member(r, o, "escalate", JSON_OBJECT, 1);

	dl->has_after = rd_duration(r, o, "after", &dl->after);
	dl->at = rd_xpath(r, o, "at");
	dl->has_remind = rd_duration(r, o, "remind", &dl->remind_every);
	if (esc) {
		dl->has_escalate = 1;
		rd_assign(r, esc, &dl->escalate);
	}
	dl->fire = rd_str(r, o, "fire", 1);
	dl->fire_transition = rd_index(r, o, "fire_transition", st->transitions, st->ntransitions,
	                               sizeof(*st->transitions));
	dl->line = (int)rd_int(r, o, "line");
}

static void rd_state(rd *r, const json_t *o, dk_flow *f, dk_state *st)
{
	size_t n = 0;
	const json_t *a;

	st->id = rd_str(r, o, "id", 1);
	st->title = rd_str(r, o, "title", 1);
	st->kind = (dk_state_kind)rd_enum(r, o, "kind", DK_STATE_PARALLEL);
	st->initial = rd_bool(r, o, "initial");
	st->final = rd_bool(r, o, "final");
	rd_assign(r, member(r, o, "assign", JSON_OBJECT, 0), &st->assign);
	st->quorum = (dk_quorum_kind)rd_enum(r, o, "quorum", DK_QUORUM_N);
	st->quorum_n = (int)rd_int(r, o, "quorum_n");
	if (member(r, o, "freeze", JSON_ARRAY, 1))
		st->freeze = rd_strv(r, o, "freeze", &st->nfreeze);
	a = rd_array(r, o, "transitions", &n);
	st->ntransitions = n;
	st->transitions = dk_calloc(n + 1, sizeof(*st->transitions));
	for (size_t i = 0; i < n; i++)
		rd_transition(r, json_array_get(a, i), f, &st->transitions[i]);
	a = rd_array(r, o, "deadlines", &n);
	st->ndeadlines = n;
	st->deadlines = dk_calloc(n + 1, sizeof(*st->deadlines));
	for (size_t i = 0; i < n; i++)
		rd_deadline(r, json_array_get(a, i), st, &st->deadlines[i]);
	if ((a = member(r, o, "regions", JSON_ARRAY, 1))) {
		n = json_array_size(a);
		st->nregions = n;
		st->regions = dk_calloc(n + 1,
		                        sizeof(*st->regions)); // NOLINT(bugprone-sizeof-expression)
		for (size_t i = 0; i < n; i++)
			st->regions[i] =
			    (dk_region *)rd_index(r, json_array_get(a, i), "regions", f->regions,
			                          f->nregions, sizeof(*f->regions));
	}
	st->region = rd_index(r, o, "region", f->regions, f->nregions, sizeof(*f->regions));
	st->line = (int)rd_int(r, o, "line");
}

static int finish(rd *r, json_t *j, const char *what)
{
	json_decref(j);
	if (r->bad)
		return dk_error_set(DK_EINVALID, "the compiled %s is damaged (at '%s')", what,
		                    r->bad);
	return 0;
}

static json_t *parse(rd *r, const char *text)
{
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j) || rd_int(r, j, "format") != DK_COMPILED_FORMAT) {
		if (!r->bad)
			r->bad = "format";
	}
	return j;
}

int dk_flow_from_compiled(dk_flow **out, const char *name, const char *sha256, const char *text)
{
	rd r = {NULL};
	json_t *j = parse(&r, text);
	dk_flow *f = dk_calloc(1, sizeof(*f));
	const json_t *a;
	size_t n = 0;
	int error;

	*out = NULL;
	f->file = dk_strdup(name ? name : "<flow>");
	snprintf(f->sha256, sizeof(f->sha256), "%s", sha256 ? sha256 : "");
	f->id = rd_str(&r, j, "id", 1);
	f->version = (int)rd_int(&r, j, "version");
	f->title = rd_str(&r, j, "title", 1);
	f->timezone = rd_str(&r, j, "timezone", 1);
	f->line = (int)rd_int(&r, j, "line");
	a = rd_array(&r, j, "roles", &n);
	f->nroles = n;
	f->roles = dk_calloc(n + 1, sizeof(*f->roles));
	f->role_lines = dk_calloc(n + 1, sizeof(*f->role_lines));
	for (size_t i = 0; i < n; i++) {
		const char *id = NULL;
		int line = 0;
		if (json_unpack(json_array_get(a, i), "[si!]", &id, &line) < 0) {
			r.bad = r.bad ? r.bad : "roles";
			id = "";
		}
		f->roles[i] = dk_strdup(id);
		f->role_lines[i] = line;
	}
	a = rd_array(&r, j, "vars", &n);
	f->nvars = n;
	f->vars = dk_calloc(n + 1, sizeof(*f->vars));
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(a, i);
		dk_var *v = &f->vars[i];
		v->name = rd_str(&r, o, "name", 1);
		v->type = (dk_var_type)rd_enum(&r, o, "type", DK_VAR_DATE);
		v->required = rd_bool(&r, o, "required");
		v->default_value = rd_str(&r, o, "default", 1);
		v->line = (int)rd_int(&r, o, "line");
	}
	a = rd_array(&r, j, "evidence", &n);
	f->nevidence = n;
	f->evidence = dk_calloc(n + 1, sizeof(*f->evidence));
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(a, i);
		dk_evidence_kind *e = &f->evidence[i];
		e->id = rd_str(&r, o, "id", 1);
		e->title = rd_str(&r, o, "title", 1);
		e->types = rd_strv(&r, o, "types", &e->ntypes);
		e->max_size = rd_int(&r, o, "max_size");
		e->multiple = rd_bool(&r, o, "multiple");
		e->has_due_after = rd_duration(&r, o, "due_after", &e->due_after);
		e->due_at = rd_xpath(&r, o, "due_at");
		e->line = (int)rd_int(&r, o, "line");
	}
	/* both arrays are sized before either is filled: states and regions
	 * point into each other */
	const json_t *states = rd_array(&r, j, "states", &f->nstates);
	const json_t *regions = rd_array(&r, j, "regions", &f->nregions);
	f->states = dk_calloc(f->nstates + 1, sizeof(*f->states));
	f->regions = dk_calloc(f->nregions + 1, sizeof(*f->regions));
	for (size_t i = 0; i < f->nstates; i++)
		rd_state(&r, json_array_get(states, i), f, &f->states[i]);
	for (size_t i = 0; i < f->nregions; i++) {
		const json_t *o = json_array_get(regions, i);
		dk_region *g = &f->regions[i];
		g->id = rd_str(&r, o, "id", 1);
		g->parallel =
		    rd_index(&r, o, "parallel", f->states, f->nstates, sizeof(*f->states));
		g->initial = rd_index(&r, o, "initial", f->states, f->nstates, sizeof(*f->states));
		a = rd_array(&r, o, "states", &n);
		g->nstates = n;
		g->states =
		    dk_calloc(n + 1, sizeof(*g->states)); // NOLINT(bugprone-sizeof-expression)
		for (size_t k = 0; k < n; k++)
			g->states[k] = rd_index(&r, json_array_get(a, k), "states", f->states,
			                        f->nstates, sizeof(*f->states));
		g->line = (int)rd_int(&r, o, "line");
	}
	f->initial = rd_index(&r, j, "initial", f->states, f->nstates, sizeof(*f->states));
	if (!f->id || !f->title || !f->initial)
		r.bad = r.bad ? r.bad : "id";
	if ((error = finish(&r, j, "flow")) < 0) {
		dk_flow_free(f);
		return error;
	}
	*out = f;
	return 0;
}

int dk_org_from_compiled(dk_org **out, const char *name, const char *sha256, const char *text)
{
	rd r = {NULL};
	json_t *j = parse(&r, text);
	dk_org *org = dk_calloc(1, sizeof(*org));
	const json_t *a;
	size_t n = 0;
	int error;

	*out = NULL;
	org->file = dk_strdup(name ? name : "<org>");
	snprintf(org->sha256, sizeof(org->sha256), "%s", sha256 ? sha256 : "");
	org->timezone = rd_str(&r, j, "timezone", 0);
	a = rd_array(&r, j, "users", &n);
	org->nusers = n;
	org->users = dk_calloc(n + 1, sizeof(*org->users));
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(a, i);
		dk_user *u = &org->users[i];
		u->id = rd_str(&r, o, "id", 0);
		u->name = rd_str(&r, o, "name", 1);
		u->email = rd_str(&r, o, "email", 1);
		u->dept = rd_str(&r, o, "dept", 1);
		u->roles = rd_strv(&r, o, "roles", &u->nroles);
		u->line = (int)rd_int(&r, o, "line");
	}
	a = rd_array(&r, j, "depts", &n);
	org->ndepts = n;
	org->depts = dk_calloc(n + 1, sizeof(*org->depts));
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(a, i);
		dk_dept *d = &org->depts[i];
		d->id = rd_str(&r, o, "id", 0);
		d->name = rd_str(&r, o, "name", 1);
		d->head = rd_str(&r, o, "head", 1);
		d->division_leader = rd_str(&r, o, "division_leader", 1);
		d->line = (int)rd_int(&r, o, "line");
	}
	org->holidays = rd_strv(&r, j, "holidays", &org->nholidays);
	if ((error = finish(&r, j, "org directory")) < 0) {
		dk_org_free(org);
		return error;
	}
	*out = org;
	return 0;
}
