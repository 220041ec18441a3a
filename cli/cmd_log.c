/* cmd_log.c - docket log ID: the audit trail of an instance. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdio.h>

int cmd_log(dk_cli *cli, int argc, char **argv)
{
	dk_runner *r = NULL;
	json_t *out = NULL, *e;
	int error;
	size_t i;

	if (argc != 2)
		return dk_cli_usage("log", "name one instance");
	if ((error = dk_cli_open(cli, &r)) < 0 || (error = dk_runner_log(r, &out, argv[1])) < 0)
		goto cleanup;
	if (cli->json) {
		dk_cli_print_json(out);
		goto cleanup;
	}
	json_array_foreach(out, i, e)
	{
		const char *obo = dk_json_str(e, "on_behalf_of"),
		           *tr = dk_json_str(e, "transition");
		const char *from = dk_json_str(e, "from"), *to = dk_json_str(e, "to");
		const char *comment = dk_json_str(e, "comment"), *note = dk_json_str(e, "note");
		printf("%3lld  %s  %-18s %s%s%s", dk_json_int(e, "seq"), dk_json_str(e, "at"),
		       dk_json_str(e, "type"), dk_json_str(e, "actor"), *obo ? " for " : "", obo);
		json_t *data = json_object_get(e, "data");
		const char *assignee = dk_json_str(data, "assignee");
		const char *file = dk_json_str(data, "name");
		if (*tr)
			printf("  %s", tr);
		if (*assignee)
			printf("  task for %s in %s", assignee, to);
		else if (*file) /* an upload: which file, of what kind, where */
			printf("  %s %s in %s", dk_json_str(data, "kind"), file, to);
		else if (*from || *to)
			printf("  %s -> %s", *from ? from : "(start)", *to ? to : "-");
		if (*note)
			printf("  %s", note);
		if (*comment)
			printf("  \"%s\"", comment);
		printf("\n");
	}
cleanup:
	json_decref(out);
	dk_runner_free(r);
	return error;
}
