/*
 * calendar.c - local calendars of named time zones.
 *
 * Calendar rules ("the 8th of next month", "3 working days") are about the
 * wall clock of the org (or the flow when it names its own zone), not UTC.
 * The C library knows the zone rules (the system zoneinfo) but only through
 * the process-wide TZ variable. This file is the one spot of the engine
 * that is not pure: it switches TZ for the length of one localtime_r or
 * mktime call, under a mutex, and puts the previous value back. Every other
 * part of docket uses UTC functions (gmtime_r, timegm) that do not read TZ,
 * so the switch is invisible to them.
 */
#include "engine/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

/* Runs localtime_r (t != NULL) or mktime (tm in/out) in zone. */
static int64_t in_zone(const char *zone, const int64_t *t, struct tm *tm)
{
	int64_t r = 0;
	char *saved;
	const char *old;
	if (!zone || strcmp(zone, "UTC") == 0 || strcmp(zone, "Z") == 0) {
		if (t) {
			time_t tt = (time_t)*t;
			gmtime_r(&tt, tm);
		} else {
			r = (int64_t)timegm(tm);
		}
		return r;
	}
	pthread_mutex_lock(&tz_lock);
	old = getenv("TZ");
	saved = old ? dk_strdup(old) : NULL;
	setenv("TZ", zone, 1);
	tzset();
	if (t) {
		time_t tt = (time_t)*t;
		localtime_r(&tt, tm);
	} else {
		tm->tm_isdst = -1;
		r = (int64_t)mktime(tm);
	}
	if (saved)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	pthread_mutex_unlock(&tz_lock);
	free(saved);
	return r;
}

const char *dk__zone(const dk_run *run)
{
	if (run->flow && run->flow->timezone)
		return run->flow->timezone;
	if (run->env->org && run->env->org->timezone)
		return run->env->org->timezone;
	return "UTC";
}

void dk__local(struct tm *out, const char *zone, int64_t t)
{
	memset(out, 0, sizeof(*out));
	in_zone(zone, &t, out);
}

int64_t dk__from_local(const char *zone, struct tm *tm)
{
	return in_zone(zone, NULL, tm);
}

static int days_in_month(int y, int m) /* m 0..11 */
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m];
}

int64_t dk__add_local(const char *zone, int64_t t, const dk_duration *d)
{
	struct tm tm;
	if (d->years || d->months || d->days) {
		dk__local(&tm, zone, t);
		int months = tm.tm_mon + d->months + 12 * d->years;
		int y = tm.tm_year + 1900 + months / 12;
		int m = months % 12;
		if (m < 0) {
			m += 12;
			y--;
		}
		if (tm.tm_mday > days_in_month(y, m))
			tm.tm_mday = days_in_month(y, m);
		tm.tm_year = y - 1900;
		tm.tm_mon = m;
		tm.tm_mday += d->days;
		t = dk__from_local(zone, &tm);
	}
	return t + d->seconds;
}

/* Days since 1970-01-01 of a civil date. */
static int64_t civil_days(int y, int m, int d)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m;
	tm.tm_mday = d;
	return (int64_t)timegm(&tm) / 86400;
}

int64_t dk__days_between(const char *zone, int64_t a, int64_t b)
{
	struct tm ta, tb;
	dk__local(&ta, zone, a);
	dk__local(&tb, zone, b);
	return civil_days(tb.tm_year + 1900, tb.tm_mon, tb.tm_mday) -
	       civil_days(ta.tm_year + 1900, ta.tm_mon, ta.tm_mday);
}

int dk__is_holiday(const dk_run *run, const struct tm *local)
{
	char day[48];
	const dk_org *org = run->env->org;
	snprintf(day, sizeof(day), "%04d-%02d-%02d", local->tm_year + 1900, local->tm_mon + 1,
	         local->tm_mday);
	for (size_t i = 0; org && i < org->nholidays; i++)
		if (strcmp(org->holidays[i], day) == 0)
			return 1;
	return 0;
}

int dk__parse_time(int64_t *out, const char *zone, const char *s)
{
	int err = dk_time_parse(out, s);
	if (err < 0 || strlen(s) != 10)
		return err;
	/* a bare date is that day's local midnight, not UTC's */
	struct tm tm;
	time_t tt = (time_t)*out;
	gmtime_r(&tt, &tm);
	*out = dk__from_local(zone, &tm);
	return 0;
}
