/*
 * hooks.h - webhooks: Standard Webhooks v1 signing, the event payload, the
 * retry policy and the outbox dispatcher.
 *
 * How a notification travels: the runner describes what happened in a
 * dk_hook_event, dk_hook_payload turns it into the exact body bytes ONCE,
 * and those bytes go into the outbox (dk_store_outbox_enqueue) in the same
 * transaction as the event. The dispatcher later sends each outbox row
 * signed with its subscription's secret; the row id is the webhook-id and
 * the body never changes, so a receiver can deduplicate and verify every
 * retry. Nothing is sent from inside a transaction.
 *
 * Ownership: strings that come back through **out are the caller's and are
 * freed with free().
 */
#ifndef DK_WEB_HOOKS_HOOKS_H
#define DK_WEB_HOOKS_HOOKS_H

#include "definitions/flow.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- secrets and signatures (sign.c) ----------------------------------- */

#define DK_HOOK_SECRET_PREFIX    "whsec_"
#define DK_HOOK_SECRET_MIN_BYTES 24 /* decoded key bytes a secret must hold */
#define DK_HOOK_SECRET_GEN_BYTES 32 /* what dk_hook_secret_generate draws */
#define DK_HOOK_USER_AGENT       "docket/0.1"

/* A fresh secret: "whsec_" + base64 of DK_HOOK_SECRET_GEN_BYTES bytes from
 * the OpenSSL CSPRNG. Returns 0 or DK_EINTERNAL when no randomness. */
int dk_hook_secret_generate(char **out);

/* Checks a secret given by a user: the "whsec_" prefix, strict base64, at
 * least DK_HOOK_SECRET_MIN_BYTES bytes decoded. Returns 0 or DK_EINVALID
 * with a message saying what is wrong and how to get a good one. */
int dk_hook_secret_check(const char *secret);

/* The HMAC key of a secret: its base64 part decoded. *out (free()) holds
 * *len bytes. Returns 0 or DK_EINVALID as dk_hook_secret_check. */
int dk_hook_secret_key(unsigned char **out, size_t *len, const char *secret);

/* One signature: "v1," + base64(HMAC-SHA256(key, id "." timestamp "."
 * body)). Returns 0 or DK_EINVALID for a bad secret. */
int dk_hook_sign(char **out, const char *secret, const char *msg_id, int64_t timestamp,
                 const char *body, size_t len);

/* The webhook-signature header value: the signature with secret and, during
 * a rotation overlap (old_secret not NULL), a space and the signature with
 * the old secret, so receivers holding either secret accept it. */
int dk_hook_signature_header(char **out, const char *secret, const char *old_secret,
                             const char *msg_id, int64_t timestamp, const char *body, size_t len);

/* Receiver side: checks a webhook-signature header (space-separated
 * "v1,..." entries, other versions ignored) against secret, and the
 * timestamp against now within tolerance seconds either way (tolerance 0:
 * not checked). Returns 0, DK_EFORBIDDEN when no signature matches or the
 * timestamp is out of tolerance (the message says which), DK_EINVALID for
 * a bad secret or timestamp text. Comparison is constant-time. */
int dk_hook_verify(const char *secret, const char *msg_id, const char *timestamp, const char *body,
                   size_t len, const char *signature_header, int64_t now, int64_t tolerance);

/* ---- subscriptions: URLs and event types (payload.c) ------------------- */

/* The event types a subscription may name, NULL-terminated. */
extern const char *const dk_hook_event_types[];

/* 1 when type is one of dk_hook_event_types, else 0. */
int dk_hook_event_type_known(const char *type);

/* Normalises an --events list ("a,b" or "a b"; "" or "all" means every
 * event) into *out: the types space-separated, in the order given,
 * duplicates dropped; "" for all. Returns 0 or DK_EINVALID naming the
 * unknown type and listing the known ones. */
int dk_hook_events_parse(char **out, const char *list);

/* 1 when a subscription's events ("" = all) include type. */
int dk_hook_events_match(const char *events, const char *type);

/* Checks a subscription URL with libcurl's URL parser: http or https, with
 * a host. Returns 0 or DK_EINVALID with a message naming the scheme. */
int dk_hook_url_check(const char *url);

/* ---- signed action links (links.c) ------------------------------------ */

/* One move an assignee may make from a notification: fire transition in
 * the visit-th visit of state of instance, as user, before expires. */
typedef struct dk_link {
	char *instance;
	char *state;
	int visit;
	char *transition;
	char *user;
	int64_t expires; /* unix seconds */
	char nonce[33];  /* hex; dk_link_sign draws one when empty */
} dk_link;

#define DK_LINK_KEY_BYTES   32
#define DK_LINK_TTL_DEFAULT "P7D" /* DOCKET_LINK_TTL overrides it */

