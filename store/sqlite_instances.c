/*
 * sqlite_instances.c - flow instances, their audit trail and open tasks.
 *
 * An instance row carries the engine's snapshot as opaque JSON plus a few
 * columns copied out of it for listing (flow, state summary, initiator,
 * status). Updates are compare-and-set on the version column, so two
 * commands racing on one instance cannot both win: the loser is told to
 * reload. Events are numbered 1, 2, 3... per instance inside the writing
 * transaction; the UNIQUE (instance_id, seq) index makes a gap or a
 * duplicate impossible rather than merely unlikely.
 */
#include "store/sqlite_int.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INSTANCE_COLS                                                                              \
	"i.id, i.flow_id, i.flow_version, i.state, i.snapshot, i.version, i.initiator, "           \
	"i.title, i.created_at, i.updated_at, i.final, i.status"

void dk_instance_row_free(dk_instance_row *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->flow_id);
	free(r->state);
	free(r->snapshot);
	free(r->initiator);
	free(r->title);
	free(r->status);
	memset(r, 0, sizeof(*r));
}

void dk_instance_rows_free(dk_instance_row *rows, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		dk_instance_row_free(&rows[i]);
	free(rows);
}

static void read_instance(sqlite3_stmt *st, dk_instance_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = dk_sql_col_text(st, 0);
	r->flow_id = dk_sql_col_text(st, 1);
	r->flow_version = (int)dk_sql_col_int(st, 2);
	r->state = dk_sql_col_text(st, 3);
	r->snapshot = dk_sql_col_text(st, 4);
	r->version = dk_sql_col_int(st, 5);
	r->initiator = dk_sql_col_text(st, 6);
	r->title = dk_sql_col_text(st, 7);
	r->created_at = dk_sql_col_int(st, 8);
	r->updated_at = dk_sql_col_int(st, 9);
	r->final = (int)dk_sql_col_int(st, 10);
	r->status = dk_sql_col_text(st, 11);
}

static int check_status(const char *status)
{
	if (strcmp(status, "active") != 0 && strcmp(status, "completed") != 0 &&
	    strcmp(status, "recalled") != 0)
		return dk_error_set(
		    DK_EINVALID, "unknown instance status '%s'; use active, completed or recalled",
		    status);
	return 0;
}

const char dk_sqlite_sql_states_remove[] =
    "DELETE FROM instance_states WHERE state = ?1 AND instance_id = ?2";
static const char sql_states_add[] =
    "INSERT OR IGNORE INTO instance_states (state, instance_id) VALUES (?1, ?2)";

/* 1 when the summary "a,b,c" lists state id one (of length len). */
static int summary_has(const char *summary, const char *one, size_t len)
{
	const char *p = summary;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (n == len && strncmp(p, one, len) == 0)
			return 1;
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

/* Runs sql (?1 a state id of the summary, ?2 num) for each state id of
 * summary "a,b,c" that summary other (NULL: none) does not list. */
static int each_state_not_in(dk_store *s, const char *sql, int64_t num, const char *summary,
                             const char *other)
{
	sqlite3_stmt *st = NULL;
	const char *p = summary;
	int error = 0;

	while (p && *p && error == 0) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (n && !(other && summary_has(other, p, n))) {
			if (!st && (error = dk_sql_stmt(s, &st, sql)) < 0)
				return error;
			sqlite3_bind_text(st, 1, p, (int)n, SQLITE_STATIC);
			dk_sql_bind_int(st, 2, num);
			error = dk_sql_exec_stmt(s, st, "index instance states");
			dk_sql_done(st);
		}
		p = comma ? comma + 1 : NULL;
	}
	return error;
}

/* Moves the per-state index rows of instance num from the summary was
 * (NULL for a new instance) to now: only the state ids that left or
 * came are written, each by its key, so a step that stays in its state
 * writes none. */
static int index_states(dk_store *s, int64_t num, const char *was, const char *now)
{
	int error;

	if (was && strcmp(was, now) == 0)
		return 0;
	if ((error = each_state_not_in(s, dk_sqlite_sql_states_remove, num, was, now)) < 0)
		return error;
	return each_state_not_in(s, sql_states_add, num, now, was);
}

static const char sql_instance_insert[] =
    "INSERT INTO instances (flow_id, flow_version, state, snapshot, version, initiator, title, "
    "created_at, updated_at, final, status) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10)";

