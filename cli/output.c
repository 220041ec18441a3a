/* output.c - what the commands share: opening the home, --var, printing. */
#include "cli/cli.h"

#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dk_cli_open(const dk_cli *cli, dk_runner **out)
{
	return dk_runner_open(out, cli->home);
}

int dk_cli_add_var(dk_kv **vars, size_t *n, const char *cmd, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return dk_cli_usage(cmd, "--var wants NAME=VALUE, got '%s'", arg);
	*vars = dk_realloc(*vars, (*n + 1) * sizeof(**vars));
	/* The name is cut out of argv's own bytes: argv outlives the command. */
	char *a = (char *)arg;
	a[eq - arg] = '\0';
	(*vars)[*n].name = a;
	(*vars)[*n].value = eq + 1;
	(*n)++;
	return 0;
}

void dk_cli_print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));
	if (s) {
		puts(s);
		free(s);
	}
}

const char *dk_json_str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : "";
}

long long dk_json_int(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}
