/*
 * routes_links.c - signed action links from webhook notifications:
 * GET /links/{token} shows what the link would do and asks for a comment
 * when the flow wants one; POST /links/{token} does it.
 *
 * GET never acts: mail scanners and link previews fetch every link in a
 * message, so only the button on the page (a POST) makes the move. The
 * link is the credential (no bearer token): its HMAC says docket made it
 * for that user and move. The checks, in order, each answered in plain
 * words and changing nothing: signature (403), already used (410),
 * expired (410), instance moved on or move no longer the user's (409).
 * The act runs through the runner as the link's user, with the same
 * engine rules (delegation, comment, guards) as the API, and marks the
 * link used in the act's own transaction. A form POST then lands on the
 * inbox page of the instance (303); a JSON POST gets the step as JSON.
 */
#include "api/api_int.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/time.h"
#include "web-hooks/hooks.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

/* Text into HTML, element content or a quoted attribute alike. */
static void put_html(dk_buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': dk_buf_puts(b, "&amp;"); break;
		case '<': dk_buf_puts(b, "&lt;"); break;
		case '>': dk_buf_puts(b, "&gt;"); break;
		case '"': dk_buf_puts(b, "&quot;"); break;
		case '\'': dk_buf_puts(b, "&#39;"); break;
		default: dk_buf_putc(b, *s);
		}
	}
}

