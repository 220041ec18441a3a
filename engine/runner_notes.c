/*
 * runner_notes.c - the archive notes of state changes, written from the
 * audit trail by a catch-up, off the path of the steps.
 *
 * The database is the record. Every state change (start, a transition,
 * recall) also gets an empty-change commit on its instance's ref, so a
 * plain `git log refs/docket/instances/ID` tells who moved it where and
 * when. A step no longer writes that note itself: it commits to SQLite and
 * is done. dk_runner_notes_catch_up writes the notes of every event after
 * the mark (table archive_noted: the rowid of the last event caught up
 * with; rowids grow in commit order), in commit order, a chunk at a time:
 * one dk_archive_notes batch per chunk (all of its commits in one pack,
 * two flushes for all of its notes: the pack before the refs that name its
 * commits, the refs before the mark), then the mark moves past the chunk
 * in a short transaction.
 *
 * Catch-ups are serialised by a flock(2) on HOME/archive.git/
 * docket-notes.flock, taken on a descriptor of the caller's own (so two
 * threads of one process exclude each other too). A crash between the
 * notes and the mark leaves notes the next catch-up would write again: it
 * skips, per instance, the events whose seq is at or below the seq of the
 * newest note on the instance's ref (notes and uploads of an instance
 * chain in event order, and uploads catch up first, under the same lock).
 * An instance whose note fails holds the mark before its event (retried
 * next time, a line on stderr); the other instances' notes go on, and are
 * skipped by the same rule when the mark comes round to them again.
 */
#include "engine/engine.h"
#include "engine/runner_int.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Events read and notes written per round of a catch-up: one pack, one
 * barrier pair and one move of each instance's ref for all of them, so the
 * bigger the round the less each note costs; what bounds it is memory
 * (about 3 KB a note while the round is built: the events, the commits and
 * their messages). */
#define CATCH_UP_CHUNK 4096

/* The event types that get a note. */
static const char *const noted_types[] = {DK_EV_STARTED, DK_EV_FIRED, DK_EV_RECALLED, NULL};

static int noted(const char *type)
{
	for (size_t i = 0; noted_types[i]; i++)
		if (strcmp(type, noted_types[i]) == 0)
			return 1;
	return 0;
}

/* A state change to write as a note: every string owned. */
typedef struct {
	char *instance, *flow, *from, *state, *transition, *event, *actor, *comment;
	int64_t time;
	int by_system; /* a timer moved it: no user to name as author */
} note;

/* One note from a stored event; state is the instance's state now, for an
 * event that names none. */
static void note_fill(note *n, const dk_event_row *e, const char *flow_id, int flow_version,
                      const char *state)
{
	char buf[256];

	n->instance = dk_strdup(e->instance_id);
	snprintf(buf, sizeof(buf), "%s@%d", flow_id, flow_version);
	n->flow = dk_strdup(buf);
	n->from = e->from_state ? dk_strdup(e->from_state) : NULL;
	n->state = dk_strdup(e->to_state ? e->to_state : state);
	n->transition = dk_strdup(e->transition                         ? e->transition
	                          : strcmp(e->type, DK_EV_STARTED) == 0 ? "start"
	                                                                : "recall");
	snprintf(buf, sizeof(buf), "%s:%lld", e->instance_id, (long long)e->seq);
	n->event = dk_strdup(buf);
	n->by_system = !e->actor || strcmp(e->actor, DK_SYSTEM_ACTOR) == 0;
	n->actor = dk_strdup(n->by_system ? DK_SYSTEM_ACTOR : e->actor);
	n->comment = e->comment ? dk_strdup(e->comment) : NULL;
	n->time = e->at;
}

static void note_free(note *n)
{
	free(n->instance);
	free(n->flow);
	free(n->from);
	free(n->state);
	free(n->transition);
	free(n->event);
	free(n->actor);
	free(n->comment);
}

/* How each note of a batch went: failed[i] set for those not written. */
typedef struct {
	const note *notes;
	int *failed;
} outcome;

