/*
 * load.c - builds the compiled dk_flow from a schema-valid document.
 *
 * The schema has already said which elements and attributes exist; here
 * each value is turned into its compiled form (durations, sizes, XPath,
 * assignment) and whatever cannot be turned is reported at its line.
 * References between parts (targets, roles, variables) are checked
 * afterwards by check.c, on the finished model. Arrays are sized before
 * they are filled, so pointers into them (a transition's target, a
 * region's states) stay valid for the life of the flow.
 */
#include "definitions/internal.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	dk_flow *flow;
	const char *file;
	dk_diags *d;
	size_t nstates, nregions; /* filled so far */
} builder;

static void err(builder *b, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void err(builder *b, int line, const char *fmt, ...)
{
	dk_buf m = DK_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	dk_buf_vprintf(&m, fmt, ap);
	va_end(ap);
	dk_diags_add(b->d, b->file, line, DK_DIAG_ERROR, "%s", dk_buf_cstr(&m));
	dk_buf_free(&m);
}

static size_t count_children(const xmlNode *n, const char *name)
{
	size_t k = 0;
	for (const xmlNode *c = n->children; c; c = c->next)
		if (dk_xml_is(c, name))
			k++;
	return k;
}

static int attr_true(const xmlNode *n, const char *name)
{
	char *v = dk_xml_attr(n, name);
	int t = v && strcmp(v, "true") == 0;
	free(v);
	return t;
}

/* The text of an element, whitespace at both ends trimmed. */
static char *text_of(const xmlNode *n)
{
	xmlChar *t = xmlNodeGetContent(n);
	const char *s = t ? (const char *)t : "";
	size_t len;
	char *r;
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	r = dk_strndup(s, len);
	dk_xml_free(t);
	return r;
}

static int parse_duration(builder *b, dk_duration *out, const char *text, int line,
                          const char *what)
{
	if (dk_duration_parse(out, text) == 0)
		return 1;
	err(b, line,
	    "%s=\"%s\", which is not an ISO 8601 duration; write it like P3D (3 days), PT4H "
	    "(4 hours), P1M (1 month) or P1DT12H",
	    what, text);
	return 0;
}

/* "20MB", "512KB", "1GB", "1000" (bytes); KB = 1024 bytes. */
static int parse_size(int64_t *out, const char *s)
{
	const char *p = s;
	int64_t v = 0, mult = 1;
	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p++ - '0');
		if (v > (int64_t)1 << 40)
			return -1;
	}
	if (*p == ' ')
		p++;
	if (strcasecmp(p, "") == 0 || strcasecmp(p, "B") == 0)
		mult = 1;
	else if (strcasecmp(p, "KB") == 0)
		mult = 1024;
	else if (strcasecmp(p, "MB") == 0)
		mult = (int64_t)1024 * 1024;
	else if (strcasecmp(p, "GB") == 0)
		mult = (int64_t)1024 * 1024 * 1024;
	else
		return -1;
	if (v == 0)
		return -1;
	*out = v * mult;
	return 0;
}

static int is_plain_name(const char *s)
{
	if (!*s)
		return 0;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.' &&
		    !((unsigned char)*p & 0x80))
			return 0;
	return !isdigit((unsigned char)*s) && *s != '-' && *s != '.';
}

/* assign="$initiator" | "role:NAME" | "user-id" | XPath giving user ids */
static void parse_assign(builder *b, dk_assign *a, const char *text, int line, const char *what)
{
	memset(a, 0, sizeof(*a));
	if (!text)
		return;
	while (isspace((unsigned char)*text))
		text++;
	if (strcmp(text, "$initiator") == 0) {
		a->kind = DK_ASSIGN_INITIATOR;
		a->text = dk_strdup("initiator");
	} else if (strncmp(text, "role:", 5) == 0) {
		a->kind = DK_ASSIGN_ROLE;
		a->text = dk_strdup(text + 5);
		if (!is_plain_name(a->text))
			err(b, line,
			    "%s 'role:%s' does not name a role; write role:NAME with a role "
			    "declared "
			    "by <role id=\"NAME\">",
			    what, a->text);
	} else if (is_plain_name(text)) {
		a->kind = DK_ASSIGN_USER;
		a->text = dk_strdup(text);
	} else if (!*text) {
		err(b, line,
		    "%s is empty; write $initiator, a user id, role:NAME or an XPath expression",
		    what);
	} else {
		a->kind = DK_ASSIGN_XPATH;
		a->text = dk_strdup(text);
		a->expr = dk_xpath_compile(b->file, line, what, text, b->d);
	}
}

