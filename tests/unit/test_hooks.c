/* test_hooks.c - webhook signing, secrets, event lists, URLs, retry policy,
 * Retry-After and the payload's shape. */
#include "store/store.h"
#include "util/error.h"
#include "util/time.h"
#include "web-hooks/hooks.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* The example from the Standard Webhooks specification. */
#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS     1614265330
#define SPEC_BODY   "{\"test\": 2432232314}"
#define SPEC_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void sign_spec_vector(void **state)
{
	char *sig = NULL;
	(void)state;
	assert_int_equal(
	    dk_hook_sign(&sig, SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY)), 0);
	assert_string_equal(sig, SPEC_SIG);
	free(sig);
}

static void sign_header_rotation(void **state)
{
	char *other = NULL, *h = NULL, *one = NULL, *two = NULL;
	(void)state;
	assert_int_equal(dk_hook_secret_generate(&other), 0);
	assert_int_equal(dk_hook_signature_header(&h, other, SPEC_SECRET, SPEC_ID, SPEC_TS,
	                                          SPEC_BODY, strlen(SPEC_BODY)),
	                 0);
	assert_int_equal(dk_hook_sign(&one, other, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY)),
	                 0);
	/* new secret first, then the old one, one space between */
	size_t n = strlen(one);
	assert_int_equal(strncmp(h, one, n), 0);
	assert_string_equal(h + n, " " SPEC_SIG);
	/* no overlap: a single signature */
	assert_int_equal(dk_hook_signature_header(&two, other, NULL, SPEC_ID, SPEC_TS, SPEC_BODY,
	                                          strlen(SPEC_BODY)),
	                 0);
	assert_string_equal(two, one);
	free(other);
	free(h);
	free(one);
	free(two);
}

static void verify_accepts_and_rejects(void **state)
{
	const char *b = SPEC_BODY;
	size_t n = strlen(b);
	(void)state;
	assert_int_equal(
	    dk_hook_verify(SPEC_SECRET, SPEC_ID, "1614265330", b, n, SPEC_SIG, SPEC_TS + 10, 300),
	    0);
	/* either signature of a rotation header will do */
	assert_int_equal(dk_hook_verify(SPEC_SECRET, SPEC_ID, "1614265330", b, n,
	                                "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " SPEC_SIG,
	                                SPEC_TS, 300),
	                 0);
	/* one byte of body changed */
	assert_int_equal(dk_hook_verify(SPEC_SECRET, SPEC_ID, "1614265330",
	                                "{\"test\": 2432232315}", n, SPEC_SIG, SPEC_TS, 300),
	                 DK_EFORBIDDEN);
	/* another id */
	assert_int_equal(
	    dk_hook_verify(SPEC_SECRET, "msg_other", "1614265330", b, n, SPEC_SIG, SPEC_TS, 300),
	    DK_EFORBIDDEN);
	/* stale: six minutes late */
	assert_int_equal(
	    dk_hook_verify(SPEC_SECRET, SPEC_ID, "1614265330", b, n, SPEC_SIG, SPEC_TS + 360, 300),
	    DK_EFORBIDDEN);
	assert_non_null(strstr(dk_error_last(), "tolerated"));
	/* a v2 entry is not a v1 signature */
	assert_int_equal(dk_hook_verify(SPEC_SECRET, SPEC_ID, "1614265330", b, n,
	                                "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", SPEC_TS,
	                                300),
	                 DK_EFORBIDDEN);
	assert_int_equal(
	    dk_hook_verify(SPEC_SECRET, SPEC_ID, "16142x", b, n, SPEC_SIG, SPEC_TS, 300),
	    DK_EINVALID);
}

