/* test_store.c - the SQLite store: schema, transactions, every table, query plans. */
#include "store/sqlite_int.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
	char dir[64];  /* the temp dir of this test */
	char home[96]; /* dir/home: does not exist before the first open */
	dk_store *s;
} fixture;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/dk-store-XXXXXX");
	*state = f;
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->home, sizeof(f->home), "%s/home", f->dir);
	if (dk_store_open(&f->s, f->home) != 0) {
		fprintf(stderr, "open: %s\n", dk_error_last());
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	dk_store_close(f->s);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

#define OK(expr)                                                                                   \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_ != 0)                                                                      \
			fail_msg("%s -> %d: %s", #expr, rc_, dk_error_last());                     \
	} while (0)

static const char flow_xml[] = "<flow id='f' version='1'/>";

/* Deploys flow f@1 and g@1 and creates an instance of f; returns its id. */
static char *make_instance(dk_store *s, const char *flow, const char *state, const char *who,
                           int64_t at)
{
	dk_instance_row r = {0};
	r.flow_id = (char *)flow;
	r.flow_version = 1;
	r.state = (char *)state;
	r.snapshot = (char *)"{}";
	r.initiator = (char *)who;
	r.title = (char *)"t";
	r.created_at = at;
	OK(dk_store_instance_create(s, &r));
	return r.id;
}

static void deploy_flows(dk_store *s)
{
	OK(dk_store_flow_put(s, "f", 1, "F", flow_xml, strlen(flow_xml), 100, NULL));
	OK(dk_store_flow_put(s, "g", 1, "G", "<g/>", 4, 100, NULL));
}

/* ---- schema and transactions ------------------------------------------- */

static int query_int(const char *db, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	int v = -1;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static void exec_raw(const char *db, const char *sql)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

static void open_fresh_and_reopen(void **state)
{
	fixture *f = *state;
	struct stat sb;
	char db[160];
	int v;
	dk_flow_row row;

	assert_int_equal(stat(f->home, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	OK(dk_store_schema_version(f->s, &v));
	assert_int_equal(v, DK_STORE_SCHEMA_VERSION);
	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	OK(dk_store_commit(f->s));
	dk_store_close(f->s);

	snprintf(db, sizeof(db), "%s/docket.db", f->home);
	assert_int_equal(query_int(db, "PRAGMA user_version"), DK_STORE_SCHEMA_VERSION);
	{
		sqlite3 *h;
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
		sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
		sqlite3_close(h);
	}

	OK(dk_store_open(&f->s, f->home));
	OK(dk_store_schema_version(f->s, &v));
	assert_int_equal(v, DK_STORE_SCHEMA_VERSION);
	OK(dk_store_flow_get(f->s, "f", 1, &row));
	assert_int_equal(row.len, strlen(flow_xml));
	dk_flow_row_free(&row);
}

static void migrates_from_older_version(void **state)
{
	fixture *f = *state;
	char db[160];
	dk_hook_row h = {0};
	int v;

	dk_store_close(f->s);
	f->s = NULL;
	snprintf(db, sizeof(db), "%s/docket.db", f->home);
	/* Wind the file back to schema 1: migration 2 must run on open. */
	exec_raw(db, "DROP TABLE delegations; DROP TABLE timers; DROP TABLE evidence;"
	             "DROP TABLE deliveries; DROP TABLE hooks; DROP TABLE tokens;"
	             "DROP TABLE archive_noted; DROP TABLE compiled; PRAGMA user_version = 1;"
	             "CREATE INDEX tasks_instance ON tasks (instance_id);"
	             "CREATE INDEX instance_states_instance ON instance_states (instance_id);"
	             "CREATE INDEX tasks_due ON tasks (due_at);");
	OK(dk_store_open(&f->s, f->home));
	OK(dk_store_schema_version(f->s, &v));
	assert_int_equal(v, DK_STORE_SCHEMA_VERSION);
	/* Migration 5: a home made before the catch-up starts caught up. */
	assert_int_equal(query_int(db, "SELECT last_event FROM archive_noted"), 0);
	/* Migration 7 dropped the indexes no step or query reads. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name IN "
	                               "('instance_states_instance', 'tasks_due')"),
	                 0);
	/* Migration 3 rebuilt the inbox index on the expression it sorts by. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = "
	                               "'tasks_user' AND sql LIKE '%due_at IS NULL%'"),
	                 1);
	h.url = "http://x";
	h.secret = "whsec_x";
	OK(dk_store_begin(f->s));
	OK(dk_store_hook_add(f->s, &h));
	OK(dk_store_commit(f->s));
}

/* A home of schema 6 (its two per-step indexes still there) with an
 * instance in it opens at the current schema without them, and its
 * instance moves on: the per-state rows, tasks and timers it had are the
 * ones the step diffs against. */
static void migrates_from_schema_6_with_data(void **state)
{
	fixture *f = *state;
	dk_instance_row r = {0};
	dk_instance_filter flt = DK_INSTANCE_FILTER_INIT;
	dk_task_row t = {0}, *tasks = NULL;
	dk_timer_row tm = {0}, *timers = NULL;
	dk_instance_row *rows = NULL;
	size_t n = 0;
	char db[160], *a;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "review", "li", 1);
	t.state_id = "review";
	t.user_id = "wei";
	t.due_at = 300;
	t.created_at = 1;
	OK(dk_store_task_replace_for_instance(f->s, a, &t, 1));
	tm.kind = "deadline";
	tm.state_id = "review";
	tm.due_at = 300;
	OK(dk_store_timer_replace_for_instance(f->s, a, &tm, 1));
	OK(dk_store_commit(f->s));
	dk_store_close(f->s);
	f->s = NULL;
	snprintf(db, sizeof(db), "%s/docket.db", f->home);
	exec_raw(db, "CREATE INDEX instance_states_instance ON instance_states (instance_id);"
	             "CREATE INDEX tasks_due ON tasks (due_at); PRAGMA user_version = 6;");

	OK(dk_store_open(&f->s, f->home));
	assert_int_equal(query_int(db, "PRAGMA user_version"), DK_STORE_SCHEMA_VERSION);
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name IN "
	                               "('instance_states_instance', 'tasks_due')"),
	                 0);
	OK(dk_store_begin(f->s));
	OK(dk_store_instance_get(f->s, a, &r));
	free(r.state);
	r.state = strdup("approve");
	OK(dk_store_instance_update(f->s, &r, r.version));
	t.state_id = "approve";
	OK(dk_store_task_replace_for_instance(f->s, a, &t, 1));
	OK(dk_store_timer_replace_for_instance(f->s, a, NULL, 0));
	OK(dk_store_commit(f->s));
	dk_instance_row_free(&r);
	flt.state = "review";
	OK(dk_store_instance_list(f->s, &flt, &rows, &n));
	assert_int_equal(n, 0);
	dk_instance_rows_free(rows, n);
	flt.state = "approve";
	flt.overdue_at = 1000;
	OK(dk_store_instance_list(f->s, &flt, &rows, &n));
	assert_int_equal(n, 1);
	dk_instance_rows_free(rows, n);
	OK(dk_store_task_list_for_instance(f->s, a, &tasks, &n));
	assert_int_equal(n, 1);
	assert_string_equal(tasks[0].state_id, "approve");
	dk_task_rows_free(tasks, n);
	OK(dk_store_timer_due(f->s, 1000, 0, &timers, &n));
	assert_int_equal(n, 0);
	free(a);
}

/* A home of schema 7 keeps its tasks and timers in one creation order
 * across instances, with tasks_instance and timers_instance beside them:
 * migrations 8 and 9 renumber each instance's tasks and timers into its own
 * id range, in their order, and the steps and lists that follow find them
 * there. */
static void migrates_tasks_and_timers_into_instance_ranges(void **state)
{
	fixture *f = *state;
	dk_instance_filter flt = DK_INSTANCE_FILTER_INIT;
	dk_instance_row *rows = NULL;
	dk_task_row t[2] = {{0}}, *tasks = NULL;
	dk_timer_row *timers = NULL;
	size_t n = 0;
	char db[160], *a, *b;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "review", "li", 1);
	b = make_instance(f->s, "f", "review", "li", 1);
	OK(dk_store_commit(f->s));
	dk_store_close(f->s);
	f->s = NULL;
	snprintf(db, sizeof(db), "%s/docket.db", f->home);
	exec_raw(db,
	         "DROP TABLE tasks;"
	         "CREATE TABLE tasks (id INTEGER PRIMARY KEY,"
	         "  instance_id INTEGER NOT NULL REFERENCES instances (id),"
	         "  state_id TEXT NOT NULL, user_id TEXT NOT NULL, role TEXT, due_at INTEGER,"
	         "  created_at INTEGER NOT NULL);"
	         "CREATE INDEX tasks_instance ON tasks (instance_id, due_at);"
	         "CREATE INDEX tasks_user ON tasks (user_id, due_at IS NULL, due_at, created_at);"
	         "INSERT INTO tasks VALUES (1, 1, 'review', 'wei', NULL, 60, 1),"
	         "  (2, 2, 'review', 'wei', NULL, 50, 1), (3, 1, 'docs', 'li', NULL, 50, 1);"
	         "DROP TABLE timers;"
	         "CREATE TABLE timers (id INTEGER PRIMARY KEY AUTOINCREMENT,"
	         "  instance_id INTEGER NOT NULL REFERENCES instances (id), kind TEXT NOT NULL,"
	         "  state_id TEXT, due_at INTEGER NOT NULL, payload TEXT);"
	         "CREATE INDEX timers_due ON timers (due_at, id);"
	         "CREATE INDEX timers_instance ON timers (instance_id);"
	         "INSERT INTO timers VALUES (1, 1, 'deadline', 'review', 300, NULL),"
	         "  (2, 2, 'remind', 'review', 100, NULL), (3, 1, 'remind', 'review', 100, NULL);"
	         "PRAGMA user_version = 7;");

	OK(dk_store_open(&f->s, f->home));
	assert_int_equal(query_int(db, "PRAGMA user_version"), DK_STORE_SCHEMA_VERSION);
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = "
	                               "'tasks_instance'"),
	                 0);
	assert_int_equal(
	    query_int(db, "SELECT count(*) FROM tasks WHERE "
	                  "(instance_id = 1 AND state_id = 'review' AND id = (1 << 32) + 1)"
	                  " OR (instance_id = 1 AND state_id = 'docs' AND id = (1 << 32) + 2)"
	                  " OR (instance_id = 2 AND id = (2 << 32) + 1)"),
	    3);
	/* overdue: each instance once, newest first, though a has two */
	OK(dk_store_timer_due(f->s, 1000, 0, &timers, &n));
	assert_int_equal(n, 3);
	assert_int_equal(timers[0].id, (INT64_C(1) << 32) + 2); /* a's remind, at 100 */
	assert_int_equal(timers[1].id, (INT64_C(2) << 32) + 1); /* b's, at 100 */
	assert_int_equal(timers[2].id, (INT64_C(1) << 32) + 1); /* a's deadline, at 300 */
	assert_string_equal(timers[2].kind, "deadline");
	dk_timer_rows_free(timers, n);
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = "
	                               "'timers_instance'"),
	                 0);
	assert_int_equal(
	    query_int(db, "SELECT count(*) FROM sqlite_sequence WHERE name = 'timers'"), 0);
	flt.overdue_at = 100;
	OK(dk_store_instance_list(f->s, &flt, &rows, &n));
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].id, b);
	assert_string_equal(rows[1].id, a);
	dk_instance_rows_free(rows, n);
	flt.state = "review";
	OK(dk_store_instance_list(f->s, &flt, &rows, &n));
	assert_int_equal(n, 2);
	dk_instance_rows_free(rows, n);
	/* a step of a: docs stays, review closes, approve opens after it */
	t[0].state_id = "docs";
	t[0].user_id = "li";
	t[0].due_at = 50;
	t[0].created_at = 1;
	t[1].state_id = "approve";
	t[1].user_id = "wei";
	t[1].created_at = 2;
	OK(dk_store_begin(f->s));
	OK(dk_store_task_replace_for_instance(f->s, a, t, 2));
	OK(dk_store_commit(f->s));
	assert_int_equal(query_int(db, "SELECT count(*) FROM tasks WHERE instance_id = 1 AND "
	                               "state_id = 'approve' AND id = (1 << 32) + 3"),
	                 1);
	OK(dk_store_task_list_for_instance(f->s, a, &tasks, &n));
	assert_int_equal(n, 2);
	assert_string_equal(tasks[0].state_id, "docs");
	assert_string_equal(tasks[1].state_id, "approve");
	dk_task_rows_free(tasks, n);
	OK(dk_store_task_list_for_instance(f->s, b, &tasks, &n));
	assert_int_equal(n, 1);
	dk_task_rows_free(tasks, n);
	OK(dk_store_task_list_for_user(f->s, "wei", 0, 0, 0, &tasks, &n));
	assert_int_equal(n, 2);
	assert_string_equal(tasks[0].instance_id, b); /* due first */
	assert_string_equal(tasks[1].instance_id, a); /* no deadline last */
	dk_task_rows_free(tasks, n);
	/* a row written behind the store's back must sit in its range */
	{
		sqlite3 *h = NULL;
		assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
		assert_int_not_equal(
		    sqlite3_exec(h,
		                 "INSERT INTO tasks (instance_id, state_id, user_id, "
		                 "created_at) VALUES (1, 's', 'u', 1)",
		                 NULL, NULL, NULL),
		    SQLITE_OK);
		sqlite3_close(h);
	}
	free(a);
	free(b);
}

