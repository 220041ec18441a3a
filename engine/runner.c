/*
 * runner.c - the one place where the pure engine meets the store.
 *
 * Every write command follows the same shape: begin (BEGIN IMMEDIATE), load
 * what the engine needs, decide, write snapshot + events + tasks + timers +
 * outbox rows, commit. Any refusal or failure rolls the whole transaction
 * back, so a command either happened completely or not at all, and a
 * command that returned 0 is on disk (synchronous=FULL).
 *
 * Compiled flows are cached per (id, version) for the runner's lifetime:
 * a deployed version never changes, so the cache never goes stale. The org
 * directory is re-read when its SHA-256 changes.
 */
#include "engine/runner.h"

#include "engine/runner_int.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

int dk_runner_open(dk_runner **out, const char *home)
{
	dk_runner *r = dk_calloc(1, sizeof(*r));
	int error;

	*out = NULL;
	r->home = dk_strdup(home);
	/* The archive opens late, if at all (the notes of state changes are
	 * written by a catch-up): its settings are checked before anything is
	 * written. */
	if ((error = dk_archive_check_settings()) < 0 ||
	    (error = dk_store_open(&r->store, home)) < 0) {
		dk_runner_free(r);
		return error;
	}
	*out = r;
	return 0;
}

void dk_runner_free(dk_runner *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nflows; i++)
		dk_flow_free(r->flows[i]);
	free(r->flows);
	dk_org_free(r->org);
	dk_archive_free(r->archive);
	dk_store_close(r->store);
	free(r->home);
	free(r);
}

void dk_runner_set_now(dk_runner *r, int64_t now)
{
	r->fixed_now = now;
}

int64_t dk_runner_now(dk_runner *r)
{
	int64_t now = r->fixed_now;
	if (!now && dk_time_now(&now) < 0)
		now = 0;
	return now;
}

int dk_runner_archive(dk_runner *r, dk_archive **out)
{
	int error;
	if (!r->archive) {
		if ((error = dk_archive_open(&r->archive, r->home)) < 0)
			return error;
		if (r->no_auto_gc)
			dk_archive_set_auto_gc(r->archive, 0);
	}
	*out = r->archive;
	return 0;
}

void dk_runner_defer_gc(dk_runner *r)
{
	r->no_auto_gc = 1;
	if (r->archive)
		dk_archive_set_auto_gc(r->archive, 0);
}

int dk_runner_archive_gc(dk_runner *r, int *ran)
{
	dk_archive *a;
	int error;

	if (ran)
		*ran = 0;
	if ((error = dk_runner_archive(r, &a)) < 0)
		return error;
	return dk_archive_gc_past(ran, a, DK_ARCHIVE_AUTO_GC);
}

dk_store *dk_runner_store(dk_runner *r)
{
	return r->store;
}

/* ---- batches ---- */

int dk_runner_hooks_off(dk_runner *r, int *out)
{
	dk_hook_row *hooks = NULL;
	size_t n = 0;
	int error = dk_store_hook_list(r->store, &hooks, &n);

	*out = 1;
	for (size_t i = 0; error == 0 && i < n; i++)
		if (hooks[i].enabled)
			*out = 0;
	dk_hook_rows_free(hooks, n);
	return error;
}

int dk_runner_batch_begin(dk_runner *r)
{
	int error;

	if (r->batch)
		return dk_error_set(DK_EINTERNAL, "a batch is already open on this runner");
	const dk_org *org;

	if ((error = dk_store_begin(r->store)) < 0)
		return error;
	r->batch = 1;
	r->depth = 0;
	/* The write lock is ours until the commit: neither the org nor the
	 * webhook subscriptions can change meanwhile, so they are read once
	 * for the whole batch, as a tick does; with no subscription enabled
	 * the batch's events build no payloads (they would queue nothing). */
	if ((error = dk_runner_org(r, &org)) < 0 ||
	    (error = dk_runner_hooks_off(r, &r->no_hooks)) < 0) {
		dk_runner_batch_abort(r);
		return error;
	}
	r->org_pinned = 1;
	return 0;
}

