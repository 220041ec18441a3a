/* problem.c - errors as problem objects (RFC 9457): {type, title, detail,
 * status}, with HTTP statuses that match the command's exit statuses. */
#include "api/api_int.h"

#include "util/buf.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

unsigned dk_api_status_of(int err)
{
	switch (err) {
	case DK_EUSAGE: return 400;
	case DK_EINVALID: return 422; /* understood, but not valid here */
	case DK_ENOTFOUND: return 404;
	case DK_EFORBIDDEN: return 403;
	case DK_ECONFLICT: return 409;
	case DK_EPRECOND: return 422; /* guard false, evidence or comment missing */
	default: return 500;
	}
}

const char *dk_api_reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 422: return "Unprocessable Content";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* A stable, documented type per status, so clients can switch on it. */
static const char *slug(unsigned status)
{
	switch (status) {
	case 400: return "bad-request";
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "not-found";
	case 405: return "method-not-allowed";
	case 409: return "conflict";
	case 412: return "precondition-failed";
	case 413: return "too-large";
	case 422: return "unprocessable";
	case 503: return "unavailable";
	default: return "internal";
	}
}

int dk_api_problem(dk_req *rq, unsigned status, const char *fmt, ...)
{
	dk_buf detail = DK_BUF_INIT, type = DK_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	dk_buf_vprintf(&detail, fmt, ap);
	va_end(ap);
	dk_buf_printf(&type, "urn:docket:problem:%s", slug(status));
	json_decref(rq->json);
	free(rq->raw);
	rq->raw = NULL;
	rq->lent = NULL;
	rq->ctype = NULL;
	rq->etag[0] = 0;
	rq->location[0] = 0;
	rq->status = status;
	rq->problem = 1;
	/* json_string refuses text that is not UTF-8; say so rather than
	 * lose the answer. */
	json_t *d = json_string(dk_buf_cstr(&detail));
	rq->json = json_pack(
	    "{s:s, s:s, s:o, s:i}", "type", dk_buf_cstr(&type), "title", dk_api_reason(status),
	    "detail", d ? d : json_string("(detail not valid UTF-8)"), "status", (int)status);
	dk_buf_free(&detail);
	dk_buf_free(&type);
	return 0;
}

int dk_api_fail(dk_req *rq, int err)
{
	const char *msg = dk_error_last();
	return dk_api_problem(rq, dk_api_status_of(err), "%s", *msg ? msg : dk_error_name(err));
}
