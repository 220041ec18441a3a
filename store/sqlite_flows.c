/*
 * sqlite_flows.c - deployed flow versions and the org directory.
 *
 * A flow version is immutable once deployed: instances keep running on the
 * version they started with, so changed bytes under the same version are
 * refused rather than silently replacing what running instances rely on.
 */
#include "store/sqlite_int.h"
#include "util/error.h"
#include "util/file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void dk_flow_row_free(dk_flow_row *r)
{
	if (!r)
		return;
	free(r->flow_id);
	free(r->bytes);
	free(r->title);
	memset(r, 0, sizeof(*r));
}

void dk_flow_rows_free(dk_flow_row *rows, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		dk_flow_row_free(&rows[i]);
	free(rows);
}

static const char sql_flow_sha[] = "SELECT sha256 FROM flows WHERE flow_id = ?1 AND version = ?2";
static const char sql_flow_insert[] =
    "INSERT INTO flows (flow_id, version, sha256, bytes, title, deployed_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

int dk_store_flow_put(dk_store *s, const char *flow_id, int version, const char *title,
                      const void *bytes, size_t len, int64_t now, int *unchanged)
{
	sqlite3_stmt *st = NULL;
	char sha[65];
	int rc, error;

	if (unchanged)
		*unchanged = 0;
	if ((error = dk_sql_need_tx(s, "deploy a flow")) < 0)
		return error;
	if (!flow_id || !*flow_id || version < 1)
		return dk_error_set(DK_EINVALID, "a flow needs an id and a version of at least 1");
	dk_sha256_hex(sha, bytes, len);

	if ((error = dk_sql_stmt(s, &st, sql_flow_sha)) < 0)
		return error;
	dk_sql_bind_text(st, 1, flow_id);
	dk_sql_bind_int(st, 2, version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int same = strcmp((const char *)sqlite3_column_text(st, 0), sha) == 0;
		dk_sql_done(st);
		if (!same)
			return dk_error_set(DK_ECONFLICT,
			                    "flow %s version %d is already deployed with different "
			                    "content; raise version= in the file to deploy a new "
			                    "version",
			                    flow_id, version);
		if (unchanged)
			*unchanged = 1;
		return 0;
	}
	dk_sql_done(st);
	if (rc != SQLITE_DONE)
		return dk_sql_error(s, rc, "look up a flow");

	if ((error = dk_sql_stmt(s, &st, sql_flow_insert)) < 0)
		return error;
	dk_sql_bind_text(st, 1, flow_id);
	dk_sql_bind_int(st, 2, version);
	dk_sql_bind_text(st, 3, sha);
	sqlite3_bind_blob(st, 4, len ? bytes : "", (int)len, SQLITE_STATIC);
	dk_sql_bind_text(st, 5, title);
	dk_sql_bind_int(st, 6, now);
	error = dk_sql_exec_stmt(s, st, "deploy a flow");
	dk_sql_done(st);
	return error;
}

static void read_flow(sqlite3_stmt *st, dk_flow_row *r, int with_bytes)
{
	const char *sha = (const char *)sqlite3_column_text(st, 2);

	memset(r, 0, sizeof(*r));
	r->flow_id = dk_sql_col_text(st, 0);
	r->version = (int)dk_sql_col_int(st, 1);
	snprintf(r->sha256, sizeof(r->sha256), "%s", sha ? sha : "");
	r->title = dk_sql_col_text(st, 3);
	r->deployed_at = dk_sql_col_int(st, 4);
	if (with_bytes) {
		const void *b = sqlite3_column_blob(st, 5);
		r->len = (size_t)sqlite3_column_bytes(st, 5);
		r->bytes = dk_malloc(r->len + 1);
		if (r->len)
			memcpy(r->bytes, b, r->len);
		r->bytes[r->len] = '\0';
	}
}

static const char sql_flow_get[] =
    "SELECT flow_id, version, sha256, title, deployed_at, bytes FROM flows "
    "WHERE flow_id = ?1 AND version = ?2";
static const char sql_flow_get_latest[] =
    "SELECT flow_id, version, sha256, title, deployed_at, bytes FROM flows "
    "WHERE flow_id = ?1 ORDER BY version DESC LIMIT 1";

