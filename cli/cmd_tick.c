/* cmd_tick.c - docket tick: fire every timer that is due, then catch the
 * archive notes up when state changes wait for them (the timers' own, or
 * acts' from the command line). Safe from cron and twice at once: each
 * timer is taken by one transaction only, and catch-ups take turns. With
 * nothing waiting, the archive (and libgit2) is never touched. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdio.h>

int cmd_tick(dk_cli *cli, int argc, char **argv)
{
	dk_runner *r = NULL;
	dk_notes_sync s = {0};
	size_t fired = 0;
	int64_t waiting = 0;
	int error;

	if (argc != 1)
		return dk_cli_usage("tick", NULL);
	if ((error = dk_cli_open(cli, &r)) < 0 || (error = dk_runner_tick(r, &fired)) < 0 ||
	    (error = dk_runner_notes_waiting(r, &waiting)) < 0)
		goto cleanup;
	/* The timers fired are committed: a note that cannot be written now
	 * is a warning (from the catch-up) and waits for the next one. */
	if (waiting > 0 && dk_runner_notes_catch_up(r, &s) < 0) {
		fprintf(stderr,
		        "docket: warning: the archive notes could not catch up (%s); the next tick "
		        "or 'docket archive sync' tries again\n",
		        dk_error_last());
		dk_error_clear();
	}
	if (cli->json)
		printf("{\"fired\": %zu, \"notes\": %zu}\n", fired, s.written);
	else if (s.written)
		printf("%zu timer%s fired; %zu archive note%s written\n", fired,
		       fired == 1 ? "" : "s", s.written, s.written == 1 ? "" : "s");
	else
		printf("%zu timer%s fired\n", fired, fired == 1 ? "" : "s");
cleanup:
	dk_runner_free(r);
	return error;
}