static void secret_parsing(void **state)
{
	char *s = NULL;
	unsigned char *key = NULL;
	size_t len = 0;
	(void)state;
	assert_int_equal(dk_hook_secret_check(SPEC_SECRET), 0);
	assert_int_equal(dk_hook_secret_key(&key, &len, SPEC_SECRET), 0);
	assert_int_equal(len, 24);
	free(key);

	assert_int_equal(dk_hook_secret_generate(&s), 0);
	assert_int_equal(strncmp(s, "whsec_", 6), 0);
	assert_int_equal(dk_hook_secret_key(&key, &len, s), 0);
	assert_int_equal(len, DK_HOOK_SECRET_GEN_BYTES);
	free(key);
	char *s2 = NULL;
	assert_int_equal(dk_hook_secret_generate(&s2), 0);
	assert_string_not_equal(s, s2);
	free(s);
	free(s2);

	/* no prefix */
	assert_int_equal(dk_hook_secret_check("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "whsec_"));
	/* 18 bytes: too short */
	assert_int_equal(dk_hook_secret_check("whsec_MfKQ9r8GKYqrTwjUPD8ILPZI"), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "at least 24"));
	/* 23 bytes with padding: still too short, and padding is not counted */
	assert_int_equal(dk_hook_secret_check("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaQ="),
	                 DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "23 bytes"));
	/* not base64 */
	assert_int_equal(dk_hook_secret_check("whsec_MfKQ9r8GKYqrTwjUPD8I!PZIo2LaLaSw"),
	                 DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "base64"));
	assert_int_equal(dk_hook_secret_check("whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw"),
	                 DK_EINVALID);
	assert_int_equal(dk_hook_secret_check("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa="),
	                 DK_EINVALID);
	assert_int_equal(dk_hook_secret_check("whsec_"), DK_EINVALID);
	assert_int_equal(dk_hook_secret_check(NULL), DK_EINVALID);
	/* signing refuses a bad secret rather than signing with garbage */
	assert_int_equal(dk_hook_sign(&s, "whsec_short", "1", 1, "{}", 2), DK_EINVALID);
}

static void event_lists(void **state)
{
	char *ev = NULL;
	(void)state;
	assert_int_equal(dk_hook_events_parse(&ev, "task.assigned,task.reminder task.assigned"), 0);
	assert_string_equal(ev, "task.assigned task.reminder");
	assert_true(dk_hook_events_match(ev, "task.reminder"));
	assert_false(dk_hook_events_match(ev, "task.escalated"));
	assert_false(dk_hook_events_match(ev, "task"));
	free(ev);
	assert_int_equal(dk_hook_events_parse(&ev, "all"), 0);
	assert_string_equal(ev, "");
	assert_true(dk_hook_events_match(ev, "instance.recalled"));
	free(ev);
	assert_int_equal(dk_hook_events_parse(&ev, ""), 0);
	assert_string_equal(ev, "");
	free(ev);
	assert_int_equal(dk_hook_events_parse(&ev, "task.assigned,task.asigned"), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "'task.asigned'"));
	assert_non_null(strstr(dk_error_last(), "instance.recalled"));
	for (size_t i = 0; dk_hook_event_types[i]; i++)
		assert_true(dk_hook_event_type_known(dk_hook_event_types[i]));
	assert_false(dk_hook_event_type_known("hook.failing"));
}

static void urls(void **state)
{
	(void)state;
	assert_int_equal(dk_hook_url_check("https://example.com/hook"), 0);
	assert_int_equal(dk_hook_url_check("http://127.0.0.1:9000/x?y=1"), 0);
	assert_int_equal(dk_hook_url_check("ftp://example.com/hook"), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "'ftp'"));
	assert_int_equal(dk_hook_url_check("file:///etc/passwd"), DK_EINVALID);
	assert_int_equal(dk_hook_url_check("gopher://example.com/"), DK_EINVALID);
	assert_int_equal(dk_hook_url_check("example.com/hook"), DK_EINVALID);
	assert_int_equal(dk_hook_url_check(""), DK_EINVALID);
}

