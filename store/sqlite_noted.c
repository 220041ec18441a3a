/*
 * sqlite_noted.c - how far the archive notes of state changes have caught
 * up with the audit trail (migration 5, table archive_noted).
 *
 * Events are append-only and every write takes the write lock before its
 * first read (BEGIN IMMEDIATE), so an event's rowid grows in commit order:
 * "the events after the mark" is an index range on the rowid, and a reader
 * never sees a later commit put an event below one it has already read.
 */
#include "store/sqlite_int.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TYPES 4

static const char sql_noted_get[] = "SELECT last_event FROM archive_noted WHERE one = 1";

int dk_store_noted_get(dk_store *s, int64_t *last)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*last = 0;
	if ((error = dk_sql_stmt(s, &st, sql_noted_get)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*last = dk_sql_col_int(st, 0);
	else if (rc != SQLITE_DONE)
		error = dk_sql_error(s, rc, "read how far the archive notes are");
	dk_sql_done(st);
	return error;
}

static const char sql_noted_set[] =
    "UPDATE archive_noted SET last_event = ?1 WHERE one = 1 AND last_event < ?1";

int dk_store_noted_set(dk_store *s, int64_t last)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "record how far the archive notes are")) < 0 ||
	    (error = dk_sql_stmt(s, &st, sql_noted_set)) < 0)
		return error;
	dk_sql_bind_int(st, 1, last);
	error = dk_sql_exec_stmt(s, st, "record how far the archive notes are");
	dk_sql_done(st);
	return error;
}

static int bind_types(dk_store *s, sqlite3_stmt *st, int first, const char *const *types)
{
	size_t n = 0;
	while (types[n])
		n++;
	if (n == 0 || n > MAX_TYPES)
		return dk_error_set(DK_EINTERNAL, "between 1 and %d event types, not %zu",
		                    MAX_TYPES, n);
	(void)s;
	/* unused places bind NULL, which no type equals */
	for (int i = 0; i < MAX_TYPES; i++)
		dk_sql_bind_text(st, first + i, (size_t)i < n ? types[i] : NULL);
	return 0;
}

static const char sql_events_last[] = "SELECT COALESCE(MAX(rowid), 0) FROM events";

static const char sql_noted_pending[] =
    "SELECT e.instance_id, e.seq, e.type, e.actor, e.on_behalf_of, e.at, e.from_state, "
    "e.to_state, e.transition, e.comment, NULL, e.rowid, i.flow_id, i.flow_version, i.state "
    "FROM events e JOIN instances i ON i.id = e.instance_id "
    "WHERE e.rowid > ?1 AND e.rowid <= ?2 AND e.type IN (?3, ?4, ?5, ?6) "
    "ORDER BY e.rowid LIMIT ?7";

int dk_store_noted_pending(dk_store *s, int64_t after, const char *const *types, size_t limit,
                           dk_event_row **out, size_t *n, int64_t *upto)
{
	sqlite3_stmt *st = NULL;
	dk_event_row *rows = NULL;
	size_t count = 0, cap = 0;
	int64_t last = 0;
	int rc, error;

	*out = NULL;
	*n = 0;
	*upto = after;
	/* The end of the trail first: what commits after this read is left
	 * for the next round, so the mark never passes an event unread. */
	if ((error = dk_sql_stmt(s, &st, sql_events_last)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		last = dk_sql_col_int(st, 0);
	else
		error = dk_sql_error(s, rc, "read the end of the audit trail");
	dk_sql_done(st);
	if (error < 0 || last <= after)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_noted_pending)) < 0)
		return error;
	dk_sql_bind_int(st, 1, after);
	dk_sql_bind_int(st, 2, last);
	if ((error = bind_types(s, st, 3, types)) < 0)
		goto cleanup;
	dk_sql_bind_int(st, 7, (int64_t)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		dk_event_row *r;
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		r = &rows[count++];
		memset(r, 0, sizeof(*r));
		dk_sql_event_row(st, r);
		r->flow_id = dk_sql_col_text(st, 12);
		r->flow_version = (int)dk_sql_col_int(st, 13);
		r->state = dk_sql_col_text(st, 14);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "read the state changes waiting for the archive");
		dk_event_rows_free(rows, count);
		rows = NULL;
		count = 0;
		goto cleanup;
	}
	*upto = limit && count == limit ? rows[count - 1].order : last;
cleanup:
	dk_sql_done(st);
	*out = rows;
	*n = count;
	return error;
}

static const char sql_noted_count[] =
    "SELECT COUNT(*) FROM events WHERE rowid > (SELECT last_event FROM archive_noted "
    "WHERE one = 1) AND type IN (?1, ?2, ?3, ?4)";

int dk_store_noted_count(dk_store *s, const char *const *types, int64_t *count)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*count = 0;
	if ((error = dk_sql_stmt(s, &st, sql_noted_count)) < 0)
		return error;
	if ((error = bind_types(s, st, 1, types)) < 0)
		goto cleanup;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*count = dk_sql_col_int(st, 0);
	else
		error = dk_sql_error(s, rc, "count the state changes waiting for the archive");
cleanup:
	dk_sql_done(st);
	return error;
}
