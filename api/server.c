/*
 * server.c - `docket serve`: libmicrohttpd glue, the route table, request
 * logging, Idempotency-Key replay and a clean stop.
 *
 * Threads: libmicrohttpd runs a pool of opts->threads threads, each
 * polling many connections without blocking, so a slow client costs a
 * socket, never a thread, and is cut off after opts->timeout_s: idle, by
 * libmicrohttpd; still trickling its request in, by deadline.c. Each
 * handler borrows a dk_api_ctx (runner + store + org) from a pool for the
 * length of its call: a dk_runner is single-threaded and is never shared.
 * A write (start, act, recall) does not hold its thread while it waits for
 * its commit: its connection is suspended, the writer (writer.c) commits
 * it with the other connections' writes under one fsync and resumes it,
 * and the handler is called again to send the answer. So a pool of a few
 * threads keeps every connection's writes in the writer's batches. Two
 * more threads fire timers and send webhooks (workers.c).
 *
 * Stopping: SIGTERM/SIGINT are blocked in every thread and taken by
 * sigwait in the main one. Then the daemon stops accepting
 * (MHD_quiesce_daemon), requests in flight finish (counted from the first
 * handler call to the completion callback, bounded by a grace period), the
 * daemon stops, and the workers are told to stop and joined.
 */
#include "api/api.h"

#include "api/api_int.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Routes needing no token: the health check, the OpenAPI description and
 * the inbox page with its assets (the page asks for a token itself). */
#define R_PUBLIC 1
/* Administration: the evaluation centre only. */
#define R_ADMIN 2
/* The body streams to a temporary file (evidence), up to max_upload. */
#define R_STREAM 4

typedef struct {
	const char *method;
	const char *path;
	dk_route_fn fn;
	int flags;
} route;

static const route routes[] = {
    {"GET", "/healthz", dk_route_healthz, R_PUBLIC},
    {"GET", "/openapi.json", dk_route_openapi, R_PUBLIC},
    {"GET", "/", dk_route_page, R_PUBLIC},
    {"GET", "/inbox", dk_route_page, R_PUBLIC},
    {"GET", "/inbox/instances/{id}", dk_route_page, R_PUBLIC},
    {"GET", "/static/{file}", dk_route_static, R_PUBLIC},
    {"GET", "/links/{token}", dk_route_link_get, R_PUBLIC},
    {"POST", "/links/{token}", dk_route_link_post, R_PUBLIC},
    {"GET", "/api/me", dk_route_me, 0},
    {"GET", "/api/flows", dk_route_flows_list, 0},
    {"POST", "/api/flows", dk_route_flows_deploy, R_ADMIN},
    {"GET", "/api/flows/{flow}", dk_route_flow_get, 0},
    {"GET", "/api/flows/{flow}/diagram", dk_route_flow_diagram, 0},
    {"PUT", "/api/org", dk_route_org_load, R_ADMIN},
    {"GET", "/api/instances", dk_route_instances_list, 0},
    {"POST", "/api/instances", dk_route_instances_start, 0},
    {"GET", "/api/instances/{id}", dk_route_instance_get, 0},
    {"GET", "/api/instances/{id}/log", dk_route_instance_log, 0},
    {"POST", "/api/instances/{id}/transitions/{transition}", dk_route_instance_act, 0},
    {"POST", "/api/instances/{id}/recall", dk_route_instance_recall, 0},
    {"GET", "/api/instances/{id}/evidence", dk_route_evidence_list, 0},
    {"POST", "/api/instances/{id}/evidence", dk_route_evidence_upload, R_STREAM},
    {"POST", "/api/instances/{id}/evidence/{kind}", dk_route_evidence_upload, R_STREAM},
    {"GET", "/api/instances/{id}/evidence/{kind}/{name}", dk_route_evidence_get, 0},
    {"GET", "/api/inbox", dk_route_inbox, 0},
    {"GET", "/api/delegations", dk_route_delegations, 0},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static dk_api_route_info route_info[NROUTES];

static void fill_route_info(void)
{
	for (size_t i = 0; i < NROUTES; i++) {
		route_info[i].method = routes[i].method;
		route_info[i].path = routes[i].path;
	}
}

const dk_api_route_info *dk_api_routes(size_t *n)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, fill_route_info);
	*n = NROUTES;
	return route_info;
}