static void refuses_newer_schema(void **state)
{
	fixture *f = *state;
	char db[160], sql[64];
	dk_store *s2 = NULL;

	dk_store_close(f->s);
	f->s = NULL;
	snprintf(db, sizeof(db), "%s/docket.db", f->home);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", DK_STORE_SCHEMA_VERSION + 1);
	exec_raw(db, sql);
	assert_int_equal(dk_store_open(&s2, f->home), DK_EINVALID);
	assert_null(s2);
	assert_non_null(strstr(dk_error_last(), "newer docket"));
	/* The refusal changed nothing. */
	assert_int_equal(query_int(db, "PRAGMA user_version"), DK_STORE_SCHEMA_VERSION + 1);
}

static void writes_need_transaction(void **state)
{
	fixture *f = *state;

	assert_int_equal(dk_store_flow_put(f->s, "f", 1, NULL, "x", 1, 1, NULL), DK_EINTERNAL);
	assert_non_null(strstr(dk_error_last(), "dk_store_begin"));
	assert_int_equal(dk_store_in_transaction(f->s), 0);
	OK(dk_store_begin(f->s));
	assert_int_equal(dk_store_in_transaction(f->s), 1);
	assert_int_equal(dk_store_begin(f->s), DK_EINTERNAL);
	OK(dk_store_rollback(f->s));
	OK(dk_store_rollback(f->s));
	assert_int_equal(dk_store_commit(f->s), DK_EINTERNAL);
}

static void busy_is_conflict(void **state)
{
	fixture *f = *state;
	dk_store *s2;

	OK(dk_store_open(&s2, f->home));
	dk_store_set_busy_timeout(s2, 50);
	OK(dk_store_begin(f->s));
	assert_int_equal(dk_store_begin(s2), DK_ECONFLICT);
	assert_string_equal(dk_error_last(), "the database is busy; try again");
	OK(dk_store_commit(f->s));
	OK(dk_store_begin(s2));
	OK(dk_store_commit(s2));
	dk_store_close(s2);
}

/* Two processes open a brand-new home at once, then append events to the
 * same instance in many small transactions: both migrations succeed (one
 * applies, the other finds the work done) and the trail has no gap and no
 * duplicate. */
static void two_processes(void **state)
{
	fixture *f = *state;
	char home2[128];
	dk_event_row *rows;
	dk_store *s;
	pid_t pid[2];
	size_t n, i;
	int k, status, v;

	snprintf(home2, sizeof(home2), "%s/shared", f->dir);
	for (k = 0; k < 2; k++) {
		pid[k] = fork();
		assert_true(pid[k] >= 0);
		if (pid[k] == 0) {
			dk_event_row ev = {0};
			int j = 0, tries = 0, bad = 0;
			while (dk_store_open(&s, home2) != 0)
				if (dk_error_code() != DK_ECONFLICT || ++tries > 100)
					_exit(10);
			ev.instance_id = "1";
			ev.type = k ? "b" : "a";
			/* The parent's instance may not exist yet: retry until
			 * it does (bounded, so a bug cannot hang the test). */
			for (tries = 0; j < 40 && !bad && tries < 5000; tries++) {
				if (dk_store_begin(s) != 0)
					continue;
				if (dk_store_event_append(s, &ev) != 0) {
					dk_store_rollback(s);
					usleep(2000);
					continue;
				}
				bad = dk_store_commit(s) != 0;
				j++;
			}
			dk_store_close(s);
			_exit(bad || j < 40 ? 11 : 0);
		}
	}
	/* Open concurrently with the children, then create the instance. */
	for (;;) {
		if (dk_store_open(&s, home2) == 0)
			break;
		assert_int_equal(dk_error_code(), DK_ECONFLICT);
	}
	OK(dk_store_schema_version(s, &v));
	assert_int_equal(v, DK_STORE_SCHEMA_VERSION);
	OK(dk_store_begin(s));
	deploy_flows(s);
	free(make_instance(s, "f", "s", "li", 1));
	OK(dk_store_commit(s));
	for (k = 0; k < 2; k++) {
		assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	OK(dk_store_event_list(s, "1", &rows, &n));
	assert_int_equal(n, 80);
	for (i = 0; i < n; i++)
		assert_int_equal(rows[i].seq, (int64_t)i + 1);
	dk_event_rows_free(rows, n);
	dk_store_close(s);
}

/* ---- flows and org ----------------------------------------------------- */

static void flow_put_idempotent_and_conflict(void **state)
{
	fixture *f = *state;
	dk_flow_row row, *rows;
	size_t n;
	int unchanged = -1;

	OK(dk_store_begin(f->s));
	OK(dk_store_flow_put(f->s, "f", 1, "F", flow_xml, strlen(flow_xml), 100, &unchanged));
	assert_int_equal(unchanged, 0);
	OK(dk_store_flow_put(f->s, "f", 1, "F", flow_xml, strlen(flow_xml), 200, &unchanged));
	assert_int_equal(unchanged, 1);
	assert_int_equal(dk_store_flow_put(f->s, "f", 1, "F", "<other/>", 8, 200, &unchanged),
	                 DK_ECONFLICT);
	assert_string_equal(dk_error_last(),
	                    "flow f version 1 is already deployed with different content; raise "
	                    "version= in the file to deploy a new version");
	OK(dk_store_flow_put(f->s, "f", 2, "F2", "<v2/>", 5, 300, &unchanged));
	OK(dk_store_flow_put(f->s, "a", 1, NULL, "<a/>", 4, 300, NULL));
	OK(dk_store_commit(f->s));

	OK(dk_store_flow_get(f->s, "f", 0, &row));
	assert_int_equal(row.version, 2);
	assert_string_equal(row.bytes, "<v2/>");
	assert_string_equal(row.title, "F2");
	dk_flow_row_free(&row);
	OK(dk_store_flow_get(f->s, "f", 1, &row));
	assert_string_equal(row.bytes, flow_xml);
	assert_int_equal(row.deployed_at, 100);
	assert_int_equal(strlen(row.sha256), 64);
	dk_flow_row_free(&row);
	assert_int_equal(dk_store_flow_get(f->s, "f", 3, &row), DK_ENOTFOUND);
	assert_int_equal(dk_store_flow_get(f->s, "zz", 0, &row), DK_ENOTFOUND);

	OK(dk_store_flow_list(f->s, 0, &rows, &n));
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].flow_id, "a");
	assert_null(rows[0].title);
	assert_string_equal(rows[1].flow_id, "f");
	assert_int_equal(rows[1].version, 2);
	assert_null(rows[1].bytes);
	dk_flow_rows_free(rows, n);
	OK(dk_store_flow_list(f->s, 1, &rows, &n));
	assert_int_equal(n, 3);
	assert_int_equal(rows[1].version, 1);
	assert_int_equal(rows[2].version, 2);
	dk_flow_rows_free(rows, n);
}

/* A compiled form answers only for the very bytes it was made from, in
 * its own format; anything else is a miss the caller loads through. */
static void compiled_forms(void **state)
{
	fixture *f = *state;
	char *body = NULL;
	static const char src[] = "<flow id=\"f\"/>", other[] = "<flow id=\"g\"/>";

	assert_int_equal(dk_store_compiled_put(f->s, "flow", "aa", 1, src, strlen(src), "{}"),
	                 DK_EINTERNAL);
	assert_int_equal(dk_store_compiled_get(f->s, "flow", "aa", 1, src, strlen(src), &body),
	                 DK_ENOTFOUND);
	assert_null(body);
	OK(dk_store_begin(f->s));
	OK(dk_store_compiled_put(f->s, "flow", "aa", 1, src, strlen(src), "{\"a\":1}"));
	OK(dk_store_compiled_put(f->s, "org", "aa", 1, other, strlen(other), "{\"o\":1}"));
	OK(dk_store_commit(f->s));
	OK(dk_store_compiled_get(f->s, "flow", "aa", 1, src, strlen(src), &body));
	assert_string_equal(body, "{\"a\":1}");
	free(body);
	OK(dk_store_compiled_get(f->s, "org", "aa", 1, other, strlen(other), &body));
	assert_string_equal(body, "{\"o\":1}");
	free(body);
	body = NULL;
	/* the same length, other bytes: the CRC tells them apart */
	assert_int_equal(dk_store_compiled_get(f->s, "flow", "aa", 1, other, strlen(other), &body),
	                 DK_ENOTFOUND);
	assert_int_equal(dk_store_compiled_get(f->s, "flow", "aa", 1, src, strlen(src) - 1, &body),
	                 DK_ENOTFOUND);
	assert_int_equal(dk_store_compiled_get(f->s, "flow", "aa", 2, src, strlen(src), &body),
	                 DK_ENOTFOUND);
	assert_int_equal(dk_store_compiled_get(f->s, "flow", "bb", 1, src, strlen(src), &body),
	                 DK_ENOTFOUND);
	assert_null(body);
	/* a new format replaces the row */
	OK(dk_store_begin(f->s));
	OK(dk_store_compiled_put(f->s, "flow", "aa", 2, src, strlen(src), "{\"a\":2}"));
	OK(dk_store_commit(f->s));
	assert_int_equal(dk_store_compiled_get(f->s, "flow", "aa", 1, src, strlen(src), &body),
	                 DK_ENOTFOUND);
	OK(dk_store_compiled_get(f->s, "flow", "aa", 2, src, strlen(src), &body));
	assert_string_equal(body, "{\"a\":2}");
	free(body);
}