int dk_runner_savepoint(dk_runner *r)
{
	int error;

	if ((error = dk_store_savepoint(r->store)) < 0)
		return error;
	r->depth++;
	return 0;
}

int dk_runner_release(dk_runner *r)
{
	int error;

	if (r->depth == 0)
		return dk_error_set(DK_EINTERNAL, "no savepoint to release");
	if ((error = dk_store_savepoint_release(r->store)) < 0)
		return error;
	r->depth--;
	return 0;
}

int dk_runner_rollback_to(dk_runner *r)
{
	int error;

	if (r->depth == 0)
		return dk_error_set(DK_EINTERNAL, "no savepoint to roll back to");
	r->depth--;
	if ((error = dk_store_savepoint_rollback(r->store)) < 0)
		r->depth = 0; /* the database gave the whole transaction up */
	return error;
}

int dk_runner_batch_commit(dk_runner *r)
{
	if (!r->batch)
		return dk_error_set(DK_EINTERNAL, "no batch to commit");
	r->batch = 0;
	r->depth = 0;
	r->org_pinned = r->no_hooks = 0;
	return dk_store_commit(r->store);
}

void dk_runner_batch_abort(dk_runner *r)
{
	r->batch = 0;
	r->depth = 0;
	r->org_pinned = r->no_hooks = 0;
	dk_store_rollback(r->store);
}

json_t *dk_json_time(int64_t t)
{
	char s[DK_TIME_STRLEN];
	if (!t)
		return json_null();
	dk_time_format(s, t);
	return json_string(s);
}

