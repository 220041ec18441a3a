/*
 * xpath.c - evaluating the flow's compiled XPath, and the dk: functions.
 *
 * Evaluations run on an xmlXPathContext with no document (kept per thread,
 * see ctx_take): guards, set values, assignments and deadline dates only
 * use variables and functions. The variable lookup gives the instance's variables typed
 * (number -> XPath number, boolean -> boolean, string and date -> string;
 * a declared variable that has no value yet is NaN, false or "") plus the
 * built-ins $initiator, $actor, $state and $instance. The function lookup
 * answers for namespace urn:docket:fn (prefix dk) with the functions of
 * definitions' dk_fn_table; the table below must cover that one, which a
 * unit test checks.
 *
 * Dates going in are strings dk_time_parse accepts (a bare date is
 * midnight in the zone described below); dates coming out are
 * "YYYY-MM-DDTHH:MM:SSZ" (UTC), so they compare and sort as strings and
 * feed back into other functions. Calendar functions work on the local
 * calendar of the flow's (else the org's) time zone: "day-of-month(8)" is
 * the 8th at 00:00 there (as the designer's guide in definitions/fn.c
 * says), "end-of-month()" the last second of the month.
 */
#include "engine/internal.h"

#include <libxml/xpathInternals.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	dk_run *run;
	const char *state;
	dk_buf msg; /* our own message when a dk: function fails */
	dk_buf lib; /* libxml2's message */
} eval_ctx;

static eval_ctx *ctx_of(xmlXPathParserContextPtr ctxt)
{
	return (eval_ctx *)ctxt->context->funcLookupData;
}

static void fail(xmlXPathParserContextPtr ctxt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(xmlXPathParserContextPtr ctxt, const char *fmt, ...)
{
	eval_ctx *ev = ctx_of(ctxt);
	va_list ap;
	if (ev->msg.len == 0) {
		va_start(ap, fmt);
		dk_buf_vprintf(&ev->msg, fmt, ap);
		va_end(ap);
	}
	xmlXPathErr(ctxt, XPATH_EXPR_ERROR);
}

static void push_string(xmlXPathParserContextPtr ctxt, const char *s)
{
	valuePush(ctxt, xmlXPathNewString((const xmlChar *)(s ? s : "")));
}

static void push_time(xmlXPathParserContextPtr ctxt, int64_t t)
{
	char s[DK_TIME_STRLEN];
	dk_time_format(s, t);
	push_string(ctxt, s);
}

/* Pops a string argument; the caller frees with dk_xml_free. */
static char *pop_str(xmlXPathParserContextPtr ctxt)
{
	return (char *)xmlXPathPopString(ctxt);
}

static int pop_time(xmlXPathParserContextPtr ctxt, const char *fn, int64_t *out)
{
	char *s = pop_str(ctxt);
	int err = dk__parse_time(out, dk__zone(ctx_of(ctxt)->run), s ? s : "");
	if (err < 0)
		fail(ctxt, "dk:%s: '%s' is not a date; pass an ISO 8601 date like 2026-11-28", fn,
		     s ? s : "");
	dk_xml_free(s);
	return err;
}

static const dk_user *user_of(xmlXPathParserContextPtr ctxt)
{
	char *id = pop_str(ctxt);
	const dk_org *org = ctx_of(ctxt)->run->env->org;
	const dk_user *u = org && id ? dk_org_user(org, id) : NULL;
	dk_xml_free(id);
	return u;
}

static const dk_dept *dept_of_user(xmlXPathParserContextPtr ctxt, const dk_user *u)
{
	const dk_org *org = ctx_of(ctxt)->run->env->org;
	return org && u && u->dept ? dk_org_dept(org, u->dept) : NULL;
}

/* ---- the org ----------------------------------------------------------- */

static void fn_head_of(xmlXPathParserContextPtr ctxt, int nargs)
{
	const dk_dept *d = dept_of_user(ctxt, user_of(ctxt));
	push_string(ctxt, d ? d->head : "");
}

static void fn_dept_of(xmlXPathParserContextPtr ctxt, int nargs)
{
	const dk_user *u = user_of(ctxt);
	push_string(ctxt, u ? u->dept : "");
}

static void fn_division_leader_of(xmlXPathParserContextPtr ctxt, int nargs)
{
	const dk_dept *d = dept_of_user(ctxt, user_of(ctxt));
	push_string(ctxt, d ? d->division_leader : "");
}

static void fn_name_of(xmlXPathParserContextPtr ctxt, int nargs)
{
	const dk_user *u = user_of(ctxt);
	push_string(ctxt, u ? (u->name ? u->name : u->id) : "");
}

/* members(role [, dept]): user ids separated by spaces, in org order. */
static void fn_members(xmlXPathParserContextPtr ctxt, int nargs)
{
	char *dept = nargs > 1 ? pop_str(ctxt) : NULL;
	char *role = pop_str(ctxt);
	const dk_org *org = ctx_of(ctxt)->run->env->org;
	dk_buf b = DK_BUF_INIT;
	for (size_t i = 0; org && i < org->nusers; i++) {
		const dk_user *u = &org->users[i];
		if (!dk_user_has_role(u, role))
			continue;
		if (dept && (!u->dept || strcmp(u->dept, dept) != 0))
			continue;
		dk_buf_printf(&b, "%s%s", b.len ? " " : "", u->id);
	}
	push_string(ctxt, dk_buf_cstr(&b));
	dk_buf_free(&b);
	dk_xml_free(dept);
	dk_xml_free(role);
}

/* ---- the clock and the calendar ---------------------------------------- */

static void fn_now(xmlXPathParserContextPtr ctxt, int nargs)
{
	push_time(ctxt, ctx_of(ctxt)->run->env->now);
}

static void fn_entered_at(xmlXPathParserContextPtr ctxt, int nargs)
{
	eval_ctx *ev = ctx_of(ctxt);
	const dk_snap_state *st = ev->state ? dk_snapshot_state(ev->run->snap, ev->state) : NULL;
	if (st && st->entered_at)
		push_time(ctxt, st->entered_at);
	else
		push_string(ctxt, "");
}

static int months_arg(xmlXPathParserContextPtr ctxt, const char *fn, int *out)
{
	double k = xmlXPathPopNumber(ctxt);
	if (k != k || k != floor(k) || fabs(k) > 1200) {
		fail(ctxt, "dk:%s: months-ahead must be a whole number", fn);
		return -1;
	}
	*out = (int)k;
	return 0;
}

static int days_in(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m];
}