static const char *jstr(const json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static void page_head(dk_buf *b, const char *title)
{
	dk_buf_puts(b, "<!doctype html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
	               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	               "<meta name=\"referrer\" content=\"no-referrer\">\n<title>docket · ");
	put_html(b, title);
	dk_buf_puts(b, "</title>\n<link rel=\"stylesheet\" href=\"/static/inbox.css\">\n</head>\n"
	               "<body>\n<header><a class=\"brand\" href=\"/inbox\">docket</a></header>\n"
	               "<main>\n<h1>");
	put_html(b, title);
	dk_buf_puts(b, "</h1>\n");
}

/* What the link is about, as a small table. */
static void page_facts(dk_buf *b, const json_t *view, const dk_link *link)
{
	char when[DK_TIME_STRLEN];
	const char *title = jstr(view, "title"), *st = jstr(view, "state_title");
	const char *name = jstr(view, "user_name"), *to = jstr(view, "target");

	dk_buf_puts(b, "<table class=\"link-facts\">\n<tr><th>实例 / Instance</th><td>#");
	put_html(b, jstr(view, "instance"));
	dk_buf_puts(b, " ");
	put_html(b, title ? title : "");
	dk_buf_puts(b, " <span class=\"badge\">");
	put_html(b, jstr(view, "flow"));
	dk_buf_puts(b, "</span></td></tr>\n<tr><th>环节 / Step</th><td>");
	put_html(b, st ? st : link->state);
	dk_buf_puts(b, "</td></tr>\n<tr><th>当前 / Now in</th><td>");
	put_html(b, jstr(view, "current"));
	dk_buf_puts(b, "</td></tr>\n<tr><th>操作 / Action</th><td><strong>");
	put_html(b, link->transition);
	dk_buf_puts(b, "</strong>");
	if (to) {
		dk_buf_puts(b, " → ");
		put_html(b, to);
	}
	dk_buf_puts(b, "</td></tr>\n<tr><th>身份 / Acting as</th><td>");
	if (name) {
		put_html(b, name);
		dk_buf_puts(b, " (");
	}
	put_html(b, link->user);
	if (name)
		dk_buf_puts(b, ")");
	dk_time_format(when, link->expires);
	dk_buf_puts(b, "</td></tr>\n<tr><th>有效期 / Valid until</th><td>");
	put_html(b, when);
	dk_buf_puts(b, "</td></tr>\n</table>\n");
}

static void page_end(dk_buf *b, const char *instance)
{
	if (instance) {
		dk_buf_puts(b, "<p><a href=\"/inbox/instances/");
		put_html(b, instance);
		dk_buf_puts(b, "\">在待办中打开 / Open in the inbox</a></p>\n");
	}
	dk_buf_puts(b, "</main>\n</body>\n</html>\n");
}

static void answer_html(dk_req *rq, unsigned status, dk_buf *b)
{
	json_decref(rq->json);
	rq->json = NULL;
	free(rq->raw);
	rq->problem = 0;
	rq->status = status;
	rq->raw_len = b->len;
	rq->raw = dk_buf_detach(b);
	rq->ctype = "text/html; charset=utf-8";
}

/* 1 when the client wants JSON rather than a page: a JSON body, or an
 * Accept that names JSON and not HTML. */
static int wants_json(dk_req *rq)
{
	const char *ct = dk_api_header(rq, "Content-Type");
	const char *acc = dk_api_header(rq, "Accept");
	if (ct && strncasecmp(ct, "application/json", 16) == 0)
		return 1;
	return acc && strstr(acc, "json") && !strstr(acc, "html");
}

/* A refusal: a problem object for JSON clients, else a page saying the
 * same in plain words. */
static int refuse(dk_req *rq, unsigned status, const char *headline, const char *detail,
                  const char *instance)
{
	dk_buf b = DK_BUF_INIT;
	if (wants_json(rq))
		return dk_api_problem(rq, status, "%s", detail);
	page_head(&b, headline);
	dk_buf_puts(&b, "<p id=\"message\" class=\"error\" role=\"alert\">");
	put_html(&b, detail);
	dk_buf_puts(&b, "</p>\n<p>这个链接没有改变任何内容。/ Nothing was changed by this "
	                "link.</p>\n");
	page_end(&b, instance);
	answer_html(rq, status, &b);
	return 0;
}

/* The verified link of the request and what it would do now, or the
 * refusal answered (returns 1). */
static int checked(dk_req *rq, dk_link *link, json_t **view)
{
	unsigned char key[DK_LINK_KEY_BYTES];
	char when[DK_TIME_STRLEN], *user = NULL;
	size_t keylen = 0;
	int64_t now, at = 0;
	int error;

	*view = NULL;
	if (!rq->ctx) {
		dk_api_problem(rq, 503, "the server cannot open its home: %s", dk_error_last());
		return 1;
	}
	error = dk_link_key(key, &keylen, rq->ctx->store, 0, 0);
	if (error == DK_ENOTFOUND)
		error =
		    dk_error_set(DK_EFORBIDDEN, "this link's signature is not valid: this docket "
		                                "never made action links");
	if (error == 0)
		error = dk_link_verify(link, key, keylen, rq->params[0]);
	if (error == DK_EFORBIDDEN) {
		refuse(rq, 403, "链接无效 / Link not valid", dk_error_last(), NULL);
		return 1;
	}
	if (error < 0 || (error = dk_time_now(&now)) < 0)
		goto fail;
	if ((error = dk_store_link_used(rq->ctx->store, link->nonce, &user, &at)) < 0)
		goto fail;
	if (error == 1) {
		dk_buf d = DK_BUF_INIT;
		dk_time_format(when, at);
		dk_buf_printf(&d, "this link was already used by %s at %s; a link works only once",
		              user, when);
		refuse(rq, 410, "链接已使用 / Link already used", dk_buf_cstr(&d), link->instance);
		dk_buf_free(&d);
		free(user);
		return 1;
	}
	if (link->expires <= now) {
		dk_buf d = DK_BUF_INIT;
		dk_time_format(when, link->expires);
		dk_buf_printf(&d, "this link expired at %s; act in the inbox instead", when);
		refuse(rq, 410, "链接已过期 / Link expired", dk_buf_cstr(&d), link->instance);
		dk_buf_free(&d);
		return 1;
	}
	if ((error = dk_runner_link_view(rq->ctx->runner, view, link)) < 0)
		goto fail;
	if (!json_is_true(json_object_get(*view, "open"))) {
		refuse(rq, 409, "链接已失效 / No longer available", jstr(*view, "why"),
		       link->instance);
		return 1;
	}
	return 0;
fail:
	dk_api_fail(rq, error);
	return 1;
}

int dk_route_link_get(dk_req *rq)
{
	dk_link link;
	json_t *view = NULL;
	dk_buf b = DK_BUF_INIT;

	memset(&link, 0, sizeof(link));
	if (checked(rq, &link, &view))
		goto cleanup;
	if (wants_json(rq)) {
		rq->status = 200;
		rq->json = view;
		view = NULL;
		goto cleanup;
	}
	int need = json_is_true(json_object_get(view, "comment_required"));
	page_head(&b, "确认操作 / Confirm action");
	page_facts(&b, view, &link);
	/* The form posts back to this very URL: the token is in the path. */
	dk_buf_puts(&b, "<form method=\"post\" id=\"link-form\">\n<label for=\"comment\">意见 / "
	                "Comment");
	if (need)
		dk_buf_puts(&b, "（必填 / required）");
	dk_buf_puts(&b, "</label>\n<textarea id=\"comment\" name=\"comment\" rows=\"3\"");
	if (need)
		dk_buf_puts(&b, " required");
	dk_buf_puts(&b, "></textarea>\n<div><button type=\"submit\">确认 / Confirm: ");
	put_html(&b, link.transition);
	dk_buf_puts(&b, "</button></div>\n</form>\n<p>此链接只能使用一次。/ This link works "
	                "once.</p>\n");
	page_end(&b, link.instance);
	answer_html(rq, 200, &b);
cleanup:
	json_decref(view);
	dk_link_free(&link);
	return 0;
}

/* The comment of a form body (application/x-www-form-urlencoded), NULL
 * when absent; the caller frees. */
static char *form_field(const char *body, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = body, *end = body + len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			char *raw = dk_strndup(p + nlen + 1, (size_t)(stop - p) - nlen - 1);
			int outlen = 0;
			for (char *c = raw; *c; c++)
				if (*c == '+')
					*c = ' ';
			char *dec = curl_easy_unescape(NULL, raw, 0, &outlen);
			free(raw);
			if (!dec)
				return NULL;
			char *copy = dk_strndup(dec, (size_t)outlen);
			curl_free(dec);
			return copy;
		}
		p = stop + 1;
	}
	return NULL;
}

