/* cmd_inbox.c - docket inbox --as USER: the tasks waiting for me. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdio.h>

int cmd_inbox(dk_cli *cli, int argc, char **argv)
{
	dk_runner *r = NULL;
	json_t *out = NULL, *t;
	const char *user;
	int error;
	size_t i;

	if (argc != 1)
		return dk_cli_usage("inbox", "inbox takes no arguments; name the user with --as");
	if ((error = dk_cli_require_user(cli, &user)) < 0 || (error = dk_cli_open(cli, &r)) < 0 ||
	    (error = dk_runner_inbox(r, &out, user)) < 0)
		goto cleanup;
	if (cli->json) {
		dk_cli_print_json(out);
		goto cleanup;
	}
	if (json_array_size(out) == 0)
		printf("nothing waits for %s\n", user);
	json_array_foreach(out, i, t)
	{
		const char *due = dk_json_str(t, "due_at"), *obo = dk_json_str(t, "for");
		printf("%-6s %-18s %-16s %s%s%s%s%s%s\n", dk_json_str(t, "instance"),
		       dk_json_str(t, "flow"), dk_json_str(t, "state"), dk_json_str(t, "title"),
		       *due ? "  due " : "", due,
		       json_is_true(json_object_get(t, "overdue")) ? "  OVERDUE" : "",
		       *obo ? "  for " : "", obo);
	}
cleanup:
	json_decref(out);
	dk_runner_free(r);
	return error;
}