int dk_store_flow_get(dk_store *s, const char *flow_id, int version, dk_flow_row *out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	memset(out, 0, sizeof(*out));
	if ((error = dk_sql_stmt(s, &st, version ? sql_flow_get : sql_flow_get_latest)) < 0)
		return error;
	dk_sql_bind_text(st, 1, flow_id);
	if (version)
		dk_sql_bind_int(st, 2, version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_flow(st, out, 1);
	else if (rc == SQLITE_DONE && version)
		error = dk_error_set(DK_ENOTFOUND,
		                     "no flow %s version %d is deployed; see docket list --flows",
		                     flow_id ? flow_id : "", version);
	else if (rc == SQLITE_DONE)
		error = dk_error_set(DK_ENOTFOUND, "no flow '%s' is deployed; deploy it first",
		                     flow_id ? flow_id : "");
	else
		error = dk_sql_error(s, rc, "read a flow");
	dk_sql_done(st);
	return error;
}

static const char sql_flow_list_all[] =
    "SELECT flow_id, version, sha256, title, deployed_at FROM flows ORDER BY flow_id, version";
static const char sql_flow_list_latest[] =
    "SELECT flow_id, version, sha256, title, deployed_at FROM flows f "
    "WHERE version = (SELECT MAX(version) FROM flows g WHERE g.flow_id = f.flow_id) "
    "ORDER BY flow_id";

int dk_store_flow_list(dk_store *s, int all_versions, dk_flow_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	dk_flow_row *rows = NULL;
	size_t count = 0, cap = 0;
	int rc, error;

	*out = NULL;
	*n = 0;
	if ((error = dk_sql_stmt(s, &st, all_versions ? sql_flow_list_all : sql_flow_list_latest)) <
	    0)
		return error;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows = dk_sql_grow(rows, &cap, count, sizeof(*rows));
		read_flow(st, &rows[count++], 0);
	}
	if (rc != SQLITE_DONE) {
		error = dk_sql_error(s, rc, "list flows");
		dk_flow_rows_free(rows, count);
		rows = NULL;
		count = 0;
	}
	dk_sql_done(st);
	*out = rows;
	*n = count;
	return error;
}

/* ---- the org directory ------------------------------------------------- */

static const char sql_org_clear_users[] = "DELETE FROM users";
static const char sql_org_clear_depts[] = "DELETE FROM depts";
static const char sql_org_clear_holidays[] = "DELETE FROM holidays";
static const char sql_org_file[] =
    "INSERT OR REPLACE INTO org_file (id, bytes, sha256, timezone, loaded_at) "
    "VALUES (1, ?1, ?2, ?3, ?4)";
static const char sql_org_user[] =
    "INSERT INTO users (id, name, email, dept, roles) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char sql_org_dept[] =
    "INSERT INTO depts (id, name, head, division_leader) VALUES (?1, ?2, ?3, ?4)";
static const char sql_org_holiday[] = "INSERT OR IGNORE INTO holidays (date) VALUES (?1)";

static int run_simple(dk_store *s, const char *sql, const char *what)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_stmt(s, &st, sql)) < 0)
		return error;
	error = dk_sql_exec_stmt(s, st, what);
	dk_sql_done(st);
	return error;
}

int dk_store_org_replace(dk_store *s, const dk_org *org, const void *bytes, size_t len, int64_t now)
{
	sqlite3_stmt *st = NULL;
	dk_buf roles = DK_BUF_INIT;
	char sha[65];
	size_t i, j;
	int error;

	if ((error = dk_sql_need_tx(s, "load the org directory")) < 0)
		return error;
	if ((error = run_simple(s, sql_org_clear_users, "replace the org directory")) < 0 ||
	    (error = run_simple(s, sql_org_clear_depts, "replace the org directory")) < 0 ||
	    (error = run_simple(s, sql_org_clear_holidays, "replace the org directory")) < 0)
		return error;

	dk_sha256_hex(sha, bytes, len);
	if ((error = dk_sql_stmt(s, &st, sql_org_file)) < 0)
		return error;
	sqlite3_bind_blob(st, 1, len ? bytes : "", (int)len, SQLITE_STATIC);
	dk_sql_bind_text(st, 2, sha);
	dk_sql_bind_text(st, 3, org->timezone ? org->timezone : "UTC");
	dk_sql_bind_int(st, 4, now);
	error = dk_sql_exec_stmt(s, st, "store the org file");
	dk_sql_done(st);
	if (error < 0)
		return error;

	if ((error = dk_sql_stmt(s, &st, sql_org_user)) < 0)
		return error;
	for (i = 0; i < org->nusers && error == 0; i++) {
		const dk_user *u = &org->users[i];
		dk_buf_clear(&roles);
		for (j = 0; j < u->nroles; j++) {
			if (j)
				dk_buf_putc(&roles, ' ');
			dk_buf_puts(&roles, u->roles[j]);
		}
		dk_sql_bind_text(st, 1, u->id);
		dk_sql_bind_text(st, 2, u->name ? u->name : u->id);
		dk_sql_bind_text(st, 3, u->email);
		dk_sql_bind_text(st, 4, u->dept);
		dk_sql_bind_text(st, 5, dk_buf_cstr(&roles));
		error = dk_sql_exec_stmt(s, st, "store a user");
		dk_sql_done(st);
	}
	dk_buf_free(&roles);
	if (error < 0)
		return error;

	if ((error = dk_sql_stmt(s, &st, sql_org_dept)) < 0)
		return error;
	for (i = 0; i < org->ndepts && error == 0; i++) {
		const dk_dept *d = &org->depts[i];
		dk_sql_bind_text(st, 1, d->id);
		dk_sql_bind_text(st, 2, d->name ? d->name : d->id);
		dk_sql_bind_text(st, 3, d->head);
		dk_sql_bind_text(st, 4, d->division_leader);
		error = dk_sql_exec_stmt(s, st, "store a department");
		dk_sql_done(st);
	}
	if (error < 0)
		return error;

	if ((error = dk_sql_stmt(s, &st, sql_org_holiday)) < 0)
		return error;
	for (i = 0; i < org->nholidays && error == 0; i++) {
		dk_sql_bind_text(st, 1, org->holidays[i]);
		error = dk_sql_exec_stmt(s, st, "store a holiday");
		dk_sql_done(st);
	}
	return error;
}

