/*
 * api.h - `docket serve`: the REST API, bearer tokens and the web inbox.
 *
 * dk_serve runs one process that answers HTTP (libmicrohttpd, a thread
 * pool, JSON through jansson), fires timers and sends webhooks in
 * background threads, and stops cleanly on SIGTERM or SIGINT: it stops
 * accepting, lets requests in flight finish, then stops the workers.
 *
 * Every /api/ request carries "Authorization: Bearer dkt_...". Tokens are
 * made by dk_token_create and kept only as their SHA-256.
 */
#ifndef DK_API_API_H
#define DK_API_API_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
	const char *home;      /* the docket home (database, archive) */
	const char *listen;    /* "HOST:PORT"; port 0 picks a free one */
	const char *addr_file; /* when set, "HOST:PORT" bound is written there */
	unsigned threads;      /* request threads */
	unsigned max_conns;    /* open connections at most */
	unsigned timeout_s;    /* idle or unfinished connections are cut after */
	size_t max_body;       /* bytes of a JSON or XML body at most (413 beyond) */
	size_t max_upload;     /* bytes of an evidence upload at most */
	int timers;            /* fire due timers in the background */
	int hooks;             /* send webhooks in the background */
} dk_serve_opts;

#define DK_SERVE_OPTS_INIT                                                                         \
	{                                                                                          \
		NULL, "127.0.0.1:8080", NULL, 4, 256, 30, (size_t)1 << 20, (size_t)1 << 30, 1, 1   \
	}

/* Serves until SIGTERM or SIGINT. Returns 0 after a clean stop, or a
 * negative dk_err when the server cannot start (address in use...). */
int dk_serve(const dk_serve_opts *opts);

/* ---- tokens (auth.c) ---------------------------------------------------- */

#define DK_TOKEN_PREFIX "dkt_"

/* A new token for user: "dkt_" + base64url of 32 random bytes. Only its
 * SHA-256 is stored (dk_store_token_add, in its own transaction); the token
 * itself is in *out (free()) and nowhere else. *row gets the stored row
 * (dk_token_row_free) when row is not NULL. expires_at 0: never. */
int dk_token_create(char **out, dk_token_row *row, dk_store *s, const char *user, const char *name,
                    int64_t expires_at, int64_t now);

/* The hex SHA-256 under which a token is stored. */
void dk_token_hash(char out[65], const char *token);

/* An expiry given as a date or instant ("2027-01-01") or as a duration from
 * now ("P30D"). Returns 0 or DK_EINVALID (unparsable, or not in the
 * future). */
int dk_token_parse_expiry(int64_t *out, const char *text, int64_t now);

/* Checks a presented token: *user (free()) is its owner. Any refusal is
 * DK_EFORBIDDEN with a message saying which (malformed, unknown, revoked,
 * expired); the server answers it with 401. Store failures pass through. */
int dk_token_check(char **user, dk_store *s, const char *token, int64_t now);

/* ---- the route table (server.c), for the OpenAPI check ----------------- */

typedef struct {
	const char *method;
	const char *path; /* "/api/instances/{id}" */
} dk_api_route_info;

/* The routes the server answers, in table order. Lent, static. */
const dk_api_route_info *dk_api_routes(size_t *n);

#endif
