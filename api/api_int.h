/* api_int.h - what the api/ files share: the request being answered, the
 * per-thread working set and the route handlers. Private to api/. */
#ifndef DK_API_INT_H
#define DK_API_INT_H

#include "api/api.h"
#include "definitions/flow.h"
#include "engine/runner.h"
#include "store/store.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

/* What one request thread works with: a runner (single-threaded, so one
 * per context), a store connection of its own for tokens and idempotency,
 * and the org directory, reloaded when its SHA-256 changes. Contexts are
 * pooled by the server and lent to one request at a time. */
/* Tokens recently checked on a context's connection (auth.c). */
#define DK_API_TOKEN_CACHE 8
typedef struct {
	char sha256[65]; /* "" when the slot is free */
	char *user;
	int64_t expires_at; /* 0: never */
	int64_t checked;    /* when it was read from the store */
} dk_api_token_hit;

typedef struct dk_api_ctx {
	dk_runner *runner;
	dk_store *store;
	dk_org *org;
	char org_sha[65];
	/* The store's data_version when the token cache was filled and the
	 * org last compared: while it is unchanged nobody has written, so
	 * neither a revocation nor a new org can have happened. */
	int64_t data_version;
	int fresh;     /* data_version was read for this request */
	int org_fresh; /* org matched the store at data_version */
	dk_api_token_hit tokens[DK_API_TOKEN_CACHE];
	unsigned next_slot;
	struct dk_api_ctx *next;
} dk_api_ctx;

#define DK_API_MAX_PARAMS 4

typedef struct dk_req {
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	char *params[DK_API_MAX_PARAMS]; /* the {...} parts of the route, owned */
	size_t nparams;
	const char *body; /* NUL-terminated */
	size_t body_len;
	const char *upload; /* streamed routes: the body in a temporary file */
	size_t upload_len;
	/* a multipart/form-data upload: its file part is in upload */
	int multipart;
	const char *form_name;  /* the "name" field, else the file part's name */
	const char *form_kind;  /* the "kind" field */
	int form_file;          /* a file part was sent */
	const char *form_error; /* what is wrong with the form, or NULL */
	const char *home;
	const char *user; /* the token's owner; NULL on public routes */
	dk_api_ctx *ctx;
	void (*wake)(void);   /* tells the workers a write happened */
	const char *idem_key; /* the request's Idempotency-Key, or NULL */
	int kept;             /* the writer kept the answer for idem_key (or decided not to) */
	/* A write handed to the writer (dk_api_write): the connection is
	 * suspended until its batch is committed, then after(rq, after_state)
	 * finishes the handler's work on the request thread. */
	struct dk_api_job *job;
	void (*after)(struct dk_req *rq, void *state);
	void *after_state;

	/* the answer */
	unsigned status;
	json_t *json;     /* the body as JSON, or */
	char *raw;        /* an owned body, or */
	const char *lent; /* a static body */
	size_t raw_len;
	const char *ctype; /* Content-Type of raw or lent */
	int fd;            /* or a file to send (>= 0), fd_size bytes */
	uint64_t fd_size;
	char disposition[768];
	char etag[32];
	char location[128];
	int problem;
} dk_req;

typedef int (*dk_route_fn)(dk_req *rq);

/* problem.c: errors as RFC 9457 problem objects. */
unsigned dk_api_status_of(int err);
/* Sets the answer to a problem {type, title, detail, status}; returns 0 so
 * handlers can `return dk_api_problem(...)`. */