static void retry_schedule(void **state)
{
	dk_hook_schedule s;
	(void)state;
	dk_hook_schedule_default(&s);
	assert_int_equal(s.n, 8);
	static const int64_t want[] = {0, 5, 300, 1800, 7200, 18000, 36000, 36000};
	for (int i = 0; i < 8; i++)
		assert_int_equal(dk_hook_retry_delay(&s, i, -1, 0), want[i]);
	/* after the eighth failure the delivery is dead */
	assert_int_equal(dk_hook_retry_delay(&s, 8, -1, 0), -1);
	assert_int_equal(dk_hook_retry_delay(&s, 8, 10, 0), -1);
	/* jitter shortens by at most a fifth, never lengthens */
	assert_int_equal(dk_hook_retry_delay(&s, 2, -1, 0.5), 270);
	int64_t d = dk_hook_retry_delay(&s, 4, -1, 0.999);
	assert_true(d > 7200 * 4 / 5 && d <= 7200);
	/* Retry-After lengthens, capped at a day */
	assert_int_equal(dk_hook_retry_delay(&s, 1, 120, 0.5), 120);
	assert_int_equal(dk_hook_retry_delay(&s, 2, 120, 0), 300);
	assert_int_equal(dk_hook_retry_delay(&s, 1, 7 * 86400, 0), DK_HOOK_RETRY_AFTER_MAX);

	assert_int_equal(dk_hook_schedule_parse(&s, "0, 5 PT5M,P1D,PT1H30M"), 0);
	assert_int_equal(s.n, 5);
	assert_int_equal(s.delays[2], 300);
	assert_int_equal(s.delays[3], 86400);
	assert_int_equal(s.delays[4], 5400);
	assert_int_equal(dk_hook_schedule_parse(&s, "0,5,soon"), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "'soon'"));
	assert_int_equal(dk_hook_schedule_parse(&s, "0,P1M"), DK_EINVALID);
	assert_int_equal(dk_hook_schedule_parse(&s, "-5"), DK_EINVALID);
	assert_int_equal(dk_hook_schedule_parse(&s, ""), DK_EINVALID);
}