json_t *dk_json_strn(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Reads the clock once per command: DOCKET_NOW must parse. */
int dk_runner_clock(dk_runner *r, int64_t *now)
{
	if (r->fixed_now) {
		*now = r->fixed_now;
		return 0;
	}
	return dk_time_now(now);
}

/* The flow or org rebuilt from the compiled form the store keeps for
 * these very bytes (into *flow or *org): 0, or DK_ENOTFOUND (also for a
 * damaged form) when the caller must load the file itself. */
static int compiled_get(dk_runner *r, dk_flow **flow, dk_org **org, const char *name,
                        const char *kind, const char *sha256, const char *bytes, size_t len)
{
	char *text = NULL;
	int error =
	    dk_store_compiled_get(r->store, kind, sha256, DK_COMPILED_FORMAT, bytes, len, &text);

	if (error == 0 && flow)
		error = dk_flow_from_compiled(flow, name, sha256, text);
	else if (error == 0 && org)
		error = dk_org_from_compiled(org, name, sha256, text);
	free(text);
	if (error < 0) {
		dk_error_clear();
		return DK_ENOTFOUND;
	}
	return 0;
}

/* Stores the compiled form of a flow or org just loaded from bytes, when
 * the store is in a write transaction already (a deploy, an org load, a
 * step): the transaction's commit keeps it, its rollback drops it, and a
 * read is never turned into a write for it. A failure costs only the
 * cache, never the command. */
static void compiled_keep(dk_runner *r, const char *kind, const char *sha256, const char *bytes,
                          size_t len, const dk_flow *flow, const dk_org *org)
{
	char *text;

	if (!dk_store_in_transaction(r->store))
		return;
	text = flow ? dk_flow_compiled(flow) : org ? dk_org_compiled(org) : NULL;
	if (text &&
	    dk_store_compiled_put(r->store, kind, sha256, DK_COMPILED_FORMAT, bytes, len, text) < 0)
		dk_error_clear();
	free(text);
}

/* The compiled form of a flow or org being deployed or loaded, stored in
 * the same transaction as its file. */
static int compiled_put(dk_runner *r, const char *kind, const char *sha256, const char *bytes,
                        size_t len, const dk_flow *flow, const dk_org *org)
{
	char *text = flow ? dk_flow_compiled(flow) : org ? dk_org_compiled(org) : NULL;
	int error;

	if (!text)
		return dk_error_set(DK_EINTERNAL, "out of memory compiling the %s", kind);
	error = dk_store_compiled_put(r->store, kind, sha256, DK_COMPILED_FORMAT, bytes, len, text);
	free(text);
	return error;
}

static const dk_flow *cached_flow(dk_runner *r, const char *id, int version)
{
	for (size_t i = 0; i < r->nflows; i++)
		if (r->flows[i]->version == version && strcmp(r->flows[i]->id, id) == 0)
			return r->flows[i];
	return NULL;
}

int dk_runner_flow(dk_runner *r, const dk_flow **out, const char *id, int version)
{
	dk_flow_row row = {0};
	dk_flow *flow = NULL;
	int error;

	/* A pinned version never changes, so the cache answers for it; "the
	 * latest" (version 0) must ask the store which version that is. */
	if (version && (*out = cached_flow(r, id, version)))
		return 0;
	if ((error = dk_store_flow_get(r->store, id, version, &row)) < 0) {
		if (error == DK_ENOTFOUND)
			dk_error_set(DK_ENOTFOUND,
			             "no flow '%s' is deployed; deploy it with docket deploy FILE "
			             "(docket flows lists what is deployed)",
			             id);
		return error;
	}
	if ((*out = cached_flow(r, id, row.version))) {
		dk_flow_row_free(&row);
		return 0;
	}
	if (compiled_get(r, &flow, NULL, id, "flow", row.sha256, row.bytes, row.len) == 0)
		goto loaded;
	/* no diags: the first error becomes dk_error_last() for the message */
	error = dk_flow_load_deployed(&flow, id, row.bytes, row.len, row.sha256, NULL);
	if (error == 0)
		compiled_keep(r, "flow", row.sha256, row.bytes, row.len, flow, NULL);
	if (error < 0) {
		char why[1024]; /* dk_error_set must not read the text it replaces */
		snprintf(why, sizeof(why), "%s", dk_error_last());
		error = dk_error_set(DK_EINTERNAL, "deployed flow %s@%d no longer loads: %s", id,
		                     row.version, why);
		dk_flow_row_free(&row);
		return error;
	}
loaded:
	dk_flow_row_free(&row);
	r->flows = dk_realloc(r->flows, (r->nflows + 1) * sizeof(dk_flow *));
	r->flows[r->nflows++] = flow;
	*out = flow;
	return 0;
}

int dk_runner_org(dk_runner *r, const dk_org **out)
{
	char *bytes = NULL;
	size_t len = 0;
	char sha[65];
	dk_org *org = NULL;
	int error;

	if (r->org_pinned && r->org) {
		*out = r->org;
		return 0;
	}
	/* Every command asks, several times: the stored SHA-256 answers
	 * without reading and hashing the whole file. */
	if ((error = dk_store_org_sha256(r->store, sha)) < 0 ||
	    (r->org && strcmp(r->org->sha256, sha) == 0) ||
	    (error = dk_store_org_bytes(r->store, &bytes, &len)) < 0) {
		if (error == 0) {
			*out = r->org;
			return 0;
		}
		if (error != DK_ENOTFOUND)
			return error;
		/* No org loaded: an empty directory, so flows that only
		 * use $initiator and user ids still run. */
		if (!r->org)
			r->org = dk_calloc(1, sizeof(*r->org));
		*out = r->org;
		return 0;
	}
	if (compiled_get(r, NULL, &org, "org", "org", sha, bytes, len) < 0) {
		dk_diags diags = DK_DIAGS_INIT;
		error = dk_org_load_buffer(&org, "org", bytes, len, &diags);
		dk_diags_free(&diags);
		if (error < 0) {
			free(bytes);
			return dk_error_set(DK_EINTERNAL,
			                    "the stored org directory no longer loads: %s",
			                    dk_error_last());
		}
		compiled_keep(r, "org", sha, bytes, len, NULL, org);
	}
	free(bytes);
	dk_org_free(r->org);
	r->org = org;
	*out = org;
	return 0;
}

/* ---- definitions and org ---- */

int dk_runner_deploy(dk_runner *r, json_t **out, const char *path, dk_diags *diags)
{
	char *bytes = NULL;
	size_t len = 0;
	dk_flow *flow = NULL;
	int error, unchanged = 0;
	int64_t now;

	*out = NULL;
	if ((error = dk_runner_clock(r, &now)) < 0 ||
	    (error = dk_read_file(&bytes, &len, path, (size_t)DK_FLOW_MAX_BYTES)) < 0)
		goto cleanup;
	if ((error = dk_flow_load_buffer(&flow, path, bytes, len, diags)) < 0) {
		if (diags && diags->errors)
			dk_error_set(DK_EINVALID, "%s has %d error%s; fix them and deploy again",
			             path, diags->errors, diags->errors == 1 ? "" : "s");
		goto cleanup;
	}
	if ((error = dk_store_begin(r->store)) < 0)
		goto cleanup;
	if ((error = dk_store_flow_put(r->store, flow->id, flow->version, flow->title, bytes, len,
	                               now, &unchanged)) < 0 ||
	    (error = compiled_put(r, "flow", flow->sha256, bytes, len, flow, NULL)) < 0 ||
	    (error = dk_store_commit(r->store)) < 0) {
		dk_store_rollback(r->store);
		goto cleanup;
	}
	*out = json_pack("{s:s, s:i, s:s, s:b}", "flow", flow->id, "version", flow->version,
	                 "sha256", flow->sha256, "unchanged", unchanged);
cleanup:
	dk_flow_free(flow);
	free(bytes);
	return error;
}

int dk_runner_org_load(dk_runner *r, json_t **out, const char *path, dk_diags *diags)
{
	char *bytes = NULL;
	size_t len = 0;
	dk_org *org = NULL;
	int error;
	int64_t now;

	*out = NULL;
	if ((error = dk_runner_clock(r, &now)) < 0 ||
	    (error = dk_read_file(&bytes, &len, path, (size_t)DK_FLOW_MAX_BYTES)) < 0)
		goto cleanup;
	if ((error = dk_org_load_buffer(&org, path, bytes, len, diags)) < 0) {
		if (diags && diags->errors)
			dk_error_set(DK_EINVALID, "%s has %d error%s; fix them and load again",
			             path, diags->errors, diags->errors == 1 ? "" : "s");
		goto cleanup;
	}
	if ((error = dk_store_begin(r->store)) < 0)
		goto cleanup;
	if ((error = dk_store_org_replace(r->store, org, bytes, len, now)) < 0 ||
	    (error = compiled_put(r, "org", org->sha256, bytes, len, NULL, org)) < 0 ||
	    (error = dk_store_commit(r->store)) < 0) {
		dk_store_rollback(r->store);
		goto cleanup;
	}
	*out = json_pack("{s:I, s:I, s:s}", "users", (json_int_t)org->nusers, "depts",
	                 (json_int_t)org->ndepts, "sha256", org->sha256);
cleanup:
	dk_org_free(org);
	free(bytes);
	return error;
}

int dk_runner_flows(dk_runner *r, json_t **out, int all)
{
	dk_flow_row *rows = NULL;
	size_t n = 0;
	int error;

	*out = NULL;
	if ((error = dk_store_flow_list(r->store, all, &rows, &n)) < 0)
		return error;
	*out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*out, json_pack("{s:s, s:i, s:o, s:s, s:o}", "flow",
		                                      rows[i].flow_id, "version", rows[i].version,
		                                      "title", dk_json_strn(rows[i].title),
		                                      "sha256", rows[i].sha256, "deployed_at",
		                                      dk_json_time(rows[i].deployed_at)));
	dk_flow_rows_free(rows, n);
	return 0;
}