/* The home's link key into out (DK_LINK_KEY_BYTES bytes), *len of them.
 * With create, inside an open transaction, one is made on first use;
 * without, DK_ENOTFOUND when none was ever made (so no link is valid). */
int dk_link_key(unsigned char *out, size_t *len, dk_store *s, int create, int64_t now);

/* The link token for l: base64url(fields) "." base64url(HMAC-SHA256).
 * *out is the caller's (free()). Returns 0, DK_EINVALID for an empty field
 * or one holding a line break, DK_EINTERNAL without randomness. */
int dk_link_sign(char **out, const unsigned char *key, size_t keylen, const dk_link *l);

/* Checks a token's MAC (constant time) and fills *out (dk_link_free).
 * Returns 0 or DK_EFORBIDDEN (damaged or forged); says nothing about
 * expiry, use or staleness: the caller checks those. */
int dk_link_verify(dk_link *out, const unsigned char *key, size_t keylen, const char *token);
void dk_link_free(dk_link *l);

/* When a link made at `at` expires: at + DOCKET_LINK_TTL (an ISO 8601
 * duration, default DK_LINK_TTL_DEFAULT). DK_EINVALID for a bad value. */
int dk_link_expiry(int64_t *out, int64_t at);

/* ---- the payload (payload.c) ------------------------------------------- */

/* What happened, as the runner tells it. Every pointer is lent for the call;
 * NULL means "not relevant to this event" and shows as JSON null (evidence
 * is left out entirely when evidence_kind is NULL). Nothing here refers to
 * engine internals, so the runner, tests and tools fill it alike. */
typedef struct {
	const char *type;        /* one of dk_hook_event_types */
	const char *instance_id; /* required */
	int64_t seq;             /* the event's sequence number in the instance */
	int64_t at;              /* when it happened, unix seconds */
	const char *flow_id;     /* required */
	int flow_version;
	const char *state; /* current state after the event */
	const char *title; /* the instance's title */
	const char *actor;
	const char *on_behalf_of;     /* the delegator when actor acts for someone */
	const char *const *assignees; /* user ids, nassignees of them */
	size_t nassignees;
	const char *transition;
	const char *comment;
	const char *evidence_kind;
	const char *evidence_name;
	const char *evidence_sha256;
	const char *base_url; /* NULL: DOCKET_BASE_URL, else DK_HOOK_BASE_URL */
	/* Action links: what each assignee may do now (dk_link's instance,
	 * expires and nonce are ignored here: the event's instance, link_expires
	 * and a fresh nonce per link are used), signed with link_key. No links
	 * when link_key is NULL. */
	const dk_link *actions;
	size_t nactions;
	const unsigned char *link_key;
	size_t link_key_len;
	int64_t link_expires;
} dk_hook_event;

#define DK_HOOK_BASE_URL "http://127.0.0.1:8080"

/* Builds the body bytes for ev (compact JSON, UTF-8) into *out:
 *   {"type","id":"INSTANCE:SEQ","timestamp":ISO 8601,"data":{"instance":
 *   {id,flow,version,state,title},"actor","on_behalf_of","assignees":
 *   [{id,name,email,"actions":[{transition,state,url,expires_at}]}],
 *   "transition","comment","evidence":{kind,name,sha256},
 *   "links":{"act","inbox"}}}
 * An assignee's "actions" are their signed action links (GET shows a
 * confirmation page, POST acts); present only when links were asked for.
 * Assignee names and e-mails come from org (may be NULL: then null).
 * Call it once per event and keep the bytes: they are what is signed and
 * sent on every attempt. Returns 0 or DK_EINVALID (unknown type, missing
 * instance or flow, text that is not UTF-8). */
int dk_hook_payload(char **out, const dk_hook_event *ev, const dk_org *org);

/* What the runner calls for each event, inside the transaction that
 * records the event: builds the body once (dk_hook_payload) and queues it
 * for every enabled subscription that wants ev->type and ev->flow_id
 * (dk_store_outbox_enqueue), due at now. Returns 0 or the error of
 * either. */
int dk_hook_enqueue(dk_store *s, const dk_hook_event *ev, const dk_org *org, int64_t now);

/* ---- retry policy (retry.c) -------------------------------------------- */

#define DK_HOOK_SCHEDULE_MAX 32

/* Delays before each attempt, in seconds: delays[0] before the first
 * (normally 0), delays[k] before attempt k+1. After n attempts the delivery
 * is dead. */
typedef struct {
	int64_t delays[DK_HOOK_SCHEDULE_MAX];
	size_t n;
} dk_hook_schedule;

/* Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
void dk_hook_schedule_default(dk_hook_schedule *out);

/* Parses a schedule: comma- or space-separated delays, each plain seconds
 * ("5") or an ISO 8601 duration of days and time ("PT5M", "P1D").
 * Returns 0 or DK_EINVALID naming the bad entry. */
int dk_hook_schedule_parse(dk_hook_schedule *out, const char *text);

/* Longest a Retry-After may push a retry out, in seconds. */
#define DK_HOOK_RETRY_AFTER_MAX 86400 /* one day */

/* After `attempts` failed attempts, the delay before the next in seconds,
 * or -1 when the delivery is dead. The schedule's delay is jittered down by
 * up to a fifth (jitter in [0,1), the caller's randomness, so a burst of
 * failures does not retry in lockstep) and then raised to retry_after
 * (seconds the receiver asked for, -1 none), capped at
 * DK_HOOK_RETRY_AFTER_MAX. */
int64_t dk_hook_retry_delay(const dk_hook_schedule *s, int attempts, int64_t retry_after,
                            double jitter);

/* Parses a Retry-After header value: delay-seconds or an HTTP-date, into
 * seconds from now (never negative). Returns 0 or DK_EINVALID. */
int dk_hook_retry_after_parse(int64_t *out, const char *value, int64_t now);

/* ---- the dispatcher (dispatch.c) --------------------------------------- */

/* How the dispatcher sends. Fill with DK_DISPATCH_OPTS_INIT, then
 * dk_dispatch_opts_env to apply the environment:
 *   DOCKET_HOOK_TIMEOUT_MS          whole request, default 15000
 *   DOCKET_HOOK_CONNECT_TIMEOUT_MS  TCP+TLS connect, default 5000
 *   DOCKET_HOOK_MAX_IN_FLIGHT       concurrent requests, default 64
 *   DOCKET_HOOK_SCHEDULE            retry schedule (dk_hook_schedule_parse) */
typedef struct {
	unsigned max_in_flight;
	long timeout_ms;
	long connect_timeout_ms;
	dk_hook_schedule schedule; /* n == 0: the default */
	FILE *log;                 /* hook.failing lines; NULL: stderr */
} dk_dispatch_opts;

#define DK_DISPATCH_OPTS_INIT                                                                      \
	{                                                                                          \
		64, 15000, 5000, {{0}, 0}, NULL                                                    \
	}

/* Applies the DOCKET_HOOK_* variables above to opts. Returns 0 or
 * DK_EINVALID naming the variable and what it should hold. */
int dk_dispatch_opts_env(dk_dispatch_opts *opts);

/* What a dispatcher has done so far. */
typedef struct {
	size_t attempts;  /* requests that completed (any outcome) */
	size_t delivered; /* answered 2xx */
	size_t retrying;  /* failed, another attempt scheduled */
	size_t dead;      /* failed for the last time, or 410 */
	size_t disabled;  /* subscriptions disabled by a 410 */
	int64_t next_due; /* earliest retry scheduled (by dk_dispatch_run: or
	                   * found in the store), 0 when none is known */
} dk_dispatch_stats;

/* A dispatcher: one libcurl multi handle (connections are reused across
 * requests) and the deliveries in flight. It owns neither the store nor
 * opts' log. One thread at a time. */
typedef struct dk_dispatcher dk_dispatcher;

int dk_dispatcher_new(dk_dispatcher **out, dk_store *store, const dk_dispatch_opts *opts);

/* Works for at most max_ms milliseconds (a little more if a store write is
 * slow): starts due deliveries up to max_in_flight, moves transfers along
 * and records finished attempts in short transactions: those finishing
 * within 20 ms of each other share one, and all are written before it
 * returns. Sets
 * *idle to 1 when it returns with nothing in flight and nothing due.
 * Returns 0, or the store's error when an attempt cannot be recorded (the
 * delivery then stays pending and goes again: at least once). */
int dk_dispatcher_step(dk_dispatcher *d, int max_ms, int *idle);

/* Tells a dispatcher, from any thread, that deliveries were queued: a
 * dk_dispatcher_step waiting on transfers in flight looks for due
 * deliveries at once instead of after its next completion. The only
 * function that may be called while another thread is in a step. */
void dk_dispatcher_wakeup(dk_dispatcher *d);

void dk_dispatcher_stats(const dk_dispatcher *d, dk_dispatch_stats *out);

/* Frees the dispatcher. Transfers still in flight are abandoned; their
 * deliveries are still pending in the store and go again later. */
void dk_dispatcher_free(dk_dispatcher *d);

/* `docket dispatch`: sends until nothing is in flight and nothing is due
 * (the queue is empty or only future retries remain). stats may be NULL.
 * Returns 0 or the first error. */
int dk_dispatch_run(dk_store *store, const dk_dispatch_opts *opts, dk_dispatch_stats *stats);

#endif
