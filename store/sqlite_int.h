/*
 * sqlite_int.h - what the store/sqlite*.c files share; private to store/.
 *
 * Each file keeps its SQL as static strings next to the functions that use
 * them. Statements are prepared once per connection and cached in the
 * dk_store, keyed by the address of their SQL text (or of a key object for
 * SQL assembled from fixed fragments), so every call binds values into an
 * already compiled statement and no value is ever spliced into SQL text.
 */
#ifndef DK_STORE_SQLITE_INT_H
#define DK_STORE_SQLITE_INT_H

#include "store/store.h"
#include "util/buf.h"

#include <sqlite3.h>
#include <stdint.h>

typedef struct {
	const void *key;
	sqlite3_stmt *stmt;
} dk_sql_cached;

struct dk_store {
	sqlite3 *db;
	char *path; /* HOME/docket.db, for messages */
	dk_sql_cached *cache;
	size_t ncache, capcache;
	int reading; /* the open transaction is dk_store_read_begin's */
	/* The instance whose event this transaction appended last and the
	 * seq its next event takes (0: unknown), so that a step's second
	 * event need not look its number up again. Forgotten at every
	 * transaction or savepoint boundary that could undo the append. */
	int64_t seq_instance, seq_next;
};

/* The name of the "docket" VFS (store/sqlite_vfs.c), registered on first
 * use: SQLite's default VFS with the writes of a WAL commit gathered into
 * one. NULL when it cannot be made (then SQLite's default serves). */
const char *dk_sql_vfs(void);

/* Converts a SQLite result code into a dk_err with a message naming what
 * was being done: BUSY/LOCKED -> DK_ECONFLICT "the database is busy; try
 * again", CONSTRAINT -> DK_ECONFLICT, anything else -> DK_EINTERNAL with
 * sqlite3_errmsg inside. */
int dk_sql_error(dk_store *s, int rc, const char *what);

/* The cached statement for the static SQL text sql (prepared on first use).
 * The statement is lent; hand it back with dk_sql_done. */
int dk_sql_stmt(dk_store *s, sqlite3_stmt **out, const char *sql);
/* The same, keyed by key, with sql only read when not yet cached. */
int dk_sql_stmt_keyed(dk_store *s, sqlite3_stmt **out, const void *key, const char *sql);
/* Resets a statement taken from the cache and clears its bindings. NULL is
 * accepted. */
void dk_sql_done(sqlite3_stmt *st);

/* DK_EINTERNAL unless a transaction is open: every WRITE function checks
 * it first, so a forgotten dk_store_begin is caught at once. */
int dk_sql_need_tx(dk_store *s, const char *what);

/* Binding helpers: NULL text binds SQL NULL; 0 instants through
 * dk_sql_bind_time bind NULL. The values must outlive the statement's use,
 * which they do since every statement is reset before its function returns. */
int dk_sql_bind_text(sqlite3_stmt *st, int idx, const char *v);
int dk_sql_bind_int(sqlite3_stmt *st, int idx, int64_t v);
int dk_sql_bind_time(sqlite3_stmt *st, int idx, int64_t v);
/* Binds an instance id given as text ("12"). DK_ENOTFOUND (naming the
 * id) when it is not the decimal form of a positive integer. */
int dk_sql_bind_instance(dk_store *s, sqlite3_stmt *st, int idx, const char *id);
/* Parses an instance id like dk_sql_bind_instance; 0 when invalid. */
int64_t dk_sql_instance_num(const char *id);

/* Column helpers: an owned copy of a text column (NULL for SQL NULL), an
 * integer (0 for NULL). */
char *dk_sql_col_text(sqlite3_stmt *st, int col);
int64_t dk_sql_col_int(sqlite3_stmt *st, int col);

/* Runs st to completion for a statement that returns no rows. */
int dk_sql_exec_stmt(dk_store *s, sqlite3_stmt *st, const char *what);

/* Reads an audit event from columns 0 to 11 of st: instance_id, seq, type,
 * actor, on_behalf_of, at, from_state, to_state, transition, comment, data,
 * rowid (the row's order), as every query of events selects them. */
void dk_sql_event_row(sqlite3_stmt *st, dk_event_row *r);

/* Growable arrays of rows for the list functions. */
void *dk_sql_grow(void *items, size_t *cap, size_t count, size_t size);

/* Exposed for the query-plan tests: the exact SQL the hot queries run. */
void dk_sqlite_instance_list_sql(dk_buf *out, const dk_instance_filter *f);
extern const char dk_sqlite_sql_task_list_for_user[];
/* What every step reads and writes by key: an instance's open tasks
 * (their id range), its armed timers (theirs), one of its
 * per-state index rows (the primary key). */
extern const char dk_sqlite_sql_task_open[];
extern const char dk_sqlite_sql_timer_of[];
extern const char dk_sqlite_sql_states_remove[];
extern const char dk_sqlite_sql_timer_due[];
extern const char dk_sqlite_sql_outbox_due[];

#endif
