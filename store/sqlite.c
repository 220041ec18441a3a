/*
 * sqlite.c - the SQLite store: opening HOME/docket.db, schema migrations,
 * explicit transactions, error conversion and the statement cache.
 *
 * Durability comes from three settings made on every connection: WAL
 * journal (readers never block the writer), synchronous=FULL (a commit that
 * returned is on disk, even after power loss) and foreign_keys=ON. Every
 * write transaction starts with BEGIN IMMEDIATE so the write lock is taken
 * up front: a transaction that started never fails later with SQLITE_BUSY
 * half-way through a command.
 *
 * The schema is a list of migrations below; migration i brings the database
 * from user_version i to i+1 and runs in its own transaction. Append new
 * migrations, never edit a released one.
 */
#include "store/sqlite_int.h"
#include "util/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DK_BUSY_TIMEOUT_MS 10000
/* A WAL past this many bytes is emptied by the connection closing it. */
#define DK_WAL_KEEP_BYTES ((off_t)1024 * 1024)

/* ---- schema ------------------------------------------------------------ */

static const char *const migrations[] = {
    /* 1: flows, the org directory, instances and what runs them. */
    "CREATE TABLE flows (\n"
    "  flow_id TEXT NOT NULL,\n"
    "  version INTEGER NOT NULL,\n"
    "  sha256 TEXT NOT NULL,\n"
    "  bytes BLOB NOT NULL,\n"
    "  title TEXT,\n"
    "  deployed_at INTEGER NOT NULL,\n"
    "  PRIMARY KEY (flow_id, version)\n"
    ");\n"
    "CREATE TABLE org_file (\n"
    "  id INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "  bytes BLOB NOT NULL,\n"
    "  sha256 TEXT NOT NULL,\n"
    "  timezone TEXT NOT NULL,\n"
    "  loaded_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE users (\n"
    "  id TEXT PRIMARY KEY,\n"
    "  name TEXT NOT NULL,\n"
    "  email TEXT,\n"
    "  dept TEXT,\n"
    "  roles TEXT NOT NULL DEFAULT ''\n"
    ");\n"
    "CREATE TABLE depts (\n"
    "  id TEXT PRIMARY KEY,\n"
    "  name TEXT NOT NULL,\n"
    "  head TEXT,\n"
    "  division_leader TEXT\n"
    ");\n"
    "CREATE TABLE holidays (date TEXT PRIMARY KEY);\n"
    /* AUTOINCREMENT: an instance id is never reused, even after the
     * newest row is gone, so a webhook or a log line naming it stays
     * unambiguous. */
    "CREATE TABLE instances (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  flow_id TEXT NOT NULL,\n"
    "  flow_version INTEGER NOT NULL,\n"
    "  state TEXT NOT NULL,\n"
    "  snapshot TEXT NOT NULL,\n"
    "  version INTEGER NOT NULL,\n"
    "  initiator TEXT NOT NULL,\n"
    "  title TEXT,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  updated_at INTEGER NOT NULL,\n"
    "  final INTEGER NOT NULL DEFAULT 0,\n"
    "  status TEXT NOT NULL,\n"
    "  FOREIGN KEY (flow_id, flow_version) REFERENCES flows (flow_id, version)\n"
    ");\n"
    "CREATE INDEX instances_flow ON instances (flow_id, id);\n"
    "CREATE INDEX instances_initiator ON instances (initiator, status, id);\n"
    "CREATE INDEX instances_status ON instances (status, id);\n"
    /* One row per current state id of an instance (a parallel has
     * several), so `list --state` is an index range, newest first. */
    "CREATE TABLE instance_states (\n"
    "  state TEXT NOT NULL,\n"
    "  instance_id INTEGER NOT NULL REFERENCES instances (id),\n"
    "  PRIMARY KEY (state, instance_id)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX instance_states_instance ON instance_states (instance_id);\n"
    "CREATE TABLE events (\n"
    "  instance_id INTEGER NOT NULL REFERENCES instances (id),\n"
    "  seq INTEGER NOT NULL,\n"
    "  type TEXT NOT NULL,\n"
    "  actor TEXT,\n"
    "  on_behalf_of TEXT,\n"
    "  at INTEGER NOT NULL,\n"
    "  from_state TEXT,\n"
    "  to_state TEXT,\n"
    "  transition TEXT,\n"
    "  comment TEXT,\n"
    "  data TEXT,\n"
    "  UNIQUE (instance_id, seq)\n"
    ");\n"
    "CREATE TABLE tasks (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  instance_id INTEGER NOT NULL REFERENCES instances (id),\n"
    "  state_id TEXT NOT NULL,\n"
    "  user_id TEXT NOT NULL,\n"
    "  role TEXT,\n"
    "  due_at INTEGER,\n"
    "  created_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX tasks_instance ON tasks (instance_id);\n"
    "CREATE INDEX tasks_user ON tasks (user_id, due_at);\n"
    "CREATE INDEX tasks_due ON tasks (due_at);\n",

    /* 2: delegations, timers, evidence, webhooks and API tokens. */
    "CREATE TABLE delegations (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  from_user TEXT NOT NULL,\n"
    "  to_user TEXT NOT NULL,\n"
    "  role TEXT,\n"
    "  until INTEGER NOT NULL,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  created_by TEXT\n"
    ");\n"
    "CREATE INDEX delegations_to ON delegations (to_user, until);\n"
    "CREATE TABLE timers (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  instance_id INTEGER NOT NULL REFERENCES instances (id),\n"
    "  kind TEXT NOT NULL,\n"
    "  state_id TEXT,\n"
    "  due_at INTEGER NOT NULL,\n"
    "  payload TEXT\n"
    ");\n"
    "CREATE INDEX timers_due ON timers (due_at, id);\n"
    "CREATE INDEX timers_instance ON timers (instance_id);\n"
    "CREATE TABLE evidence (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  instance_id INTEGER NOT NULL REFERENCES instances (id),\n"
    "  kind TEXT NOT NULL,\n"
    "  name TEXT NOT NULL,\n"
    "  state_id TEXT,\n"
    "  visit INTEGER NOT NULL DEFAULT 0,\n"
    "  size INTEGER NOT NULL,\n"
    "  sha256 TEXT NOT NULL,\n"
    "  git_commit TEXT,\n"
    "  git_blob TEXT,\n"
    "  uploader TEXT,\n"
    "  uploaded_at INTEGER NOT NULL,\n"
    "  due_at INTEGER,\n"
    "  late INTEGER NOT NULL DEFAULT 0,\n"
    "  days_late INTEGER NOT NULL DEFAULT 0,\n"
    "  event_seq INTEGER,\n"
    "  UNIQUE (instance_id, name)\n"
    ");\n"
    "CREATE TABLE hooks (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  url TEXT NOT NULL,\n"
    "  events TEXT NOT NULL DEFAULT '',\n"
    "  flow TEXT,\n"
    "  secret TEXT NOT NULL,\n"
    "  old_secret TEXT,\n"
    "  old_secret_until INTEGER NOT NULL DEFAULT 0,\n"
    "  enabled INTEGER NOT NULL DEFAULT 1,\n"
    "  created_at INTEGER NOT NULL\n"
    ");\n"
    /* The delivery id is the webhook-id receivers deduplicate on:
     * AUTOINCREMENT so it is never reused. */
    "CREATE TABLE deliveries (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  hook_id INTEGER NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,\n"
    "  event_type TEXT NOT NULL,\n"
    "  instance_id TEXT,\n"
    "  body TEXT NOT NULL,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  attempts INTEGER NOT NULL DEFAULT 0,\n"
    "  next_attempt_at INTEGER NOT NULL,\n"
    "  status TEXT NOT NULL,\n"
    "  last_status_code INTEGER NOT NULL DEFAULT 0,\n"
    "  last_error TEXT,\n"
    "  delivered_at INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    /* status first: the dispatcher reads pending rows in id order
     * without walking the delivered history. */
    "CREATE INDEX deliveries_status ON deliveries (status, id);\n"
    "CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';\n"
    "CREATE INDEX deliveries_order ON deliveries (hook_id, instance_id, id)\n"
    "  WHERE status = 'pending';\n"
    "CREATE INDEX deliveries_hook ON deliveries (hook_id);\n"
    "CREATE TABLE tokens (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  user_id TEXT NOT NULL,\n"
    "  sha256 TEXT NOT NULL UNIQUE,\n"
    "  name TEXT,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  expires_at INTEGER NOT NULL DEFAULT 0,\n"
    "  revoked INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE INDEX tokens_user ON tokens (user_id);\n",

    /* 3: the inbox reads a user's tasks straight in its display order
     * (soonest due first, no deadline last) and stops at the page size,
     * instead of sorting every open task of the user. */
    "DROP INDEX tasks_user;\n"
    "CREATE INDEX tasks_user ON tasks (user_id, due_at IS NULL, due_at, created_at);\n",

    /* 4: `list --overdue` walks open tasks newest instance first and
     * reads due_at from the index, stopping at the page size, instead of
     * gathering and sorting every overdue task (bench/growth.c). */
    "DROP INDEX tasks_instance;\n"
    "CREATE INDEX tasks_instance ON tasks (instance_id, due_at);\n",

    /* 5: the archive notes of state changes are written by a catch-up
     * (engine/runner_notes.c), no longer after each commit: last_event is
     * the rowid of the last event the archive has caught up with. Events
     * are append-only and every write takes the write lock first, so the
     * rowid grows in commit order. The notes of a home made before this
     * were written after each commit: it starts caught up. */
    "CREATE TABLE archive_noted (\n"
    "  one INTEGER PRIMARY KEY CHECK (one = 1),\n"
    "  last_event INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO archive_noted VALUES (1, (SELECT COALESCE(MAX(rowid), 0) FROM events));\n",

    /* 6: the compiled form of a deployed flow or of the org directory
     * (definitions/compiled.c), keyed on the SHA-256 of its file: a
     * command that loads one reads it back instead of parsing the XML,
     * which spares it loading libxml2 (and the ICU it brings) and
     * libcrypto. src_len and src_crc32 are of the file's bytes as stored
     * beside it: bytes edited in the database afterwards miss the cache,
     * so they meet the full check that refuses them. A row of another
     * format is rewritten by the next load that misses it. */
    "CREATE TABLE compiled (\n"
    "  kind TEXT NOT NULL,\n"
    "  sha256 TEXT NOT NULL,\n"
    "  format INTEGER NOT NULL,\n"
    "  src_len INTEGER NOT NULL,\n"
    "  src_crc32 INTEGER NOT NULL,\n"
    "  body TEXT NOT NULL,\n"
    "  PRIMARY KEY (kind, sha256)\n"
    ") WITHOUT ROWID;\n",

    /* 7: every index entry is a page a step writes and flushes. A step
     * now moves an instance's per-state rows by their key and closes
     * tasks by id, and `list --state S --overdue` looks up each
     * instance's tasks through tasks_instance: nothing reads these two
     * any more. */
    "DROP INDEX IF EXISTS instance_states_instance;\n"
    "DROP INDEX IF EXISTS tasks_due;\n",

    /* 8: a step closes its instance's task and opens the next one: with
     * ids in creation order those were two rows on two pages of tasks,
     * and two entries of tasks_instance. A task's id is now its
     * instance's id times 2^32 plus its number within the instance
     * (1, 2, ... in creation order, the next after the highest open), so
     * an instance's tasks share a page of the table and an id range
     * finds them: tasks_instance goes. The CHECK keeps rows written
     * behind the store's back (a seeding script) in their range. */
    "CREATE TABLE tasks_by_instance (\n"
    "  id INTEGER PRIMARY KEY CHECK (id >> 32 = instance_id),\n"
    "  instance_id INTEGER NOT NULL REFERENCES instances (id),\n"
    "  state_id TEXT NOT NULL,\n"
    "  user_id TEXT NOT NULL,\n"
    "  role TEXT,\n"
    "  due_at INTEGER,\n"
    "  created_at INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO tasks_by_instance\n"
    "  SELECT (instance_id << 32) + row_number() OVER (PARTITION BY instance_id ORDER BY id),\n"
    "         instance_id, state_id, user_id, role, due_at, created_at FROM tasks;\n"
    "DROP TABLE tasks;\n"
    "ALTER TABLE tasks_by_instance RENAME TO tasks;\n"
    "CREATE INDEX tasks_user ON tasks (user_id, due_at IS NULL, due_at, created_at);\n",

    /* 9: the timers as the tasks of migration 8. A step that disarms an
     * instance's timer and arms the next wrote a row on each of two pages
     * of timers, an entry of timers_instance and, AUTOINCREMENT, the
     * sqlite_sequence row. A timer's id is now its instance's id times
     * 2^32 plus its number within the instance: an instance's timers
     * share a page and an id range finds them. A number can come back
     * once its instance has no timer above it; a tick deletes a timer it
     * read earlier only while it is still armed as it read it
     * (dk_store_timer_delete), so a newer timer under the same id is
     * never taken for it. */
    "CREATE TABLE timers_by_instance (\n"
    "  id INTEGER PRIMARY KEY CHECK (id >> 32 = instance_id),\n"
    "  instance_id INTEGER NOT NULL REFERENCES instances (id),\n"
    "  kind TEXT NOT NULL,\n"
    "  state_id TEXT,\n"
    "  due_at INTEGER NOT NULL,\n"
    "  payload TEXT\n"
    ");\n"
    "INSERT INTO timers_by_instance\n"
    "  SELECT (instance_id << 32) + row_number() OVER (PARTITION BY instance_id ORDER BY id),\n"
    "         instance_id, kind, state_id, due_at, payload FROM timers;\n"
    "DROP TABLE timers;\n"
    "ALTER TABLE timers_by_instance RENAME TO timers;\n"
    "CREATE INDEX timers_due ON timers (due_at, id);\n",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == DK_STORE_SCHEMA_VERSION,
               "DK_STORE_SCHEMA_VERSION must equal the number of migrations");

