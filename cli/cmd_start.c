/* cmd_start.c - docket start FLOW [--var K=V]... [--title T] */
#include "cli/cli.h"

#include "util/error.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_start(dk_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"var", required_argument, NULL, 'v'},
	    {"title", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	dk_start_opts so = {0};
	dk_kv *vars = NULL;
	dk_runner *r = NULL;
	json_t *out = NULL;
	int c, error = 0;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'v') {
			if ((error = dk_cli_add_var(&vars, &so.nvars, "start", optarg)) < 0)
				goto cleanup;
		} else if (c == 't') {
			so.title = optarg;
		} else {
			error = dk_cli_usage("start", "unknown option '%s'", argv[optind - 1]);
			goto cleanup;
		}
	}
	if (optind != argc - 1) {
		error = dk_cli_usage("start", "name one flow to start");
		goto cleanup;
	}
	so.flow = argv[optind];
	so.vars = vars;
	if ((error = dk_cli_require_user(cli, &so.actor)) < 0 ||
	    (error = dk_cli_need(DK_NEED_XML | DK_NEED_CRYPTO, "start")) < 0 ||
	    (error = dk_cli_open(cli, &r)) < 0 || (error = dk_runner_start(r, &out, &so)) < 0)
		goto cleanup;
	if (cli->json)
		dk_cli_print_json(out);
	else
		printf("%s\n", dk_json_str(out, "id"));
cleanup:
	json_decref(out);
	dk_runner_free(r);
	free(vars);
	return error;
}
