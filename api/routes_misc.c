/* routes_misc.c - the health check, the OpenAPI description, the inbox
 * page and its assets, who am I, my inbox and the delegations. */
#include "api/api_int.h"

#include "util/error.h"
#include "util/resource.h"

#include <string.h>

int dk_route_healthz(dk_req *rq)
{
	/* Healthy means the home answers, not merely that we listen. */
	if (!rq->ctx)
		return dk_api_problem(rq, 503, "the server cannot open its home: %s",
		                      dk_error_last());
	int64_t v = 0;
	int error = dk_store_timer_next_due(rq->ctx->store, &v);
	if (error < 0)
		return dk_api_problem(rq, 503, "the database does not answer: %s", dk_error_last());
	rq->status = 200;
	rq->json = json_pack("{s:s}", "status", "ok");
	return 0;
}

static int resource(dk_req *rq, const char *name, const char *ctype)
{
	size_t len = 0;
	const char *bytes = dk_resource(name, &len);
	if (!bytes)
		return dk_api_problem(rq, 404, "no file %s in this build", name);
	rq->status = 200;
	rq->lent = bytes;
	rq->raw_len = len;
	rq->ctype = ctype;
	return 0;
}

int dk_route_openapi(dk_req *rq)
{
	return resource(rq, "api/static/openapi.json", "application/json");
}

int dk_route_page(dk_req *rq)
{
	return resource(rq, "api/static/inbox.html", "text/html; charset=utf-8");
}

int dk_route_static(dk_req *rq)
{
	static const struct {
		const char *name, *ctype;
	} files[] = {
	    {"inbox.js", "text/javascript; charset=utf-8"},
	    {"inbox.css", "text/css; charset=utf-8"},
	};
	char path[64];

	/* Only the listed files: no path from the URL reaches a lookup. */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (strcmp(rq->params[0], files[i].name) == 0) {
			snprintf(path, sizeof(path), "api/static/%s", files[i].name);
			return resource(rq, path, files[i].ctype);
		}
	return dk_api_problem(rq, 404, "no static file '%s'", rq->params[0]);
}

int dk_route_me(dk_req *rq)
{
	const dk_org *org;
	const dk_user *u;
	int error;

	if ((error = dk_api_ctx_org(rq->ctx, &org)) < 0)
		return error;
	u = dk_org_user(org, rq->user);
	json_t *roles = json_array();
	for (size_t i = 0; u && i < u->nroles; i++)
		json_array_append_new(roles, json_string(u->roles[i]));
	rq->status = 200;
	rq->json = json_pack("{s:s, s:s?, s:s?, s:o, s:b, s:b}", "user", rq->user, "name",
	                     u ? u->name : NULL, "dept", u ? u->dept : NULL, "roles", roles,
	                     "admin", dk_api_is_admin(rq), "sees_all", dk_api_sees_all(rq));
	return 0;
}

int dk_route_inbox(dk_req *rq)
{
	int error = dk_runner_inbox(rq->ctx->runner, &rq->json, rq->user);
	if (error < 0)
		return error;
	rq->status = 200;
	return 0;
}

static int involves(const json_t *d, const char *user)
{
	static const char *const keys[] = {"from", "to", "by", "created_by"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = json_string_value(json_object_get(d, keys[i]));
		if (v && strcmp(v, user) == 0)
			return 1;
	}
	return 0;
}

int dk_route_delegations(dk_req *rq)
{
	json_t *all = NULL, *d;
	size_t i;
	int error;

	if ((error = dk_runner_delegations(rq->ctx->runner, &all)) < 0)
		return error;
	/* Those who see everything see every delegation; others theirs. */
	if (!dk_api_sees_all(rq)) {
		json_t *mine = json_array();
		json_array_foreach(all, i, d) if (involves(d, rq->user)) json_array_append(mine, d);
		json_decref(all);
		all = mine;
	}
	rq->status = 200;
	rq->json = all;
	return 0;
}