/* ---- errors ------------------------------------------------------------ */

int dk_sql_error(dk_store *s, int rc, const char *what)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return dk_error_set(DK_ECONFLICT, "the database is busy; try again");
	case SQLITE_CONSTRAINT:
		return dk_error_set(DK_ECONFLICT, "cannot %s: %s", what, sqlite3_errmsg(s->db));
	default:
		return dk_error_set(DK_EINTERNAL, "cannot %s in %s: %s (sqlite error %d)", what,
		                    s->path, sqlite3_errmsg(s->db), rc);
	}
}

/* ---- the statement cache ----------------------------------------------- */

int dk_sql_stmt_keyed(dk_store *s, sqlite3_stmt **out, const void *key, const char *sql)
{
	size_t i;
	int rc;
	sqlite3_stmt *st = NULL;

	*out = NULL;
	for (i = 0; i < s->ncache; i++) {
		if (s->cache[i].key == key) {
			*out = s->cache[i].stmt;
			return 0;
		}
	}
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK)
		return dk_sql_error(s, rc, "prepare a query");
	s->cache = dk_sql_grow(s->cache, &s->capcache, s->ncache, sizeof(*s->cache));
	s->cache[s->ncache].key = key;
	s->cache[s->ncache].stmt = st;
	s->ncache++;
	*out = st;
	return 0;
}

