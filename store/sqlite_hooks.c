/*
 * sqlite_hooks.c - webhook subscriptions and the outbox of deliveries.
 *
 * The outbox is what makes webhooks at-least-once without sending from
 * inside a transaction: a command's transaction writes one pending delivery
 * per matching subscription next to its events, and the dispatcher reads
 * them afterwards. A delivery's body is fixed when it is enqueued, so every
 * retry signs and sends the very same bytes under the same id.
 *
 * Per-instance order: a delivery is not handed out while an older pending
 * delivery of the same subscription and instance still waits, so a
 * receiver never sees "completed" before "started" because of a retry.
 */
#include "store/sqlite_int.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- subscriptions ----------------------------------------------------- */

void dk_hook_row_free(dk_hook_row *r)
{
	if (!r)
		return;
	free(r->url);
	free(r->events);
	free(r->flow);
	free(r->secret);
	free(r->old_secret);
	memset(r, 0, sizeof(*r));
}

void dk_hook_rows_free(dk_hook_row *rows, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		dk_hook_row_free(&rows[i]);
	free(rows);
}

static const char sql_hook_add[] =
    "INSERT INTO hooks (url, events, flow, secret, old_secret, old_secret_until, enabled, "
    "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

int dk_store_hook_add(dk_store *s, dk_hook_row *row)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "add a webhook")) < 0)
		return error;
	if (!row->url || !row->secret)
		return dk_error_set(DK_EINVALID, "a webhook needs a URL and a secret");
	if ((error = dk_sql_stmt(s, &st, sql_hook_add)) < 0)
		return error;
	dk_sql_bind_text(st, 1, row->url);
	dk_sql_bind_text(st, 2, row->events ? row->events : "");
	dk_sql_bind_text(st, 3, row->flow);
	dk_sql_bind_text(st, 4, row->secret);
	dk_sql_bind_text(st, 5, row->old_secret);
	dk_sql_bind_int(st, 6, row->old_secret_until);
	dk_sql_bind_int(st, 7, row->enabled ? 1 : 0);
	dk_sql_bind_int(st, 8, row->created_at);
	error = dk_sql_exec_stmt(s, st, "add a webhook");
	dk_sql_done(st);
	if (error == 0)
		row->id = sqlite3_last_insert_rowid(s->db);
	return error;
}

#define HOOK_COLS "id, url, events, flow, secret, old_secret, old_secret_until, enabled, created_at"

static void read_hook(sqlite3_stmt *st, dk_hook_row *r)
{
	r->id = dk_sql_col_int(st, 0);
	r->url = dk_sql_col_text(st, 1);
	r->events = dk_sql_col_text(st, 2);
	r->flow = dk_sql_col_text(st, 3);
	r->secret = dk_sql_col_text(st, 4);
	r->old_secret = dk_sql_col_text(st, 5);
	r->old_secret_until = dk_sql_col_int(st, 6);
	r->enabled = (int)dk_sql_col_int(st, 7);
	r->created_at = dk_sql_col_int(st, 8);
}

static const char sql_hook_list[] = "SELECT " HOOK_COLS " FROM hooks ORDER BY id";

int dk_store_hook_list(dk_store *s, dk_hook_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	dk_hook_row *rows = NULL;
	size_t count = 0, cap = 0;
	int rc, error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st, sql_hook_list)) < 0)
		return error;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		read_hook(st, &rows[count++]);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "list webhooks");
		dk_hook_rows_free(rows, count);
		rows = NULL;
		count = 0;
	}
	dk_sql_done(st);
	*out = rows;
	*n = count;
	return error;
}

static const char sql_hook_get[] = "SELECT " HOOK_COLS " FROM hooks WHERE id = ?1";

static int no_hook(int64_t id)
{
	return dk_error_set(DK_ENOTFOUND, "no webhook %lld; see docket hooks list", (long long)id);
}

