/* cmd_graph.c - `docket graph FILE [--format dot|mermaid]`: draws a flow
 * for Graphviz (`| dot -Tsvg`) or Mermaid. */
#include "cli/cli.h"

#include "definitions/flow.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

int cmd_graph(dk_cli *cli, int argc, char **argv)
{
	const char *file = NULL, *format = "dot";
	dk_diags d = DK_DIAGS_INIT;
	dk_flow *flow = NULL;
	dk_buf out = DK_BUF_INIT;
	int rc;

	(void)cli;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--format") == 0) {
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
	if (!file)
		return dk_cli_usage("graph", "name the flow file to draw");
	if (strcmp(format, "dot") != 0 && strcmp(format, "mermaid") != 0)
		return dk_cli_usage("graph", "unknown format '%s'; use dot or mermaid", format);
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
	dk_buf_free(&out);
	dk_flow_free(flow);
	dk_diags_free(&d);
	return rc;
}