/* ---- reads ---- */

json_t *dk_event_json(const dk_event_row *e)
{
	json_t *data = NULL;
	if (e->data)
		data = json_loads(e->data, 0, NULL);
	json_t *j =
	    json_pack("{s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "seq", (json_int_t)e->seq,
	              "type", e->type, "at", dk_json_time(e->at), "actor", dk_json_strn(e->actor),
	              "on_behalf_of", dk_json_strn(e->on_behalf_of), "from",
	              dk_json_strn(e->from_state), "to", dk_json_strn(e->to_state), "transition",
	              dk_json_strn(e->transition), "comment", dk_json_strn(e->comment));
	if (data) {
		json_t *note = json_object_get(data, "note");
		if (json_is_string(note))
			json_object_set(j, "note", note);
		json_object_set_new(j, "data", data);
	}
	return j;
}

int dk_runner_log(dk_runner *r, json_t **out, const char *instance)
{
	dk_instance_row row = {0};
	dk_event_row *ev = NULL;
	size_t n = 0;
	int error;

	*out = NULL;
	if ((error = dk_runner_get_instance(r, &row, instance)) < 0)
		return error;
	dk_instance_row_free(&row);
	if ((error = dk_store_event_list(r->store, instance, &ev, &n)) < 0)
		return error;
	*out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*out, dk_event_json(&ev[i]));
	dk_event_rows_free(ev, n);
	return 0;
}