static void build_var(builder *b, dk_var *v, const xmlNode *n)
{
	char *type = dk_xml_attr(n, "type");
	v->line = dk_xml_line(n);
	v->name = dk_xml_attr(n, "name");
	v->required = attr_true(n, "required");
	v->default_value = dk_xml_attr(n, "default");
	if (type && strcmp(type, "number") == 0)
		v->type = DK_VAR_NUMBER;
	else if (type && strcmp(type, "boolean") == 0)
		v->type = DK_VAR_BOOLEAN;
	else if (type && strcmp(type, "date") == 0)
		v->type = DK_VAR_DATE;
	else
		v->type = DK_VAR_STRING;
	if (v->default_value) {
		const char *dv = v->default_value;
		char *end = NULL;
		int64_t t;
		switch (v->type) {
		case DK_VAR_NUMBER:
			strtod(dv, &end);
			if (!*dv || isspace((unsigned char)*dv) || *end)
				err(b, v->line,
				    "default '%s' of number variable '%s' is not a number; write "
				    "it "
				    "like 3 or 2.5",
				    dv, v->name);
			break;
		case DK_VAR_BOOLEAN:
			if (strcmp(dv, "true") != 0 && strcmp(dv, "false") != 0)
				err(b, v->line,
				    "default '%s' of boolean variable '%s' must be true or false",
				    dv, v->name);
			break;
		case DK_VAR_DATE:
			if (dk_time_parse(&t, dv) < 0)
				err(b, v->line,
				    "default '%s' of date variable '%s' is not a date; write it "
				    "like "
				    "2026-11-28 or 2026-11-28T09:30:00Z",
				    dv, v->name);
			break;
		case DK_VAR_STRING: break;
		}
	}
	free(type);
}