/* Day `day` (0: the last day) of the month `ahead` months from now's, at
 * 00:00 local, or at 23:59:59 when end_of_day; day is clamped to the
 * month's length (day-of-month(31) in February is the 28th or 29th). */
static void day_in_month(xmlXPathParserContextPtr ctxt, int day, int ahead, int end_of_day)
{
	const char *zone = dk__zone(ctx_of(ctxt)->run);
	struct tm tm;
	dk__local(&tm, zone, ctx_of(ctxt)->run->env->now);
	int months = tm.tm_year * 12 + tm.tm_mon + ahead;
	struct tm t2;
	memset(&t2, 0, sizeof(t2));
	t2.tm_year = months / 12;
	t2.tm_mon = months % 12;
	int dim = days_in(t2.tm_year + 1900, t2.tm_mon);
	t2.tm_mday = day < 1 ? 1 : day > dim ? dim : day;
	if (day == 0)
		t2.tm_mday = dim;
	if (end_of_day) {
		t2.tm_hour = 23;
		t2.tm_min = 59;
		t2.tm_sec = 59;
	}
	push_time(ctxt, dk__from_local(zone, &t2));
}

static void fn_day_of_month(xmlXPathParserContextPtr ctxt, int nargs)
{
	int ahead = 0;
	if (nargs > 1 && months_arg(ctxt, "day-of-month", &ahead) < 0)
		return;
	double n = xmlXPathPopNumber(ctxt);
	if (n != n || n != floor(n) || n < 1 || n > 31) {
		fail(ctxt, "dk:day-of-month: the day must be a whole number from 1 to 31");
		return;
	}
	day_in_month(ctxt, (int)n, ahead, 0);
}

