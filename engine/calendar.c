/*
 * calendar.c - local calendars of named time zones.
 *
 * Calendar rules ("the 8th of next month", "3 working days") are about the
 * wall clock of the org (or the flow when it names its own zone), not UTC.
 * The C library knows zone rules only through the process-wide TZ
 * variable, which cannot be switched safely while other threads run (serve
 * does), so this file reads the system's compiled zone files itself
 * (TZif, RFC 8536: a sorted table of transition instants, each naming a
 * UTC offset) and keeps each zone it has read for the life of the process.
 * Reading a zone file once is the only I/O of the engine; after that every
 * conversion is a binary search, pure and thread-safe.
 *
 * Past the table's last transition the last offset holds. Debian ships
 * "fat" files with transitions up to 2037, so daylight-saving zones are
 * right until then. An unknown zone name counts as UTC (the org and flow
 * loaders check names).
 */
#include "engine/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	char *name;
	int64_t *at;  /* transition instants, ascending */
	int32_t *off; /* offset in force from at[i] on */
	size_t n;
	int32_t before; /* offset before the first transition */
} tz_zone;

static pthread_mutex_t zones_lock = PTHREAD_MUTEX_INITIALIZER;
static tz_zone **zones;
static size_t nzones;

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Zone names are paths under the zoneinfo directory: letters, digits and
 * "_+-/", no "..", not absolute. */
static int name_ok(const char *name)
{
	if (!name || !*name || name[0] == '/' || strstr(name, "..") || strlen(name) > 100)
		return 0;
	for (const char *p = name; *p; p++)
		if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') ||
		      ('0' <= *p && *p <= '9') || strchr("_+-/", *p)))
			return 0;
	return 1;
}

/* Parses a TZif file's data block (version 1 with 4-byte times, else the
 * second block with 8-byte times). Returns 0 or -1 when malformed. */
static int parse_tzif(tz_zone *z, const unsigned char *d, size_t len)
{
	size_t pos = 0, tsize = 4;
	uint32_t c[6];
	if (len < 44 || memcmp(d, "TZif", 4) != 0)
		return -1;
	for (int block = 0; block < 2; block++) {
		if (pos + 44 > len || memcmp(d + pos, "TZif", 4) != 0)
			return -1;
		for (size_t i = 0; i < 6; i++)
			c[i] = be32(d + pos + 20 + 4 * i);
		/* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt; bounded
		 * before they are multiplied */
		size_t ut = c[0], st = c[1], lp = c[2], tc = c[3], ty = c[4], ch = c[5];
		if (tc > 100000 || ty == 0 || ty > 256 || ch > 65536 || lp > 100000 || st > 256 ||
		    ut > 256)
			return -1;
		size_t body = tc * tsize + tc + ty * 6 + ch + lp * (tsize + 4) + st + ut;
		if (pos + 44 + body > len)
			return -1;
		if (block == 0 && d[4] >= '2') { /* skip to the 64-bit block */
			pos += 44 + body;
			tsize = 8;
			continue;
		}
		const unsigned char *times = d + pos + 44;
		const unsigned char *idx = times + tc * tsize;
		const unsigned char *types = idx + tc;
		z->n = tc;
		z->at = dk_calloc(z->n + 1, sizeof(*z->at));
		z->off = dk_calloc(z->n + 1, sizeof(*z->off));
		for (size_t i = 0; i < z->n; i++) {
			if (idx[i] >= ty)
				return -1;
			z->at[i] = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
			z->off[i] = (int32_t)be32(types + (size_t)6 * idx[i]);
		}
		z->before = (int32_t)be32(types); /* type 0, RFC 8536 3.2 */
		return 0;
	}
	return -1;
}

/* The zone called name, read on first use; NULL means UTC. A zone is
 * never changed or freed once published, so callers read it unlocked. */