static void org_replace(void **state)
{
	fixture *f = *state;
	char *roles_li[] = {"employee"};
	char *roles_wei[] = {"dept-head", "assessment-group"};
	dk_user users[] = {
	    {"li", "李明", "li@example.com", "sales", roles_li, 1, 3},
	    {"wei", "魏总", NULL, "sales", roles_wei, 2, 4},
	};
	dk_dept depts[] = {{"sales", "销售公司", "wei", "zhao", 2}};
	char *hol[] = {"2026-10-01", "2026-10-02"};
	dk_org org = {0};
	const char *xml = "<org>一</org>";
	char sha[65], want[65];
	char *bytes;
	size_t len;
	char db[160];

	org.timezone = "Asia/Shanghai";
	org.users = users;
	org.nusers = 2;
	org.depts = depts;
	org.ndepts = 1;
	org.holidays = hol;
	org.nholidays = 2;

	assert_int_equal(dk_store_org_bytes(f->s, &bytes, &len), DK_ENOTFOUND);
	assert_int_equal(dk_store_org_sha256(f->s, sha), DK_ENOTFOUND);
	assert_int_equal(dk_store_user_exists(f->s, "li"), 0);
	OK(dk_store_begin(f->s));
	OK(dk_store_org_replace(f->s, &org, xml, strlen(xml), 1000));
	OK(dk_store_commit(f->s));
	assert_int_equal(dk_store_user_exists(f->s, "li"), 1);
	assert_int_equal(dk_store_user_exists(f->s, "wei"), 1);
	assert_int_equal(dk_store_user_exists(f->s, "nobody"), 0);
	OK(dk_store_org_bytes(f->s, &bytes, &len));
	assert_int_equal(len, strlen(xml));
	assert_string_equal(bytes, xml);
	free(bytes);
	/* the SHA-256 of exactly those bytes */
	OK(dk_store_org_sha256(f->s, sha));
	dk_sha256_hex(want, xml, strlen(xml));
	assert_string_equal(sha, want);

	snprintf(db, sizeof(db), "%s/docket.db", f->home);
	assert_int_equal(query_int(db, "SELECT count(*) FROM users WHERE roles = "
	                               "'dept-head assessment-group' AND name = '魏总'"),
	                 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM depts WHERE head = 'wei' AND "
	                               "division_leader = 'zhao'"),
	                 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM holidays"), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM org_file WHERE timezone = "
	                               "'Asia/Shanghai' AND length(sha256) = 64"),
	                 1);

	/* Replace with a smaller org: the old rows are gone. */
	org.nusers = 1;
	org.nholidays = 0;
	OK(dk_store_begin(f->s));
	OK(dk_store_org_replace(f->s, &org, "<org/>", 6, 2000));
	OK(dk_store_commit(f->s));
	assert_int_equal(dk_store_user_exists(f->s, "wei"), 0);
	assert_int_equal(dk_store_user_exists(f->s, "li"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM holidays"), 0);
	OK(dk_store_org_bytes(f->s, &bytes, &len));
	assert_string_equal(bytes, "<org/>");
	free(bytes);
}

/* ---- instances, events, tasks ------------------------------------------ */

static void instance_cas(void **state)
{
	fixture *f = *state;
	dk_instance_row r, got;
	char *id1, *id2;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	id1 = make_instance(f->s, "f", "draft", "li", 500);
	id2 = make_instance(f->s, "f", "draft", "li", 501);
	OK(dk_store_commit(f->s));
	assert_string_equal(id1, "1");
	assert_string_equal(id2, "2");

	OK(dk_store_instance_get(f->s, "1", &r));
	assert_int_equal(r.version, 1);
	assert_string_equal(r.status, "active");
	assert_int_equal(r.updated_at, 500);
	free(r.state);
	r.state = strdup("review");
	free(r.snapshot);
	r.snapshot = strdup("{\"v\":2}");
	r.updated_at = 600;
	OK(dk_store_begin(f->s));
	OK(dk_store_instance_update(f->s, &r, 1));
	assert_int_equal(r.version, 2);
	/* A second writer that read version 1 loses. */
	assert_int_equal(dk_store_instance_update(f->s, &r, 1), DK_ECONFLICT);
	assert_string_equal(dk_error_last(),
	                    "instance 1 was changed by someone else (version 2, you had 1); "
	                    "reload with docket show and try again");
	OK(dk_store_commit(f->s));

	OK(dk_store_instance_get(f->s, "1", &got));
	assert_int_equal(got.version, 2);
	assert_string_equal(got.state, "review");
	assert_string_equal(got.snapshot, "{\"v\":2}");
	assert_int_equal(got.updated_at, 600);
	assert_int_equal(got.created_at, 500);
	dk_instance_row_free(&got);

	free(r.id);
	r.id = strdup("99");
	OK(dk_store_begin(f->s));
	assert_int_equal(dk_store_instance_update(f->s, &r, 2), DK_ENOTFOUND);
	free(r.status);
	r.status = strdup("finished");
	free(r.id);
	r.id = strdup("1");
	assert_int_equal(dk_store_instance_update(f->s, &r, 2), DK_EINVALID);
	OK(dk_store_rollback(f->s));
	dk_instance_row_free(&r);

	assert_int_equal(dk_store_instance_get(f->s, "3", &got), DK_ENOTFOUND);
	assert_int_equal(dk_store_instance_get(f->s, "01", &got), DK_ENOTFOUND);
	assert_int_equal(dk_store_instance_get(f->s, "abc", &got), DK_ENOTFOUND);
	assert_int_equal(dk_store_instance_get(f->s, "", &got), DK_ENOTFOUND);

	/* Unknown flow version: the foreign key refuses it. */
	OK(dk_store_begin(f->s));
	memset(&r, 0, sizeof(r));
	r.flow_id = "f";
	r.flow_version = 7;
	r.state = "x";
	r.snapshot = "{}";
	r.initiator = "li";
	assert_int_equal(dk_store_instance_create(f->s, &r), DK_ECONFLICT);
	OK(dk_store_rollback(f->s));
	free(id1);
	free(id2);
}

static void list_ids(dk_store *s, const dk_instance_filter *flt, char *out, size_t outlen)
{
	dk_instance_row *rows;
	size_t n, i;
	dk_buf b = DK_BUF_INIT;
	OK(dk_store_instance_list(s, flt, &rows, &n));
	for (i = 0; i < n; i++)
		dk_buf_printf(&b, "%s%s", i ? " " : "", rows[i].id);
	snprintf(out, outlen, "%s", dk_buf_cstr(&b));
	dk_buf_free(&b);
	dk_instance_rows_free(rows, n);
}

static void instance_list_filters(void **state)
{
	fixture *f = *state;
	dk_instance_filter flt = DK_INSTANCE_FILTER_INIT;
	dk_instance_row r;
	dk_task_row t = {0};
	char got[128];
	char *ids[5];
	int i;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	ids[0] = make_instance(f->s, "f", "draft", "li", 10);
	ids[1] = make_instance(f->s, "g", "docs-check,finance-check", "wei", 11);
	ids[2] = make_instance(f->s, "f", "review", "wei", 12);
	ids[3] = make_instance(f->s, "f", "finance-check", "li", 13);
	ids[4] = make_instance(f->s, "g", "done", "li", 14);
	/* instance 5 completed */
	OK(dk_store_instance_get(f->s, "5", &r));
	free(r.status);
	r.status = strdup("completed");
	r.final = 1;
	OK(dk_store_instance_update(f->s, &r, 1));
	dk_instance_row_free(&r);
	/* open tasks: instance 2 due at 50, instance 3 due at 200, 4 none */
	t.state_id = "docs-check";
	t.user_id = "wei";
	t.due_at = 50;
	OK(dk_store_task_replace_for_instance(f->s, "2", &t, 1));
	t.state_id = "review";
	t.due_at = 200;
	OK(dk_store_task_replace_for_instance(f->s, "3", &t, 1));
	t.due_at = 0;
	OK(dk_store_task_replace_for_instance(f->s, "4", &t, 1));
	OK(dk_store_commit(f->s));
	for (i = 0; i < 5; i++)
		free(ids[i]);

	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "5 4 3 2 1");
	flt.flow = "f";
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "4 3 1");
	flt.flow = NULL;
	flt.state = "finance-check";
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "4 2");
	flt.flow = "g";
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "2");
	flt.flow = NULL;
	flt.state = "docs-check";
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "2");
	flt.state = NULL;
	flt.initiator = "li";
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "5 4 1");
	flt.status = "active";
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "4 1");
	flt.initiator = NULL;
	flt.status = "completed";
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "5");
	flt.status = NULL;
	flt.overdue_at = 100;
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "2");
	flt.overdue_at = 1000;
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "3 2");
	flt.overdue_at = 0;
	flt.limit = 2;
	flt.offset = 1;
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "4 3");
	flt.limit = 0;
	flt.offset = 0;
	flt.state = "nowhere";
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "");

	/* Moving an instance re-indexes its states. */
	OK(dk_store_instance_get(f->s, "2", &r));
	free(r.state);
	r.state = strdup("approve");
	OK(dk_store_begin(f->s));
	OK(dk_store_instance_update(f->s, &r, 1));
	OK(dk_store_commit(f->s));
	dk_instance_row_free(&r);
	flt.state = "finance-check";
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "4");
	flt.state = "approve";
	list_ids(f->s, &flt, got, sizeof(got));
	assert_string_equal(got, "2");
}

static void event_seq_without_gaps(void **state)
{
	fixture *f = *state;
	dk_event_row ev = {0}, *rows;
	size_t n;
	char *a, *b;
	int i;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "s", "li", 1);
	b = make_instance(f->s, "f", "s", "li", 1);
	for (i = 0; i < 3; i++) {
		ev.instance_id = a;
		ev.type = "transition";
		ev.at = 10 + i;
		OK(dk_store_event_append(f->s, &ev));
		assert_int_equal(ev.seq, i + 1);
		ev.instance_id = b;
		if (i < 2) {
			OK(dk_store_event_append(f->s, &ev));
			assert_int_equal(ev.seq, i + 1);
		}
	}
	OK(dk_store_commit(f->s));

	/* A rolled-back append leaves no hole: the next one takes its number. */
	OK(dk_store_begin(f->s));
	ev.instance_id = a;
	OK(dk_store_event_append(f->s, &ev));
	assert_int_equal(ev.seq, 4);
	OK(dk_store_rollback(f->s));
	OK(dk_store_begin(f->s));
	ev.comment = "again";
	OK(dk_store_event_append(f->s, &ev));
	assert_int_equal(ev.seq, 4);
	OK(dk_store_commit(f->s));

	/* Nor does one undone by a savepoint: the store's memory of the
	 * next number goes with it. */
	OK(dk_store_begin(f->s));
	OK(dk_store_savepoint(f->s));
	ev.comment = NULL;
	OK(dk_store_event_append(f->s, &ev));
	assert_int_equal(ev.seq, 5);
	OK(dk_store_savepoint_rollback(f->s));
	OK(dk_store_event_append(f->s, &ev));
	assert_int_equal(ev.seq, 5);
	ev.instance_id = b;
	OK(dk_store_event_append(f->s, &ev));
	assert_int_equal(ev.seq, 3);
	ev.instance_id = a;
	OK(dk_store_event_append(f->s, &ev));
	assert_int_equal(ev.seq, 6);
	OK(dk_store_event_append(f->s, &ev));
	assert_int_equal(ev.seq, 7);
	OK(dk_store_rollback(f->s));

	OK(dk_store_event_list(f->s, a, &rows, &n));
	assert_int_equal(n, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(rows[i].seq, i + 1);
		assert_string_equal(rows[i].instance_id, "1");
	}
	assert_string_equal(rows[3].comment, "again");
	assert_null(rows[0].comment);
	dk_event_rows_free(rows, n);
	OK(dk_store_event_list(f->s, b, &rows, &n));
	assert_int_equal(n, 2);
	dk_event_rows_free(rows, n);
	OK(dk_store_event_list(f->s, "x", &rows, &n));
	assert_int_equal(n, 0);

	/* The UNIQUE index refuses a duplicate seq written behind our back. */
	{
		sqlite3 *db = f->s->db;
		assert_int_not_equal(sqlite3_exec(db,
		                                  "INSERT INTO events (instance_id, seq, type, at) "
		                                  "VALUES (1, 2, 'x', 0)",
		                                  NULL, NULL, NULL),
		                     SQLITE_OK);
	}
	OK(dk_store_begin(f->s));
	ev.instance_id = "42";
	assert_int_equal(dk_store_event_append(f->s, &ev), DK_ECONFLICT);
	OK(dk_store_rollback(f->s));
	free(a);
	free(b);
}

