/* routes_evidence.c - evidence: upload (raw body, streamed to a temporary
 * file by the server, then into the git archive by the runner), list, and
 * byte-exact download streamed from the archive. */
#include "api/api_int.h"

#include "store/archive.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int may_see(dk_req *rq)
{
	json_t *inst = NULL;
	int error;
	if ((error = dk_runner_show(rq->ctx->runner, &inst, rq->params[0])) < 0)
		return error;
	error = dk_api_may_see(rq, inst);
	json_decref(inst);
	return error;
}

int dk_route_evidence_list(dk_req *rq)
{
	int error;
	if ((error = may_see(rq)) < 0 ||
	    (error = dk_runner_evidence(rq->ctx->runner, &rq->json, rq->params[0])) < 0)
		return error;
	rq->status = 200;
	return 0;
}

/* POST /api/instances/{id}/evidence/{kind}?name=FILE with the file as the
 * body, or POST /api/instances/{id}/evidence[/{kind}] with a
 * multipart/form-data body (a browser form): one file part, and the kind
 * and name from the path or query, else the form's "kind" and "name"
 * fields, else the file part's own file name. The name is checked by the
 * archive (no paths, no control characters). */
int dk_route_evidence_upload(dk_req *rq)
{
	dk_attach_opts o = {0};
	const char *name = dk_api_query(rq, "name");
	const char *kind = rq->nparams > 1 ? rq->params[1] : dk_api_query(rq, "kind");
	int error;

	if (rq->form_error)
		return dk_api_problem(rq, 400, "%s", rq->form_error);
	if (!rq->upload)
		return dk_api_problem(rq, 503, "the upload could not be stored; try again");
	if (rq->multipart) {
		if (!name || !*name)
			name = rq->form_name;
		if (!kind || !*kind)
			kind = rq->form_kind;
	}
	if (!name || !*name)
		return dk_api_problem(rq, 400,
		                      rq->multipart ? "name the file: a \"name\" field or a file "
		                                      "name on the file part"
		                                    : "name the file: ?name=FILE.pdf");
	if (!kind || !*kind)
		return dk_api_problem(rq, 400,
		                      "say which evidence kind: .../evidence/KIND, ?kind=KIND or a "
		                      "\"kind\" form field");
	if ((error = may_see(rq)) < 0)
		return error;
	o.instance = rq->params[0];
	o.actor = rq->user;
	o.kind = kind;
	o.path = rq->upload;
	o.name = name;
	if ((error = dk_runner_attach(rq->ctx->runner, &rq->json, &o)) < 0)
		return error;
	rq->status = 201;
	rq->wake();
	dk_writer_gc_wake();
	return 0;
}

/* Content-Disposition for any name: an ASCII fallback with everything
 * else replaced by '_', and the exact name as RFC 5987 UTF-8. */
static void disposition(char *out, size_t size, const char *name)
{
	dk_buf b = DK_BUF_INIT;
	dk_buf_puts(&b, "attachment; filename=\"");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if ((*p & 0xC0) == 0x80)
			continue; /* one '_' per character, not per byte */
		dk_buf_putc(&b,
		            *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' ? (char)*p : '_');
	}
	dk_buf_puts(&b, "\"; filename*=UTF-8''");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p))
			dk_buf_putc(&b, (char)*p);
		else
			dk_buf_printf(&b, "%%%02X", *p);
	}
	snprintf(out, size, "%s", dk_buf_cstr(&b));
	dk_buf_free(&b);
}

/* GET /api/instances/{id}/evidence/{kind}/{name}: the bytes as uploaded.
 * The blob streams from git into an unlinked temporary file that the
 * response sends, so a large file is never held in memory. */
int dk_route_evidence_get(dk_req *rq)
{
	json_t *list = NULL, *e, *hit = NULL;
	dk_archive *a = NULL;
	const char *tmpdir = getenv("TMPDIR");
	char path[4096];
	int64_t size = 0;
	size_t i;
	int fd = -1, error;

	if ((error = may_see(rq)) < 0 ||
	    (error = dk_runner_evidence(rq->ctx->runner, &list, rq->params[0])) < 0)
		goto cleanup;
	json_array_foreach(list, i, e)
	{
		const char *k = json_string_value(json_object_get(e, "kind"));
		const char *n = json_string_value(json_object_get(e, "name"));
		if (k && n && strcmp(k, rq->params[1]) == 0 && strcmp(n, rq->params[2]) == 0)
			hit = e;
	}
	if (!hit) {
		error = dk_error_set(DK_ENOTFOUND,
		                     "instance %s holds no %s evidence named '%s'; GET "
		                     "/api/instances/%s/evidence lists it",
		                     rq->params[0], rq->params[1], rq->params[2], rq->params[0]);
		goto cleanup;
	}
	snprintf(path, sizeof(path), "%s/docket-download-XXXXXX",
	         tmpdir && *tmpdir ? tmpdir : "/tmp");
	if ((fd = mkstemp(path)) < 0) {
		error =
		    dk_error_set(DK_EINTERNAL, "cannot make a temporary file: %s", strerror(errno));
		goto cleanup;
	}
	unlink(path);
	if ((error = dk_archive_open(&a, rq->home)) < 0 ||
	    (error = dk_archive_get_blob(a, json_string_value(json_object_get(hit, "blob")),
	                                 dk_archive_write_fd, &fd, NULL, &size)) < 0)
		goto cleanup;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		error = dk_error_set(DK_EINTERNAL, "cannot rewind a temporary file: %s",
		                     strerror(errno));
		goto cleanup;
	}
	rq->fd = fd;
	fd = -1;
	rq->fd_size = (uint64_t)size;
	rq->status = 200;
	rq->ctype = "application/octet-stream";
	disposition(rq->disposition, sizeof(rq->disposition), rq->params[2]);
cleanup:
	if (fd >= 0)
		close(fd);
	dk_archive_free(a);
	json_decref(list);
	return error;
}