static const tz_zone *zone_get(const char *name)
{
	/* a deadline takes several conversions in the same zone: each thread
	 * remembers the zone it used last, without the lock (zones live for
	 * the process and their names passed name_ok when first read) */
	static _Thread_local const tz_zone *last;
	tz_zone *found = NULL;
	if (!name || strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
		return NULL;
	if (last && strcmp(last->name, name) == 0)
		return last;
	if (!name_ok(name))
		return NULL;
	pthread_mutex_lock(&zones_lock);
	for (size_t i = 0; i < nzones && !found; i++)
		if (strcmp(zones[i]->name, name) == 0)
			found = zones[i];
	if (!found) {
		const char *dir = getenv("TZDIR");
		char path[512];
		size_t cap = (size_t)256 * 1024, len = 0;
		unsigned char *data = dk_malloc(cap);
		FILE *f;
		found = dk_calloc(1, sizeof(*found));
		snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo",
		         name);
		if ((f = fopen(path, "rb")) != NULL) {
			len = fread(data, 1, cap, f);
			fclose(f);
		}
		if (len == 0 || parse_tzif(found, data, len) < 0) {
			/* remembered as UTC, so a bad name costs one lookup */
			free(found->at);
			free(found->off);
			memset(found, 0, sizeof(*found));
		}
		free(data);
		found->name = dk_strdup(name);
		zones = dk_realloc(zones, (nzones + 1) * sizeof(tz_zone *));
		zones[nzones++] = found;
	}
	pthread_mutex_unlock(&zones_lock);
	last = found;
	return found;
}

/* The UTC offset in force in zone z (NULL: UTC) at instant t. */
static int32_t offset_in(const tz_zone *z, int64_t t)
{
	size_t lo = 0, hi;
	if (!z)
		return 0;
	if (z->n == 0 || t < z->at[0])
		return z->before;
	hi = z->n; /* find the last at[lo] <= t */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (z->at[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return z->off[lo];
}

static int32_t offset_at(const char *name, int64_t t)
{
	return offset_in(zone_get(name), t);
}

const char *dk__env_zone(const dk_engine_env *env)
{
	if (env->flow && env->flow->timezone)
		return env->flow->timezone;
	if (env->org && env->org->timezone)
		return env->org->timezone;
	return "UTC";
}

const char *dk__zone(const dk_run *run)
{
	if (run->flow && run->flow->timezone)
		return run->flow->timezone;
	return dk__env_zone(run->env);
}

void dk__local(struct tm *out, const char *zone, int64_t t)
{
	int32_t off = offset_at(zone, t);
	time_t local = (time_t)(t + off);
	memset(out, 0, sizeof(*out));
	gmtime_r(&local, out);
	out->tm_gmtoff = off;
}

/* A wall-clock time that occurs twice (clocks set back) is the earlier
 * instant; one that never occurs (clocks set forward) is read with the
 * offset before the change, so it lands just after the gap. Offsets are
 * under a day, so a day either side of the wall time brackets it. wall is
 * the local time counted as if it were UTC. */
static int64_t from_wall(const tz_zone *z, int64_t wall)
{
	int32_t o1 = offset_in(z, wall - 86400), o2 = offset_in(z, wall + 86400);
	int64_t t1 = wall - o1, t2 = wall - o2;
	int ok1 = offset_in(z, t1) == o1, ok2 = offset_in(z, t2) == o2;
	if (ok1 && ok2)
		return t1 < t2 ? t1 : t2;
	return ok2 && !ok1 ? t2 : t1;
}

int64_t dk__from_local(const char *zone, struct tm *tm)
{
	int64_t wall = (int64_t)timegm(tm); /* also normalises tm */
	return from_wall(zone_get(zone), wall);
}

static int days_in_month(int y, int m) /* m 0..11 */
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m];
}

/* As dk__local, then the years, months and days added to the broken-down
 * time and dk__from_local; a deadline or reminder takes one per state
 * entry, so the calendar is counted here without gmtime and timegm. */
int64_t dk__add_local(const char *zone, int64_t t, const dk_duration *d)
{
	if (d->years || d->months || d->days) {
		const tz_zone *z = zone_get(zone);
		int64_t local = t + offset_in(z, t);
		int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
		int64_t sod = local - days * 86400, y64;
		int mon1, mday;
		dk_civil_from_days(days, &y64, &mon1, &mday);
		int months = (mon1 - 1) + d->months + 12 * d->years;
		int y = (int)y64 + months / 12;
		int m = months % 12;
		if (m < 0) {
			m += 12;
			y--;
		}
		if (mday > days_in_month(y, m))
			mday = days_in_month(y, m);
		int64_t wall = (dk_days_from_civil(y, m + 1, 1) + mday - 1 + d->days) * 86400 + sod;
		t = from_wall(z, wall);
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