int dk_store_instance_create(dk_store *s, dk_instance_row *row)
{
	sqlite3_stmt *st = NULL;
	const char *status = row->status ? row->status : "active";
	char idbuf[32];
	int64_t num;
	int error;

	if ((error = dk_sql_need_tx(s, "create an instance")) < 0)
		return error;
	if (!row->flow_id || !row->state || !row->snapshot || !row->initiator)
		return dk_error_set(
		    DK_EINVALID, "an instance needs a flow, a state, a snapshot and an initiator");
	if ((error = check_status(status)) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_instance_insert)) < 0)
		return error;
	dk_sql_bind_text(st, 1, row->flow_id);
	dk_sql_bind_int(st, 2, row->flow_version);
	dk_sql_bind_text(st, 3, row->state);
	dk_sql_bind_text(st, 4, row->snapshot);
	dk_sql_bind_text(st, 5, row->initiator);
	dk_sql_bind_text(st, 6, row->title);
	dk_sql_bind_int(st, 7, row->created_at);
	dk_sql_bind_int(st, 8, row->updated_at ? row->updated_at : row->created_at);
	dk_sql_bind_int(st, 9, row->final ? 1 : 0);
	dk_sql_bind_text(st, 10, status);
	error = dk_sql_exec_stmt(s, st, "create an instance (is the flow version deployed?)");
	dk_sql_done(st);
	if (error < 0)
		return error;
	num = sqlite3_last_insert_rowid(s->db);
	if ((error = index_states(s, num, NULL, row->state)) < 0)
		return error;
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)num);
	free(row->id);
	row->id = dk_strdup(idbuf);
	row->version = 1;
	return 0;
}

static const char sql_instance_get[] = "SELECT " INSTANCE_COLS " FROM instances i WHERE i.id = ?1";

int dk_store_instance_get(dk_store *s, const char *id, dk_instance_row *out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	memset(out, 0, sizeof(*out));
	if ((error = dk_sql_stmt(s, &st, sql_instance_get)) < 0)
		return error;
	if ((error = dk_sql_bind_instance(s, st, 1, id)) < 0)
		goto cleanup;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_instance(st, out);
	else if (rc == SQLITE_DONE)
		error = dk_error_set(DK_ENOTFOUND, "no instance %s; see docket list", id);
	else
		error = dk_sql_error(s, rc, "read an instance");
cleanup:
	dk_sql_done(st);
	return error;
}

/* What the update compares against: the row as the transaction sees it. */
static const char sql_instance_was[] =
    "SELECT state, status, final FROM instances WHERE id = ?1 AND version = ?2";
/* status and final are in instances_status and instances_initiator: they
 * are SET (and those index rows rewritten) only when they change, which
 * is once or twice in an instance's life, not at every step. */
static const char sql_instance_update[] =
    "UPDATE instances SET state = ?3, snapshot = ?4, title = ?5, updated_at = ?6, "
    "version = version + 1 WHERE id = ?1 AND version = ?2";
static const char sql_instance_update_status[] =
    "UPDATE instances SET state = ?3, snapshot = ?4, title = ?5, updated_at = ?6, final = ?7, "
    "status = ?8, version = version + 1 WHERE id = ?1 AND version = ?2";
static const char sql_instance_version[] = "SELECT version FROM instances WHERE id = ?1";

/* The compare-and-set missed: tells apart a moved version from a missing
 * instance. */
static int update_missed(dk_store *s, const dk_instance_row *row, int64_t expect_version)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if ((error = dk_sql_stmt(s, &st, sql_instance_version)) < 0)
		return error;
	dk_sql_bind_int(st, 1, dk_sql_instance_num(row->id));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		error = dk_error_set(DK_ECONFLICT,
		                     "instance %s was changed by someone else (version %lld, "
		                     "you had %lld); reload with docket show and try again",
		                     row->id, (long long)dk_sql_col_int(st, 0),
		                     (long long)expect_version);
	else if (rc == SQLITE_DONE)
		error = dk_error_set(DK_ENOTFOUND, "no instance %s; see docket list", row->id);
	else
		error = dk_sql_error(s, rc, "read an instance version");
	dk_sql_done(st);
	return error;
}

