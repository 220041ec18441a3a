/*
 * result.c - what a command gives back: events, open tasks, armed timers.
 *
 * Tasks and timers are not kept in the snapshot: they are derived from it
 * after every command, complete, and the runner replaces the instance's
 * rows with them. That way a state that is left loses its tasks and timers
 * without anyone disarming them, and a task.assigned event is simply a task
 * that the snapshot before the command did not imply.
 */
#include "engine/internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

char *dk__rstr(dk_run *run, const char *s)
{
	return dk__pool_strdup(dk__res_mem(run->res), s);
}

char *dk__rkeep(dk_run *run, const char *s)
{
	char *p;
	if (!s)
		return NULL;
	for (unsigned i = 0; i < run->nkept && i < DK_RUN_KEPT; i++)
		if (run->kept_src[i] == s)
			return run->kept[i];
	if (s[0] == 's' && strcmp(s, DK_SYSTEM_ACTOR) == 0)
		return (char *)DK_SYSTEM_ACTOR; /* static, like the event types */
	p = dk__rstr(run, s);
	run->kept_src[run->nkept % DK_RUN_KEPT] = s;
	run->kept[run->nkept % DK_RUN_KEPT] = p;
	run->nkept++;
	return p;
}

/* s copied into *mem, through run's kept copies when *mem is its result's
 * and s lasts (own: s is a string that will be freed, never kept). */
static char *task_str(dk_run *run, dk_pool_block **mem, const char *s, int own)
{
	if (!own && run->res && mem == dk__res_mem(run->res))
		return dk__rkeep(run, s);
	return dk__pool_strdup(mem, s);
}

char *dk__rtake(dk_run *run, char *s)
{
	char *p = dk__rstr(run, s);
	free(s);
	return p;
}

/* How many elements an array of a result with n in it has room for: 0,
 * then 4, 8, 16... so that the room needs no field of its own. */
static size_t array_cap(size_t n)
{
	size_t cap = 4;
	if (n == 0)
		return 0;
	while (cap < n)
		cap *= 2;
	return cap;
}

/* arr (n elements of size, room as array_cap says) with room for one
 * more, moved to fresh space in *mem when it is full. */
static void *array_more(dk_pool_block **mem, void *arr, size_t n, size_t size)
{
	void *p;
	if (arr && n < array_cap(n))
		return arr;
	p = dk__pool_take(mem, array_cap(n + 1) * size);
	if (arr && n)
		memcpy(p, arr, n * size);
	return p;
}

/* ---- the JSON writer --------------------------------------------------- */

/* Length of the UTF-8 sequence at s as jansson accepts it (no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0 when it is invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0], cp;
	size_t n, i;
	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4)
		return 0;
	n = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

int dk__utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;
	while (*p) {
		if (*p < 0x80) { /* most text is ASCII */
			p++;
			continue;
		}
		if (!(n = utf8_len(p)))
			return 0;
		p += n;
	}
	return 1;
}

/* One byte onto b, without a call when it fits. */
static inline void put1(dk_buf *b, char c)
{
	if (b->len + 2 > b->cap)
		dk_buf_grow(b, 1);
	b->ptr[b->len++] = c;
	b->ptr[b->len] = '\0';
}

/* 1 for the bytes a JSON string escapes (and the NUL that ends it). */
static const unsigned char needs_escape[256] = {1, 1, 1, 1, 1, 1, 1, 1, 1,         1,         1, 1,
                                                1, 1, 1, 1, 1, 1, 1, 1, 1,         1,         1, 1,
                                                1, 1, 1, 1, 1, 1, 1, 1, ['"'] = 1, ['\\'] = 1};

/* s as a JSON string, escaped as jansson escapes it by default. Room for
 * the unescaped string is made once and plain bytes are copied as they are
 * scanned; an escape makes room for itself and the rest. */
