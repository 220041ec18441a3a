/*
 * cli.h - what every subcommand of the docket command shares.
 *
 * main.c strips the global options (--home, --as, --json) wherever they
 * stand, then calls the command's function with the remaining arguments
 * (argv[0] is the command's name). A command returns a dk_err value; main
 * prints dk_error_last() and exits with the matching status.
 */
#ifndef DK_CLI_H
#define DK_CLI_H

#include "engine/runner.h"

#include <jansson.h>
#include <stdint.h>

typedef struct {
	const char *home; /* --home, DOCKET_HOME, or ".docket-home" */
	const char *user; /* --as or DOCKET_USER; NULL when neither */
	int json;         /* --json */
} dk_cli;

typedef int (*dk_cmd_fn)(dk_cli *cli, int argc, char **argv);

typedef struct {
	const char *name;
	dk_cmd_fn fn;
	const char *usage;   /* "check FILE..." */
	const char *summary; /* one line */
} dk_cmd;

/* Commands, one file each (cli/cmd_NAME.c). */
#define DK_CMD(name, usage, summary) int cmd_##name(dk_cli *cli, int argc, char **argv);
#include "cli/commands.def"
#undef DK_CMD

/* Reports a usage error for the named command (prints its usage line) and
 * returns DK_EUSAGE. fmt may be NULL. */
int dk_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The actor: cli->user or a usage error saying how to name one. */
int dk_cli_require_user(const dk_cli *cli, const char **out);

/* libcurl, libmicrohttpd, libgit2, libxml2 and libcrypto are not linked
 * into the docket binary: they load when first called (cli/lazylib.c). A
 * command that needs one asks first, so that a missing library is a clear
 * error before any work. */
#define DK_NEED_CURL   1u
#define DK_NEED_MHD    2u
#define DK_NEED_GIT    4u
#define DK_NEED_XML    8u
#define DK_NEED_CRYPTO 16u
int dk_cli_need(unsigned what, const char *cmd);

/* Opens the runner on cli->home. */
int dk_cli_open(const dk_cli *cli, dk_runner **out);

/* Adds "NAME=VALUE" to *vars (growing it; free the array, not the items). */
int dk_cli_add_var(dk_kv **vars, size_t *n, const char *cmd, const char *arg);

/* Prints a JSON value, indented, with a newline. */
void dk_cli_print_json(const json_t *j);

/* Field getters that never fail: "" and 0 for absent or mistyped. */
const char *dk_json_str(const json_t *obj, const char *key);
long long dk_json_int(const json_t *obj, const char *key);

#endif
