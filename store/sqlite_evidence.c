/*
 * sqlite_evidence.c - the database's record of archived evidence and the
 * API tokens.
 *
 * Evidence goes to git first and is recorded here second (design.md,
 * "Durability rules"), so every row names the git commit and blob holding
 * the bytes; `docket verify` walks dk_store_evidence_list_all against the
 * archive. Tokens are stored by SHA-256 only: a stolen database does not
 * hand out working tokens.
 */
#include "store/sqlite_int.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

void dk_evidence_row_free(dk_evidence_row *r)
{
	if (!r)
		return;
	free(r->instance_id);
	free(r->kind);
	free(r->name);
	free(r->state_id);
	free(r->sha256);
	free(r->git_commit);
	free(r->git_blob);
	free(r->uploader);
	memset(r, 0, sizeof(*r));
}

void dk_evidence_rows_free(dk_evidence_row *rows, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		dk_evidence_row_free(&rows[i]);
	free(rows);
}

static const char sql_evidence_add[] =
    "INSERT INTO evidence (instance_id, kind, name, state_id, visit, size, sha256, git_commit, "
    "git_blob, uploader, uploaded_at, due_at, late, days_late, event_seq) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

int dk_store_evidence_add(dk_store *s, dk_evidence_row *row)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "record evidence")) < 0)
		return error;
	if (!row->kind || !row->name || !row->sha256)
		return dk_error_set(DK_EINVALID, "evidence needs a kind, a name and a SHA-256");
	if ((error = dk_sql_stmt(s, &st, sql_evidence_add)) < 0)
		return error;
	if ((error = dk_sql_bind_instance(s, st, 1, row->instance_id)) < 0)
		goto cleanup;
	dk_sql_bind_text(st, 2, row->kind);
	dk_sql_bind_text(st, 3, row->name);
	dk_sql_bind_text(st, 4, row->state_id);
	dk_sql_bind_int(st, 5, row->visit);
	dk_sql_bind_int(st, 6, row->size);
	dk_sql_bind_text(st, 7, row->sha256);
	dk_sql_bind_text(st, 8, row->git_commit);
	dk_sql_bind_text(st, 9, row->git_blob);
	dk_sql_bind_text(st, 10, row->uploader);
	dk_sql_bind_int(st, 11, row->uploaded_at);
	dk_sql_bind_time(st, 12, row->due_at);
	dk_sql_bind_int(st, 13, row->late ? 1 : 0);
	dk_sql_bind_int(st, 14, row->days_late);
	dk_sql_bind_time(st, 15, row->event_seq);
	if (sqlite3_step(st) != SQLITE_DONE) {
		int ext = sqlite3_extended_errcode(s->db);
		if (ext == SQLITE_CONSTRAINT_UNIQUE)
			error = dk_error_set(DK_ECONFLICT,
			                     "instance %s already holds evidence named '%s'; "
			                     "upload it under another name",
			                     row->instance_id, row->name);
		else
			error = dk_sql_error(s, ext, "record evidence");
		goto cleanup;
	}
	row->id = sqlite3_last_insert_rowid(s->db);
cleanup:
	dk_sql_done(st);
	return error;
}

#define EVIDENCE_COLS                                                                              \
	"instance_id, kind, name, state_id, visit, size, sha256, git_commit, git_blob, uploader, " \
	"uploaded_at, due_at, late, days_late, event_seq, id"

static void read_evidence(sqlite3_stmt *st, dk_evidence_row *r)
{
	r->instance_id = dk_sql_col_text(st, 0);
	r->kind = dk_sql_col_text(st, 1);
	r->name = dk_sql_col_text(st, 2);
	r->state_id = dk_sql_col_text(st, 3);
	r->visit = (int)dk_sql_col_int(st, 4);
	r->size = dk_sql_col_int(st, 5);
	r->sha256 = dk_sql_col_text(st, 6);
	r->git_commit = dk_sql_col_text(st, 7);
	r->git_blob = dk_sql_col_text(st, 8);
	r->uploader = dk_sql_col_text(st, 9);
	r->uploaded_at = dk_sql_col_int(st, 10);
	r->due_at = dk_sql_col_int(st, 11);
	r->late = (int)dk_sql_col_int(st, 12);
	r->days_late = (int)dk_sql_col_int(st, 13);
	r->event_seq = dk_sql_col_int(st, 14);
	r->id = dk_sql_col_int(st, 15);
}

static int read_evidence_rows(dk_store *s, sqlite3_stmt *st, dk_evidence_row **out, size_t *n)
{
	dk_evidence_row *rows = NULL;
	size_t count = 0, cap = 0;
	int rc, error = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		read_evidence(st, &rows[count++]);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "list evidence");
		dk_evidence_rows_free(rows, count);
		rows = NULL;
		count = 0;
	}
	*out = rows;
	*n = count;
	return error;
}

static const char sql_evidence_list[] =
    "SELECT " EVIDENCE_COLS " FROM evidence WHERE instance_id = ?1 ORDER BY id";
static const char sql_evidence_all[] =
    "SELECT " EVIDENCE_COLS " FROM evidence ORDER BY instance_id, id";
static const char sql_evidence_get[] =
    "SELECT " EVIDENCE_COLS " FROM evidence WHERE instance_id = ?1 AND name = ?2";