void dk__json_quote(dk_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *start = s;
	size_t n = strlen(s);
	char *o;
	unsigned char c;
	if (b->len + n + 3 > b->cap)
		dk_buf_grow(b, n + 2);
	o = b->ptr + b->len;
	*o++ = '"';
	for (;;) {
		while (!needs_escape[c = (unsigned char)*s]) {
			*o++ = (char)c;
			s++;
		}
		if (!c)
			break;
		/* up to six bytes for this one, the rest and the quote */
		b->len = (size_t)(o - b->ptr);
		dk_buf_grow(b, 6 + (n - (size_t)(s - start)) + 2);
		o = b->ptr + b->len;
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hex[c >> 4];
			o[4] = hex[c & 15];
			o += 5;
		}
		s++;
	}
	*o++ = '"';
	*o = '\0';
	b->len = (size_t)(o - b->ptr);
}

/* Nonzero when a byte of x is below 0x20, from 0x80, '"' or '\\' (may
 * also say so for a plain byte after one of them: then the bytes are
 * looked at one by one anyway). */
static inline uint64_t has_special(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
	uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
	return (x & high) | ((x - ones * 0x20) & ~x & high) | ((q - ones) & ~q & high) |
	       ((bs - ones) & ~bs & high);
}

/* s as a JSON string into b when s is valid UTF-8 as jansson takes it
 * (returns 0), checked as it is copied: one pass instead of a check and
 * then a quote; -1 with b as it was when it is not. */
int dk__json_quote_valid(dk_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s;
	size_t start = b->len, n = strlen(s);
	char *o;
	unsigned char c;
	if (b->len + n + 3 > b->cap)
		dk_buf_grow(b, n + 2);
	o = b->ptr + b->len;
	*o++ = '"';
	for (;;) {
		/* eight plain bytes at a time while eight are left: none
		 * below 0x20 or from 0x80, no quote, no backslash */
		while (n - (size_t)((const char *)p - s) >= 8) {
			uint64_t x;
			memcpy(&x, p, 8);
			if (has_special(x))
				break;
			memcpy(o, &x, 8);
			o += 8;
			p += 8;
		}
		while (!needs_escape[c = *p] && c < 0x80) {
			*o++ = (char)c;
			p++;
		}
		if (!c)
			break;
		if (c >= 0x80) { /* a sequence copied as it is, when valid */
			size_t k = utf8_len(p);
			if (!k) {
				b->len = start;
				b->ptr[start] = '\0';
				return -1;
			}
			memcpy(o, p, k);
			o += k;
			p += k;
			continue;
		}
		/* up to six bytes for this one, the rest and the quote */
		b->len = (size_t)(o - b->ptr);
		dk_buf_grow(b, 6 + (n - (size_t)((const char *)p - s)) + 2);
		o = b->ptr + b->len;
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hex[c >> 4];
			o[4] = hex[c & 15];
			o += 5;
		}
		p++;
	}
	*o++ = '"';
	*o = '\0';
	b->len = (size_t)(o - b->ptr);
	return 0;
}

/* ,"key": -- the engine's keys are plain words, copied as they are
 * checked; a key with a byte to escape is quoted as any string is. */
static void jw_key(dk_jw *w, const char *key)
{
	dk_buf *b = &w->b;
	size_t n = strlen(key), i;
	char *o;
	if (b->len + n + 5 > b->cap)
		dk_buf_grow(b, n + 4);
	o = b->ptr + b->len;
	if (b->len > 1)
		*o++ = ',';
	*o++ = '"';
	for (i = 0; i < n && !needs_escape[(unsigned char)key[i]]; i++)
		o[i] = key[i];
	if (i < n) { /* back to just after the comma */
		b->len = (size_t)(o - 1 - b->ptr);
		dk__json_quote(b, key);
		put1(b, ':');
		return;
	}
	o += n;
	*o++ = '"';
	*o++ = ':';
	*o = '\0';
	b->len = (size_t)(o - b->ptr);
}

