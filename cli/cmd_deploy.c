/* cmd_deploy.c - docket deploy FILE: store a flow version; prints ID@VERSION. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdio.h>

int cmd_deploy(dk_cli *cli, int argc, char **argv)
{
	dk_diags diags = DK_DIAGS_INIT;
	dk_runner *r = NULL;
	json_t *out = NULL;
	int error;

	if (argc != 2)
		return dk_cli_usage("deploy", "name one flow file");
	if ((error = dk_cli_need(DK_NEED_XML | DK_NEED_CRYPTO, "deploy")) < 0 ||
	    (error = dk_cli_open(cli, &r)) < 0)
		goto cleanup;
	error = dk_runner_deploy(r, &out, argv[1], &diags);
	dk_diags_print(&diags, stderr);
	if (error < 0)
		goto cleanup;
	if (cli->json) {
		dk_cli_print_json(out);
	} else {
		printf("%s@%lld\n", dk_json_str(out, "flow"), dk_json_int(out, "version"));
		if (json_is_true(json_object_get(out, "unchanged")))
			fprintf(stderr, "unchanged: these bytes are already deployed\n");
	}
cleanup:
	json_decref(out);
	dk_diags_free(&diags);
	dk_runner_free(r);
	return error;
}
