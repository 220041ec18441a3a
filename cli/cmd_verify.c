/* cmd_verify.c - docket verify [ID] [--repair]: the evidence archive
 * against the database.
 *
 * For every instance (or one), the instance's git history is walked and
 * every archived blob's SHA-256 recomputed; then each database evidence
 * row is joined with its commit (the row's git_commit). Reported, exit 1:
 *   missing     a row whose commit is not in the instance's history (the
 *               ref was moved back or rewritten) or whose blob is gone;
 *   altered     bytes that no longer match the recorded SHA-256 (in the
 *               commit's trailer or the database row), or a row whose
 *               blob, size or hash differs from the archive's;
 *   unrecorded  an upload commit no row knows: a crash between the git
 *               commit and the database. --repair records those through
 *               the runner (the same path attach takes after git);
 *   no note     a state change of the audit trail (start, transition,
 *               recall) at or before the catch-up's mark with no note in
 *               the instance's history (a ref moved back, a note lost).
 *               --repair writes the note now, on top of the history, with
 *               the event's own time, actor and key.
 * State changes after the mark are not damage: their notes are written by
 * the next catch-up (`docket archive sync`, serve, tick). They are counted
 * as pending ("pending" in --json), and verify exits 0 for them. --repair
 * catches up first (under the catch-up's lock, held to the end, so no
 * catch-up runs while it writes); when a note of that catch-up fails,
 * missing notes are reported, not written, since the mark then stands
 * before notes already written and a note put on top now would have them
 * written again.
 */
#include "cli/cli.h"

#include "store/archive.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	dk_archive_entry_type type;
	char *commit, *path, *blob, *sha256, *actual, *damage, *kind, *name, *actor, *event;
	int64_t size, actual_size, time;
	int recorded;
} entry;

typedef struct {
	entry *v;
	size_t n;
} entries;

typedef struct {
	json_t *problems, *repaired;
	int human, repair;
	size_t checked;
	dk_archive *archive;
	int notes_repair; /* repair may write missing notes (the catch-up went through) */
	size_t pending;   /* state changes whose note waits for the catch-up */
} report;

static int keep_entry(const dk_archive_entry *e, void *payload)
{
	entries *l = payload;
	l->v = dk_realloc(l->v, (l->n + 1) * sizeof(*l->v));
	entry *x = &l->v[l->n++];
	memset(x, 0, sizeof(*x));
	x->type = e->type;
	x->commit = dk_strdup(e->commit);
	x->path = dk_strdup(e->path);
	x->blob = dk_strdup(e->blob);
	x->sha256 = dk_strdup(e->sha256);
	x->actual = dk_strdup(e->actual_sha256);
	x->damage = dk_strdup(e->damage);
	x->kind = dk_strdup(e->kind);
	x->name = dk_strdup(e->name);
	x->actor = dk_strdup(e->actor);
	x->event = dk_strdup(e->event);
	x->size = e->size;
	x->actual_size = e->actual_size;
	x->time = e->time;
	return 0;
}