void dk__jw_begin(dk_jw *w)
{
	dk__scratch_take(&w->b);
	w->bad = 0;
	dk_buf_grow(&w->b, 256); /* one allocation for any event's data */
	dk_buf_putc(&w->b, '{');
}

void dk__jw_str(dk_jw *w, const char *key, const char *val)
{
	size_t len = w->b.len;
	if (!val) {
		w->bad = 1;
		return;
	}
	jw_key(w, key);
	if (dk__json_quote_valid(&w->b, val) < 0) {
		w->b.len = len; /* the key goes too */
		w->b.ptr[len] = '\0';
		w->bad = 1;
	}
}

void dk__jw_str_opt(dk_jw *w, const char *key, const char *val)
{
	size_t len = w->b.len;
	if (!val)
		return;
	jw_key(w, key);
	if (dk__json_quote_valid(&w->b, val) < 0) {
		w->b.len = len;
		w->b.ptr[len] = '\0';
	}
}

void dk__json_int(dk_buf *b, int64_t val)
{
	char s[24], *p = s + sizeof(s);
	uint64_t u = val < 0 ? (uint64_t)0 - (uint64_t)val : (uint64_t)val;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (val < 0)
		*--p = '-';
	dk_buf_put(b, p, (size_t)(s + sizeof(s) - p));
}

void dk__jw_int(dk_jw *w, const char *key, int64_t val)
{
	jw_key(w, key);
	dk__json_int(&w->b, val);
}

/* val into b; strings in a jansson tree are valid UTF-8 already. Reals
 * keep jansson's own formatting. */
static void jw_value(dk_buf *b, const json_t *val)
{
	const char *k;
	json_t *v;
	size_t i, n = 0;
	char *s;
	switch (json_typeof(val)) {
	case JSON_OBJECT:
		dk_buf_putc(b, '{');
		json_object_foreach((json_t *)val, k, v)
		{
			if (n++)
				dk_buf_putc(b, ',');
			dk__json_quote(b, k);
			dk_buf_putc(b, ':');
			jw_value(b, v);
		}
		dk_buf_putc(b, '}');
		break;
	case JSON_ARRAY:
		dk_buf_putc(b, '[');
		for (i = 0; i < json_array_size(val); i++) {
			if (i)
				dk_buf_putc(b, ',');
			jw_value(b, json_array_get(val, i));
		}
		dk_buf_putc(b, ']');
		break;
	case JSON_STRING: dk__json_quote(b, json_string_value(val)); break;
	case JSON_INTEGER: dk__json_int(b, (int64_t)json_integer_value(val)); break;
	case JSON_TRUE: dk_buf_puts(b, "true"); break;
	case JSON_FALSE: dk_buf_puts(b, "false"); break;
	case JSON_NULL: dk_buf_puts(b, "null"); break;
	default:
		s = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
		dk_buf_puts(b, s ? s : "null");
		free(s);
	}
}

void dk__jw_json(dk_jw *w, const char *key, const void *val)
{
	if (!val) {
		w->bad = 1;
		return;
	}
	jw_key(w, key);
	jw_value(&w->b, val);
}

/* A new line and depth spaces: JSON_INDENT(1)'s break before a member. */
static void jw_break(dk_buf *b, size_t depth)
{
	dk_buf_grow(b, depth + 1);
	b->ptr[b->len++] = '\n';
	memset(b->ptr + b->len, ' ', depth);
	b->len += depth;
	b->ptr[b->len] = '\0';
}

/* val into b as json_dumps(JSON_INDENT(1)) lays it out at depth: each
 * member of a non-empty object or array on its own line, indented one
 * space a level, "key": value, the closing bracket back at depth; empty
 * ones and scalars as the compact writer writes them. */
