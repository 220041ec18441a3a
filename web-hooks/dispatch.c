/*
 * dispatch.c - the outbox dispatcher, on libcurl's multi interface.
 *
 * Invariants that make delivery "at least once, in order, never forged":
 *
 * - The store is the only truth. A delivery is pending until an attempt's
 *   outcome is recorded, in a short transaction after the response (the
 *   responses of a 20 ms window share one, so a burst costs one fsync, not
 *   one per delivery). A delivery whose outcome waits to be written counts
 *   as in flight, so it is not picked up again. Nothing is sent from inside
 *   a transaction. A crash between a 2xx and its record sends that delivery
 *   again (receivers deduplicate by webhook-id); a crash can never lose
 *   one, and a recorded 2xx is never sent again.
 * - Order per (subscription, instance) comes from dk_store_outbox_due: it
 *   only offers the oldest pending delivery of each such queue, so the next
 *   one is not even seen until the previous is delivered or dead. Deliveries
 *   already in flight are still pending, so they come back from the query
 *   and are skipped here by id.
 * - The body is the stored bytes, sent as they are; only webhook-timestamp
 *   and the signature over it are made per attempt.
 * - libcurl is configured for a server: http and https only, no redirects
 *   (a 3xx is a failure), whole-request and connect timeouts, no signals.
 *   The multi handle keeps connections alive between requests.
 */
#include "web-hooks/hooks.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/time.h"

#include <curl/curl.h>
#include <openssl/rand.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ERR_SNIPPET 200 /* bytes of a failing response kept for last_error */
/* How long a finished attempt may wait to be written with others: one
 * fsync per burst instead of one per response. */
#define FLUSH_MS 20

typedef struct xfer {
	CURL *easy;
	int64_t id, hook_id;
	int attempts; /* before this one */
	int64_t started;
	char *url;
	char *body; /* the stored bytes; POSTFIELDS does not copy */
	struct curl_slist *headers;
	int64_t retry_after; /* seconds, -1 none */
	dk_buf snippet;      /* start of the response body */
	char errbuf[CURL_ERROR_SIZE];
} xfer;

/* What one attempt came to, waiting to be written. */
typedef struct {
	int64_t id;
	dk_delivery_status st;
	int http;
	char *err; /* NULL when none */
	int64_t next, now;
	int64_t disable_hook; /* > 0: 410, disable that subscription */
	char *log;            /* a line for opts.log once written, or NULL */
} outcome;

struct dk_dispatcher {
	dk_store *store;
	dk_dispatch_opts opts;
	CURLM *multi;
	xfer **live; /* in flight, at most opts.max_in_flight */
	size_t nlive;
	CURL **spare; /* finished easy handles kept for reuse */
	size_t nspare;
	int need_fill;    /* something finished: the due set may have changed */
	int fill_all;     /* the next fill walks the whole due set */
	int64_t cursor;   /* the highest id the last fills dealt with */
	atomic_int woken; /* dk_dispatcher_wakeup: new deliveries may be due */
	outcome *done;    /* finished attempts not yet written */
	size_t ndone, capdone;
	int64_t first_done_ms; /* when the oldest of them finished */
	dk_dispatch_stats stats;
};

static int env_long(long *out, const char *name, long min, long max)
{
	const char *v = getenv(name);
	char *end = NULL;
	if (!v || !*v)
		return 0;
	long n = strtol(v, &end, 10);
	if (*end || n < min || n > max)
		return dk_error_set(DK_EINVALID, "%s='%s' should be a whole number from %ld to %ld",
		                    name, v, min, max);
	*out = n;
	return 0;
}

int dk_dispatch_opts_env(dk_dispatch_opts *opts)
{
	long n = (long)opts->max_in_flight;
	int error;
	if ((error = env_long(&opts->timeout_ms, "DOCKET_HOOK_TIMEOUT_MS", 1, 3600000)) < 0 ||
	    (error = env_long(&opts->connect_timeout_ms, "DOCKET_HOOK_CONNECT_TIMEOUT_MS", 1,
	                      3600000)) < 0 ||
	    (error = env_long(&n, "DOCKET_HOOK_MAX_IN_FLIGHT", 1, 4096)) < 0)
		return error;
	opts->max_in_flight = (unsigned)n;
	const char *sched = getenv("DOCKET_HOOK_SCHEDULE");
	if (sched && *sched && dk_hook_schedule_parse(&opts->schedule, sched) < 0)
		return dk_error_set(DK_EINVALID, "DOCKET_HOOK_SCHEDULE: %s", dk_error_last());
	return 0;
}

