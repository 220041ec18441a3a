/*
 * receiver.c - a webhook receiver for tests and demos (libmicrohttpd).
 *
 *   receiver --secret whsec_... [--port N] [--port-file F] [--log F]
 *            [--fail N] [--status CODE] [--retry-after V]
 *            [--slow MS] [--slow-count N] [--tolerance S] [--now-file F]
 *            [--threads N]
 *
 * Listens on 127.0.0.1 only (port 0: the kernel picks one, written to
 * --port-file). For each POST it checks the Standard Webhooks signature and
 * that webhook-timestamp is within --tolerance seconds (default 300) of now
 * (the instant in --now-file when given, so tests that drive docket with
 * DOCKET_NOW can drive the receiver's clock too). The first --fail requests
 * get --status (default 500; a 3xx carries a Location back to this
 * receiver, so a client that followed it would show up as path
 * "/redirected"), with Retry-After when asked; the first --slow-count
 * requests (default all) are answered only after --slow ms. Otherwise a bad
 * signature or timestamp gets 401, an id already acknowledged gets 200 and
 * is marked duplicate, anything else 200.
 *
 * Every request becomes one JSON line in --log, written when it arrives:
 * n, path, id, timestamp, signature, content_type, user_agent, verified,
 * error, status, duplicate, body, client_port (the sender's TCP port:
 * requests sharing one came over one kept-alive connection), and
 * received_us (wall clock, microseconds since 1970, taken when the whole
 * request is in: what a latency measure compares with the send time).
 * Without --log nothing is written per request. SIGTERM or SIGINT stops it,
 * after one line on stderr: "receiver: N requests, V verified, D duplicate,
 * R refused" (refused: answered 401 for a bad signature or timestamp).
 *
 * It is the honest peer of the delivery benchmark, so it is cheap: without
 * --slow, a small pool of epoll threads serves every connection (no thread
 * per connection; --threads, default 2), acknowledged ids sit in a hash set, and the JSON line is
 * only made when there is a log to write it to. --slow sleeps in the
 * handler, so it keeps a thread per connection: one slow answer must not
 * hold up the others.
 */
#include "util/buf.h"
#include "util/error.h"
#include "util/time.h"
#include "web-hooks/hooks.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (1024 * 1024)

static struct {
	const char *secret;
	const char *now_file;
	const char *retry_after;
	long fail, status, slow_ms, slow_count, tolerance;
	unsigned port;
	FILE *log;
	pthread_mutex_t lock;
	long count, verified, duplicates, refused;
	char **acked;            /* ids answered 2xx: open addressing, NULL is free */
	size_t nacked, capacked; /* capacked is 0 or a power of two */
} R = {.status = 500, .slow_count = -1, .tolerance = 300, .lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct {
	dk_buf body;
	int too_big;
} request;

static int64_t receiver_now(void)
{
	int64_t now = (int64_t)time(NULL);
	if (R.now_file) {
		FILE *f = fopen(R.now_file, "r");
		char line[64] = "";
		if (f) {
			if (fgets(line, sizeof(line), f))
				line[strcspn(line, "\r\n")] = '\0';
			fclose(f);
			if (*line && dk_time_parse(&now, line) < 0)
				now = (int64_t)time(NULL);
		}
	}
	return now;
}

static size_t id_hash(const char *id)
{
	size_t h = 1469598103934665603u; /* FNV-1a */
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211u;
	return h;
}

/* 1 when id was acknowledged before; otherwise remembers it and gives 0. */
static int ack(const char *id)
{
	if (2 * (R.nacked + 1) > R.capacked) {
		size_t cap = R.capacked ? 2 * R.capacked : 1024;
		char **t = dk_calloc(cap, sizeof(*t));
		for (size_t i = 0; i < R.capacked; i++) {
			if (!R.acked[i])
				continue;
			size_t k = id_hash(R.acked[i]) & (cap - 1);
			while (t[k])
				k = (k + 1) & (cap - 1);
			t[k] = R.acked[i];
		}
		free(R.acked);
		R.acked = t;
		R.capacked = cap;
	}
	size_t k = id_hash(id) & (R.capacked - 1);
	for (; R.acked[k]; k = (k + 1) & (R.capacked - 1))
		if (strcmp(R.acked[k], id) == 0)
			return 1;
	R.acked[k] = dk_strdup(id);
	R.nacked++;
	return 0;
}

static void json_set_str(json_t *o, const char *k, const char *v, size_t len)
{
	json_t *s = v ? json_stringn(v, len) : NULL;
	json_object_set_new(o, k, s ? s : json_null());
}

/* on_purpose: a --fail answer, which carries Location or Retry-After. */
static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *text,
                              int on_purpose)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;
	if (!r)
		return MHD_NO;
	if (on_purpose && status >= 300 && status < 400) {
		char loc[64];
		snprintf(loc, sizeof(loc), "http://127.0.0.1:%u/redirected", R.port);
		MHD_add_response_header(r, "Location", loc);
	}
	if (on_purpose && status >= 400 && R.retry_after)
		MHD_add_response_header(r, "Retry-After", R.retry_after);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* One JSON line in the log for this request; called under R.lock. */
