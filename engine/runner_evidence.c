/*
 * runner_evidence.c - evidence uploads: git first, then the database.
 *
 * The order matters for trust: the bytes are in the archive (fsynced, the
 * ref moved by compare-and-swap) before the database says they exist, so
 * a row never points at a file that is not there. The reverse gap — an
 * archive commit that a crash left unrecorded — is found and repaired by
 * `docket verify`, which matches commits to events by their Docket-Event
 * key, kept in the evidence.attached event's data.
 */
#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/runner_int.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* When the upload of kind k is due in the current visit, from the flow's
 * due= (a duration from state entry or an XPath date); 0 when never. */
static int64_t due_at(const dk_engine_env *env, const dk_snapshot *snap, const dk_evidence_kind *k,
                      const char *actor)
{
	const dk_snap_state *st = dk_snapshot_state(snap, snap->state);
	char *text = NULL;
	int64_t t = 0;

	/* on the zone's calendar, as the engine counts it (evidence.c) */
	if (k->has_due_after && st)
		return dk__add_local(dk__env_zone(env), st->entered_at, &k->due_after);
	if (k->due_at && dk_engine_eval_string(&text, env, snap, actor, k->due_at) == 0 && text &&
	    dk__parse_time(&t, dk__env_zone(env), text) < 0)
		t = 0;
	free(text);
	dk_error_clear();
	return t;
}

static json_t *evidence_json(const dk_evidence_row *e)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:o, s:o, s:s, s:o, s:o, s:b, "
	                 "s:i, s:I}",
	                 "instance", e->instance_id, "kind", e->kind, "name", e->name, "state",
	                 e->state_id, "visit", e->visit, "size", (json_int_t)e->size, "sha256",
	                 e->sha256, "commit", dk_json_strn(e->git_commit), "blob",
	                 dk_json_strn(e->git_blob), "uploader", e->uploader, "uploaded_at",
	                 dk_json_time(e->uploaded_at), "due_at", dk_json_time(e->due_at), "late",
	                 e->late, "days_late", e->days_late, "event_seq", (json_int_t)e->event_seq);
}

/* The second half of attach: one transaction records an archived upload,
 * against the snapshot as it is now (someone may have acted meanwhile: the
 * engine checks again). */
int dk_runner_evidence_record(dk_runner *r, json_t **out, const dk_evidence_record *rec)
{
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_loaded l;
	dk_evidence_cmd cmd = {0};
	dk_evidence_row ev = {0};
	const dk_evidence_kind *k;
	int error, began = 0;
	int64_t seq = 0;

	*out = NULL;
	memset(&l, 0, sizeof(l));
	cmd.kind = rec->kind;
	cmd.actor = rec->actor;
	cmd.name = rec->name;
	cmd.sha256 = rec->sha256;
	cmd.size = rec->size;
	if ((error = dk_store_begin(r->store)) < 0)
		goto cleanup;
	began = 1;
	if ((error = dk_runner_load(r, &l, rec->instance, rec->actor, rec->at)) < 0)
		goto cleanup;
	if ((error = dk_engine_evidence(&res, &l.env, l.snap, &cmd)) < 0)
		goto cleanup;
	k = dk_flow_evidence(l.env.flow, rec->kind);
	/* The archive's commit and key go into the audit event, so verify
	 * can match every archive commit to the event that recorded it. */
	for (size_t i = 0; i < res.nevents; i++) {
		if (strcmp(res.events[i].type, DK_EV_EVIDENCE) != 0)
			continue;
		json_t *d = res.events[i].data ? json_loads(res.events[i].data, 0, NULL) : NULL;
		if (!d)
			d = json_object();
		json_object_set_new(d, "archive_event", json_string(rec->event));
		json_object_set_new(d, "commit", json_string(rec->commit));
		json_object_set_new(d, "sha256", json_string(rec->sha256));
		json_object_set_new(d, "name", json_string(rec->name));
		json_object_set_new(d, "kind", json_string(k->id));
		char *text = json_dumps(d, JSON_COMPACT);
		dk_engine_result_set_data(&res, &res.events[i], text);
		free(text);
		json_decref(d);
	}
	if ((error = dk_runner_apply(r, &l.row, &res, &seq)) < 0)
		goto cleanup;
	const dk_snap_state *st = dk_snapshot_state(l.snap, l.snap->state);
	ev.instance_id = l.row.id;
	ev.kind = (char *)k->id;
	ev.name = (char *)rec->name;
	ev.state_id = l.snap->state;
	ev.visit = st ? st->visits : 1;
	ev.size = rec->size;
	ev.sha256 = (char *)rec->sha256;
	ev.git_commit = (char *)rec->commit;
	ev.git_blob = (char *)rec->blob;
	ev.uploader = (char *)rec->actor;
	ev.uploaded_at = rec->at;
	ev.due_at = due_at(&l.env, l.snap, k, rec->actor);
	ev.late = ev.due_at && rec->at > ev.due_at;
	ev.days_late = ev.late ? (int)((rec->at - ev.due_at + 86399) / 86400) : 0;
	ev.event_seq = seq;
	if ((error = dk_store_evidence_add(r->store, &ev)) < 0)
		goto cleanup;
	if ((error = dk_store_commit(r->store)) < 0)
		goto cleanup;
	began = 0;
	*out = evidence_json(&ev);
cleanup:
	if (began)
		dk_store_rollback(r->store);
	dk_engine_result_free(&res);
	dk_loaded_free(&l);
	return error;
}