static void note_done(size_t i, int error, const char *text, void *payload)
{
	outcome *o = payload;
	if (!error)
		return;
	o->failed[i] = 1;
	fprintf(stderr,
	        "docket: warning: instance %s: the archive note of %s failed (%s); the state "
	        "change is recorded, and the next 'docket archive sync' tries again\n",
	        o->notes[i].instance, o->notes[i].event, text);
}

/* Writes notes[0..count) in order as one batch of the archive (two
 * flushes for all of them); failed[i] is set for each one not written. */
static void write_notes(dk_runner *r, const note *notes, size_t count, int *failed)
{
	dk_archive_note_opts *no;
	dk_archive *archive;
	const dk_org *org = NULL;
	outcome o = {notes, failed};

	if (count == 0)
		return;
	if (dk_runner_archive(r, &archive) < 0 || dk_runner_org(r, &org) < 0) {
		for (size_t i = 0; i < count; i++)
			note_done(i, DK_EINTERNAL, dk_error_last(), &o);
		dk_error_clear();
		return;
	}
	no = dk_calloc(count, sizeof(*no));
	for (size_t i = 0; i < count; i++) {
		const note *n = &notes[i];
		const dk_user *u = n->by_system ? NULL : dk_org_user(org, n->actor);
		no[i].version = DK_ARCHIVE_NOTE_OPTS_VERSION;
		no[i].instance = n->instance;
		no[i].flow = n->flow;
		no[i].from_state = n->from;
		no[i].state = n->state;
		no[i].transition = n->transition;
		no[i].event = n->event;
		no[i].actor = n->actor;
		no[i].author_name = u ? u->name : NULL;
		no[i].author_email = u ? u->email : NULL;
		no[i].comment = n->comment;
		no[i].time = n->time;
	}
	dk_archive_notes(archive, no, count, note_done, &o);
	dk_error_clear();
	free(no);
}

/* ---- the lock ---- */

static int notes_lock(dk_runner *r, int *fd, int how);

int dk_runner_notes_lock(dk_runner *r, int *fd)
{
	return notes_lock(r, fd, LOCK_EX);
}

int dk_runner_notes_lock_shared(dk_runner *r, int *fd)
{
	return notes_lock(r, fd, LOCK_SH);
}

static int notes_lock(dk_runner *r, int *fd, int how)
{
	dk_archive *archive;
	dk_buf path = DK_BUF_INIT;
	int error;

	*fd = -1;
	if ((error = dk_runner_archive(r, &archive)) < 0)
		return error;
	dk_buf_printf(&path, "%s/docket-notes.flock", dk_archive_path(archive));
	*fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0) {
		error = dk_error_set(DK_EINTERNAL, "cannot open %s: %s", path.ptr, strerror(errno));
		dk_buf_free(&path);
		return error;
	}
	while (flock(*fd, how) < 0) {
		if (errno == EINTR)
			continue;
		error = dk_error_set(DK_EINTERNAL, "cannot lock %s: %s", path.ptr, strerror(errno));
		close(*fd);
		*fd = -1;
		dk_buf_free(&path);
		return error;
	}
	dk_buf_free(&path);
	return 0;
}

void dk_runner_notes_share(int fd)
{
	/* On failure the lock stays exclusive: slower, never wrong. */
	while (fd >= 0 && flock(fd, LOCK_SH) < 0 && errno == EINTR)
		;
}

void dk_runner_notes_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* drops the flock */
}

/* ---- the catch-up ---- */

/* What a catch-up knows of one instance of the chunk. */
typedef struct {
	const char *id;
	int64_t seq; /* the newest seq with a note on the ref */
	int failed;  /* a note of it failed in this catch-up */
} inst;

typedef struct {
	inst *v;
	size_t n, cap;
} insts;

static inst *inst_find(insts *is, const char *id)
{
	for (size_t i = 0; i < is->n; i++)
		if (strcmp(is->v[i].id, id) == 0)
			return &is->v[i];
	return NULL;
}