int dk_dispatcher_new(dk_dispatcher **out, dk_store *store, const dk_dispatch_opts *opts)
{
	static const dk_dispatch_opts defaults = DK_DISPATCH_OPTS_INIT;
	dk_dispatcher *d;

	*out = NULL;
	/* Safe to call more than once; libcurl counts. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		dk_error_set(DK_EINTERNAL, "libcurl failed to initialise");
		return DK_EINTERNAL;
	}
	d = dk_calloc(1, sizeof(*d));
	d->store = store;
	d->opts = opts ? *opts : defaults;
	if (d->opts.max_in_flight == 0)
		d->opts.max_in_flight = defaults.max_in_flight;
	if (d->opts.schedule.n == 0)
		dk_hook_schedule_default(&d->opts.schedule);
	if (!d->opts.log)
		d->opts.log = stderr;
	d->multi = curl_multi_init();
	if (!d->multi) {
		free(d);
		curl_global_cleanup();
		dk_error_set(DK_EINTERNAL, "libcurl could not make a multi handle");
		return DK_EINTERNAL;
	}
	/* Keep one connection per request in flight alive between requests. */
	curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)d->opts.max_in_flight);
	curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)d->opts.max_in_flight);
	d->live = dk_calloc(d->opts.max_in_flight, sizeof(xfer *));
	d->spare = dk_calloc(d->opts.max_in_flight, sizeof(*d->spare));
	d->need_fill = 1;
	d->fill_all = 1;
	*out = d;
	return 0;
}

static void xfer_free(xfer *x)
{
	if (!x)
		return;
	curl_slist_free_all(x->headers);
	dk_buf_free(&x->snippet);
	free(x->url);
	free(x->body);
	free(x);
}

/* Takes x out of the multi handle and keeps its easy handle for reuse. */
static void xfer_retire(dk_dispatcher *d, xfer *x)
{
	curl_multi_remove_handle(d->multi, x->easy);
	if (d->nspare < d->opts.max_in_flight) {
		curl_easy_reset(x->easy);
		d->spare[d->nspare++] = x->easy;
	} else {
		curl_easy_cleanup(x->easy);
	}
	x->easy = NULL;
	for (size_t i = 0; i < d->nlive; i++)
		if (d->live[i] == x) {
			d->live[i] = d->live[--d->nlive];
			break;
		}
	xfer_free(x);
}

void dk_dispatcher_free(dk_dispatcher *d)
{
	if (!d)
		return;
	while (d->nlive) {
		xfer *x = d->live[0];
		xfer_retire(d, x);
	}
	for (size_t i = 0; i < d->nspare; i++)
		curl_easy_cleanup(d->spare[i]);
	/* Outcomes never written leave their deliveries pending: they go
	 * again (at least once). */
	for (size_t i = 0; i < d->ndone; i++) {
		free(d->done[i].err);
		free(d->done[i].log);
	}
	free(d->done);
	curl_multi_cleanup(d->multi);
	free(d->live);
	free(d->spare);
	free(d);
	curl_global_cleanup();
}

void dk_dispatcher_wakeup(dk_dispatcher *d)
{
	atomic_store(&d->woken, 1);
	/* thread-safe by libcurl's contract: ends a curl_multi_poll at once */
	curl_multi_wakeup(d->multi);
}

