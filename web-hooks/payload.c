/*
 * payload.c - what a webhook says: event types, subscription checks and the
 * JSON body (jansson).
 *
 * The body is built once, when the event is written to the outbox, and is
 * never rebuilt: the signature covers these exact bytes, and a receiver that
 * deduplicates by webhook-id must see the same bytes on every retry.
 */
#include "web-hooks/hooks.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/time.h"

#include <curl/curl.h>
#include <jansson.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char *const dk_hook_event_types[] = {
    "instance.started",  "task.assigned",
    "task.reminder",     "task.escalated",
    "transition.fired",  "evidence.attached",
    "deadline.missed",   "instance.completed",
    "instance.recalled", NULL,
};

int dk_hook_event_type_known(const char *type)
{
	for (size_t i = 0; type && dk_hook_event_types[i]; i++)
		if (strcmp(type, dk_hook_event_types[i]) == 0)
			return 1;
	return 0;
}

/* 1 when the space-separated list holds word (length n). */
static int list_has(const char *list, const char *word, size_t n)
{
	const char *p = list;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		if ((size_t)(e - p) == n && n > 0 && strncmp(p, word, n) == 0)
			return 1;
		p = e;
	}
	return 0;
}

int dk_hook_events_parse(char **out, const char *list)
{
	dk_buf b = DK_BUF_INIT;
	const char *p = list ? list : "";

	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ' ' && *e != ',')
			e++;
		size_t n = (size_t)(e - p);
		if (n == 0)
			break;
		if ((n == 3 && strncmp(p, "all", 3) == 0) || (n == 1 && *p == '*')) {
			/* "all" means every event, whatever else is named */
			dk_buf_free(&b);
			*out = dk_strdup("");
			return 0;
		}
		char *word = dk_strndup(p, n);
		if (!dk_hook_event_type_known(word)) {
			dk_buf known = DK_BUF_INIT;
			for (size_t i = 0; dk_hook_event_types[i]; i++)
				dk_buf_printf(&known, "%s%s", i ? ", " : "",
				              dk_hook_event_types[i]);
			dk_error_set(DK_EINVALID,
			             "unknown event type '%s'; known types: %s (or all)", word,
			             dk_buf_cstr(&known));
			dk_buf_free(&known);
			free(word);
			dk_buf_free(&b);
			return DK_EINVALID;
		}
		if (!list_has(dk_buf_cstr(&b), word, n)) {
			if (b.len)
				dk_buf_putc(&b, ' ');
			dk_buf_puts(&b, word);
		}
		free(word);
		p = e;
	}
	*out = b.len ? dk_buf_detach(&b) : dk_strdup("");
	dk_buf_free(&b);
	return 0;
}

int dk_hook_events_match(const char *events, const char *type)
{
	if (!events || !*events)
		return 1;
	return type && list_has(events, type, strlen(type));
}

int dk_hook_url_check(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int error = 0;

	if (!u)
		return dk_error_set(DK_EINTERNAL, "out of memory parsing a URL");
	/* No default scheme: "example.com/hook" must not quietly become http. */
	CURLUcode uc = curl_url_set(u, CURLUPART_URL, url ? url : "", 0);
	if (uc != CURLUE_OK) {
		error = dk_error_set(
		    DK_EINVALID, "'%s' is not a URL (%s); write it like https://example.com/hook",
		    url ? url : "", curl_url_strerror(uc));
		goto cleanup;
	}
	curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		error = dk_error_set(DK_EINVALID,
		                     "'%s' uses the scheme '%s'; webhooks go only to http:// or "
		                     "https:// URLs",
		                     url, scheme ? scheme : "");
		goto cleanup;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
		error = dk_error_set(
		    DK_EINVALID, "'%s' names no host; write it like https://example.com/hook", url);
cleanup:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return error;
}

/* A JSON string or null; NULL back when text is not UTF-8. */
static json_t *str_or_null(const char *text, int *bad)
{
	if (!text)
		return json_null();
	json_t *j = json_string(text);
	if (!j)
		*bad = 1;
	return j ? j : json_null();
}

/* Appends s to b with every byte outside RFC 3986's unreserved set
 * percent-encoded, so an instance id cannot change a link's path. */
static void put_path_segment(dk_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			dk_buf_putc(b, (char)*p);
		else
			dk_buf_printf(b, "%%%02X", *p);
	}
}

/* The signed action links of assignee user into a["actions"]: one per
 * move of ev->actions that is theirs, each with a nonce of its own. */
static int put_actions(json_t *a, const dk_hook_event *ev, const char *user, const char *base,
                       int *bad)
{
	json_t *list = json_array();
	char when[DK_TIME_STRLEN];
	int error = 0;

	dk_time_format(when, ev->link_expires);
	for (size_t k = 0; k < ev->nactions; k++) {
		const dk_link *m = &ev->actions[k];
		dk_link l = *m;
		dk_buf url = DK_BUF_INIT;
		char *token = NULL;
		if (!m->user || strcmp(m->user, user) != 0)
			continue;
		l.instance = (char *)ev->instance_id;
		l.expires = ev->link_expires;
		l.nonce[0] = 0;
		if ((error = dk_link_sign(&token, ev->link_key, ev->link_key_len, &l)) < 0)
			break;
		dk_buf_printf(&url, "%s/links/%s", base, token);
		json_array_append_new(list, json_pack("{s:o, s:o, s:s, s:s}", "transition",
		                                      str_or_null(m->transition, bad), "state",
		                                      str_or_null(m->state, bad), "url",
		                                      dk_buf_cstr(&url), "expires_at", when));
		dk_buf_free(&url);
		free(token);
	}
	json_object_set_new(a, "actions", list);
	return error;
}