static void log_request(struct MHD_Connection *c, const char *url, long n, const char *id,
                        const char *ts, const char *sig, int verified, const char *why, long status,
                        int dup, const char *body, size_t body_len, const struct timespec *at)
{
	json_t *o = json_object();
	json_object_set_new(o, "n", json_integer(n));
	json_set_str(o, "path", url, strlen(url));
	json_set_str(o, "id", id, id ? strlen(id) : 0);
	json_set_str(o, "timestamp", ts, ts ? strlen(ts) : 0);
	json_set_str(o, "signature", sig, sig ? strlen(sig) : 0);
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
	json_set_str(o, "content_type", ct, ct ? strlen(ct) : 0);
	json_set_str(o, "user_agent", ua, ua ? strlen(ua) : 0);
	json_object_set_new(o, "verified", json_boolean(verified));
	json_set_str(o, "error", why, why ? strlen(why) : 0);
	json_object_set_new(o, "status", json_integer(status));
	json_object_set_new(o, "duplicate", json_boolean(dup));
	json_set_str(o, "body", body, body_len);
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
		json_object_set_new(
		    o, "client_port",
		    json_integer(ntohs(((const struct sockaddr_in *)ci->client_addr)->sin_port)));
	json_object_set_new(o, "received_us",
	                    json_integer((json_int_t)at->tv_sec * 1000000 + at->tv_nsec / 1000));
	char *line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (line) {
		fprintf(R.log, "%s\n", line);
		fflush(R.log);
	}
	free(line);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	request *rq = *con_cls;
	(void)cls;
	(void)version;
	if (!rq) {
		rq = dk_calloc(1, sizeof(*rq));
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		if (rq->body.len + *upload_size > MAX_BODY)
			rq->too_big = 1;
		else
			dk_buf_put(&rq->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "POST") != 0)
		return answer(c, 405, "POST webhooks here\n", 0);
	if (rq->too_big)
		return answer(c, 413, "body too large\n", 0);

	const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
	const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
	const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
	struct timespec arrived;
	clock_gettime(CLOCK_REALTIME, &arrived);
	const char *body = dk_buf_cstr(&rq->body);
	int64_t now = receiver_now();
	int verified =
	    dk_hook_verify(R.secret, id, ts, body, rq->body.len, sig, now, R.tolerance) == 0;
	const char *why = verified ? NULL : dk_error_last();
	long status, n;
	int dup = 0, slow;

	pthread_mutex_lock(&R.lock);
	n = ++R.count;
	if (n <= R.fail) {
		status = R.status;
	} else if (!verified) {
		status = 401;
		R.refused++;
	} else {
		status = 200;
		dup = ack(id);
		R.verified++;
		R.duplicates += dup;
	}
	slow = R.slow_ms > 0 && (R.slow_count < 0 || n <= R.slow_count);
	if (R.log)
		log_request(c, url, n, id, ts, sig, verified, why, status, dup, body, rq->body.len,
		            &arrived);
	pthread_mutex_unlock(&R.lock);

	if (slow) {
		struct timespec t = {R.slow_ms / 1000, (R.slow_ms % 1000) * 1000000L};
		nanosleep(&t, NULL);
	}
	return answer(c, (unsigned)status, status < 300 ? "ok\n" : "refused\n", n <= R.fail);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode code)
{
	request *rq = *con_cls;
	(void)cls;
	(void)c;
	(void)code;
	if (rq) {
		dk_buf_free(&rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: receiver --secret whsec_... [--port N] [--port-file F] "
	                "[--log F] [--fail N] [--status CODE] [--retry-after V] [--slow MS] "
	                "[--slow-count N] [--tolerance S] [--now-file F] [--threads N]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *port_file = NULL, *log_path = NULL;
	long port = 0, threads = 2;
	sigset_t sigs;
	int sig = 0, rc = 1;
	struct MHD_Daemon *d = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--secret") == 0)
			R.secret = v;
		else if (strcmp(a, "--port") == 0)
			port = atol(v);
		else if (strcmp(a, "--port-file") == 0)
			port_file = v;
		else if (strcmp(a, "--log") == 0)
			log_path = v;
		else if (strcmp(a, "--fail") == 0)
			R.fail = atol(v);
		else if (strcmp(a, "--status") == 0)
			R.status = atol(v);
		else if (strcmp(a, "--retry-after") == 0)
			R.retry_after = v;
		else if (strcmp(a, "--slow") == 0)
			R.slow_ms = atol(v);
		else if (strcmp(a, "--slow-count") == 0)
			R.slow_count = atol(v);
		else if (strcmp(a, "--tolerance") == 0)
			R.tolerance = atol(v);
		else if (strcmp(a, "--now-file") == 0)
			R.now_file = v;
		else if (strcmp(a, "--threads") == 0)
			threads = atol(v);
		else
			return usage();
	}
	if (!R.secret || port < 0 || port > 65535 || R.status < 100 || R.status > 599 ||
	    threads < 1 || threads > 64)
		return usage();
	if (dk_hook_secret_check(R.secret) < 0) {
		fprintf(stderr, "receiver: %s\n", dk_error_last());
		return 2;
	}
	if (log_path && !(R.log = fopen(log_path, "a"))) {
		perror(log_path);
		return 1;
	}
	/* Threads started by the daemon inherit this mask, so the signals
	 * reach only sigwait below. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	struct sockaddr_in addr;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (R.slow_ms > 0)
		d = MHD_start_daemon(
		    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL,
		    (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
		    (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	else
		d = MHD_start_daemon(
		    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)port, NULL, NULL,
		    on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		    MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_THREAD_POOL_SIZE,
		    (unsigned)threads, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "receiver: cannot listen on 127.0.0.1:%ld\n", port);
		goto cleanup;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	R.port = info ? info->port : (unsigned)port;
	if (port_file) {
		/* write then rename: a test polling the file never reads half */
		dk_buf tmp = DK_BUF_INIT;
		dk_buf_printf(&tmp, "%s.tmp", port_file);
		FILE *f = fopen(tmp.ptr, "w");
		if (!f || fprintf(f, "%u\n", R.port) < 0 || fclose(f) != 0 ||
		    rename(tmp.ptr, port_file) != 0) {
			perror(port_file);
			dk_buf_free(&tmp);
			goto cleanup;
		}
		dk_buf_free(&tmp);
	}
	sigwait(&sigs, &sig);
	rc = 0;
	MHD_stop_daemon(d);
	d = NULL;
	fprintf(stderr, "receiver: %ld requests, %ld verified, %ld duplicate, %ld refused\n",
	        R.count, R.verified, R.duplicates, R.refused);
cleanup:
	if (d)
		MHD_stop_daemon(d);
	if (R.log)
		fclose(R.log);
	for (size_t i = 0; i < R.capacked; i++)
		free(R.acked[i]);
	free(R.acked);
	return rc;
}
