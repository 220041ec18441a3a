/* cmd_redeliver.c - `docket redeliver N`: requeue a dead (or delivered)
 * webhook delivery with the same webhook-id and body; `docket dispatch` or
 * the server sends it. */
#include "cli/cli.h"

#include "store/store.h"
#include "util/error.h"
#include "util/time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_redeliver(dk_cli *cli, int argc, char **argv)
{
	dk_store *s = NULL;
	int64_t now = 0;
	char *end = NULL;
	int error;

	if (argc != 2)
		return dk_cli_usage("redeliver", "name one delivery number");
	long long id = strtoll(argv[1], &end, 10);
	if (!*argv[1] || *end || id <= 0)
		return dk_cli_usage("redeliver",
		                    "'%s' is not a delivery number; `docket "
		                    "deliveries` shows them",
		                    argv[1]);
	if ((error = dk_time_now(&now)) < 0)
		return error;
	if ((error = dk_store_open(&s, cli->home)) < 0)
		return error;
	if ((error = dk_store_begin(s)) < 0)
		goto cleanup;
	error = dk_store_delivery_requeue(s, id, now);
	if (error < 0) {
		dk_store_rollback(s);
		if (error == DK_ENOTFOUND)
			error = dk_error_set(
			    DK_ENOTFOUND, "no delivery %lld; `docket deliveries` shows them", id);
		else if (error == DK_ECONFLICT)
			error = dk_error_set(DK_ECONFLICT,
			                     "delivery %lld is still pending; the dispatcher will "
			                     "retry it (see `docket deliveries`)",
			                     id);
		goto cleanup;
	}
	if ((error = dk_store_commit(s)) < 0)
		goto cleanup;
	printf("delivery %lld requeued; `docket dispatch` sends it\n", id);
cleanup:
	dk_store_close(s);
	return error;
}