static void tasks_replace_and_user_list(void **state)
{
	fixture *f = *state;
	dk_task_row t[3], *rows;
	dk_delegation_row d = {0};
	size_t n;
	char *a, *b;

	memset(t, 0, sizeof(t));
	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "review", "li", 1);
	b = make_instance(f->s, "g", "sign", "li", 1);
	t[0].state_id = "review";
	t[0].user_id = "wei";
	t[0].role = "dept-head";
	t[0].due_at = 300;
	t[0].created_at = 5;
	t[1].state_id = "review";
	t[1].user_id = "zhao";
	t[1].created_at = 5;
	OK(dk_store_task_replace_for_instance(f->s, a, t, 2));
	t[0].due_at = 0; /* b: wei's task without a deadline */
	t[0].state_id = "sign";
	t[1].state_id = "sign";
	t[1].due_at = 100;
	t[1].user_id = "wei";
	t[1].role = "assessment-group";
	OK(dk_store_task_replace_for_instance(f->s, b, t, 2));
	OK(dk_store_commit(f->s));

	/* wei: b@100, a@300, then b (no deadline). */
	OK(dk_store_task_list_for_user(f->s, "wei", 0, 0, 0, &rows, &n));
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].instance_id, b);
	assert_int_equal(rows[0].due_at, 100);
	assert_string_equal(rows[0].flow_id, "g");
	assert_string_equal(rows[0].state, "sign");
	assert_string_equal(rows[0].title, "t");
	assert_null(rows[0].on_behalf_of);
	assert_string_equal(rows[1].instance_id, a);
	assert_int_equal(rows[1].due_at, 300);
	assert_string_equal(rows[1].role, "dept-head");
	assert_string_equal(rows[2].instance_id, b);
	assert_int_equal(rows[2].due_at, 0);
	dk_task_rows_free(rows, n);
	OK(dk_store_task_list_for_user(f->s, "wei", 0, 1, 1, &rows, &n));
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].due_at, 300);
	dk_task_rows_free(rows, n);

	OK(dk_store_task_list_for_instance(f->s, a, &rows, &n));
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].user_id, "wei");
	assert_string_equal(rows[1].user_id, "zhao");
	dk_task_rows_free(rows, n);

	/* Replacing drops the old set. */
	OK(dk_store_begin(f->s));
	OK(dk_store_task_replace_for_instance(f->s, a, &t[1], 1));
	OK(dk_store_commit(f->s));
	OK(dk_store_task_list_for_user(f->s, "zhao", 0, 0, 0, &rows, &n));
	assert_int_equal(n, 0);
	OK(dk_store_task_list_for_instance(f->s, a, &rows, &n));
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].state_id, "sign");
	dk_task_rows_free(rows, n);

	/* A task that stays open stays as it was (created_at 5, not 9); one
	 * that came is new. */
	t[1].created_at = 9;
	t[0].state_id = "sign";
	t[0].user_id = "zhao";
	t[0].role = NULL;
	t[0].due_at = 0;
	t[0].created_at = 9;
	OK(dk_store_begin(f->s));
	OK(dk_store_task_replace_for_instance(f->s, a, t, 2));
	OK(dk_store_commit(f->s));
	OK(dk_store_task_list_for_instance(f->s, a, &rows, &n));
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].user_id, "wei");
	assert_int_equal(rows[0].created_at, 5);
	assert_string_equal(rows[1].user_id, "zhao");
	assert_int_equal(rows[1].created_at, 9);
	dk_task_rows_free(rows, n);
	t[0].state_id = "review";
	t[0].user_id = "wei";
	t[0].role = "dept-head";
	t[0].due_at = 300;

	/* Delegation: wei hands dept-head (only) to li between 1000 and 2000. */
	OK(dk_store_begin(f->s));
	OK(dk_store_task_replace_for_instance(f->s, a, t, 1)); /* wei, dept-head */
	d.from_user = "wei";
	d.to_user = "li";
	d.role = "dept-head";
	d.created_at = 1000;
	d.until = 2000;
	OK(dk_store_delegation_add(f->s, &d));
	OK(dk_store_commit(f->s));
	/* wei's two dept-head tasks (a and b) reach li, not the
	 * assessment-group one. */
	OK(dk_store_task_list_for_user(f->s, "li", 1500, 0, 0, &rows, &n));
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].user_id, "wei");
	assert_string_equal(rows[0].on_behalf_of, "wei");
	assert_string_equal(rows[0].role, "dept-head");
	assert_string_equal(rows[1].on_behalf_of, "wei");
	assert_string_equal(rows[1].role, "dept-head");
	dk_task_rows_free(rows, n);
	OK(dk_store_task_list_for_user(f->s, "li", 2000, 0, 0, &rows, &n));
	assert_int_equal(n, 0);
	OK(dk_store_task_list_for_user(f->s, "li", 0, 0, 0, &rows, &n));
	assert_int_equal(n, 0);

	OK(dk_store_begin(f->s));
	OK(dk_store_task_replace_for_instance(f->s, a, NULL, 0));
	OK(dk_store_commit(f->s));
	OK(dk_store_task_list_for_instance(f->s, a, &rows, &n));
	assert_int_equal(n, 0);
	free(a);
	free(b);
}

/* ---- delegations and timers -------------------------------------------- */

static void delegations_active_window(void **state)
{
	fixture *f = *state;
	dk_delegation_row d = {0}, *rows;
	size_t n;

	OK(dk_store_begin(f->s));
	d.from_user = "zhao";
	d.to_user = "wei";
	d.created_at = 100;
	d.until = 200;
	d.created_by = "admin";
	OK(dk_store_delegation_add(f->s, &d));
	assert_int_equal(d.id, 1);
	d.from_user = "qian";
	d.role = "division-leader";
	d.until = 300;
	OK(dk_store_delegation_add(f->s, &d));
	d.until = 50;
	assert_int_equal(dk_store_delegation_add(f->s, &d), DK_EINVALID);
	OK(dk_store_commit(f->s));

	OK(dk_store_delegation_active(f->s, 99, "wei", &rows, &n));
	assert_int_equal(n, 0);
	OK(dk_store_delegation_active(f->s, 100, "wei", &rows, &n));
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].from_user, "zhao");
	assert_null(rows[0].role);
	assert_string_equal(rows[0].created_by, "admin");
	assert_string_equal(rows[1].role, "division-leader");
	dk_delegation_rows_free(rows, n);
	OK(dk_store_delegation_active(f->s, 200, "wei", &rows, &n));
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].from_user, "qian");
	dk_delegation_rows_free(rows, n);
	OK(dk_store_delegation_active(f->s, 150, "zhao", &rows, &n));
	assert_int_equal(n, 0);

	OK(dk_store_begin(f->s));
	OK(dk_store_delegation_remove(f->s, 1));
	assert_int_equal(dk_store_delegation_remove(f->s, 1), DK_ENOTFOUND);
	OK(dk_store_commit(f->s));
	OK(dk_store_delegation_list(f->s, &rows, &n));
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, 2);
	dk_delegation_rows_free(rows, n);
}

static void timers_due_and_delete_once(void **state)
{
	fixture *f = *state;
	dk_timer_row t = {0}, *rows, two;
	dk_store *s2;
	size_t n;
	int64_t next, id[5];
	int deleted;
	char *a, *b;

	OK(dk_store_timer_next_due(f->s, &next));
	assert_int_equal(next, 0);
	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "s", "li", 1);
	b = make_instance(f->s, "f", "s", "li", 1);
	t.instance_id = a;
	t.kind = "deadline";
	t.state_id = "review";
	t.due_at = 300;
	t.payload = "{\"k\":1}";
	OK(dk_store_timer_add(f->s, &t)); /* 1: 300 */
	id[1] = t.id;
	t.due_at = 100;
	OK(dk_store_timer_add(f->s, &t)); /* 2: 100 */
	id[2] = t.id;
	two = t;
	t.instance_id = b;
	t.kind = "remind";
	t.due_at = 200;
	OK(dk_store_timer_add(f->s, &t)); /* 3: 200 */
	id[3] = t.id;
	t.due_at = 100;
	OK(dk_store_timer_add(f->s, &t)); /* 4: 100 */
	id[4] = t.id;
	OK(dk_store_commit(f->s));
	/* each instance's timers are numbered in its own id range */
	assert_int_equal(id[1], (INT64_C(1) << 32) + 1);
	assert_int_equal(id[2], (INT64_C(1) << 32) + 2);
	assert_int_equal(id[3], (INT64_C(2) << 32) + 1);
	assert_int_equal(id[4], (INT64_C(2) << 32) + 2);

	OK(dk_store_timer_next_due(f->s, &next));
	assert_int_equal(next, 100);
	OK(dk_store_timer_due(f->s, 250, 0, &rows, &n));
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].id, id[2]);
	assert_int_equal(rows[1].id, id[4]);
	assert_int_equal(rows[2].id, id[3]);
	assert_string_equal(rows[2].kind, "remind");
	assert_string_equal(rows[2].payload, "{\"k\":1}");
	assert_string_equal(rows[2].instance_id, b);
	dk_timer_rows_free(rows, n);
	OK(dk_store_timer_due(f->s, 250, 1, &rows, &n));
	assert_int_equal(n, 1);
	dk_timer_rows_free(rows, n);

	/* Two tickers: only the first delete counts. A timer read before is
	 * deleted only while it is armed as it was read. */
	OK(dk_store_open(&s2, f->home));
	OK(dk_store_begin(f->s));
	two.due_at = 101;
	OK(dk_store_timer_delete(f->s, &two, &deleted));
	assert_int_equal(deleted, 0);
	two.due_at = 100;
	OK(dk_store_timer_delete(f->s, &two, &deleted));
	assert_int_equal(deleted, 1);
	OK(dk_store_commit(f->s));
	OK(dk_store_begin(s2));
	OK(dk_store_timer_delete(s2, &two, &deleted));
	assert_int_equal(deleted, 0);
	OK(dk_store_commit(s2));
	dk_store_close(s2);

	OK(dk_store_begin(f->s));
	OK(dk_store_timer_clear_for_instance(f->s, b));
	OK(dk_store_commit(f->s));
	OK(dk_store_timer_due(f->s, 1000, 0, &rows, &n));
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, id[1]);
	dk_timer_rows_free(rows, n);
	OK(dk_store_timer_next_due(f->s, &next));
	assert_int_equal(next, 300);
	free(a);
	free(b);
}

/* Re-arming an instance's timers keeps the rows of those armed as they
 * were (same id), drops the others and adds the missing ones. */
static void timers_replace_keeps_unchanged(void **state)
{
	fixture *f = *state;
	dk_timer_row t[3], *rows = NULL;
	size_t n = 0;
	int64_t kept;
	char *a, *b;

	memset(t, 0, sizeof(t));
	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "s", "li", 1);
	b = make_instance(f->s, "f", "s", "li", 1);
	t[0].kind = "escalate";
	t[0].state_id = "review";
	t[0].due_at = 300;
	t[0].payload = "{\"visit\":1}";
	t[1].kind = "remind";
	t[1].state_id = "review";
	t[1].due_at = 100;
	t[1].payload = "{\"visit\":1}";
	OK(dk_store_timer_replace_for_instance(f->s, b, t, 1));
	OK(dk_store_timer_replace_for_instance(f->s, a, t, 2));
	kept = t[0].id;
	assert_true(kept > 0 && t[1].id > kept);
	/* the reminder moves on, the escalation stays, a deadline comes */
	t[1].due_at = 200;
	t[2].kind = "deadline";
	t[2].state_id = "review";
	t[2].due_at = 400;
	OK(dk_store_timer_replace_for_instance(f->s, a, t, 3));
	OK(dk_store_commit(f->s));
	assert_int_equal(t[0].id, kept);
	OK(dk_store_timer_due(f->s, 1000, 0, &rows, &n));
	assert_int_equal(n, 4);
	assert_int_equal(rows[0].due_at, 200);
	assert_string_equal(rows[0].kind, "remind");
	assert_int_equal(rows[1].due_at, 300); /* the same due time: older instance first */
	assert_int_equal(rows[1].id, kept);
	assert_string_equal(rows[1].instance_id, a);
	assert_int_equal(rows[2].due_at, 300);
	assert_string_equal(rows[2].instance_id, b);
	assert_int_equal(rows[3].due_at, 400);
	assert_null(rows[3].payload);
	dk_timer_rows_free(rows, n);
	/* none: every timer of a goes, b's stay */
	OK(dk_store_begin(f->s));
	OK(dk_store_timer_replace_for_instance(f->s, a, NULL, 0));
	OK(dk_store_commit(f->s));
	OK(dk_store_timer_due(f->s, 1000, 0, &rows, &n));
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].instance_id, b);
	dk_timer_rows_free(rows, n);
	free(a);
	free(b);
}