static void jw_value_indented(dk_buf *b, const json_t *val, size_t depth)
{
	const char *k;
	json_t *v;
	size_t i, n = 0;
	switch (json_typeof(val)) {
	case JSON_OBJECT:
		if (!json_object_size(val)) {
			dk_buf_puts(b, "{}");
			break;
		}
		dk_buf_putc(b, '{');
		json_object_foreach((json_t *)val, k, v)
		{
			if (n++)
				dk_buf_putc(b, ',');
			jw_break(b, depth + 1);
			dk__json_quote(b, k);
			dk_buf_put(b, ": ", 2);
			jw_value_indented(b, v, depth + 1);
		}
		jw_break(b, depth);
		dk_buf_putc(b, '}');
		break;
	case JSON_ARRAY:
		if (!json_array_size(val)) {
			dk_buf_puts(b, "[]");
			break;
		}
		dk_buf_putc(b, '[');
		for (i = 0; i < json_array_size(val); i++) {
			if (i)
				dk_buf_putc(b, ',');
			jw_break(b, depth + 1);
			jw_value_indented(b, json_array_get(val, i), depth + 1);
		}
		jw_break(b, depth);
		dk_buf_putc(b, ']');
		break;
	default: jw_value(b, val);
	}
}

char *dk_json_indented(const json_t *val, size_t *len)
{
	dk_buf b = DK_BUF_INIT;
	*len = 0;
	if (!json_is_object(val) && !json_is_array(val))
		return NULL;
	dk_buf_grow(&b, 1024);
	jw_value_indented(&b, val, 0);
	*len = b.len;
	return dk_buf_detach(&b);
}

char *dk__json_compact(const void *val)
{
	dk_buf b = DK_BUF_INIT;
	if (!val)
		return NULL;
	jw_value(&b, val);
	return dk_buf_detach(&b);
}

char *dk__jw_end(dk_jw *w)
{
	char *s = NULL;
	if (!w->bad) {
		dk_buf_putc(&w->b, '}');
		s = dk_buf_detach(&w->b);
	}
	dk__scratch_give(&w->b);
	return s;
}

char *dk__jw_end_in(dk_jw *w, dk_pool_block **mem)
{
	char *s = NULL;
	if (!w->bad) {
		dk_buf_putc(&w->b, '}');
		s = dk__pool_take(mem, w->b.len + 1);
		memcpy(s, w->b.ptr, w->b.len + 1);
	}
	dk__scratch_give(&w->b);
	return s;
}

/* ---- events, tasks, timers --------------------------------------------- */

dk_event *dk__event(dk_run *run, const char *type)
{
	dk_engine_result *res = run->res;
	res->events = array_more(dk__res_mem(res), res->events, res->nevents, sizeof(*res->events));
	dk_event *e = &res->events[res->nevents++];
	memset(e, 0, sizeof(*e));
	e->type = (char *)type;
	e->at = run->env->now;
	e->actor = dk__rkeep(run, run->actor ? run->actor : DK_SYSTEM_ACTOR);
	return e;
}

void dk_engine_result_set_data(dk_engine_result *res, dk_event *e, const char *data)
{
	e->data = dk__pool_strdup(dk__res_mem(res), data);
}

void dk_engine_result_merge(dk_engine_result *acc, dk_engine_result *next)
{
	size_t n = acc->nevents + next->nevents;
	dk_event *ev;
	if (!acc->snapshot) {
		dk_engine_result_free(acc);
		*acc = *next;
		memset(next, 0, sizeof(*next));
		return;
	}
	if (n) {
		ev = dk__pool_take(dk__res_mem(next), array_cap(n) * sizeof(*ev));
		if (acc->nevents)
			memcpy(ev, acc->events, acc->nevents * sizeof(*ev));
		if (next->nevents)
			memcpy(ev + acc->nevents, next->events, next->nevents * sizeof(*ev));
		next->events = ev;
		next->nevents = n;
	}
	/* acc's events keep their strings in acc's blocks: next takes them
	 * over, the rest of acc goes */
	dk__pool_append(dk__res_mem(next), acc->mem);
	acc->mem = NULL;
	dk_engine_result_free(acc);
	*acc = *next;
	memset(next, 0, sizeof(*next));
}

