/* cmd_archive.c - `docket archive sync`, `docket archive gc` and `docket
 * archive push REMOTE`: the evidence archive (HOME/archive.git) caught up
 * with the audit trail, packed, or copied. gc and push catch up first, so
 * that what they pack or copy holds every state change committed. */
#include "cli/cli.h"

#include "store/archive.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

static int archive_gc(dk_cli *cli, dk_archive *a)
{
	dk_archive_gc_result r;
	int error = dk_archive_gc(&r, a);
	if (error < 0)
		return error;
	if (cli->json)
		printf("{\"packed\":%zu,\"removed\":%zu,\"kept_loose\":%zu,\"packs\":%zu,"
		       "\"pack\":\"%s\"}\n",
		       r.packed, r.removed, r.kept_loose, r.packs, r.pack);
	else if (r.packed == 0)
		printf("nothing to pack (%zu big blob%s kept loose); %zu pack%s\n", r.kept_loose,
		       r.kept_loose == 1 ? "" : "s", r.packs, r.packs == 1 ? "" : "s");
	else
		printf("packed %zu objects into %s (%zu big blob%s kept loose); %zu pack%s\n",
		       r.packed, r.pack, r.kept_loose, r.kept_loose == 1 ? "" : "s", r.packs,
		       r.packs == 1 ? "" : "s");
	return 0;
}

static int archive_push(dk_cli *cli, dk_archive *a, const char *remote)
{
	size_t n = 0;
	int error = dk_archive_push(&n, a, remote);
	if (error < 0)
		return error;
	if (cli->json)
		printf("{\"pushed\":%zu}\n", n);
	else
		printf("pushed %zu instance ref%s to %s\n", n, n == 1 ? "" : "s", remote);
	return 0;
}

/* Writes the archive notes of every state change still waiting. quiet:
 * before gc or push, which print their own line. */
static int archive_sync(dk_cli *cli, int quiet)
{
	dk_runner *r = NULL;
	dk_notes_sync s;
	int error;

	if ((error = dk_cli_open(cli, &r)) < 0)
		goto cleanup;
	if ((error = dk_runner_notes_catch_up(r, &s)) < 0)
		goto cleanup;
	if (!quiet && cli->json)
		printf("{\"written\":%zu,\"skipped\":%zu,\"failed\":%zu}\n", s.written, s.skipped,
		       s.failed);
	else if (!quiet)
		printf("wrote %zu archive note%s of state changes%s\n", s.written,
		       s.written == 1 ? "" : "s", s.failed ? "; some failed, see above" : "");
	if (s.failed)
		error = dk_error_set(DK_EINTERNAL,
		                     "%zu state change%s could not be noted in the archive (see "
		                     "above); they wait for the next 'docket archive sync'",
		                     s.failed, s.failed == 1 ? "" : "s");
cleanup:
	dk_runner_free(r);
	return error;
}

int cmd_archive(dk_cli *cli, int argc, char **argv)
{
	dk_archive *a = NULL;
	int error;

	if ((error = dk_cli_need(DK_NEED_GIT | DK_NEED_CRYPTO, "archive")) < 0)
		return error;
	if (argc < 2)
		return dk_cli_usage("archive", "say what to do: sync, gc or push");
	if (!strcmp(argv[1], "sync")) {
		if (argc != 2)
			return dk_cli_usage("archive", "archive sync takes no arguments");
		return archive_sync(cli, 0);
	} else if (!strcmp(argv[1], "gc")) {
		if (argc != 2)
			return dk_cli_usage("archive", "archive gc takes no arguments");
	} else if (!strcmp(argv[1], "push")) {
		if (argc != 3)
			return dk_cli_usage("archive",
			                    "archive push needs one REMOTE (a URL or a path)");
	} else {
		return dk_cli_usage("archive", "no archive command '%s'", argv[1]);
	}
	/* A note that fails is a warning here: what is there is packed or
	 * copied all the same, and the note waits for the next catch-up. */
	if ((error = archive_sync(cli, 1)) < 0) {
		if (error != DK_EINTERNAL)
			return error;
		fprintf(stderr, "docket: warning: %s\n", dk_error_last());
		dk_error_clear();
	}
	if ((error = dk_archive_open(&a, cli->home)) < 0)
		return error;
	if (!strcmp(argv[1], "gc"))
		error = archive_gc(cli, a);
	else
		error = archive_push(cli, a, argv[2]);
	dk_archive_free(a);
	return error;
}
