/* cmd_list.c - docket list [--flow F] [--state S] [--status S] [--mine]
 * [--overdue] [--limit N] */
#include "cli/cli.h"

#include "util/error.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_list(dk_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"flow", required_argument, NULL, 'f'},
	    {"state", required_argument, NULL, 's'},
	    {"status", required_argument, NULL, 'S'},
	    {"initiator", required_argument, NULL, 'i'},
	    {"overdue", no_argument, NULL, 'o'},
	    {"limit", required_argument, NULL, 'l'},
	    {NULL, 0, NULL, 0},
	};
	dk_list_opts lo = {0};
	dk_runner *r = NULL;
	json_t *out = NULL, *e;
	int c, error = 0;
	size_t i;
	char *end;

	lo.limit = 100;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f': lo.flow = optarg; break;
		case 's': lo.state = optarg; break;
		case 'S': lo.status = optarg; break;
		case 'i': lo.initiator = optarg; break;
		case 'o': lo.overdue = 1; break;
		case 'l':
			lo.limit = (size_t)strtoul(optarg, &end, 10);
			if (*end || !lo.limit)
				return dk_cli_usage("list", "--limit wants a positive number");
			break;
		default: return dk_cli_usage("list", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return dk_cli_usage("list", "unexpected argument '%s'", argv[optind]);
	if ((error = dk_cli_open(cli, &r)) < 0 || (error = dk_runner_list(r, &out, &lo)) < 0)
		goto cleanup;
	if (cli->json) {
		dk_cli_print_json(out);
		goto cleanup;
	}
	json_array_foreach(out, i, e)
	{
		const char *od = dk_json_str(e, "overdue_since");
		printf("%-6s %-18s %-10s %-24s %-10s %s%s%s\n", dk_json_str(e, "id"),
		       dk_json_str(e, "flow"), dk_json_str(e, "status"), dk_json_str(e, "state"),
		       dk_json_str(e, "initiator"), dk_json_str(e, "title"),
		       *od ? "  OVERDUE since " : "", od);
	}
cleanup:
	json_decref(out);
	dk_runner_free(r);
	return error;
}
