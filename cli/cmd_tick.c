/* cmd_tick.c - docket tick: fire every timer due at the clock. Safe from
 * cron and twice at once: each timer is taken by one transaction only. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdio.h>

int cmd_tick(dk_cli *cli, int argc, char **argv)
{
	dk_runner *r = NULL;
	size_t fired = 0;
	int error;

	if (argc != 1)
		return dk_cli_usage("tick", NULL);
	if ((error = dk_cli_open(cli, &r)) < 0 || (error = dk_runner_tick(r, &fired)) < 0)
		goto cleanup;
	if (cli->json)
		printf("{\"fired\": %zu}\n", fired);
	else
		printf("%zu timer%s fired\n", fired, fired == 1 ? "" : "s");
cleanup:
	dk_runner_free(r);
	return error;
}