int dk_sql_stmt(dk_store *s, sqlite3_stmt **out, const char *sql)
{
	return dk_sql_stmt_keyed(s, out, sql, sql);
}

void dk_sql_done(sqlite3_stmt *st)
{
	if (!st)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int dk_sql_need_tx(dk_store *s, const char *what)
{
	if (sqlite3_get_autocommit(s->db))
		return dk_error_set(DK_EINTERNAL,
		                    "cannot %s outside a transaction; call dk_store_begin first",
		                    what);
	return 0;
}

/* ---- binding and reading ----------------------------------------------- */

int dk_sql_bind_text(sqlite3_stmt *st, int idx, const char *v)
{
	if (!v)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC);
}

int dk_sql_bind_int(sqlite3_stmt *st, int idx, int64_t v)
{
	return sqlite3_bind_int64(st, idx, v);
}

int dk_sql_bind_time(sqlite3_stmt *st, int idx, int64_t v)
{
	if (v == 0)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_int64(st, idx, v);
}

int64_t dk_sql_instance_num(const char *id)
{
	int64_t v = 0;
	const char *p;

	/* Only the canonical form: "7", not "07", "+7" or " 7", so one
	 * instance has exactly one name. */
	if (!id || id[0] < '1' || id[0] > '9')
		return 0;
	for (p = id; *p; p++) {
		if (*p < '0' || *p > '9' || p - id >= 18)
			return 0;
		v = v * 10 + (*p - '0');
	}
	return v;
}