static void build_evidence(builder *b, dk_evidence_kind *e, const xmlNode *n)
{
	char *types = dk_xml_attr(n, "types");
	char *size = dk_xml_attr(n, "max-size");
	char *due = dk_xml_attr(n, "due");

	e->line = dk_xml_line(n);
	e->id = dk_xml_attr(n, "id");
	e->title = dk_xml_attr(n, "title");
	if (!e->title)
		e->title = dk_strdup(e->id);
	e->multiple = attr_true(n, "multiple");
	e->types = dk_split_words(types, &e->ntypes);
	for (size_t i = 0; i < e->ntypes; i++) {
		char *t = e->types[i];
		if (t[0] == '.')
			memmove(t, t + 1, strlen(t));
		for (char *p = t; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	if (size && parse_size(&e->max_size, size) < 0)
		err(b, e->line,
		    "max-size '%s' of evidence '%s' is not a size; write a whole number with KB, "
		    "MB "
		    "or GB, e.g. max-size=\"20MB\"",
		    size, e->id);
	if (due) {
		/* A duration counts from state entry; anything else is an XPath date. */
		if (due[0] == 'P' && (isdigit((unsigned char)due[1]) || due[1] == 'T' || !due[1])) {
			char what[160];
			snprintf(what, sizeof(what), "evidence '%s' has due", e->id);
			e->has_due_after = parse_duration(b, &e->due_after, due, e->line, what);
		} else {
			char what[160];
			snprintf(what, sizeof(what), "due of evidence '%s'", e->id);
			e->due_at = dk_xpath_compile(b->file, e->line, what, due, b->d);
		}
	}
	free(types);
	free(size);
	free(due);
}

static void build_transition(builder *b, dk_state *st, dk_transition *t, const xmlNode *n)
{
	char *comment = dk_xml_attr(n, "comment");
	char *on = dk_xml_attr(n, "on");

	t->line = dk_xml_line(n);
	t->id = dk_xml_attr(n, "id");
	t->to = dk_xml_attr(n, "to");
	t->role = dk_xml_attr(n, "role");
	t->comment_required = comment && strcmp(comment, "required") == 0;
	t->on_done = on && strcmp(on, "done") == 0;
	if (!t->id) {
		if (t->on_done) {
			t->id = dk_strdup("done");
		} else {
			err(b, t->line,
			    "transition to '%s' in state '%s' has no id; add id=\"...\" (the name "
			    "approvers choose it by)",
			    t->to ? t->to : "", st->id);
			t->id = dk_strdup("");
		}
	}
	t->nrequires = count_children(n, "requires");
	t->requires = dk_calloc(t->nrequires + 1, sizeof(*t->requires));
	t->nsets = count_children(n, "set");
	t->sets = dk_calloc(t->nsets + 1, sizeof(*t->sets));
	size_t ir = 0, is = 0;
	for (const xmlNode *c = n->children; c; c = c->next) {
		char what[200];
		if (dk_xml_is(c, "requires")) {
			t->requires[ir++] = dk_xml_attr(c, "evidence");
		} else if (dk_xml_is(c, "set")) {
			dk_set *s = &t->sets[is++];
			char *value = dk_xml_attr(c, "value");
			s->line = dk_xml_line(c);
			s->var = dk_xml_attr(c, "var");
			snprintf(what, sizeof(what), "value of <set var=\"%s\">", s->var);
			s->value =
			    dk_xpath_compile(b->file, s->line, what, value ? value : "", b->d);
			free(value);
		} else if (dk_xml_is(c, "guard")) {
			char *g = text_of(c);
			if (t->guard) {
				err(b, dk_xml_line(c),
				    "transition '%s' has a second <guard>; join them with 'and' in "
				    "one <guard>",
				    t->id);
			} else if (!*g) {
				err(b, dk_xml_line(c),
				    "the <guard> of transition '%s' is empty; write a condition "
				    "such "
				    "as $amount &gt; 0, or remove it",
				    t->id);
			} else {
				snprintf(what, sizeof(what), "guard of transition '%s'", t->id);
				t->guard = dk_xpath_compile(b->file, dk_xml_line(c), what, g, b->d);
			}
			free(g);
		}
	}
	free(comment);
	free(on);
}

static void build_deadline(builder *b, dk_state *st, dk_deadline *dl, const xmlNode *n)
{
	char *after = dk_xml_attr(n, "after");
	char *at = dk_xml_attr(n, "at");
	char what[200];

	dl->line = dk_xml_line(n);
	if (after) {
		snprintf(what, sizeof(what), "the deadline of state '%s' has after", st->id);
		dl->has_after = parse_duration(b, &dl->after, after, dl->line, what);
	}
	if (at) {
		snprintf(what, sizeof(what), "deadline at of state '%s'", st->id);
		dl->at = dk_xpath_compile(b->file, dl->line, what, at, b->d);
	}
	for (const xmlNode *c = n->children; c; c = c->next) {
		int line = dk_xml_line(c);
		const char *dup = NULL;
		if (dk_xml_is(c, "remind")) {
			if (dl->has_remind) {
				dup = "remind";
			} else {
				char *every = dk_xml_attr(c, "every");
				snprintf(what, sizeof(what), "the <remind> of state '%s' has every",
				         st->id);
				dl->has_remind = parse_duration(b, &dl->remind_every,
				                                every ? every : "", line, what);
				if (dl->has_remind && dl->remind_every.years == 0 &&
				    dl->remind_every.months == 0 && dl->remind_every.days == 0 &&
				    dl->remind_every.seconds < 60) {
					err(b, line,
					    "remind every '%s' is shorter than a minute; remind at "
					    "most once a minute, e.g. PT1H or P1D",
					    every);
				}
				free(every);
			}
		} else if (dk_xml_is(c, "escalate")) {
			if (dl->has_escalate) {
				dup = "escalate";
			} else {
				char *to = dk_xml_attr(c, "to");
				snprintf(what, sizeof(what), "escalate to of state '%s'", st->id);
				parse_assign(b, &dl->escalate, to, line, what);
				dl->has_escalate = 1;
				free(to);
			}
		} else if (dk_xml_is(c, "fire")) {
			if (dl->fire)
				dup = "fire";
			else
				dl->fire = dk_xml_attr(c, "transition");
		}
		if (dup)
			err(b, line,
			    "a <deadline> holds at most one <%s>; add another <deadline> for a "
			    "second one",
			    dup);
	}
	free(after);
	free(at);
}

static void build_quorum(builder *b, dk_state *st, const char *q, int line)
{
	if (!q)
		return;
	if (strcmp(q, "all") == 0) {
		st->quorum = DK_QUORUM_ALL;
	} else if (strcmp(q, "any") == 0) {
		st->quorum = DK_QUORUM_ANY;
	} else {
		const char *p = q;
		long n = 0;
		while (isdigit((unsigned char)*p) && n < 1000000)
			n = n * 10 + (*p++ - '0');
		if (p == q || *p || n < 1) {
			err(b, line,
			    "quorum '%s' of state '%s' is not all, any or a positive whole number; "
			    "write quorum=\"all\", quorum=\"any\" or e.g. quorum=\"2\"",
			    q, st->id);
			return;
		}
		st->quorum = DK_QUORUM_N;
		st->quorum_n = (int)n;
	}
}

/* Fills the common part of a state or parallel: id, title, assign,
 * transitions and deadlines. */
static void build_state_common(builder *b, dk_state *st, const xmlNode *n)
{
	char *assign = dk_xml_attr(n, "assign");
	char what[200];
	size_t it = 0, id = 0;

	st->line = dk_xml_line(n);
	st->id = dk_xml_attr(n, "id");
	st->title = dk_xml_attr(n, "title");
	st->initial = attr_true(n, "initial");
	snprintf(what, sizeof(what), "assign of state '%s'", st->id);
	parse_assign(b, &st->assign, assign, st->line, what);
	st->ntransitions = count_children(n, "transition");
	st->transitions = dk_calloc(st->ntransitions + 1, sizeof(*st->transitions));
	st->ndeadlines = count_children(n, "deadline");
	st->deadlines = dk_calloc(st->ndeadlines + 1, sizeof(*st->deadlines));
	for (const xmlNode *c = n->children; c; c = c->next) {
		if (dk_xml_is(c, "transition"))
			build_transition(b, st, &st->transitions[it++], c);
		else if (dk_xml_is(c, "deadline"))
			build_deadline(b, st, &st->deadlines[id++], c);
	}
	free(assign);
}

static dk_state *build_state(builder *b, const xmlNode *n, const dk_region *region)
{
	dk_state *st = &b->flow->states[b->nstates++];
	char *quorum = dk_xml_attr(n, "quorum");
	char *freeze = dk_xml_attr(n, "freeze");

	st->kind = DK_STATE_SIMPLE;
	st->region = region;
	build_state_common(b, st, n);
	st->final = attr_true(n, "final");
	build_quorum(b, st, quorum, st->line);
	st->freeze = dk_split_words(freeze, &st->nfreeze);
	free(quorum);
	free(freeze);
	return st;
}

static void build_parallel(builder *b, const xmlNode *n)
{
	dk_state *par = &b->flow->states[b->nstates++];
	size_t ir = 0;

	par->kind = DK_STATE_PARALLEL;
	build_state_common(b, par, n);
	par->freeze = dk_calloc(1, sizeof(*par->freeze));
	par->nregions = count_children(n, "region");
	/* an array of pointers to regions */
	par->regions = dk_calloc(par->nregions + 1,
	                         sizeof(*par->regions)); // NOLINT(bugprone-sizeof-expression)
	for (const xmlNode *c = n->children; c; c = c->next) {
		if (!dk_xml_is(c, "region"))
			continue;
		dk_region *r = &b->flow->regions[b->nregions++];
		par->regions[ir++] = r;
		r->id = dk_xml_attr(c, "id");
		r->line = dk_xml_line(c);
		r->parallel = par;
		r->nstates = count_children(c, "state");
		/* an array of pointers to states */
		r->states = dk_calloc(r->nstates + 1,
		                      sizeof(*r->states)); // NOLINT(bugprone-sizeof-expression)
		size_t is = 0;
		for (const xmlNode *s = c->children; s; s = s->next)
			if (dk_xml_is(s, "state")) {
				const dk_state *st = build_state(b, s, r);
				r->states[is++] = st;
				if (st->initial && !r->initial)
					r->initial = st;
			}
	}
}

static dk_flow *build(const xmlDoc *doc, const char *file, dk_diags *d)
{
	const xmlNode *top = xmlDocGetRootElement(doc);
	dk_flow *f = dk_calloc(1, sizeof(*f));
	builder b = {f, file, d, 0, 0};
	char *version = dk_xml_attr(top, "version");
	size_t ir = 0, iv = 0, ie = 0;

	f->file = dk_strdup(file);
	f->line = dk_xml_line(top);
	f->id = dk_xml_attr(top, "id");
	/* the schema has checked it is a positive integer */
	f->version = version ? (int)strtol(version, NULL, 10) : 0;
	f->timezone = dk_xml_attr(top, "timezone");
	if (f->timezone)
		dk_check_timezone(file, f->line, f->timezone, d);
	free(version);
	for (const xmlNode *c = top->children; c; c = c->next) {
		if (dk_xml_is(c, "title") && !f->title)
			f->title = text_of(c);
		else if (dk_xml_is(c, "role"))
			f->nroles++;
		else if (dk_xml_is(c, "var"))
			f->nvars++;
		else if (dk_xml_is(c, "evidence"))
			f->nevidence++;
		else if (dk_xml_is(c, "state"))
			f->nstates++;
		else if (dk_xml_is(c, "parallel")) {
			f->nstates++;
			for (const xmlNode *r = c->children; r; r = r->next)
				if (dk_xml_is(r, "region")) {
					f->nregions++;
					f->nstates += count_children(r, "state");
				}
		}
	}
	if (!f->title)
		f->title = dk_strdup(f->id);
	f->roles = dk_calloc(f->nroles + 1, sizeof(*f->roles));
	f->role_lines = dk_calloc(f->nroles + 1, sizeof(*f->role_lines));
	f->vars = dk_calloc(f->nvars + 1, sizeof(*f->vars));
	f->evidence = dk_calloc(f->nevidence + 1, sizeof(*f->evidence));
	f->states = dk_calloc(f->nstates + 1, sizeof(*f->states));
	f->regions = dk_calloc(f->nregions + 1, sizeof(*f->regions));
	for (const xmlNode *c = top->children; c; c = c->next) {
		if (dk_xml_is(c, "role")) {
			f->role_lines[ir] = dk_xml_line(c);
			f->roles[ir++] = dk_xml_attr(c, "id");
		} else if (dk_xml_is(c, "var"))
			build_var(&b, &f->vars[iv++], c);
		else if (dk_xml_is(c, "evidence"))
			build_evidence(&b, &f->evidence[ie++], c);
		else if (dk_xml_is(c, "state"))
			build_state(&b, c, NULL);
		else if (dk_xml_is(c, "parallel"))
			build_parallel(&b, c);
	}
	return f;
}

/* schema: the RelaxNG schema to validate against, NULL when the bytes
 * hash to sha256 (already hashed by the caller) */
static int load(dk_flow **out, const char *name, const char *bytes, size_t len, const char *schema,
                const char *sha256, dk_diags *diags)
{
	dk_diags local = DK_DIAGS_INIT;
	dk_diags *d = diags ? diags : &local;
	int before = d->errors;
	xmlDocPtr doc = NULL;
	dk_flow *flow = NULL;

	*out = NULL;
	if (!name)
		name = "<flow>";
	if (dk_xml_load(&doc, name, bytes, len, "flow", DK_FLOW_NS, schema, "flow", d) < 0)
		goto done;
	flow = build(doc, name, d);
	xmlFreeDoc(doc);
	if (sha256)
		memcpy(flow->sha256, sha256, sizeof(flow->sha256));
	else
		dk_sha256_hex(flow->sha256, bytes, len);
	dk_flow_check(flow, d);
	if (d->errors > before) {
		dk_flow_free(flow);
		flow = NULL;
	}
done:
	*out = flow;
	return dk_diags_finish(diags, &local, flow == NULL);
}

int dk_flow_load_buffer(dk_flow **out, const char *name, const char *bytes, size_t len,
                        dk_diags *diags)
{
	return load(out, name, bytes, len, "definitions/flow.rng", NULL, diags);
}

/* Compiling the RelaxNG schema and validating against it is most of what
 * loading a flow costs in a fresh process (0.6 of 0.8 ms), and every
 * docket command that acts loads its instance's flow. */
int dk_flow_load_deployed(dk_flow **out, const char *name, const char *bytes, size_t len,
                          const char *sha256, dk_diags *diags)
{
	dk_diags local = DK_DIAGS_INIT;
	char sha[65];

	*out = NULL;
	dk_sha256_hex(sha, bytes, len);
	if (!sha256 || strcmp(sha, sha256) != 0) {
		dk_diags_add(diags ? diags : &local, name ? name : "<flow>", 0, DK_DIAG_ERROR,
		             "the stored flow was changed after it was deployed (its bytes hash "
		             "to %s, deployed as %s); deploy the flow file again as a new "
		             "version",
		             sha, sha256 ? sha256 : "(none)");
		return dk_diags_finish(diags, &local, 1);
	}
	return load(out, name, bytes, len, NULL, sha, diags);
}

int dk_flow_load_file(dk_flow **out, const char *path, dk_diags *diags)
{
	dk_diags local = DK_DIAGS_INIT;
	char *bytes = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = dk_xml_read(&bytes, &len, path, "flow", diags ? diags : &local);
	if (rc < 0) {
		int code = rc;
		rc = dk_diags_finish(diags, &local, 1);
		return code == DK_ENOTFOUND ? dk_error_set(DK_ENOTFOUND, "%s", dk_error_last())
		                            : rc;
	}
	rc = dk_flow_load_buffer(out, path, bytes, len, diags);
	free(bytes);
	return rc;
}

static void free_assign(dk_assign *a)
{
	free(a->text);
	dk_xpath_free(a->expr);
}

static void free_state(dk_state *st)
{
	free(st->id);
	free(st->title);
	free_assign(&st->assign);
	dk_strv_free(st->freeze, st->nfreeze);
	for (size_t i = 0; i < st->ntransitions; i++) {
		dk_transition *t = &st->transitions[i];
		free(t->id);
		free(t->to);
		free(t->role);
		dk_xpath_free(t->guard);
		dk_strv_free(t->requires, t->nrequires);
		for (size_t k = 0; k < t->nsets; k++) {
			free(t->sets[k].var);
			dk_xpath_free(t->sets[k].value);
		}
		free(t->sets);
	}
	free(st->transitions);
	for (size_t i = 0; i < st->ndeadlines; i++) {
		dk_deadline *dl = &st->deadlines[i];
		dk_xpath_free(dl->at);
		free_assign(&dl->escalate);
		free(dl->fire);
	}
	free(st->deadlines);
	free(st->regions);
}

void dk_flow_free(dk_flow *flow)
{
	if (!flow)
		return;
	free(flow->id);
	free(flow->title);
	free(flow->file);
	free(flow->timezone);
	dk_strv_free(flow->roles, flow->nroles);
	free(flow->role_lines);
	for (size_t i = 0; i < flow->nvars; i++) {
		free(flow->vars[i].name);
		free(flow->vars[i].default_value);
	}
	free(flow->vars);
	for (size_t i = 0; i < flow->nevidence; i++) {
		dk_evidence_kind *e = &flow->evidence[i];
		free(e->id);
		free(e->title);
		dk_strv_free(e->types, e->ntypes);
		dk_xpath_free(e->due_at);
	}
	free(flow->evidence);
	for (size_t i = 0; i < flow->nstates; i++)
		free_state(&flow->states[i]);
	free(flow->states);
	for (size_t i = 0; i < flow->nregions; i++) {
		free(flow->regions[i].id);
		free(flow->regions[i].states);
	}
	free(flow->regions);
	free(flow);
}

/* ---- lookups ----------------------------------------------------------- */

const dk_state *dk_flow_state(const dk_flow *flow, const char *id)
{
	if (!flow || !id)
		return NULL;
	for (size_t i = 0; i < flow->nstates; i++)
		if (flow->states[i].id && flow->states[i].id[0] == id[0] &&
		    strcmp(flow->states[i].id, id) == 0)
			return &flow->states[i];
	return NULL;
}

const dk_transition *dk_state_transition(const dk_state *st, const char *id)
{
	if (!st || !id)
		return NULL;
	for (size_t i = 0; i < st->ntransitions; i++)
		if (strcmp(st->transitions[i].id, id) == 0)
			return &st->transitions[i];
	return NULL;
}

const dk_var *dk_flow_var(const dk_flow *flow, const char *name)
{
	if (!flow || !name)
		return NULL;
	for (size_t i = 0; i < flow->nvars; i++)
		if (strcmp(flow->vars[i].name, name) == 0)
			return &flow->vars[i];
	return NULL;
}

const dk_evidence_kind *dk_flow_evidence(const dk_flow *flow, const char *id)
{
	if (!flow || !id)
		return NULL;
	for (size_t i = 0; i < flow->nevidence; i++)
		if (strcmp(flow->evidence[i].id, id) == 0)
			return &flow->evidence[i];
	return NULL;
}

int dk_flow_has_role(const dk_flow *flow, const char *role)
{
	if (!flow || !role)
		return 0;
	for (size_t i = 0; i < flow->nroles; i++)
		if (strcmp(flow->roles[i], role) == 0)
			return 1;
	return 0;
}
