/*
 * whole_instances.c - docket's side of the whole-instance benchmark: the
 * library (engine/runner.h) carrying monthly-plan instances from start to
 * done with the plan uploaded, every step durable, against bpmn-engine
 * running the same flow in memory (bench/peers/bpmn-plan.mjs).
 *
 * Usage: whole_instances HOME FLOW ORG N FILE
 * Times N instances, one after the other: start, attach FILE as the plan
 * (git archive, then SQLite), submit, approve, finish (phases = 0). Prints
 * whole instances per second. HOME must be new; FLOW is
 * bench/monthly-plan.xml as it is.
 */
#include "definitions/flow.h"
#include "engine/runner.h"
#include "util/error.h"
#include "util/time.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "whole_instances: %s: %s\n", what, dk_error_last());
	return 1;
}

static int setup(dk_runner *r, const char *flow, const char *org)
{
	json_t *out = NULL;
	dk_diags diags = DK_DIAGS_INIT;
	int rc = 0;

	if (dk_runner_org_load(r, &out, org, &diags) < 0 ||
	    dk_runner_deploy(r, &out, flow, &diags) < 0) {
		dk_diags_print(&diags, stderr);
		rc = fail("setup");
	}
	json_decref(out);
	dk_diags_free(&diags);
	return rc;
}

static int act(dk_runner *r, const char *id, const char *transition, const char *actor)
{
	dk_act_opts o = {.instance = id, .transition = transition, .actor = actor};
	json_t *out = NULL;

	if (dk_runner_act(r, &out, &o) < 0) {
		fprintf(stderr, "whole_instances: %s %s: %s\n", id, transition, dk_error_last());
		return 1;
	}
	json_decref(out);
	return 0;
}

/* One instance from start to done; returns 0 or 1. */
static int one(dk_runner *r, const char *file)
{
	static const dk_kv vars[] = {{"month", "2026-11"}, {"phases", "0"}};
	dk_start_opts so = {.flow = "bench-plan", .actor = "li", .vars = vars, .nvars = 2};
	dk_attach_opts ao = {.kind = "plan", .actor = "li", .path = file, .name = "plan.pdf"};
	json_t *out = NULL;
	char *id = NULL;
	int rc = 1;

	if (dk_runner_start(r, &out, &so) < 0) {
		fail("start");
		goto cleanup;
	}
	if (json_string_value(json_object_get(out, "id")) == NULL) {
		fprintf(stderr, "whole_instances: start gave no \"id\"\n");
		goto cleanup;
	}
	id = strdup(json_string_value(json_object_get(out, "id")));
	json_decref(out);
	out = NULL;
	ao.instance = id;
	if (dk_runner_attach(r, &out, &ao) < 0) {
		fail("attach");
		goto cleanup;
	}
	if (act(r, id, "submit", "li") != 0 || act(r, id, "approve", "wei") != 0 ||
	    act(r, id, "finish", "li") != 0)
		goto cleanup;
	rc = 0;
cleanup:
	json_decref(out);
	free(id);
	return rc;
}

int main(int argc, char **argv)
{
	dk_runner *r = NULL;
	int64_t t0;
	long n, i;
	double start, secs;
	int rc = 1;

	if (argc != 6 || (n = strtol(argv[4], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: whole_instances HOME FLOW ORG N FILE\n");
		return 2;
	}
	if (dk_time_parse(&t0, "2026-11-02T09:00:00+08:00") < 0)
		return fail("clock");
	if (dk_runner_open(&r, argv[1]) < 0)
		return fail(argv[1]);
	dk_runner_set_now(r, t0);
	if (setup(r, argv[2], argv[3]) != 0)
		goto cleanup;
	start = now_s();
	for (i = 0; i < n; i++)
		if (one(r, argv[5]) != 0)
			goto cleanup;
	secs = now_s() - start;
	printf("%.3f\n", (double)n / secs);
	rc = 0;
cleanup:
	dk_runner_free(r);
	return rc;
}