int dk_sql_bind_instance(dk_store *s, sqlite3_stmt *st, int idx, const char *id)
{
	int64_t v = dk_sql_instance_num(id);
	(void)s;
	if (v == 0)
		return dk_error_set(DK_ENOTFOUND,
		                    "no instance '%s'; instance ids are numbers, see docket list",
		                    id ? id : "");
	sqlite3_bind_int64(st, idx, v);
	return 0;
}

char *dk_sql_col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t;
	int len;

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NULL;
	t = sqlite3_column_text(st, col);
	len = sqlite3_column_bytes(st, col);
	return dk_strndup(t ? (const char *)t : "", (size_t)len);
}

int64_t dk_sql_col_int(sqlite3_stmt *st, int col)
{
	return sqlite3_column_int64(st, col);
}

int dk_sql_exec_stmt(dk_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return dk_sql_error(s, rc, what);
	return 0;
}

void *dk_sql_grow(void *items, size_t *cap, size_t count, size_t size)
{
	if (count < *cap)
		return items;
	*cap = *cap ? *cap * 2 : 16;
	return dk_realloc(items, *cap * size);
}

/* ---- opening ----------------------------------------------------------- */

/* mkdir -p with mode 0700 for what it creates: the home holds the whole
 * audit trail and webhook secrets, so others get no access to it. */
