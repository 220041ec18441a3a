/* cmd_token.c - docket token create|list|revoke: the bearer tokens of the
 * API. A token is printed once, at creation; only its SHA-256 is kept. */
#include "cli/cli.h"

#include "api/api.h"
#include "store/store.h"
#include "util/error.h"
#include "util/time.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int token_create(dk_cli *cli, dk_store *s, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"expires", required_argument, NULL, 'e'},
	    {"name", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = NULL, *expires = NULL, *name = NULL;
	dk_token_row row = {0};
	char *tok = NULL;
	int64_t now, until = 0;
	int c, error;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': user = optarg; break;
		case 'e': expires = optarg; break;
		case 'n': name = optarg; break;
		default: return dk_cli_usage("token", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc || !user)
		return dk_cli_usage("token", "token create needs --user ID");
	if ((error = dk_time_now(&now)) < 0 ||
	    (expires && (error = dk_token_parse_expiry(&until, expires, now)) < 0))
		return error;
	/* A token for someone the org does not know would see nothing and
	 * act on nothing: refuse it while the mistake is cheap. */
	if ((error = dk_store_user_exists(s, user)) < 0)
		return error;
	if (error == 0)
		return dk_error_set(DK_ENOTFOUND,
		                    "no user '%s' in the org directory; load it with docket org "
		                    "load FILE or check the id",
		                    user);
	if ((error = dk_token_create(&tok, &row, s, user, name, until, now)) < 0)
		return error;
	if (cli->json) {
		json_t *j = json_pack("{s:I, s:s, s:s, s:s?}", "id", (json_int_t)row.id, "user",
		                      user, "token", tok, "name", name);
		dk_cli_print_json(j);
		json_decref(j);
	} else {
		printf("%s\n", tok);
		fprintf(stderr, "token %lld for %s; it is shown only now: keep it secret\n",
		        (long long)row.id, user);
	}
	free(tok);
	dk_token_row_free(&row);
	return 0;
}

static int token_list(dk_cli *cli, dk_store *s, int argc, char **argv)
{
	dk_token_row *rows = NULL;
	size_t n = 0;
	int64_t now = 0;
	int error;
	char at[DK_TIME_STRLEN], exp[DK_TIME_STRLEN];

	if (argc != 1)
		return dk_cli_usage("token", "token list takes no arguments");
	if ((error = dk_time_now(&now)) < 0 ||
	    (error = dk_store_token_list(s, NULL, &rows, &n)) < 0)
		return error;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *state = rows[i].revoked                                   ? "revoked"
		                    : rows[i].expires_at && rows[i].expires_at <= now ? "expired"
		                                                                      : "active";
		dk_time_format(at, rows[i].created_at);
		if (rows[i].expires_at)
			dk_time_format(exp, rows[i].expires_at);
		json_array_append_new(
		    arr, json_pack("{s:I, s:s, s:s?, s:s, s:s?, s:s}", "id", (json_int_t)rows[i].id,
		                   "user", rows[i].user_id, "name", rows[i].name, "created_at", at,
		                   "expires_at", rows[i].expires_at ? exp : NULL, "state", state));
		if (!cli->json)
			printf("%-4lld %-12s %-8s %s%s%s%s%s\n", (long long)rows[i].id,
			       rows[i].user_id, state, at, rows[i].expires_at ? "  expires " : "",
			       rows[i].expires_at ? exp : "", rows[i].name ? "  " : "",
			       rows[i].name ? rows[i].name : "");
	}
	if (cli->json)
		dk_cli_print_json(arr);
	else if (n == 0)
		printf("no tokens; docket token create --user ID makes one\n");
	json_decref(arr);
	dk_token_rows_free(rows, n);
	return 0;
}

static int token_revoke(dk_cli *cli, dk_store *s, int argc, char **argv)
{
	char *end;
	long long id;
	int error;

	if (argc != 2)
		return dk_cli_usage("token", "token revoke takes the token's number (token list)");
	id = strtoll(argv[1], &end, 10);
	if (*end || id < 1)
		return dk_cli_usage("token", "'%s' is not a token number; see docket token list",
		                    argv[1]);
	if ((error = dk_store_begin(s)) < 0)
		return error;
	if ((error = dk_store_token_revoke(s, id)) < 0 || (error = dk_store_commit(s)) < 0) {
		dk_store_rollback(s);
		if (error == DK_ENOTFOUND)
			dk_error_set(DK_ENOTFOUND, "no token %lld; see docket token list", id);
		return error;
	}
	if (!cli->json)
		printf("token %lld revoked\n", id);
	else
		printf("{\"revoked\": %lld}\n", id);
	return 0;
}

int cmd_token(dk_cli *cli, int argc, char **argv)
{
	dk_store *s = NULL;
	int error;

	if (argc < 2)
		return dk_cli_usage("token", NULL);
	/* a token is random bytes, stored as their hash */
	if (strcmp(argv[1], "create") == 0 &&
	    (error = dk_cli_need(DK_NEED_CRYPTO, "token create")) < 0)
		return error;
	if ((error = dk_store_open(&s, cli->home)) < 0)
		return error;
	if (strcmp(argv[1], "create") == 0)
		error = token_create(cli, s, argc - 1, argv + 1);
	else if (strcmp(argv[1], "list") == 0)
		error = token_list(cli, s, argc - 1, argv + 1);
	else if (strcmp(argv[1], "revoke") == 0)
		error = token_revoke(cli, s, argc - 1, argv + 1);
	else
		error = dk_cli_usage("token", "no token command '%s'", argv[1]);
	dk_store_close(s);
	return error;
}