static void fn_end_of_month(xmlXPathParserContextPtr ctxt, int nargs)
{
	int ahead = 0;
	if (nargs > 0 && months_arg(ctxt, "end-of-month", &ahead) < 0)
		return;
	day_in_month(ctxt, 0, ahead, 1);
}

/* working-days(n [, from]): n working days (not Saturday, Sunday or an org
 * holiday) after from (default now), at the same local time of day. */
static void fn_working_days(xmlXPathParserContextPtr ctxt, int nargs)
{
	dk_run *run = ctx_of(ctxt)->run;
	const char *zone = dk__zone(run);
	int64_t from = run->env->now;
	if (nargs > 1 && pop_time(ctxt, "working-days", &from) < 0)
		return;
	double n = xmlXPathPopNumber(ctxt);
	if (n != n || n != floor(n) || n < 0 || n > 3660) {
		fail(ctxt, "dk:working-days: the count must be a whole number from 0 to 3660");
		return;
	}
	struct tm tm;
	dk__local(&tm, zone, from);
	for (int left = (int)n; left > 0;) {
		tm.tm_mday++;
		tm.tm_isdst = -1;
		timegm(&tm); /* normalises the fields and sets tm_wday */
		if (tm.tm_wday == 0 || tm.tm_wday == 6 || dk__is_holiday(run, &tm))
			continue;
		left--;
	}
	push_time(ctxt, dk__from_local(zone, &tm));
}

/* Monday 00:00 local of the week after now's. */
static void fn_start_of_next_week(xmlXPathParserContextPtr ctxt, int nargs)
{
	dk_run *run = ctx_of(ctxt)->run;
	const char *zone = dk__zone(run);
	struct tm tm;
	dk__local(&tm, zone, run->env->now);
	int to_monday = (8 - tm.tm_wday) % 7;
	tm.tm_mday += to_monday ? to_monday : 7;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	timegm(&tm);
	push_time(ctxt, dk__from_local(zone, &tm));
}

static void fn_add(xmlXPathParserContextPtr ctxt, int nargs)
{
	char *ds = pop_str(ctxt);
	dk_duration d;
	int64_t t;
	if (dk_duration_parse(&d, ds ? ds : "") < 0) {
		fail(ctxt, "dk:add: '%s' is not an ISO 8601 duration; write it like P3D or PT4H",
		     ds ? ds : "");
		dk_xml_free(ds);
		return;
	}
	dk_xml_free(ds);
	if (pop_time(ctxt, "add", &t) < 0)
		return;
	push_time(ctxt, dk__add_local(dk__zone(ctx_of(ctxt)->run), t, &d));
}

static void fn_days_between(xmlXPathParserContextPtr ctxt, int nargs)
{
	int64_t a, b;
	if (pop_time(ctxt, "days-between", &b) < 0 || pop_time(ctxt, "days-between", &a) < 0)
		return;
	xmlXPathReturnNumber(ctxt, (double)dk__days_between(dk__zone(ctx_of(ctxt)->run), a, b));
}

/* ---- evidence ---------------------------------------------------------- */

static const dk_evidence_kind *kind_arg(xmlXPathParserContextPtr ctxt, const char *fn)
{
	char *id = pop_str(ctxt);
	const dk_evidence_kind *k = dk_flow_evidence(ctx_of(ctxt)->run->flow, id ? id : "");
	if (!k)
		fail(ctxt, "dk:%s: the flow declares no evidence '%s'", fn, id ? id : "");
	dk_xml_free(id);
	return k;
}

/* How many local calendar days the latest upload of k came after its due
 * (or now is after it, when nothing came yet); 0 when on time or no due. */
static int lateness(xmlXPathParserContextPtr ctxt, const char *fn, int64_t *days, int *late)
{
	eval_ctx *ev = ctx_of(ctxt);
	const dk_evidence_kind *k = kind_arg(ctxt, fn);
	const dk_snap_evidence *up;
	int64_t due = 0, when;
	*days = 0;
	*late = 0;
	if (!k)
		return -1;
	up = dk__latest_upload(ev->run->snap, k->id);
	if (dk__evidence_due(&due, ev->run, k, up) < 0) {
		fail(ctxt, "dk:%s('%s'): %s", fn, k->id, dk_error_last());
		return -1;
	}
	if (due == 0)
		return 0;
	when = up ? up->at : ev->run->env->now;
	if (when > due) {
		*late = 1;
		*days = dk__days_between(dk__zone(ev->run), due, when);
		if (*days < 1)
			*days = 1;
	}
	return 0;
}

