/* routes_flows.c - flows: list, deploy (XML body), the model of one flow
 * as JSON (what the inbox page draws), its diagram; loading the org. */
#include "api/api_int.h"

#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int dk_route_flows_list(dk_req *rq)
{
	const char *all = dk_api_query(rq, "all");
	int error = dk_runner_flows(rq->ctx->runner, &rq->json,
	                            all && (strcmp(all, "1") == 0 || strcmp(all, "true") == 0));
	if (error < 0)
		return error;
	rq->status = 200;
	return 0;
}

/* The runner loads flows and org files from paths: the body goes to a
 * private temporary file named like what it holds, so check messages read
 * "flow.xml:12: ...". *dir and *path are the caller's to remove and free. */
static int body_to_file(dk_req *rq, char **dir, char **path, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	dk_buf b = DK_BUF_INIT;
	FILE *f;

	*path = NULL;
	dk_buf_printf(&b, "%s/docket-upload-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	*dir = dk_buf_detach(&b);
	if (!mkdtemp(*dir)) {
		free(*dir);
		*dir = NULL;
		return dk_error_set(DK_EINTERNAL, "cannot make a temporary directory: %s",
		                    strerror(errno));
	}
	dk_buf_printf(&b, "%s/%s", *dir, name);
	*path = dk_buf_detach(&b);
	if (!(f = fopen(*path, "wb")))
		return dk_error_set(DK_EINTERNAL, "cannot write a temporary file: %s",
		                    strerror(errno));
	size_t wrote = fwrite(rq->body, 1, rq->body_len, f);
	if (fclose(f) != 0 || wrote != rq->body_len)
		return dk_error_set(DK_EINTERNAL, "cannot write a temporary file: %s",
		                    strerror(errno));
	return 0;
}

static void remove_file(char *dir, char *path)
{
	if (path)
		unlink(path);
	if (dir)
		rmdir(dir);
	free(path);
	free(dir);
}

/* A check failure as 422 with every diagnostic: {line, severity, message}. */
static void diags_problem(dk_req *rq, dk_diags *d)
{
	json_t *errs = json_array();
	dk_api_fail(rq, DK_EINVALID);
	for (size_t i = 0; i < d->count; i++)
		json_array_append_new(
		    errs, json_pack("{s:i, s:s, s:s}", "line", d->items[i].line, "severity",
		                    d->items[i].severity == DK_DIAG_ERROR ? "error" : "warning",
		                    "message", d->items[i].message));
	json_object_set_new(rq->json, "errors", errs);
}

static int load_xml(dk_req *rq, int org)
{
	dk_diags diags = DK_DIAGS_INIT;
	char *dir = NULL, *path = NULL;
	int error;

	if (rq->body_len == 0)
		return dk_api_problem(rq, 400, "send the %s file as the body",
		                      org ? "org directory" : "flow");
	if ((error = body_to_file(rq, &dir, &path, org ? "org.xml" : "flow.xml")) < 0)
		goto cleanup;
	error = org ? dk_runner_org_load(rq->ctx->runner, &rq->json, path, &diags)
	            : dk_runner_deploy(rq->ctx->runner, &rq->json, path, &diags);
	if (error == DK_EINVALID && diags.errors) {
		diags_problem(rq, &diags);
		error = 0;
	} else if (error == 0) {
		rq->status = org                                                    ? 200
		             : json_is_true(json_object_get(rq->json, "unchanged")) ? 200
		                                                                    : 201;
	}
cleanup:
	dk_diags_free(&diags);
	remove_file(dir, path);
	return error;
}

int dk_route_flows_deploy(dk_req *rq)
{
	return load_xml(rq, 0);
}

int dk_route_org_load(dk_req *rq)
{
	int error = load_xml(rq, 1);
	if (error == 0 && rq->status == 200 && rq->wake)
		rq->wake();
	return error;
}

/* The latest version of a flow, compiled. *out: dk_flow_free. */
static int load_flow(dk_req *rq, dk_flow **out, const char *id, int version)
{
	dk_flow_row row = {0};
	int error = dk_store_flow_get(rq->ctx->store, id, version, &row);
	if (error == DK_ENOTFOUND)
		return dk_error_set(DK_ENOTFOUND, "no flow '%s'; GET /api/flows lists them", id);
	if (error < 0)
		return error;
	error = dk_flow_load_buffer(out, row.flow_id, row.bytes, row.len, NULL);
	dk_flow_row_free(&row);
	return error;
}

static json_t *state_json(const dk_state *st)
{
	json_t *ts = json_array();
	for (size_t i = 0; i < st->ntransitions; i++) {
		const dk_transition *t = &st->transitions[i];
		json_array_append_new(ts, json_pack("{s:s, s:s, s:b, s:s?}", "id", t->id, "to",
		                                    t->to, "comment_required", t->comment_required,
		                                    "role", t->role));
	}
	return json_pack("{s:s, s:s?, s:b, s:b, s:s?, s:s?, s:o}", "id", st->id, "title", st->title,
	                 "initial", st->initial, "final", st->final, "region",
	                 st->region ? st->region->id : NULL, "parallel",
	                 st->region ? st->region->parallel->id : NULL, "transitions", ts);
}

int dk_route_flow_get(dk_req *rq)
{
	dk_flow *f = NULL;
	const char *v = dk_api_query(rq, "version");
	int error;

	if ((error = load_flow(rq, &f, rq->params[0], v ? (int)strtol(v, NULL, 10) : 0)) < 0)
		return error;
	if (!f)
		return dk_error_set(DK_EINTERNAL, "flow '%s' did not load", rq->params[0]);
	json_t *states = json_array(), *vars = json_array(), *ev = json_array();
	for (size_t i = 0; i < f->nstates; i++)
		json_array_append_new(states, state_json(&f->states[i]));
	static const char *const types[] = {"string", "number", "boolean", "date"};
	for (size_t i = 0; i < f->nvars; i++)
		json_array_append_new(
		    vars, json_pack("{s:s, s:s, s:b, s:s?}", "name", f->vars[i].name, "type",
		                    types[f->vars[i].type], "required", f->vars[i].required,
		                    "default", f->vars[i].default_value));
	for (size_t i = 0; i < f->nevidence; i++)
		json_array_append_new(ev, json_pack("{s:s, s:s, s:b}", "id", f->evidence[i].id,
		                                    "title", f->evidence[i].title, "multiple",
		                                    f->evidence[i].multiple));
	rq->json = json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:o}", "flow", f->id, "version",
	                     f->version, "title", f->title, "sha256", f->sha256, "vars", vars,
	                     "evidence", ev, "states", states);
	rq->status = 200;
	dk_flow_free(f);
	return 0;
}