int dk_route_link_post(dk_req *rq)
{
	dk_link link;
	json_t *view = NULL, *body = NULL, *step = NULL;
	char *comment = NULL;
	int error = 0;

	memset(&link, 0, sizeof(link));
	if (checked(rq, &link, &view))
		goto cleanup;
	if (wants_json(rq)) {
		if (dk_api_body_object(rq, &body))
			goto cleanup;
		const char *c = jstr(body, "comment");
		comment = c ? dk_strdup(c) : NULL;
	} else {
		comment = form_field(rq->body, rq->body_len, "comment");
	}
	error =
	    dk_runner_link_act(rq->ctx->runner, &step, &link, comment && *comment ? comment : NULL);
	if (error == 0)
		dk_writer_notes_wake(); /* its archive note */
	if (error < 0) {
		unsigned status = dk_api_status_of(error);
		char *user = NULL;
		int64_t at = 0;
		/* Another request used the link between our check and the act. */
		if (error == DK_ECONFLICT &&
		    dk_store_link_used(rq->ctx->store, link.nonce, &user, &at) == 1)
			status = 410;
		free(user);
		refuse(rq, status,
		       status == 410   ? "链接已使用 / Link already used"
		       : status == 409 ? "链接已失效 / No longer available"
		                       : "未能完成 / Not done",
		       dk_error_last(), link.instance);
		error = 0;
		goto cleanup;
	}
	rq->wake();
	if (wants_json(rq)) {
		rq->status = 200;
		rq->json = step;
		step = NULL;
		goto cleanup;
	}
	/* See Other: the browser GETs the instance page of the inbox. */
	rq->status = 303;
	rq->lent = "";
	rq->raw_len = 0;
	snprintf(rq->location, sizeof(rq->location), "/inbox/instances/%s", link.instance);
cleanup:
	free(comment);
	json_decref(step);
	json_decref(body);
	json_decref(view);
	dk_link_free(&link);
	return error;
}
