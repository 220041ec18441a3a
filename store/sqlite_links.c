/*
 * sqlite_links.c - what signed action links need from the store: the HMAC
 * key that signs them and the nonces of the links already used.
 *
 * Both tables are created on first use (CREATE TABLE IF NOT EXISTS inside
 * the first write), like the idempotency cache: only webhook payloads and
 * `docket serve` touch them, and an older docket keeps working on the same
 * database. The key lives here rather than in a file of the home so that
 * every process of one home signs with the same key without a race on who
 * creates it: the first transaction that needs one inserts it, and a
 * concurrent one waits for the write lock and then reads it.
 *
 * A nonce is marked used in the same transaction as the act the link
 * made: both commit or neither, so a replay is refused even after a
 * restart, and an act that was refused leaves the link usable.
 */
#include "store/sqlite_int.h"
#include "util/error.h"

#include <string.h>

static const char sql_create[] = "CREATE TABLE IF NOT EXISTS link_key (\n"
                                 "  id INTEGER PRIMARY KEY CHECK (id = 1),\n"
                                 "  key BLOB NOT NULL,\n"
                                 "  created_at INTEGER NOT NULL\n"
                                 ");\n"
                                 "CREATE TABLE IF NOT EXISTS link_used (\n"
                                 "  nonce TEXT PRIMARY KEY,\n"
                                 "  instance_id TEXT NOT NULL,\n"
                                 "  user_id TEXT NOT NULL,\n"
                                 "  transition TEXT NOT NULL,\n"
                                 "  used_at INTEGER NOT NULL\n"
                                 ");";
static const char sql_exists[] =
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'link_key'";
static const char sql_key_get[] = "SELECT key FROM link_key WHERE id = 1";
static const char sql_key_put[] =
    "INSERT OR IGNORE INTO link_key (id, key, created_at) VALUES (1, ?1, ?2)";
static const char sql_used_get[] = "SELECT user_id, used_at FROM link_used WHERE nonce = ?1";
static const char sql_used_put[] = "INSERT INTO link_used (nonce, instance_id, user_id, "
                                   "transition, used_at) VALUES (?1, ?2, ?3, ?4, ?5)";

/* 1 when the tables exist, 0 when not, or a negative dk_err. */
static int tables_exist(dk_store *s)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if ((error = dk_sql_stmt(s, &st, sql_exists)) < 0)
		return error;
	rc = sqlite3_step(st);
	dk_sql_done(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return dk_sql_error(s, rc, "look for the action link tables");
}

static int create_tables(dk_store *s)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql_create, NULL, NULL, &msg);
	sqlite3_free(msg);
	return rc == SQLITE_OK ? 0 : dk_sql_error(s, rc, "create the action link tables");
}

int dk_store_link_key_get(dk_store *s, unsigned char *out, size_t size, size_t *len)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*len = 0;
	if ((error = tables_exist(s)) < 0)
		return error;
	if (error == 0)
		return dk_error_set(DK_ENOTFOUND, "no action link key yet");
	if ((error = dk_sql_stmt(s, &st, sql_key_get)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int n = sqlite3_column_bytes(st, 0);
		const void *p = sqlite3_column_blob(st, 0);
		if (n <= 0 || (size_t)n > size || !p) {
			error =
			    dk_error_set(DK_EINTERNAL,
			                 "the stored action link key has %d bytes, not 1 to %zu; "
			                 "delete the row of table link_key to make a new one",
			                 n, size);
		} else {
			memcpy(out, p, (size_t)n);
			*len = (size_t)n;
		}
	} else if (rc == SQLITE_DONE) {
		error = dk_error_set(DK_ENOTFOUND, "no action link key yet");
	} else {
		error = dk_sql_error(s, rc, "read the action link key");
	}
	dk_sql_done(st);
	return error;
}

int dk_store_link_key_put(dk_store *s, const unsigned char *key, size_t len, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "keep the action link key")) < 0 ||
	    (error = create_tables(s)) < 0 || (error = dk_sql_stmt(s, &st, sql_key_put)) < 0)
		return error;
	sqlite3_bind_blob(st, 1, key, (int)len, SQLITE_TRANSIENT);
	dk_sql_bind_int(st, 2, now);
	error = dk_sql_exec_stmt(s, st, "keep the action link key");
	dk_sql_done(st);
	return error;
}

int dk_store_link_used(dk_store *s, const char *nonce, char **user, int64_t *at)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*user = NULL;
	*at = 0;
	if ((error = tables_exist(s)) < 0)
		return error;
	if (error == 0)
		return 0;
	if ((error = dk_sql_stmt(s, &st, sql_used_get)) < 0)
		return error;
	dk_sql_bind_text(st, 1, nonce);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*user = dk_sql_col_text(st, 0);
		*at = dk_sql_col_int(st, 1);
		error = 1;
	} else if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "look up a used action link");
	}
	dk_sql_done(st);
	return error;
}

int dk_store_link_use(dk_store *s, const char *nonce, const char *instance, const char *user,
                      const char *transition, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if ((error = dk_sql_need_tx(s, "mark an action link used")) < 0 ||
	    (error = create_tables(s)) < 0 || (error = dk_sql_stmt(s, &st, sql_used_put)) < 0)
		return error;
	dk_sql_bind_text(st, 1, nonce);
	dk_sql_bind_text(st, 2, instance);
	dk_sql_bind_text(st, 3, user);
	dk_sql_bind_text(st, 4, transition);
	dk_sql_bind_int(st, 5, now);
	rc = sqlite3_step(st);
	dk_sql_done(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return dk_error_set(DK_ECONFLICT, "this action link was already used");
	if (rc != SQLITE_DONE)
		return dk_sql_error(s, rc, "mark an action link used");
	return 0;
}

static const char sql_hook_any[] = "SELECT EXISTS (SELECT 1 FROM hooks WHERE enabled = 1)";

int dk_store_hook_any(dk_store *s, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*out = 0;
	if ((error = dk_sql_stmt(s, &st, sql_hook_any)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	else
		error = dk_sql_error(s, rc, "look for webhook subscriptions");
	dk_sql_done(st);
	return error;
}