int dk_runner_attach(dk_runner *r, json_t **out, const dk_attach_opts *opts)
{
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_loaded l;
	dk_archive *archive;
	dk_archive_put_opts po = DK_ARCHIVE_PUT_OPTS_INIT;
	dk_archive_put_result put;
	dk_evidence_cmd cmd = {0};
	dk_evidence_row ev = {0};
	const dk_evidence_kind *k;
	const dk_user *user;
	char key[37], flowref[256], *safe = NULL;
	const char *name = opts->name ? opts->name : base_name(opts->path);
	struct stat sb;
	dk_notes_sync sync;
	int64_t now, waiting = -1;
	int error, lock = -1;

	*out = NULL;
	memset(&l, 0, sizeof(l));
	if ((error = dk_runner_clock(r, &now)) < 0)
		return error;
	if (stat(opts->path, &sb) < 0 || !S_ISREG(sb.st_mode))
		return dk_error_set(DK_ENOTFOUND, "%s: no such file; name a regular file to attach",
		                    opts->path);
	if ((error = dk_archive_safe_name(&safe, name)) < 0)
		return error;

	/* 1. Refuse early, before anything is written: kind, actor, freeze,
	 * name, type and size. */
	if ((error = dk_runner_load(r, &l, opts->instance, opts->actor, now)) < 0)
		goto cleanup;
	cmd.kind = opts->kind;
	cmd.actor = opts->actor;
	cmd.name = safe;
	cmd.size = (int64_t)sb.st_size;
	if ((error = dk_engine_evidence(&res, &l.env, l.snap, &cmd)) < 0)
		goto cleanup;
	dk_engine_result_free(&res);
	/* names are unique within an instance (the store says so): refuse a
	 * taken one now, not after the git commit */
	if ((error = dk_store_evidence_get(r->store, l.row.id, safe, &ev)) == 0) {
		error = dk_error_set(DK_ECONFLICT,
		                     "instance %s already holds a file named '%s'; attach this one "
		                     "under another name (--name)",
		                     l.row.id, safe);
		goto cleanup;
	}
	if (error != DK_ENOTFOUND)
		goto cleanup;
	k = dk_flow_evidence(l.env.flow, opts->kind);
	user = l.env.org ? dk_org_user(l.env.org, opts->actor) : NULL;
	snprintf(flowref, sizeof(flowref), "%s@%d", l.row.flow_id, l.row.flow_version);
	dk_archive_event_key(key);
	po.instance = l.row.id;
	po.flow = flowref;
	po.state = l.snap->state;
	po.kind = k->id;
	po.name = safe;
	po.event = key;
	po.actor = opts->actor;
	po.author_name = user ? user->name : NULL;
	po.author_email = user ? user->email : NULL;
	po.time = now;
	po.max_size = k->max_size;
	po.types = (const char *const *)k->types;
	po.ntypes = k->ntypes;

	/* 2. The bytes go to git, after the notes of the state changes
	 * before it (under the lock of the catch-up, so that none is written
	 * after the upload): the instance's history stays in event order. */
	if ((error = dk_archive_put_check(&po, (int64_t)sb.st_size)) < 0 ||
	    (error = dk_runner_archive(r, &archive)) < 0)
		goto cleanup;
	/* Nothing to catch up with: the lock shared at once, so uploads of
	 * other threads and processes go at the same time. */
	if (dk_runner_notes_waiting(r, &waiting) == 0 && waiting == 0) {
		if ((error = dk_runner_notes_lock_shared(r, &lock)) < 0)
			goto cleanup;
	} else if ((error = dk_runner_notes_lock(r, &lock)) < 0) {
		goto cleanup;
	} else if (dk_runner_notes_catch_up_locked(r, &sync) < 0) {
		fprintf(stderr,
		        "docket: warning: the archive notes could not catch up before the upload "
		        "(%s); 'docket archive sync' writes them\n",
		        dk_error_last());
		dk_error_clear();
	}
	/* Caught up: the upload itself only keeps catch-ups out, so that
	 * uploads at once share their flushes. */
	dk_runner_notes_share(lock);
	if ((error = dk_archive_put_file(&put, archive, &po, opts->path)) < 0)
		goto cleanup;

	if (opts->fault_after_archive) {
		error = dk_error_set(DK_EINTERNAL,
		                     "stopped by DOCKET_FAULT=after-archive after git commit %s, "
		                     "before the database; 'docket verify --repair' records it",
		                     put.commit);
		goto cleanup;
	}
	dk_evidence_record rec = {l.row.id,   opts->actor, k->id,      safe,     key,
	                          put.commit, put.blob,    put.sha256, put.size, now};
	error = dk_runner_evidence_record(r, out, &rec);
cleanup:
	dk_runner_notes_unlock(lock);
	dk_evidence_row_free(&ev);
	free(safe);
	dk_engine_result_free(&res);
	dk_loaded_free(&l);
	return error;
}

int dk_runner_evidence(dk_runner *r, json_t **out, const char *instance)
{
	dk_instance_row row = {0};
	dk_evidence_row *rows = NULL;
	size_t n = 0;
	int error;

	*out = NULL;
	if ((error = dk_runner_get_instance(r, &row, instance)) < 0)
		return error;
	dk_instance_row_free(&row);
	if ((error = dk_store_evidence_list(r->store, instance, &rows, &n)) < 0)
		return error;
	*out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*out, evidence_json(&rows[i]));
	dk_evidence_rows_free(rows, n);
	return 0;
}
