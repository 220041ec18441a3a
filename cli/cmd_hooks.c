/* cmd_hooks.c - `docket hooks`: add, list, remove, disable, enable and
 * rotate webhook subscriptions. Secrets are shown once, when made. */
#include "cli/cli.h"

#include "store/store.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/time.h"
#include "web-hooks/hooks.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOOKS_USAGE                                                                                \
	"usage: docket hooks add URL [--events LIST] [--flow F] [--secret whsec_...]\n"            \
	"       docket hooks list [--json]\n"                                                      \
	"       docket hooks remove|disable|enable N\n"                                            \
	"       docket hooks rotate N [--secret whsec_...] [--overlap PT24H]"

static int usage(const char *why)
{
	return dk_error_set(DK_EUSAGE, "%s\n" HOOKS_USAGE, why);
}

/* The subscription number N of `hooks list`. */
static int parse_id(int64_t *out, const char *s)
{
	char *end = NULL;
	long long v = s ? strtoll(s, &end, 10) : 0;
	if (!s || !*s || *end || v <= 0)
		return usage("N is a subscription number, as `docket hooks list` shows");
	*out = v;
	return 0;
}

/* Commits the write that gave error, or rolls it back. */
static int finish_tx(dk_store *s, int error)
{
	if (error < 0) {
		dk_store_rollback(s);
		return error;
	}
	return dk_store_commit(s);
}

static int not_found(int64_t id)
{
	return dk_error_set(DK_ENOTFOUND,
	                    "no webhook subscription %" PRId64 "; `docket hooks list` shows them",
	                    id);
}

/* Checks everything before opening the store: a refused subscription
 * leaves no trace, not even a new home. */
static int hooks_add(dk_cli *cli, int argc, char **argv)
{
	dk_store *s = NULL;
	const char *url = NULL, *events = NULL, *flow = NULL, *secret = NULL;
	char *ev = NULL, *made = NULL;
	dk_hook_row row;
	int64_t now = 0;
	int error;

	memset(&row, 0, sizeof(row));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = strcmp(a, "--events") == 0   ? &events
		                    : strcmp(a, "--flow") == 0   ? &flow
		                    : strcmp(a, "--secret") == 0 ? &secret
		                                                 : NULL;
		if (slot) {
			if (i + 1 >= argc)
				return usage("an option needs a value");
			*slot = argv[++i];
		} else if (a[0] == '-' && a[1] == '-') {
			return usage("unknown option for hooks add");
		} else if (!url) {
			url = a;
		} else {
			return usage("hooks add takes one URL");
		}
	}
	if (!url)
		return usage("hooks add needs the URL to deliver to");
	if ((error = dk_hook_url_check(url)) < 0)
		return error;
	if ((error = dk_hook_events_parse(&ev, events)) < 0)
		return error;
	if (secret)
		error = dk_hook_secret_check(secret);
	else
		error = dk_hook_secret_generate(&made);
	if (error < 0 || (error = dk_time_now(&now)) < 0 ||
	    (error = dk_store_open(&s, cli->home)) < 0)
		goto cleanup;
	row.url = (char *)url;
	row.events = ev;
	row.flow = flow && *flow ? (char *)flow : NULL;
	row.secret = secret ? (char *)secret : made;
	row.enabled = 1;
	row.created_at = now;
	if ((error = dk_store_begin(s)) < 0)
		goto cleanup;
	if ((error = finish_tx(s, dk_store_hook_add(s, &row))) < 0)
		goto cleanup;
	if (cli->json) {
		json_t *o = json_pack("{s:I,s:s}", "id", (json_int_t)row.id, "url", url);
		if (made)
			json_object_set_new(o, "secret", json_string(made));
		char *text = json_dumps(o, JSON_COMPACT);
		printf("%s\n", text);
		free(text);
		json_decref(o);
	} else {
		printf("hook %" PRId64 " added\n", row.id);
		if (made) {
			printf("secret %s\n", made);
			fprintf(stderr, "keep this secret: it is shown only now, and the receiver "
			                "needs it to verify signatures\n");
		}
	}
cleanup:
	dk_store_close(s);
	free(ev);
	free(made);
	return error;
}

static int hooks_list(dk_cli *cli, dk_store *s)
{
	dk_hook_row *rows = NULL;
	size_t n = 0;
	int error;

	if ((error = dk_store_hook_list(s, &rows, &n)) < 0)
		return error;
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++) {
			dk_hook_row *h = &rows[i];
			char until[DK_TIME_STRLEN] = "";
			json_t *o = json_pack("{s:I,s:s,s:b}", "id", (json_int_t)h->id, "url",
			                      h->url, "enabled", h->enabled);
			json_t *evs = json_array();
			const char *p = h->events ? h->events : "";
			while (*p) {
				size_t len = strcspn(p, " ");
				if (len)
					json_array_append_new(evs, json_stringn(p, len));
				p += len;
				while (*p == ' ')
					p++;
			}
			json_object_set_new(o, "events", evs); /* [] = every event */
			json_object_set_new(o, "flow",
			                    h->flow ? json_string(h->flow) : json_null());
			if (h->old_secret_until)
				dk_time_format(until, h->old_secret_until);
			json_object_set_new(o, "old_secret_until",
			                    *until ? json_string(until) : json_null());
			json_array_append_new(a, o);
		}
		char *text = json_dumps(a, JSON_COMPACT);
		printf("%s\n", text);
		free(text);
		json_decref(a);
	} else if (n == 0) {
		printf("no webhook subscriptions; add one with `docket hooks add URL`\n");
	} else {
		printf("%-4s %-8s %-10s %-30s %s\n", "ID", "STATE", "FLOW", "EVENTS", "URL");
		for (size_t i = 0; i < n; i++) {
			dk_hook_row *h = &rows[i];
			printf("%-4" PRId64 " %-8s %-10s %-30s %s\n", h->id,
			       h->enabled ? "enabled" : "disabled", h->flow ? h->flow : "*",
			       h->events && *h->events ? h->events : "all", h->url);
		}
	}
	dk_hook_rows_free(rows, n);
	return 0;
}

