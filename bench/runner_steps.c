/*
 * runner_steps.c - docket's durable side: commands through the runner
 * (engine/runner.h), each its own SQLite transaction with WAL and
 * synchronous=FULL, against the bare SQLite floor (floor/sqlite_floor.c).
 *
 * Usage:
 *   runner_steps HOME transitions FLOW ORG N
 *       starts N/8 instances (not timed), then times their acts: submit,
 *       return, submit, approve, phase-done x3, finish. Prints durable
 *       transitions per second. FLOW must not require uploads (run.sh
 *       strips <requires> from bench/monthly-plan.xml: uploads are the
 *       archive's benchmark).
 *   runner_steps HOME arm FLOW ORG N [DUE]
 *       starts N instances and submits each, so each waits in review with
 *       its deadline and reminder armed. Prints the instances. With DUE,
 *       only the first DUE instances are armed at T0; the others 30 days
 *       later, so that the tick four days on finds their timers armed but
 *       not due (a few due among many armed, as in real life).
 *   runner_steps HOME idle
 *       times 20 ticks at the arming clock, when nothing is due; prints
 *       milliseconds per tick.
 *   runner_steps HOME fire
 *       one tick four days later, when the timers armed at T0 are due;
 *       prints timers fired per second.
 *
 * HOME must be new for transitions and arm. The clock is fixed (T0 below)
 * so that every run does the same work.
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

#define T0 "2026-11-02T09:00:00+08:00"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "runner_steps: %s: %s\n", what, dk_error_last());
	return 1;
}

typedef struct {
	const char *transition, *actor, *comment;
} step;

static const step PATH[] = {
    {"submit", "li", NULL},     {"return", "wei", "the numbers for week 2 are missing"},
    {"submit", "li", NULL},     {"approve", "wei", NULL},
    {"phase-done", "li", NULL}, {"phase-done", "li", NULL},
    {"phase-done", "li", NULL}, {"finish", "li", NULL},
};
#define NPATH (sizeof PATH / sizeof PATH[0])

static int setup(dk_runner *r, const char *flow, const char *org)
{
	json_t *out = NULL;
	dk_diags diags = DK_DIAGS_INIT;

	if (dk_runner_org_load(r, &out, org, &diags) < 0) {
		dk_diags_print(&diags, stderr);
		dk_diags_free(&diags);
		return fail(org);
	}
	json_decref(out);
	out = NULL;
	if (dk_runner_deploy(r, &out, flow, &diags) < 0) {
		dk_diags_print(&diags, stderr);
		dk_diags_free(&diags);
		return fail(flow);
	}
	json_decref(out);
	dk_diags_free(&diags);
	return 0;
}

/* Starts an instance of bench-plan as li with that many phases; *id
 * (free()) gets its id. */
static int start(dk_runner *r, char **id, const char *phases)
{
	const dk_kv vars[] = {{"month", "2026-11"}, {"phases", phases}};
	dk_start_opts o = {.flow = "bench-plan", .actor = "li", .vars = vars, .nvars = 2};
	json_t *out = NULL;
	const char *s;

	if (dk_runner_start(r, &out, &o) < 0)
		return fail("start");
	s = json_string_value(json_object_get(out, "id"));
	if (s == NULL) {
		fprintf(stderr, "runner_steps: start gave no \"id\"\n");
		json_decref(out);
		return 1;
	}
	*id = strdup(s);
	json_decref(out);
	return 0;
}

static int act(dk_runner *r, const char *id, const step *st)
{
	dk_act_opts o = {.instance = id,
	                 .transition = st->transition,
	                 .actor = st->actor,
	                 .comment = st->comment};
	json_t *out = NULL;

	if (dk_runner_act(r, &out, &o) < 0) {
		fprintf(stderr, "runner_steps: %s %s: %s\n", id, st->transition, dk_error_last());
		return 1;
	}
	json_decref(out);
	return 0;
}

