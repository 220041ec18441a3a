/*
 * auth.c - bearer tokens and who may see what.
 *
 * A token is "dkt_" + 32 random bytes in base64url; only its SHA-256 is
 * stored, so a leaked database does not leak working tokens.
 *
 * Seeing, after the five user levels of the org directory:
 *   top-leader, evaluation-centre  every instance
 *   division-leader                instances started in the departments
 *                                  whose division-leader they are
 *   assessment-group, dept head    instances started in their department
 *   anyone                         instances they started, have a task in,
 *                                  or acted on (their audit trail)
 * Acting is the engine's to decide (assignee, delegate, role). The
 * evaluation centre also administers: deploy, org.
 */
#include "api/api.h"

#include "api/api_int.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"
#include "util/time.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_BYTES 32

static void base64url(char *out, const unsigned char *in, size_t n)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i;
	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned)in[i] << 16;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
	} else if (n - i == 2) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
	}
	out[o] = 0;
}

void dk_token_hash(char out[65], const char *token)
{
	dk_sha256_hex(out, token, strlen(token));
}

int dk_token_create(char **out, dk_token_row *row, dk_store *s, const char *user, const char *name,
                    int64_t expires_at, int64_t now)
{
	unsigned char raw[TOKEN_BYTES];
	char tok[sizeof(DK_TOKEN_PREFIX) + (size_t)TOKEN_BYTES * 2];
	char hash[65];
	dk_token_row r = {0};
	int error;

	*out = NULL;
	if (!user || !*user)
		return dk_error_set(DK_EUSAGE, "a token needs a user: --user ID");
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return dk_error_set(DK_EINTERNAL, "no randomness from OpenSSL for a token");
	strcpy(tok, DK_TOKEN_PREFIX);
	base64url(tok + strlen(DK_TOKEN_PREFIX), raw, sizeof(raw));
	dk_token_hash(hash, tok);
	r.user_id = (char *)user;
	r.sha256 = hash;
	r.name = (char *)name;
	r.created_at = now;
	r.expires_at = expires_at;
	if ((error = dk_store_begin(s)) < 0)
		return error;
	if ((error = dk_store_token_add(s, &r)) < 0 || (error = dk_store_commit(s)) < 0) {
		dk_store_rollback(s);
		return error;
	}
	if (row) {
		memset(row, 0, sizeof(*row));
		row->id = r.id;
		row->user_id = dk_strdup(user);
		row->sha256 = dk_strdup(hash);
		row->name = name ? dk_strdup(name) : NULL;
		row->created_at = now;
		row->expires_at = expires_at;
	}
	*out = dk_strdup(tok);
	return 0;
}

int dk_token_parse_expiry(int64_t *out, const char *text, int64_t now)
{
	dk_duration d;
	int64_t t;

	if (text[0] == 'P') {
		if (dk_duration_parse(&d, text) < 0)
			return dk_error_set(
			    DK_EINVALID, "--expires '%s' is not a duration; write e.g. P30D", text);
		t = dk_duration_add(now, &d);
	} else if (dk_time_parse(&t, text) < 0) {
		return dk_error_set(DK_EINVALID,
		                    "--expires '%s' is neither a date (2027-01-01) nor a duration "
		                    "(P30D)",
		                    text);
	}
	if (t <= now)
		return dk_error_set(DK_EINVALID, "--expires '%s' is not in the future", text);
	*out = t;
	return 0;
}

static int token_shape(const char *token)
{
	if (strncmp(token, DK_TOKEN_PREFIX, strlen(DK_TOKEN_PREFIX)) != 0 || strlen(token) > 128)
		return dk_error_set(DK_EFORBIDDEN,
		                    "that is not a docket token (they start with " DK_TOKEN_PREFIX
		                    "); make one with docket token create");
	return 0;
}

/* dk_token_check for the token whose SHA-256 is hash; *expires_at gets
 * the token's expiry when it is valid. */
