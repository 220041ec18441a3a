/*
 * sqlite_floor.c - the floor for durable single-writer steps: a bare SQLite
 * insert + commit loop, one row per transaction, journal_mode=WAL and
 * synchronous=FULL as docket's store uses, prepared statements only.
 *
 * Usage: sqlite_floor DB ROWS
 * Prints one line: commits per second. DB is created (and must not hold
 * another schema); each run appends ROWS rows.
 *
 * A docket step writes more than one row (snapshot, events, tasks) in its
 * transaction, but the cost of a durable commit is the fsync of the WAL, so
 * this loop is what no store on this disk can beat.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "sqlite_floor: %s: %s\n", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *begin = NULL, *ins = NULL, *commit = NULL;
	int rc = 1;
	long rows, i;
	double t0, secs;
	/* a row about the size of a docket event: a JSON body */
	static const char body[] =
	    "{\"type\":\"transition\",\"from\":\"review\",\"to\":\"in-progress\","
	    "\"transition\":\"approve\",\"actor\":\"wei\",\"comment\":null}";

	if (argc != 3 || (rows = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: sqlite_floor DB ROWS\n");
		return 2;
	}
	if (sqlite3_open(argv[1], &db) != SQLITE_OK) {
		fprintf(stderr, "sqlite_floor: cannot open %s: %s\n", argv[1], sqlite3_errmsg(db));
		goto cleanup;
	}
	if (exec(db, "PRAGMA journal_mode=WAL") < 0 || exec(db, "PRAGMA synchronous=FULL") < 0 ||
	    exec(db, "CREATE TABLE IF NOT EXISTS steps(id INTEGER PRIMARY KEY, "
	             "instance TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL)") < 0)
		goto cleanup;
	if (sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO steps(instance, seq, body) VALUES (?1, ?2, ?3)", -1,
	                       &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlite_floor: prepare: %s\n", sqlite3_errmsg(db));
		goto cleanup;
	}
	t0 = now_s();
	for (i = 0; i < rows; i++) {
		if (sqlite3_step(begin) != SQLITE_DONE)
			goto step_failed;
		sqlite3_reset(begin);
		sqlite3_bind_text(ins, 1, "bench-instance", -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 2, i);
		sqlite3_bind_text(ins, 3, body, -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto step_failed;
		sqlite3_reset(ins);
		if (sqlite3_step(commit) != SQLITE_DONE)
			goto step_failed;
		sqlite3_reset(commit);
	}
	secs = now_s() - t0;
	printf("%.0f\n", (double)rows / secs);
	rc = 0;
	goto cleanup;
step_failed:
	fprintf(stderr, "sqlite_floor: row %ld: %s\n", i, sqlite3_errmsg(db));
cleanup:
	sqlite3_finalize(begin);
	sqlite3_finalize(ins);
	sqlite3_finalize(commit);
	sqlite3_close(db);
	return rc;
}