static inst *inst_add(insts *is, const char *id)
{
	if (is->n == is->cap) {
		is->cap = is->cap ? 2 * is->cap : 64;
		is->v = dk_realloc(is->v, is->cap * sizeof(*is->v));
	}
	inst *x = &is->v[is->n++];
	x->id = id;
	x->seq = 0;
	x->failed = 0;
	return x;
}

/* The instances whose notes failed in this catch-up: their later events
 * are not written either (no gap reads as history). Owned ids. */
typedef struct {
	char **v;
	size_t n;
} failed_set;

static int failed_has(const failed_set *f, const char *id)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->v[i], id) == 0)
			return 1;
	return 0;
}

static void failed_add(failed_set *f, const char *id)
{
	if (failed_has(f, id))
		return;
	f->v = dk_realloc(f->v, (f->n + 1) * sizeof(*f->v));
	f->v[f->n++] = dk_strdup(id);
}

/* Moves the mark to upto in a transaction of its own. */
static int mark(dk_runner *r, int64_t upto)
{
	int error;
	if ((error = dk_store_begin(r->store)) < 0)
		return error;
	if ((error = dk_store_noted_set(r->store, upto)) < 0) {
		dk_store_rollback(r->store);
		return error;
	}
	return dk_store_commit(r->store);
}

/* One chunk: rows[0..n) after the mark, written as one batch. *hold gets
 * the order just before the first event whose note could not be written
 * (it stays -1 while none failed): the mark may not pass it. */
static size_t chunk(dk_runner *r, dk_event_row *rows, size_t n, failed_set *failed,
                    dk_notes_sync *out, int64_t *hold)
{
	insts is = {NULL, 0, 0};
	note *notes = dk_calloc(n ? n : 1, sizeof(*notes));
	size_t *from = dk_calloc(n ? n : 1, sizeof(*from));
	int *bad = dk_calloc(n ? n : 1, sizeof(*bad));
	dk_archive *archive = NULL;
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		dk_event_row *e = &rows[i];
		inst *x = inst_find(&is, e->instance_id);
		if (!x) {
			x = inst_add(&is, e->instance_id);
			x->failed = failed_has(failed, e->instance_id);
			if (!x->failed &&
			    (dk_runner_archive(r, &archive) < 0 ||
			     dk_archive_noted_seq(&x->seq, archive, e->instance_id) < 0)) {
				fprintf(stderr,
				        "docket: warning: instance %s: cannot read its archive ref "
				        "(%s); its notes wait for the next 'docket archive sync'\n",
				        e->instance_id, dk_error_last());
				dk_error_clear();
				x->failed = 1;
				failed_add(failed, e->instance_id);
			}
		}
		if (x->failed) {
			/* held before its first event this catch-up could not write */
			if (*hold < 0 || e->order - 1 < *hold)
				*hold = e->order - 1;
			out->failed++;
			continue;
		}
		if (e->seq <= x->seq) { /* written by a catch-up that did not mark it */
			out->skipped++;
			continue;
		}
		note_fill(&notes[count], e, e->flow_id, e->flow_version, e->state);
		from[count++] = i;
	}
	write_notes(r, notes, count, bad);
	for (size_t k = 0; k < count; k++) {
		dk_event_row *e = &rows[from[k]];
		if (!bad[k]) {
			out->written++;
			continue;
		}
		out->failed++;
		failed_add(failed, e->instance_id);
		if (*hold < 0 || e->order - 1 < *hold)
			*hold = e->order - 1;
	}
	for (size_t k = 0; k < count; k++)
		note_free(&notes[k]);
	free(notes);
	free(from);
	free(bad);
	free(is.v);
	return count;
}