static long wal_frames; /* frames in the WAL after the last commit */
static int count_frames(void *p, sqlite3 *db, const char *name, int n)
{
	(void)p;
	(void)db;
	(void)name;
	wal_frames = n;
	return SQLITE_OK;
}

/* A step that keeps its instance's state and status writes the instance
 * row's page and nothing of instance_states, instances_status or
 * instances_initiator; one that changes the state moves its per-state
 * rows, by key. Counted in WAL frames of the commit. */
static void instance_update_writes_what_changed(void **state)
{
	fixture *f = *state;
	dk_instance_filter flt = DK_INSTANCE_FILTER_INIT;
	dk_instance_row r = {0}, *rows = NULL;
	size_t n = 0;
	char *a;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "review", "li", 1);
	OK(dk_store_commit(f->s));
	sqlite3_wal_hook(f->s->db, count_frames, NULL);
	OK(dk_store_instance_get(f->s, a, &r));
	/* an empty WAL: the frames in it after the commit are the commit's */
	assert_int_equal(
	    sqlite3_wal_checkpoint_v2(f->s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL),
	    SQLITE_OK);
	OK(dk_store_begin(f->s));
	OK(dk_store_instance_update(f->s, &r, r.version));
	wal_frames = 0;
	OK(dk_store_commit(f->s));
	assert_int_equal(wal_frames, 1);
	/* into a parallel, then out of one region of it */
	free(r.state);
	r.state = strdup("docs,finance");
	OK(dk_store_begin(f->s));
	OK(dk_store_instance_update(f->s, &r, r.version));
	free(r.state);
	r.state = strdup("finance");
	OK(dk_store_instance_update(f->s, &r, r.version));
	OK(dk_store_commit(f->s));
	flt.state = "finance";
	OK(dk_store_instance_list(f->s, &flt, &rows, &n));
	assert_int_equal(n, 1);
	dk_instance_rows_free(rows, n);
	flt.state = "docs";
	OK(dk_store_instance_list(f->s, &flt, &rows, &n));
	assert_int_equal(n, 0);
	flt.state = "review";
	OK(dk_store_instance_list(f->s, &flt, &rows, &n));
	assert_int_equal(n, 0);
	/* the status changes: its indexes follow */
	free(r.status);
	r.status = strdup("completed");
	r.final = 1;
	OK(dk_store_begin(f->s));
	OK(dk_store_instance_update(f->s, &r, r.version));
	OK(dk_store_commit(f->s));
	flt.state = NULL;
	flt.status = "completed";
	OK(dk_store_instance_list(f->s, &flt, &rows, &n));
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].final, 1);
	dk_instance_rows_free(rows, n);
	flt.status = "active";
	OK(dk_store_instance_list(f->s, &flt, &rows, &n));
	assert_int_equal(n, 0);
	sqlite3_wal_autocheckpoint(f->s->db, 1000); /* SQLite's default */
	dk_instance_row_free(&r);
	free(a);
}

/* The "docket" VFS (store/sqlite_vfs.c) gathers a WAL commit's writes in
 * memory until its sync. A transaction too big for the page cache spills
 * pages into the WAL before it commits and reads them back: those reads
 * must see the gathered writes, and a commit of more than the gathering
 * holds (120 KiB) must reach the file whole. Another connection, on SQLite's
 * own VFS, then reads every row and finds the file sound. */
static void wal_writes_gathered_and_read_back(void **state)
{
	fixture *f = *state;
	char db[160], big[2000];
	dk_event_row ev = {0}, *rows = NULL;
	size_t n = 0;
	char *a;
	int i;

	snprintf(db, sizeof(db), "%s/docket.db", f->home);
	{
		sqlite3_vfs *vfs = NULL;
		assert_int_equal(
		    sqlite3_file_control(f->s->db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs),
		    SQLITE_OK);
		assert_string_equal(vfs->zName, "docket");
	}
	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "s", "li", 1);
	OK(dk_store_commit(f->s));
	assert_int_equal(sqlite3_exec(f->s->db, "PRAGMA cache_size = 16", NULL, NULL, NULL),
	                 SQLITE_OK);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	OK(dk_store_begin(f->s));
	ev.instance_id = a;
	ev.type = "bulk";
	ev.data = big;
	for (i = 0; i < 1500; i++) /* 3 MB: spilled, and past the gathering */
		OK(dk_store_event_append(f->s, &ev));
	OK(dk_store_event_list(f->s, a, &rows, &n)); /* reads spilled pages back */
	assert_int_equal(n, 1500);
	assert_string_equal(rows[1499].data, big);
	dk_event_rows_free(rows, n);
	OK(dk_store_commit(f->s));
	assert_int_equal(query_int(db, "SELECT count(*) FROM events WHERE length(data) = 1999"),
	                 1500);
	assert_int_equal(query_int(db, "SELECT max(seq) FROM events"), 1500);
	{
		sqlite3 *h = NULL;
		sqlite3_stmt *st = NULL;
		assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL),
		                 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
		sqlite3_finalize(st);
		sqlite3_close(h);
	}
	free(a);
}

/* A savepoint undoes one unit of a transaction and keeps its neighbours:
 * what a tick does when one timer of its batch fails. */
static void savepoint_undoes_one_unit(void **state)
{
	fixture *f = *state;
	dk_timer_row t = {0}, *rows = NULL;
	size_t n = 0;
	char *a;

	assert_int_equal(dk_store_savepoint(f->s), DK_EINTERNAL); /* needs a transaction */
	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "s", "li", 1);
	t.instance_id = a;
	t.kind = "remind";
	t.state_id = "s";
	t.due_at = 100;
	OK(dk_store_savepoint(f->s));
	OK(dk_store_timer_add(f->s, &t)); /* kept */
	OK(dk_store_savepoint_release(f->s));
	OK(dk_store_savepoint(f->s));
	t.due_at = 200;
	OK(dk_store_timer_add(f->s, &t)); /* undone */
	OK(dk_store_savepoint_rollback(f->s));
	OK(dk_store_savepoint(f->s));
	t.due_at = 300;
	OK(dk_store_timer_add(f->s, &t)); /* kept: the savepoint name is reused */
	OK(dk_store_savepoint_release(f->s));
	assert_true(dk_store_in_transaction(f->s));
	OK(dk_store_commit(f->s));
	OK(dk_store_timer_due(f->s, 1000, 0, &rows, &n));
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].due_at, 100);
	assert_int_equal(rows[1].due_at, 300);
	dk_timer_rows_free(rows, n);
	free(a);
}

/* ---- evidence and tokens ----------------------------------------------- */

static void evidence_records(void **state)
{
	fixture *f = *state;
	dk_evidence_row e = {0}, got, *rows;
	size_t n;
	char *a, *b;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "s", "li", 1);
	b = make_instance(f->s, "f", "s", "li", 1);
	e.instance_id = a;
	e.kind = "plan";
	e.name = "plan.pdf";
	e.state_id = "draft";
	e.visit = 1;
	e.size = 12345;
	e.sha256 = "ab";
	e.git_commit = "c1";
	e.git_blob = "b1";
	e.uploader = "li";
	e.uploaded_at = 77;
	e.due_at = 70;
	e.late = 1;
	e.days_late = 2;
	e.event_seq = 3;
	OK(dk_store_evidence_add(f->s, &e));
	assert_int_equal(dk_store_evidence_add(f->s, &e), DK_ECONFLICT);
	assert_non_null(strstr(dk_error_last(), "plan.pdf"));
	e.name = "report.docx";
	e.due_at = 0;
	e.late = 0;
	OK(dk_store_evidence_add(f->s, &e));
	e.instance_id = b;
	OK(dk_store_evidence_add(f->s, &e));
	OK(dk_store_commit(f->s));

	OK(dk_store_evidence_get(f->s, a, "plan.pdf", &got));
	assert_string_equal(got.kind, "plan");
	assert_string_equal(got.state_id, "draft");
	assert_int_equal(got.visit, 1);
	assert_int_equal(got.size, 12345);
	assert_string_equal(got.git_commit, "c1");
	assert_string_equal(got.git_blob, "b1");
	assert_string_equal(got.uploader, "li");
	assert_int_equal(got.uploaded_at, 77);
	assert_int_equal(got.due_at, 70);
	assert_int_equal(got.late, 1);
	assert_int_equal(got.days_late, 2);
	assert_int_equal(got.event_seq, 3);
	dk_evidence_row_free(&got);
	assert_int_equal(dk_store_evidence_get(f->s, a, "nope", &got), DK_ENOTFOUND);

	OK(dk_store_evidence_list(f->s, a, &rows, &n));
	assert_int_equal(n, 2);
	assert_string_equal(rows[1].name, "report.docx");
	assert_int_equal(rows[1].due_at, 0);
	dk_evidence_rows_free(rows, n);
	OK(dk_store_evidence_list_all(f->s, &rows, &n));
	assert_int_equal(n, 3);
	assert_string_equal(rows[2].instance_id, b);
	dk_evidence_rows_free(rows, n);
	free(a);
	free(b);
}

static void tokens(void **state)
{
	fixture *f = *state;
	dk_token_row t = {0}, got, *rows;
	size_t n;

	OK(dk_store_begin(f->s));
	t.user_id = "li";
	t.sha256 = "aaaa";
	t.name = "laptop";
	t.created_at = 10;
	t.expires_at = 99;
	OK(dk_store_token_add(f->s, &t));
	assert_int_equal(dk_store_token_add(f->s, &t), DK_ECONFLICT);
	t.user_id = "wei";
	t.sha256 = "bbbb";
	t.name = NULL;
	t.expires_at = 0;
	OK(dk_store_token_add(f->s, &t));
	OK(dk_store_commit(f->s));

	OK(dk_store_token_find_by_hash(f->s, "aaaa", &got));
	assert_string_equal(got.user_id, "li");
	assert_string_equal(got.name, "laptop");
	assert_int_equal(got.expires_at, 99);
	assert_int_equal(got.revoked, 0);
	OK(dk_store_begin(f->s));
	OK(dk_store_token_revoke(f->s, got.id));
	assert_int_equal(dk_store_token_revoke(f->s, 999), DK_ENOTFOUND);
	OK(dk_store_commit(f->s));
	dk_token_row_free(&got);
	OK(dk_store_token_find_by_hash(f->s, "aaaa", &got));
	assert_int_equal(got.revoked, 1);
	dk_token_row_free(&got);
	assert_int_equal(dk_store_token_find_by_hash(f->s, "cccc", &got), DK_ENOTFOUND);

	OK(dk_store_token_list(f->s, NULL, &rows, &n));
	assert_int_equal(n, 2);
	dk_token_rows_free(rows, n);
	OK(dk_store_token_list(f->s, "wei", &rows, &n));
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].sha256, "bbbb");
	assert_null(rows[0].name);
	dk_token_rows_free(rows, n);
}

/* ---- webhooks ---------------------------------------------------------- */

static int64_t add_hook(dk_store *s, const char *events, const char *flow, int enabled)
{
	dk_hook_row h = {0};
	h.url = "https://example.com/hook";
	h.events = (char *)events;
	h.flow = (char *)flow;
	h.secret = "whsec_c2VjcmV0";
	h.enabled = enabled;
	h.created_at = 5;
	OK(dk_store_hook_add(s, &h));
	return h.id;
}

