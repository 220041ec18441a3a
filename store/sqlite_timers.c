/*
 * sqlite_timers.c - delegations of authority and the timers that drive
 * deadlines, reminders and escalations.
 *
 * A timer fires at most once even with two ticking processes: the ticker
 * deletes the timer and acts on it in the same write transaction, and only
 * the transaction whose DELETE removed the row goes on to act.
 */
#include "store/sqlite_int.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- delegations ------------------------------------------------------- */

void dk_delegation_row_free(dk_delegation_row *r)
{
	if (!r)
		return;
	free(r->from_user);
	free(r->to_user);
	free(r->role);
	free(r->created_by);
	memset(r, 0, sizeof(*r));
}

void dk_delegation_rows_free(dk_delegation_row *rows, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		dk_delegation_row_free(&rows[i]);
	free(rows);
}

static const char sql_delegation_add[] =
    "INSERT INTO delegations (from_user, to_user, role, until, created_at, created_by) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

int dk_store_delegation_add(dk_store *s, dk_delegation_row *row)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "add a delegation")) < 0)
		return error;
	if (!row->from_user || !row->to_user)
		return dk_error_set(DK_EINVALID, "a delegation needs a from and a to user");
	if (row->until <= row->created_at)
		return dk_error_set(DK_EINVALID, "a delegation must end after it starts");
	if ((error = dk_sql_stmt(s, &st, sql_delegation_add)) < 0)
		return error;
	dk_sql_bind_text(st, 1, row->from_user);
	dk_sql_bind_text(st, 2, row->to_user);
	dk_sql_bind_text(st, 3, row->role);
	dk_sql_bind_int(st, 4, row->until);
	dk_sql_bind_int(st, 5, row->created_at);
	dk_sql_bind_text(st, 6, row->created_by);
	error = dk_sql_exec_stmt(s, st, "add a delegation");
	dk_sql_done(st);
	if (error == 0)
		row->id = sqlite3_last_insert_rowid(s->db);
	return error;
}

static const char sql_delegation_remove[] = "DELETE FROM delegations WHERE id = ?1";

int dk_store_delegation_remove(dk_store *s, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "remove a delegation")) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_delegation_remove)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	error = dk_sql_exec_stmt(s, st, "remove a delegation");
	dk_sql_done(st);
	if (error == 0 && sqlite3_changes(s->db) == 0)
		error = dk_error_set(DK_ENOTFOUND, "no delegation %lld", (long long)id);
	return error;
}

#define DELEGATION_COLS "id, from_user, to_user, role, until, created_at, created_by"

static const char sql_delegation_list[] = "SELECT " DELEGATION_COLS " FROM delegations ORDER BY id";
static const char sql_delegation_active[] =
    "SELECT " DELEGATION_COLS " FROM delegations "
    "WHERE to_user = ?2 AND until > ?1 AND created_at <= ?1 ORDER BY id";

static int read_delegations(dk_store *s, sqlite3_stmt *st, dk_delegation_row **out, size_t *n)
{
	dk_delegation_row *rows = NULL;
	size_t count = 0, cap = 0;
	int rc, error = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		dk_delegation_row *r;
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		r = &rows[count++];
		r->id = dk_sql_col_int(st, 0);
		r->from_user = dk_sql_col_text(st, 1);
		r->to_user = dk_sql_col_text(st, 2);
		r->role = dk_sql_col_text(st, 3);
		r->until = dk_sql_col_int(st, 4);
		r->created_at = dk_sql_col_int(st, 5);
		r->created_by = dk_sql_col_text(st, 6);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "list delegations");
		dk_delegation_rows_free(rows, count);
		rows = NULL;
		count = 0;
	}
	*out = rows;
	*n = count;
	return error;
}

int dk_store_delegation_list(dk_store *s, dk_delegation_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st, sql_delegation_list)) < 0)
		return error;
	error = read_delegations(s, st, out, n);
	dk_sql_done(st);
	return error;
}

int dk_store_delegation_active(dk_store *s, int64_t at, const char *to_user,
                               dk_delegation_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st, sql_delegation_active)) < 0)
		return error;
	dk_sql_bind_int(st, 1, at);
	dk_sql_bind_text(st, 2, to_user);
	error = read_delegations(s, st, out, n);
	dk_sql_done(st);
	return error;
}

/* ---- timers ------------------------------------------------------------ */

void dk_timer_row_free(dk_timer_row *r)
{
	if (!r)
		return;
	free(r->instance_id);
	free(r->kind);
	free(r->state_id);
	free(r->payload);
	memset(r, 0, sizeof(*r));
}

void dk_timer_rows_free(dk_timer_row *rows, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		dk_timer_row_free(&rows[i]);
	free(rows);
}

