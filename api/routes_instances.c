/* routes_instances.c - instances: start, list, get (ETag = version, and
 * on a GET a mark of the caller's available_transitions), log,
 * act (If-Match guards the version) and recall. The three writes go
 * through the writer (writer.c), which commits them in batches. */
#include "api/api_int.h"

#include "util/buf.h"
#include "util/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Variables from a JSON object as the command line would give them:
 * strings as they are, numbers and booleans in their JSON spelling.
 * *vals holds the owned texts. Returns 0 or answers 400 and returns 1. */
static int vars_of(dk_req *rq, const json_t *obj, dk_kv **out, size_t *n, char ***vals)
{
	const char *k;
	json_t *v;
	size_t i = 0;

	*out = NULL;
	*n = 0;
	*vals = NULL;
	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj)) {
		dk_api_problem(rq, 400, "\"vars\" must be an object of name: value");
		return 1;
	}
	*out = dk_calloc(json_object_size(obj) + 1, sizeof(**out));
	*vals = dk_calloc(json_object_size(obj) + 1, sizeof(**vals));
	json_object_foreach((json_t *)obj, k, v)
	{
		char *text;
		if (json_is_string(v))
			text = dk_strdup(json_string_value(v));
		else if (json_is_integer(v) || json_is_real(v) || json_is_boolean(v))
			text = json_dumps(v, JSON_ENCODE_ANY);
		else {
			dk_api_problem(rq, 400, "variable '%s' must be a string, number or boolean",
			               k);
			return 1;
		}
		(*vals)[i] = text;
		(*out)[i].name = k;
		(*out)[i].value = text;
		i++;
	}
	*n = i;
	return 0;
}

static void vars_free(dk_kv *kv, char **vals, size_t n)
{
	for (size_t i = 0; vals && vals[i]; i++)
		free(vals[i]);
	(void)n;
	free(vals);
	free(kv);
}

static const char *str_field(dk_req *rq, const json_t *obj, const char *key, int *bad)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		dk_api_problem(rq, 400, "\"%s\" must be a string", key);
		*bad = 1;
		return NULL;
	}
	return json_string_value(v);
}

static void set_etag(dk_req *rq, const json_t *j)
{
	json_int_t v = json_integer_value(json_object_get(j, "version"));
	if (v > 0)
		snprintf(rq->etag, sizeof(rq->etag), "\"%lld\"", (long long)v);
}

/* A GET's body depends on the caller as well as the version: a
 * delegation given or ended changes available_transitions without a
 * step. Its ETag is "VERSION.MARK", MARK a hash (FNV-1a, a validator,
 * not a secret) of those moves, so If-None-Match never answers 304 over
 * moves that changed; If-Match reads the version before the dot. */