static void hooks_crud(void **state)
{
	fixture *f = *state;
	dk_hook_row h, *rows;
	dk_delivery_row *d;
	size_t n;

	OK(dk_store_begin(f->s));
	assert_int_equal(add_hook(f->s, NULL, NULL, 1), 1);
	assert_int_equal(add_hook(f->s, "task.created", "f", 0), 2);
	OK(dk_store_commit(f->s));

	OK(dk_store_hook_get(f->s, 1, &h));
	assert_string_equal(h.events, "");
	assert_null(h.flow);
	assert_int_equal(h.enabled, 1);
	assert_null(h.old_secret);
	dk_hook_row_free(&h);
	assert_int_equal(dk_store_hook_get(f->s, 9, &h), DK_ENOTFOUND);

	OK(dk_store_begin(f->s));
	OK(dk_store_hook_set_enabled(f->s, 2, 1));
	OK(dk_store_hook_rotate(f->s, 2, "whsec_bmV3", 500));
	assert_int_equal(dk_store_hook_rotate(f->s, 9, "whsec_bmV3", 500), DK_ENOTFOUND);
	assert_int_equal(dk_store_hook_set_enabled(f->s, 9, 1), DK_ENOTFOUND);
	OK(dk_store_outbox_enqueue(f->s, "task.created", "f", "1", "{}", 10));
	OK(dk_store_commit(f->s));
	OK(dk_store_hook_get(f->s, 2, &h));
	assert_int_equal(h.enabled, 1);
	assert_string_equal(h.secret, "whsec_bmV3");
	assert_string_equal(h.old_secret, "whsec_c2VjcmV0");
	assert_int_equal(h.old_secret_until, 500);
	assert_string_equal(h.events, "task.created");
	assert_string_equal(h.flow, "f");
	dk_hook_row_free(&h);

	OK(dk_store_delivery_list(f->s, 0, &d, &n));
	assert_int_equal(n, 2);
	dk_delivery_rows_free(d, n);
	/* Removing a subscription removes its deliveries. */
	OK(dk_store_begin(f->s));
	OK(dk_store_hook_remove(f->s, 1));
	assert_int_equal(dk_store_hook_remove(f->s, 1), DK_ENOTFOUND);
	OK(dk_store_commit(f->s));
	OK(dk_store_hook_list(f->s, &rows, &n));
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, 2);
	dk_hook_rows_free(rows, n);
	OK(dk_store_delivery_list(f->s, 0, &d, &n));
	assert_int_equal(n, 1);
	assert_int_equal(d[0].hook_id, 2);
	dk_delivery_rows_free(d, n);
}

static void outbox_enqueue_matching(void **state)
{
	fixture *f = *state;
	dk_delivery_row *d;
	size_t n;

	OK(dk_store_begin(f->s));
	add_hook(f->s, "", NULL, 1);                                /* 1: everything */
	add_hook(f->s, "instance.completed task.created", NULL, 1); /* 2 */
	add_hook(f->s, "task.created", "other", 1);                 /* 3: other flow */
	add_hook(f->s, "task.created", "f", 0);                     /* 4: disabled */
	add_hook(f->s, "task", NULL, 1);                            /* 5: a prefix only */
	add_hook(f->s, "task.created", "f", 1);                     /* 6 */
	OK(dk_store_outbox_enqueue(f->s, "task.created", "f", "7", "{\"a\":1}", 100));
	OK(dk_store_outbox_enqueue(f->s, "instance.started", "f", "7", "{\"a\":2}", 101));
	OK(dk_store_commit(f->s));

	OK(dk_store_delivery_list(f->s, 0, &d, &n));
	assert_int_equal(n, 4);
	assert_int_equal(d[0].hook_id, 1);
	assert_int_equal(d[1].hook_id, 2);
	assert_int_equal(d[2].hook_id, 6);
	assert_string_equal(d[2].body, "{\"a\":1}");
	assert_string_equal(d[2].event_type, "task.created");
	assert_string_equal(d[2].instance_id, "7");
	assert_int_equal(d[2].status, DK_DELIVERY_PENDING);
	assert_int_equal(d[2].attempts, 0);
	assert_int_equal(d[2].next_attempt_at, 100);
	assert_int_equal(d[2].created_at, 100);
	assert_int_equal(d[3].hook_id, 1);
	assert_string_equal(d[3].event_type, "instance.started");
	dk_delivery_rows_free(d, n);

	OK(dk_store_begin(f->s));
	assert_int_equal(dk_store_outbox_enqueue(f->s, "", "f", NULL, "{}", 1), DK_EINVALID);
	OK(dk_store_rollback(f->s));
}

static void ids_of(dk_delivery_row *d, size_t n, char *out, size_t len)
{
	dk_buf b = DK_BUF_INIT;
	size_t i;
	for (i = 0; i < n; i++)
		dk_buf_printf(&b, "%s%lld", i ? " " : "", (long long)d[i].id);
	snprintf(out, len, "%s", dk_buf_cstr(&b));
	dk_buf_free(&b);
	dk_delivery_rows_free(d, n);
}

static void outbox_due_order_and_record(void **state)
{
	fixture *f = *state;
	dk_delivery_row *d, one;
	size_t n;
	int64_t next;
	char got[64];

	OK(dk_store_outbox_next_due(f->s, &next));
	assert_int_equal(next, 0);
	OK(dk_store_begin(f->s));
	add_hook(f->s, "", NULL, 1);
	OK(dk_store_outbox_enqueue(f->s, "e1", "f", "1", "{\"n\":1}", 100)); /* 1 */
	OK(dk_store_outbox_enqueue(f->s, "e2", "f", "1", "{\"n\":2}", 100)); /* 2 */
	OK(dk_store_outbox_enqueue(f->s, "e3", "f", "2", "{\"n\":3}", 100)); /* 3 */
	OK(dk_store_outbox_enqueue(f->s, "e4", "f", NULL, "{}", 100));       /* 4 */
	OK(dk_store_outbox_enqueue(f->s, "e5", "f", NULL, "{}", 100));       /* 5 */
	OK(dk_store_commit(f->s));

	OK(dk_store_outbox_due(f->s, 99, 0, &d, &n));
	assert_int_equal(n, 0);
	OK(dk_store_outbox_due(f->s, 100, 0, &d, &n));
	ids_of(d, n, got, sizeof(got));
	assert_string_equal(got, "1 3 4 5"); /* 2 waits behind 1 */
	OK(dk_store_outbox_due(f->s, 100, 2, &d, &n));
	ids_of(d, n, got, sizeof(got));
	assert_string_equal(got, "1 3");
	/* the next page after 3, and one row of it; 2 still waits behind 1
	 * even when the walk starts above 1 */
	OK(dk_store_outbox_due_after(f->s, 100, 3, 0, &d, &n));
	ids_of(d, n, got, sizeof(got));
	assert_string_equal(got, "4 5");
	OK(dk_store_outbox_due_after(f->s, 100, 1, 1, &d, &n));
	ids_of(d, n, got, sizeof(got));
	assert_string_equal(got, "3");
	OK(dk_store_outbox_due_after(f->s, 100, 5, 0, &d, &n));
	assert_int_equal(n, 0);

	/* 1 fails and is retried later: 2 still waits behind it. */
	OK(dk_store_begin(f->s));
	OK(dk_store_delivery_record(f->s, 1, DK_DELIVERY_PENDING, 503, "service unavailable", 160,
	                            110));
	OK(dk_store_delivery_record(f->s, 3, DK_DELIVERY_DELIVERED, 200, NULL, 0, 111));
	assert_int_equal(dk_store_delivery_record(f->s, 99, DK_DELIVERY_DEAD, 0, "x", 0, 1),
	                 DK_ENOTFOUND);
	OK(dk_store_commit(f->s));
	OK(dk_store_outbox_due(f->s, 150, 0, &d, &n));
	ids_of(d, n, got, sizeof(got));
	assert_string_equal(got, "4 5");
	OK(dk_store_outbox_next_due(f->s, &next));
	assert_int_equal(next, 100);
	OK(dk_store_delivery_get(f->s, 1, &one));
	assert_int_equal(one.attempts, 1);
	assert_int_equal(one.last_status_code, 503);
	assert_string_equal(one.last_error, "service unavailable");
	assert_int_equal(one.next_attempt_at, 160);
	assert_int_equal(one.status, DK_DELIVERY_PENDING);
	dk_delivery_row_free(&one);
	OK(dk_store_delivery_get(f->s, 3, &one));
	assert_int_equal(one.status, DK_DELIVERY_DELIVERED);
	assert_int_equal(one.delivered_at, 111);
	assert_null(one.last_error);
	dk_delivery_row_free(&one);
	assert_int_equal(dk_store_delivery_get(f->s, 42, &one), DK_ENOTFOUND);

	/* 1 dies: a dead row no longer holds 2 back. */
	OK(dk_store_begin(f->s));
	OK(dk_store_delivery_record(f->s, 1, DK_DELIVERY_DEAD, 0, "connection refused", 0, 170));
	OK(dk_store_delivery_record(f->s, 4, DK_DELIVERY_DELIVERED, 204, NULL, 0, 170));
	OK(dk_store_delivery_record(f->s, 5, DK_DELIVERY_DELIVERED, 204, NULL, 0, 170));
	OK(dk_store_commit(f->s));
	OK(dk_store_outbox_due(f->s, 170, 0, &d, &n));
	ids_of(d, n, got, sizeof(got));
	assert_string_equal(got, "2");
	OK(dk_store_delivery_list(f->s, 1, &d, &n));
	ids_of(d, n, got, sizeof(got));
	assert_string_equal(got, "1");

	/* Requeue the dead one: same id and body, fresh attempts, due now. */
	OK(dk_store_begin(f->s));
	OK(dk_store_delivery_requeue(f->s, 1, 200));
	assert_int_equal(dk_store_delivery_requeue(f->s, 2, 200), DK_ECONFLICT);
	assert_int_equal(dk_store_delivery_requeue(f->s, 77, 200), DK_ENOTFOUND);
	OK(dk_store_commit(f->s));
	OK(dk_store_delivery_get(f->s, 1, &one));
	assert_int_equal(one.status, DK_DELIVERY_PENDING);
	assert_int_equal(one.attempts, 0);
	assert_int_equal(one.next_attempt_at, 200);
	assert_string_equal(one.body, "{\"n\":1}");
	dk_delivery_row_free(&one);
	/* Pending again and older than 2, it goes first once more. */
	OK(dk_store_outbox_due(f->s, 200, 0, &d, &n));
	ids_of(d, n, got, sizeof(got));
	assert_string_equal(got, "1");

	/* A disabled subscription's backlog waits untouched, out of the way
	 * of every fetch, and comes back when it is enabled again. */
	OK(dk_store_begin(f->s));
	OK(dk_store_hook_set_enabled(f->s, 1, 0));
	OK(dk_store_commit(f->s));
	OK(dk_store_outbox_due(f->s, 200, 0, &d, &n));
	assert_int_equal(n, 0);
	OK(dk_store_begin(f->s));
	OK(dk_store_hook_set_enabled(f->s, 1, 1));
	OK(dk_store_commit(f->s));
	OK(dk_store_outbox_due(f->s, 200, 0, &d, &n));
	ids_of(d, n, got, sizeof(got));
	assert_string_equal(got, "1");
}

/* ---- robustness -------------------------------------------------------- */

static const char *const nasty[] = {
    "'; DROP TABLE instances; --",
    "quote ' double \" backslash \\ percent % underscore _",
    "审批流程：销售公司月度计划（第一版）",
    "mixed é ü ß → ✓ \x01\x7f tab\tnewline\n end",
};

