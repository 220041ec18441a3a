/* cmd_attach.c - docket attach ID FILE --evidence KIND [--name N]: archive
 * a file in git, then record it (engine/runner.h dk_runner_attach).
 *
 * Test hook: DOCKET_FAULT=after-archive stops right after the git commit,
 * before the database, exactly as a crash there would; `docket verify`
 * then reports the upload as unrecorded and `verify --repair` records it. */
#include "cli/cli.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_attach(dk_cli *cli, int argc, char **argv)
{
	dk_attach_opts o = {0};
	dk_runner *r = NULL;
	json_t *out = NULL;
	const char *pos[2];
	int npos = 0, error;

	/* the file goes into the git archive */
	if ((error = dk_cli_need(DK_NEED_GIT | DK_NEED_CRYPTO, "attach")) < 0)
		return error;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--evidence") || !strcmp(argv[i], "--name")) {
			if (i + 1 >= argc)
				return dk_cli_usage("attach", "%s needs a value", argv[i]);
			if (argv[i][2] == 'e')
				o.kind = argv[++i];
			else
				o.name = argv[++i];
		} else if (npos < 2 && argv[i][0] != '-') {
			pos[npos++] = argv[i];
		} else {
			return dk_cli_usage("attach", "unexpected '%s'", argv[i]);
		}
	}
	if (npos != 2 || !o.kind)
		return dk_cli_usage("attach", "name an instance, a file and --evidence KIND");
	if ((error = dk_cli_require_user(cli, &o.actor)) < 0)
		return error;
	o.instance = pos[0];
	o.path = pos[1];
	const char *fault = getenv("DOCKET_FAULT");
	o.fault_after_archive = fault && !strcmp(fault, "after-archive");
	if ((error = dk_cli_open(cli, &r)) < 0 || (error = dk_runner_attach(r, &out, &o)) < 0)
		goto cleanup;
	if (cli->json) {
		dk_cli_print_json(out);
	} else {
		printf("kind    %s\nname    %s\nsize    %lld\nsha256  %s\ncommit  %s\n",
		       dk_json_str(out, "kind"), dk_json_str(out, "name"), dk_json_int(out, "size"),
		       dk_json_str(out, "sha256"), dk_json_str(out, "commit"));
		/* a kind with a due date says at once whether this upload was late,
		 * the figure the appraisal will deduct for */
		if (dk_json_str(out, "due_at")[0]) {
			if (json_is_true(json_object_get(out, "late")))
				printf("due     %s (late by %lld day%s)\n",
				       dk_json_str(out, "due_at"), dk_json_int(out, "days_late"),
				       dk_json_int(out, "days_late") == 1 ? "" : "s");
			else
				printf("due     %s (on time)\n", dk_json_str(out, "due_at"));
		}
	}
cleanup:
	json_decref(out);
	dk_runner_free(r);
	return error;
}