static int check_hash(char **user, int64_t *expires_at, dk_store *s, const char *hash, int64_t now)
{
	dk_token_row row = {0};
	int error;

	*user = NULL;
	error = dk_store_token_find_by_hash(s, hash, &row);
	if (error == DK_ENOTFOUND)
		return dk_error_set(DK_EFORBIDDEN, "unknown token; docket token list shows "
		                                   "the tokens, docket token create makes one");
	if (error < 0)
		return error;
	if (row.revoked)
		error = dk_error_set(DK_EFORBIDDEN, "token %lld was revoked; ask for a new one",
		                     (long long)row.id);
	else if (row.expires_at && row.expires_at <= now) {
		char at[DK_TIME_STRLEN];
		dk_time_format(at, row.expires_at);
		error = dk_error_set(DK_EFORBIDDEN, "token %lld expired at %s; ask for a new one",
		                     (long long)row.id, at);
	} else {
		*user = dk_strdup(row.user_id);
		*expires_at = row.expires_at;
	}
	dk_token_row_free(&row);
	return error;
}

int dk_token_check(char **user, dk_store *s, const char *token, int64_t now)
{
	char hash[65];
	int64_t expires_at;
	int error;

	*user = NULL;
	if ((error = token_shape(token)) < 0)
		return error;
	dk_token_hash(hash, token);
	return check_hash(user, &expires_at, s, hash, now);
}

/* ---- the token cache, per context ------------------------------------------
 *
 * Checking a token costs its SHA-256 and a lookup; the lookup is what a
 * cache saves, and it must not delay a revocation. `docket token revoke`
 * commits on another connection, which changes this connection's
 * data_version: every request reads it (a pragma, no table), and a change
 * empties the cache. So a revocation is seen by the next request that
 * starts after its commit; the TTL only bounds how long an entry lives. */

void dk_api_token_forget(dk_api_ctx *ctx)
{
	for (size_t i = 0; i < DK_API_TOKEN_CACHE; i++) {
		free(ctx->tokens[i].user);
		ctx->tokens[i].user = NULL;
		ctx->tokens[i].sha256[0] = '\0';
	}
}

int dk_api_token_check(char **user, dk_api_ctx *ctx, const char *token, int64_t now)
{
	char hash[65];
	int64_t dv = 0, expires_at = 0;
	int error;

	*user = NULL;
	if ((error = token_shape(token)) < 0)
		return error;
	ctx->fresh = dk_store_data_version(ctx->store, &dv) == 0;
	dk_error_clear();
	if (!ctx->fresh || dv != ctx->data_version) {
		/* Someone wrote (or we cannot tell): nothing read before holds. */
		dk_api_token_forget(ctx);
		ctx->org_fresh = 0;
		ctx->data_version = dv;
	}
	dk_token_hash(hash, token);
	for (size_t i = 0; ctx->fresh && i < DK_API_TOKEN_CACHE; i++) {
		dk_api_token_hit *h = &ctx->tokens[i];
		if (!h->sha256[0] || strcmp(h->sha256, hash) != 0)
			continue;
		if (now - h->checked < DK_API_TOKEN_TTL && now >= h->checked &&
		    (!h->expires_at || h->expires_at > now)) {
			*user = dk_strdup(h->user);
			return 0;
		}
		free(h->user);
		h->user = NULL;
		h->sha256[0] = '\0';
	}
	if ((error = check_hash(user, &expires_at, ctx->store, hash, now)) < 0 || !ctx->fresh)
		return error;
	dk_api_token_hit *h = &ctx->tokens[ctx->next_slot++ % DK_API_TOKEN_CACHE];
	free(h->user);
	memcpy(h->sha256, hash, sizeof(hash));
	h->user = dk_strdup(*user);
	h->expires_at = expires_at;
	h->checked = now;
	return 0;
}

/* ---- the org, per context ------------------------------------------------ */