int dk_store_instance_update(dk_store *s, dk_instance_row *row, int64_t expect_version)
{
	sqlite3_stmt *st = NULL;
	const char *status = row->status ? row->status : "active";
	int64_t num = dk_sql_instance_num(row->id);
	char *was_state = NULL;
	int rc, error, same_status;

	if ((error = dk_sql_need_tx(s, "update an instance")) < 0)
		return error;
	if (!row->state || !row->snapshot)
		return dk_error_set(DK_EINVALID, "an instance update needs a state and a snapshot");
	if ((error = check_status(status)) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_instance_was)) < 0)
		return error;
	if ((error = dk_sql_bind_instance(s, st, 1, row->id)) < 0)
		goto cleanup;
	dk_sql_bind_int(st, 2, expect_version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		dk_sql_done(st);
		return update_missed(s, row, expect_version);
	}
	if (rc != SQLITE_ROW) {
		error = dk_sql_error(s, rc, "read an instance");
		goto cleanup;
	}
	was_state = dk_sql_col_text(st, 0);
	same_status = sqlite3_column_type(st, 1) == SQLITE_TEXT &&
	              strcmp((const char *)sqlite3_column_text(st, 1), status) == 0 &&
	              dk_sql_col_int(st, 2) == (row->final ? 1 : 0);
	dk_sql_done(st);
	st = NULL;

	if ((error = dk_sql_stmt(
	         s, &st, same_status ? sql_instance_update : sql_instance_update_status)) < 0)
		goto cleanup;
	dk_sql_bind_int(st, 1, num);
	dk_sql_bind_int(st, 2, expect_version);
	dk_sql_bind_text(st, 3, row->state);
	dk_sql_bind_text(st, 4, row->snapshot);
	dk_sql_bind_text(st, 5, row->title);
	dk_sql_bind_int(st, 6, row->updated_at);
	if (!same_status) {
		dk_sql_bind_int(st, 7, row->final ? 1 : 0);
		dk_sql_bind_text(st, 8, status);
	}
	if ((error = dk_sql_exec_stmt(s, st, "update an instance")) < 0)
		goto cleanup;
	dk_sql_done(st);
	st = NULL;
	/* The row was there at expect_version and the write lock is ours. */
	if (sqlite3_changes(s->db) == 0) {
		error = update_missed(s, row, expect_version);
		goto cleanup;
	}
	if ((error = index_states(s, num, was_state ? was_state : "", row->state)) < 0)
		goto cleanup;
	row->version = expect_version + 1;
cleanup:
	dk_sql_done(st);
	free(was_state);
	return error;
}

/* ---- listing ----------------------------------------------------------- */

enum { F_FLOW = 1, F_STATE = 2, F_INITIATOR = 4, F_STATUS = 8, F_OVERDUE = 16, F_COMBOS = 32 };

static unsigned filter_mask(const dk_instance_filter *f)
{
	return (f->flow ? F_FLOW : 0) | (f->state ? F_STATE : 0) |
	       (f->initiator ? F_INITIATOR : 0) | (f->status ? F_STATUS : 0) |
	       (f->overdue_at ? F_OVERDUE : 0);
}

/* The SQL for one combination of filters, assembled from fixed fragments:
 * the shape varies, the values are always bound (?1 flow, ?2 state,
 * ?3 initiator, ?4 status, ?5 overdue instant, ?6 limit, ?7 offset). A state
 * filter drives the query from instance_states, whose primary key (state,
 * instance_id) yields the rows already newest first. */
