/*
 * evidence.c - uploads: recording them, freezing kinds, due dates.
 *
 * Each upload is recorded against one state visit (the state and its visit
 * counter), so <requires evidence> asks "was it uploaded during THIS visit
 * of the state", and a file sent back with "return" must be uploaded again.
 * In a parallel, the upload belongs to the active region state that needs
 * the kind (a transition of it requires it), else to one the uploader acts
 * on, else to the parallel itself.
 *
 * A kind named in a state's freeze= can no longer be uploaded once that
 * state has been entered: the approved plan stays the plan.
 *
 * A kind's due date is counted from the entry of the state visit its
 * latest upload was made in (due="P7D"), or is an XPath date evaluated with
 * the clock at that entry (due="dk:day-of-month(8)"); with no upload yet,
 * from the entry of the current state.
 */
#include "engine/internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const dk_snap_evidence *dk__latest_upload(const dk_snapshot *snap, const char *kind)
{
	for (size_t i = snap->nevidence; i > 0; i--)
		if (strcmp(snap->evidence[i - 1].kind, kind) == 0)
			return &snap->evidence[i - 1];
	return NULL;
}

size_t dk__count_uploads(const dk_snapshot *snap, const char *kind)
{
	size_t n = 0;
	for (size_t i = 0; i < snap->nevidence; i++)
		n += strcmp(snap->evidence[i].kind, kind) == 0;
	return n;
}

int dk__evidence_due(int64_t *out, dk_run *run, const dk_evidence_kind *k,
                     const dk_snap_evidence *upload)
{
	int64_t base = 0;
	*out = 0;
	if (upload) {
		base = upload->state_entered_at;
	} else {
		const dk_snap_state *rec =
		    run->snap->state ? dk_snapshot_state(run->snap, run->snap->state) : NULL;
		base = rec ? rec->entered_at : run->env->now;
	}
	if (k->has_due_after) {
		*out = dk__add_local(dk__zone(run), base, &k->due_after);
		return 0;
	}
	if (k->due_at) {
		dk_engine_env env = *run->env;
		dk_run at = *run;
		env.now = base;
		at.env = &env;
		return dk__eval_time(out, &at, upload ? upload->state : run->snap->state,
		                     k->due_at);
	}
	return 0;
}

static int requires_kind(const dk_state *st, const char *kind)
{
	for (size_t i = 0; i < st->ntransitions; i++)
		for (size_t j = 0; j < st->transitions[i].nrequires; j++)
			if (strcmp(st->transitions[i].requires[j], kind) == 0)
				return 1;
	return 0;
}

/* The state an upload belongs to (see the top of this file). */
static const dk_state *upload_state(dk_run *run, const char *kind)
{
	const dk_state *top = dk_flow_state(run->flow, run->snap->state);
	const dk_state *mine = NULL;
	if (!top || run->snap->nregions == 0)
		return top;
	for (size_t i = 0; i < run->snap->nregions; i++) {
		const dk_state *rs = dk_flow_state(run->flow, run->snap->regions[i].state);
		char *behalf = NULL;
		if (!rs || rs->final)
			continue;
		if (requires_kind(rs, kind))
			return rs;
		if (!mine && dk__authorize(&behalf, run, rs, NULL) == 0)
			mine = rs;
		free(behalf);
	}
	return mine ? mine : top;
}

static int check_file(const dk_evidence_kind *k, const dk_evidence_cmd *cmd)
{
	if (k->ntypes && cmd->name) {
		const char *dot = strrchr(cmd->name, '.');
		int ok = 0;
		for (size_t i = 0; dot && i < k->ntypes && !ok; i++)
			ok = strcasecmp(dot + 1, k->types[i]) == 0;
		if (!ok) {
			dk_buf b = DK_BUF_INIT;
			for (size_t i = 0; i < k->ntypes; i++)
				dk_buf_printf(&b, "%s%s", i ? ", " : "", k->types[i]);
			dk_error_set(DK_EINVALID, "evidence '%s' takes %s files, not '%s'", k->id,
			             dk_buf_cstr(&b), cmd->name);
			dk_buf_free(&b);
			return DK_EINVALID;
		}
	}
	if (k->max_size && cmd->size > k->max_size)
		return dk_error_set(DK_EINVALID,
		                    "'%s' is %lld bytes; evidence '%s' takes at most %lld bytes",
		                    cmd->name ? cmd->name : "the file", (long long)cmd->size, k->id,
		                    (long long)k->max_size);
	return 0;
}

/* evidence.attached's data, {"kind","state","visit","size","name",
 * "sha256"}, as the JSON writer gives it (a kind or state that is not
 * UTF-8 gives none, a name or hash that is not is left out) but with its
 * keys written as they are, into *mem. */