/* remove, disable, enable */
static int hooks_change(dk_store *s, const char *verb, int argc, char **argv)
{
	int64_t id = 0;
	int error;
	if (argc != 2)
		return usage("name one subscription number");
	if ((error = parse_id(&id, argv[1])) < 0)
		return error;
	if ((error = dk_store_begin(s)) < 0)
		return error;
	if (strcmp(verb, "remove") == 0)
		error = dk_store_hook_remove(s, id);
	else
		error = dk_store_hook_set_enabled(s, id, strcmp(verb, "enable") == 0);
	if ((error = finish_tx(s, error)) == DK_ENOTFOUND)
		return not_found(id);
	if (error < 0)
		return error;
	printf("hook %" PRId64 " %s\n", id,
	       strcmp(verb, "remove") == 0   ? "removed"
	       : strcmp(verb, "enable") == 0 ? "enabled"
	                                     : "disabled");
	return 0;
}

static int hooks_rotate(dk_cli *cli, dk_store *s, int argc, char **argv)
{
	const char *secret = NULL, *overlap = "PT24H", *n = NULL;
	char *made = NULL;
	int64_t id = 0, now = 0, until;
	int error;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--secret") == 0 && i + 1 < argc)
			secret = argv[++i];
		else if (strcmp(argv[i], "--overlap") == 0 && i + 1 < argc)
			overlap = argv[++i];
		else if (argv[i][0] != '-' && !n)
			n = argv[i];
		else
			return usage("hooks rotate takes N, --secret S and --overlap DURATION");
	}
	if ((error = parse_id(&id, n)) < 0)
		return error;
	if ((error = dk_time_now(&now)) < 0)
		return error;
	if (strcmp(overlap, "0") == 0) {
		until = 0; /* the old secret stops at once */
	} else {
		dk_duration d;
		if (dk_duration_parse(&d, overlap) < 0)
			return dk_error_set(DK_EUSAGE,
			                    "--overlap '%s' is not an ISO 8601 duration; write it "
			                    "like PT24H, or 0 for none",
			                    overlap);
		until = dk_duration_add(now, &d);
	}
	if (secret)
		error = dk_hook_secret_check(secret);
	else
		error = dk_hook_secret_generate(&made);
	if (error < 0)
		goto cleanup;
	if ((error = dk_store_begin(s)) < 0)
		goto cleanup;
	error = finish_tx(s, dk_store_hook_rotate(s, id, secret ? secret : made, until));
	if (error == DK_ENOTFOUND)
		error = not_found(id);
	if (error < 0)
		goto cleanup;
	if (cli->json) {
		char at[DK_TIME_STRLEN] = "";
		if (until)
			dk_time_format(at, until);
		json_t *o = json_pack("{s:I}", "id", (json_int_t)id);
		json_object_set_new(o, "old_secret_until", until ? json_string(at) : json_null());
		if (made)
			json_object_set_new(o, "secret", json_string(made));
		char *text = json_dumps(o, JSON_COMPACT);
		printf("%s\n", text);
		free(text);
		json_decref(o);
	} else {
		char at[DK_TIME_STRLEN];
		dk_time_format(at, until);
		printf("hook %" PRId64 " rotated", id);
		if (until)
			printf("; the old secret signs too until %s", at);
		printf("\n");
		if (made) {
			printf("secret %s\n", made);
			fprintf(stderr, "keep this secret: it is shown only now\n");
		}
	}
cleanup:
	free(made);
	return error;
}

int cmd_hooks(dk_cli *cli, int argc, char **argv)
{
	dk_store *s = NULL;
	int error;

	if (argc < 2)
		return usage("which hooks command?");
	const char *sub = argv[1];
	if (strcmp(sub, "add") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "remove") != 0 &&
	    strcmp(sub, "disable") != 0 && strcmp(sub, "enable") != 0 && strcmp(sub, "rotate") != 0)
		return usage("unknown hooks command");
	if (strcmp(sub, "add") == 0) {
		/* the URL is checked with libcurl's parser; the secret drawn by
		 * OpenSSL */
		if ((error = dk_cli_need(DK_NEED_CURL | DK_NEED_CRYPTO, "hooks add")) < 0)
			return error;
		return hooks_add(cli, argc - 1, argv + 1);
	}
	if (strcmp(sub, "rotate") == 0 && (error = dk_cli_need(DK_NEED_CRYPTO, "hooks rotate")) < 0)
		return error;
	if ((error = dk_store_open(&s, cli->home)) < 0)
		return error;
	if (strcmp(sub, "list") == 0)
		error = argc == 2 ? hooks_list(cli, s) : usage("hooks list takes no arguments");
	else if (strcmp(sub, "rotate") == 0)
		error = hooks_rotate(cli, s, argc - 1, argv + 1);
	else
		error = hooks_change(s, sub, argc - 1, argv + 1);
	dk_store_close(s);
	return error;
}