static void metacharacters_round_trip(void **state)
{
	fixture *f = *state;
	size_t k;

	for (k = 0; k < sizeof(nasty) / sizeof(nasty[0]); k++) {
		char *v = (char *)nasty[k];
		dk_flow_row fr;
		dk_instance_row ir = {0}, ig;
		dk_event_row ev = {0}, *evs;
		dk_task_row t = {0}, *ts;
		dk_delegation_row d = {0}, *ds;
		dk_timer_row tm = {0}, *tms;
		dk_evidence_row e = {0}, eg;
		dk_hook_row h = {0}, hg;
		dk_token_row tk = {0}, tg;
		dk_instance_filter flt = DK_INSTANCE_FILTER_INIT;
		dk_instance_row *il;
		size_t n;
		int64_t big = 1000000 + (int64_t)k;

		OK(dk_store_begin(f->s));
		OK(dk_store_flow_put(f->s, v, 1, v, v, strlen(v), 1, NULL));
		ir.flow_id = v;
		ir.flow_version = 1;
		ir.state = v;
		ir.snapshot = v;
		ir.initiator = v;
		ir.title = v;
		OK(dk_store_instance_create(f->s, &ir));
		ev.instance_id = ir.id;
		ev.type = ev.actor = ev.on_behalf_of = ev.from_state = ev.to_state = v;
		ev.transition = ev.comment = ev.data = v;
		OK(dk_store_event_append(f->s, &ev));
		t.state_id = t.user_id = t.role = v;
		OK(dk_store_task_replace_for_instance(f->s, ir.id, &t, 1));
		d.from_user = d.to_user = d.role = d.created_by = v;
		d.created_at = 1;
		d.until = big;
		OK(dk_store_delegation_add(f->s, &d));
		tm.instance_id = ir.id;
		tm.kind = tm.state_id = tm.payload = v;
		tm.due_at = big;
		OK(dk_store_timer_add(f->s, &tm));
		e.instance_id = ir.id;
		e.kind = e.name = e.state_id = e.sha256 = e.git_commit = e.git_blob = v;
		e.uploader = v;
		OK(dk_store_evidence_add(f->s, &e));
		h.url = h.events = h.flow = h.secret = h.old_secret = v;
		h.enabled = 1;
		OK(dk_store_hook_add(f->s, &h));
		tk.user_id = tk.sha256 = tk.name = v;
		OK(dk_store_token_add(f->s, &tk));
		OK(dk_store_commit(f->s));

		OK(dk_store_flow_get(f->s, v, 0, &fr));
		assert_string_equal(fr.flow_id, v);
		assert_string_equal(fr.title, v);
		assert_string_equal(fr.bytes, v);
		dk_flow_row_free(&fr);

		OK(dk_store_instance_get(f->s, ir.id, &ig));
		assert_string_equal(ig.flow_id, v);
		assert_string_equal(ig.state, v);
		assert_string_equal(ig.snapshot, v);
		assert_string_equal(ig.initiator, v);
		assert_string_equal(ig.title, v);
		dk_instance_row_free(&ig);
		flt.flow = v;
		flt.initiator = v;
		OK(dk_store_instance_list(f->s, &flt, &il, &n));
		assert_int_equal(n, 1);
		dk_instance_rows_free(il, n);

		OK(dk_store_event_list(f->s, ir.id, &evs, &n));
		assert_int_equal(n, 1);
		assert_string_equal(evs[0].type, v);
		assert_string_equal(evs[0].actor, v);
		assert_string_equal(evs[0].on_behalf_of, v);
		assert_string_equal(evs[0].from_state, v);
		assert_string_equal(evs[0].to_state, v);
		assert_string_equal(evs[0].transition, v);
		assert_string_equal(evs[0].comment, v);
		assert_string_equal(evs[0].data, v);
		dk_event_rows_free(evs, n);

		OK(dk_store_task_list_for_user(f->s, v, 0, 0, 0, &ts, &n));
		assert_int_equal(n, 1);
		assert_string_equal(ts[0].state_id, v);
		assert_string_equal(ts[0].user_id, v);
		assert_string_equal(ts[0].role, v);
		assert_string_equal(ts[0].flow_id, v);
		assert_string_equal(ts[0].title, v);
		dk_task_rows_free(ts, n);

		OK(dk_store_delegation_active(f->s, 5, v, &ds, &n));
		assert_int_equal(n, 1);
		assert_string_equal(ds[0].from_user, v);
		assert_string_equal(ds[0].role, v);
		assert_string_equal(ds[0].created_by, v);
		dk_delegation_rows_free(ds, n);

		/* Earlier rounds' timers are due before this one. */
		OK(dk_store_timer_due(f->s, big, 0, &tms, &n));
		assert_int_equal(n, k + 1);
		assert_string_equal(tms[k].kind, v);
		assert_string_equal(tms[k].state_id, v);
		assert_string_equal(tms[k].payload, v);
		assert_string_equal(tms[k].instance_id, ir.id);
		dk_timer_rows_free(tms, n);

		OK(dk_store_evidence_get(f->s, ir.id, v, &eg));
		assert_string_equal(eg.kind, v);
		assert_string_equal(eg.state_id, v);
		assert_string_equal(eg.sha256, v);
		assert_string_equal(eg.git_commit, v);
		assert_string_equal(eg.git_blob, v);
		assert_string_equal(eg.uploader, v);
		dk_evidence_row_free(&eg);

		OK(dk_store_hook_get(f->s, h.id, &hg));
		assert_string_equal(hg.url, v);
		assert_string_equal(hg.events, v);
		assert_string_equal(hg.flow, v);
		assert_string_equal(hg.secret, v);
		assert_string_equal(hg.old_secret, v);
		dk_hook_row_free(&hg);

		OK(dk_store_token_find_by_hash(f->s, v, &tg));
		assert_string_equal(tg.user_id, v);
		assert_string_equal(tg.name, v);
		dk_token_row_free(&tg);

		/* The tables are all still there. */
		OK(dk_store_delegation_list(f->s, &ds, &n));
		assert_int_equal(n, k + 1);
		dk_delegation_rows_free(ds, n);
		free(ir.id);
	}
}

static void metacharacters_in_outbox_and_org(void **state)
{
	fixture *f = *state;
	size_t k;

	for (k = 0; k < sizeof(nasty) / sizeof(nasty[0]); k++) {
		char *v = (char *)nasty[k];
		char *roles[] = {v};
		dk_user u = {v, v, v, v, roles, 1, 1};
		dk_dept dp = {v, v, v, v, 1};
		char *hol[] = {v};
		dk_org org = {0};
		dk_delivery_row *dl;
		char *bytes;
		size_t len, n;

		org.timezone = v;
		org.users = &u;
		org.nusers = 1;
		org.depts = &dp;
		org.ndepts = 1;
		org.holidays = hol;
		org.nholidays = 1;
		OK(dk_store_begin(f->s));
		OK(dk_store_org_replace(f->s, &org, v, strlen(v), 1));
		add_hook(f->s, NULL, v, 1);
		OK(dk_store_outbox_enqueue(f->s, v, v, v, v, 50 + (int64_t)k));
		OK(dk_store_commit(f->s));
		assert_int_equal(dk_store_user_exists(f->s, v), 1);
		OK(dk_store_org_bytes(f->s, &bytes, &len));
		assert_string_equal(bytes, v);
		free(bytes);
		OK(dk_store_outbox_due(f->s, 50 + (int64_t)k, 0, &dl, &n));
		assert_int_equal(n, 1);
		assert_string_equal(dl[0].event_type, v);
		assert_string_equal(dl[0].instance_id, v);
		assert_string_equal(dl[0].body, v);
		OK(dk_store_begin(f->s));
		OK(dk_store_delivery_record(f->s, dl[0].id, DK_DELIVERY_DELIVERED, 200, v, 0, 60));
		OK(dk_store_commit(f->s));
		dk_delivery_rows_free(dl, n);
	}
}

static void rollback_leaves_nothing(void **state)
{
	fixture *f = *state;
	dk_flow_row fr, *fl;
	dk_instance_row ir, *il;
	dk_instance_filter flt = DK_INSTANCE_FILTER_INIT;
	dk_event_row ev = {0}, *evs;
	dk_task_row t = {0}, *ts;
	dk_timer_row tm = {0}, *tms;
	dk_hook_row *hl;
	dk_delivery_row *dl;
	char *id, *bytes;
	size_t n, len;
	int64_t next;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	id = make_instance(f->s, "f", "draft", "li", 1);
	ev.instance_id = id;
	ev.type = "started";
	OK(dk_store_event_append(f->s, &ev));
	t.state_id = "draft";
	t.user_id = "li";
	t.due_at = 5;
	OK(dk_store_task_replace_for_instance(f->s, id, &t, 1));
	tm.instance_id = id;
	tm.kind = "deadline";
	tm.due_at = 5;
	OK(dk_store_timer_add(f->s, &tm));
	add_hook(f->s, NULL, NULL, 1);
	OK(dk_store_outbox_enqueue(f->s, "instance.started", "f", id, "{}", 1));
	{
		dk_org org = {0};
		OK(dk_store_org_replace(f->s, &org, "<org/>", 6, 1));
	}
	OK(dk_store_rollback(f->s));

	assert_int_equal(dk_store_flow_get(f->s, "f", 0, &fr), DK_ENOTFOUND);
	OK(dk_store_flow_list(f->s, 1, &fl, &n));
	assert_int_equal(n, 0);
	assert_int_equal(dk_store_instance_get(f->s, id, &ir), DK_ENOTFOUND);
	OK(dk_store_instance_list(f->s, &flt, &il, &n));
	assert_int_equal(n, 0);
	OK(dk_store_event_list(f->s, id, &evs, &n));
	assert_int_equal(n, 0);
	OK(dk_store_task_list_for_user(f->s, "li", 0, 0, 0, &ts, &n));
	assert_int_equal(n, 0);
	OK(dk_store_timer_due(f->s, 100, 0, &tms, &n));
	assert_int_equal(n, 0);
	OK(dk_store_timer_next_due(f->s, &next));
	assert_int_equal(next, 0);
	OK(dk_store_hook_list(f->s, &hl, &n));
	assert_int_equal(n, 0);
	OK(dk_store_delivery_list(f->s, 0, &dl, &n));
	assert_int_equal(n, 0);
	assert_int_equal(dk_store_org_bytes(f->s, &bytes, &len), DK_ENOTFOUND);
	free(id);

	/* The committed version of the same work is visible. */
	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	id = make_instance(f->s, "f", "draft", "li", 1);
	OK(dk_store_commit(f->s));
	OK(dk_store_instance_list(f->s, &flt, &il, &n));
	assert_int_equal(n, 1);
	dk_instance_rows_free(il, n);
	free(id);
}

/* ---- savepoints: one transaction, many commands ------------------------ */

static int instance_exists(dk_store *s, const char *id)
{
	dk_instance_row r;
	int rc = dk_store_instance_get(s, id, &r);
	if (rc == 0)
		dk_instance_row_free(&r);
	return rc == 0;
}

/* Three commands in one transaction, the middle one refused: the other two
 * are there after the one commit, seen from another connection, and the
 * refused one left nothing (no instance, no event). */