static void retry_after(void **state)
{
	int64_t d = -1, now = 0;
	(void)state;
	assert_int_equal(dk_hook_retry_after_parse(&d, "120", 0), 0);
	assert_int_equal(d, 120);
	assert_int_equal(dk_hook_retry_after_parse(&d, " 0 ", 0), 0);
	assert_int_equal(d, 0);
	assert_int_equal(dk_time_parse(&now, "2015-10-21T07:20:00Z"), 0);
	assert_int_equal(dk_hook_retry_after_parse(&d, "Wed, 21 Oct 2015 07:28:00 GMT", now), 0);
	assert_int_equal(d, 480);
	assert_int_equal(dk_hook_retry_after_parse(&d, "Wednesday, 21-Oct-15 07:28:00 GMT", now),
	                 0);
	assert_int_equal(d, 480);
	assert_int_equal(dk_hook_retry_after_parse(&d, "Wed Oct 21 07:28:00 2015", now), 0);
	assert_int_equal(d, 480);
	/* a date in the past means now */
	assert_int_equal(dk_hook_retry_after_parse(&d, "Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
	assert_int_equal(d, 0);
	assert_int_equal(dk_hook_retry_after_parse(&d, "soon", now), DK_EINVALID);
	assert_int_equal(dk_hook_retry_after_parse(&d, "12abc", now), DK_EINVALID);
}

static const char *jstr(json_t *o, const char *path0, const char *path1, const char *key)
{
	if (path0)
		o = json_object_get(o, path0);
	if (path1)
		o = json_object_get(o, path1);
	return json_string_value(json_object_get(o, key));
}

static void payload_shape(void **state)
{
	dk_user users[2] = {
	    {.id = "li", .name = "李明", .email = "li@example.com"},
	    {.id = "wei", .name = "魏总"},
	};
	dk_org org = {.users = users, .nusers = 2};
	const char *assignees[] = {"wei", "ghost"};
	dk_hook_event ev = {
	    .type = "task.assigned",
	    .instance_id = "plan 7",
	    .seq = 3,
	    .flow_id = "monthly-plan",
	    .flow_version = 2,
	    .state = "review",
	    .title = "Plan for November",
	    .actor = "li",
	    .assignees = assignees,
	    .nassignees = 2,
	    .transition = "submit",
	    .base_url = "https://docket.example.com/",
	};
	char *body = NULL, *again = NULL;
	json_error_t jerr;
	(void)state;

	assert_int_equal(dk_time_parse(&ev.at, "2026-11-28T09:30:00Z"), 0);
	assert_int_equal(dk_hook_payload(&body, &ev, &org), 0);
	/* the same event gives the same bytes */
	assert_int_equal(dk_hook_payload(&again, &ev, &org), 0);
	assert_string_equal(body, again);
	free(again);
	assert_null(strchr(body, '\n'));

	json_t *j = json_loads(body, 0, &jerr);
	assert_non_null(j);
	/* top-level keys in a fixed order: receivers may log the body as is */
	assert_int_equal(strncmp(body,
	                         "{\"type\":\"task.assigned\",\"id\":\"plan 7:3\","
	                         "\"timestamp\":\"2026-11-28T09:30:00Z\",\"data\":{",
	                         strlen("{\"type\":\"task.assigned\",\"id\":\"plan 7:3\","
	                                "\"timestamp\":\"2026-11-28T09:30:00Z\",\"data\":{")),
	                 0);
	assert_string_equal(jstr(j, "data", "instance", "id"), "plan 7");
	assert_string_equal(jstr(j, "data", "instance", "flow"), "monthly-plan");
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(json_object_get(j, "data"), "instance"), "version")),
	                 2);
	assert_string_equal(jstr(j, "data", "instance", "state"), "review");
	assert_string_equal(jstr(j, "data", "instance", "title"), "Plan for November");
	assert_string_equal(jstr(j, "data", NULL, "actor"), "li");
	assert_true(json_is_null(json_object_get(json_object_get(j, "data"), "on_behalf_of")));
	assert_true(json_is_null(json_object_get(json_object_get(j, "data"), "comment")));
	assert_string_equal(jstr(j, "data", NULL, "transition"), "submit");
	assert_null(json_object_get(json_object_get(j, "data"), "evidence"));
	json_t *as = json_object_get(json_object_get(j, "data"), "assignees");
	assert_int_equal(json_array_size(as), 2);
	assert_string_equal(jstr(json_array_get(as, 0), NULL, NULL, "name"), "魏总");
	assert_true(json_is_null(json_object_get(json_array_get(as, 0), "email")));
	assert_string_equal(jstr(json_array_get(as, 1), NULL, NULL, "id"), "ghost");
	assert_true(json_is_null(json_object_get(json_array_get(as, 1), "name")));
	/* links: one trailing slash dropped, the id percent-encoded */
	assert_string_equal(jstr(j, "data", "links", "act"),
	                    "https://docket.example.com/api/instances/plan%207/transitions/{t}");
	assert_string_equal(jstr(j, "data", "links", "inbox"),
	                    "https://docket.example.com/inbox/instances/plan%207");
	json_decref(j);
	free(body);

	/* evidence events carry the evidence summary */
	ev.type = "evidence.attached";
	ev.evidence_kind = "plan";
	ev.evidence_name = "plan.pdf";
	ev.evidence_sha256 = "ab12";
	ev.base_url = NULL;
	setenv("DOCKET_BASE_URL", "http://inbox.local:9000", 1);
	assert_int_equal(dk_hook_payload(&body, &ev, NULL), 0);
	unsetenv("DOCKET_BASE_URL");
	j = json_loads(body, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(jstr(j, "data", "evidence", "kind"), "plan");
	assert_string_equal(jstr(j, "data", "evidence", "name"), "plan.pdf");
	assert_string_equal(jstr(j, "data", "evidence", "sha256"), "ab12");
	assert_string_equal(jstr(j, "data", "links", "inbox"),
	                    "http://inbox.local:9000/inbox/instances/plan%207");
	/* without an org directory names are null */
	as = json_object_get(json_object_get(j, "data"), "assignees");
	assert_true(json_is_null(json_object_get(json_array_get(as, 0), "name")));
	json_decref(j);
	free(body);

	/* the default base */
	ev.type = "instance.started";
	assert_int_equal(dk_hook_payload(&body, &ev, NULL), 0);
	assert_non_null(strstr(body, "\"inbox\":\"http://127.0.0.1:8080/inbox/instances/"));
	free(body);

	ev.type = "task.done";
	assert_int_equal(dk_hook_payload(&body, &ev, NULL), DK_EINVALID);
	assert_null(body);
	ev.type = "task.assigned";
	ev.comment = "bad \xff byte";
	assert_int_equal(dk_hook_payload(&body, &ev, NULL), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "UTF-8"));
	ev.comment = NULL;
	ev.flow_id = NULL;
	assert_int_equal(dk_hook_payload(&body, &ev, NULL), DK_EINVALID);
}

