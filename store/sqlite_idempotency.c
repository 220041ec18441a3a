/*
 * sqlite_idempotency.c - the first answer to each (user, Idempotency-Key)
 * of the API, so a retried POST gets that answer again instead of acting
 * twice. Keys are kept for a day.
 *
 * The table is created on first use (CREATE TABLE IF NOT EXISTS inside the
 * first write) rather than by a numbered migration: it is a cache of
 * answers that only `docket serve` touches, and an older docket that
 * never heard of it keeps working on the same database.
 */
#include "store/sqlite_int.h"
#include "util/buf.h"
#include "util/error.h"

#include <string.h>

#define KEEP_SECONDS 86400

static const char sql_create[] = "CREATE TABLE IF NOT EXISTS idempotency (\n"
                                 "  user_id TEXT NOT NULL,\n"
                                 "  key TEXT NOT NULL,\n"
                                 "  request TEXT NOT NULL,\n"
                                 "  status INTEGER NOT NULL,\n"
                                 "  body TEXT NOT NULL,\n"
                                 "  created_at INTEGER NOT NULL,\n"
                                 "  PRIMARY KEY (user_id, key)\n"
                                 ");\n"
                                 "CREATE INDEX IF NOT EXISTS idempotency_age ON idempotency "
                                 "(created_at);";
static const char sql_exists[] =
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'idempotency'";
static const char sql_get[] =
    "SELECT request, status, body FROM idempotency WHERE user_id = ?1 AND key = ?2";
static const char sql_put[] = "INSERT OR IGNORE INTO idempotency (user_id, key, request, status, "
                              "body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_prune[] = "DELETE FROM idempotency WHERE created_at < ?1";

int dk_store_idempotency_get(dk_store *s, const char *user, const char *key, char **request,
                             int *status, char **body)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*request = *body = NULL;
	*status = 0;
	if ((error = dk_sql_stmt(s, &st, sql_exists)) < 0)
		return error;
	rc = sqlite3_step(st);
	dk_sql_done(st);
	if (rc == SQLITE_DONE)
		return dk_error_set(DK_ENOTFOUND, "no answer kept for that key");
	if (rc != SQLITE_ROW)
		return dk_sql_error(s, rc, "look for the idempotency table");
	if ((error = dk_sql_stmt(s, &st, sql_get)) < 0)
		return error;
	dk_sql_bind_text(st, 1, user);
	dk_sql_bind_text(st, 2, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*request = dk_strdup((const char *)sqlite3_column_text(st, 0));
		*status = sqlite3_column_int(st, 1);
		*body = dk_strdup((const char *)sqlite3_column_text(st, 2));
	} else if (rc == SQLITE_DONE) {
		error = dk_error_set(DK_ENOTFOUND, "no answer kept for that key");
	} else {
		error = dk_sql_error(s, rc, "look up an idempotency key");
	}
	dk_sql_done(st);
	return error;
}

int dk_store_idempotency_put(dk_store *s, const char *user, const char *key, const char *request,
                             int status, const char *body, int64_t now)
{
	sqlite3_stmt *st = NULL;
	char *msg = NULL;
	int rc, error;

	if ((error = dk_sql_need_tx(s, "keep an idempotent answer")) < 0)
		return error;
	if ((rc = sqlite3_exec(s->db, sql_create, NULL, NULL, &msg)) != SQLITE_OK) {
		sqlite3_free(msg);
		return dk_sql_error(s, rc, "create the idempotency table");
	}
	if ((error = dk_sql_stmt(s, &st, sql_prune)) < 0)
		return error;
	dk_sql_bind_int(st, 1, now - KEEP_SECONDS);
	rc = sqlite3_step(st);
	dk_sql_done(st);
	if (rc != SQLITE_DONE)
		return dk_sql_error(s, rc, "forget old idempotency keys");
	if ((error = dk_sql_stmt(s, &st, sql_put)) < 0)
		return error;
	dk_sql_bind_text(st, 1, user);
	dk_sql_bind_text(st, 2, key);
	dk_sql_bind_text(st, 3, request);
	dk_sql_bind_int(st, 4, status);
	dk_sql_bind_text(st, 5, body);
	dk_sql_bind_int(st, 6, now);
	rc = sqlite3_step(st);
	dk_sql_done(st);
	if (rc != SQLITE_DONE)
		return dk_sql_error(s, rc, "keep an idempotent answer");
	return 0;
}