int dk_store_hook_get(dk_store *s, int64_t id, dk_hook_row *out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	memset(out, 0, sizeof(*out));
	if ((error = dk_sql_stmt(s, &st, sql_hook_get)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_hook(st, out);
	else if (rc == SQLITE_DONE)
		error = no_hook(id);
	else
		error = dk_sql_error(s, rc, "read a webhook");
	dk_sql_done(st);
	return error;
}

/* Runs a one-row UPDATE/DELETE on hooks; DK_ENOTFOUND when no row
 * changed. */
static int hook_change(dk_store *s, sqlite3_stmt *st, int64_t id, const char *what)
{
	int error = dk_sql_exec_stmt(s, st, what);
	dk_sql_done(st);
	if (error == 0 && sqlite3_changes(s->db) == 0)
		error = no_hook(id);
	return error;
}

static const char sql_hook_enable[] = "UPDATE hooks SET enabled = ?2 WHERE id = ?1";

int dk_store_hook_set_enabled(dk_store *s, int64_t id, int enabled)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "change a webhook")) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_hook_enable)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	dk_sql_bind_int(st, 2, enabled ? 1 : 0);
	return hook_change(s, st, id, "change a webhook");
}

static const char sql_hook_remove[] = "DELETE FROM hooks WHERE id = ?1";

int dk_store_hook_remove(dk_store *s, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "remove a webhook")) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_hook_remove)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	return hook_change(s, st, id, "remove a webhook");
}

static const char sql_hook_rotate[] =
    "UPDATE hooks SET old_secret = secret, old_secret_until = ?3, secret = ?2 WHERE id = ?1";

int dk_store_hook_rotate(dk_store *s, int64_t id, const char *new_secret, int64_t overlap_until)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "rotate a webhook secret")) < 0)
		return error;
	if (!new_secret || !*new_secret)
		return dk_error_set(DK_EINVALID, "a new webhook secret is needed");
	if ((error = dk_sql_stmt(s, &st, sql_hook_rotate)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	dk_sql_bind_text(st, 2, new_secret);
	dk_sql_bind_int(st, 3, overlap_until);
	return hook_change(s, st, id, "rotate a webhook secret");
}

/* ---- the outbox -------------------------------------------------------- */

void dk_delivery_row_free(dk_delivery_row *r)
{
	if (!r)
		return;
	free(r->event_type);
	free(r->instance_id);
	free(r->body);
	free(r->last_error);
	memset(r, 0, sizeof(*r));
}

void dk_delivery_rows_free(dk_delivery_row *rows, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		dk_delivery_row_free(&rows[i]);
	free(rows);
}

static const char *status_text(dk_delivery_status st)
{
	switch (st) {
	case DK_DELIVERY_DELIVERED: return "delivered";
	case DK_DELIVERY_DEAD: return "dead";
	default: return "pending";
	}
}

static dk_delivery_status status_value(const unsigned char *t)
{
	if (t && strcmp((const char *)t, "delivered") == 0)
		return DK_DELIVERY_DELIVERED;
	if (t && strcmp((const char *)t, "dead") == 0)
		return DK_DELIVERY_DEAD;
	return DK_DELIVERY_PENDING;
}

/* One statement for all subscriptions: events "" matches every type, else
 * the type must be one of its space-separated words (instr on padded
 * strings, so "task" does not match "task.created"). */
/* The subscriptions an event of type ?1 on flow ?2 goes to. */
#define OUTBOX_MATCH                                                                               \
	"FROM hooks WHERE enabled = 1 "                                                            \
	"AND (events = '' OR instr(' ' || events || ' ', ' ' || ?1 || ' ') > 0) "                  \
	"AND (flow IS NULL OR flow = ?2)"

static const char sql_outbox_enqueue[] =
    "INSERT INTO deliveries (hook_id, event_type, instance_id, body, created_at, attempts, "
    "next_attempt_at, status) "
    "SELECT id, ?1, ?3, ?4, ?5, 0, ?5, 'pending' " OUTBOX_MATCH " ORDER BY id";
static const char sql_outbox_wanted[] = "SELECT EXISTS (SELECT 1 " OUTBOX_MATCH ")";

int dk_store_outbox_wanted(dk_store *s, const char *event_type, const char *flow_id, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*out = 0;
	if ((error = dk_sql_stmt(s, &st, sql_outbox_wanted)) < 0)
		return error;
	dk_sql_bind_text(st, 1, event_type);
	dk_sql_bind_text(st, 2, flow_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = (int)dk_sql_col_int(st, 0);
	else
		error = dk_sql_error(s, rc, "look for webhook subscriptions");
	dk_sql_done(st);
	return error;
}

int dk_store_outbox_enqueue(dk_store *s, const char *event_type, const char *flow_id,
                            const char *instance_id, const char *body, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "queue webhooks")) < 0)
		return error;
	if (!event_type || !*event_type || !body)
		return dk_error_set(DK_EINVALID, "a webhook needs an event type and a body");
	if ((error = dk_sql_stmt(s, &st, sql_outbox_enqueue)) < 0)
		return error;
	dk_sql_bind_text(st, 1, event_type);
	dk_sql_bind_text(st, 2, flow_id);
	dk_sql_bind_text(st, 3, instance_id);
	dk_sql_bind_text(st, 4, body);
	dk_sql_bind_int(st, 5, now);
	error = dk_sql_exec_stmt(s, st, "queue webhooks");
	dk_sql_done(st);
	return error;
}

