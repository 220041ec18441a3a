/* main.c - the docket command: global options, dispatch, exit status. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOCKET_VERSION "0.1.0"

static const dk_cmd commands[] = {
#define DK_CMD(name, usage, summary) {#name, cmd_##name, usage, summary},
#include "cli/commands.def"
#undef DK_CMD
    {NULL, NULL, NULL, NULL},
};

static const dk_cmd *find_command(const char *name)
{
	for (const dk_cmd *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int dk_cli_usage(const char *cmd, const char *fmt, ...)
{
	const dk_cmd *c = cmd ? find_command(cmd) : NULL;
	char msg[1024] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	if (c)
		return dk_error_set(DK_EUSAGE, "%s%susage: docket %s", msg, *msg ? "\n" : "",
		                    c->usage);
	return dk_error_set(DK_EUSAGE, "%s", msg);
}

int dk_cli_require_user(const dk_cli *cli, const char **out)
{
	if (!cli->user || !*cli->user)
		return dk_error_set(DK_EUSAGE,
		                    "who is acting? name a user with --as USER or DOCKET_USER");
	*out = cli->user;
	return 0;
}

static void print_help(FILE *to)
{
	fprintf(to, "usage: docket [--home DIR] [--as USER] [--json] COMMAND [ARGS]\n\n");
	for (const dk_cmd *c = commands; c->name; c++)
		fprintf(to, "  %-48s %s\n", c->usage, c->summary);
	fprintf(to, "\nexit status: 0 ok, 1 invalid input or internal error, 2 usage, "
	            "3 not found,\n4 forbidden, 5 conflict, 6 precondition failed\n");
}

int cmd_help(dk_cli *cli, int argc, char **argv)
{
	(void)cli;
	if (argc > 1) {
		const dk_cmd *c = find_command(argv[1]);
		if (!c)
			return dk_cli_usage(NULL, "no command '%s'; run 'docket help'", argv[1]);
		printf("usage: docket %s\n%s\n", c->usage, c->summary);
		return 0;
	}
	print_help(stdout);
	return 0;
}

int cmd_version(dk_cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	printf("docket %s\n", DOCKET_VERSION);
	return 0;
}

int main(int argc, char **argv)
{
	dk_cli cli = {0};
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	int nargs = 0, rc;

	if (!args)
		return 1;
	cli.home = getenv("DOCKET_HOME");
	cli.user = getenv("DOCKET_USER");
	/* Global options may stand anywhere before "--". */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (i < argc)
				args[nargs++] = argv[i++];
			break;
		}
		if (strcmp(a, "--json") == 0) {
			cli.json = 1;
		} else if (strcmp(a, "--home") == 0 || strcmp(a, "--as") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "docket: %s needs a value\n", a);
				free(args);
				return 2;
			}
			if (a[2] == 'h')
				cli.home = argv[++i];
			else
				cli.user = argv[++i];
		} else if (strncmp(a, "--home=", 7) == 0) {
			cli.home = a + 7;
		} else if (strncmp(a, "--as=", 5) == 0) {
			cli.user = a + 5;
		} else {
			args[nargs++] = argv[i];
		}
	}
	if (!cli.home || !*cli.home)
		cli.home = ".docket-home";
	if (nargs == 0) {
		print_help(stderr);
		free(args);
		return 2;
	}
	if (strcmp(args[0], "--help") == 0 || strcmp(args[0], "-h") == 0)
		args[0] = "help";
	if (strcmp(args[0], "--version") == 0)
		args[0] = "version";
	const dk_cmd *c = find_command(args[0]);
	if (!c) {
		fprintf(stderr, "docket: no command '%s'; run 'docket help' to see them\n",
		        args[0]);
		free(args);
		return 2;
	}
	dk_error_clear();
	rc = c->fn(&cli, nargs, args);
	if (rc < 0 && *dk_error_last())
		fprintf(stderr, "docket %s: %s\n", c->name, dk_error_last());
	free(args);
	return dk_error_exit_status(rc < 0 ? rc : 0);
}