int dk_event_to_json(char **out, const dk_event *e, const char *instance)
{
	char at[DK_TIME_STRLEN];
	json_t *o = json_object(), *d;
	const char *keys[] = {"actor", "on_behalf_of", "user",   "from",
	                      "to",    "transition",   "comment"};
	const char *vals[] = {e->actor, e->on_behalf_of, e->user,   e->from,
	                      e->to,    e->transition,   e->comment};
	dk_time_format(at, e->at);
	json_object_set_new(o, "type", json_string(e->type));
	json_object_set_new(o, "at", json_string(at));
	if (instance)
		json_object_set_new(o, "instance", json_string(instance));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (vals[i])
			json_object_set_new(o, keys[i], json_string(vals[i]));
	d = e->data ? json_loads(e->data, 0, NULL) : NULL;
	json_object_set_new(o, "data", d ? d : json_object());
	*out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!*out)
		return dk_error_set(DK_EINTERNAL, "cannot write an event as JSON");
	return 0;
}

void dk_engine_result_free(dk_engine_result *res)
{
	if (!res)
		return;
	dk_snapshot_free(res->snapshot);
	dk__pool_free(res->mem);
	memset(res, 0, sizeof(*res));
}

/* The innermost active states and, for a parallel, the parallel itself
 * (first), as flow states. */
static size_t active_states(dk_run *run, const dk_state **out, size_t max)
{
	size_t n = 0;
	const dk_state *top = run->snap->state ? dk_flow_state(run->flow, run->snap->state) : NULL;
	if (!top)
		return 0;
	out[n++] = top;
	for (size_t i = 0; i < run->snap->nregions && n < max; i++) {
		const dk_state *s = dk_flow_state(run->flow, run->snap->regions[i].state);
		if (s)
			out[n++] = s;
	}
	return n;
}

static int voted(const dk_snapshot *snap, const char *state, const char *user)
{
	for (size_t i = 0; i < snap->nvotes; i++)
		if (strcmp(snap->votes[i].state, state) == 0 &&
		    strcmp(snap->votes[i].user, user) == 0)
			return 1;
	return 0;
}

/* Tasks: one per user assigned to an active, non-final state, except the
 * parallel's own assignees (they may act on it but nothing waits for
 * them) and countersigners who have voted. */
/* The active states of run->snap (as active_states) with their records,
 * looked up once for the tasks, the timers and the comparison with the
 * snapshot before. */
typedef struct {
	const dk_state *st[64];
	const dk_snap_state *rec[64];
	size_t n;
} active_view;

static void view_of(active_view *v, dk_run *run)
{
	v->n = active_states(run, v->st, 64);
	for (size_t i = 0; i < v->n; i++)
		v->rec[i] = dk_snapshot_state(run->snap, v->st[i]->id);
}

static int tasks_of(dk_run *run, const active_view *v, dk_pool_block **mem, dk_task **out,
                    size_t *n)
{
	int err = 0;
	*out = NULL;
	*n = 0;
	if (run->snap->status == DK_INSTANCE_COMPLETED)
		return 0;
	for (size_t i = 0; i < v->n; i++) {
		const dk_state *st = v->st[i];
		const dk_snap_state *rec = v->rec[i];
		dk_users u = {0};
		if (st->final || st->kind == DK_STATE_PARALLEL)
			continue;
		if ((err = dk__state_actors_rec(&u, run, st, rec)) < 0)
			return err;
		for (size_t j = 0; j < u.n; j++) {
			if (st->quorum != DK_QUORUM_NONE && voted(run->snap, st->id, u.users[j]))
				continue;
			*out = array_more(mem, *out, *n, sizeof(**out));
			dk_task *t = &(*out)[(*n)++];
			memset(t, 0, sizeof(*t));
			t->instance = task_str(run, mem, run->snap->instance, 0);
			t->state = task_str(run, mem, st->id, 0);
			t->user = task_str(run, mem, u.users[j], u.own[j]);
			t->role = task_str(run, mem, u.roles[j], 0);
			t->due_at = rec && rec->ndeadlines ? rec->deadlines[0].due_at : 0;
		}
		dk__users_free(&u);
	}
	return 0;
}

