/* cmd_archive.c - `docket archive gc` and `docket archive push REMOTE`:
 * housekeeping of the evidence archive (HOME/archive.git). */
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

int cmd_archive(dk_cli *cli, int argc, char **argv)
{
	dk_archive *a = NULL;
	int error;

	if ((error = dk_cli_need(DK_NEED_GIT | DK_NEED_CRYPTO, "archive")) < 0)
		return error;
	if (argc < 2)
		return dk_cli_usage("archive", "say what to do: gc or push");
	if (!strcmp(argv[1], "gc")) {
		if (argc != 2)
			return dk_cli_usage("archive", "archive gc takes no arguments");
	} else if (!strcmp(argv[1], "push")) {
		if (argc != 3)
			return dk_cli_usage("archive",
			                    "archive push needs one REMOTE (a URL or a path)");
	} else {
		return dk_cli_usage("archive", "no archive command '%s'", argv[1]);
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