int dk_runner_get_instance(dk_runner *r, dk_instance_row *out, const char *id)
{
	int error = dk_store_instance_get(r->store, id, out);
	if (error == DK_ENOTFOUND)
		dk_error_set(DK_ENOTFOUND, "no instance '%s'; docket list shows the instances", id);
	return error;
}

int dk_runner_list(dk_runner *r, json_t **out, const dk_list_opts *opts)
{
	dk_instance_filter f = DK_INSTANCE_FILTER_INIT;
	dk_instance_row *rows = NULL;
	size_t n = 0;
	int error;
	int64_t now;

	*out = NULL;
	if ((error = dk_runner_clock(r, &now)) < 0)
		return error;
	f.flow = opts->flow;
	f.state = opts->state;
	f.initiator = opts->initiator;
	f.status = opts->status;
	f.overdue_at = opts->overdue ? now : 0;
	f.limit = opts->limit;
	if ((error = dk_store_instance_list(r->store, &f, &rows, &n)) < 0)
		return error;
	*out = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *j = json_pack(
		    "{s:s, s:s, s:i, s:o, s:s, s:s, s:s, s:o, s:o, s:I}", "id", rows[i].id, "flow",
		    rows[i].flow_id, "flow_version", rows[i].flow_version, "title",
		    dk_json_strn(rows[i].title), "status", rows[i].status, "state", rows[i].state,
		    "initiator", rows[i].initiator, "created_at", dk_json_time(rows[i].created_at),
		    "updated_at", dk_json_time(rows[i].updated_at), "version",
		    (json_int_t)rows[i].version);
		if (opts->overdue) {
			int64_t due = 0;
			if (dk_runner_earliest_due(r, rows[i].id, &due) == 0 && due)
				json_object_set_new(j, "overdue_since", dk_json_time(due));
		}
		json_array_append_new(*out, j);
	}
	dk_instance_rows_free(rows, n);
	return 0;
}

int dk_runner_earliest_due(dk_runner *r, const char *instance, int64_t *out)
{
	dk_task_row *t = NULL;
	size_t n = 0;
	int error = dk_store_task_list_for_instance(r->store, instance, &t, &n);
	*out = 0;
	if (error < 0)
		return error;
	for (size_t i = 0; i < n; i++)
		if (t[i].due_at && (!*out || t[i].due_at < *out))
			*out = t[i].due_at;
	dk_task_rows_free(t, n);
	return 0;
}

