/* cmd_show.c - docket show ID: an instance's state, tasks and variables. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdio.h>

static void print_list(const char *label, const json_t *arr, const char *key)
{
	size_t i;
	const json_t *v;
	printf("%-10s", label);
	if (json_array_size(arr) == 0)
		printf(" -");
	json_array_foreach(arr, i, v)
	    printf("%s%s", i ? ", " : " ", key ? dk_json_str(v, key) : json_string_value(v));
	printf("\n");
}

int cmd_show(dk_cli *cli, int argc, char **argv)
{
	dk_runner *r = NULL;
	json_t *out = NULL;
	int error;
	const char *k;
	json_t *v;
	size_t i;

	if (argc != 2)
		return dk_cli_usage("show", "name one instance");
	if ((error = dk_cli_open(cli, &r)) < 0 || (error = dk_runner_show(r, &out, argv[1])) < 0)
		goto cleanup;
	if (cli->json) {
		dk_cli_print_json(out);
		goto cleanup;
	}
	printf("instance   %s  %s@%lld  %s\n", dk_json_str(out, "id"), dk_json_str(out, "flow"),
	       dk_json_int(out, "flow_version"), dk_json_str(out, "title"));
	printf("status     %s\n", dk_json_str(out, "status"));
	print_list("state", json_object_get(out, "states"), NULL);
	printf("initiator  %s\n", dk_json_str(out, "initiator"));
	printf("version    %lld\n", dk_json_int(out, "version"));
	printf("updated    %s\n", dk_json_str(out, "updated_at"));
	printf("vars      ");
	json_object_foreach(json_object_get(out, "vars"), k, v)
	{
		char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY);
		printf(" %s=%s", k, s ? s : json_string_value(v));
		free(s);
	}
	printf("\n");
	printf("tasks     ");
	json_array_foreach(json_object_get(out, "tasks"), i, v)
	{
		const char *due = dk_json_str(v, "due_at");
		printf("%s%s (%s%s%s%s)", i ? ", " : " ", dk_json_str(v, "user"),
		       dk_json_str(v, "state"), *due ? ", due " : "", due,
		       json_is_true(json_object_get(v, "overdue")) ? ", OVERDUE" : "");
	}
	if (json_array_size(json_object_get(out, "tasks")) == 0)
		printf(" -");
	printf("\n");
	print_list("available", json_object_get(out, "available"), NULL);
cleanup:
	json_decref(out);
	dk_runner_free(r);
	return error;
}