void dk_sqlite_instance_list_sql(dk_buf *out, const dk_instance_filter *f)
{
	unsigned m = filter_mask(f);

	dk_buf_puts(out, "SELECT " INSTANCE_COLS " FROM ");
	if (m & F_STATE)
		dk_buf_puts(out, "instance_states x JOIN instances i ON i.id = x.instance_id "
		                 "WHERE x.state = ?2");
	else if (m & F_OVERDUE)
		/* Overdue alone walks the open tasks newest instance first
		 * (a task's id starts with its instance's) and stops at the
		 * page: its cost is the page, not every overdue task of the
		 * store, as it was when the ids of all overdue tasks were
		 * gathered and sorted first (92 ms at 100,000 instances
		 * against 11 at 1,000). An instance is met at its last
		 * overdue task: no later one of its range is overdue. The
		 * tasks table holds open work only, never the history. */
		dk_buf_puts(out, "tasks t CROSS JOIN instances i ON i.id = t.instance_id "
		                 "WHERE t.due_at < ?5 AND NOT EXISTS (SELECT 1 FROM tasks u "
		                 "WHERE u.id > t.id AND u.id < ((t.instance_id + 1) << 32) "
		                 "AND u.due_at < ?5)");
	else
		dk_buf_puts(out, "instances i WHERE 1");
	if (m & F_FLOW)
		dk_buf_puts(out, " AND i.flow_id = ?1");
	if (m & F_INITIATOR)
		dk_buf_puts(out, " AND i.initiator = ?3");
	if (m & F_STATUS)
		dk_buf_puts(out, " AND i.status = ?4");
	/* per instance of the state's range, through its range of task ids */
	if ((m & F_OVERDUE) && (m & F_STATE))
		dk_buf_puts(out, " AND EXISTS (SELECT 1 FROM tasks t WHERE t.id > (i.id << 32) "
		                 "AND t.id < ((i.id + 1) << 32) AND t.due_at < ?5)");
	if (m & F_STATE)
		dk_buf_puts(out, " ORDER BY x.instance_id DESC");
	else if (m & F_OVERDUE)
		dk_buf_puts(out, " ORDER BY t.id DESC");
	else
		dk_buf_puts(out, " ORDER BY i.id DESC");
	dk_buf_puts(out, " LIMIT ?6 OFFSET ?7");
}

/* One distinct address per filter combination: the statement cache key. */
static const char list_keys[F_COMBOS];

int dk_store_instance_list(dk_store *s, const dk_instance_filter *f, dk_instance_row **out,
                           size_t *n)
{
	sqlite3_stmt *st = NULL;
	dk_instance_row *rows = NULL;
	dk_buf sql = DK_BUF_INIT;
	size_t count = 0, cap = 0;
	int rc, error;

	*out = NULL;
	*n = 0;
	dk_sqlite_instance_list_sql(&sql, f);
	error = dk_sql_stmt_keyed(s, &st, &list_keys[filter_mask(f)], dk_buf_cstr(&sql));
	dk_buf_free(&sql);
	if (error < 0)
		return error;
	if (f->flow)
		dk_sql_bind_text(st, 1, f->flow);
	if (f->state)
		dk_sql_bind_text(st, 2, f->state);
	if (f->initiator)
		dk_sql_bind_text(st, 3, f->initiator);
	if (f->status)
		dk_sql_bind_text(st, 4, f->status);
	if (f->overdue_at)
		dk_sql_bind_int(st, 5, f->overdue_at);
	dk_sql_bind_int(st, 6, f->limit ? (int64_t)f->limit : -1);
	dk_sql_bind_int(st, 7, (int64_t)f->offset);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		read_instance(st, &rows[count++]);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "list instances");
		dk_instance_rows_free(rows, count);
		rows = NULL;
		count = 0;
	}
	dk_sql_done(st);
	*out = rows;
	*n = count;
	return error;
}

/* ---- events ------------------------------------------------------------ */

void dk_event_row_free(dk_event_row *r)
{
	if (!r)
		return;
	free(r->instance_id);
	free(r->type);
	free(r->actor);
	free(r->on_behalf_of);
	free(r->from_state);
	free(r->to_state);
	free(r->transition);
	free(r->comment);
	free(r->data);
	free(r->flow_id);
	free(r->state);
	memset(r, 0, sizeof(*r));
}

void dk_event_rows_free(dk_event_row *rows, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		dk_event_row_free(&rows[i]);
	free(rows);
}

/* seq is the instance's last + 1, read from the UNIQUE (instance_id, seq)
 * index; the write lock held since BEGIN IMMEDIATE means nobody else can
 * take the same number between the read and the write. A step appends
 * several events to one instance: after the first, the store knows the
 * next number (s->seq_next) and skips the read. Two plain statements: an
 * INSERT ... RETURNING costs twice their sum. */
static const char sql_event_next_seq[] =
    "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE instance_id = ?1";
static const char sql_event_append[] =
    "INSERT INTO events (instance_id, seq, type, actor, on_behalf_of, at, from_state, "
    "to_state, transition, comment, data) VALUES (?1, ?11, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

