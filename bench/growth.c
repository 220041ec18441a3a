/*
 * growth.c - the cost of one step as the store grows: start, upload, act,
 * tick, an inbox page and a `list --overdue` page, measured at each size
 * of stored instances given.
 *
 * Usage: growth HOME FLOW ORG FILE SIZE...
 *   HOME must not exist yet (it gets a home per size); FLOW is the bench flow without <requires>
 *   (run.sh makes it), ORG the org directory, FILE the file uploaded as
 *   the plan. Prints one line per size and step: "SIZE STEP MS", MS the
 *   median of REPEAT timed steps in milliseconds.
 *
 * Seeding: TEMPLATES real instances are made through the runner, each at
 * its own point of the flow (completed, draft, in progress, in review, in
 * review and overdue, so with tasks, events, timers and escalations), by
 * initiators of every department, and a tick at the measuring clock fires
 * what is due. The store is then grown to each size by copying the
 * template rows (instances, their indexed states, events, tasks, timers)
 * under new ids with INSERT ... SELECT in one big transaction per size:
 * what the runner wrote, a thousand times over, in seconds rather than
 * hours. Open work grows with the store (a tenth of the instances wait in
 * review, half of them overdue), so the pages below have real work.
 *
 * Each size has its own home (HOME/SIZE), seeded once. The steps are then
 * measured at the same clock, interleaved across the sizes (round i of a
 * step at every size, then round i + 1): REPEAT starts, an upload (git and
 * SQLite, flushed to disk) to each new instance, a submit of each, REPEAT ticks
 * with nothing due, REPEAT first pages (100 rows, as `docket list`) of the
 * sales head's inbox (through store.h, as the inbox page does) and of
 * `list --overdue`.
 */
#include "definitions/flow.h"
#include "engine/runner.h"
#include "store/store.h"
#include "util/error.h"
#include "util/time.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>

#define TEMPLATES 100
#define REPEAT    21
#define PAGE      100
/* the measuring clock; templates are made in the ten days before it */
#define TM "2026-11-16T09:00:00+08:00"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int fail(const char *what)
{
	fprintf(stderr, "growth: %s: %s\n", what, dk_error_last());
	return 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* initiators from every department; their heads get the review tasks */
static const char *const INITIATORS[] = {"li", "wang", "liu", "he", "ma", "xu", "gao"};
#define NINIT (sizeof INITIATORS / sizeof INITIATORS[0])

static int start(dk_runner *r, char **id, const char *who)
{
	const dk_kv vars[] = {{"month", "2026-11"}, {"phases", "3"}};
	dk_start_opts o = {.flow = "bench-plan", .actor = who, .vars = vars, .nvars = 2};
	json_t *out = NULL;
	const char *s;

	if (dk_runner_start(r, &out, &o) < 0)
		return fail("start");
	s = json_string_value(json_object_get(out, "id"));
	*id = s ? strdup(s) : NULL;
	json_decref(out);
	return *id ? 0 : fail("start gave no id");
}

/* Acts as whoever holds the instance's task now: the first task's user. */
static int act(dk_runner *r, const char *id, const char *transition, const char *comment)
{
	json_t *show = NULL, *out = NULL;
	const char *who;
	int rc;

	if (dk_runner_show(r, &show, id) < 0)
		return fail("show");
	who = json_string_value(
	    json_object_get(json_array_get(json_object_get(show, "tasks"), 0), "user"));
	if (who == NULL) {
		fprintf(stderr, "growth: instance %s has no task for %s\n", id, transition);
		json_decref(show);
		return 1;
	}
	dk_act_opts o = {
	    .instance = id, .transition = transition, .actor = who, .comment = comment};
	rc = dk_runner_act(r, &out, &o);
	json_decref(out);
	json_decref(show);
	if (rc < 0) {
		fprintf(stderr, "growth: %s %s: %s\n", id, transition, dk_error_last());
		return 1;
	}
	return 0;
}

static int templates(dk_runner *r, int64_t tm)
{
	static const char *const DONE[] = {"submit",     "approve",    "phase-done",
	                                   "phase-done", "phase-done", "finish"};
	size_t fired = 0;
	int i;

	for (i = 0; i < TEMPLATES; i++) {
		const char *who = INITIATORS[i % NINIT];
		char *id = NULL;
		int kind = i % 10, rc = 0;
		size_t k;
		/* started 1 to 10 days before the measuring clock; the overdue
		 * ones 8 days before, so their 3-day review deadline passed */
		dk_runner_set_now(r, tm - (int64_t)(kind == 9 ? 8 : 1 + i % 7) * 86400 -
		                         (int64_t)i * 60);
		if (start(r, &id, who) != 0)
			return 1;
		if (kind <= 5) /* completed: most of a store is history */
			for (k = 0; rc == 0 && k < sizeof DONE / sizeof DONE[0]; k++)
				rc = act(r, id, DONE[k], NULL);
		else if (kind == 7) /* in progress */
			rc = act(r, id, "submit", NULL) || act(r, id, "approve", NULL);
		else if (kind == 8) { /* in review, not yet due */
			dk_runner_set_now(r, tm - 86400);
			rc = act(r, id, "submit", NULL);
		} else if (kind == 9) /* in review since 1 day after start: overdue */
			rc = act(r, id, "submit", NULL);
		/* kind 6: a draft */
		free(id);
		if (rc != 0)
			return 1;
	}
	dk_runner_set_now(r, tm);
	if (dk_runner_tick(r, &fired) < 0)
		return fail("tick");
	return 0;
}

/* The columns of table t with id/instance_id shifted by ?1; a task's or a
 * timer's id is its instance's id times 2^32 plus its number within the
 * instance (store/sqlite.c, migrations 8 and 9). */
static int copy_sql(sqlite3 *db, const char *t, char *sql, size_t cap)
{
	char q[256], cols[2048] = "", sel[2048] = "";
	sqlite3_stmt *st = NULL;
	int pk_is_instance = strcmp(t, "instances") == 0;
	int in_range = strcmp(t, "tasks") == 0 || strcmp(t, "timers") == 0;

	snprintf(q, sizeof q, "PRAGMA table_info(%s)", t);
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(st, 1);
		const char *e = c;
		char buf[128];
		if (strcmp(c, "id") == 0 && in_range) {
			snprintf(buf, sizeof buf,
			         "((instance_id + s.k * %d + ?1) << 32) + (id & 4294967295)",
			         TEMPLATES);
			e = buf;
		} else if ((strcmp(c, "id") == 0 && pk_is_instance) ||
		           strcmp(c, "instance_id") == 0) {
			snprintf(buf, sizeof buf, "%s + s.k * %d + ?1", c, TEMPLATES);
			e = buf;
		}
		snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%s%s", *cols ? "," : "",
		         c);
		snprintf(sel + strlen(sel), sizeof sel - strlen(sel), "%s%s", *sel ? "," : "", e);
	}
	sqlite3_finalize(st);
	snprintf(sql, cap,
	         "WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k + 1 < ?2) "
	         "INSERT INTO %s (%s) SELECT %s FROM %s, s WHERE %s <= %d",
	         t, cols, sel, t, pk_is_instance ? "id" : "instance_id", TEMPLATES);
	return 0;
}

