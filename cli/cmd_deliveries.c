/* cmd_deliveries.c - `docket deliveries`: the webhook outbox, with attempts,
 * status codes, last error and next attempt of each delivery. */
#include "cli/cli.h"

#include "store/store.h"
#include "util/error.h"
#include "util/time.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *status_name(dk_delivery_status st)
{
	switch (st) {
	case DK_DELIVERY_PENDING: return "pending";
	case DK_DELIVERY_DELIVERED: return "delivered";
	case DK_DELIVERY_DEAD: return "dead";
	}
	return "unknown";
}

static json_t *time_or_null(int64_t t)
{
	char s[DK_TIME_STRLEN];
	if (!t)
		return json_null();
	dk_time_format(s, t);
	return json_string(s);
}

static json_t *str_or_null(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;
	return j ? j : json_null();
}

static void print_json(const dk_delivery_row *rows, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		const dk_delivery_row *r = &rows[i];
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(r->id));
		json_object_set_new(o, "hook", json_integer(r->hook_id));
		json_object_set_new(o, "event", str_or_null(r->event_type));
		json_object_set_new(o, "instance", str_or_null(r->instance_id));
		json_object_set_new(o, "status", json_string(status_name(r->status)));
		json_object_set_new(o, "attempts", json_integer(r->attempts));
		json_object_set_new(o, "last_status_code",
		                    r->last_status_code ? json_integer(r->last_status_code)
		                                        : json_null());
		json_object_set_new(o, "last_error", str_or_null(r->last_error));
		json_object_set_new(o, "created_at", time_or_null(r->created_at));
		json_object_set_new(
		    o, "next_attempt_at",
		    time_or_null(r->status == DK_DELIVERY_PENDING ? r->next_attempt_at : 0));
		json_object_set_new(o, "delivered_at", time_or_null(r->delivered_at));
		json_object_set_new(o, "body", str_or_null(r->body));
		json_array_append_new(a, o);
	}
	char *text = json_dumps(a, JSON_COMPACT);
	printf("%s\n", text);
	free(text);
	json_decref(a);
}

static void print_table(const dk_delivery_row *rows, size_t n)
{
	printf("%-6s %-4s %-18s %-16s %-9s %-3s %-4s %-20s %s\n", "ID", "HOOK", "EVENT", "INSTANCE",
	       "STATUS", "TRY", "CODE", "NEXT ATTEMPT", "LAST ERROR");
	for (size_t i = 0; i < n; i++) {
		const dk_delivery_row *r = &rows[i];
		char next[DK_TIME_STRLEN] = "-", code[8] = "-";
		if (r->status == DK_DELIVERY_PENDING)
			dk_time_format(next, r->next_attempt_at);
		if (r->last_status_code)
			snprintf(code, sizeof(code), "%d", r->last_status_code);
		printf("%-6" PRId64 " %-4" PRId64 " %-18s %-16s %-9s %-3d %-4s %-20s %s\n", r->id,
		       r->hook_id, r->event_type ? r->event_type : "-",
		       r->instance_id ? r->instance_id : "-", status_name(r->status), r->attempts,
		       code, next, r->last_error ? r->last_error : "");
	}
}

int cmd_deliveries(dk_cli *cli, int argc, char **argv)
{
	dk_store *s = NULL;
	dk_delivery_row *rows = NULL;
	size_t n = 0;
	int failed = 0, error;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--failed") == 0)
			failed = 1;
		else
			return dk_cli_usage("deliveries", "unknown argument '%s'", argv[i]);
	}
	if ((error = dk_store_open(&s, cli->home)) < 0)
		return error;
	if ((error = dk_store_delivery_list(s, failed, &rows, &n)) < 0)
		goto cleanup;
	if (cli->json)
		print_json(rows, n);
	else if (n == 0)
		printf(failed ? "no failed deliveries\n" : "no deliveries\n");
	else
		print_table(rows, n);
cleanup:
	dk_delivery_rows_free(rows, n);
	dk_store_close(s);
	return error;
}