static int event_next_seq(dk_store *s, const char *instance_id, int64_t num, int64_t *seq)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if (num != 0 && s->seq_instance == num && s->seq_next > 0) {
		*seq = s->seq_next;
		return 0;
	}
	if ((error = dk_sql_stmt(s, &st, sql_event_next_seq)) < 0)
		return error;
	if ((error = dk_sql_bind_instance(s, st, 1, instance_id)) == 0) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*seq = dk_sql_col_int(st, 0);
		else
			error = dk_sql_error(s, rc, "record an event");
	}
	dk_sql_done(st);
	return error;
}

int dk_store_event_append(dk_store *s, dk_event_row *ev)
{
	sqlite3_stmt *st = NULL;
	int64_t num = dk_sql_instance_num(ev->instance_id), seq = 0;
	int error;

	if ((error = dk_sql_need_tx(s, "record an event")) < 0)
		return error;
	if (!ev->type)
		return dk_error_set(DK_EINVALID, "an event needs a type");
	if ((error = event_next_seq(s, ev->instance_id, num, &seq)) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_event_append)) < 0)
		return error;
	dk_sql_bind_int(st, 1, num);
	dk_sql_bind_text(st, 2, ev->type);
	dk_sql_bind_text(st, 3, ev->actor);
	dk_sql_bind_text(st, 4, ev->on_behalf_of);
	dk_sql_bind_int(st, 5, ev->at);
	dk_sql_bind_text(st, 6, ev->from_state);
	dk_sql_bind_text(st, 7, ev->to_state);
	dk_sql_bind_text(st, 8, ev->transition);
	dk_sql_bind_text(st, 9, ev->comment);
	dk_sql_bind_text(st, 10, ev->data);
	dk_sql_bind_int(st, 11, seq);
	if ((error = dk_sql_exec_stmt(s, st, "record an event")) == 0) {
		ev->seq = seq;
		s->seq_instance = num;
		s->seq_next = seq + 1;
	} else {
		s->seq_instance = s->seq_next = 0;
	}
	dk_sql_done(st);
	return error;
}

static const char sql_event_list[] =
    "SELECT instance_id, seq, type, actor, on_behalf_of, at, from_state, to_state, "
    "transition, comment, data, rowid FROM events WHERE instance_id = ?1 ORDER BY seq";

void dk_sql_event_row(sqlite3_stmt *st, dk_event_row *r)
{
	r->instance_id = dk_sql_col_text(st, 0);
	r->seq = dk_sql_col_int(st, 1);
	r->type = dk_sql_col_text(st, 2);
	r->actor = dk_sql_col_text(st, 3);
	r->on_behalf_of = dk_sql_col_text(st, 4);
	r->at = dk_sql_col_int(st, 5);
	r->from_state = dk_sql_col_text(st, 6);
	r->to_state = dk_sql_col_text(st, 7);
	r->transition = dk_sql_col_text(st, 8);
	r->comment = dk_sql_col_text(st, 9);
	r->data = dk_sql_col_text(st, 10);
	r->order = dk_sql_col_int(st, 11);
}

int dk_store_event_list(dk_store *s, const char *instance_id, dk_event_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	dk_event_row *rows = NULL;
	size_t count = 0, cap = 0;
	int rc, error;

	*out = NULL;
	*n = 0;
	if (dk_sql_instance_num(instance_id) == 0)
		return 0;
	if ((error = dk_sql_stmt(s, &st, sql_event_list)) < 0)
		return error;
	dk_sql_bind_int(st, 1, dk_sql_instance_num(instance_id));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		dk_event_row *r;
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		r = &rows[count++];
		memset(r, 0, sizeof(*r));
		dk_sql_event_row(st, r);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "list events");
		dk_event_rows_free(rows, count);
		rows = NULL;
		count = 0;
	}
	dk_sql_done(st);
	*out = rows;
	*n = count;
	return error;
}

/* ---- tasks ------------------------------------------------------------- */

void dk_task_row_free(dk_task_row *r)
{
	if (!r)
		return;
	free(r->instance_id);
	free(r->state_id);
	free(r->user_id);
	free(r->role);
	free(r->flow_id);
	free(r->title);
	free(r->state);
	free(r->on_behalf_of);
	memset(r, 0, sizeof(*r));
}

void dk_task_rows_free(dk_task_row *rows, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		dk_task_row_free(&rows[i]);
	free(rows);
}

/* A task's id is its instance's id times 2^32 plus its number within the
 * instance (migration 8; instance ids stay below 2^31): an instance's open
 * tasks are one range of the table, on one page, so closing one and
 * opening the next writes that page once. */
