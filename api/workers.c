/*
 * workers.c - the background threads of `docket serve`: one fires timers,
 * one sends webhooks. Each has its own runner or store (neither is shared
 * between threads).
 *
 * Neither polls in a busy loop: the timer thread sleeps until the next
 * due timer, and both wake at once when a request changed something (a
 * command served here may have armed an earlier timer). A command run by
 * another process (the CLI, a second server) cannot signal this one, so
 * the timer thread also looks again after TIMER_NAP_MAX_MS at the latest:
 * such a timer fires at most that late.
 */
#include "api/api_int.h"

#include "util/error.h"
#include "util/time.h"
#include "web-hooks/hooks.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

/* The longest the timer thread sleeps without being woken (see above). */
#define TIMER_NAP_MAX_MS 60000L

static struct {
	const dk_serve_opts *opts;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	unsigned wakes;      /* bumped by dk_workers_wake */
	dk_dispatcher *disp; /* the hooks thread's, woken by dk_workers_wake */
	pthread_t timer, hooks;
	int have_timer, have_hooks;
} w = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Waits up to ms or until woken or stopped. Returns 1 when stopping. */
static int nap(long ms, unsigned *seen)
{
	struct timespec until;
	int stop;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w.lock);
	while (!w.stop && w.wakes == *seen)
		if (pthread_cond_timedwait(&w.cond, &w.lock, &until) != 0)
			break;
	*seen = w.wakes;
	stop = w.stop;
	pthread_mutex_unlock(&w.lock);
	return stop;
}

static int stopping(void)
{
	pthread_mutex_lock(&w.lock);
	int s = w.stop;
	pthread_mutex_unlock(&w.lock);
	return s;
}

void dk_workers_wake(void)
{
	pthread_mutex_lock(&w.lock);
	w.wakes++;
	pthread_cond_broadcast(&w.cond);
	/* A dispatcher busy with transfers is not napping on the condition:
	 * wake it where it waits, so a new event goes out at once. */
	if (w.disp)
		dk_dispatcher_wakeup(w.disp);
	pthread_mutex_unlock(&w.lock);
}

static void *timer_main(void *arg)
{
	dk_runner *r = NULL;
	dk_store *s = NULL;
	unsigned seen = 0;

	if (dk_runner_open(&r, w.opts->home) < 0 || dk_store_open(&s, w.opts->home) < 0) {
		fprintf(stderr, "docket serve: timers stopped: %s\n", dk_error_last());
		goto cleanup;
	}
	while (!stopping()) {
		int64_t next = 0, now = 0;
		long ms = TIMER_NAP_MAX_MS;
		size_t fired = 0;

		if (dk_store_timer_next_due(s, &next) < 0 || dk_time_now(&now) < 0) {
			fprintf(stderr, "docket serve: timers: %s\n", dk_error_last());
			ms = 1000; /* a failing store: try again soon, not in a loop */
		} else if (next && next > now) {
			/* Instants are whole seconds; the wall clock may be a
			 * fraction into the current one, so the nap ends at or
			 * just after the due second, never before it. */
			if (next - now < TIMER_NAP_MAX_MS / 1000)
				ms = (long)(next - now) * 1000;
		} else if (next) {
			/* due now; should the tick fail or another process be
			 * firing them, look again in a second */
			ms = 1000;
			if (dk_runner_tick(r, &fired) < 0)
				fprintf(stderr, "docket serve: tick: %s\n", dk_error_last());
			else if (fired)
				fprintf(stderr, "docket serve: %zu timer%s fired\n", fired,
				        fired == 1 ? "" : "s");
			if (fired) {
				dk_workers_wake();      /* timers may have queued webhooks */
				dk_writer_notes_wake(); /* and moved instances: their notes */
				continue;
			}
		}
		if (nap(ms, &seen))
			break;
	}
cleanup:
	dk_store_close(s);
	dk_runner_free(r);
	return arg;
}

static void *hooks_main(void *arg)
{
	dk_dispatch_opts o = DK_DISPATCH_OPTS_INIT;
	dk_dispatcher *d = NULL;
	dk_store *s = NULL;
	unsigned seen = 0;

	if (dk_dispatch_opts_env(&o) < 0 || dk_store_open(&s, w.opts->home) < 0 ||
	    dk_dispatcher_new(&d, s, &o) < 0) {
		fprintf(stderr, "docket serve: webhooks stopped: %s\n", dk_error_last());
		goto cleanup;
	}
	pthread_mutex_lock(&w.lock);
	w.disp = d;
	pthread_mutex_unlock(&w.lock);
	while (!stopping()) {
		int idle = 0;
		if (dk_dispatcher_step(d, 250, &idle) < 0) {
			fprintf(stderr, "docket serve: webhooks: %s\n", dk_error_last());
			idle = 1;
		}
		if (idle && nap(1000, &seen))
			break;
	}
cleanup:
	pthread_mutex_lock(&w.lock);
	w.disp = NULL;
	pthread_mutex_unlock(&w.lock);
	dk_dispatcher_free(d);
	dk_store_close(s);
	return arg;
}

int dk_workers_start(const dk_serve_opts *opts)
{
	pthread_condattr_t ca;

	w.opts = opts;
	w.stop = 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cond, &ca);
	pthread_condattr_destroy(&ca);
	if (opts->timers && pthread_create(&w.timer, NULL, timer_main, NULL) == 0)
		w.have_timer = 1;
	if (opts->hooks && pthread_create(&w.hooks, NULL, hooks_main, NULL) == 0)
		w.have_hooks = 1;
	if ((opts->timers && !w.have_timer) || (opts->hooks && !w.have_hooks)) {
		dk_workers_stop();
		return dk_error_set(DK_EINTERNAL, "cannot start the background threads");
	}
	return 0;
}

void dk_workers_stop(void)
{
	pthread_mutex_lock(&w.lock);
	w.stop = 1;
	pthread_cond_broadcast(&w.cond);
	pthread_mutex_unlock(&w.lock);
	if (w.have_timer)
		pthread_join(w.timer, NULL);
	if (w.have_hooks)
		pthread_join(w.hooks, NULL);
	w.have_timer = w.have_hooks = 0;
	pthread_cond_destroy(&w.cond);
}