int dk__desired_tasks(dk_run *run, dk_pool_block **mem, dk_task **out, size_t *n)
{
	active_view v;
	view_of(&v, run);
	return tasks_of(run, &v, mem, out, n);
}

/* val in decimal at o; returns the end. */
static char *put_int(char *o, int64_t val)
{
	char d[24], *p = d + sizeof(d);
	uint64_t u = val < 0 ? (uint64_t)0 - (uint64_t)val : (uint64_t)val;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (val < 0)
		*--p = '-';
	memcpy(o, p, (size_t)(d + sizeof(d) - p));
	return o + (d + sizeof(d) - p);
}

/* A timer's payload, {"state":..,"visit":..,"deadline":..}, written at
 * once into *mem when the state id needs no escape (a flow's ids are
 * plain words); NULL for the writer to do it. The same bytes. */
static char *timer_payload(dk_pool_block **mem, const char *state, int visit, int index)
{
	size_t n = strlen(state);
	char *p, *o;
	if (n > 256)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (needs_escape[(unsigned char)state[i]] || (unsigned char)state[i] >= 0x80)
			return NULL;
	p = o = dk__pool_take(mem, n + 64);
	memcpy(o, "{\"state\":\"", 10);
	o += 10;
	memcpy(o, state, n);
	o += n;
	memcpy(o, "\",\"visit\":", 10);
	o = put_int(o + 10, visit);
	memcpy(o, ",\"deadline\":", 12);
	o = put_int(o + 12, index);
	*o++ = '}';
	*o = '\0';
	return p;
}

static void add_timer(dk_pool_block **mem, dk_timer **out, size_t *n, dk_run *run, const char *kind,
                      const dk_state *st, int visit, size_t index, int64_t due)
{
	dk_jw w;
	char *s;
	*out = array_more(mem, *out, *n, sizeof(**out));
	dk_timer *t = &(*out)[(*n)++];
	memset(t, 0, sizeof(*t));
	t->instance = task_str(run, mem, run->snap->instance, 0);
	t->kind = (char *)kind; /* a constant, like the event types */
	t->state = task_str(run, mem, st->id, 0);
	t->due_at = due;
	if ((s = timer_payload(mem, st->id, visit, (int)index)) != NULL) {
		t->payload = s;
		return;
	}
	dk__jw_begin(&w);
	dk__jw_str(&w, "state", st->id);
	dk__jw_int(&w, "visit", visit);
	dk__jw_int(&w, "deadline", (int)index);
	s = dk__jw_end_in(&w, mem);
	/* the payload was never NULL: an empty text when it cannot be written */
	t->payload = s ? s : dk__pool_strdup(mem, "");
}

/* Timers: for every active state's deadline, the deadline itself until it
 * has fired, and its next reminder. */
static int timers_of(dk_run *run, const active_view *v, dk_pool_block **mem, dk_timer **out,
                     size_t *n)
{
	*out = NULL;
	*n = 0;
	if (run->snap->status == DK_INSTANCE_COMPLETED)
		return 0;
	for (size_t i = 0; i < v->n; i++) {
		const dk_state *st = v->st[i];
		const dk_snap_state *rec = v->rec[i];
		if (!rec || st->final)
			continue;
		for (size_t d = 0; d < st->ndeadlines && d < rec->ndeadlines; d++) {
			const dk_deadline *dl = &st->deadlines[d];
			const dk_snap_deadline *sd = &rec->deadlines[d];
			if (!sd->missed && sd->due_at) {
				const char *kind = dl->fire           ? "fire"
				                   : dl->has_escalate ? "escalate"
				                                      : "deadline";
				add_timer(mem, out, n, run, kind, st, rec->visits, d, sd->due_at);
			}
			if (dl->has_remind && sd->next_remind)
				add_timer(mem, out, n, run, "remind", st, rec->visits, d,
				          sd->next_remind);
		}
	}
	return 0;
}