/* A timer's id is its instance's id times 2^32 plus its number within the
 * instance, the next after the highest armed (migration 9): an instance's
 * timers are one range of the table, on one page. */
#define TIMER_NUM_BITS 32
#define TIMER_NUM_MAX  ((INT64_C(1) << TIMER_NUM_BITS) - 1)
#define TIMER_RANGE(p) "id > (" p " << 32) AND id < ((" p " + 1) << 32)"

static const char sql_timer_add[] =
    "INSERT INTO timers (id, instance_id, kind, state_id, due_at, payload) "
    "VALUES ((SELECT COALESCE(MAX(id), ?1 << 32) + 1 FROM timers WHERE " TIMER_RANGE(
        "?1") "), "
              "?1, ?2, ?3, ?4, ?5)";
static const char sql_timer_arm[] =
    "INSERT INTO timers (id, instance_id, kind, state_id, due_at, payload) "
    "VALUES (?6, ?1, ?2, ?3, ?4, ?5)";

int dk_store_timer_add(dk_store *s, dk_timer_row *row)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "add a timer")) < 0)
		return error;
	if (!row->kind)
		return dk_error_set(DK_EINVALID, "a timer needs a kind");
	if ((error = dk_sql_stmt(s, &st, sql_timer_add)) < 0)
		return error;
	if ((error = dk_sql_bind_instance(s, st, 1, row->instance_id)) == 0) {
		dk_sql_bind_text(st, 2, row->kind);
		dk_sql_bind_text(st, 3, row->state_id);
		dk_sql_bind_int(st, 4, row->due_at);
		dk_sql_bind_text(st, 5, row->payload);
		error = dk_sql_exec_stmt(s, st, "add a timer");
	}
	dk_sql_done(st);
	if (error == 0)
		row->id = sqlite3_last_insert_rowid(s->db);
	return error;
}

static const char sql_timer_clear[] = "DELETE FROM timers WHERE " TIMER_RANGE("?1");

int dk_store_timer_clear_for_instance(dk_store *s, const char *instance_id)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "clear timers")) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_timer_clear)) < 0)
		return error;
	if ((error = dk_sql_bind_instance(s, st, 1, instance_id)) == 0)
		error = dk_sql_exec_stmt(s, st, "clear timers");
	dk_sql_done(st);
	return error;
}

const char dk_sqlite_sql_timer_of[] =
    "SELECT id, kind, state_id, due_at, payload FROM timers WHERE " TIMER_RANGE("?1");
static const char sql_timer_delete_one[] = "DELETE FROM timers WHERE id = ?1";

static int same_text(const unsigned char *a, const char *b)
{
	return a ? b && strcmp((const char *)a, b) == 0 : !b;
}

int dk_store_timer_replace_for_instance(dk_store *s, const char *instance_id, dk_timer_row *rows,
                                        size_t n)
{
	sqlite3_stmt *st = NULL;
	int64_t *gone = NULL, num = dk_sql_instance_num(instance_id), last = 0;
	size_t i, ngone = 0, capgone = 0;
	int rc, error;

	if ((error = dk_sql_need_tx(s, "arm timers")) < 0)
		return error;
	for (i = 0; i < n; i++) {
		if (!rows[i].kind)
			return dk_error_set(DK_EINVALID, "a timer needs a kind");
		rows[i].id = 0;
	}
	/* A timer armed as it was (same kind, state, due time and payload)
	 * keeps its row and id; only the timers that went or came are
	 * written, each a row and its index entries. */
	if ((error = dk_sql_stmt(s, &st, dk_sqlite_sql_timer_of)) < 0)
		return error;
	if ((error = dk_sql_bind_instance(s, st, 1, instance_id)) < 0) {
		dk_sql_done(st);
		return error;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *kind = sqlite3_column_text(st, 1),
		                    *state = sqlite3_column_text(st, 2),
		                    *payload = sqlite3_column_text(st, 4);
		int64_t due = dk_sql_col_int(st, 3);
		if ((dk_sql_col_int(st, 0) & TIMER_NUM_MAX) > last)
			last = dk_sql_col_int(st, 0) & TIMER_NUM_MAX;
		for (i = 0; i < n; i++)
			if (!rows[i].id && rows[i].due_at == due && same_text(kind, rows[i].kind) &&
			    same_text(state, rows[i].state_id) &&
			    same_text(payload, rows[i].payload))
				break;
		if (i < n) {
			rows[i].id = dk_sql_col_int(st, 0);
			continue;
		}
		gone = dk_sql_grow(gone, &capgone, ngone, sizeof(*gone));
		gone[ngone++] = dk_sql_col_int(st, 0);
	}
	if (rc != SQLITE_DONE)
		error = dk_sql_error(s, rc, "read armed timers");
	dk_sql_done(st);
	for (i = 0; i < ngone && error == 0; i++) {
		if ((error = dk_sql_stmt(s, &st, sql_timer_delete_one)) < 0)
			break;
		dk_sql_bind_int(st, 1, gone[i]);
		error = dk_sql_exec_stmt(s, st, "disarm a timer");
		dk_sql_done(st);
	}
	free(gone);
	for (i = 0; i < n && error == 0; i++) {
		if (rows[i].id)
			continue;
		if (last == TIMER_NUM_MAX) {
			error = dk_error_set(
			    DK_EINTERNAL, "instance %s has run out of timer numbers", instance_id);
			break;
		}
		if ((error = dk_sql_stmt(s, &st, sql_timer_arm)) < 0)
			break;
		int64_t id = (num << TIMER_NUM_BITS) + ++last;
		dk_sql_bind_int(st, 6, id);
		dk_sql_bind_instance(s, st, 1, instance_id);
		dk_sql_bind_text(st, 2, rows[i].kind);
		dk_sql_bind_text(st, 3, rows[i].state_id);
		dk_sql_bind_int(st, 4, rows[i].due_at);
		dk_sql_bind_text(st, 5, rows[i].payload);
		if ((error = dk_sql_exec_stmt(s, st, "add a timer")) == 0)
			rows[i].id = id;
		dk_sql_done(st);
	}
	return error;
}