/* ---- the server's state ------------------------------------------------- */

typedef struct {
	const dk_serve_opts *opts;
	pthread_mutex_t lock;
	dk_api_ctx *free_ctx; /* contexts not lent to a request */
	atomic_int inflight;  /* requests begun and not completed */
} server;

static server srv;

static dk_api_ctx *ctx_take(void)
{
	dk_api_ctx *c;

	pthread_mutex_lock(&srv.lock);
	c = srv.free_ctx;
	if (c)
		srv.free_ctx = c->next;
	pthread_mutex_unlock(&srv.lock);
	if (c) {
		c->fresh = 0; /* until this request reads the data_version */
		return c;
	}
	c = dk_calloc(1, sizeof(*c));
	if (dk_runner_open(&c->runner, srv.opts->home) < 0 ||
	    dk_store_open(&c->store, srv.opts->home) < 0) {
		dk_runner_free(c->runner);
		free(c);
		return NULL;
	}
	/* Packing is the note thread's: an upload answers without it. */
	dk_runner_defer_gc(c->runner);
	return c;
}

static void ctx_give(dk_api_ctx *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&srv.lock);
	c->next = srv.free_ctx;
	srv.free_ctx = c;
	pthread_mutex_unlock(&srv.lock);
}

static void ctx_free_all(void)
{
	dk_api_ctx *c = srv.free_ctx, *next;
	for (; c; c = next) {
		next = c->next;
		dk_runner_free(c->runner);
		dk_store_close(c->store);
		dk_api_token_forget(c);
		dk_org_free(c->org);
		free(c);
	}
	srv.free_ctx = NULL;
}

/* ---- one request --------------------------------------------------------- */

/* What lives from the first handler call to the completion callback. */
typedef struct {
	struct timespec start;
	dk_buf body;
	int too_large;
	int fd;       /* streamed body: the temporary file, else -1 */
	char *tmp;    /* its path, removed at completion */
	size_t nfile; /* bytes written to it */
	int stream;   /* a streamed route, limited by max_upload */
	/* A streamed upload refused for its token, or a body declared over
	 * --max-body: the body is read and dropped, up to DRAIN_MAX, before
	 * the 401 or 413 (see on_request). */
	int refused;
	size_t drained;
	int answered; /* a response is queued; any body left is dropped */
	/* multipart/form-data: parts arrive through the post processor; the
	 * one file part streams to fd, the small fields are kept. */
	struct MHD_PostProcessor *pp;
	dk_buf form_name, form_kind;
	char *filename;         /* the file part's file name, as the browser sent it */
	int have_file;          /* a file part began */
	int multipart;          /* the body is multipart/form-data */
	const char *form_error; /* what is wrong with the form, static */
	/* The request being answered: it outlives one handler call when its
	 * write waits for the writer with the connection suspended. */
	dk_req rq;
	char *user; /* the token's owner, rq.user */
} conn_req;

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

const char *dk_api_query(dk_req *rq, const char *key)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *dk_api_header(dk_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

int dk_api_body_object(dk_req *rq, json_t **out)
{
	json_error_t jerr;
	json_t *j;

	*out = NULL;
	if (rq->body_len == 0) {
		*out = json_object();
		return 0;
	}
	j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		dk_api_problem(rq, 400, "the body is not valid JSON: %s at line %d, column %d",
		               jerr.text, jerr.line, jerr.column);
		return 1;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		dk_api_problem(rq, 400, "the body must be a JSON object");
		return 1;
	}
	*out = j;
	return 0;
}

/* Splits pattern and path on '/' in step; "{name}" takes one non-empty
 * segment. Returns 1 on a match with the captures in rq->params. */
