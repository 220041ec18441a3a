/* cmd_delegate.c - docket delegate --from U --to V [--role R] --until DATE */
#include "cli/cli.h"

#include "util/error.h"

#include <getopt.h>
#include <stdio.h>

int cmd_delegate(dk_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"from", required_argument, NULL, 'f'},
	    {"to", required_argument, NULL, 't'},
	    {"role", required_argument, NULL, 'r'},
	    {"until", required_argument, NULL, 'u'},
	    {NULL, 0, NULL, 0},
	};
	const char *from = NULL, *to = NULL, *role = NULL, *until = NULL;
	dk_runner *r = NULL;
	json_t *out = NULL;
	int c, error;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'r': role = optarg; break;
		case 'u': until = optarg; break;
		default: return dk_cli_usage("delegate", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc || !from || !to || !until)
		return dk_cli_usage("delegate", "--from, --to and --until are required");
	/* both users are checked against the org directory, which is XML */
	if ((error = dk_cli_need(DK_NEED_XML | DK_NEED_CRYPTO, "delegate")) < 0 ||
	    (error = dk_cli_open(cli, &r)) < 0 ||
	    (error = dk_runner_delegate(r, &out, from, to, role, until,
	                                cli->user ? cli->user : from)) < 0)
		goto cleanup;
	if (cli->json)
		dk_cli_print_json(out);
	else
		printf("%s may act for %s%s%s until %s\n", to, from, role ? " as " : "",
		       role ? role : "", dk_json_str(out, "until"));
cleanup:
	json_decref(out);
	dk_runner_free(r);
	return error;
}