static int make_home(const char *home)
{
	char *path = dk_strdup(home);
	char *p;
	int error = 0;

	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			error = dk_error_set(DK_EINTERNAL, "cannot create directory %s: %s", path,
			                     strerror(errno));
			goto cleanup;
		}
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		error = dk_error_set(DK_EINTERNAL, "cannot create the docket home %s: %s", home,
		                     strerror(errno));
cleanup:
	free(path);
	return error;
}

static int exec_sql(dk_store *s, const char *sql, const char *what)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return dk_sql_error(s, rc, what);
	return 0;
}

static int read_user_version(dk_store *s, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = 0;
	rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return dk_sql_error(s, rc, "read the schema version");
	return 0;
}

static int refuse_newer(dk_store *s, int found)
{
	return dk_error_set(DK_EINVALID,
	                    "%s has schema version %d but this docket knows versions up to %d; "
	                    "use a newer docket with this home",
	                    s->path, found, DK_STORE_SCHEMA_VERSION);
}

/* Applies each pending migration in its own transaction. The version is
 * read again once the write lock is held, so two processes opening a new
 * home at once do not both run the same migration. */
static int migrate(dk_store *s)
{
	int version, error;
	char pragma[64];

	if ((error = read_user_version(s, &version)) < 0)
		return error;
	if (version > DK_STORE_SCHEMA_VERSION)
		return refuse_newer(s, version);
	while (version < DK_STORE_SCHEMA_VERSION) {
		if ((error = exec_sql(s, "BEGIN IMMEDIATE", "start a migration")) < 0)
			return error;
		if ((error = read_user_version(s, &version)) < 0)
			goto fail;
		if (version > DK_STORE_SCHEMA_VERSION) {
			error = refuse_newer(s, version);
			goto fail;
		}
		if (version == DK_STORE_SCHEMA_VERSION) {
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			break;
		}
		if ((error = exec_sql(s, migrations[version], "migrate the schema")) < 0)
			goto fail;
		/* PRAGMA takes no parameters; the number is ours, not input. */
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
		if ((error = exec_sql(s, pragma, "record the schema version")) < 0)
			goto fail;
		if ((error = exec_sql(s, "COMMIT", "commit a migration")) < 0)
			goto fail;
		version++;
	}
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return error;
}