json_t *dk_task_json(const dk_task_row *t, int64_t now)
{
	json_t *j =
	    json_pack("{s:s, s:s, s:s, s:o, s:o, s:b}", "instance", t->instance_id, "state",
	              t->state_id, "user", t->user_id, "role", dk_json_strn(t->role), "due_at",
	              dk_json_time(t->due_at), "overdue", t->due_at && t->due_at <= now);
	if (t->flow_id)
		json_object_set_new(j, "flow", json_string(t->flow_id));
	if (t->title)
		json_object_set_new(j, "title", json_string(t->title));
	if (t->on_behalf_of)
		json_object_set_new(j, "for", json_string(t->on_behalf_of));
	return j;
}

int dk_runner_inbox(dk_runner *r, json_t **out, const char *user)
{
	dk_task_row *t = NULL;
	size_t n = 0;
	int error;
	int64_t now;

	*out = NULL;
	if ((error = dk_runner_clock(r, &now)) < 0 ||
	    (error = dk_store_task_list_for_user(r->store, user, now, 0, 0, &t, &n)) < 0)
		return error;
	*out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*out, dk_task_json(&t[i], now));
	dk_task_rows_free(t, n);
	return 0;
}

/* ---- delegation ---- */

static json_t *delegation_json(const dk_delegation_row *d, int64_t now)
{
	return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:b}", "id", (json_int_t)d->id,
	                 "from", d->from_user, "to", d->to_user, "role", dk_json_strn(d->role),
	                 "until", dk_json_time(d->until), "created_at", dk_json_time(d->created_at),
	                 "created_by", dk_json_strn(d->created_by), "active",
	                 d->created_at <= now && now < d->until);
}

int dk_runner_delegate(dk_runner *r, json_t **out, const char *from, const char *to,
                       const char *role, const char *until, const char *by)
{
	dk_delegation_row row = {0};
	const dk_org *org = NULL;
	int error;
	int64_t now, until_t;

	*out = NULL;
	if ((error = dk_runner_clock(r, &now)) < 0)
		return error;
	if (dk_time_parse(&until_t, until) < 0)
		return dk_error_set(DK_EINVALID,
		                    "--until '%s' is not a date; write it like "
		                    "2026-12-31 or 2026-12-31T18:00:00+08:00",
		                    until);
	if (until_t <= now)
		return dk_error_set(DK_EINVALID, "--until %s is already past; give a later date",
		                    until);
	if (strcmp(from, to) == 0)
		return dk_error_set(DK_EINVALID, "%s cannot delegate to themselves", from);
	if ((error = dk_runner_org(r, &org)) < 0)
		return error;
	if (!dk_org_user(org, from) || !dk_org_user(org, to))
		return dk_error_set(DK_ENOTFOUND,
		                    "no user '%s' in the org directory; load it with docket org "
		                    "load FILE",
		                    dk_org_user(org, from) ? to : from);
	if (role && !dk_user_has_role(dk_org_user(org, from), role))
		return dk_error_set(
		    DK_EINVALID, "%s does not hold role '%s', so cannot delegate it", from, role);
	row.from_user = (char *)from;
	row.to_user = (char *)to;
	row.role = (char *)role;
	row.until = until_t;
	row.created_at = now;
	row.created_by = (char *)by;
	if ((error = dk_store_begin(r->store)) < 0)
		return error;
	if ((error = dk_store_delegation_add(r->store, &row)) < 0 ||
	    (error = dk_store_commit(r->store)) < 0) {
		dk_store_rollback(r->store);
		return error;
	}
	*out = delegation_json(&row, now);
	return 0;
}

int dk_runner_delegations(dk_runner *r, json_t **out)
{
	dk_delegation_row *rows = NULL;
	size_t n = 0;
	int error;
	int64_t now;

	*out = NULL;
	if ((error = dk_runner_clock(r, &now)) < 0 ||
	    (error = dk_store_delegation_list(r->store, &rows, &n)) < 0)
		return error;
	*out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*out, delegation_json(&rows[i], now));
	dk_delegation_rows_free(rows, n);
	return 0;
}