const char dk_sqlite_sql_timer_due[] =
    "SELECT id, instance_id, kind, state_id, due_at, payload FROM timers "
    "WHERE due_at <= ?1 ORDER BY due_at, id LIMIT ?2";

/* Reads the timer rows st selects (the columns of dk_sqlite_sql_timer_due)
 * and resets st. */
static int read_timers(dk_store *s, sqlite3_stmt *st, dk_timer_row **out, size_t *n)
{
	dk_timer_row *rows = NULL;
	size_t count = 0, cap = 0;
	int rc, error = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		dk_timer_row *r;
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		r = &rows[count++];
		r->id = dk_sql_col_int(st, 0);
		r->instance_id = dk_sql_col_text(st, 1);
		r->kind = dk_sql_col_text(st, 2);
		r->state_id = dk_sql_col_text(st, 3);
		r->due_at = dk_sql_col_int(st, 4);
		r->payload = dk_sql_col_text(st, 5);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "list due timers");
		dk_timer_rows_free(rows, count);
		rows = NULL;
		count = 0;
	}
	dk_sql_done(st);
	*out = rows;
	*n = count;
	return error;
}

int dk_store_timer_due(dk_store *s, int64_t now, size_t limit, dk_timer_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st, dk_sqlite_sql_timer_due)) < 0)
		return error;
	dk_sql_bind_int(st, 1, now);
	dk_sql_bind_int(st, 2, limit ? (int64_t)limit : -1);
	return read_timers(s, st, out, n);
}

static const char sql_timer_due_for_instance[] =
    "SELECT id, instance_id, kind, state_id, due_at, payload FROM timers "
    "WHERE " TIMER_RANGE("?1") " AND due_at <= ?2 ORDER BY due_at, id";

int dk_store_timer_due_for_instance(dk_store *s, const char *instance_id, int64_t now,
                                    dk_timer_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st, sql_timer_due_for_instance)) < 0)
		return error;
	if ((error = dk_sql_bind_instance(s, st, 1, instance_id)) < 0) {
		dk_sql_done(st);
		return error;
	}
	dk_sql_bind_int(st, 2, now);
	return read_timers(s, st, out, n);
}

static const char sql_timer_delete[] =
    "DELETE FROM timers WHERE id = ?1 AND kind = ?2 AND state_id IS ?3 AND due_at = ?4 "
    "AND payload IS ?5";

int dk_store_timer_delete(dk_store *s, const dk_timer_row *t, int *deleted)
{
	sqlite3_stmt *st = NULL;
	int error;

	*deleted = 0;
	if ((error = dk_sql_need_tx(s, "delete a timer")) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_timer_delete)) < 0)
		return error;
	dk_sql_bind_int(st, 1, t->id);
	dk_sql_bind_text(st, 2, t->kind);
	dk_sql_bind_text(st, 3, t->state_id);
	dk_sql_bind_int(st, 4, t->due_at);
	dk_sql_bind_text(st, 5, t->payload);
	error = dk_sql_exec_stmt(s, st, "delete a timer");
	dk_sql_done(st);
	if (error == 0)
		*deleted = sqlite3_changes(s->db) > 0;
	return error;
}

static const char sql_timer_next[] = "SELECT MIN(due_at) FROM timers";

int dk_store_timer_next_due(dk_store *s, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*out = 0;
	if ((error = dk_sql_stmt(s, &st, sql_timer_next)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = dk_sql_col_int(st, 0);
	else
		error = dk_sql_error(s, rc, "find the next timer");
	dk_sql_done(st);
	return error;
}