void dk_dispatcher_stats(const dk_dispatcher *d, dk_dispatch_stats *out)
{
	*out = d->stats;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	xfer *x = userdata;
	size_t len = size * n;
	static const char name[] = "retry-after:";
	/* A new response (after a 1xx) starts afresh. */
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
		x->retry_after = -1;
	if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		char *v = dk_strndup(p + sizeof(name) - 1, len - (sizeof(name) - 1));
		v[strcspn(v, "\r\n")] = '\0';
		int64_t now = 0, secs = 0;
		if (dk_time_now(&now) == 0 && dk_hook_retry_after_parse(&secs, v, now) == 0)
			x->retry_after = secs;
		free(v);
	}
	return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	xfer *x = userdata;
	size_t len = size * n;
	if (x->snippet.len < ERR_SNIPPET) {
		size_t take = ERR_SNIPPET - x->snippet.len;
		dk_buf_put(&x->snippet, p, len < take ? len : take);
	}
	return len;
}

/* A uniform number in [0,1) for jitter; not a secret, so a failing
 * RAND_bytes falls back to rand(). */
static double jitter(void)
{
	uint32_t r;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)rand();
	return (double)r / 4294967296.0;
}

/* Starts one attempt of delivery row with hook h. Returns 0, or a
 * negative value after recording why it could not start (a secret that no
 * longer parses): that counts as a failed attempt. */
static int start(dk_dispatcher *d, dk_delivery_row *row, const dk_hook_row *h, int64_t now)
{
	xfer *x = dk_calloc(1, sizeof(*x));
	char *sig = NULL;
	dk_buf hv = DK_BUF_INIT;
	const char *old = h->old_secret && h->old_secret_until > now ? h->old_secret : NULL;
	int error;

	x->id = row->id;
	x->hook_id = row->hook_id;
	x->attempts = row->attempts;
	x->started = now;
	x->retry_after = -1;
	x->url = dk_strdup(h->url);
	x->body = row->body;
	row->body = NULL;
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, row->id);
	if ((error = dk_hook_signature_header(&sig, h->secret, old, id, now, x->body,
	                                      strlen(x->body))) < 0) {
		xfer_free(x);
		return error;
	}
	dk_buf_printf(&hv, "webhook-id: %s", id);
	x->headers = curl_slist_append(x->headers, hv.ptr);
	dk_buf_clear(&hv);
	dk_buf_printf(&hv, "webhook-timestamp: %" PRId64, now);
	x->headers = curl_slist_append(x->headers, hv.ptr);
	dk_buf_clear(&hv);
	dk_buf_printf(&hv, "webhook-signature: %s", sig);
	x->headers = curl_slist_append(x->headers, hv.ptr);
	x->headers = curl_slist_append(x->headers, "Content-Type: application/json");
	/* No "Expect: 100-continue" round trip for larger bodies. */
	x->headers = curl_slist_append(x->headers, "Expect:");
	dk_buf_free(&hv);
	free(sig);

	x->easy = d->nspare ? d->spare[--d->nspare] : curl_easy_init();
	if (!x->easy || !x->headers) {
		xfer_free(x);
		return dk_error_set(DK_EINTERNAL,
		                    "libcurl could not make a request (out of memory)");
	}
	CURL *e = x->easy;
	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, d->opts.timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, d->opts.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, DK_HOOK_USER_AGENT);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(x->body));
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		x->easy = NULL;
		xfer_free(x);
		return dk_error_set(DK_EINTERNAL, "libcurl refused a request");
	}
	d->live[d->nlive++] = x;
	return 0;
}

/* Queues the outcome of one attempt; flush writes it. err and log are
 * copied. */
static int64_t mono_ms(void);

static void record(dk_dispatcher *d, int64_t id, dk_delivery_status st, int http, const char *err,
                   int64_t next, int64_t now, int64_t disable_hook, const char *log)
{
	if (d->ndone == 0)
		d->first_done_ms = mono_ms();
	if (d->ndone == d->capdone) {
		d->capdone = d->capdone ? 2 * d->capdone : 64;
		d->done = dk_realloc(d->done, d->capdone * sizeof(*d->done));
	}
	outcome *o = &d->done[d->ndone++];
	o->id = id;
	o->st = st;
	o->http = http;
	o->err = err ? dk_strdup(err) : NULL;
	o->next = next;
	o->now = now;
	o->disable_hook = disable_hook;
	o->log = log ? dk_strdup(log) : NULL;
}