static int route_match(const char *pattern, const char *path, dk_req *rq)
{
	const char *p = pattern, *u = path;

	rq->nparams = 0;
	while (*p && *u) {
		if (*p == '{') {
			size_t n = strcspn(u, "/");
			if (n == 0 || rq->nparams == DK_API_MAX_PARAMS)
				goto no;
			rq->params[rq->nparams++] = dk_strndup(u, n);
			u += n;
			p = strchr(p, '}') + 1;
			continue;
		}
		if (*p != *u)
			goto no;
		p++;
		u++;
	}
	if (*p == 0 && *u == 0)
		return 1;
no:
	for (size_t i = 0; i < rq->nparams; i++) {
		free(rq->params[i]);
		rq->params[i] = NULL;
	}
	rq->nparams = 0;
	return 0;
}

/* Bearer authentication: sets rq->user (owned by *user) or answers 401. */
static int authenticate(dk_req *rq, char **user)
{
	const char *h = dk_api_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
	int64_t now;
	int error;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		dk_api_problem(rq, 401,
		               "this route needs 'Authorization: Bearer TOKEN'; make a token with "
		               "docket token create --user USER");
		return -1;
	}
	h += 7;
	while (*h == ' ')
		h++;
	if ((error = dk_time_now(&now)) < 0 ||
	    (error = dk_api_token_check(user, rq->ctx, h, now)) < 0) {
		if (error == DK_EFORBIDDEN)
			dk_api_problem(rq, 401, "%s", dk_error_last());
		else
			dk_api_fail(rq, error);
		return -1;
	}
	rq->user = *user;
	return 0;
}

/* Idempotency-Key on a POST: a repeat by the same user gets the first
 * answer again. Returns 1 when rq now holds a replayed answer. */
int dk_api_idem_replay(dk_req *rq, dk_store *store, const char *key)
{
	int status = 0;
	char *body = NULL, *what = NULL;
	char want[512];
	int error;

	snprintf(want, sizeof(want), "%s %s", rq->method, rq->path);
	error = dk_store_idempotency_get(store, rq->user, key, &what, &status, &body);
	if (error == DK_ENOTFOUND)
		return 0;
	if (error < 0) {
		dk_api_fail(rq, error);
		return 1;
	}
	if (strcmp(what, want) != 0) {
		dk_api_problem(rq, 422,
		               "Idempotency-Key '%s' was first used for %s; use a new key for %s",
		               key, what, want);
	} else {
		rq->status = (unsigned)status;
		rq->raw = body;
		rq->raw_len = strlen(body);
		rq->ctype = status >= 400 ? "application/problem+json" : "application/json";
		body = NULL;
	}
	free(what);
	free(body);
	return 1;
}

static void idem_record(dk_req *rq, const char *key, const char *body)
{
	char what[512];
	int64_t now = 0;

	/* Server errors are not kept: a retry should run again. */
	if (rq->status >= 500)
		return;
	snprintf(what, sizeof(what), "%s %s", rq->method, rq->path);
	dk_time_now(&now);
	if (dk_store_begin(rq->ctx->store) < 0)
		return;
	if (dk_store_idempotency_put(rq->ctx->store, rq->user, key, what, (int)rq->status, body,
	                             now) < 0 ||
	    dk_store_commit(rq->ctx->store) < 0)
		dk_store_rollback(rq->ctx->store);
}

static void wake_workers(void)
{
	dk_workers_wake();
}

