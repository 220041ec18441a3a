/* cmd_recall.c - docket recall ID [--comment T]: the initiator withdraws. */
#include "cli/cli.h"

#include "util/error.h"

#include <getopt.h>
#include <stdio.h>

int cmd_recall(dk_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"comment", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	const char *comment = NULL, *actor;
	dk_runner *r = NULL;
	json_t *out = NULL;
	int c, error = 0;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'c')
			return dk_cli_usage("recall", "unknown option '%s'", argv[optind - 1]);
		comment = optarg;
	}
	if (optind != argc - 1)
		return dk_cli_usage("recall", "name the instance to recall");
	if ((error = dk_cli_require_user(cli, &actor)) < 0 ||
	    (error = dk_cli_need(DK_NEED_XML | DK_NEED_CRYPTO, "recall")) < 0 ||
	    (error = dk_cli_open(cli, &r)) < 0 ||
	    (error = dk_runner_recall(r, &out, argv[optind], actor, comment)) < 0)
		goto cleanup;
	if (cli->json)
		dk_cli_print_json(out);
	else
		printf("%s: %s -> %s (recalled, version %lld)\n", argv[optind],
		       dk_json_str(out, "from"), dk_json_str(out, "to"),
		       dk_json_int(out, "version"));
cleanup:
	json_decref(out);
	dk_runner_free(r);
	return error;
}
