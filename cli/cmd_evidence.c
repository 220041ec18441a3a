/* cmd_evidence.c - docket evidence ID [--json]: an instance's files; and
 * docket evidence get ID NAME [-o FILE]: one file, byte-exact, streamed out
 * of the git archive (stdout by default). */
#include "cli/cli.h"

#include "store/archive.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int evidence_get(dk_cli *cli, int argc, char **argv)
{
	const char *id = NULL, *name = NULL, *file = NULL;
	dk_store *s = NULL;
	dk_archive *a = NULL;
	dk_evidence_row row = {0};
	dk_buf path = DK_BUF_INIT, tmp = DK_BUF_INIT;
	int fd = -1, error;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-o")) {
			if (i + 1 >= argc)
				return dk_cli_usage("evidence", "-o needs a file");
			file = argv[++i];
		} else if (!id) {
			id = argv[i];
		} else if (!name) {
			name = argv[i];
		} else {
			return dk_cli_usage("evidence", "unexpected '%s'", argv[i]);
		}
	}
	if (!id || !name)
		return dk_cli_usage("evidence", "evidence get needs an instance and a file name");
	if ((error = dk_store_open(&s, cli->home)) < 0)
		goto cleanup;
	if ((error = dk_store_evidence_get(s, id, name, &row)) < 0)
		goto cleanup;
	if ((error = dk_archive_open(&a, cli->home)) < 0)
		goto cleanup;
	dk_buf_printf(&path, "%s/%s/%s", row.state_id, row.kind, row.name);
	if (file) {
		/* written beside the target and renamed: a damaged file never
		 * appears under the name asked for */
		dk_buf_printf(&tmp, "%s.docket-part", file);
		fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			error = dk_error_set(DK_EINVALID, "%s: cannot write: %s", file,
			                     strerror(errno));
			goto cleanup;
		}
	} else {
		fd = STDOUT_FILENO;
	}
	error = dk_archive_get(a, id, row.git_commit, path.ptr, dk_archive_write_fd, &fd);
	if (file) {
		if (error == 0 && (fsync(fd) < 0 || close(fd) < 0))
			error = dk_error_set(DK_EINVALID, "%s: cannot write: %s", file,
			                     strerror(errno));
		else if (error < 0)
			close(fd);
		fd = -1;
		if (error == 0 && rename(tmp.ptr, file) < 0)
			error = dk_error_set(DK_EINVALID, "%s: cannot write: %s", file,
			                     strerror(errno));
		if (error < 0)
			unlink(tmp.ptr);
	}
cleanup:
	dk_evidence_row_free(&row);
	dk_buf_free(&path);
	dk_buf_free(&tmp);
	dk_archive_free(a);
	dk_store_close(s);
	return error;
}

int cmd_evidence(dk_cli *cli, int argc, char **argv)
{
	dk_runner *r = NULL;
	json_t *out = NULL, *v;
	size_t i;
	int error;

	if (argc >= 2 && !strcmp(argv[1], "get"))
		return evidence_get(cli, argc, argv);
	if (argc != 2)
		return dk_cli_usage("evidence", "name one instance");
	if ((error = dk_cli_open(cli, &r)) < 0 ||
	    (error = dk_runner_evidence(r, &out, argv[1])) < 0)
		goto cleanup;
	if (cli->json) {
		dk_cli_print_json(out);
		goto cleanup;
	}
	if (json_array_size(out) == 0)
		printf("no evidence in %s\n", argv[1]);
	json_array_foreach(out, i, v)
	{
		printf("%-24s %-14s %10lld  %.12s  %s  %s  %s%s\n", dk_json_str(v, "name"),
		       dk_json_str(v, "kind"), dk_json_int(v, "size"), dk_json_str(v, "sha256"),
		       dk_json_str(v, "uploaded_at"), dk_json_str(v, "uploader"),
		       dk_json_str(v, "state"),
		       json_is_true(json_object_get(v, "late")) ? "  LATE" : "");
	}
cleanup:
	json_decref(out);
	dk_runner_free(r);
	return error;
}