static const dk_user *org_user(const dk_org *org, const char *id)
{
	for (size_t i = 0; org && i < org->nusers; i++)
		if (org->users[i].id && strcmp(org->users[i].id, id) == 0)
			return &org->users[i];
	return NULL;
}

int dk_hook_payload(char **out, const dk_hook_event *ev, const dk_org *org)
{
	json_t *root = NULL;
	dk_buf base = DK_BUF_INIT, s = DK_BUF_INIT;
	char when[DK_TIME_STRLEN];
	int bad = 0, error = 0;

	*out = NULL;
	if (!ev || !dk_hook_event_type_known(ev->type))
		return dk_error_set(DK_EINVALID, "unknown webhook event type '%s'",
		                    ev && ev->type ? ev->type : "");
	if (!ev->instance_id || !*ev->instance_id || !ev->flow_id || !*ev->flow_id)
		return dk_error_set(DK_EINVALID, "a webhook event needs its instance and flow ids");

	const char *b = ev->base_url ? ev->base_url : getenv("DOCKET_BASE_URL");
	dk_buf_puts(&base, b && *b ? b : DK_HOOK_BASE_URL);
	while (base.len && base.ptr[base.len - 1] == '/')
		base.ptr[--base.len] = '\0';

	root = json_object();
	json_object_set_new(root, "type", json_string(ev->type));
	dk_buf_printf(&s, "%s:%" PRId64, ev->instance_id, ev->seq);
	json_object_set_new(root, "id", str_or_null(dk_buf_cstr(&s), &bad));
	dk_time_format(when, ev->at);
	json_object_set_new(root, "timestamp", json_string(when));

	json_t *data = json_object();
	json_object_set_new(root, "data", data);
	json_t *inst = json_object();
	json_object_set_new(data, "instance", inst);
	json_object_set_new(inst, "id", str_or_null(ev->instance_id, &bad));
	json_object_set_new(inst, "flow", str_or_null(ev->flow_id, &bad));
	json_object_set_new(inst, "version", json_integer(ev->flow_version));
	json_object_set_new(inst, "state", str_or_null(ev->state, &bad));
	json_object_set_new(inst, "title", str_or_null(ev->title, &bad));
	json_object_set_new(data, "actor", str_or_null(ev->actor, &bad));
	json_object_set_new(data, "on_behalf_of", str_or_null(ev->on_behalf_of, &bad));

	json_t *as = json_array();
	json_object_set_new(data, "assignees", as);
	for (size_t i = 0; i < ev->nassignees; i++) {
		const char *id = ev->assignees[i];
		const dk_user *u = id ? org_user(org, id) : NULL;
		json_t *a = json_object();
		json_object_set_new(a, "id", str_or_null(id, &bad));
		json_object_set_new(a, "name", str_or_null(u ? u->name : NULL, &bad));
		json_object_set_new(a, "email", str_or_null(u ? u->email : NULL, &bad));
		if (ev->link_key && id &&
		    (error = put_actions(a, ev, id, dk_buf_cstr(&base), &bad)) < 0)
			goto cleanup;
		json_array_append_new(as, a);
	}
	json_object_set_new(data, "transition", str_or_null(ev->transition, &bad));
	json_object_set_new(data, "comment", str_or_null(ev->comment, &bad));
	if (ev->evidence_kind) {
		json_t *e = json_object();
		json_object_set_new(e, "kind", str_or_null(ev->evidence_kind, &bad));
		json_object_set_new(e, "name", str_or_null(ev->evidence_name, &bad));
		json_object_set_new(e, "sha256", str_or_null(ev->evidence_sha256, &bad));
		json_object_set_new(data, "evidence", e);
	}

	json_t *links = json_object();
	json_object_set_new(data, "links", links);
	dk_buf_clear(&s);
	dk_buf_printf(&s, "%s/api/instances/", dk_buf_cstr(&base));
	put_path_segment(&s, ev->instance_id);
	dk_buf_puts(&s, "/transitions/{t}");
	json_object_set_new(links, "act", str_or_null(dk_buf_cstr(&s), &bad));
	dk_buf_clear(&s);
	dk_buf_printf(&s, "%s/inbox/instances/", dk_buf_cstr(&base));
	put_path_segment(&s, ev->instance_id);
	json_object_set_new(links, "inbox", str_or_null(dk_buf_cstr(&s), &bad));

	if (bad) {
		error = dk_error_set(DK_EINVALID,
		                     "webhook event for instance '%s' holds text that "
		                     "is not UTF-8; fix the source of that text",
		                     ev->instance_id);
		goto cleanup;
	}
	*out = json_dumps(root, JSON_COMPACT);
	if (!*out)
		error = dk_error_set(DK_EINTERNAL, "cannot serialise a webhook payload");
cleanup:
	json_decref(root);
	dk_buf_free(&base);
	dk_buf_free(&s);
	return error;
}

int dk_hook_enqueue(dk_store *s, const dk_hook_event *ev, const dk_org *org, int64_t now)
{
	char *body = NULL;
	int error;
	if ((error = dk_hook_payload(&body, ev, org)) < 0)
		return error;
	error = dk_store_outbox_enqueue(s, ev->type, ev->flow_id, ev->instance_id, body, now);
	free(body);
	return error;
}
