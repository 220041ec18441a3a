/*
 * vars.c - instance variables: typed values from text and from XPath.
 *
 * A variable always holds a value of its declared type. Text from the
 * command line is checked strictly (a number must be all number, a boolean
 * exactly true or false, a date ISO 8601); values computed by <set> are
 * converted with XPath's own rules (number(), boolean(), string()), and a
 * date must still parse.
 */
#include "engine/internal.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *type_word(dk_var_type t)
{
	switch (t) {
	case DK_VAR_NUMBER: return "a number";
	case DK_VAR_BOOLEAN: return "a boolean (true or false)";
	case DK_VAR_DATE: return "a date (ISO 8601, like 2026-11-28)";
	default: return "a string";
	}
}

int dk__number_int_text(char out[16], double d)
{
	char b[16], *p = b + sizeof(b);
	unsigned u;
	/* libxml2's xmlXPathFormatNumber: 0 (of either sign) is "0", an
	 * integer strictly between INT_MIN and INT_MAX is printed as one */
	if (d == 0) {
		memcpy(out, "0", 2);
		return 1;
	}
	if (!(d > INT_MIN && d < INT_MAX && d == (int)d))
		return 0;
	u = d < 0 ? (unsigned)-(int)d : (unsigned)(int)d;
	*--p = '\0';
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (d < 0)
		*--p = '-';
	memcpy(out, p, (size_t)(b + sizeof(b) - p));
	return 1;
}

static void set_number(dk_value *out, double d)
{
	char b[16];
	out->type = DK_VAR_NUMBER;
	out->number = d;
	if (dk__number_int_text(b, d)) {
		out->text = dk_strdup(b);
		return;
	}
	xmlChar *t = xmlXPathCastNumberToString(d);
	out->text = dk_strdup((const char *)t);
	dk_xml_free(t);
}

/* A date keeps its date-only form ("2026-11-28") when it has no time, and
 * is normalised to UTC otherwise, so equal instants compare equal. */
static int set_date(dk_value *out, const dk_var *decl, const char *text)
{
	int64_t t;
	char buf[DK_TIME_STRLEN];
	if (dk_time_parse(&t, text) < 0)
		return dk_error_set(DK_EINVALID,
		                    "variable '%s' must be %s, not '%s'; write it like 2026-11-28 "
		                    "or 2026-11-28T09:30:00+08:00",
		                    decl->name, type_word(DK_VAR_DATE), text);
	out->type = DK_VAR_DATE;
	if (strlen(text) == 10) {
		out->text = dk_strdup(text);
	} else {
		dk_time_format(buf, t);
		out->text = dk_strdup(buf);
	}
	return 0;
}

int dk__value_parse(dk_value *out, const dk_var *decl, const char *text)
{
	memset(out, 0, sizeof(*out));
	switch (decl->type) {
	case DK_VAR_NUMBER: {
		char *end = NULL;
		double d;
		const char *p = text;
		while (*p == ' ')
			p++;
		d = *p ? strtod(p, &end) : 0;
		if (!*p || !end || *end != '\0' || !isfinite(d) || strpbrk(p, "xXpPnNiI"))
			return dk_error_set(DK_EINVALID, "variable '%s' must be %s, not '%s'",
			                    decl->name, type_word(decl->type), text);
		set_number(out, d);
		break;
	}
	case DK_VAR_BOOLEAN:
		if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
			return dk_error_set(DK_EINVALID, "variable '%s' must be %s, not '%s'",
			                    decl->name, type_word(decl->type), text);
		out->type = DK_VAR_BOOLEAN;
		out->boolean = text[0] == 't';
		out->text = dk_strdup(text);
		break;
	case DK_VAR_DATE:
		if (set_date(out, decl, text) < 0)
			return DK_EINVALID;
		break;
	default:
		out->type = DK_VAR_STRING;
		out->text = dk_strdup(text);
		break;
	}
	out->name = dk_strdup(decl->name);
	return 0;
}

int dk__value_from_xpath(dk_value *out, const dk_var *decl, xmlXPathObjectPtr obj)
{
	xmlChar *s;
	int err = 0;
	memset(out, 0, sizeof(*out));
	switch (decl->type) {
	case DK_VAR_NUMBER: set_number(out, xmlXPathCastToNumber(obj)); break;
	case DK_VAR_BOOLEAN:
		out->type = DK_VAR_BOOLEAN;
		out->boolean = xmlXPathCastToBoolean(obj);
		out->text = dk_strdup(out->boolean ? "true" : "false");
		break;
	case DK_VAR_DATE:
		s = xmlXPathCastToString(obj);
		err = set_date(out, decl, (const char *)s);
		dk_xml_free(s);
		if (err < 0)
			return err;
		break;
	default:
		s = xmlXPathCastToString(obj);
		out->type = DK_VAR_STRING;
		out->text = dk_strdup((const char *)s);
		dk_xml_free(s);
		break;
	}
	out->name = dk_strdup(decl->name);
	return 0;
}

void *dk__value_json(const dk_value *v)
{
	if (!v)
		return json_null();
	switch (v->type) {
	case DK_VAR_NUMBER:
		if (!isfinite(v->number)) /* NaN has no JSON form */
			return json_null();
		if (v->number > -9e15 && v->number < 9e15 &&
		    v->number == (double)(int64_t)v->number)
			return json_integer((json_int_t)v->number);
		return json_real(v->number);
	case DK_VAR_BOOLEAN: return json_boolean(v->boolean);
	default: return v->text ? json_string(v->text) : json_null();
	}
}