static int check_journal_wal(dk_store *s)
{
	sqlite3_stmt *st = NULL;
	int rc, error = 0;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		error = dk_sql_error(s, rc, "switch to WAL mode");
	} else if (sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		error = dk_error_set(DK_EINTERNAL,
		                     "%s cannot use WAL mode (journal mode is %s); put the docket "
		                     "home on a local file system",
		                     s->path, (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	return error;
}

/* SQLite counts every allocation (sqlite3_memory_used) under one mutex
 * for the whole process unless told not to; docket never reads the
 * counts, and in `docket serve` the writer and the request threads took
 * that mutex in turns (a tenth of the writer's time, waking each other).
 * Set once, before SQLite initialises; later it is refused, harmlessly. */
static void sqlite_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int dk_store_open(dk_store **out, const char *home)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	dk_store *s = NULL;
	dk_buf path = DK_BUF_INIT;
	int rc, error;

	*out = NULL;
	pthread_once(&once, sqlite_config);
	if (!home || !*home)
		return dk_error_set(DK_EINVALID, "no docket home given; use --home or DOCKET_HOME");
	if ((error = make_home(home)) < 0)
		return error;
	dk_buf_printf(&path, "%s/docket.db", home);
	s = dk_calloc(1, sizeof(*s));
	s->path = dk_buf_detach(&path);
	rc = sqlite3_open_v2(s->path, &s->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                     dk_sql_vfs());
	if (rc != SQLITE_OK) {
		error = dk_error_set(DK_EINTERNAL, "cannot open %s: %s", s->path,
		                     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto cleanup;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, DK_BUSY_TIMEOUT_MS);
	/* The WAL outlives the process: see dk_store_close. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if ((error = check_journal_wal(s)) < 0)
		goto cleanup;
	if ((error = exec_sql(s, "PRAGMA synchronous = FULL", "set synchronous=FULL")) < 0)
		goto cleanup;
	if ((error = exec_sql(s, "PRAGMA foreign_keys = ON", "enable foreign keys")) < 0)
		goto cleanup;
	/* Savepoint and statement journals in memory: they only ever hold a
	 * unit's original pages until its transaction ends (a tick keeps one
	 * savepoint per timer), and a temporary file would cost a write per
	 * page touched. Durability is the WAL's business, not theirs. */
	if ((error = exec_sql(s, "PRAGMA temp_store = MEMORY", "keep journals in memory")) < 0)
		goto cleanup;
	if ((error = migrate(s)) < 0)
		goto cleanup;
	*out = s;
	s = NULL;
cleanup:
	dk_store_close(s);
	return error;
}

/* Checkpoints and empties a WAL grown past DK_WAL_KEEP_BYTES, when that
 * can be done without waiting for anyone. See dk_store_close. */
static void trim_wal(dk_store *s)
{
	dk_buf wal = DK_BUF_INIT;
	struct stat st;

	dk_buf_printf(&wal, "%s-wal", s->path);
	if (stat(wal.ptr, &st) == 0 && st.st_size > DK_WAL_KEEP_BYTES) {
		sqlite3_busy_timeout(s->db, 0);
		sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	}
	dk_buf_free(&wal);
}

/*
 * SQLite's default is to checkpoint when the last connection closes and
 * to delete the WAL, so that every process (one `docket act`) would pay
 * for the next one's WAL to be made again (its header flushed, then its
 * directory) and for a checkpoint at its exit (two flushes more): five
 * flushes for a command that commits once. docket keeps the WAL instead
 * (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE): it is part of the database, exactly
 * as after a crash, and SQLite's automatic checkpoint still folds it into
 * the database file as it grows. What a kept WAL costs is read time: the
 * first connection of a process that finds no other one open reads the
 * whole WAL to rebuild its index (about 1 ms per MB here). So a closing
 * connection that finds the WAL past DK_WAL_KEEP_BYTES checkpoints it
 * and truncates it, if nobody else holds it (it does not wait): a few
 * flushes every dozen commands instead of three every command.
 */
void dk_store_close(dk_store *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->ncache; i++)
		sqlite3_finalize(s->cache[i].stmt);
	free(s->cache);
	if (s->db) {
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		trim_wal(s);
		sqlite3_close(s->db);
	}
	free(s->path);
	free(s);
}

void dk_store_set_busy_timeout(dk_store *s, int ms)
{
	sqlite3_busy_timeout(s->db, ms);
}

int dk_store_schema_version(dk_store *s, int *out)
{
	return read_user_version(s, out);
}

/* ---- transactions ------------------------------------------------------ */

/* One fixed name: savepoints are not nested by the runner, and fixed
 * texts let the statements be prepared once (a tick takes one per timer). */
static const char sql_savepoint[] = "SAVEPOINT dk_unit";
static const char sql_release[] = "RELEASE dk_unit";
static const char sql_rollback_to[] = "ROLLBACK TO dk_unit";

/* Every command begins and commits: prepared once, not parsed each time. */
static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";

static int exec_cached(dk_store *s, const char *sql, const char *what)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_stmt(s, &st, sql)) < 0)
		return error;
	error = dk_sql_exec_stmt(s, st, what);
	dk_sql_done(st);
	return error;
}