/* ?format=dot|mermaid (default mermaid), ?instance=ID highlights its
 * current states (and needs the right to see it). */
int dk_route_flow_diagram(dk_req *rq)
{
	const char *format = dk_api_query(rq, "format");
	const char *inst = dk_api_query(rq, "instance");
	const char *hl[16] = {0};
	json_t *shown = NULL, *s;
	dk_flow *f = NULL;
	dk_buf out = DK_BUF_INIT;
	int version = 0, error;
	size_t i;

	if (!format)
		format = "mermaid";
	if (strcmp(format, "dot") != 0 && strcmp(format, "mermaid") != 0)
		return dk_api_problem(rq, 400, "format must be dot or mermaid, not '%s'", format);
	if (inst) {
		if ((error = dk_runner_show(rq->ctx->runner, &shown, inst)) < 0 ||
		    (error = dk_api_may_see(rq, shown)) < 0)
			goto cleanup;
		if (strcmp(json_string_value(json_object_get(shown, "flow")), rq->params[0]) != 0) {
			error = dk_api_problem(
			    rq, 400, "instance %s runs flow '%s', not '%s'", inst,
			    json_string_value(json_object_get(shown, "flow")), rq->params[0]);
			goto cleanup;
		}
		version = (int)json_integer_value(json_object_get(shown, "flow_version"));
		json_array_foreach(json_object_get(shown, "states"), i, s) if (i < 15) hl[i] =
		    json_string_value(s);
	}
	if ((error = load_flow(rq, &f, rq->params[0], version)) < 0 ||
	    (error = dk_flow_graph(&out, f, format, inst ? hl : NULL)) < 0)
		goto cleanup;
	rq->status = 200;
	rq->raw_len = out.len;
	rq->raw = dk_buf_detach(&out);
	rq->ctype = strcmp(format, "dot") == 0 ? "text/vnd.graphviz; charset=utf-8"
	                                       : "text/plain; charset=utf-8";
cleanup:
	dk_buf_free(&out);
	dk_flow_free(f);
	json_decref(shown);
	return error;
}