#define TASK_NUM_BITS 32
#define TASK_NUM_MAX  ((INT64_C(1) << TASK_NUM_BITS) - 1)
const char dk_sqlite_sql_task_open[] = "SELECT id, state_id, user_id, role, due_at FROM tasks "
                                       "WHERE id > (?1 << 32) AND id < ((?1 + 1) << 32)";
static const char sql_task_delete[] = "DELETE FROM tasks WHERE id = ?1";
static const char sql_task_insert[] =
    "INSERT INTO tasks (id, instance_id, state_id, user_id, role, due_at, created_at) "
    "VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6)";

static int same_text(const unsigned char *a, const char *b)
{
	return a ? b && strcmp((const char *)a, b) == 0 : !b;
}

/* The index in tasks[0..n) of a task not yet in kept[] with the state,
 * user, role and due time of the tasks row st is on, or n. */
static size_t task_match(sqlite3_stmt *st, const dk_task_row *tasks, const char *kept, size_t n)
{
	const unsigned char *state = sqlite3_column_text(st, 1), *user = sqlite3_column_text(st, 2),
	                    *role = sqlite3_column_text(st, 3);
	int64_t due = dk_sql_col_int(st, 4);
	size_t i;

	for (i = 0; i < n; i++)
		if (!kept[i] && tasks[i].due_at == due && same_text(state, tasks[i].state_id) &&
		    same_text(user, tasks[i].user_id) && same_text(role, tasks[i].role))
			break;
	return i;
}

static int task_delete(dk_store *s, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_stmt(s, &st, sql_task_delete)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	error = dk_sql_exec_stmt(s, st, "close a task");
	dk_sql_done(st);
	return error;
}

int dk_store_task_replace_for_instance(dk_store *s, const char *instance_id,
                                       const dk_task_row *tasks, size_t n)
{
	sqlite3_stmt *st = NULL;
	char *kept = dk_calloc(n ? n : 1, 1);
	int64_t *gone = NULL, num = dk_sql_instance_num(instance_id), last = 0;
	size_t i, ngone = 0, capgone = 0;
	int rc, error;

	if ((error = dk_sql_need_tx(s, "record tasks")) < 0)
		goto cleanup;
	for (i = 0; i < n; i++) {
		if (!tasks[i].state_id || !tasks[i].user_id) {
			error = dk_error_set(DK_EINVALID, "a task needs a state and a user");
			goto cleanup;
		}
	}
	/* A task that stays open (same state, user, role and due time) stays
	 * as it is, created_at included: only the tasks that closed or came
	 * are written, each a row and its index entries. */
	if ((error = dk_sql_stmt(s, &st, dk_sqlite_sql_task_open)) < 0)
		goto cleanup;
	if ((error = dk_sql_bind_instance(s, st, 1, instance_id)) < 0)
		goto cleanup;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t m = task_match(st, tasks, kept, n);
		if ((dk_sql_col_int(st, 0) & TASK_NUM_MAX) > last)
			last = dk_sql_col_int(st, 0) & TASK_NUM_MAX;
		if (m < n) {
			kept[m] = 1;
			continue;
		}
		gone = dk_sql_grow(gone, &capgone, ngone, sizeof(*gone));
		gone[ngone++] = dk_sql_col_int(st, 0);
	}
	if (rc != SQLITE_DONE)
		error = dk_sql_error(s, rc, "read open tasks");
	dk_sql_done(st);
	st = NULL;
	for (i = 0; i < ngone && error == 0; i++)
		error = task_delete(s, gone[i]);
	if (error < 0 || (error = dk_sql_stmt(s, &st, sql_task_insert)) < 0)
		goto cleanup;
	for (i = 0; i < n && error == 0; i++) {
		if (kept[i])
			continue;
		if (last == TASK_NUM_MAX) {
			error = dk_error_set(
			    DK_EINTERNAL, "instance %s has run out of task numbers", instance_id);
			break;
		}
		dk_sql_bind_int(st, 7, (num << TASK_NUM_BITS) + ++last);
		dk_sql_bind_instance(s, st, 1, instance_id);
		dk_sql_bind_text(st, 2, tasks[i].state_id);
		dk_sql_bind_text(st, 3, tasks[i].user_id);
		dk_sql_bind_text(st, 4, tasks[i].role);
		dk_sql_bind_time(st, 5, tasks[i].due_at);
		dk_sql_bind_int(st, 6, tasks[i].created_at);
		error = dk_sql_exec_stmt(s, st, "record a task");
		dk_sql_done(st);
	}
	st = NULL;