static void fn_late(xmlXPathParserContextPtr ctxt, int nargs)
{
	int64_t days;
	int late;
	if (lateness(ctxt, "late", &days, &late) == 0)
		xmlXPathReturnBoolean(ctxt, late);
}

static void fn_days_late(xmlXPathParserContextPtr ctxt, int nargs)
{
	int64_t days;
	int late;
	if (lateness(ctxt, "days-late", &days, &late) == 0)
		xmlXPathReturnNumber(ctxt, (double)days);
}

static void fn_count(xmlXPathParserContextPtr ctxt, int nargs)
{
	const dk_evidence_kind *k = kind_arg(ctxt, "count");
	if (k)
		xmlXPathReturnNumber(ctxt,
		                     (double)dk__count_uploads(ctx_of(ctxt)->run->snap, k->id));
}

static void fn_uploaded_at(xmlXPathParserContextPtr ctxt, int nargs)
{
	const dk_evidence_kind *k = kind_arg(ctxt, "uploaded-at");
	const dk_snap_evidence *up;
	if (!k)
		return;
	up = dk__latest_upload(ctx_of(ctxt)->run->snap, k->id);
	if (up)
		push_time(ctxt, up->at);
	else
		push_string(ctxt, "");
}

/* ---- numbers ----------------------------------------------------------- */

static void fn_min(xmlXPathParserContextPtr ctxt, int nargs)
{
	double b = xmlXPathPopNumber(ctxt), a = xmlXPathPopNumber(ctxt);
	xmlXPathReturnNumber(ctxt, (a != a || b != b) ? NAN : a < b ? a : b);
}

static void fn_max(xmlXPathParserContextPtr ctxt, int nargs)
{
	double b = xmlXPathPopNumber(ctxt), a = xmlXPathPopNumber(ctxt);
	xmlXPathReturnNumber(ctxt, (a != a || b != b) ? NAN : a > b ? a : b);
}

/* ---- the table --------------------------------------------------------- */

typedef struct {
	const char *name;
	int min_args, max_args;
	xmlXPathFunction fn;
} fn_entry;

static const fn_entry fns[] = {
    {"head-of", 1, 1, fn_head_of},
    {"dept-of", 1, 1, fn_dept_of},
    {"division-leader-of", 1, 1, fn_division_leader_of},
    {"name-of", 1, 1, fn_name_of},
    {"members", 1, 2, fn_members},
    {"now", 0, 0, fn_now},
    {"entered-at", 0, 0, fn_entered_at},
    {"day-of-month", 1, 2, fn_day_of_month},
    {"end-of-month", 0, 1, fn_end_of_month},
    {"working-days", 1, 2, fn_working_days},
    {"start-of-next-week", 0, 0, fn_start_of_next_week},
    {"add", 2, 2, fn_add},
    {"days-between", 2, 2, fn_days_between},
    {"late", 1, 1, fn_late},
    {"days-late", 1, 1, fn_days_late},
    {"count", 1, 1, fn_count},
    {"uploaded-at", 1, 1, fn_uploaded_at},
    {"min", 2, 2, fn_min},
    {"max", 2, 2, fn_max},
    {NULL, 0, 0, NULL},
};