/* Writes every queued outcome in one short transaction: the responses
 * that arrived together are acknowledged together, so a burst costs one
 * fsync, not one per delivery. No request is sent while it is open. On
 * failure nothing of the batch is written, and those deliveries stay
 * pending and go again. The log lines follow the commit, so they tell
 * only what is durable. */
static int flush(dk_dispatcher *d)
{
	int error = 0;
	if (d->ndone == 0)
		return 0;
	if ((error = dk_store_begin(d->store)) < 0)
		goto cleanup;
	for (size_t i = 0; i < d->ndone; i++) {
		outcome *o = &d->done[i];
		if ((error = dk_store_delivery_record(d->store, o->id, o->st, o->http, o->err,
		                                      o->next, o->now)) < 0 &&
		    error != DK_ENOTFOUND) /* its subscription was removed meanwhile */
			break;
		if (o->disable_hook > 0 &&
		    (error = dk_store_hook_set_enabled(d->store, o->disable_hook, 0)) < 0 &&
		    error != DK_ENOTFOUND)
			break;
		error = 0;
	}
	if (error < 0 || (error = dk_store_commit(d->store)) < 0) {
		dk_store_rollback(d->store);
		goto cleanup;
	}
	for (size_t i = 0; i < d->ndone; i++)
		if (d->done[i].log)
			fputs(d->done[i].log, d->opts.log);
	fflush(d->opts.log);
cleanup:
	for (size_t i = 0; i < d->ndone; i++) {
		free(d->done[i].err);
		free(d->done[i].log);
	}
	d->ndone = 0;
	return error;
}

/* Keeps the earliest retry scheduled, for dk_dispatch_run's summary. */
static void note_retry(dk_dispatcher *d, int64_t at)
{
	if (!d->stats.next_due || at < d->stats.next_due)
		d->stats.next_due = at;
}

/* Decides what a finished attempt means and queues its record. */
static int finish(dk_dispatcher *d, xfer *x, CURLcode code)
{
	long http = 0;
	int64_t now = 0;
	dk_buf err = DK_BUF_INIT, line = DK_BUF_INIT;
	int error;

	if ((error = dk_time_now(&now)) < 0)
		return error;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &http);
	d->stats.attempts++;
	if (code == CURLE_OK && http >= 200 && http < 300) {
		d->stats.delivered++;
		record(d, x->id, DK_DELIVERY_DELIVERED, (int)http, NULL, 0, now, 0, NULL);
		return 0;
	}
	if (code != CURLE_OK) {
		http = 0;
		dk_buf_printf(&err, "%s", curl_easy_strerror(code));
		if (x->errbuf[0])
			dk_buf_printf(&err, ": %s", x->errbuf);
	} else {
		dk_buf_printf(&err, "HTTP %ld", http);
		if (http >= 300 && http < 400)
			dk_buf_puts(&err, " (redirects are not followed; fix the URL)");
		/* a short, printable excerpt of what the receiver said */
		size_t n = 0;
		while (n < x->snippet.len && n < ERR_SNIPPET &&
		       isprint((unsigned char)x->snippet.ptr[n]))
			n++;
		if (n)
			dk_buf_printf(&err, ": %.*s", (int)n, x->snippet.ptr);
	}
	if (code == CURLE_OK && http == 410) {
		d->stats.dead++;
		d->stats.disabled++;
		dk_buf_printf(&line,
		              "hook.disabled hook=%" PRId64 " delivery=%" PRId64
		              " url=%s reason=\"410 Gone\"\n",
		              x->hook_id, x->id, x->url);
		dk_buf_puts(&err, " (the receiver is gone; subscription disabled)");
		record(d, x->id, DK_DELIVERY_DEAD, (int)http, err.ptr, 0, now, x->hook_id,
		       line.ptr);
		goto cleanup;
	}
	int64_t delay = dk_hook_retry_delay(&d->opts.schedule, x->attempts + 1,
	                                    code == CURLE_OK ? x->retry_after : -1, jitter());
	if (delay < 0) {
		d->stats.dead++;
		dk_buf_printf(&line,
		              "hook.failing hook=%" PRId64 " delivery=%" PRId64
		              " attempts=%d url=%s status=%ld error=\"%s\"\n",
		              x->hook_id, x->id, x->attempts + 1, x->url, http, err.ptr);
		record(d, x->id, DK_DELIVERY_DEAD, (int)http, err.ptr, 0, now, 0, line.ptr);
	} else {
		d->stats.retrying++;
		note_retry(d, now + delay);
		record(d, x->id, DK_DELIVERY_PENDING, (int)http, err.ptr, now + delay, now, 0,
		       NULL);
	}