/* Grows the store to size instances by copies of the templates (ids 1 to
 * TEMPLATES). */
static int seed(const char *home, long size)
{
	static const char *const TABLES[] = {"instances", "instance_states", "events", "tasks",
	                                     "timers"};
	char path[4096], sql[8192];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long have = 0, copies;
	size_t i;
	int rc = 1;

	snprintf(path, sizeof path, "%.4000s/docket.db", home);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		goto cleanup;
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_prepare_v2(db, "SELECT count(*), max(id) FROM instances", -1, &st, NULL) !=
	        SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto cleanup;
	have = sqlite3_column_int64(st, 0);
	long base = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	st = NULL;
	copies = (size - have) / TEMPLATES;
	if (copies <= 0) {
		rc = 0;
		goto cleanup;
	}
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto cleanup;
	for (i = 0; i < sizeof TABLES / sizeof TABLES[0]; i++) {
		if (copy_sql(db, TABLES[i], sql, sizeof sql) < 0 ||
		    sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
			goto cleanup;
		sqlite3_bind_int64(st, 1, base);
		sqlite3_bind_int64(st, 2, copies);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto cleanup;
		sqlite3_finalize(st);
		st = NULL;
	}
	/* The copies are rows, not state changes made here: nothing of them
	 * is in the archive, as before the notes moved off the steps. The
	 * archive notes' catch-up is marked past them, as in a home whose
	 * notes have caught up (else the first upload measured would write
	 * the notes of every copied event: millions at 1,000,000). */
	if (sqlite3_exec(db,
	                 "UPDATE archive_noted SET last_event = "
	                 "(SELECT COALESCE(MAX(rowid), 0) FROM events) WHERE one = 1",
	                 NULL, NULL, NULL) != SQLITE_OK)
		goto cleanup;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto cleanup;
	rc = 0;
cleanup:
	if (rc != 0)
		fprintf(stderr, "growth: seeding to %ld: %s\n", size, db ? sqlite3_errmsg(db) : "");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* One store size: its own home, grown once, measured step by step in turn
 * with the others (see main). */
enum { START, UPLOAD, ACT, TICK, INBOX, OVERDUE, NSTEPS };
static const char *const STEP_NAMES[NSTEPS] = {"start", "upload", "act",
                                               "tick",  "inbox",  "overdue"};

typedef struct {
	long size;
	dk_runner *r;
	dk_store *s;
	char *ids[REPEAT];
	double ms[NSTEPS][REPEAT];
} level;

/* Round i of one step at one size: times it into L->ms[step][i]. */
static int step_once(level *L, int step, size_t i, const char *file, int64_t tm)
{
	const char *who = INITIATORS[i % NINIT];
	json_t *out = NULL;
	size_t n = 0, fired;
	double t0 = now_ms();
	int rc = 0;

	switch (step) {
	case START: rc = start(L->r, &L->ids[i], who); break;
	case UPLOAD: {
		dk_attach_opts o = {
		    .instance = L->ids[i], .actor = who, .kind = "plan", .path = file};
		rc = dk_runner_attach(L->r, &out, &o) < 0 ? fail("attach") : 0;
		break;
	}
	case ACT: {
		dk_act_opts o = {.instance = L->ids[i], .transition = "submit", .actor = who};
		rc = dk_runner_act(L->r, &out, &o) < 0 ? fail("act") : 0;
		break;
	}
	case TICK: rc = dk_runner_tick(L->r, &fired) < 0 ? fail("tick") : 0; break;
	case INBOX: {
		dk_task_row *rows = NULL;
		if (dk_store_task_list_for_user(L->s, "wei", tm, PAGE, 0, &rows, &n) < 0)
			return fail("inbox");
		dk_task_rows_free(rows, n);
		if (n == 0) {
			fprintf(stderr, "growth: the inbox page is empty\n");
			return 1;
		}
		break;
	}
	case OVERDUE: {
		dk_list_opts o = {.overdue = 1, .limit = PAGE};
		if (dk_runner_list(L->r, &out, &o) < 0)
			return fail("list --overdue");
		n = json_array_size(out);
		if (n == 0) {
			fprintf(stderr, "growth: list --overdue is empty\n");
			rc = 1;
		}
		break;
	}
	}
	L->ms[step][i] = now_ms() - t0;
	json_decref(out);
	return rc;
}

/* Makes the templates in home and grows it to size. */
static int level_open(level *L, const char *home, const char *flow, const char *org, int64_t tm)
{
	json_t *out = NULL;
	dk_diags diags = DK_DIAGS_INIT;
	double t0 = now_ms();
	int rc = 1;

	if (dk_runner_open(&L->r, home) < 0)
		return fail(home);
	if (dk_runner_org_load(L->r, &out, org, &diags) < 0 ||
	    (json_decref(out), out = NULL, dk_runner_deploy(L->r, &out, flow, &diags) < 0)) {
		dk_diags_print(&diags, stderr);
		fail("setup");
		goto cleanup;
	}
	if (templates(L->r, tm) != 0 || seed(home, L->size) != 0)
		goto cleanup;
	if (dk_store_open(&L->s, home) < 0) {
		fail("store");
		goto cleanup;
	}
	dk_runner_set_now(L->r, tm);
	fprintf(stderr, "growth: seeded %ld instances in %.1f s\n", L->size, (now_ms() - t0) / 1e3);
	rc = 0;
cleanup:
	json_decref(out);
	dk_diags_free(&diags);
	return rc;
}

int main(int argc, char **argv)
{
	level *levels = NULL;
	size_t nlev, i, k;
	int64_t tm;
	int step, rc = 1;

	if (argc < 6) {
		fprintf(stderr, "usage: growth HOME FLOW ORG FILE SIZE...\n");
		return 2;
	}
	if (dk_time_parse(&tm, TM) < 0)
		return fail(TM);
	if (mkdir(argv[1], 0777) < 0) {
		fprintf(stderr, "growth: cannot make %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	nlev = (size_t)(argc - 5);
	levels = calloc(nlev, sizeof *levels);
	if (levels == NULL)
		return 1;
	for (k = 0; k < nlev; k++) {
		char home[4096];
		levels[k].size = strtol(argv[5 + k], NULL, 10);
		snprintf(home, sizeof home, "%.4000s/%ld", argv[1], levels[k].size);
		if (level_open(&levels[k], home, argv[2], argv[3], tm) != 0)
			goto cleanup;
	}
	/* Interleaved: round i of a step runs at every size before round
	 * i + 1, so a noisy moment of this shared machine falls on all sizes
	 * alike instead of on whichever size was being measured then. */
	for (step = 0; step < NSTEPS; step++)
		for (i = 0; i < REPEAT; i++)
			for (k = 0; k < nlev; k++)
				if (step_once(&levels[k], step, i, argv[4], tm) != 0)
					goto cleanup;
	for (k = 0; k < nlev; k++)
		for (step = 0; step < NSTEPS; step++)
			printf("%ld %s %.3f\n", levels[k].size, STEP_NAMES[step],
			       median(levels[k].ms[step], REPEAT));
	rc = 0;
cleanup:
	for (k = 0; levels && k < nlev; k++) {
		for (i = 0; i < REPEAT; i++)
			free(levels[k].ids[i]);
		dk_store_close(levels[k].s);
		dk_runner_free(levels[k].r);
	}
	free(levels);
	return rc;
}