static void entries_free(entries *l)
{
	for (size_t i = 0; i < l->n; i++) {
		entry *x = &l->v[i];
		free(x->commit), free(x->path), free(x->blob), free(x->sha256), free(x->actual);
		free(x->damage), free(x->kind), free(x->name), free(x->actor), free(x->event);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void problem(report *rep, const char *kind, const char *instance, const char *name,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void problem(report *rep, const char *kind, const char *instance, const char *name,
                    const char *fmt, ...)
{
	dk_buf b = DK_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	dk_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	json_array_append_new(rep->problems,
	                      json_pack("{s:s,s:s,s:s,s:s}", "problem", kind, "instance", instance,
	                                "name", name, "detail", b.ptr));
	if (rep->human)
		printf("%-10s %s %s: %s\n", kind, instance, name, b.ptr);
	dk_buf_free(&b);
}

static int add_name(const char *instance, void *payload)
{
	json_t *set = payload;
	json_object_set_new(set, instance, json_true());
	return 0;
}

static int has_note(const char *key, void *payload)
{
	const entries *l = payload;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].type == DK_ARCHIVE_NOTE && !strcmp(l->v[i].event, key))
			return 1;
	return 0;
}

static int is_pending(const json_t *m)
{
	return json_is_true(json_object_get(m, "pending"));
}

/* The audit trail's state changes against the notes of the history l. */
static int check_notes(report *rep, dk_runner *runner, const char *id, entries *l)
{
	json_t *missing = NULL, *m;
	size_t i, nmissing = 0;
	int error = dk_runner_notes_missing(runner, &missing, id, has_note, l,
	                                    rep->repair && rep->notes_repair);

	if (error == DK_ENOTFOUND) { /* archived, but no such instance row */
		dk_error_clear();
		return 0;
	}
	if (error < 0)
		return error;
	json_array_foreach(missing, i, m)
	{
		if (is_pending(m))
			rep->pending++;
		else
			nmissing++;
	}
	if (rep->repair && rep->notes_repair && nmissing) {
		/* read the history again: what the notes did not land on stays */
		json_t *left = NULL;
		entries_free(l);
		if ((error = dk_archive_walk(rep->archive, id, 0, keep_entry, l)) < 0 ||
		    (error = dk_runner_notes_missing(runner, &left, id, has_note, l, 0)) < 0) {
			json_decref(missing);
			return error;
		}
		json_array_foreach(missing, i, m)
		{
			const char *ev = json_string_value(json_object_get(m, "event"));
			int failed = 0;
			if (is_pending(m))
				continue;
			for (size_t j = 0; j < json_array_size(left); j++)
				failed |= !strcmp(ev, json_string_value(json_object_get(
				                          json_array_get(left, j), "event")));
			if (failed) {
				problem(rep, "no note", id, ev,
				        "writing its note failed: see above");
				continue;
			}
			json_array_append_new(rep->repaired,
			                      json_pack("{s:s,s:s,s:s}", "instance", id, "event",
			                                ev, "note", "written"));
			if (rep->human)
				printf("%-10s %s %s: wrote the note of '%s' into %s\n", "repaired",
				       id, ev, json_string_value(json_object_get(m, "transition")),
				       json_string_value(json_object_get(m, "state")));
		}
		json_decref(left);
		json_decref(missing);
		return 0;
	}
	json_array_foreach(missing, i, m)
	{
		if (is_pending(m))
			continue;
		problem(rep, "no note", id, json_string_value(json_object_get(m, "event")),
		        "the audit trail's '%s' into %s has no note in refs/docket/instances/%s "
		        "(the ref was moved back or the note lost); %s",
		        json_string_value(json_object_get(m, "transition")),
		        json_string_value(json_object_get(m, "state")), id,
		        rep->repair ? "the archive could not catch up (see above): repair again "
		                      "once 'docket archive sync' succeeds"
		                    : "run 'docket verify --repair'");
	}
	json_decref(missing);
	return 0;
}

static int verify_instance(report *rep, dk_archive *a, dk_runner *runner, const char *id,
                           dk_evidence_row *rows, size_t nrows)
{
	entries l = {NULL, 0};
	int error = dk_archive_walk(a, id, DK_ARCHIVE_WALK_HASH, keep_entry, &l);
	if (error < 0 && error != DK_ENOTFOUND)
		return error;
	dk_error_clear();
	for (size_t i = 0; i < nrows; i++) {
		dk_evidence_row *r = &rows[i];
		entry *e = NULL;
		if (strcmp(r->instance_id, id) != 0)
			continue;
		rep->checked++;
		for (size_t j = 0; j < l.n && !e; j++)
			if (r->git_commit && !strcmp(l.v[j].commit, r->git_commit))
				e = &l.v[j];
		if (!e) {
			problem(rep, "missing", id, r->name,
			        "its commit %.12s is not in refs/docket/instances/%s (the ref was "
			        "moved or rewritten); restore the archive from a copy",
			        r->git_commit ? r->git_commit : "(none)", id);
			continue;
		}
		e->recorded = 1;
		if (*e->damage)
			problem(rep, !strncmp(e->damage, "missing", 7) ? "missing" : "altered", id,
			        r->name, "%s", e->damage);
		else if (strcmp(r->sha256, e->actual) != 0)
			problem(rep, "altered", id, r->name,
			        "the database records SHA-256 %s, the archived file has %s",
			        r->sha256, e->actual);
		else if (!r->git_blob || strcmp(r->git_blob, e->blob) != 0)
			problem(rep, "altered", id, r->name,
			        "the database records blob %s, the commit holds %s",
			        r->git_blob ? r->git_blob : "(none)", e->blob);
		else if (r->size != e->actual_size)
			problem(rep, "altered", id, r->name,
			        "the database records %lld bytes, the archived file has %lld",
			        (long long)r->size, (long long)e->actual_size);
	}
	for (size_t j = 0; j < l.n; j++) {
		entry *e = &l.v[j];
		if (e->type != DK_ARCHIVE_ATTACH || e->recorded)
			continue;
		if (*e->damage) {
			problem(rep, "altered", id, e->name, "unrecorded, and %s", e->damage);
			continue;
		}
		if (!rep->repair) {
			problem(
			    rep, "unrecorded", id, e->name,
			    "commit %.12s archived %s but the database has no row for it (a crash "
			    "between git and the database?); run 'docket verify --repair'",
			    e->commit, e->path);
			continue;
		}
		json_t *out = NULL;
		dk_evidence_record rec = {id,        e->actor, e->kind,   e->name,        e->event,
		                          e->commit, e->blob,  e->actual, e->actual_size, e->time};
		if (dk_runner_evidence_record(runner, &out, &rec) < 0) {
			problem(rep, "unrecorded", id, e->name, "cannot be recorded: %s",
			        dk_error_last());
			continue;
		}
		json_decref(out);
		json_array_append_new(rep->repaired,
		                      json_pack("{s:s,s:s,s:s}", "instance", id, "name", e->name,
		                                "commit", e->commit));
		if (rep->human)
			printf("%-10s %s %s: recorded commit %.12s\n", "repaired", id, e->name,
			       e->commit);
		rep->checked++;
	}
	error = check_notes(rep, runner, id, &l);
	entries_free(&l);
	return error;
}

int cmd_verify(dk_cli *cli, int argc, char **argv)
{
	const char *only = NULL;
	int repair = 0, error;
	dk_store *s = NULL;
	dk_archive *a = NULL;
	dk_runner *runner = NULL;
	dk_evidence_row *rows = NULL;
	size_t nrows = 0;
	json_t *ids = json_object();
	report rep = {json_array(), json_array(), !cli->json, 0, 0, NULL, 1, 0};
	int lock = -1;
	const char *id;
	json_t *v;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--repair"))
			repair = 1;
		else if (!only && argv[i][0] != '-')
			only = argv[i];
		else {
			error = dk_cli_usage("verify", "unexpected '%s'", argv[i]);
			goto cleanup;
		}
	}
	if ((error = dk_store_open(&s, cli->home)) < 0 ||
	    (error = dk_archive_open(&a, cli->home)) < 0 ||
	    (error = dk_store_evidence_list_all(s, &rows, &nrows)) < 0)
		goto cleanup;
	if ((error = dk_cli_open(cli, &runner)) < 0)
		goto cleanup;
	rep.repair = repair;
	rep.archive = a;
	rep.notes_repair = 1;
	if (repair) {
		/* The notes waiting are written first, and no catch-up runs
		 * while missing ones are put on top of the histories. */
		dk_notes_sync sync;
		if ((error = dk_runner_notes_lock(runner, &lock)) < 0)
			goto cleanup;
		if ((error = dk_runner_notes_catch_up_locked(runner, &sync)) < 0)
			goto cleanup;
		rep.notes_repair = sync.failed == 0;
		if (sync.failed)
			problem(
			    &rep, "no note", "-", "-",
			    "%zu state change%s could not be noted in the archive (see above); "
			    "missing notes are not written until 'docket archive sync' succeeds",
			    sync.failed, sync.failed == 1 ? "" : "s");
		if (sync.written && rep.human)
			printf("%-10s wrote %zu archive note%s that waited for the catch-up\n",
			       "synced", sync.written, sync.written == 1 ? "" : "s");
	}
	if (only) {
		dk_instance_row inst = {0};
		if ((error = dk_store_instance_get(s, only, &inst)) < 0)
			goto cleanup;
		dk_instance_row_free(&inst);
		add_name(only, ids);
	} else {
		for (size_t i = 0; i < nrows; i++)
			add_name(rows[i].instance_id, ids);
		/* and those whose notes wait, nothing archived for them yet */
		if ((error = dk_archive_instances(a, add_name, ids)) < 0 ||
		    (error = dk_runner_notes_waiting_instances(runner, add_name, ids)) < 0)
			goto cleanup;
	}
	json_object_foreach(ids, id, v)
	{
		if ((error = verify_instance(&rep, a, runner, id, rows, nrows)) < 0)
			goto cleanup;
	}
	size_t nprob = json_array_size(rep.problems), nrep = json_array_size(rep.repaired);
	if (cli->json) {
		json_t *o = json_pack("{s:I,s:I,s:O,s:O,s:I}", "checked", (json_int_t)rep.checked,
		                      "instances", (json_int_t)json_object_size(ids), "problems",
		                      rep.problems, "repaired", rep.repaired, "pending",
		                      (json_int_t)rep.pending);
		dk_cli_print_json(o);
		json_decref(o);
	} else {
		printf("checked %zu file%s in %zu instance%s: %zu problem%s%s", rep.checked,
		       rep.checked == 1 ? "" : "s", json_object_size(ids),
		       json_object_size(ids) == 1 ? "" : "s", nprob, nprob == 1 ? "" : "s",
		       nrep ? "" : "\n");
		if (nrep)
			printf(", %zu repaired\n", nrep);
		if (rep.pending)
			printf("%zu state change%s wait%s for the archive; `docket archive sync` "
			       "writes them\n",
			       rep.pending, rep.pending == 1 ? "" : "s",
			       rep.pending == 1 ? "s" : "");
	}
	if (nprob)
		error = dk_error_set(DK_EINVALID,
		                     "the archive and the database disagree (%zu problem%s); see "
		                     "above",
		                     nprob, nprob == 1 ? "" : "s");
cleanup:
	json_decref(ids);
	json_decref(rep.problems);
	json_decref(rep.repaired);
	dk_evidence_rows_free(rows, nrows);
	dk_runner_notes_unlock(lock);
	dk_runner_free(runner);
	dk_archive_free(a);
	dk_store_close(s);
	return error;
}