static char *upload_data(dk_pool_block **mem, const char *kind, const dk_snap_evidence *e)
{
	dk_buf b;
	size_t len;
	char *s = NULL;
	dk__scratch_take(&b);
	dk_buf_grow(&b, 128);
	DK_PUT_LIT(&b, "{\"kind\":");
	if (dk__json_quote_valid(&b, kind) < 0)
		goto done;
	dk_buf_grow(&b, 16);
	DK_PUT_LIT(&b, ",\"state\":");
	if (dk__json_quote_valid(&b, e->state) < 0)
		goto done;
	dk_buf_grow(&b, 64);
	DK_PUT_LIT(&b, ",\"visit\":");
	dk__json_int(&b, e->visit);
	DK_PUT_LIT(&b, ",\"size\":");
	dk__json_int(&b, (int64_t)e->size);
	if (e->name) {
		len = b.len;
		dk_buf_grow(&b, 16);
		DK_PUT_LIT(&b, ",\"name\":");
		if (dk__json_quote_valid(&b, e->name) < 0) {
			b.len = len;
			b.ptr[len] = '\0';
		}
	}
	if (e->sha256) {
		len = b.len;
		dk_buf_grow(&b, 16);
		DK_PUT_LIT(&b, ",\"sha256\":");
		if (dk__json_quote_valid(&b, e->sha256) < 0) {
			b.len = len;
			b.ptr[len] = '\0';
		}
	}
	dk_buf_grow(&b, 2);
	DK_PUT_LIT(&b, "}");
	s = dk__pool_take(mem, b.len + 1);
	memcpy(s, b.ptr, b.len + 1);
done:
	dk__scratch_give(&b);
	return s;
}

int dk_engine_evidence(dk_engine_result *out, const dk_engine_env *env, const dk_snapshot *snap,
                       const dk_evidence_cmd *cmd)
{
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_run run = {
	    .env = env, .flow = env->flow, .snap = NULL, .res = &res, .actor = cmd->actor};
	const dk_evidence_kind *k;
	const dk_state *st;
	dk_snap_state *rec;
	dk_snap_evidence *e;
	int err = 0, allowed;
	memset(out, 0, sizeof(*out));
	if (snap->status == DK_INSTANCE_COMPLETED)
		return dk_error_set(DK_ECONFLICT,
		                    "instance %s is completed (state '%s'); it takes no more "
		                    "evidence",
		                    snap->instance, snap->state);
	k = dk_flow_evidence(env->flow, cmd->kind ? cmd->kind : "");
	if (!k) {
		dk_buf b = DK_BUF_INIT;
		for (size_t i = 0; i < env->flow->nevidence; i++)
			dk_buf_printf(&b, "%s%s", i ? ", " : "", env->flow->evidence[i].id);
		dk_error_set(DK_ENOTFOUND, "flow '%s' has no evidence kind '%s'; it has: %s",
		             env->flow->id, cmd->kind ? cmd->kind : "",
		             b.len ? dk_buf_cstr(&b) : "none");
		dk_buf_free(&b);
		return DK_ENOTFOUND;
	}
	for (size_t i = 0; i < env->flow->nstates; i++) {
		const dk_state *fs = &env->flow->states[i];
		const dk_snap_state *r = fs->nfreeze ? dk_snapshot_state(snap, fs->id) : NULL;
		for (size_t j = 0; r && r->visits > 0 && j < fs->nfreeze; j++)
			if (strcmp(fs->freeze[j], k->id) == 0)
				return dk_error_set(DK_EPRECOND,
				                    "evidence '%s' is frozen since state '%s': the "
				                    "approved %s cannot be replaced",
				                    k->id, fs->id, k->id);
	}
	if ((err = check_file(k, cmd)) < 0)
		return err;

	res.snapshot = dk_snapshot_dup(snap);
	run.snap = res.snapshot;
	/* who may upload: the initiator, and whoever may act on an active
	 * state (delegates included) */
	allowed = snap->initiator && cmd->actor && strcmp(snap->initiator, cmd->actor) == 0;
	{
		const char *ids[64];
		size_t n = dk_snapshot_active(snap, ids, 64);
		const dk_state *top = dk_flow_state(env->flow, snap->state);
		for (size_t i = 0; i <= n && !allowed && cmd->actor; i++) {
			const dk_state *s = i < n ? dk_flow_state(env->flow, ids[i]) : top;
			char *behalf = NULL;
			if (s && dk__authorize(&behalf, &run, s, NULL) == 0)
				allowed = 1;
			free(behalf);
		}
	}
	if (!allowed) {
		err = dk_error_set(DK_EFORBIDDEN,
		                   "%s may not attach evidence to instance %s: only the initiator "
		                   "(%s) and those who act on its current state may",
		                   cmd->actor ? cmd->actor : "(nobody)", snap->instance,
		                   snap->initiator ? snap->initiator : "");
		goto cleanup;
	}
	dk_error_clear();
	st = upload_state(&run, k->id);
	rec = st ? dk__snap_state(run.snap, st->id, 1) : NULL;
	run.snap->evidence = dk__snap_grow(run.snap, run.snap->evidence,
	                                   run.snap->nevidence * sizeof(*run.snap->evidence),
	                                   (run.snap->nevidence + 1) * sizeof(*run.snap->evidence));
	e = &run.snap->evidence[run.snap->nevidence++];
	memset(e, 0, sizeof(*e));
	e->kind = dk__snap_strdup(run.snap, k->id);
	e->state = dk__snap_strdup(run.snap, st ? st->id : snap->state);
	e->visit = rec ? rec->visits : 0;
	e->state_entered_at = rec ? rec->entered_at : env->now;
	e->at = env->now;
	e->by = dk__snap_strdup(run.snap, cmd->actor);
	e->name = dk__snap_strdup(run.snap, cmd->name);
	e->sha256 = dk__snap_strdup(run.snap, cmd->sha256);
	e->size = cmd->size;

	dk_event *ev = dk__event(&run, DK_EV_EVIDENCE);
	ev->to = dk__rstr(&run, e->state);
	ev->data = upload_data(dk__res_mem(&res), k->id, e);

	run.snap->version++;
	run.snap->updated_at = env->now;
	if ((err = dk__finish(&run, snap)) < 0)
		goto cleanup;
	*out = res;
	return 0;
cleanup:
	dk_engine_result_free(&res);
	return err;
}
