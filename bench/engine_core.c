/*
 * engine_core.c - docket's side of the engine-core benchmark: the pure
 * engine (engine/engine.h) carrying monthly-plan instances from start to
 * done in memory, no store, against xstate running the same machine
 * (bench/peers/xstate-plan.mjs).
 *
 * Usage: engine_core FLOW ORG INSTANCES
 * Prints one line: transitions per second. Each instance is started, then
 * takes submit, return, submit, approve, phase-done x3 and finish (8
 * transitions with phases = 3); it must end completed in state "done"
 * with 23 audit events. Each submit and phase-done needs an upload of its
 * kind in the current visit, so the loop records those 5 uploads with
 * dk_engine_evidence, inside the timed loop (they count as work, not as
 * transitions); the peer sends them as events too.
 *
 * Between commands the new snapshot is taken from the result instead of
 * serialised, as an in-memory peer keeps its actor: the store's JSON
 * round trip is measured by the durable benchmark (runner_steps.c).
 */
#include "definitions/flow.h"
#include "engine/engine.h"
#include "util/error.h"
#include "util/time.h"

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

typedef struct {
	const char *transition; /* NULL: an upload of kind instead */
	const char *kind;
	const char *actor;
	const char *comment;
} step;

/* li drafts and works, wei (head of li's department) reviews */
static const step PATH[] = {
    {NULL, "plan", "li", NULL},
    {"submit", NULL, "li", NULL},
    {"return", NULL, "wei", "the numbers for week 2 are missing"},
    {NULL, "plan", "li", NULL},
    {"submit", NULL, "li", NULL},
    {"approve", NULL, "wei", NULL},
    {NULL, "phase-report", "li", NULL},
    {"phase-done", NULL, "li", NULL},
    {NULL, "phase-report", "li", NULL},
    {"phase-done", NULL, "li", NULL},
    {NULL, "phase-report", "li", NULL},
    {"phase-done", NULL, "li", NULL},
    {"finish", NULL, "li", NULL},
};
#define NPATH (sizeof PATH / sizeof PATH[0])

/* audit events of the instance being run (23 along PATH) */
static size_t nevents;

/* Takes the snapshot out of res (so freeing res keeps it) and frees res. */
static dk_snapshot *take(dk_engine_result *res)
{
	dk_snapshot *snap = res->snapshot;
	nevents += res->nevents;
	res->snapshot = NULL;
	dk_engine_result_free(res);
	return snap;
}

/* Runs one instance; returns transitions fired or -1. */
static long run_instance(const dk_engine_env *env, long i)
{
	static const char *const vars[] = {"month=2026-11", "phases=3"};
	char id[32];
	dk_engine_result res = DK_ENGINE_RESULT_INIT;
	dk_snapshot *snap = NULL, *next;
	long fired = 0;
	size_t s;
	const char *what = "start";
	int err;

	snprintf(id, sizeof id, "bench-%ld", i);
	nevents = 0;
	if (dk_engine_start(&res, env, id, "li", vars, 2) < 0)
		goto failed;
	snap = take(&res);
	for (s = 0; s < NPATH; s++) {
		const step *st = &PATH[s];
		what = st->transition ? st->transition : st->kind;
		if (st->transition) {
			dk_fire_cmd cmd = DK_FIRE_CMD_INIT;
			cmd.transition = st->transition;
			cmd.actor = st->actor;
			cmd.comment = st->comment;
			err = dk_engine_fire(&res, env, snap, &cmd);
		} else {
			dk_evidence_cmd ev = {
			    st->kind, st->actor, "report.pdf",
			    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			    4096};
			err = dk_engine_evidence(&res, env, snap, &ev);
		}
		if (err < 0)
			goto failed;
		next = take(&res);
		dk_snapshot_free(snap);
		snap = next;
		if (st->transition)
			fired++;
	}
	if (snap->status != DK_INSTANCE_COMPLETED || strcmp(snap->state, "done") != 0) {
		fprintf(stderr, "engine_core: %s ended in %s, not done\n", id, snap->state);
		dk_snapshot_free(snap);
		return -1;
	}
	/* started, 5 uploads, 8 fired, 8 assigned, completed: the peer
	 * checks that it emits as many */
	if (nevents != 23) {
		fprintf(stderr, "engine_core: %s gave %zu audit events, not 23\n", id, nevents);
		dk_snapshot_free(snap);
		return -1;
	}
	dk_snapshot_free(snap);
	return fired;
failed:
	fprintf(stderr, "engine_core: %s, %s: %s\n", id, what, dk_error_last());
	dk_engine_result_free(&res);
	dk_snapshot_free(snap);
	return -1;
}

static long run(const dk_engine_env *env, long n, double *secs)
{
	long i, fired = 0, f;
	double t0 = now_s();

	for (i = 0; i < n; i++) {
		if ((f = run_instance(env, i)) < 0)
			return -1;
		fired += f;
	}
	*secs = now_s() - t0;
	return fired;
}

int main(int argc, char **argv)
{
	dk_flow *flow = NULL;
	dk_org *org = NULL;
	dk_engine_env env = DK_ENGINE_ENV_INIT;
	long n, fired;
	double secs;
	int rc = 1;

	if (argc != 4 || (n = strtol(argv[3], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: engine_core FLOW ORG INSTANCES\n");
		return 2;
	}
	if (dk_flow_load_file(&flow, argv[1], NULL) < 0 ||
	    dk_org_load_file(&org, argv[2], NULL) < 0) {
		fprintf(stderr, "engine_core: %s\n", dk_error_last());
		goto cleanup;
	}
	env.flow = flow;
	env.org = org;
	if (dk_time_parse(&env.now, "2026-11-02T09:00:00+08:00") < 0) {
		fprintf(stderr, "engine_core: %s\n", dk_error_last());
		goto cleanup;
	}
	/* a short warm-up, as the JavaScript peer warms its JIT */
	if (run(&env, n < 2000 ? n : 2000, &secs) < 0)
		goto cleanup;
	if ((fired = run(&env, n, &secs)) < 0)
		goto cleanup;
	printf("%.0f\n", (double)fired / secs);
	rc = 0;
cleanup:
	dk_flow_free(flow);
	dk_org_free(org);
	return rc;
}
