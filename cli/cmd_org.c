/* cmd_org.c - docket org load FILE: load or replace the org directory. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdio.h>
#include <string.h>

int cmd_org(dk_cli *cli, int argc, char **argv)
{
	dk_diags diags = DK_DIAGS_INIT;
	dk_runner *r = NULL;
	json_t *out = NULL;
	int error;

	if (argc != 3 || strcmp(argv[1], "load") != 0)
		return dk_cli_usage("org", NULL);
	if ((error = dk_cli_need(DK_NEED_XML | DK_NEED_CRYPTO, "org load")) < 0 ||
	    (error = dk_cli_open(cli, &r)) < 0)
		goto cleanup;
	error = dk_runner_org_load(r, &out, argv[2], &diags);
	dk_diags_print(&diags, stderr);
	if (error < 0)
		goto cleanup;
	if (cli->json)
		dk_cli_print_json(out);
	else
		printf("org loaded: %lld users, %lld departments\n", dk_json_int(out, "users"),
		       dk_json_int(out, "depts"));
cleanup:
	json_decref(out);
	dk_diags_free(&diags);
	dk_runner_free(r);
	return error;
}