static const fn_entry *fn_find(const char *name)
{
	for (const fn_entry *f = fns; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

int dk_engine_has_fn(const char *name)
{
	return name && fn_find(name) != NULL;
}

/* libxml2 calls the function without checking arity, so each entry point
 * goes through here first. The arity is already checked at load time;
 * this is the guard for expressions compiled elsewhere. */
#define DISPATCH(i)                                                                                \
	static void call_##i(xmlXPathParserContextPtr ctxt, int nargs)                             \
	{                                                                                          \
		const fn_entry *f = &fns[i];                                                       \
		if (nargs < f->min_args || nargs > f->max_args) {                                  \
			fail(ctxt, "dk:%s takes %d to %d arguments, not %d", f->name, f->min_args, \
			     f->max_args, nargs);                                                  \
			return;                                                                    \
		}                                                                                  \
		f->fn(ctxt, nargs);                                                                \
	}
DISPATCH(0)
DISPATCH(1)
DISPATCH(2)
DISPATCH(3)
DISPATCH(4)
DISPATCH(5)
DISPATCH(6)
DISPATCH(7)
DISPATCH(8)
DISPATCH(9)
DISPATCH(10)
DISPATCH(11)
DISPATCH(12)
DISPATCH(13)
DISPATCH(14)
DISPATCH(15)
DISPATCH(16)
DISPATCH(17)
DISPATCH(18)

static const xmlXPathFunction calls[] = {
    call_0,  call_1,  call_2,  call_3,  call_4,  call_5,  call_6,  call_7,  call_8,  call_9,
    call_10, call_11, call_12, call_13, call_14, call_15, call_16, call_17, call_18,
};

static xmlXPathFunction func_lookup(void *data, const xmlChar *name, const xmlChar *uri)
{
	const fn_entry *f;
	if (!uri || strcmp((const char *)uri, DK_FN_NS) != 0)
		return NULL;
	f = fn_find((const char *)name);
	return f ? calls[f - fns] : NULL;
}

/* ---- variables --------------------------------------------------------- */

static xmlXPathObjectPtr var_lookup(void *data, const xmlChar *xname, const xmlChar *uri)
{
	eval_ctx *ev = data;
	const char *name = (const char *)xname;
	dk_run *run = ev->run;
	const dk_snapshot *s = run->snap;
	const dk_var *decl;
	const dk_value *v;
	if (uri)
		return NULL;
	if (strcmp(name, "initiator") == 0)
		return xmlXPathNewString((const xmlChar *)(s && s->initiator ? s->initiator : ""));
	if (strcmp(name, "actor") == 0)
		return xmlXPathNewString((const xmlChar *)(run->actor ? run->actor : ""));
	if (strcmp(name, "state") == 0)
		return xmlXPathNewString((const xmlChar *)(ev->state ? ev->state : ""));
	if (strcmp(name, "instance") == 0)
		return xmlXPathNewString((const xmlChar *)(s && s->instance ? s->instance : ""));
	decl = dk_flow_var(run->flow, name);
	if (!decl)
		return NULL;
	v = s ? dk_snapshot_var(s, name) : NULL;
	switch (decl->type) {
	case DK_VAR_NUMBER: return xmlXPathNewFloat(v ? v->number : NAN);
	case DK_VAR_BOOLEAN: return xmlXPathNewBoolean(v ? v->boolean : 0);
	default: return xmlXPathNewString((const xmlChar *)(v ? v->text : ""));
	}
}

static void on_error(void *data, xmlErrorPtr err)
{
	eval_ctx *ev = data;
	if (ev->lib.len == 0 && err && err->message) {
		dk_buf_puts(&ev->lib, err->message);
		while (ev->lib.len && (ev->lib.ptr[ev->lib.len - 1] == '\n'))
			ev->lib.ptr[--ev->lib.len] = '\0';
	}
}

/* Building an xmlXPathContext registers libxml2's whole function library
 * in a fresh hash table, which cost more than evaluating a guard; so each
 * thread keeps one context, set up once, and only points it at this
 * evaluation's data. A dk: function may evaluate another expression
 * (dk:late evaluates the evidence's due date) while the thread's context
 * is in use: the key is empty then, and that inner evaluation builds and
 * frees a context of its own. */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static int ctx_key_ok;

static void ctx_destroy(void *p)
{
	xmlXPathFreeContext(p);
}

static void ctx_key_init(void)
{
	ctx_key_ok = pthread_key_create(&ctx_key, ctx_destroy) == 0;
}

static xmlXPathContextPtr ctx_take(void)
{
	xmlXPathContextPtr ctx = NULL;
	pthread_once(&ctx_once, ctx_key_init);
	if (ctx_key_ok && (ctx = pthread_getspecific(ctx_key)) != NULL) {
		pthread_setspecific(ctx_key, NULL);
		return ctx;
	}
	if (!(ctx = xmlXPathNewContext(NULL)))
		return NULL;
	if (xmlXPathRegisterNs(ctx, (const xmlChar *)"dk", (const xmlChar *)DK_FN_NS) != 0) {
		xmlXPathFreeContext(ctx);
		return NULL;
	}
	xmlXPathRegisterVariableLookup(ctx, var_lookup, NULL);
	xmlXPathRegisterFuncLookup(ctx, func_lookup, NULL);
	ctx->error = on_error;
	return ctx;
}

/* Gives ctx back to the thread, or frees it when an outer evaluation
 * holds the thread's one. */
static void ctx_give(xmlXPathContextPtr ctx)
{
	ctx->varLookupData = ctx->funcLookupData = ctx->userData = NULL;
	if (ctx_key_ok && !pthread_getspecific(ctx_key) && pthread_setspecific(ctx_key, ctx) == 0)
		return;
	xmlXPathFreeContext(ctx);
}

/* ---- simple expressions without libxml2 ---------------------------------

The flow loader marks expressions of the form OPERAND [OP OPERAND] (see
dk_xsimple in definitions/flow.h): most guards and <set> values are
"$done_phases < $phases" or "$done_phases + 1", most assignments
"dk:head-of($initiator)". Evaluating them through
libxml2 builds a parser context, a value stack and an object per variable,
which cost more than the rest of a guard; here they are computed directly
with XPath 1.0's conversions, libxml2's own where there is one:

  number(string)   xmlXPathCastStringToNumber (trimmed, no exponent, else NaN)
  number(boolean)  1 or 0
  boolean(number)  neither 0 nor NaN;  boolean(string)  not empty
  + - *            on number() of both sides, IEEE 754 (NaN propagates)
  < <= > >=        on number() of both sides; false when either is NaN
  = !=             as booleans when either side is a boolean, else as
                   numbers when either is a number, else as strings;
                   != is the negation of =

An org lookup of a string variable answers as fn_head_of and its siblings
do (an unknown user gives ""); of a number or boolean it is left to
libxml2, which writes the number. A variable the flow does not declare is
left to libxml2, so the message about it stays libxml2's. A unit test runs a corpus of expressions
through both paths and compares the results. */

typedef struct {
	xmlXPathObjectType type; /* XPATH_NUMBER, XPATH_BOOLEAN or XPATH_STRING */
	double n;
	int b;
	const char *s;
} xval;

/* 0 when name is neither a built-in nor a declared variable. */
static int simple_var(xval *out, dk_run *run, const char *state, const char *name)
{
	const dk_snapshot *s = run->snap;
	const dk_var *decl;
	const dk_value *v;
	out->type = XPATH_STRING;
	/* the built-ins by their first letter, before any strcmp */
	switch (name[0]) {
	case 'i':
		if (strcmp(name, "initiator") == 0) {
			out->s = s && s->initiator ? s->initiator : "";
			return 1;
		}
		if (strcmp(name, "instance") == 0) {
			out->s = s && s->instance ? s->instance : "";
			return 1;
		}
		break;
	case 'a':
		if (strcmp(name, "actor") == 0) {
			out->s = run->actor ? run->actor : "";
			return 1;
		}
		break;
	case 's':
		if (strcmp(name, "state") == 0) {
			out->s = state ? state : "";
			return 1;
		}
		break;
	default: break;
	}
	if (!(decl = dk_flow_var(run->flow, name)))
		return 0;
	v = s ? dk_snapshot_var(s, name) : NULL;
	switch (decl->type) {
	case DK_VAR_NUMBER:
		out->type = XPATH_NUMBER;
		out->n = v ? v->number : NAN;
		break;
	case DK_VAR_BOOLEAN:
		out->type = XPATH_BOOLEAN;
		out->b = v ? v->boolean : 0;
		break;
	default: out->s = v && v->text ? v->text : ""; break;
	}
	return 1;
}

static double xval_number(const xval *v)
{
	switch (v->type) {
	case XPATH_NUMBER: return v->n;
	case XPATH_BOOLEAN: return v->b ? 1.0 : 0.0;
	default: return xmlXPathCastStringToNumber((const xmlChar *)v->s);
	}
}

static int xval_bool(const xval *v)
{
	switch (v->type) {
	case XPATH_NUMBER: return xmlXPathCastNumberToBoolean(v->n);
	case XPATH_BOOLEAN: return v->b;
	default: return v->s[0] != '\0';
	}
}

static int xval_equal(const xval *a, const xval *b)
{
	if (a->type == XPATH_BOOLEAN || b->type == XPATH_BOOLEAN)
		return xval_bool(a) == xval_bool(b);
	if (a->type == XPATH_NUMBER || b->type == XPATH_NUMBER)
		return xval_number(a) == xval_number(b); /* false for NaN */
	return strcmp(a->s, b->s) == 0;
}

/* An org lookup of a string, as fn_head_of and its siblings answer it. */
static const char *simple_fn(dk_run *run, dk_xfn fn, const char *id)
{
	const dk_org *org = run->env->org;
	const dk_user *u = org ? dk_org_user(org, id) : NULL;
	const dk_dept *d = org && u && u->dept ? dk_org_dept(org, u->dept) : NULL;
	const char *r = NULL;
	switch (fn) {
	case DK_XFN_HEAD_OF: r = d ? d->head : NULL; break;
	case DK_XFN_DEPT_OF: r = u ? u->dept : NULL; break;
	case DK_XFN_DIVISION_LEADER_OF: r = d ? d->division_leader : NULL; break;
	case DK_XFN_NAME_OF: r = u ? (u->name ? u->name : u->id) : NULL; break;
	default: break;
	}
	return r ? r : "";
}

static int simple_operand(xval *out, dk_run *run, const char *state, const dk_xoperand *o)
{
	if (!o->var) {
		out->type = XPATH_NUMBER;
		out->n = o->number;
		return 1;
	}
	if (!simple_var(out, run, state, o->var))
		return 0;
	if (o->fn == DK_XFN_NONE)
		return 1;
	/* string() of a number or boolean is libxml2's to write */
	if (out->type != XPATH_STRING)
		return 0;
	out->s = simple_fn(run, o->fn, out->s);
	return 1;
}

/* 1 and *out, or 0 when libxml2 must evaluate x. */
static int simple_eval(xval *out, dk_run *run, const char *state, const dk_xsimple *x)
{
	xval a, b;
	if (!simple_operand(&a, run, state, &x->a))
		return 0;
	if (x->op == DK_XOP_NONE) {
		*out = a;
		return 1;
	}
	if (!simple_operand(&b, run, state, &x->b))
		return 0;
	out->type = XPATH_NUMBER;
	switch (x->op) {
	case DK_XOP_ADD: out->n = xval_number(&a) + xval_number(&b); return 1;
	case DK_XOP_SUB: out->n = xval_number(&a) - xval_number(&b); return 1;
	case DK_XOP_MUL: out->n = xval_number(&a) * xval_number(&b); return 1;
	default: break;
	}
	out->type = XPATH_BOOLEAN;
	switch (x->op) {
	case DK_XOP_EQ: out->b = xval_equal(&a, &b); break;
	case DK_XOP_NE: out->b = !xval_equal(&a, &b); break;
	case DK_XOP_LT: out->b = xval_number(&a) < xval_number(&b); break;
	case DK_XOP_LE: out->b = xval_number(&a) <= xval_number(&b); break;
	case DK_XOP_GT: out->b = xval_number(&a) > xval_number(&b); break;
	case DK_XOP_GE: out->b = xval_number(&a) >= xval_number(&b); break;
	default: return 0;
	}
	return 1;
}

int dk__eval(xmlXPathObjectPtr *out, dk_run *run, const char *state, const dk_xpath *expr)
{
	xval v;
	if (expr->simple && simple_eval(&v, run, state, expr->simple)) {
		*out = v.type == XPATH_NUMBER    ? xmlXPathNewFloat(v.n)
		       : v.type == XPATH_BOOLEAN ? xmlXPathNewBoolean(v.b)
		                                 : xmlXPathNewString((const xmlChar *)v.s);
		if (!*out)
			return dk_error_set(DK_EINTERNAL, "out of memory evaluating '%s'",
			                    expr->text);
		return 0;
	}
	return dk__eval_libxml(out, run, state, expr);
}

int dk__eval_simple_string(const char **out, dk_run *run, const char *state, const dk_xpath *expr)
{
	xval v;
	if (!expr->simple || !simple_eval(&v, run, state, expr->simple) || v.type != XPATH_STRING)
		return 0;
	*out = v.s;
	return 1;
}

int dk__eval_libxml(xmlXPathObjectPtr *out, dk_run *run, const char *state, const dk_xpath *expr)
{
	eval_ctx ev = {run, state, DK_BUF_INIT, DK_BUF_INIT};
	xmlXPathContextPtr ctx = ctx_take();
	xmlXPathObjectPtr res = NULL;
	int err = 0;
	*out = NULL;
	if (!ctx)
		return dk_error_set(DK_EINTERNAL, "out of memory evaluating '%s'", expr->text);
	/* what an earlier evaluation may have left: no document, no node */
	ctx->doc = NULL;
	ctx->node = NULL;
	ctx->contextSize = -1;
	ctx->proximityPosition = -1;
	ctx->depth = 0;
	ctx->opCount = 0;
	ctx->varLookupData = &ev;
	ctx->funcLookupData = &ev;
	ctx->userData = &ev;
	xmlXPathCompExprPtr comp = dk_xpath_comp(expr);
	if (comp)
		res = xmlXPathCompiledEval(comp, ctx);
	if (!res) {
		const char *why = ev.msg.len   ? dk_buf_cstr(&ev.msg)
		                  : ev.lib.len ? dk_buf_cstr(&ev.lib)
		                               : "it cannot be evaluated";
		err =
		    dk_error_set(DK_EINVALID,
		                 "expression '%s' (line %d of flow '%s') failed: %s; fix the flow "
		                 "or the variables it uses",
		                 expr->text, expr->line, run->flow->id, why);
	}
	*out = res;
	ctx_give(ctx);
	dk_buf_free(&ev.msg);
	dk_buf_free(&ev.lib);
	return err;
}

int dk__eval_bool(int *out, dk_run *run, const char *state, const dk_xpath *expr)
{
	xmlXPathObjectPtr r;
	xval v;
	if (expr->simple && simple_eval(&v, run, state, expr->simple)) {
		*out = xval_bool(&v);
		return 0;
	}
	int err = dk__eval_libxml(&r, run, state, expr);
	if (err < 0)
		return err;
	*out = xmlXPathCastToBoolean(r);
	xmlXPathFreeObject(r);
	return 0;
}

int dk__eval_time(int64_t *out, dk_run *run, const char *state, const dk_xpath *expr)
{
	xmlXPathObjectPtr r;
	xmlChar *s;
	int err = dk__eval(&r, run, state, expr);
	*out = 0;
	if (err < 0)
		return err;
	s = xmlXPathCastToString(r);
	xmlXPathFreeObject(r);
	if (s && *s && dk__parse_time(out, dk__zone(run), (const char *)s) < 0)
		err = dk_error_set(DK_EINVALID,
		                   "expression '%s' (line %d of flow '%s') gave '%s', not a date; "
		                   "make it give an ISO 8601 date-time, e.g. with dk:add or "
		                   "dk:day-of-month",
		                   expr->text, expr->line, run->flow->id, (const char *)s);
	dk_xml_free(s);
	return err;
}

int dk_engine_eval_string(char **out, const dk_engine_env *env, const dk_snapshot *snap,
                          const char *actor, const dk_xpath *expr)
{
	dk_run run = {.env = env,
	              .flow = env->flow,
	              .snap = (dk_snapshot *)snap,
	              .res = NULL,
	              .actor = actor};
	xmlXPathObjectPtr r;
	xmlChar *s;
	int err;
	*out = NULL;
	/* evaluation only reads the snapshot; the cast drops const for the
	 * shared run type, nothing writes through it here */
	err = dk__eval(&r, &run, snap ? snap->state : NULL, expr);
	if (err < 0)
		return err;
	s = xmlXPathCastToString(r);
	*out = dk_strdup((const char *)s);
	dk_xml_free(s);
	xmlXPathFreeObject(r);
	return 0;
}
