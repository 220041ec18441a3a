/* cmd_check.c - `docket check FILE...`: validates flows and org directories
 * (told apart by the root element's namespace) and prints every problem as
 * file:line: error|warning: message, or all of it as JSON with --json. */
#include "cli/cli.h"

#include "definitions/flow.h"
#include "util/error.h"
#include "util/file.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loads one file of either kind; fills d and the summary (on success). */
static int check_one(const char *path, dk_diags *d, char *summary, size_t sumlen, json_t *jf)
{
	char *bytes = NULL;
	size_t len = 0;
	int rc;

	if (dk_read_file(&bytes, &len, path, DK_FLOW_MAX_BYTES + 1) < 0) {
		/* missing or too big: the loader says so in a diag */
		dk_flow *flow = NULL;
		rc = dk_flow_load_file(&flow, path, d);
		dk_flow_free(flow);
		return rc < 0 ? rc : DK_EINVALID;
	}
	if (dk_doc_detect(bytes, len) == DK_DOC_ORG) {
		dk_org *org = NULL;
		rc = dk_org_load_buffer(&org, path, bytes, len, d);
		json_object_set_new(jf, "kind", json_string("org"));
		if (rc == 0) {
			snprintf(summary, sumlen, "org, %zu users, %zu depts, %zu holidays",
			         org->nusers, org->ndepts, org->nholidays);
			json_object_set_new(jf, "users", json_integer((json_int_t)org->nusers));
			json_object_set_new(jf, "depts", json_integer((json_int_t)org->ndepts));
		}
		dk_org_free(org);
	} else {
		dk_flow *flow = NULL;
		rc = dk_flow_load_buffer(&flow, path, bytes, len, d);
		json_object_set_new(jf, "kind", json_string("flow"));
		if (rc == 0) {
			snprintf(summary, sumlen, "flow %s@%d, %zu states", flow->id, flow->version,
			         flow->nstates);
			json_object_set_new(jf, "id", json_string(flow->id));
			json_object_set_new(jf, "version", json_integer(flow->version));
			json_object_set_new(jf, "states", json_integer((json_int_t)flow->nstates));
			json_object_set_new(jf, "sha256", json_string(flow->sha256));
		}
		dk_flow_free(flow);
	}
	free(bytes);
	return rc;
}

static json_t *diags_json(const dk_diags *d)
{
	json_t *a = json_array();
	for (size_t i = 0; i < d->count; i++) {
		const dk_diag *g = &d->items[i];
		json_array_append_new(
		    a, json_pack("{s:s, s:i, s:s, s:s}", "file", g->file, "line", g->line,
		                 "severity", g->severity == DK_DIAG_ERROR ? "error" : "warning",
		                 "message", g->message));
	}
	return a;
}

int cmd_check(dk_cli *cli, int argc, char **argv)
{
	int nfiles = 0, failed = 0, opts = 1;
	json_t *files = json_array();

	for (int i = 1; i < argc; i++) {
		if (opts && strcmp(argv[i], "--") == 0) {
			opts = 0;
			continue;
		}
		if (opts && argv[i][0] == '-' && argv[i][1]) {
			json_decref(files);
			return dk_cli_usage("check", "unknown option '%s'", argv[i]);
		}
		nfiles++;
	}
	if (nfiles == 0) {
		json_decref(files);
		return dk_cli_usage("check", "name at least one flow or org file");
	}
	int need = dk_cli_need(DK_NEED_XML | DK_NEED_CRYPTO, "check");
	if (need < 0) {
		json_decref(files);
		return need;
	}
	opts = 1;
	for (int i = 1; i < argc; i++) {
		const char *path = argv[i];
		dk_diags d = DK_DIAGS_INIT;
		char summary[256] = "";
		json_t *jf;

		if (opts && strcmp(path, "--") == 0) {
			opts = 0;
			continue;
		}
		jf = json_pack("{s:s}", "file", path);
		int rc = check_one(path, &d, summary, sizeof(summary), jf);
		if (rc < 0 || d.errors > 0)
			failed++;
		if (cli->json) {
			json_object_set_new(jf, "valid", json_boolean(rc == 0 && d.errors == 0));
			json_object_set_new(jf, "errors", json_integer(d.errors));
			json_object_set_new(jf, "warnings", json_integer(d.warnings));
			dk_diags_sort(&d);
			json_object_set_new(jf, "diagnostics", diags_json(&d));
			json_array_append(files, jf);
		} else {
			dk_diags_print(&d, stderr);
			if (rc == 0 && d.errors == 0) {
				if (d.warnings)
					printf("%s: ok (%s, %d warning%s)\n", path, summary,
					       d.warnings, d.warnings == 1 ? "" : "s");
				else
					printf("%s: ok (%s)\n", path, summary);
			}
		}
		json_decref(jf);
		dk_diags_free(&d);
	}
	if (cli->json) {
		json_t *root = json_pack("{s:b, s:o}", "valid", failed == 0, "files", files);
		char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(root);
	} else {
		json_decref(files);
	}
	fflush(stdout);
	if (failed)
		return dk_error_set(DK_EINVALID, "%s", "");
	return 0;
}