int dk__desired_timers(dk_run *run, dk_pool_block **mem, dk_timer **out, size_t *n)
{
	active_view v;
	view_of(&v, run);
	return timers_of(run, &v, mem, out, n);
}

static int same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* 1 when the tasks before are, for certain, the tasks now: the same status,
 * initiator and variables, no votes, the same active states in the same
 * visits with the same escalations, and assignments that read nothing else
 * (none, a user, a role, the initiator, or a simple expression of
 * variables, built-ins and the org). An upload changes none of these; then
 * every task is known without evaluating the assignments a second time. */
static int tasks_unchanged(dk_run *run, const active_view *v, const dk_snapshot *before)
{
	const dk_snapshot *now = run->snap;
	if (!before || before->status != now->status || before->nvotes || now->nvotes ||
	    !same_str(before->state, now->state) || !same_str(before->initiator, now->initiator) ||
	    !same_str(before->instance, now->instance) || before->nregions != now->nregions ||
	    before->nvars != now->nvars)
		return 0;
	for (size_t i = 0; i < now->nregions; i++)
		if (!same_str(before->regions[i].state, now->regions[i].state))
			return 0;
	/* the visits first: a transition changes them, and they are numbers */
	for (size_t i = 0; i < v->n; i++) {
		const dk_assign *a = &v->st[i]->assign;
		const dk_snap_state *was = dk_snapshot_state(before, v->st[i]->id);
		const dk_snap_state *is = v->rec[i];
		if (a->kind == DK_ASSIGN_XPATH && a->expr && !a->expr->simple)
			return 0;
		if (!was || !is || was->visits != is->visits || was->nescalated != is->nescalated)
			return 0;
		for (size_t j = 0; j < is->nescalated; j++)
			if (!same_str(was->escalated[j], is->escalated[j]))
				return 0;
	}
	for (size_t i = 0; i < now->nvars; i++)
		if (before->vars[i].type != now->vars[i].type ||
		    !same_str(before->vars[i].name, now->vars[i].name) ||
		    !same_str(before->vars[i].text, now->vars[i].text))
			return 0;
	return 1;
}

/* task.assigned's data, {"assignee","state","role","due_at"}, as the JSON
 * writer gives it (an assignee or state that is not UTF-8 gives none, a
 * role that is not is left out, as is a missing role or due time) with
 * its keys written as they are, into *mem. */
static char *assigned_data(dk_pool_block **mem, const dk_task *t)
{
	dk_buf b;
	size_t len;
	char *s = NULL;
	dk__scratch_take(&b);
	dk_buf_grow(&b, 128);
	DK_PUT_LIT(&b, "{\"assignee\":");
	if (!t->user || dk__json_quote_valid(&b, t->user) < 0)
		goto done;
	dk_buf_grow(&b, 16);
	DK_PUT_LIT(&b, ",\"state\":");
	if (!t->state || dk__json_quote_valid(&b, t->state) < 0)
		goto done;
	if (t->role) {
		len = b.len;
		dk_buf_grow(&b, 16);
		DK_PUT_LIT(&b, ",\"role\":");
		if (dk__json_quote_valid(&b, t->role) < 0) {
			b.len = len;
			b.ptr[len] = '\0';
		}
	}
	if (t->due_at) {
		char at[DK_TIME_STRLEN];
		dk_time_format(at, t->due_at);
		dk_buf_grow(&b, 16);
		DK_PUT_LIT(&b, ",\"due_at\":");
		dk__json_quote(&b, at); /* ASCII digits and punctuation */
	}
	dk_buf_grow(&b, 2);
	DK_PUT_LIT(&b, "}");
	s = dk__pool_take(mem, b.len + 1);
	memcpy(s, b.ptr, b.len + 1);
done:
	dk__scratch_give(&b);
	return s;
}

