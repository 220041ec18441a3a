/*
 * start_many.c - starts many instances of a deployed flow in one process,
 * through the runner as `docket start` would, so that end-to-end tests can
 * arm a thousand timers without spawning a thousand processes.
 *
 *   start_many HOME FLOW ACTOR N
 *
 * The clock is DOCKET_NOW when set. Each start is its own transaction, as
 * with the command. Prints the number of instances started.
 */
#include "engine/runner.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	dk_runner *r = NULL;
	long n, i;
	int rc = 1;

	if (argc != 5 || (n = strtol(argv[4], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: start_many HOME FLOW ACTOR N\n");
		return 2;
	}
	if (dk_runner_open(&r, argv[1]) < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		dk_start_opts o = {.flow = argv[2], .actor = argv[3]};
		json_t *out = NULL;
		if (dk_runner_start(r, &out, &o) < 0)
			goto fail;
		json_decref(out);
	}
	printf("%ld\n", n);
	rc = 0;
	goto cleanup;
fail:
	fprintf(stderr, "start_many: %s\n", dk_error_last());
cleanup:
	dk_runner_free(r);
	return rc;
}
