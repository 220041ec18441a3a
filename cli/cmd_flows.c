/* cmd_flows.c - docket flows [--all]: deployed flow definitions. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdio.h>
#include <string.h>

int cmd_flows(dk_cli *cli, int argc, char **argv)
{
	dk_runner *r = NULL;
	json_t *out = NULL, *f;
	int error, all = 0;
	size_t i;

	if (argc == 2 && strcmp(argv[1], "--all") == 0)
		all = 1;
	else if (argc != 1)
		return dk_cli_usage("flows", NULL);
	if ((error = dk_cli_open(cli, &r)) < 0 || (error = dk_runner_flows(r, &out, all)) < 0)
		goto cleanup;
	if (cli->json) {
		dk_cli_print_json(out);
		goto cleanup;
	}
	json_array_foreach(out, i, f)
	{
		printf("%s@%lld  %.12s  %s  %s\n", dk_json_str(f, "flow"),
		       dk_json_int(f, "version"), dk_json_str(f, "sha256"),
		       dk_json_str(f, "deployed_at"), dk_json_str(f, "title"));
	}
cleanup:
	json_decref(out);
	dk_runner_free(r);
	return error;
}
