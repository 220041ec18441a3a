/*
 * check.c - the checks of meaning that a schema cannot express, run on a
 * freshly built flow: unique ids, one initial state, targets that exist
 * and stay in their scope, every state reachable and able to finish,
 * declared roles, variables and evidence kinds, known dk: functions with
 * the right number of arguments. Every problem found is reported (the
 * designer fixes them all in one go); style problems are warnings.
 *
 * Scopes: the top level and each region of a parallel are separate small
 * state machines. A transition moves within its scope; a region leaves
 * only when its parallel does.
 */
#include "definitions/internal.h"

#include "util/buf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	dk_flow *f;
	const char *file;
	dk_diags *d;
	char *var_used;      /* per flow var: read by an expression or set */
	char *evidence_used; /* per evidence kind: required, frozen or counted */
	char *reported;      /* per state: already wrong (duplicate id, extra initial),
	                      * so reachability says nothing more about it */
} checker;

static void err(checker *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void err(checker *c, int line, const char *fmt, ...)
{
	dk_buf m = DK_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	dk_buf_vprintf(&m, fmt, ap);
	va_end(ap);
	dk_diags_add(c->d, c->file, line, DK_DIAG_ERROR, "%s", dk_buf_cstr(&m));
	dk_buf_free(&m);
}

static void warn(checker *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(checker *c, int line, const char *fmt, ...)
{
	dk_buf m = DK_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	dk_buf_vprintf(&m, fmt, ap);
	va_end(ap);
	dk_diags_add(c->d, c->file, line, DK_DIAG_WARNING, "%s", dk_buf_cstr(&m));
	dk_buf_free(&m);
}

/* ---- name lists for messages ------------------------------------------- */

static void list_roles(checker *c, dk_buf *b)
{
	if (c->f->nroles == 0) {
		dk_buf_puts(b, "none declared");
		return;
	}
	for (size_t i = 0; i < c->f->nroles; i++)
		dk_buf_printf(b, "%s%s", i ? ", " : "", c->f->roles[i]);
}

static void list_vars(checker *c, dk_buf *b)
{
	const char *builtins[] = DK_BUILTIN_VARS;
	size_t k = 0;
	for (size_t i = 0; i < c->f->nvars; i++)
		dk_buf_printf(b, "%s%s", k++ ? ", " : "", c->f->vars[i].name);
	for (size_t i = 0; builtins[i]; i++)
		dk_buf_printf(b, "%s%s", k++ ? ", " : "", builtins[i]);
}

static void list_evidence(checker *c, dk_buf *b)
{
	if (c->f->nevidence == 0) {
		dk_buf_puts(b, "none declared");
		return;
	}
	for (size_t i = 0; i < c->f->nevidence; i++)
		dk_buf_printf(b, "%s%s", i ? ", " : "", c->f->evidence[i].id);
}

/* The states of a scope: the top level (region NULL) or a region. */
static void list_scope(checker *c, const dk_region *scope, dk_buf *b)
{
	size_t k = 0;
	for (size_t i = 0; i < c->f->nstates; i++)
		if (c->f->states[i].region == scope)
			dk_buf_printf(b, "%s%s", k++ ? ", " : "", c->f->states[i].id);
}

/* ---- references -------------------------------------------------------- */

static int var_index(checker *c, const char *name)
{
	for (size_t i = 0; i < c->f->nvars; i++)
		if (strcmp(c->f->vars[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int is_builtin_var(const char *name)
{
	const char *builtins[] = DK_BUILTIN_VARS;
	for (size_t i = 0; builtins[i]; i++)
		if (strcmp(builtins[i], name) == 0)
			return 1;
	return 0;
}

static void use_evidence(checker *c, const char *id, int line, const char *where)
{
	for (size_t i = 0; i < c->f->nevidence; i++)
		if (strcmp(c->f->evidence[i].id, id) == 0) {
			c->evidence_used[i] = 1;
			return;
		}
	dk_buf b = DK_BUF_INIT;
	list_evidence(c, &b);
	err(c, line,
	    "%s evidence kind '%s', which is not declared; declare <evidence id=\"%s\"> or fix "
	    "the name (evidence: %s)",
	    where, id, id, dk_buf_cstr(&b));
	dk_buf_free(&b);
}

static void use_role(checker *c, const char *role, int line, const char *where)
{
	if (dk_flow_has_role(c->f, role))
		return;
	dk_buf b = DK_BUF_INIT;
	list_roles(c, &b);
	err(c, line,
	    "%s names role '%s', which is not declared; declare <role id=\"%s\"> or fix the "
	    "name (roles: %s)",
	    where, role, role, dk_buf_cstr(&b));
	dk_buf_free(&b);
}

/* ---- expressions ------------------------------------------------------- */

static const char *const core_fns[] = {
    "last",
    "position",
    "count",
    "id",
    "local-name",
    "namespace-uri",
    "name",
    "string",
    "concat",
    "starts-with",
    "contains",
    "substring-before",
    "substring-after",
    "substring",
    "string-length",
    "normalize-space",
    "translate",
    "boolean",
    "not",
    "true",
    "false",
    "lang",
    "number",
    "sum",
    "floor",
    "ceiling",
    "round",
    NULL,
};

static const char *const node_tests[] = {"node", "text", "comment", "processing-instruction", NULL};

static int in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

static int name_start(unsigned char ch)
{
	return isalpha(ch) || ch == '_' || ch >= 0x80;
}

static int name_char(unsigned char ch)
{
	return isalnum(ch) || ch == '_' || ch == '-' || ch == '.' || ch >= 0x80;
}

/* After the '(' at p: the number of arguments, and the first one when it
 * is a lone string literal (copied into lit). */
static int count_args(const char *p, char *lit, size_t litlen)
{
	int depth = 1, args = 0, any = 0;
	const char *first_start = NULL, *first_end = NULL;
	lit[0] = '\0';
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	first_start = p;
	for (; *p && depth > 0; p++) {
		if (*p == '\'' || *p == '"') {
			char q = *p++;
			while (*p && *p != q)
				p++;
			if (!*p)
				break;
			any = 1;
			continue;
		}
		if (*p == '(' || *p == '[') {
			depth++;
		} else if (*p == ')' || *p == ']') {
			depth--;
			if (depth == 0) {
				if (!first_end)
					first_end = p;
				break;
			}
		} else if (*p == ',' && depth == 1) {
			args++;
			if (!first_end)
				first_end = p;
		} else if (*p != ' ' && *p != '\t' && *p != '\n') {
			any = 1;
		}
	}
	if (any)
		args++;
	if (first_end) {
		while (first_end > first_start && isspace((unsigned char)first_end[-1]))
			first_end--;
		size_t n = (size_t)(first_end - first_start);
		if (n >= 2 && (first_start[0] == '\'' || first_start[0] == '"') &&
		    first_start[n - 1] == first_start[0] && n - 2 < litlen &&
		    !memchr(first_start + 1, first_start[0], n - 2)) {
			memcpy(lit, first_start + 1, n - 2);
			lit[n - 2] = '\0';
		}
	}
	return args;
}

typedef struct {
	int vars, dk_calls, names, context_calls;
} scan_result;

/* Scans an expression's text lexically (string literals skipped): every
 * $name must be declared, every function call known with the right number
 * of arguments, evidence kinds named by literal must exist. */
static scan_result scan_expr(checker *c, const dk_xpath *x, const char *what)
{
	scan_result r = {0, 0, 0, 0};
	const char *s = x->text;
	const char *p = s;
	while (*p) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '\'' || ch == '"') {
			p++;
			while (*p && *p != (char)ch)
				p++;
			if (*p)
				p++;
			continue;
		}
		if (isdigit(ch) || (ch == '.' && isdigit((unsigned char)p[1]))) {
			while (isdigit((unsigned char)*p) || *p == '.')
				p++;
			continue;
		}
		if (ch == '$') {
			const char *start = ++p;
			while (name_char((unsigned char)*p) || *p == ':')
				p++;
			char *name = dk_strndup(start, (size_t)(p - start));
			r.vars++;
			int vi = var_index(c, name);
			if (vi >= 0) {
				c->var_used[vi] = 1;
			} else if (!is_builtin_var(name)) {
				dk_buf b = DK_BUF_INIT;
				list_vars(c, &b);
				err(c, x->line,
				    "%s uses variable '$%s', which is not declared; declare <var "
				    "name=\"%s\" type=\"...\"> or fix the name (variables: %s)",
				    what, name, name, dk_buf_cstr(&b));
				dk_buf_free(&b);
			}
			free(name);
			continue;
		}
		if (!name_start(ch)) {
			p++;
			continue;
		}
		const char *start = p, *colon = NULL;
		while (name_char((unsigned char)*p))
			p++;
		if (*p == ':' && p[1] != ':' && name_start((unsigned char)p[1])) {
			colon = p++;
			while (name_char((unsigned char)*p))
				p++;
		}
		const char *end = p;
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == ':' && p[1] == ':') { /* an axis: child::, ancestor:: */
			p += 2;
			continue;
		}
		char *prefix = colon ? dk_strndup(start, (size_t)(colon - start)) : NULL;
		char *local = colon ? dk_strndup(colon + 1, (size_t)(end - colon - 1))
		                    : dk_strndup(start, (size_t)(end - start));
		if (*p != '(') {
			if (!prefix && (strcmp(local, "and") == 0 || strcmp(local, "or") == 0 ||
			                strcmp(local, "div") == 0 || strcmp(local, "mod") == 0))
				;
			else
				r.names++;
			free(prefix);
			free(local);
			continue;
		}
		char lit[256];
		int nargs = count_args(p + 1, lit, sizeof(lit));
		if (prefix && strcmp(prefix, "dk") == 0) {
			const dk_fn_info *fn = dk_fn_lookup(local);
			r.dk_calls++;
			if (!fn) {
				err(c, x->line,
				    "%s calls dk:%s(), which docket does not know; see the dk: "
				    "function "
				    "table in the designer's guide (e.g. dk:head-of, dk:members, "
				    "dk:now)",
				    what, local);
			} else if (nargs < fn->min_args || nargs > fn->max_args) {
				char want[64];
				if (fn->min_args == fn->max_args)
					snprintf(want, sizeof(want), "%d", fn->min_args);
				else
					snprintf(want, sizeof(want), "%d to %d", fn->min_args,
					         fn->max_args);
				err(c, x->line,
				    "%s calls dk:%s() with %d argument%s, but it takes %s: dk:%s",
				    what, local, nargs, nargs == 1 ? "" : "s", want, fn->doc);
			} else if (lit[0] &&
			           (strcmp(local, "late") == 0 || strcmp(local, "days-late") == 0 ||
			            strcmp(local, "count") == 0 ||
			            strcmp(local, "uploaded-at") == 0)) {
				char where[300];
				snprintf(where, sizeof(where), "%s asks dk:%s() about", what,
				         local);
				use_evidence(c, lit, x->line, where);
			}
		} else if (prefix && dk_fn_lookup(local)) {
			err(c, x->line,
			    "%s calls %s:%s(), but docket's functions use the prefix dk: "
			    "(namespace "
			    "%s); write dk:%s(...)",
			    what, prefix, local, DK_FN_NS, local);
		} else if (prefix) {
			err(c, x->line,
			    "%s calls %s:%s(), which docket does not know; docket's functions use "
			    "the "
			    "prefix dk: and XPath 1.0's have no prefix (see the function table in "
			    "the "
			    "designer's guide)",
			    what, prefix, local);
		} else if (in_list(node_tests, local)) {
			r.names++;
		} else if (in_list(core_fns, local)) {
			if (nargs == 0 && strcmp(local, "true") != 0 && strcmp(local, "false") != 0)
				r.context_calls++;
			if (strcmp(local, "last") == 0 || strcmp(local, "position") == 0 ||
			    strcmp(local, "id") == 0 || strcmp(local, "lang") == 0 ||
			    strcmp(local, "count") == 0 || strcmp(local, "sum") == 0)
				r.context_calls++;
		} else if (dk_fn_lookup(local)) {
			err(c, x->line, "%s calls %s() without its prefix; write dk:%s(...)", what,
			    local, local);
		} else {
			err(c, x->line,
			    "%s calls %s(), which is neither an XPath function nor a dk: function; "
			    "check the spelling (see the function table in the designer's guide)",
			    what, local);
		}
		free(prefix);
		free(local);
	}
	return r;
}

/* ---- structure --------------------------------------------------------- */

static void check_duplicates(checker *c)
{
	dk_flow *f = c->f;
	for (size_t i = 0; i < f->nroles; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(f->roles[i], f->roles[j]) == 0) {
				err(c, f->role_lines[i],
				    "role '%s' is declared twice (first on line %d); remove one",
				    f->roles[i], f->role_lines[j]);
				break;
			}
	for (size_t i = 0; i < f->nvars; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(f->vars[i].name, f->vars[j].name) == 0) {
				err(c, f->vars[i].line,
				    "variable '%s' is declared twice (first on line %d); remove "
				    "one or "
				    "rename it",
				    f->vars[i].name, f->vars[j].line);
				break;
			}
		if (is_builtin_var(f->vars[i].name))
			err(c, f->vars[i].line,
			    "variable '%s' is built in (initiator, actor, state, instance); choose "
			    "another name",
			    f->vars[i].name);
	}
	for (size_t i = 0; i < f->nevidence; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(f->evidence[i].id, f->evidence[j].id) == 0) {
				err(c, f->evidence[i].line,
				    "evidence kind '%s' is declared twice (first on line %d); "
				    "remove "
				    "one or rename it",
				    f->evidence[i].id, f->evidence[j].line);
				break;
			}
	for (size_t i = 0; i < f->nstates; i++) {
		const dk_state *st = &f->states[i];
		for (size_t j = 0; j < i; j++)
			if (strcmp(st->id, f->states[j].id) == 0) {
				err(c, st->line,
				    "state id '%s' is used twice (first on line %d); state ids are "
				    "unique across the whole flow, rename one",
				    st->id, f->states[j].line);
				c->reported[i] = 1;
				break;
			}
		for (size_t k = 0; k < st->ntransitions; k++)
			for (size_t j = 0; j < k; j++)
				if (*st->transitions[k].id &&
				    strcmp(st->transitions[k].id, st->transitions[j].id) == 0) {
					err(c, st->transitions[k].line,
					    "state '%s' has two transitions with id '%s' (first on "
					    "line "
					    "%d); rename one",
					    st->id, st->transitions[k].id, st->transitions[j].line);
					break;
				}
	}
	for (size_t i = 0; i < f->nregions; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(f->regions[i].id, f->regions[j].id) == 0) {
				err(c, f->regions[i].line,
				    "region id '%s' is used twice (first on line %d); rename one",
				    f->regions[i].id, f->regions[j].line);
				break;
			}
}

static void check_initials(checker *c)
{
	dk_flow *f = c->f;
	const dk_state *first = NULL;
	for (size_t i = 0; i < f->nstates; i++) {
		const dk_state *st = &f->states[i];
		if (st->region || !st->initial)
			continue;
		if (!first) {
			first = st;
			continue;
		}
		c->reported[i] = 1;
		err(c, st->line,
		    "state '%s' is marked initial, but state '%s' (line %d) already is; a "
		    "flow "
		    "starts in exactly one state, remove one initial=\"true\"",
		    st->id, first->id, first->line);
	}
	if (!first)
		err(c, f->line,
		    "the flow has no initial state; mark the state it starts in with "
		    "initial=\"true\"");
	f->initial = first;

	for (size_t i = 0; i < f->nregions; i++) {
		dk_region *r = &f->regions[i];
		const dk_state *ini = NULL;
		int finals = 0;
		for (size_t k = 0; k < r->nstates; k++) {
			const dk_state *st = r->states[k];
			if (st->final)
				finals++;
			if (!st->initial)
				continue;
			if (!ini) {
				ini = st;
				continue;
			}
			c->reported[st - f->states] = 1;
			err(c, st->line,
			    "state '%s' is marked initial, but state '%s' (line %d) "
			    "already is "
			    "in region '%s'; a region starts in exactly one state",
			    st->id, ini->id, ini->line, r->id);
		}
		r->initial = ini;
		if (!ini)
			err(c, r->line,
			    "region '%s' has no initial state; mark the state it starts in with "
			    "initial=\"true\"",
			    r->id);
		if (finals == 0)
			err(c, r->line,
			    "region '%s' has no final state, so its parallel can never be done; "
			    "mark "
			    "the state where its work ends with final=\"true\"",
			    r->id);
	}
}

static void check_transitions(checker *c)
{
	dk_flow *f = c->f;
	for (size_t i = 0; i < f->nstates; i++) {
		dk_state *st = &f->states[i];
		int has_done = 0;
		if (st->kind == DK_STATE_PARALLEL && st->nregions == 0)
			err(c, st->line,
			    "parallel '%s' has no regions; add <region id=\"...\"> elements "
			    "holding "
			    "states, or make it a plain <state>",
			    st->id);
		for (size_t k = 0; k < st->ntransitions; k++) {
			dk_transition *t = &st->transitions[k];
			const dk_state *target = dk_flow_state(f, t->to);
			if (t->on_done) {
				has_done = 1;
				if (st->kind != DK_STATE_PARALLEL)
					err(c, t->line,
					    "transition '%s' has on=\"done\", but state '%s' is "
					    "not a "
					    "parallel; on=\"done\" belongs on a <parallel>, remove "
					    "it here",
					    t->id, st->id);
			}
			if (!target) {
				dk_buf b = DK_BUF_INIT;
				list_scope(c, st->region, &b);
				err(c, t->line,
				    "transition '%s' goes to unknown state '%s'; declare <state "
				    "id=\"%s\"> or fix the 'to' attribute (states: %s)",
				    t->id, t->to, t->to, dk_buf_cstr(&b));
				dk_buf_free(&b);
			} else if (target->region != st->region) {
				if (st->region)
					err(c, t->line,
					    "transition '%s' in region '%s' goes to state '%s' "
					    "outside "
					    "it; a region's states move only among themselves "
					    "(leave "
					    "the parallel with a transition on the <parallel>)",
					    t->id, st->region->id, t->to);
				else
					err(c, t->line,
					    "transition '%s' goes to state '%s' inside region "
					    "'%s'; go "
					    "to the parallel '%s' instead, its regions start in "
					    "their "
					    "initial states",
					    t->id, t->to, target->region->id,
					    target->region->parallel->id);
			} else {
				t->target = target;
			}
			{
				char where[300];
				snprintf(where, sizeof(where), "transition '%s'", t->id);
				if (t->role)
					use_role(c, t->role, t->line, where);
				snprintf(where, sizeof(where), "transition '%s' requires", t->id);
				for (size_t r = 0; r < t->nrequires; r++)
					use_evidence(c, t->requires[r], t -> line, where);
			}
			for (size_t s = 0; s < t->nsets; s++) {
				const char *var = t->sets[s].var;
				int vi = var_index(c, var);
				if (vi >= 0) {
					c->var_used[vi] = 1;
				} else if (is_builtin_var(var)) {
					err(c, t->sets[s].line,
					    "<set var=\"%s\"> changes a built-in variable; set a "
					    "variable "
					    "of the flow's own",
					    var);
				} else {
					dk_buf b = DK_BUF_INIT;
					for (size_t v = 0; v < f->nvars; v++)
						dk_buf_printf(&b, "%s%s", v ? ", " : "",
						              f->vars[v].name);
					err(c, t->sets[s].line,
					    "<set> names variable '%s', which is not declared; "
					    "declare "
					    "<var name=\"%s\" type=\"...\"> or fix the name "
					    "(variables: "
					    "%s)",
					    var, var, b.len ? dk_buf_cstr(&b) : "none declared");
					dk_buf_free(&b);
				}
			}
		}
		if (st->final && st->ntransitions > 0)
			warn(
			    c, st->transitions[0].line,
			    "final state '%s' has transitions, which are ignored (an instance ends "
			    "there); remove them or remove final=\"true\"",
			    st->id);
		if (st->kind == DK_STATE_PARALLEL && st->nregions > 0 && !has_done)
			warn(c, st->line,
			     "parallel '%s' has no <transition on=\"done\" to=\"...\">, so "
			     "finishing "
			     "all its regions does not move the flow on; add one",
			     st->id);
		char where[300];
		snprintf(where, sizeof(where), "the assign of state '%s'", st->id);
		if (st->assign.kind == DK_ASSIGN_ROLE)
			use_role(c, st->assign.text, st->line, where);
		snprintf(where, sizeof(where), "state '%s' freezes", st->id);
		for (size_t r = 0; r < st->nfreeze; r++)
			use_evidence(c, st->freeze[r], st->line, where);
		snprintf(where, sizeof(where), "the escalate of state '%s'", st->id);
		for (size_t k = 0; k < st->ndeadlines; k++) {
			dk_deadline *dl = &st->deadlines[k];
			if (dl->has_escalate && dl->escalate.kind == DK_ASSIGN_ROLE)
				use_role(c, dl->escalate.text, dl->line, where);
			if (dl->fire) {
				dl->fire_transition = dk_state_transition(st, dl->fire);
				if (!dl->fire_transition) {
					dk_buf b = DK_BUF_INIT;
					for (size_t t = 0; t < st->ntransitions; t++)
						dk_buf_printf(&b, "%s%s", t ? ", " : "",
						              st->transitions[t].id);
					err(c, dl->line,
					    "<fire transition=\"%s\"> names no transition of state "
					    "'%s'; "
					    "name one of its own transitions (%s)",
					    dl->fire, st->id,
					    b.len ? dk_buf_cstr(&b) : "it has none");
					dk_buf_free(&b);
				}
			}
			if (st->final)
				warn(
				    c, dl->line,
				    "final state '%s' has a deadline, which never fires; remove it",
				    st->id);
		}
	}
}

/* Reachability inside one scope: forward from its initial state, then
 * backward from its final states. */
static void check_reach(checker *c, const dk_region *scope, const dk_state *initial)
{
	dk_flow *f = c->f;
	size_t n = f->nstates;
	char *fwd = dk_calloc(n + 1, 1), *back = dk_calloc(n + 1, 1);
	int changed;

	int finals = 0;
	if (!initial)
		goto cleanup;
	/* A target that is unknown or out of scope is reported already; what
	 * it would have reached is unknown, so say nothing about reachability
	 * until it is fixed. */
	for (size_t i = 0; i < n; i++) {
		if (f->states[i].region != scope)
			continue;
		finals += f->states[i].final;
		for (size_t k = 0; k < f->states[i].ntransitions; k++)
			if (!f->states[i].transitions[k].target)
				goto cleanup;
	}
	if (!scope && finals == 0)
		err(c, f->line,
		    "the flow has no final state, so no instance can ever finish; mark the state "
		    "where it ends with final=\"true\"");
	fwd[initial - f->states] = 1;
	do {
		changed = 0;
		for (size_t i = 0; i < n; i++) {
			if (!fwd[i] || f->states[i].final)
				continue;
			for (size_t k = 0; k < f->states[i].ntransitions; k++) {
				const dk_state *t = f->states[i].transitions[k].target;
				if (t && !fwd[t - f->states]) {
					fwd[t - f->states] = 1;
					changed = 1;
				}
			}
		}
	} while (changed);
	for (size_t i = 0; i < n; i++)
		if (f->states[i].region == scope && f->states[i].final)
			back[i] = 1;
	do {
		changed = 0;
		for (size_t i = 0; i < n; i++) {
			if (back[i] || f->states[i].region != scope)
				continue;
			for (size_t k = 0; k < f->states[i].ntransitions; k++) {
				const dk_state *t = f->states[i].transitions[k].target;
				if (t && back[t - f->states]) {
					back[i] = 1;
					changed = 1;
					break;
				}
			}
		}
	} while (changed);
	for (size_t i = 0; i < n; i++) {
		const dk_state *st = &f->states[i];
		if (st->region != scope || c->reported[i])
			continue;
		if (!fwd[i]) {
			err(c, st->line,
			    "state '%s' cannot be reached from the initial state '%s'; add a "
			    "transition to it or remove it",
			    st->id, initial->id);
			continue;
		}
		if (back[i] || finals == 0)
			continue;
		if (st->ntransitions == 0)
			err(c, st->line,
			    "state '%s' is not final and has no transitions, so an instance would "
			    "stay there for ever; add a transition or mark it final=\"true\"",
			    st->id);
		else
			err(c, st->line,
			    "no final state can be reached from state '%s'; add a transition that "
			    "leads towards a final state",
			    st->id);
	}
cleanup:
	free(fwd);
	free(back);
}

/* ---- expressions everywhere -------------------------------------------- */

static void check_expr(checker *c, const dk_xpath *x, const char *what)
{
	if (x)
		scan_expr(c, x, what);
}

static void check_expressions(checker *c)
{
	dk_flow *f = c->f;
	char what[300];
	for (size_t i = 0; i < f->nevidence; i++) {
		snprintf(what, sizeof(what), "due of evidence '%s'", f->evidence[i].id);
		check_expr(c, f->evidence[i].due_at, what);
	}
	for (size_t i = 0; i < f->nstates; i++) {
		const dk_state *st = &f->states[i];
		snprintf(what, sizeof(what), "assign of state '%s'", st->id);
		check_expr(c, st->assign.expr, what);
		for (size_t k = 0; k < st->ntransitions; k++) {
			const dk_transition *t = &st->transitions[k];
			if (t->guard) {
				snprintf(what, sizeof(what), "guard of transition '%s'", t->id);
				scan_result r = scan_expr(c, t->guard, what);
				if (r.vars == 0 && r.dk_calls == 0 && r.names == 0 &&
				    r.context_calls == 0)
					warn(c, t->guard->line,
					     "the guard of transition '%s' is constant ('%s'): it "
					     "always "
					     "gives the same answer; compare a variable or remove "
					     "it",
					     t->id, t->guard->text);
			}
			for (size_t s = 0; s < t->nsets; s++) {
				snprintf(what, sizeof(what), "value of <set var=\"%s\">",
				         t->sets[s].var);
				check_expr(c, t->sets[s].value, what);
			}
		}
		for (size_t k = 0; k < st->ndeadlines; k++) {
			snprintf(what, sizeof(what), "deadline at of state '%s'", st->id);
			check_expr(c, st->deadlines[k].at, what);
			snprintf(what, sizeof(what), "escalate to of state '%s'", st->id);
			check_expr(c, st->deadlines[k].escalate.expr, what);
		}
	}
}

static void check_unused(checker *c)
{
	dk_flow *f = c->f;
	for (size_t i = 0; i < f->nvars; i++)
		if (!c->var_used[i] && !f->vars[i].required && !f->vars[i].default_value &&
		    var_index(c, f->vars[i].name) == (int)i)
			warn(c, f->vars[i].line,
			     "variable '%s' is declared but no expression reads it and no <set> "
			     "changes it; use it or remove it",
			     f->vars[i].name);
	for (size_t i = 0; i < f->nevidence; i++)
		if (!c->evidence_used[i] &&
		    dk_flow_evidence(f, f->evidence[i].id) == &f->evidence[i])
			warn(c, f->evidence[i].line,
			     "evidence kind '%s' is never required, frozen or counted; add "
			     "<requires "
			     "evidence=\"%s\"/> to a transition or remove it",
			     f->evidence[i].id, f->evidence[i].id);
}

void dk_flow_check(dk_flow *flow, dk_diags *d)
{
	checker c = {flow, flow->file, d, NULL, NULL, NULL};
	c.var_used = dk_calloc(flow->nvars + 1, 1);
	c.evidence_used = dk_calloc(flow->nevidence + 1, 1);
	c.reported = dk_calloc(flow->nstates + 1, 1);

	check_duplicates(&c);
	check_initials(&c);
	check_transitions(&c);
	check_reach(&c, NULL, flow->initial);
	for (size_t i = 0; i < flow->nregions; i++)
		check_reach(&c, &flow->regions[i], flow->regions[i].initial);
	check_expressions(&c);
	check_unused(&c);
	free(c.var_used);
	free(c.evidence_used);
	free(c.reported);
}