static void set_get_etag(dk_req *rq, const json_t *j)
{
	json_int_t v = json_integer_value(json_object_get(j, "version"));
	char *moves =
	    json_dumps(json_object_get(j, "available_transitions"), JSON_COMPACT | JSON_ENCODE_ANY);
	uint32_t h = 2166136261u;

	for (const char *p = moves ? moves : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	free(moves);
	if (v > 0)
		snprintf(rq->etag, sizeof(rq->etag), "\"%lld.%08x\"", (long long)v, (unsigned)h);
}

/* The writes run on the writer thread (writer.c) with its runner r,
 * inside the savepoint of a batch: they set the answer and return 0, or
 * return the error to answer with. */
static int start_in_writer(dk_req *rq, dk_runner *r, void *arg)
{
	int error;

	if ((error = dk_runner_start(r, &rq->json, arg)) < 0)
		return error;
	rq->status = 201;
	set_etag(rq, rq->json);
	snprintf(rq->location, sizeof(rq->location), "/api/instances/%s",
	         json_string_value(json_object_get(rq->json, "id")));
	return 0;
}

/* What a start or an act hands to the writer: its options and what they
 * point into, freed by write_done once the write is answered. */
typedef struct {
	dk_start_opts start;
	dk_act_opts act;
	const char *comment; /* recall */
	json_t *body;
	dk_preload *pre; /* act: the instance as the seeing check read it */
	dk_kv *kv;
	char **vals;
	size_t n;
	unsigned ok; /* the status of a success: wakes the workers */
} write_job;

static void write_done(dk_req *rq, void *state)
{
	write_job *w = state;

	if (rq->status == w->ok)
		rq->wake();
	vars_free(w->kv, w->vals, w->n);
	json_decref(w->body);
	dk_preload_free(w->pre);
	free(w);
}

int dk_route_instances_start(dk_req *rq)
{
	write_job *w = dk_calloc(1, sizeof(*w));
	int bad = 0;

	w->ok = 201;
	if (dk_api_body_object(rq, &w->body))
		goto refused;
	w->start.flow = str_field(rq, w->body, "flow", &bad);
	if (!bad)
		w->start.title = str_field(rq, w->body, "title", &bad);
	if (bad || vars_of(rq, json_object_get(w->body, "vars"), &w->kv, &w->n, &w->vals))
		goto refused;
	if (!w->start.flow) {
		dk_api_problem(rq, 400, "name the flow: {\"flow\": \"ID\", \"vars\": {...}}");
		goto refused;
	}
	w->start.actor = rq->user;
	w->start.vars = w->kv;
	w->start.nvars = w->n;
	dk_api_write(rq, start_in_writer, &w->start, write_done, w);
	return 0;
refused:
	write_done(rq, w);
	return 0;
}

static int flag(const char *v)
{
	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

int dk_route_instances_list(dk_req *rq)
{
	dk_list_opts o = {0};
	const char *limit = dk_api_query(rq, "limit");
	json_t *all = NULL, *row, *mine;
	size_t i, want = 100;
	int error;

	o.flow = dk_api_query(rq, "flow");
	o.state = dk_api_query(rq, "state");
	o.status = dk_api_query(rq, "status");
	o.initiator = dk_api_query(rq, "initiator");
	o.overdue = flag(dk_api_query(rq, "overdue"));
	if (limit) {
		char *end;
		long l = strtol(limit, &end, 10);
		if (*end || l < 1 || l > 1000)
			return dk_api_problem(rq, 400, "limit must be 1 to 1000, not '%s'", limit);
		want = (size_t)l;
	}
	/* Those who see everything get the store's page as it is; others get
	 * what they may see of it, each row checked like a single GET. */
	if (dk_api_sees_all(rq)) {
		o.limit = want;
		if ((error = dk_runner_list(rq->ctx->runner, &rq->json, &o)) < 0)
			return error;
		rq->status = 200;
		return 0;
	}
	if ((error = dk_runner_list(rq->ctx->runner, &all, &o)) < 0)
		return error;
	mine = json_array();
	json_array_foreach(all, i, row)
	{
		json_t *shown = NULL;
		const char *id = json_string_value(json_object_get(row, "id"));
		if (json_array_size(mine) >= want)
			break;
		if (dk_runner_show(rq->ctx->runner, &shown, id ? id : "") == 0 &&
		    dk_api_may_see(rq, shown) == 0)
			json_array_append(mine, row);
		json_decref(shown);
	}
	dk_error_clear();
	json_decref(all);
	rq->json = mine;
	rq->status = 200;
	return 0;
}

/* Shows an instance the user may see into *out. */
static int shown(dk_req *rq, json_t **out)
{
	int error;
	if ((error = dk_runner_show(rq->ctx->runner, out, rq->params[0])) < 0)
		return error;
	if ((error = dk_api_may_see(rq, *out)) < 0) {
		json_decref(*out);
		*out = NULL;
	}
	return error;
}

int dk_route_instance_get(dk_req *rq)
{
	int error;

	/* With the moves the caller may make (available_transitions), so
	 * the page offers only those the act would accept from them. */
	if ((error = dk_runner_show_as(rq->ctx->runner, &rq->json, rq->params[0], rq->user)) < 0)
		return error;
	if ((error = dk_api_may_see(rq, rq->json)) < 0) {
		json_decref(rq->json);
		rq->json = NULL;
		return error;
	}
	set_get_etag(rq, rq->json);
	const char *inm = dk_api_header(rq, "If-None-Match");
	if (inm && rq->etag[0] && strcmp(inm, rq->etag) == 0) {
		json_decref(rq->json);
		rq->json = NULL;
		rq->lent = "";
		rq->raw_len = 0;
		rq->status = 304;
		return 0;
	}
	rq->status = 200;
	return 0;
}

int dk_route_instance_log(dk_req *rq)
{
	json_t *inst = NULL;
	int error;
	if ((error = shown(rq, &inst)) < 0)
		return error;
	json_decref(inst);
	if ((error = dk_runner_log(rq->ctx->runner, &rq->json, rq->params[0])) < 0)
		return error;
	rq->status = 200;
	return 0;
}

/* If-Match: "N" (or N, or W/"N") -> N; 0 when absent; -1 when unreadable. */
static int64_t if_match(dk_req *rq)
{
	const char *h = dk_api_header(rq, "If-Match");
	char *end;
	long long v;

	if (!h)
		return 0;
	if (strncmp(h, "W/", 2) == 0)
		h += 2;
	if (*h == '"')
		h++;
	v = strtoll(h, &end, 10);
	if (*end == '.') /* a GET's ETag: the version, then the moves' mark */
		end += 1 + strspn(end + 1, "0123456789abcdef");
	if (end == h || v < 1 || (*end && strcmp(end, "\"") != 0))
		return -1;
	return v;
}

static int act_in_writer(dk_req *rq, dk_runner *r, void *arg)
{
	const dk_act_opts *o = arg;
	int error;

	if ((error = dk_runner_act(r, &rq->json, o)) < 0) {
		/* A conflict because the version moved between our check and
		 * the act is a failed precondition, like the check before. */
		json_t *again = NULL;
		if (error == DK_ECONFLICT && o->expect_version &&
		    dk_runner_show(r, &again, o->instance) == 0 &&
		    json_integer_value(json_object_get(again, "version")) != o->expect_version) {
			dk_api_problem(rq, 412, "instance %s changed while you acted; GET it again",
			               o->instance);
			error = 0;
		}
		json_decref(again);
		return error;
	}
	rq->status = 200;
	set_etag(rq, rq->json);
	return 0;
}

int dk_route_instance_act(dk_req *rq)
{
	write_job *w;
	json_t *inst = NULL;
	int bad = 0, error = 0;
	int64_t expect = if_match(rq);

	if (expect < 0)
		return dk_api_problem(rq, 400,
		                      "If-Match must be the ETag of the instance, e.g. "
		                      "\"3\"");
	w = dk_calloc(1, sizeof(*w));
	w->ok = 200;
	if (dk_api_body_object(rq, &w->body))
		goto refused;
	w->act.comment = str_field(rq, w->body, "comment", &bad);
	if (bad || vars_of(rq, json_object_get(w->body, "vars"), &w->kv, &w->n, &w->vals))
		goto refused;
	/* Seeing comes first: acting on what you cannot see says nothing.
	 * The snapshot read for it is handed to the writer, which parses it
	 * again only if the instance moved meanwhile. */
	if ((error = dk_runner_show_preload(rq->ctx->runner, &inst, rq->params[0], &w->pre)) < 0 ||
	    (error = dk_api_may_see(rq, inst)) < 0)
		goto refused;
	if (expect) {
		json_int_t now_v = json_integer_value(json_object_get(inst, "version"));
		if (now_v != expect) {
			dk_api_problem(rq, 412,
			               "instance %s is at version %lld, not %lld: someone acted "
			               "first; GET it again and decide anew",
			               rq->params[0], (long long)now_v, (long long)expect);
			goto refused;
		}
	}
	json_decref(inst);
	w->act.instance = rq->params[0];
	w->act.transition = rq->params[1];
	w->act.actor = rq->user;
	w->act.vars = w->kv;
	w->act.nvars = w->n;
	w->act.expect_version = expect;
	w->act.pre = w->pre;
	dk_api_write(rq, act_in_writer, &w->act, write_done, w);
	return 0;
refused:
	json_decref(inst);
	write_done(rq, w);
	return error;
}

static int recall_in_writer(dk_req *rq, dk_runner *r, void *arg)
{
	const write_job *w = arg;
	int error;

	if ((error = dk_runner_recall(r, &rq->json, rq->params[0], rq->user, w->comment)) < 0)
		return error;
	rq->status = 200;
	set_etag(rq, rq->json);
	return 0;
}

int dk_route_instance_recall(dk_req *rq)
{
	write_job *w = dk_calloc(1, sizeof(*w));
	json_t *inst = NULL;
	int bad = 0, error = 0;

	w->ok = 200;
	if (dk_api_body_object(rq, &w->body))
		goto refused;
	w->comment = str_field(rq, w->body, "comment", &bad);
	if (bad)
		goto refused;
	if ((error = shown(rq, &inst)) < 0)
		goto refused;
	json_decref(inst);
	dk_api_write(rq, recall_in_writer, w, write_done, w);
	return 0;
refused:
	json_decref(inst);
	write_done(rq, w);
	return error;
}