static int transitions(dk_runner *r, long n)
{
	long ninst = (n + (long)NPATH - 1) / (long)NPATH, i;
	char **ids = calloc((size_t)ninst, sizeof *ids);
	size_t s;
	double t0, secs;
	int rc = 1;

	if (ids == NULL)
		return 1;
	for (i = 0; i < ninst; i++)
		if (start(r, &ids[i], "3") != 0)
			goto cleanup;
	/* step by step across instances, as many people would act */
	t0 = now_s();
	for (s = 0; s < NPATH; s++)
		for (i = 0; i < ninst; i++)
			if (act(r, ids[i], &PATH[s]) != 0)
				goto cleanup;
	secs = now_s() - t0;
	printf("%.3f\n", (double)(ninst * (long)NPATH) / secs);
	rc = 0;
cleanup:
	for (i = 0; i < ninst; i++)
		free(ids[i]);
	free(ids);
	return rc;
}

static int arm(dk_runner *r, long n, long due, int64_t t0)
{
	long i;
	char *id = NULL;

	for (i = 0; i < n; i++) {
		if (i == due)
			dk_runner_set_now(r, t0 + (int64_t)30 * 86400);
		if (start(r, &id, "3") != 0 || act(r, id, &PATH[0]) != 0) {
			free(id);
			return 1;
		}
		free(id);
		id = NULL;
	}
	printf("%ld\n", n);
	return 0;
}

static int tick_idle(dk_runner *r)
{
	size_t fired = 0;
	int i, ticks = 20;
	double t0, secs;

	t0 = now_s();
	for (i = 0; i < ticks; i++) {
		if (dk_runner_tick(r, &fired) < 0)
			return fail("tick");
		if (fired != 0) {
			fprintf(stderr, "runner_steps: an idle tick fired %zu timers\n", fired);
			return 1;
		}
	}
	secs = now_s() - t0;
	printf("%.3f\n", secs * 1000.0 / ticks);
	return 0;
}

static int tick_fire(dk_runner *r)
{
	size_t fired = 0;
	double t0, secs;

	t0 = now_s();
	if (dk_runner_tick(r, &fired) < 0)
		return fail("tick");
	secs = now_s() - t0;
	if (fired == 0) {
		fprintf(stderr, "runner_steps: the tick four days on fired nothing\n");
		return 1;
	}
	fprintf(stderr, "runner_steps: fired %zu timers in %.3f s\n", fired, secs);
	printf("%.3f\n", (double)fired / secs);
	return 0;
}

int main(int argc, char **argv)
{
	dk_runner *r = NULL;
	int64_t t0;
	const char *mode = argc > 2 ? argv[2] : "";
	int build = strcmp(mode, "transitions") == 0 || strcmp(mode, "arm") == 0;
	int rc = 1;

	if (!(build && (argc == 6 || (argc == 7 && strcmp(mode, "arm") == 0))) &&
	    !((strcmp(mode, "idle") == 0 || strcmp(mode, "fire") == 0) && argc == 3)) {
		fprintf(stderr, "usage: runner_steps HOME transitions|arm FLOW ORG N [DUE]\n"
		                "       runner_steps HOME idle|fire\n");
		return 2;
	}
	if (dk_time_parse(&t0, T0) < 0)
		return fail(T0);
	if (dk_runner_open(&r, argv[1]) < 0)
		return fail(argv[1]);
	if (strcmp(mode, "fire") == 0)
		dk_runner_set_now(r, t0 + (int64_t)4 * 86400);
	else
		dk_runner_set_now(r, t0);
	if (build) {
		long n = strtol(argv[5], NULL, 10);
		if (n <= 0 || setup(r, argv[3], argv[4]) != 0)
			goto cleanup;
		long due = argc == 7 ? strtol(argv[6], NULL, 10) : n;
		rc = strcmp(mode, "transitions") == 0 ? transitions(r, n) : arm(r, n, due, t0);
	} else if (strcmp(mode, "idle") == 0) {
		rc = tick_idle(r);
	} else {
		rc = tick_fire(r);
	}
cleanup:
	dk_runner_free(r);
	return rc;
}
