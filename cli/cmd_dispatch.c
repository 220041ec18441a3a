/* cmd_dispatch.c - `docket dispatch`: send due webhook deliveries until
 * none is due (the queue is empty or only future retries remain). */
#include "cli/cli.h"

#include "store/store.h"
#include "util/error.h"
#include "util/time.h"
#include "web-hooks/hooks.h"

#include <inttypes.h>
#include <stdio.h>

int cmd_dispatch(dk_cli *cli, int argc, char **argv)
{
	dk_dispatch_opts opts = DK_DISPATCH_OPTS_INIT;
	dk_dispatch_stats st = {0};
	dk_store *s = NULL;
	char next[DK_TIME_STRLEN] = "";
	int error;

	(void)argv;
	if (argc != 1)
		return dk_cli_usage("dispatch", "dispatch takes no arguments");
	if ((error = dk_cli_need(DK_NEED_CURL | DK_NEED_CRYPTO, "dispatch")) < 0 ||
	    (error = dk_dispatch_opts_env(&opts)) < 0)
		return error;
	if ((error = dk_store_open(&s, cli->home)) < 0)
		return error;
	error = dk_dispatch_run(s, &opts, &st);
	dk_store_close(s);
	if (error < 0)
		return error;
	if (st.next_due)
		dk_time_format(next, st.next_due);
	if (cli->json)
		printf("{\"attempts\":%zu,\"delivered\":%zu,\"retrying\":%zu,\"dead\":%zu,"
		       "\"disabled\":%zu,\"next_due\":%s%s%s}\n",
		       st.attempts, st.delivered, st.retrying, st.dead, st.disabled,
		       *next ? "\"" : "", *next ? next : "null", *next ? "\"" : "");
	else
		printf("%zu attempts: %zu delivered, %zu to retry, %zu dead%s%s\n", st.attempts,
		       st.delivered, st.retrying, st.dead, *next ? "; next retry due " : "", next);
	return 0;
}