static const char sql_org_bytes[] = "SELECT bytes FROM org_file WHERE id = 1";

int dk_store_org_bytes(dk_store *s, char **out, size_t *len)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*out = NULL;
	*len = 0;
	if ((error = dk_sql_stmt(s, &st, sql_org_bytes)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		*out = dk_malloc(n + 1);
		if (n)
			memcpy(*out, b, n);
		(*out)[n] = '\0';
		*len = n;
	} else if (rc == SQLITE_DONE) {
		error = dk_error_set(
		    DK_ENOTFOUND, "no org directory is loaded; load one with docket org load FILE");
	} else {
		error = dk_sql_error(s, rc, "read the org directory");
	}
	dk_sql_done(st);
	return error;
}

static const char sql_org_sha256[] = "SELECT sha256 FROM org_file WHERE id = 1";

int dk_store_org_sha256(dk_store *s, char out[65])
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	out[0] = '\0';
	if ((error = dk_sql_stmt(s, &st, sql_org_sha256)) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(out, 65, "%s", t ? (const char *)t : "");
	} else if (rc == SQLITE_DONE) {
		error = dk_error_set(
		    DK_ENOTFOUND, "no org directory is loaded; load one with docket org load FILE");
	} else {
		error = dk_sql_error(s, rc, "read the org directory's SHA-256");
	}
	dk_sql_done(st);
	return error;
}

static const char sql_user_exists[] = "SELECT 1 FROM users WHERE id = ?1";

int dk_store_user_exists(dk_store *s, const char *id)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	if ((error = dk_sql_stmt(s, &st, sql_user_exists)) < 0)
		return error;
	dk_sql_bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		error = 1;
	else if (rc != SQLITE_DONE)
		error = dk_sql_error(s, rc, "look up a user");
	dk_sql_done(st);
	return error;
}

int dk_store_data_version(dk_store *s, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*out = 0;
	if ((error = dk_sql_stmt(s, &st, "PRAGMA data_version")) < 0)
		return error;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		error = dk_sql_error(s, rc, "read the data version");
	dk_sql_done(st);
	return error;
}

/* ---- compiled flows and org directories --------------------------------- */

static uint32_t src_crc32(const void *src, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);
	const Bytef *p = src;

	/* crc32 takes at most a uInt at a time */
	while (len > 0) {
		uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

static const char sql_compiled_get[] = "SELECT format, src_len, src_crc32, body FROM compiled "
                                       "WHERE kind = ?1 AND sha256 = ?2";
static const char sql_compiled_put[] =
    "INSERT OR REPLACE INTO compiled (kind, sha256, format, src_len, src_crc32, body) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

int dk_store_compiled_get(dk_store *s, const char *kind, const char *sha256, int format,
                          const void *src, size_t len, char **out)
{
	sqlite3_stmt *st = NULL;
	int rc, error;

	*out = NULL;
	if ((error = dk_sql_stmt(s, &st, sql_compiled_get)) < 0)
		return error;
	dk_sql_bind_text(st, 1, kind);
	dk_sql_bind_text(st, 2, sha256);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_int(st, 0) == format &&
		    sqlite3_column_int64(st, 1) == (sqlite3_int64)len &&
		    (uint32_t)sqlite3_column_int64(st, 2) == src_crc32(src, len) &&
		    sqlite3_column_type(st, 3) == SQLITE_TEXT)
			*out = dk_sql_col_text(st, 3);
		else
			error = dk_error_set(DK_ENOTFOUND,
			                     "the compiled %s is of another format or "
			                     "file",
			                     kind);
	} else if (rc == SQLITE_DONE) {
		error = dk_error_set(DK_ENOTFOUND, "no compiled %s is stored", kind);
	} else {
		error = dk_sql_error(s, rc, "read a compiled definition");
	}
	dk_sql_done(st);
	return error;
}

int dk_store_compiled_put(dk_store *s, const char *kind, const char *sha256, int format,
                          const void *src, size_t len, const char *body)
{
	sqlite3_stmt *st = NULL;
	int error;

	if ((error = dk_sql_need_tx(s, "store a compiled definition")) < 0 ||
	    (error = dk_sql_stmt(s, &st, sql_compiled_put)) < 0)
		return error;
	dk_sql_bind_text(st, 1, kind);
	dk_sql_bind_text(st, 2, sha256);
	dk_sql_bind_int(st, 3, format);
	dk_sql_bind_int(st, 4, (int64_t)len);
	dk_sql_bind_int(st, 5, (int64_t)src_crc32(src, len));
	dk_sql_bind_text(st, 6, body);
	error = dk_sql_exec_stmt(s, st, "store a compiled definition");
	dk_sql_done(st);
	return error;
}
