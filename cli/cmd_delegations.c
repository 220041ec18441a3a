/* cmd_delegations.c - docket delegations: who may act for whom, until when. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdio.h>

int cmd_delegations(dk_cli *cli, int argc, char **argv)
{
	dk_runner *r = NULL;
	json_t *out = NULL, *d;
	int error;
	size_t i;

	if (argc != 1)
		return dk_cli_usage("delegations", NULL);
	if ((error = dk_cli_open(cli, &r)) < 0 || (error = dk_runner_delegations(r, &out)) < 0)
		goto cleanup;
	if (cli->json) {
		dk_cli_print_json(out);
		goto cleanup;
	}
	json_array_foreach(out, i, d)
	{
		const char *role = dk_json_str(d, "role");
		printf("%-4lld %s for %s%s%s until %s%s\n", dk_json_int(d, "id"),
		       dk_json_str(d, "to"), dk_json_str(d, "from"), *role ? " as " : "", role,
		       dk_json_str(d, "until"),
		       json_is_true(json_object_get(d, "active")) ? "" : " (expired)");
	}
cleanup:
	json_decref(out);
	dk_runner_free(r);
	return error;
}