int dk_api_ctx_org(dk_api_ctx *ctx, const dk_org **out)
{
	char *bytes = NULL, sha[65];
	size_t len = 0;
	dk_org *org = NULL;
	int error;

	*out = NULL;
	/* Nothing written since the org was last compared: it is current. */
	if (ctx->org && ctx->fresh && ctx->org_fresh) {
		*out = ctx->org;
		return 0;
	}
	/* Else the stored SHA-256 says whether the copy in hand is current
	 * without reading and hashing the file. */
	error = dk_store_org_sha256(ctx->store, sha);
	if (error == 0 && ctx->org && strcmp(ctx->org_sha, sha) == 0) {
		ctx->org_fresh = ctx->fresh;
		*out = ctx->org;
		return 0;
	}
	if (error == 0)
		error = dk_store_org_bytes(ctx->store, &bytes, &len);
	if (error == DK_ENOTFOUND) {
		/* No org loaded: nobody holds a role; everyone sees their own. */
		if (!ctx->org)
			ctx->org = dk_calloc(1, sizeof(*ctx->org));
		*out = ctx->org;
		return 0;
	}
	if (error < 0)
		return error;
	dk_sha256_hex(sha, bytes, len);
	if (ctx->org && strcmp(ctx->org_sha, sha) == 0) {
		free(bytes);
		*out = ctx->org;
		return 0;
	}
	error = dk_org_load_buffer(&org, "org", bytes, len, NULL);
	free(bytes);
	if (error < 0)
		return dk_error_set(DK_EINTERNAL, "the stored org directory no longer loads: %s",
		                    dk_error_last());
	dk_org_free(ctx->org);
	ctx->org = org;
	memcpy(ctx->org_sha, sha, sizeof(sha));
	ctx->org_fresh = ctx->fresh;
	*out = org;
	return 0;
}

static const dk_user *me(dk_req *rq)
{
	const dk_org *org;
	if (!rq->user || dk_api_ctx_org(rq->ctx, &org) < 0)
		return NULL;
	return dk_org_user(org, rq->user);
}

int dk_api_is_admin(dk_req *rq)
{
	const dk_user *u = me(rq);
	return u && dk_user_has_role(u, "evaluation-centre");
}

int dk_api_sees_all(dk_req *rq)
{
	const dk_user *u = me(rq);
	return u && (dk_user_has_role(u, "evaluation-centre") || dk_user_has_role(u, "top-leader"));
}

/* 1 when user sees instances started by initiator through their level. */
static int sees_department_of(dk_req *rq, const char *initiator)
{
	const dk_org *org;
	const dk_user *u, *by;
	const dk_dept *dept;

	if (dk_api_ctx_org(rq->ctx, &org) < 0 || !(u = dk_org_user(org, rq->user)) ||
	    !(by = dk_org_user(org, initiator)) || !by->dept)
		return 0;
	if (dk_user_has_role(u, "assessment-group") && u->dept && strcmp(u->dept, by->dept) == 0)
		return 1;
	dept = dk_org_dept(org, by->dept);
	if (!dept)
		return 0;
	/* The head approves the department's work, so sees all of it. */
	if (dept->head && strcmp(dept->head, rq->user) == 0)
		return 1;
	return dk_user_has_role(u, "division-leader") && dept->division_leader &&
	       strcmp(dept->division_leader, rq->user) == 0;
}

int dk_api_may_see(dk_req *rq, const json_t *inst)
{
	const char *id = json_string_value(json_object_get(inst, "id"));
	const char *initiator = json_string_value(json_object_get(inst, "initiator"));
	json_t *t, *log = NULL, *ev;
	size_t i;
	int error;

	if (dk_api_sees_all(rq) || (initiator && strcmp(initiator, rq->user) == 0))
		return 0;
	json_array_foreach(json_object_get(inst, "tasks"), i, t)
	{
		const char *u = json_string_value(json_object_get(t, "user"));
		if (u && strcmp(u, rq->user) == 0)
			return 0;
	}
	if (initiator && sees_department_of(rq, initiator))
		return 0;
	/* Tasks that reach the user by delegation are in their inbox. */
	if ((error = dk_runner_inbox(rq->ctx->runner, &log, rq->user)) < 0)
		return error;
	json_array_foreach(log, i, t)
	{
		const char *in = json_string_value(json_object_get(t, "instance"));
		if (in && id && strcmp(in, id) == 0) {
			json_decref(log);
			return 0;
		}
	}
	json_decref(log);
	log = NULL;
	if ((error = dk_runner_log(rq->ctx->runner, &log, id ? id : "")) < 0)
		return error;
	json_array_foreach(log, i, ev)
	{
		const char *a = json_string_value(json_object_get(ev, "actor"));
		const char *b = json_string_value(json_object_get(ev, "on_behalf_of"));
		if ((a && strcmp(a, rq->user) == 0) || (b && strcmp(b, rq->user) == 0)) {
			json_decref(log);
			return 0;
		}
	}
	json_decref(log);
	return dk_error_set(DK_EFORBIDDEN,
	                    "%s may not see instance %s: it is not theirs, holds no task of "
	                    "theirs and is outside the departments they oversee",
	                    rq->user, id ? id : "?");
}