cleanup:
	dk_sql_done(st);
	free(gone);
	free(kept);
	return error;
}

#define TASK_COLS                                                                                  \
	"t.instance_id, t.state_id, t.user_id, t.role, t.due_at, t.created_at, i.flow_id, "        \
	"i.title, i.state"

/* Own tasks are read from the tasks_user index already in display order;
 * tasks reaching the user by delegation come from delegations_to, then
 * tasks_user of each delegator, and are sorted (they are few). SQLite
 * merges the two sorted halves, so a page of the inbox costs its size, not
 * the user's whole backlog. ?2 NULL (no instant) switches the delegated
 * half off. A compound ORDER BY names result columns by position:
 * 11 nodue, 5 due_at, 6 created_at, 12 tid. */
const char dk_sqlite_sql_task_list_for_user[] =
    "SELECT " TASK_COLS ", NULL AS behalf, t.due_at IS NULL AS nodue, t.id AS tid "
    "FROM tasks t JOIN instances i ON i.id = t.instance_id WHERE t.user_id = ?1 "
    "UNION ALL "
    "SELECT DISTINCT " TASK_COLS ", t.user_id, t.due_at IS NULL, t.id FROM delegations d "
    "JOIN tasks t ON t.user_id = d.from_user AND (d.role IS NULL OR d.role = t.role) "
    "JOIN instances i ON i.id = t.instance_id "
    "WHERE ?2 IS NOT NULL AND d.to_user = ?1 AND d.until > ?2 AND d.created_at <= ?2 "
    "AND t.user_id <> ?1 "
    "ORDER BY 11, 5, 6, 12 LIMIT ?3 OFFSET ?4";

static const char sql_task_list_for_instance[] =
    "SELECT " TASK_COLS ", NULL, t.id FROM tasks t JOIN instances i ON i.id = t.instance_id "
    "WHERE t.id > (?1 << 32) AND t.id < ((?1 + 1) << 32) ORDER BY t.user_id, t.state_id, t.id";

static int read_tasks(dk_store *s, sqlite3_stmt *st, dk_task_row **out, size_t *n)
{
	dk_task_row *rows = NULL;
	size_t count = 0, cap = 0;
	int rc, error = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		dk_task_row *r;
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		r = &rows[count++];
		memset(r, 0, sizeof(*r));
		r->instance_id = dk_sql_col_text(st, 0);
		r->state_id = dk_sql_col_text(st, 1);
		r->user_id = dk_sql_col_text(st, 2);
		r->role = dk_sql_col_text(st, 3);
		r->due_at = dk_sql_col_int(st, 4);
		r->created_at = dk_sql_col_int(st, 5);
		r->flow_id = dk_sql_col_text(st, 6);
		r->title = dk_sql_col_text(st, 7);
		r->state = dk_sql_col_text(st, 8);
		r->on_behalf_of = dk_sql_col_text(st, 9);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "list tasks");
		dk_task_rows_free(rows, count);
		rows = NULL;
		count = 0;
	}
	*out = rows;
	*n = count;
	return error;
}

int dk_store_task_list_for_user(dk_store *s, const char *user_id, int64_t delegated_at,
                                size_t limit, size_t offset, dk_task_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st, dk_sqlite_sql_task_list_for_user)) < 0)
		return error;
	dk_sql_bind_text(st, 1, user_id);
	dk_sql_bind_time(st, 2, delegated_at);
	dk_sql_bind_int(st, 3, limit ? (int64_t)limit : -1);
	dk_sql_bind_int(st, 4, (int64_t)offset);
	error = read_tasks(s, st, out, n);
	dk_sql_done(st);
	return error;
}

int dk_store_task_list_for_instance(dk_store *s, const char *instance_id, dk_task_row **out,
                                    size_t *n)
{
	sqlite3_stmt *st = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if (dk_sql_instance_num(instance_id) == 0)
		return 0;
	if ((error = dk_sql_stmt(s, &st, sql_task_list_for_instance)) < 0)
		return error;
	dk_sql_bind_int(st, 1, dk_sql_instance_num(instance_id));
	error = read_tasks(s, st, out, n);
	dk_sql_done(st);
	return error;
}
