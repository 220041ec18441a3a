/* cmd_act.c - docket act ID TRANSITION [--comment T] [--var K=V]...
 * [--expect-version N] */
#include "cli/cli.h"

#include "util/error.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_act(dk_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"var", required_argument, NULL, 'v'},
	    {"comment", required_argument, NULL, 'c'},
	    {"expect-version", required_argument, NULL, 'e'},
	    {NULL, 0, NULL, 0},
	};
	dk_act_opts ao = {0};
	dk_kv *vars = NULL;
	dk_runner *r = NULL;
	json_t *out = NULL;
	int c, error = 0;
	char *end;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			if ((error = dk_cli_add_var(&vars, &ao.nvars, "act", optarg)) < 0)
				goto cleanup;
			break;
		case 'c': ao.comment = optarg; break;
		case 'e':
			ao.expect_version = strtoll(optarg, &end, 10);
			if (*end || ao.expect_version < 1) {
				error = dk_cli_usage("act",
				                     "--expect-version wants a positive number, "
				                     "got '%s'",
				                     optarg);
				goto cleanup;
			}
			break;
		default:
			error = dk_cli_usage("act", "unknown option '%s'", argv[optind - 1]);
			goto cleanup;
		}
	}
	if (optind != argc - 2) {
		error = dk_cli_usage("act", "name the instance and the transition");
		goto cleanup;
	}
	ao.instance = argv[optind];
	ao.transition = argv[optind + 1];
	ao.vars = vars;
	/* No dk_cli_need: the flow and the org come back from their compiled
	 * forms, so an act loads libxml2 only for an expression that needs it
	 * (or a flow deployed before forms were kept) and libcrypto only to
	 * sign action links; a library missing then ends the process before
	 * anything is committed (cli/lazylib.c). */
	if ((error = dk_cli_require_user(cli, &ao.actor)) < 0 ||
	    (error = dk_cli_open(cli, &r)) < 0 || (error = dk_runner_act(r, &out, &ao)) < 0)
		goto cleanup;
	if (cli->json)
		dk_cli_print_json(out);
	else
		printf("%s: %s -> %s (version %lld, %s)\n", ao.instance, dk_json_str(out, "from"),
		       dk_json_str(out, "to"), dk_json_int(out, "version"),
		       dk_json_str(out, "status"));
cleanup:
	json_decref(out);
	dk_runner_free(r);
	free(vars);
	return error;
}