int dk_api_problem(dk_req *rq, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The answer for a dk_err, with dk_error_last() as the detail. */
int dk_api_fail(dk_req *rq, int err);
const char *dk_api_reason(unsigned status);

/* auth.c: who is asking and what they may see. */
/* dk_token_check through ctx's token cache: a token checked before is not
 * looked up again while the store's data_version is unchanged (nothing
 * written since: no revocation) and for at most DK_API_TOKEN_TTL seconds;
 * its expiry is still checked against now. Also marks the org fresh for
 * the request when nothing was written. *user is the caller's. */
#define DK_API_TOKEN_TTL 30
int dk_api_token_check(char **user, dk_api_ctx *ctx, const char *token, int64_t now);
/* Forgets the cached tokens (a context being freed). */
void dk_api_token_forget(dk_api_ctx *ctx);
int dk_api_ctx_org(dk_api_ctx *ctx, const dk_org **out);
int dk_api_is_admin(dk_req *rq);
/* 1 when rq->user sees everything (top leader, evaluation centre). */
int dk_api_sees_all(dk_req *rq);
/* 0 when rq->user may see the instance shown as inst (dk_runner_show), else
 * DK_EFORBIDDEN with a message; other errors pass through. */
int dk_api_may_see(dk_req *rq, const json_t *inst);

/* routes: request helpers (server.c). */
const char *dk_api_query(dk_req *rq, const char *key);
const char *dk_api_header(dk_req *rq, const char *name);
/* Parses the body as a JSON object (an empty body is {}). 0, or answers 400
 * itself and returns 1. */
int dk_api_body_object(dk_req *rq, json_t **out);

/* server.c: a repeat of an Idempotency-Key gets the first answer, looked
 * up in store. Returns 1 when rq now holds that answer (or a 422 for a key
 * first used on another request), 0 when the key is new. */
int dk_api_idem_replay(dk_req *rq, dk_store *store, const char *key);

/* writer.c: group commit. A write command runs as fn(rq, runner, arg) on
 * the writer thread, inside a savepoint of a batch that one commit makes
 * durable; fn sets rq's answer or returns a dk_err (answered as such). The
 * Idempotency-Key answer (rq->idem_key) is kept with the command.
 *
 * dk_api_write does not wait: it suspends rq's connection and queues the
 * command, so the request thread goes on serving other connections while
 * the batch fills and commits (a pool of a few threads feeds batches of
 * every connection's writes). Once the batch is committed (or failed) the
 * writer resumes the connection and the server calls dk_api_write_finish,
 * which runs after(rq, state) on a request thread: the handler's work
 * after the write (waking the workers, freeing arg and state). The handler
 * must return 0 right after dk_api_write and touch neither arg nor state.
 * Without a running writer fn runs at once on rq->ctx->runner, in a
 * transaction of its own, and after is called before dk_api_write returns
 * (rq->job stays NULL). */
typedef int (*dk_write_fn)(struct dk_req *rq, dk_runner *r, void *arg);
typedef void (*dk_after_fn)(struct dk_req *rq, void *state);
void dk_api_write(dk_req *rq, dk_write_fn fn, void *arg, dk_after_fn after, void *state);
/* For the server, on the resumed connection: runs rq's after and forgets
 * its job. */
void dk_api_write_finish(dk_req *rq);
int dk_writer_start(const dk_serve_opts *opts);
/* Lets the batch in hand and every command queued finish (their
 * connections resumed), then joins the writer; the note writer catches the
 * archive up once more and is joined too. Before MHD_stop_daemon: a
 * connection still suspended there would be an API violation. */
void dk_writer_stop(void);
/* Wakes the note writer: a state change committed outside the writer (a
 * timer, a signed link) waits for its archive note. Cheap; any thread. */
void dk_writer_notes_wake(void);
/* Wakes the note writer to pack the archive if its loose objects are past
 * the threshold (request threads never pack: see dk_runner_defer_gc). */
void dk_writer_gc_wake(void);

/* workers.c: the timer and webhook threads of dk_serve. */
int dk_workers_start(const dk_serve_opts *opts);
/* Wakes the workers early: a command may have armed a timer or queued a
 * webhook. Cheap; safe from any thread. */
void dk_workers_wake(void);
/* Tells the workers to stop and joins them. */
void dk_workers_stop(void);

/* deadline.c: each request's headers must arrive within --timeout seconds
 * of its connection (or previous answer), however slowly they trickle. */
int dk_deadline_start(unsigned timeout_s);
/* Stops the watchdog; after MHD_stop_daemon. */
void dk_deadline_stop(void);
/* For MHD_OPTION_NOTIFY_CONNECTION: tracks connections from accept. */
void dk_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe);
/* The headers are in (or the request answered): no deadline. */
void dk_deadline_disarm(struct MHD_Connection *c);
/* The answer is sent: the next request on the connection has one. */
void dk_deadline_arm(struct MHD_Connection *c);

/* Handlers, one per route (routes_*.c). */
int dk_route_healthz(dk_req *rq);
int dk_route_openapi(dk_req *rq);
int dk_route_page(dk_req *rq);
int dk_route_static(dk_req *rq);
int dk_route_me(dk_req *rq);
int dk_route_flows_list(dk_req *rq);
int dk_route_flows_deploy(dk_req *rq);
int dk_route_flow_get(dk_req *rq);
int dk_route_flow_diagram(dk_req *rq);
int dk_route_org_load(dk_req *rq);
int dk_route_instances_list(dk_req *rq);
int dk_route_instances_start(dk_req *rq);
int dk_route_instance_get(dk_req *rq);
int dk_route_instance_log(dk_req *rq);
int dk_route_instance_act(dk_req *rq);
int dk_route_instance_recall(dk_req *rq);
int dk_route_evidence_list(dk_req *rq);
int dk_route_evidence_upload(dk_req *rq);
int dk_route_evidence_get(dk_req *rq);
int dk_route_inbox(dk_req *rq);
int dk_route_delegations(dk_req *rq);
int dk_route_link_get(dk_req *rq);
int dk_route_link_post(dk_req *rq);

#endif