cleanup:
	dk_buf_free(&err);
	dk_buf_free(&line);
	return 0;
}

/* 1 when id is being sent, or was and its outcome is not written yet:
 * either way the store still says pending and it must not go again. */
static int in_flight(const dk_dispatcher *d, int64_t id)
{
	for (size_t i = 0; i < d->nlive; i++)
		if (d->live[i]->id == id)
			return 1;
	for (size_t i = 0; i < d->ndone; i++)
		if (d->done[i].id == id)
			return 1;
	return 0;
}

/* Starts due deliveries until max_in_flight, walking the due set in id
 * order a page at a time. A whole walk (d->fill_all: at each step, on a
 * wakeup and after outcomes are written) starts from the lowest id; in
 * between, a fill after responses only looks above d->cursor, the last id
 * a walk dealt with: what lies below it was started, is in flight or
 * waiting to be written, or waits for something that only a write, a
 * wakeup or the clock changes, and each of those brings a whole walk. So
 * one fill per few responses reads the few new rows it starts, not every
 * row in flight again. */
static int fill(dk_dispatcher *d)
{
	dk_delivery_row *rows = NULL;
	dk_hook_row *hooks = NULL; /* the subscriptions seen in this fill */
	size_t nrows = 0, nhooks = 0;
	int whole = d->fill_all;
	int64_t now = 0, after = whole ? 0 : d->cursor;
	int error;

	d->need_fill = 0;
	d->fill_all = 0;
	if ((error = dk_time_now(&now)) < 0)
		return error;
	for (;;) {
		size_t i, limit;
		if (d->nlive >= d->opts.max_in_flight)
			break;
		/* rows in flight come back in a whole walk: a page with room */
		limit = d->opts.max_in_flight - d->nlive + (whole ? d->nlive : 0);
		if ((error =
		         dk_store_outbox_due_after(d->store, now, after, limit, &rows, &nrows)) < 0)
			goto cleanup;
		for (i = 0; i < nrows && d->nlive < d->opts.max_in_flight; i++) {
			dk_delivery_row *r = &rows[i];
			const dk_hook_row *h = NULL;
			after = r->id;
			if (in_flight(d, r->id))
				continue;
			for (size_t k = 0; k < nhooks; k++)
				if (hooks[k].id == r->hook_id)
					h = &hooks[k];
			if (!h) {
				hooks = dk_realloc(hooks, (nhooks + 1) * sizeof(*hooks));
				memset(&hooks[nhooks], 0, sizeof(*hooks));
				error = dk_store_hook_get(d->store, r->hook_id, &hooks[nhooks]);
				if (error == DK_ENOTFOUND) {
					/* removed since the query: its deliveries went too */
					error = 0;
					continue;
				}
				if (error < 0)
					goto cleanup;
				h = &hooks[nhooks++];
			}
			if (!h->enabled) {
				/* waits, pending, until the subscription is enabled */
				continue;
			}
			if (start(d, r, h, now) < 0) {
				/* cannot even sign: a failed attempt, with why */
				int64_t delay = dk_hook_retry_delay(&d->opts.schedule,
				                                    r->attempts + 1, -1, jitter());
				d->stats.attempts++;
				if (delay < 0) {
					d->stats.dead++;
				} else {
					d->stats.retrying++;
					note_retry(d, now + delay);
				}
				record(d, r->id, delay < 0 ? DK_DELIVERY_DEAD : DK_DELIVERY_PENDING,
				       0, dk_error_last(), delay < 0 ? 0 : now + delay, now, 0,
				       NULL);
			}
		}
		/* the last page, or full: rows from i on were not dealt with */
		int more = nrows == limit && i == nrows;
		dk_delivery_rows_free(rows, nrows);
		rows = NULL;
		nrows = 0;
		if (!more)
			break;
	}
	if (whole || after > d->cursor)
		d->cursor = after;
cleanup:
	dk_delivery_rows_free(rows, nrows);
	dk_hook_rows_free(hooks, nhooks);
	return error;
}