#define DELIVERY_COLS                                                                              \
	"d.id, d.hook_id, d.event_type, d.instance_id, d.body, d.created_at, d.attempts, "         \
	"d.next_attempt_at, d.status, d.last_status_code, d.last_error, d.delivered_at"

static int read_deliveries(dk_store *s, sqlite3_stmt *st, dk_delivery_row **out, size_t *n)
{
	dk_delivery_row *rows = NULL;
	size_t count = 0, cap = 0;
	int rc, error = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		dk_delivery_row *r;
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		r = &rows[count++];
		r->id = dk_sql_col_int(st, 0);
		r->hook_id = dk_sql_col_int(st, 1);
		r->event_type = dk_sql_col_text(st, 2);
		r->instance_id = dk_sql_col_text(st, 3);
		r->body = dk_sql_col_text(st, 4);
		r->created_at = dk_sql_col_int(st, 5);
		r->attempts = (int)dk_sql_col_int(st, 6);
		r->next_attempt_at = dk_sql_col_int(st, 7);
		r->status = status_value(sqlite3_column_text(st, 8));
		r->last_status_code = (int)dk_sql_col_int(st, 9);
		r->last_error = dk_sql_col_text(st, 10);
		r->delivered_at = dk_sql_col_int(st, 11);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "list deliveries");
		dk_delivery_rows_free(rows, count);
		rows = NULL;
		count = 0;
	}
	*out = rows;
	*n = count;
	return error;
}

const char dk_sqlite_sql_outbox_due[] =
    "SELECT " DELIVERY_COLS " FROM deliveries d "
    "WHERE d.status = 'pending' AND d.id > ?3 AND d.next_attempt_at <= ?1 "
    "AND EXISTS (SELECT 1 FROM hooks h WHERE h.id = d.hook_id AND h.enabled = 1) "
    "AND (d.instance_id IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries o "
    "WHERE o.status = 'pending' AND o.hook_id = d.hook_id AND o.instance_id = d.instance_id "
    "AND o.id < d.id)) ORDER BY d.id LIMIT ?2";

int dk_store_outbox_due(dk_store *s, int64_t now, size_t limit, dk_delivery_row **out, size_t *n)
{
	return dk_store_outbox_due_after(s, now, 0, limit, out, n);
}

int dk_store_outbox_due_after(dk_store *s, int64_t now, int64_t after, size_t limit,
                              dk_delivery_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st, dk_sqlite_sql_outbox_due)) < 0)
		return error;
	dk_sql_bind_int(st, 1, now);
	dk_sql_bind_int(st, 2, limit ? (int64_t)limit : -1);
	dk_sql_bind_int(st, 3, after);
	error = read_deliveries(s, st, out, n);
	dk_sql_done(st);
	return error;
}