/* What the store remembers of the open transaction's writes (the next
 * event number of an instance) is forgotten wherever they may be undone
 * or another connection may write next. */
static void forget_tx(dk_store *s)
{
	s->seq_instance = s->seq_next = 0;
}

int dk_store_begin(dk_store *s)
{
	forget_tx(s);
	if (!sqlite3_get_autocommit(s->db))
		return dk_error_set(DK_EINTERNAL, "a transaction is already open on this store");
	return exec_cached(s, sql_begin, "start a transaction");
}

int dk_store_commit(dk_store *s)
{
	int error;

	forget_tx(s);
	if (sqlite3_get_autocommit(s->db))
		return dk_error_set(DK_EINTERNAL, "no transaction to commit");
	if ((error = exec_cached(s, sql_commit, "commit")) < 0) {
		/* A failed COMMIT may leave the transaction open; end it so
		 * that nothing of it can be committed later by accident. */
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return error;
}

int dk_store_rollback(dk_store *s)
{
	forget_tx(s);
	if (sqlite3_get_autocommit(s->db))
		return 0;
	return exec_sql(s, "ROLLBACK", "roll back");
}

int dk_store_in_transaction(dk_store *s)
{
	return !sqlite3_get_autocommit(s->db) && !s->reading;
}

int dk_store_savepoint(dk_store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return dk_error_set(DK_EINTERNAL, "a savepoint needs an open transaction");
	return exec_cached(s, sql_savepoint, "mark a savepoint");
}

int dk_store_savepoint_release(dk_store *s)
{
	return exec_cached(s, sql_release, "release a savepoint");
}

int dk_store_savepoint_rollback(dk_store *s)
{
	int error;

	forget_tx(s);
	error = exec_cached(s, sql_rollback_to, "roll back to a savepoint");
	if (error == 0)
		error = exec_cached(s, sql_release, "release a savepoint");
	return error;
}

/* A deferred BEGIN takes no lock: the first read starts one read
 * transaction (one WAL snapshot, one round of the shared-memory locks) that
 * every later read shares until COMMIT ends it. */
static const char sql_read_begin[] = "BEGIN";
static const char sql_read_end[] = "COMMIT";

int dk_store_read_begin(dk_store *s, int *began)
{
	int error;

	*began = 0;
	if (!sqlite3_get_autocommit(s->db))
		return 0;
	if ((error = exec_cached(s, sql_read_begin, "start a read")) == 0)
		*began = s->reading = 1;
	return error;
}

void dk_store_read_end(dk_store *s, int began)
{
	if (!began)
		return;
	s->reading = 0;
	if (!sqlite3_get_autocommit(s->db) && exec_cached(s, sql_read_end, "end a read") < 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}