int dk__value_write(dk_buf *b, const dk_value *v)
{
	if (!v) {
		dk_buf_puts(b, "null");
		return 0;
	}
	switch (v->type) {
	case DK_VAR_NUMBER:
		if (!isfinite(v->number)) { /* NaN has no JSON form */
			dk_buf_puts(b, "null");
		} else if (v->number > -9e15 && v->number < 9e15 &&
		           v->number == (double)(int64_t)v->number) {
			dk__json_int(b, (int64_t)v->number);
		} else { /* jansson's own formatting of reals */
			json_t *r = json_real(v->number);
			char *s = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
			dk_buf_puts(b, s ? s : "null");
			free(s);
			json_decref(r);
		}
		return 0;
	case DK_VAR_BOOLEAN: dk_buf_puts(b, v->boolean ? "true" : "false"); return 0;
	default:
		if (!v->text) {
			dk_buf_puts(b, "null");
			return 0;
		}
		return dk__json_quote_valid(b, v->text);
	}
}

void dk__changes_free(dk_changes *c)
{
	for (size_t i = 0; c && i < c->n; i++)
		free(c->v[i].name); /* from and to are in the same allocation */
	if (c) {
		free(c->v);
		c->v = NULL;
		c->n = 0;
	}
}

/* s (n bytes) onto b, which has room for it. */
static inline void put_n(dk_buf *b, const char *s, size_t n)
{
	memcpy(b->ptr + b->len, s, n);
	b->len += n;
	b->ptr[b->len] = '\0';
}

void dk__changes_write(dk_buf *b, const dk_changes *c)
{
	dk_buf_grow(b, 2);
	put_n(b, "{", 1);
	for (size_t i = 0; i < c->n; i++) {
		/* name, from and to follow each other in one allocation */
		size_t nf = (size_t)(c->v[i].to - c->v[i].from) - 1, nt = strlen(c->v[i].to);
		if (i) {
			dk_buf_grow(b, 1);
			put_n(b, ",", 1);
		}
		dk__json_quote(b, c->v[i].name);
		dk_buf_grow(b, nf + nt + 19);
		put_n(b, ":{\"from\":", 9);
		put_n(b, c->v[i].from, nf);
		put_n(b, ",\"to\":", 6);
		put_n(b, c->v[i].to, nt);
		put_n(b, "}", 1);
	}
	dk_buf_grow(b, 1);
	put_n(b, "}", 1);
}

void dk__var_change(dk_changes *changes, const dk_value *before, const dk_value *after)
{
	/* name, from and to written one after the other, NUL-terminated, and
	 * copied in one allocation */
	dk_buf b;
	dk_change *c = NULL;
	size_t nlen, from, to;
	char *text;
	if (!changes || !after->name)
		return;
	dk__scratch_take(&b);
	nlen = strlen(after->name);
	dk_buf_put(&b, after->name, nlen + 1);
	from = b.len;
	if (!dk__utf8_valid(after->name) || dk__value_write(&b, before) < 0)
		goto done;
	dk_buf_putc(&b, '\0');
	to = b.len;
	if (dk__value_write(&b, after) < 0)
		goto done;
	text = dk_malloc(b.len + 1);
	memcpy(text, b.ptr, b.len + 1);
	for (size_t i = 0; i < changes->n && !c; i++)
		if (strcmp(changes->v[i].name, after->name) == 0)
			c = &changes->v[i];
	if (c) {
		free(c->name);
	} else {
		/* room for 4, then 8, 16...: a start changes every variable */
		size_t n = changes->n;
		if (n == 0 || (n >= 4 && (n & (n - 1)) == 0))
			changes->v = dk_realloc(changes->v, (n ? 2 * n : 4) * sizeof(*changes->v));
		c = &changes->v[changes->n++];
	}
	c->name = text;
	c->from = text + from;
	c->to = text + to;
done:
	dk__scratch_give(&b);
}

static void declared_list(dk_buf *b, const dk_flow *flow)
{
	for (size_t i = 0; i < flow->nvars; i++)
		dk_buf_printf(b, "%s%s", i ? ", " : "", flow->vars[i].name);
	if (flow->nvars == 0)
		dk_buf_puts(b, "(none)");
}

int dk__vars_assign(dk_run *run, const char *const *kv, size_t n, dk_changes *changes)
{
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(kv[i], '=');
		char *name;
		const dk_var *decl;
		dk_value v;
		if (!eq || eq == kv[i])
			return dk_error_set(DK_EINVALID,
			                    "'%s' is not a variable assignment; write it as "
			                    "--var NAME=VALUE",
			                    kv[i]);
		name = dk_strndup(kv[i], (size_t)(eq - kv[i]));
		decl = dk_flow_var(run->flow, name);
		if (!decl) {
			dk_buf b = DK_BUF_INIT;
			declared_list(&b, run->flow);
			dk_error_set(DK_EINVALID,
			             "flow '%s' declares no variable '%s'; declared: %s",
			             run->flow->id, name, dk_buf_cstr(&b));
			dk_buf_free(&b);
			free(name);
			return DK_EINVALID;
		}
		free(name);
		if (dk__value_parse(&v, decl, eq + 1) < 0)
			return DK_EINVALID;
		dk__var_change(changes, dk_snapshot_var(run->snap, decl->name), &v);
		dk__snap_set_var(run->snap, run->flow, &v);
		dk__value_clear(&v);
	}
	return 0;
}