/* Milliseconds on a monotonic clock: step budgets do not follow
 * DOCKET_NOW. */
static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Free slots that make a fill worth its query. */
static size_t refill_at(const dk_dispatcher *d)
{
	size_t n = d->opts.max_in_flight / 8;
	return n ? n : 1;
}

int dk_dispatcher_step(dk_dispatcher *d, int max_ms, int *idle)
{
	int64_t end = mono_ms() + (max_ms > 0 ? max_ms : 0);
	int error = 0, running = 0;

	*idle = 0;
	/* Events may have been enqueued and retries come due since the last
	 * step. */
	d->need_fill = 1;
	d->fill_all = 1;
	atomic_store(&d->woken, 0);
	for (;;) {
		if (d->need_fill && (error = fill(d)) < 0)
			return error;
		if (d->nlive == 0) {
			/* Written outcomes may let an instance's next delivery go. */
			if (d->ndone) {
				if ((error = flush(d)) < 0)
					return error;
				d->need_fill = 1;
				d->fill_all = 1;
				continue;
			}
			*idle = 1;
			return 0;
		}
		curl_multi_perform(d->multi, &running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(d->multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			xfer *x = NULL;
			CURLcode code = m->data.result;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			/* decide before retiring: x owns what the record names */
			error = finish(d, x, code);
			xfer_retire(d, x);
			if (error < 0)
				return error;
		}
		/* Refill, above the cursor, once an eighth of the slots is
		 * free: a query per few responses, not per response. */
		if (d->opts.max_in_flight - d->nlive >= refill_at(d))
			d->need_fill = 1;
		int64_t t = mono_ms(), left_ms = end - t, wait = 100;
		if (d->ndone && (d->ndone >= d->opts.max_in_flight ||
		                 t - d->first_done_ms >= FLUSH_MS || left_ms <= 0)) {
			if ((error = flush(d)) < 0)
				return error;
			d->need_fill = 1;
			d->fill_all = 1;
		}
		if (left_ms <= 0)
			return 0;
		if (d->ndone && d->first_done_ms + FLUSH_MS - t < wait)
			wait = d->first_done_ms + FLUSH_MS - t;
		if (left_ms < wait)
			wait = left_ms;
		if (!d->need_fill && wait > 0)
			curl_multi_poll(d->multi, NULL, 0, (int)wait, NULL);
		/* Queued while transfers were in flight: start it now, not when
		 * one of them finishes (that could be a slow receiver's 15 s). */
		if (atomic_exchange(&d->woken, 0)) {
			d->need_fill = 1;
			d->fill_all = 1;
		}
	}
}

int dk_dispatch_run(dk_store *store, const dk_dispatch_opts *opts, dk_dispatch_stats *stats)
{
	dk_dispatcher *d = NULL;
	int error, idle = 0;

	if ((error = dk_dispatcher_new(&d, store, opts)) < 0)
		return error;
	while (!idle)
		if ((error = dk_dispatcher_step(d, 1000, &idle)) < 0)
			break;
	if (error == 0 && stats) {
		/* The store knows retries scheduled by earlier runs; rows it
		 * reports due already are waiting behind an older delivery of
		 * their instance, so this run's own retries say more. */
		int64_t next = 0, now = 0;
		*stats = d->stats;
		if ((error = dk_store_outbox_next_due(store, &next)) == 0 &&
		    (error = dk_time_now(&now)) == 0 && next > now &&
		    (!stats->next_due || next < stats->next_due))
			stats->next_due = next;
	}
	dk_dispatcher_free(d);
	return error;
}