int dk_store_evidence_list(dk_store *s, const char *instance_id, dk_evidence_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if (dk_sql_instance_num(instance_id) == 0)
		return 0;
	if ((error = dk_sql_stmt(s, &st, sql_evidence_list)) < 0)
		return error;
	dk_sql_bind_int(st, 1, dk_sql_instance_num(instance_id));
	error = read_evidence_rows(s, st, out, n);
	dk_sql_done(st);
	return error;
}

int dk_store_evidence_list_all(dk_store *s, dk_evidence_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st, sql_evidence_all)) < 0)
		return error;
	error = read_evidence_rows(s, st, out, n);
	dk_sql_done(st);
	return error;
}

int dk_store_evidence_get(dk_store *s, const char *instance_id, const char *name,
                          dk_evidence_row *out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	memset(out, 0, sizeof(*out));
	if ((error = dk_sql_stmt(s, &st, sql_evidence_get)) < 0)
		return error;
	if ((error = dk_sql_bind_instance(s, st, 1, instance_id)) < 0)
		goto cleanup;
	dk_sql_bind_text(st, 2, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_evidence(st, out);
	else if (rc == SQLITE_DONE)
		error =
		    dk_error_set(DK_ENOTFOUND,
		                 "instance %s holds no evidence named '%s'; see docket evidence %s",
		                 instance_id, name ? name : "", instance_id);
	else
		error = dk_sql_error(s, rc, "read evidence");
cleanup:
	dk_sql_done(st);
	return error;
}

/* ---- tokens ------------------------------------------------------------ */

void dk_token_row_free(dk_token_row *r)
{
	if (!r)
		return;
	free(r->user_id);
	free(r->sha256);
	free(r->name);
	memset(r, 0, sizeof(*r));
}

void dk_token_rows_free(dk_token_row *rows, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		dk_token_row_free(&rows[i]);
	free(rows);
}

static const char sql_token_add[] =
    "INSERT INTO tokens (user_id, sha256, name, created_at, expires_at, revoked) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

int dk_store_token_add(dk_store *s, dk_token_row *row)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "add a token")) < 0)
		return error;
	if (!row->user_id || !row->sha256)
		return dk_error_set(DK_EINVALID, "a token needs a user and a SHA-256");
	if ((error = dk_sql_stmt(s, &st, sql_token_add)) < 0)
		return error;
	dk_sql_bind_text(st, 1, row->user_id);
	dk_sql_bind_text(st, 2, row->sha256);
	dk_sql_bind_text(st, 3, row->name);
	dk_sql_bind_int(st, 4, row->created_at);
	dk_sql_bind_int(st, 5, row->expires_at);
	dk_sql_bind_int(st, 6, row->revoked ? 1 : 0);
	error = dk_sql_exec_stmt(s, st, "add a token");
	dk_sql_done(st);
	if (error == 0)
		row->id = sqlite3_last_insert_rowid(s->db);
	return error;
}

#define TOKEN_COLS "id, user_id, sha256, name, created_at, expires_at, revoked"

static void read_token(sqlite3_stmt *st, dk_token_row *r)
{
	r->id = dk_sql_col_int(st, 0);
	r->user_id = dk_sql_col_text(st, 1);
	r->sha256 = dk_sql_col_text(st, 2);
	r->name = dk_sql_col_text(st, 3);
	r->created_at = dk_sql_col_int(st, 4);
	r->expires_at = dk_sql_col_int(st, 5);
	r->revoked = (int)dk_sql_col_int(st, 6);
}

static const char sql_token_find[] = "SELECT " TOKEN_COLS " FROM tokens WHERE sha256 = ?1";

int dk_store_token_find_by_hash(dk_store *s, const char *sha256, dk_token_row *out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	memset(out, 0, sizeof(*out));
	if ((error = dk_sql_stmt(s, &st, sql_token_find)) < 0)
		return error;
	dk_sql_bind_text(st, 1, sha256);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_token(st, out);
	else if (rc == SQLITE_DONE)
		error = dk_error_set(DK_ENOTFOUND, "unknown token");
	else
		error = dk_sql_error(s, rc, "look up a token");
	dk_sql_done(st);
	return error;
}

static const char sql_token_list_all[] = "SELECT " TOKEN_COLS " FROM tokens ORDER BY id";
static const char sql_token_list_user[] =
    "SELECT " TOKEN_COLS " FROM tokens WHERE user_id = ?1 ORDER BY id";

int dk_store_token_list(dk_store *s, const char *user_id, dk_token_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	dk_token_row *rows = NULL;
	size_t count = 0, cap = 0;
	int rc, error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st, user_id ? sql_token_list_user : sql_token_list_all)) < 0)
		return error;
	if (user_id)
		dk_sql_bind_text(st, 1, user_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		read_token(st, &rows[count++]);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "list tokens");
		dk_token_rows_free(rows, count);
		rows = NULL;
		count = 0;
	}
	dk_sql_done(st);
	*out = rows;
	*n = count;
	return error;
}

static const char sql_token_revoke[] = "UPDATE tokens SET revoked = 1 WHERE id = ?1";

int dk_store_token_revoke(dk_store *s, int64_t id)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "revoke a token")) < 0)
		return error;
	if ((error = dk_sql_stmt(s, &st, sql_token_revoke)) < 0)
		return error;
	dk_sql_bind_int(st, 1, id);
	error = dk_sql_exec_stmt(s, st, "revoke a token");
	dk_sql_done(st);
	if (error == 0 && sqlite3_changes(s->db) == 0)
		error = dk_error_set(DK_ENOTFOUND, "no token %lld", (long long)id);
	return error;
}
