/* cmd_graph.c - `docket graph FILE [--format dot|mermaid] [--instance ID]`:
 * draws a flow for Graphviz (`| dot -Tsvg`) or Mermaid; with --instance,
 * the flow version the instance runs on, its current states highlighted
 * (FILE may then be left out). */
#include "cli/cli.h"

#include "definitions/flow.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

int cmd_graph(dk_cli *cli, int argc, char **argv)
{
	const char *file = NULL, *format = "dot", *instance = NULL;
	dk_runner *r = NULL;
	dk_diags d = DK_DIAGS_INIT;
	dk_flow *flow = NULL;
	dk_buf out = DK_BUF_INIT;
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--instance") == 0) {
			if (i + 1 >= argc)
				return dk_cli_usage("graph", "--instance needs an instance id");
			instance = argv[++i];
		} else if (strcmp(a, "--format") == 0) {
			if (i + 1 >= argc)
				return dk_cli_usage("graph",
				                    "--format needs a value: dot or mermaid");
			format = argv[++i];
		} else if (strncmp(a, "--format=", 9) == 0) {
			format = a + 9;
		} else if (a[0] == '-' && a[1]) {
			return dk_cli_usage("graph", "unknown option '%s'", a);
		} else if (!file) {
			file = a;
		} else {
			return dk_cli_usage("graph", "one flow file at a time ('%s' is extra)", a);
		}
	}
	if (!file && !instance)
		return dk_cli_usage("graph", "name the flow file to draw, or --instance ID");
	if (strcmp(format, "dot") != 0 && strcmp(format, "mermaid") != 0)
		return dk_cli_usage("graph", "unknown format '%s'; use dot or mermaid", format);
	if ((rc = dk_cli_need(DK_NEED_XML | DK_NEED_CRYPTO, "graph")) < 0)
		return rc;
	if (instance) {
		if ((rc = dk_cli_open(cli, &r)) < 0 ||
		    (rc = dk_runner_graph(r, &out, instance, format)) < 0)
			goto cleanup;
		fwrite(out.ptr ? out.ptr : "", 1, out.len, stdout);
		fflush(stdout);
		goto cleanup;
	}
	rc = dk_flow_load_file(&flow, file, &d);
	dk_diags_print(&d, stderr);
	if (rc < 0) {
		rc = dk_error_set(rc == DK_ENOTFOUND ? DK_ENOTFOUND : DK_EINVALID,
		                  "%s is not a valid flow; fix the errors above (docket check %s)",
		                  file, file);
		goto cleanup;
	}
	if ((rc = dk_flow_graph(&out, flow, format, NULL)) < 0)
		goto cleanup;
	fwrite(out.ptr ? out.ptr : "", 1, out.len, stdout);
	fflush(stdout);
cleanup:
	dk_runner_free(r);
	dk_buf_free(&out);
	dk_flow_free(flow);
	dk_diags_free(&d);
	return rc;
}