static void savepoint_batch_keeps_all_but_refused(void **state)
{
	fixture *f = *state;
	dk_store *other = NULL;
	dk_event_row ev = {0}, *evs = NULL;
	char *a, *b, *c;
	size_t n;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	OK(dk_store_commit(f->s));

	OK(dk_store_begin(f->s));
	OK(dk_store_savepoint(f->s));
	a = make_instance(f->s, "f", "draft", "li", 1);
	OK(dk_store_savepoint_release(f->s));
	OK(dk_store_savepoint(f->s));
	b = make_instance(f->s, "f", "draft", "wei", 2);
	ev.instance_id = b;
	ev.type = "started";
	OK(dk_store_event_append(f->s, &ev));
	OK(dk_store_savepoint_rollback(f->s));
	assert_true(dk_store_in_transaction(f->s));
	OK(dk_store_savepoint(f->s));
	c = make_instance(f->s, "f", "draft", "zhao", 3);
	OK(dk_store_savepoint_release(f->s));
	/* Nothing is visible elsewhere before the commit. */
	OK(dk_store_open(&other, f->home));
	assert_false(instance_exists(other, a));
	OK(dk_store_commit(f->s));

	assert_true(instance_exists(other, a));
	assert_true(instance_exists(other, c));
	/* b's id may be handed out again (its row never was), so ask by
	 * who started it rather than by id. */
	{
		dk_instance_filter flt = DK_INSTANCE_FILTER_INIT;
		dk_instance_row *rows = NULL;
		flt.initiator = "wei";
		OK(dk_store_instance_list(other, &flt, &rows, &n));
		assert_int_equal(n, 0);
		flt.initiator = "zhao";
		OK(dk_store_instance_list(other, &flt, &rows, &n));
		assert_int_equal(n, 1);
		dk_instance_rows_free(rows, n);
	}
	OK(dk_store_event_list(other, b, &evs, &n));
	assert_int_equal(n, 0);
	dk_store_close(other);
	free(a);
	free(b);
	free(c);
}

/* Levels nest: undoing an inner one keeps the outer one's writes, undoing
 * the outer one takes its released inner levels with it. */
static void savepoints_nest(void **state)
{
	fixture *f = *state;
	char *a, *b, *c, *d;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	OK(dk_store_savepoint(f->s));
	a = make_instance(f->s, "f", "draft", "li", 1);
	OK(dk_store_savepoint(f->s));
	b = make_instance(f->s, "f", "draft", "li", 2);
	OK(dk_store_savepoint_rollback(f->s));
	assert_true(instance_exists(f->s, a));
	assert_false(instance_exists(f->s, b));
	OK(dk_store_savepoint_release(f->s));

	OK(dk_store_savepoint(f->s));
	c = make_instance(f->s, "f", "draft", "li", 3);
	OK(dk_store_savepoint(f->s));
	d = make_instance(f->s, "f", "draft", "li", 4);
	OK(dk_store_savepoint_release(f->s));
	assert_true(instance_exists(f->s, d));
	OK(dk_store_savepoint_rollback(f->s));
	assert_false(instance_exists(f->s, c));
	assert_false(instance_exists(f->s, d));
	assert_true(instance_exists(f->s, a));
	OK(dk_store_commit(f->s));
	assert_true(instance_exists(f->s, a));
	free(a);
	free(b);
	free(c);
	free(d);
}

/* A read transaction: every read in it sees one state of the database,
 * whatever other connections commit meanwhile; it begins only outside a
 * transaction, and _end ends only what _begin began. */
static void read_sees_one_state(void **state)
{
	fixture *f = *state;
	dk_store *s2;
	char *a, *b;
	int began = -1, inner = -1;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "draft", "li", 1);
	OK(dk_store_commit(f->s));

	OK(dk_store_read_begin(f->s, &began));
	assert_int_equal(began, 1);
	/* a read is not a write transaction (nothing may be written for it) */
	assert_int_equal(dk_store_in_transaction(f->s), 0);
	assert_true(instance_exists(f->s, a));
	OK(dk_store_open(&s2, f->home));
	OK(dk_store_begin(s2));
	b = make_instance(s2, "f", "draft", "li", 2);
	OK(dk_store_commit(s2));
	dk_store_close(s2);
	/* the other connection's commit is not in this read's state */
	assert_false(instance_exists(f->s, b));
	OK(dk_store_read_begin(f->s, &inner));
	assert_int_equal(inner, 0);
	dk_store_read_end(f->s, inner);
	assert_false(instance_exists(f->s, b));
	dk_store_read_end(f->s, began);
	assert_true(instance_exists(f->s, b));

	/* inside a write transaction it neither begins nor ends anything */
	OK(dk_store_begin(f->s));
	OK(dk_store_read_begin(f->s, &began));
	assert_int_equal(began, 0);
	dk_store_read_end(f->s, began);
	assert_int_equal(dk_store_in_transaction(f->s), 1);
	OK(dk_store_commit(f->s));
	free(a);
	free(b);
}

/* A command whose write fails (a stale compare-and-set, a uniqueness
 * violation) is undone to its savepoint, and the transaction goes on. */
static void savepoint_after_failed_write(void **state)
{
	fixture *f = *state;
	dk_instance_row r = {0};
	char *a;

	OK(dk_store_begin(f->s));
	deploy_flows(f->s);
	a = make_instance(f->s, "f", "draft", "li", 1);
	OK(dk_store_commit(f->s));

	OK(dk_store_begin(f->s));
	OK(dk_store_savepoint(f->s));
	OK(dk_store_instance_get(f->s, a, &r));
	free(r.state);
	r.state = dk_strdup("review");
	OK(dk_store_instance_update(f->s, &r, 1));
	OK(dk_store_savepoint_release(f->s));
	OK(dk_store_savepoint(f->s));
	free(r.state);
	r.state = dk_strdup("done");
	assert_int_equal(dk_store_instance_update(f->s, &r, 1), DK_ECONFLICT);
	assert_int_equal(dk_store_flow_put(f->s, "f", 1, "F", "<other/>", 8, 100, NULL),
	                 DK_ECONFLICT);
	OK(dk_store_savepoint_rollback(f->s));
	OK(dk_store_commit(f->s));
	dk_instance_row_free(&r);
	OK(dk_store_instance_get(f->s, a, &r));
	assert_string_equal(r.state, "review");
	assert_int_equal(r.version, 2);
	dk_instance_row_free(&r);
	free(a);
}

/* Misuse is an internal error with a message, never a crash; rolling the
 * transaction back drops the levels that were released into it. */
static void savepoint_misuse_and_rollback(void **state)
{
	fixture *f = *state;
	char *a;

	assert_int_equal(dk_store_savepoint(f->s), DK_EINTERNAL);
	assert_int_equal(dk_store_savepoint_release(f->s), DK_EINTERNAL);
	assert_int_equal(dk_store_savepoint_rollback(f->s), DK_EINTERNAL);
	OK(dk_store_begin(f->s));
	assert_int_equal(dk_store_savepoint_release(f->s), DK_EINTERNAL);
	assert_int_equal(dk_store_savepoint_rollback(f->s), DK_EINTERNAL);
	deploy_flows(f->s);
	OK(dk_store_savepoint(f->s));
	a = make_instance(f->s, "f", "draft", "li", 1);
	OK(dk_store_savepoint_release(f->s));
	OK(dk_store_savepoint(f->s));
	OK(dk_store_rollback(f->s));
	assert_false(instance_exists(f->s, a));
	/* A new transaction starts with no level open. */
	OK(dk_store_begin(f->s));
	assert_int_equal(dk_store_savepoint_release(f->s), DK_EINTERNAL);
	OK(dk_store_rollback(f->s));
	free(a);
}

/* ---- query plans ------------------------------------------------------- */

/* Fails when the plan of sql scans a whole table or index: every step must
 * be a SEARCH through an index (or work on a temporary b-tree). walk, when
 * not NULL, is the one scan allowed, in the order asked for (no sort): the
 * plan of `list --overdue` walks the open tasks newest instance first and
 * stops at the page size (LIMIT). */
static void assert_no_scan_but(dk_store *s, const char *sql, const char *walk)
{
	dk_buf q = DK_BUF_INIT, plan = DK_BUF_INIT;
	sqlite3_stmt *st;
	int bad = 0;

	dk_buf_printf(&q, "EXPLAIN QUERY PLAN %s", sql);
	if (sqlite3_prepare_v2(s->db, dk_buf_cstr(&q), -1, &st, NULL) != SQLITE_OK)
		fail_msg("cannot explain %s: %s", sql, sqlite3_errmsg(s->db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 3);
		dk_buf_printf(&plan, "  %s\n", detail);
		/* Reading a subquery's own result is not a table scan. */
		if (strncmp(detail, "SCAN ", 5) == 0 &&
		    strncmp(detail, "SCAN (subquery", 14) != 0 &&
		    !(walk && strcmp(detail, walk) == 0))
			bad = 1;
		if (walk && strstr(detail, "TEMP B-TREE"))
			bad = 1;
	}
	sqlite3_finalize(st);
	if (bad)
		fail_msg("full scan in the plan of\n%s\n%s", sql, dk_buf_cstr(&plan));
	dk_buf_free(&q);
	dk_buf_free(&plan);
}

static void assert_no_scan(dk_store *s, const char *sql)
{
	assert_no_scan_but(s, sql, NULL);
}

static void hot_queries_use_indexes(void **state)
{
	fixture *f = *state;
	dk_instance_filter flt = DK_INSTANCE_FILTER_INIT;
	const dk_instance_filter *cases[6];
	dk_instance_filter c[6];
	dk_buf sql = DK_BUF_INIT;
	size_t i;

	for (i = 0; i < 6; i++)
		c[i] = flt;
	c[0].state = "review";
	c[1].overdue_at = 100;
	c[2].flow = "f";
	c[3].initiator = "li";
	c[4].status = "active";
	c[5].state = "review";
	c[5].flow = "f";
	c[5].overdue_at = 100;
	for (i = 0; i < 6; i++) {
		cases[i] = &c[i];
		dk_buf_clear(&sql);
		dk_sqlite_instance_list_sql(&sql, cases[i]);
		assert_no_scan_but(f->s, dk_buf_cstr(&sql), i == 1 ? "SCAN t" : NULL);
	}
	dk_buf_free(&sql);
	assert_no_scan(f->s, dk_sqlite_sql_task_list_for_user);
	assert_no_scan(f->s, dk_sqlite_sql_timer_due);
	assert_no_scan(f->s, dk_sqlite_sql_task_open);
	assert_no_scan(f->s, dk_sqlite_sql_timer_of);
	assert_no_scan(f->s, dk_sqlite_sql_states_remove);
	assert_no_scan(f->s, dk_sqlite_sql_outbox_due);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(open_fresh_and_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(migrates_from_older_version, setup, teardown),
	    cmocka_unit_test_setup_teardown(migrates_from_schema_6_with_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(migrates_tasks_and_timers_into_instance_ranges, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(refuses_newer_schema, setup, teardown),
	    cmocka_unit_test_setup_teardown(writes_need_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(busy_is_conflict, setup, teardown),
	    cmocka_unit_test_setup_teardown(two_processes, setup, teardown),
	    cmocka_unit_test_setup_teardown(flow_put_idempotent_and_conflict, setup, teardown),
	    cmocka_unit_test_setup_teardown(org_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(compiled_forms, setup, teardown),
	    cmocka_unit_test_setup_teardown(instance_cas, setup, teardown),
	    cmocka_unit_test_setup_teardown(instance_list_filters, setup, teardown),
	    cmocka_unit_test_setup_teardown(event_seq_without_gaps, setup, teardown),
	    cmocka_unit_test_setup_teardown(tasks_replace_and_user_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(delegations_active_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(timers_due_and_delete_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(timers_replace_keeps_unchanged, setup, teardown),
	    cmocka_unit_test_setup_teardown(instance_update_writes_what_changed, setup, teardown),
	    cmocka_unit_test_setup_teardown(wal_writes_gathered_and_read_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(savepoint_undoes_one_unit, setup, teardown),
	    cmocka_unit_test_setup_teardown(evidence_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(hooks_crud, setup, teardown),
	    cmocka_unit_test_setup_teardown(outbox_enqueue_matching, setup, teardown),
	    cmocka_unit_test_setup_teardown(outbox_due_order_and_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(metacharacters_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(metacharacters_in_outbox_and_org, setup, teardown),
	    cmocka_unit_test_setup_teardown(rollback_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(savepoint_batch_keeps_all_but_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(savepoints_nest, setup, teardown),
	    cmocka_unit_test_setup_teardown(read_sees_one_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(savepoint_after_failed_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(savepoint_misuse_and_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(hot_queries_use_indexes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