int dk_runner_notes_catch_up_locked(dk_runner *r, dk_notes_sync *out)
{
	failed_set failed = {NULL, 0};
	int64_t pos, hold = -1;
	int error;

	memset(out, 0, sizeof(*out));
	if (r->batch)
		return dk_error_set(DK_EINTERNAL, "the archive catches up outside a batch only");
	if ((error = dk_store_noted_get(r->store, &pos)) < 0)
		return error;
	for (;;) {
		dk_event_row *rows = NULL;
		size_t n = 0;
		int64_t upto = pos;
		if ((error = dk_store_noted_pending(r->store, pos, noted_types, CATCH_UP_CHUNK,
		                                    &rows, &n, &upto)) < 0)
			break;
		if (upto <= pos) {
			dk_event_rows_free(rows, n);
			break;
		}
		size_t tried = chunk(r, rows, n, &failed, out, &hold);
		dk_event_rows_free(rows, n);
		pos = upto;
		/* The mark passes the chunk unless a failure holds it. */
		if ((error = mark(r, hold >= 0 ? hold : upto)) < 0)
			break;
		out->rounds += tried > 0;
	}
	for (size_t i = 0; i < failed.n; i++)
		free(failed.v[i]);
	free(failed.v);
	return error;
}

int dk_runner_notes_catch_up(dk_runner *r, dk_notes_sync *out)
{
	int fd, error;

	memset(out, 0, sizeof(*out));
	if ((error = dk_runner_notes_lock(r, &fd)) < 0)
		return error;
	error = dk_runner_notes_catch_up_locked(r, out);
	dk_runner_notes_unlock(fd);
	return error;
}

int dk_runner_notes_waiting(dk_runner *r, int64_t *count)
{
	return dk_store_noted_count(r->store, noted_types, count);
}

int dk_runner_notes_waiting_instances(dk_runner *r, int (*fn)(const char *instance, void *payload),
                                      void *payload)
{
	int64_t pos;
	int error;

	if ((error = dk_store_noted_get(r->store, &pos)) < 0)
		return error;
	for (;;) {
		dk_event_row *rows = NULL;
		size_t n = 0;
		int64_t upto = pos;
		if ((error = dk_store_noted_pending(r->store, pos, noted_types, CATCH_UP_CHUNK,
		                                    &rows, &n, &upto)) < 0)
			return error;
		for (size_t i = 0; i < n && error == 0; i++)
			error = fn(rows[i].instance_id, payload);
		dk_event_rows_free(rows, n);
		if (error < 0 || upto <= pos)
			return error;
		pos = upto;
	}
}

int dk_runner_notes_missing(dk_runner *r, json_t **out, const char *instance,
                            int (*have)(const char *key, void *payload), void *payload, int repair)
{
	dk_instance_row row = {0};
	dk_event_row *ev = NULL;
	note *notes = NULL;
	int *bad = NULL;
	size_t n = 0, count = 0;
	int64_t upto = 0;
	char key[64];
	int error;

	*out = NULL;
	if ((error = dk_runner_get_instance(r, &row, instance)) < 0)
		return error;
	if ((error = dk_store_noted_get(r->store, &upto)) < 0 ||
	    (error = dk_store_event_list(r->store, instance, &ev, &n)) < 0)
		goto cleanup;
	*out = json_array();
	notes = dk_calloc(n ? n : 1, sizeof(*notes));
	bad = dk_calloc(n ? n : 1, sizeof(*bad));
	for (size_t i = 0; i < n; i++) {
		const dk_event_row *e = &ev[i];
		int pending = e->order > upto;
		if (!noted(e->type))
			continue;
		snprintf(key, sizeof(key), "%s:%lld", instance, (long long)e->seq);
		if (have(key, payload))
			continue;
		note x = {0};
		note_fill(&x, e, row.flow_id, row.flow_version, row.state);
		json_array_append_new(*out, json_pack("{s:I, s:s, s:s, s:s, s:s, s:b}", "seq",
		                                      (json_int_t)e->seq, "type", e->type,
		                                      "transition", x.transition, "state", x.state,
		                                      "event", key, "pending", pending));
		if (pending)
			note_free(&x);
		else
			notes[count++] = x;
	}
	if (repair)
		write_notes(r, notes, count, bad);
	for (size_t i = 0; i < count; i++)
		note_free(&notes[i]);
cleanup:
	free(notes);
	free(bad);
	dk_event_rows_free(ev, n);
	dk_instance_row_free(&row);
	return error;
}