/* ---- the step function, against an in-process slow receiver ----------- */

static atomic_int slow_requests;

static enum MHD_Result slow_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version, const char *upload,
                                    size_t *upload_size, void **con_cls)
{
	static int marker;
	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload;
	if (!*con_cls) {
		*con_cls = &marker;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	atomic_fetch_add(&slow_requests, 1);
	struct timespec t = {0, 300 * 1000000L};
	nanosleep(&t, NULL);
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_queue_response(c, 204, r);
	MHD_destroy_response(r);
	return ret;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void enqueue_one(dk_store *s, const char *instance)
{
	int64_t now;
	assert_int_equal(dk_time_now(&now), 0);
	assert_int_equal(dk_store_begin(s), 0);
	assert_int_equal(dk_store_outbox_enqueue(s, "task.assigned", "plan", instance, "{}", now),
	                 0);
	assert_int_equal(dk_store_commit(s), 0);
}

static void dispatcher_step_budget(void **state)
{
	char dir[] = "/tmp/docket-test-hooks-XXXXXX", url[64], cmd[64];
	dk_store *s = NULL;
	dk_dispatcher *d = NULL;
	dk_dispatch_stats st;
	dk_hook_row h;
	struct sockaddr_in addr;
	int idle = 0;
	(void)state;

	assert_non_null(mkdtemp(dir));
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct MHD_Daemon *mhd = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
	    slow_handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_END);
	assert_non_null(mhd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook",
	         (unsigned)MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT)->port);

	assert_int_equal(dk_store_open(&s, dir), 0);
	memset(&h, 0, sizeof(h));
	h.url = url;
	h.events = (char *)"";
	h.secret = (char *)SPEC_SECRET;
	h.enabled = 1;
	assert_int_equal(dk_store_begin(s), 0);
	assert_int_equal(dk_store_hook_add(s, &h), 0);
	assert_int_equal(dk_store_commit(s), 0);
	enqueue_one(s, "a");
	enqueue_one(s, "a");

	dk_dispatch_opts opts = DK_DISPATCH_OPTS_INIT;
	assert_int_equal(dk_dispatcher_new(&d, s, &opts), 0);
	/* the receiver takes 300 ms: a 50 ms step returns with it in flight */
	int64_t t0 = now_ms();
	assert_int_equal(dk_dispatcher_step(d, 50, &idle), 0);
	assert_true(now_ms() - t0 < 290);
	assert_int_equal(idle, 0);
	dk_dispatcher_stats(d, &st);
	assert_int_equal(st.attempts, 0);
	/* later steps carry the same transfer on: it is not started twice,
	 * and the second event of the instance waits for the first */
	for (int i = 0; i < 40 && !idle; i++)
		assert_int_equal(dk_dispatcher_step(d, 50, &idle), 0);
	assert_int_equal(idle, 1);
	dk_dispatcher_stats(d, &st);
	assert_int_equal(st.delivered, 2);
	assert_int_equal(atomic_load(&slow_requests), 2);
	/* an event enqueued while the dispatcher lives is picked up */
	enqueue_one(s, "b");
	idle = 0;
	for (int i = 0; i < 40 && !idle; i++)
		assert_int_equal(dk_dispatcher_step(d, 50, &idle), 0);
	dk_dispatcher_stats(d, &st);
	assert_int_equal(st.delivered, 3);
	assert_int_equal(atomic_load(&slow_requests), 3);

	dk_dispatcher_free(d);
	dk_store_close(s);
	MHD_stop_daemon(mhd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Action links: what is signed comes back verified; one changed byte, a
 * wrong key or a field with a line break is refused. */
static void link_sign_verify(void **state)
{
	unsigned char key[32], other[32];
	dk_link l = {0}, got;
	char *tok = NULL;

	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	l.instance = "12";
	l.state = "review";
	l.visit = 2;
	l.transition = "approve";
	l.user = "wei";
	l.expires = 1800000000;
	assert_int_equal(dk_link_sign(&tok, key, sizeof(key), &l), 0);
	assert_null(strchr(tok, '/'));
	assert_null(strchr(tok, '+'));
	assert_null(strchr(tok, '='));
	assert_int_equal(dk_link_verify(&got, key, sizeof(key), tok), 0);
	assert_string_equal(got.instance, "12");
	assert_string_equal(got.state, "review");
	assert_int_equal(got.visit, 2);
	assert_string_equal(got.transition, "approve");
	assert_string_equal(got.user, "wei");
	assert_int_equal(got.expires, 1800000000);
	assert_int_equal(strlen(got.nonce), 32);
	dk_link_free(&got);
	assert_int_equal(dk_link_verify(&got, other, sizeof(other), tok), DK_EFORBIDDEN);
	dk_link_free(&got);
	for (size_t i = 0; tok[i]; i++) {
		char saved = tok[i];
		tok[i] = saved == 'A' ? 'B' : 'A';
		assert_int_equal(dk_link_verify(&got, key, sizeof(key), tok), DK_EFORBIDDEN);
		dk_link_free(&got);
		tok[i] = saved;
	}
	assert_int_equal(dk_link_verify(&got, key, sizeof(key), "no-dot"), DK_EFORBIDDEN);
	assert_int_equal(dk_link_verify(&got, key, sizeof(key), "."), DK_EFORBIDDEN);
	free(tok);
	/* Two links for the same move differ: each has its own nonce. */
	char *again = NULL;
	assert_int_equal(dk_link_sign(&tok, key, sizeof(key), &l), 0);
	assert_int_equal(dk_link_sign(&again, key, sizeof(key), &l), 0);
	assert_string_not_equal(tok, again);
	free(tok);
	free(again);
	l.user = "wei\nli";
	assert_int_equal(dk_link_sign(&tok, key, sizeof(key), &l), DK_EINVALID);
	assert_null(tok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sign_spec_vector),
	    cmocka_unit_test(sign_header_rotation),
	    cmocka_unit_test(verify_accepts_and_rejects),
	    cmocka_unit_test(secret_parsing),
	    cmocka_unit_test(event_lists),
	    cmocka_unit_test(urls),
	    cmocka_unit_test(retry_schedule),
	    cmocka_unit_test(retry_after),
	    cmocka_unit_test(payload_shape),
	    cmocka_unit_test(dispatcher_step_budget),
	    cmocka_unit_test(link_sign_verify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