static const char sql_delivery_record[] =
    "UPDATE deliveries SET status = ?2, attempts = attempts + 1, last_status_code = ?3, "
    "last_error = ?4, next_attempt_at = CASE WHEN ?2 = 'pending' THEN ?5 ELSE next_attempt_at "
    "END, delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_at END "
    "WHERE id = ?1";

static int no_delivery(int64_t id)
{
	return dk_error_set(DK_ENOTFOUND, "no delivery %lld; see docket deliveries", (long long)id);
}

int dk_store_delivery_record(dk_store *s, int64_t id, dk_delivery_status status, int http_status,
                             const char *error_text, int64_t next_attempt_at, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "record a delivery attempt")) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_delivery_record)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	dk_sql_bind_text(st, 2, status_text(status));
	dk_sql_bind_int(st, 3, http_status);
	dk_sql_bind_text(st, 4, error_text);
	dk_sql_bind_int(st, 5, next_attempt_at);
	dk_sql_bind_int(st, 6, now);
	error = dk_sql_exec_stmt(s, st, "record a delivery attempt");
	dk_sql_done(st);
	if (error == 0 && sqlite3_changes(s->db) == 0)
		error = no_delivery(id);
	return error;
}

static const char sql_delivery_list[] = "SELECT " DELIVERY_COLS " FROM deliveries d ORDER BY d.id";
static const char sql_delivery_list_failed[] =
    "SELECT " DELIVERY_COLS " FROM deliveries d WHERE d.status = 'dead' "
    "OR (d.status = 'pending' AND d.attempts > 0) ORDER BY d.id";
static const char sql_delivery_get[] = "SELECT " DELIVERY_COLS " FROM deliveries d WHERE d.id = ?1";

int dk_store_delivery_list(dk_store *s, int failed_only, dk_delivery_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st,
	                         failed_only ? sql_delivery_list_failed : sql_delivery_list)) < 0)
		return error;
	error = read_deliveries(s, st, out, n);
	dk_sql_done(st);
	return error;
}

int dk_store_delivery_get(dk_store *s, int64_t id, dk_delivery_row *out)
{
	sqlite3_stmt *st = NULL;
	dk_delivery_row *rows = NULL;
	size_t n = 0;
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = dk_sql_stmt(s, &st, sql_delivery_get)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	error = read_deliveries(s, st, &rows, &n);
	dk_sql_done(st);
	if (error < 0)
		return error;
	if (n == 0)
		return no_delivery(id);
	*out = rows[0];
	free(rows);
	return 0;
}

static const char sql_delivery_status[] = "SELECT status FROM deliveries WHERE id = ?1";
static const char sql_delivery_requeue[] =
    "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?2, "
    "last_status_code = 0, last_error = NULL, delivered_at = 0 WHERE id = ?1";

int dk_store_delivery_requeue(dk_store *s, int64_t id, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if ((error = dk_sql_need_tx(s, "redeliver a webhook")) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_delivery_status)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		error = no_delivery(id);
	else if (rc != SQLITE_ROW)
		error = dk_sql_error(s, rc, "read a delivery");
	else if (status_value(sqlite3_column_text(st, 0)) == DK_DELIVERY_PENDING)
		error = dk_error_set(DK_ECONFLICT,
		                     "delivery %lld is still pending; it will be retried by itself",
		                     (long long)id);
	dk_sql_done(st);
	if (error < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_delivery_requeue)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	dk_sql_bind_int(st, 2, now);
	error = dk_sql_exec_stmt(s, st, "redeliver a webhook");
	dk_sql_done(st);
	return error;
}

static const char sql_outbox_next[] =
    "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'";

int dk_store_outbox_next_due(dk_store *s, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*out = 0;
	if ((error = dk_sql_stmt(s, &st, sql_outbox_next)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = dk_sql_col_int(st, 0);
	else
		error = dk_sql_error(s, rc, "find the next delivery");
	dk_sql_done(st);
	return error;
}