/* The records of a task's state now and before, looked up once for the
 * tasks of one state (they come together and share their state string). */
typedef struct {
	const char *state;
	const dk_snap_state *now, *was;
} visit_pair;

static void visits_of(visit_pair *p, dk_run *run, const dk_snapshot *before, const char *state)
{
	if (p->state == state)
		return;
	p->state = state;
	p->now = dk_snapshot_state(run->snap, state);
	p->was = before ? dk_snapshot_state(before, state) : NULL;
}

int dk__finish(dk_run *run, const dk_snapshot *before)
{
	dk_engine_result *res = run->res;
	dk_pool_block *scratch = NULL; /* the tasks before */
	dk_task *old = NULL;
	size_t nold = 0;
	active_view v;
	visit_pair vp = {NULL, NULL, NULL};
	int err;
	view_of(&v, run);
	if ((err = tasks_of(run, &v, dk__res_mem(res), &res->tasks, &res->ntasks)) < 0)
		return err;
	if ((err = timers_of(run, &v, dk__res_mem(res), &res->timers, &res->ntimers)) < 0)
		return err;
	/* A new task is already known only when its state is in the same
	 * visit as before; when no task is (a transition moved on), the
	 * tasks before need not be derived, which evaluates their assign
	 * expressions again. */
	if (res->ntasks && tasks_unchanged(run, &v, before))
		return 0;
	int same_visit = 0;
	for (size_t i = 0; before && i < res->ntasks && !same_visit; i++) {
		visits_of(&vp, run, before, res->tasks[i].state);
		same_visit = vp.was && vp.now && vp.was->visits == vp.now->visits;
	}
	if (same_visit) {
		dk_run prev = *run;
		prev.snap = (dk_snapshot *)before; /* read only: tasks are derived */
		if ((err = dk__desired_tasks(&prev, &scratch, &old, &nold)) < 0) {
			dk__pool_free(scratch);
			return err;
		}
	}
	for (size_t i = 0; i < res->ntasks; i++) {
		const dk_task *t = &res->tasks[i];
		int known = 0;
		visits_of(&vp, run, before, t->state);
		for (size_t j = 0; j < nold && !known; j++)
			known = strcmp(old[j].state, t->state) == 0 &&
			        strcmp(old[j].user, t->user) == 0 && vp.was && vp.now &&
			        vp.was->visits == vp.now->visits;
		if (known)
			continue;
		dk_event *e = dk__event(run, DK_EV_ASSIGNED);
		e->actor = (char *)DK_SYSTEM_ACTOR;
		e->user = t->user; /* the result's own strings */
		e->to = t->state;
		e->data = assigned_data(dk__res_mem(res), t);
	}
	dk__pool_free(scratch);
	return 0;
}

int dk_engine_view(dk_engine_result *out, const dk_engine_env *env, const dk_snapshot *snap)
{
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_run run = {.env = env, .flow = env->flow, .snap = NULL, .res = &res, .actor = NULL};
	int err;
	memset(out, 0, sizeof(*out));
	res.snapshot = dk_snapshot_dup(snap);
	run.snap = res.snapshot;
	if ((err = dk__desired_tasks(&run, dk__res_mem(&res), &res.tasks, &res.ntasks)) < 0 ||
	    (err = dk__desired_timers(&run, dk__res_mem(&res), &res.timers, &res.ntimers)) < 0) {
		dk_engine_result_free(&res);
		return err;
	}
	*out = res;
	return 0;
}