/* Finds the route, checks the token and role, runs the handler. */
static void dispatch(dk_req *rq, char **user)
{
	const route *rt = NULL;
	int path_known = 0, error;

	for (size_t i = 0; i < NROUTES; i++) {
		if (!route_match(routes[i].path, rq->path, rq))
			continue;
		path_known = 1;
		if (strcmp(routes[i].method, rq->method) == 0 ||
		    (strcmp(rq->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			rt = &routes[i];
			break;
		}
		for (size_t k = 0; k < rq->nparams; k++) {
			free(rq->params[k]);
			rq->params[k] = NULL;
		}
		rq->nparams = 0;
	}
	if (!rt) {
		if (path_known)
			dk_api_problem(rq, 405, "%s is not allowed on %s; see /openapi.json",
			               rq->method, rq->path);
		else
			dk_api_problem(rq, 404, "no route %s; see /openapi.json", rq->path);
		return;
	}
	if (!(rt->flags & R_PUBLIC)) {
		if (!rq->ctx) {
			dk_api_problem(rq, 503, "the server cannot open its home: %s",
			               dk_error_last());
			return;
		}
		if (authenticate(rq, user) < 0)
			return;
		if ((rt->flags & R_ADMIN) && !dk_api_is_admin(rq)) {
			dk_api_problem(rq, 403,
			               "%s %s is for the evaluation centre (role "
			               "evaluation-centre); %s does not hold it",
			               rq->method, rt->path, rq->user);
			return;
		}
	}
	const char *key = strcmp(rq->method, "POST") == 0 && rq->user
	                      ? dk_api_header(rq, "Idempotency-Key")
	                      : NULL;
	if (key && (strlen(key) == 0 || strlen(key) > 200)) {
		dk_api_problem(rq, 400, "Idempotency-Key must be 1 to 200 characters");
		return;
	}
	if (key && dk_api_idem_replay(rq, rq->ctx->store, key))
		return;
	rq->idem_key = key;
	dk_error_clear();
	if ((error = rt->fn(rq)) < 0)
		dk_api_fail(rq, error);
}

/* After the handler (and its write, when it waited for the writer): an
 * answer that the writer did not keep for the Idempotency-Key is kept
 * here. Writes through the writer kept theirs with the command. */
static void dispatch_end(dk_req *rq)
{
	if (rq->idem_key && !rq->kept && rq->ctx) {
		char *body = rq->json ? json_dumps(rq->json, JSON_COMPACT)
		                      : dk_strndup(rq->raw ? rq->raw : "", rq->raw_len);
		idem_record(rq, rq->idem_key, body);
		free(body);
	}
}

static enum MHD_Result send_answer(struct MHD_Connection *c, dk_req *rq)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *body = NULL;
	size_t len = 0;
	const char *ctype = rq->ctype;

	if (rq->json) {
		body = dk_json_indented(rq->json, &len);
		if (!ctype)
			ctype = rq->problem ? "application/problem+json" : "application/json";
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	} else if (rq->fd >= 0) {
		resp = MHD_create_response_from_fd(rq->fd_size, rq->fd);
		if (resp)
			rq->fd = -1; /* the response closes it */
	} else if (rq->raw) {
		resp = MHD_create_response_from_buffer(rq->raw_len, rq->raw, MHD_RESPMEM_MUST_FREE);
		rq->raw = NULL;
	} else {
		resp = MHD_create_response_from_buffer(rq->raw_len, (void *)rq->lent,
		                                       MHD_RESPMEM_PERSISTENT);
	}
	if (!resp)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (rq->etag[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, rq->etag);
	if (rq->location[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, rq->location);
	if (rq->disposition[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, rq->disposition);
	if (rq->status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer realm=\"docket\"");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(c, rq->status ? rq->status : 500, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void log_line(const char *method, const char *url, unsigned status, double ms,
                     const char *user)
{
	char at[DK_TIME_STRLEN];
	int64_t now = (int64_t)time(NULL);

	dk_time_format(at, now);
	/* An action link's token is a credential until used: keep it out of
	 * the log. */
	if (strncmp(url, "/links/", 7) == 0)
		url = "/links/(token)";
	fprintf(stderr, "%s %s %s %u %.1fms %s\n", at, method, url, status, ms, user ? user : "-");
}

/* Answers the request: runs its handler, or, when the handler handed a
 * write to the writer (the connection suspended meanwhile), is called
 * again on the resumed connection and finishes it. */
static enum MHD_Result answer(struct MHD_Connection *c, conn_req *q, const char *url,
                              const char *method)
{
	dk_req *rq = &q->rq;
	enum MHD_Result ret;

	if (rq->job) {
		/* resumed: the write is committed (or failed) */
		dk_api_write_finish(rq);
		dispatch_end(rq);
		goto send;
	}
	dk_deadline_disarm(c); /* arrived; the handler's time is ours */
	rq->conn = c;
	rq->method = method;
	rq->path = url;
	rq->wake = wake_workers;
	rq->home = srv.opts->home;
	rq->fd = -1;
	if (q->tmp) {
		rq->upload = q->tmp;
		rq->upload_len = q->nfile;
	}
	if (q->multipart) {
		rq->multipart = 1;
		rq->form_name = q->form_name.len ? dk_buf_cstr(&q->form_name) : q->filename;
		rq->form_kind = q->form_kind.len ? dk_buf_cstr(&q->form_kind) : NULL;
		rq->form_file = q->have_file;
		rq->form_error = q->form_error;
	}
	dk_buf_putc(&q->body, 0); /* NUL-terminated for parsers */
	rq->body = q->body.ptr;
	rq->body_len = q->body.len - 1;
	if (q->too_large) {
		dk_api_problem(rq, 413, "the body is larger than %zu bytes",
		               q->stream ? srv.opts->max_upload : srv.opts->max_body);
	} else {
		rq->ctx = ctx_take();
		dispatch(rq, &q->user);
		if (rq->job) {
			/* Waits for the writer, suspended: the context serves
			 * other requests meanwhile (the writer has its own). */
			ctx_give(rq->ctx);
			rq->ctx = NULL;
			return MHD_YES;
		}
		dispatch_end(rq);
	}
send:
	ret = send_answer(c, rq);
	log_line(method, url, rq->status, ms_since(&q->start), rq->user);
	ctx_give(rq->ctx);
	rq->ctx = NULL;
	for (size_t i = 0; i < rq->nparams; i++) {
		free(rq->params[i]);
		rq->params[i] = NULL;
	}
	rq->nparams = 0;
	json_decref(rq->json);
	rq->json = NULL;
	free(rq->raw);
	rq->raw = NULL;
	if (rq->fd >= 0)
		close(rq->fd); /* only when no response took it */
	rq->fd = -1;
	return ret;
}

/* 1 when the request goes to a streamed route (an evidence upload). */
static int streamed(const char *url, const char *method)
{
	dk_req probe = {0};
	for (size_t i = 0; i < NROUTES; i++) {
		if (!(routes[i].flags & R_STREAM) || strcmp(routes[i].method, method) != 0)
			continue;
		if (route_match(routes[i].path, url, &probe)) {
			for (size_t k = 0; k < probe.nparams; k++)
				free(probe.params[k]);
			return 1;
		}
	}
	return 0;
}

/* A streamed upload is only taken from a valid token: refusing before
 * the body is read keeps strangers from filling the disk. */
static int token_valid(struct MHD_Connection *c)
{
	const char *h =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	dk_api_ctx *ctx;
	char *user = NULL;
	int64_t now;
	int ok;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !(ctx = ctx_take()))
		return 0;
	ok = dk_time_now(&now) == 0 && dk_token_check(&user, ctx->store, h + 7, now) == 0;
	free(user);
	ctx_give(ctx);
	return ok;
}

static int open_upload(conn_req *q)
{
	const char *tmp = getenv("TMPDIR");
	dk_buf b = DK_BUF_INIT;

	dk_buf_printf(&b, "%s/docket-upload-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	q->tmp = dk_buf_detach(&b);
	q->fd = mkstemp(q->tmp);
	if (q->fd < 0) {
		free(q->tmp);
		q->tmp = NULL;
		return -1;
	}
	return 0;
}

/* Appends size bytes of the streamed body to the temporary file, up to
 * max_upload; past it, or when the disk refuses, the rest is dropped and
 * the answer will be 413. */
static void spool(conn_req *q, const char *data, size_t size)
{
	if (!q->too_large && q->nfile + size > srv.opts->max_upload)
		q->too_large = 1;
	if (q->too_large)
		return;
	const char *p = data;
	size_t left = size;
	while (left > 0) {
		ssize_t w = write(q->fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			q->too_large = 1;
			return;
		}
		p += w;
		left -= (size_t)w;
	}
	q->nfile += size;
}

/* Small form fields are kept whole, up to this many bytes. */
#define FORM_FIELD_MAX 1024

/* The post processor's callback for each piece of a multipart part. */
static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
	conn_req *q = cls;
	dk_buf *field = NULL;

	if (filename) {
		if (off == 0 && q->have_file && !q->form_error) {
			/* A second file (or the same field twice): which one did
			 * the user mean? Refuse rather than guess. */
			q->form_error = "the form holds more than one file; upload one file per "
			                "request";
		}
		if (off == 0 && !q->have_file) {
			q->have_file = 1;
			q->filename = dk_strdup(filename);
		}
		if (!q->form_error)
			spool(q, data, size);
		return MHD_YES;
	}
	if (key && strcmp(key, "name") == 0)
		field = &q->form_name;
	else if (key && strcmp(key, "kind") == 0)
		field = &q->form_kind;
	if (!field)
		return MHD_YES; /* other fields are not ours to read */
	if (field->len + size > FORM_FIELD_MAX) {
		q->form_error = "a form field (name or kind) is longer than 1024 bytes";
		return MHD_YES;
	}
	dk_buf_put(field, data, size);
	return MHD_YES;
}

/* Bytes of a refused upload's body read and dropped before its answer.
 * Answering before the client has sent its body and closing with the
 * body unread makes the kernel reset the connection, and a client still
 * sending may never read the 401 (curl: "connection reset", status 000).
 * A small body is read to its end first, as a lingering close does; a
 * bigger one is cut off there (declared bigger: at once). */
#define DRAIN_MAX ((size_t)1024 * 1024)

/* 1 when the request's body is multipart/form-data. */
static int is_multipart(struct MHD_Connection *c)
{
	const char *ct =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	return ct && strncasecmp(ct, "multipart/form-data", 19) == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	conn_req *q = *con_cls;

	if (!q) {
		const char *cl =
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
		q = dk_calloc(1, sizeof(*q));
		q->fd = -1;
		clock_gettime(CLOCK_MONOTONIC, &q->start);
		*con_cls = q;
		atomic_fetch_add(&srv.inflight, 1);
		/* The headers are in: the deadline was for them. A body is
		 * bounded by --max-body (or --max-upload) and must not stall;
		 * a large one on a slow line may take its time. */
		dk_deadline_disarm(c);
		if (streamed(url, method)) {
			q->stream = 1;
			/* Refused or oversize: nothing is stored. A big body
			 * is answered before it is read (MHD then closes the
			 * connection); a small one is dropped as it arrives. */
			if (!token_valid(c)) {
				q->refused = 1;
				if (declared > DRAIN_MAX) {
					q->answered = 1;
					return answer(c, q, url, method);
				}
				return MHD_YES;
			}
			if (declared > srv.opts->max_upload) {
				q->too_large = 1;
				return answer(c, q, url, method);
			}
			if (open_upload(q) < 0)
				return answer(c, q, url, method);
			/* A browser form: its parts are parsed as they arrive,
			 * the file part going to the same temporary file. */
			q->multipart = is_multipart(c);
			if (q->multipart &&
			    !(q->pp = MHD_create_post_processor(c, (size_t)32 * 1024, on_part, q)))
				q->form_error =
				    "the multipart/form-data body has no boundary; let the "
				    "browser or client set the Content-Type";
			return MHD_YES;
		}
		/* Refuse a declared oversize body: a big one before reading it,
		 * one up to DRAIN_MAX after reading and dropping it, as for a
		 * refused upload (answered early, the client still sending got
		 * a reset instead of the 413). */
		if (declared > srv.opts->max_body) {
			q->too_large = 1;
			if (declared <= DRAIN_MAX) {
				q->refused = 1;
				return MHD_YES;
			}
			return answer(c, q, url, method);
		}
		return MHD_YES;
	}
	if (*upload_size && (q->refused || q->answered)) {
		q->drained += *upload_size;
		*upload_size = 0;
		if (q->drained > DRAIN_MAX && !q->answered) {
			q->answered = 1;
			return answer(c, q, url, method);
		}
		return MHD_YES;
	}
	if (q->answered)
		return MHD_YES;
	if (*upload_size) {
		if (q->fd >= 0) {
			/* Streamed: to the file, never all in memory. */
			if (q->pp) {
				if (!q->too_large && !q->form_error &&
				    MHD_post_process(q->pp, upload, *upload_size) != MHD_YES)
					q->form_error = "the multipart/form-data body is malformed";
			} else if (!q->form_error) {
				spool(q, upload, *upload_size);
			}
			*upload_size = 0;
			return MHD_YES;
		}
		if (!q->too_large && q->body.len + *upload_size > srv.opts->max_body) {
			q->too_large = 1;
			dk_buf_free(&q->body);
		}
		if (!q->too_large)
			dk_buf_put(&q->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (q->pp) {
		/* NO here means the body ended inside a part. */
		if (MHD_destroy_post_processor(q->pp) != MHD_YES && !q->form_error && !q->too_large)
			q->form_error =
			    "the multipart/form-data body ends before its closing boundary";
		q->pp = NULL;
		if (!q->form_error && !q->have_file)
			q->form_error = "the form holds no file part; add <input type=file>";
	}
	if (q->fd >= 0) {
		close(q->fd);
		q->fd = -1;
	}
	return answer(c, q, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	conn_req *q = *con_cls;
	dk_deadline_arm(c); /* for the next request on this connection */
	if (!q)
		return;
	if (q->pp)
		MHD_destroy_post_processor(q->pp);
	dk_buf_free(&q->form_name);
	dk_buf_free(&q->form_kind);
	free(q->filename);
	if (q->fd >= 0)
		close(q->fd);
	if (q->tmp) {
		unlink(q->tmp);
		free(q->tmp);
	}
	dk_buf_free(&q->body);
	free(q->user);
	free(q);
	*con_cls = NULL;
	atomic_fetch_sub(&srv.inflight, 1);
}

/* ---- listening and stopping ---------------------------------------------- */

/* Binds HOST:PORT (IPv4 or IPv6, port 0 for any free one) and writes the
 * bound address to bound. */
static int listen_on(int *out, const char *addr, char *bound, size_t boundsz)
{
	struct addrinfo hints = {0}, *ai = NULL;
	struct sockaddr_storage ss = {0};
	socklen_t sl = sizeof(ss);
	char host[256], port[16], h[INET6_ADDRSTRLEN] = "";
	const char *colon = strrchr(addr, ':');
	int fd = -1, one = 1, rc;

	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host) ||
	    strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port))
		return dk_error_set(DK_EUSAGE, "--listen wants HOST:PORT, e.g. 127.0.0.1:8080");
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	snprintf(port, sizeof(port), "%s", colon + 1);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0)
		return dk_error_set(DK_EUSAGE, "cannot listen on %s: %s", addr, gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return dk_error_set(DK_EINVALID, "cannot listen on %s: %s%s", addr, strerror(e),
		                    e == EADDRINUSE ? "; stop the other server or pick another port"
		                                    : "");
	}
	freeaddrinfo(ai);
	/* getnameinfo prints either family numerically: no casts between
	 * sockaddr shapes, and the port the kernel picked for ":0". */
	char serv[16];
	if ((rc = getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), serv, sizeof(serv),
	                      NI_NUMERICHOST | NI_NUMERICSERV)) != 0) {
		close(fd);
		return dk_error_set(DK_EINVALID, "cannot name the address bound for %s: %s", addr,
		                    gai_strerror(rc));
	}
	snprintf(bound, boundsz, strchr(h, ':') ? "[%s]:%s" : "%s:%s", h, serv);
	*out = fd;
	return 0;
}

static int write_addr_file(const char *path, const char *bound)
{
	char tmp[4096];
	FILE *f;

	/* Written whole then renamed, so a reader never sees half an address. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		return dk_error_set(DK_EINVALID, "cannot write %s: %s", tmp, strerror(errno));
	fprintf(f, "%s\n", bound);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return dk_error_set(DK_EINVALID, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

int dk_serve(const dk_serve_opts *opts)
{
	struct MHD_Daemon *d = NULL;
	sigset_t sigs, old;
	char bound[128];
	int fd = -1, sig = 0, error, workers = 0;

	memset(&srv, 0, sizeof(srv));
	srv.opts = opts;
	pthread_mutex_init(&srv.lock, NULL);

	/* The home must open before we promise to serve it. */
	dk_api_ctx *first = ctx_take();
	if (!first) {
		error = dk_error_code() ? dk_error_code() : DK_EINTERNAL;
		goto cleanup;
	}
	ctx_give(first);
	if ((error = listen_on(&fd, opts->listen, bound, sizeof(bound))) < 0)
		goto cleanup;
	if ((error = dk_writer_start(opts)) < 0)
		goto cleanup;

	/* Every thread started from here on inherits the blocked mask, so
	 * only sigwait below sees these. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);

	if (dk_deadline_start(opts->timeout_s) < 0) {
		error = dk_error_set(DK_EINTERNAL, "cannot start the request deadline thread");
		goto unblock;
	}
	/* Each connection's memory (request line, headers, read buffer, the
	 * answer's headers) is MHD's default 32 KiB: MHD zeroes all of it
	 * after every request, and at 64 KiB that memset was a twentieth of
	 * a GET's time. */
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
	                     0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
	                     MHD_OPTION_THREAD_POOL_SIZE, (unsigned)opts->threads,
	                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)opts->max_conns,
	                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opts->timeout_s,
	                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
	                     MHD_OPTION_NOTIFY_CONNECTION, dk_deadline_notify, NULL,
	                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
	if (!d) {
		error = dk_error_set(DK_EINTERNAL, "libmicrohttpd did not start on %s", bound);
		goto unblock;
	}
	fd = -1; /* the daemon's now */
	if ((error = dk_workers_start(opts)) < 0)
		goto unblock;
	workers = 1;
	if (opts->addr_file && (error = write_addr_file(opts->addr_file, bound)) < 0)
		goto unblock;
	fprintf(stderr, "docket serve: listening on http://%s/ (inbox: http://%s/inbox)\n", bound,
	        bound);

	sigdelset(&sigs, SIGPIPE);
	while (sigwait(&sigs, &sig) != 0)
		;
	fprintf(stderr, "docket serve: %s, finishing requests in flight\n",
	        sig == SIGINT ? "interrupted" : "terminated");

	/* Stop accepting; let what is in flight finish, for at most the
	 * connection timeout. */
	int lfd = MHD_quiesce_daemon(d);
	if (lfd >= 0)
		close(lfd);
	for (unsigned waited = 0; atomic_load(&srv.inflight) > 0 && waited < opts->timeout_s * 100;
	     waited++)
		usleep(10000);
	error = 0;
unblock:
	/* Before the daemon: every write queued is committed and its
	 * connection resumed (the daemon must not stop with one suspended);
	 * writes that come later run on their request thread. */
	dk_writer_stop();
	if (d)
		MHD_stop_daemon(d);
	dk_deadline_stop();
	if (workers)
		dk_workers_stop();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error == 0)
		fprintf(stderr, "docket serve: stopped\n");
cleanup:
	if (fd >= 0)
		close(fd);
	ctx_free_all();
	pthread_mutex_destroy(&srv.lock);
	return error;
}
