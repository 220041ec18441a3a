/* archive_put.c - test helper: archive one file straight into HOME's
 * evidence archive (no database), so shell tests can check what plain git
 * reads, and what `docket archive` does, without the rest of docket.
 *
 *   archive_put HOME INSTANCE STATE KIND NAME FILE [MAX_BYTES]
 *
 * FILE "-" reads stdin. Prints the commit id, blob id and SHA-256 on one
 * line; exits 1 with docket's message on failure. The clock is DOCKET_NOW. */
#include "store/archive.h"
#include "util/error.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	dk_archive *a = NULL;
	dk_archive_put_opts o = DK_ARCHIVE_PUT_OPTS_INIT;
	dk_archive_put_result r;
	char event[37];
	int64_t now;
	int error;

	if (argc < 7 || argc > 8) {
		fprintf(stderr,
		        "usage: archive_put HOME INSTANCE STATE KIND NAME FILE [MAX_BYTES]\n");
		return 2;
	}
	if (dk_time_now(&now) < 0 || dk_archive_open(&a, argv[1]) < 0) {
		fprintf(stderr, "archive_put: %s\n", dk_error_last());
		return 1;
	}
	dk_archive_event_key(event);
	o.instance = argv[2];
	o.flow = "test@1";
	o.state = argv[3];
	o.kind = argv[4];
	o.name = argv[5];
	o.event = event;
	o.actor = getenv("DOCKET_USER") ? getenv("DOCKET_USER") : "tester";
	o.time = now;
	o.max_size = argc == 8 ? atoll(argv[7]) : 0;
	if (argv[6][0] == '-' && argv[6][1] == '\0')
		error = dk_archive_put(&r, a, &o, STDIN_FILENO);
	else
		error = dk_archive_put_file(&r, a, &o, argv[6]);
	if (error < 0)
		fprintf(stderr, "archive_put: %s\n", dk_error_last());
	else
		printf("%s %s %s\n", r.commit, r.blob, r.sha256);
	dk_archive_free(a);
	return error < 0 ? 1 : 0;
}
