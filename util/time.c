/* time.c - ISO 8601 instants and durations, in UTC. */
#include "util/time.h"

#include "util/error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

int dk_time_parse(int64_t *out, const char *s)
{
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, se = 0, off = 0;
	if (!s)
		goto bad;
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		goto bad;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		goto bad;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			goto bad;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &se))
				goto bad;
			if (*p == '.') /* fractional seconds are dropped */
				for (p++; isdigit((unsigned char)*p); p++)
					;
		}
		if (h > 23 || mi > 59 || se > 60)
			goto bad;
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
			if (digits(&p, 2, &oh))
				goto bad;
			if (*p == ':')
				p++;
			if (*p && digits(&p, 2, &om))
				goto bad;
			off = sign * (oh * 3600 + om * 60);
		}
	}
	if (*p)
		goto bad;
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*out = (int64_t)timegm(&tm) - off;
	return 0;
bad:
	return dk_error_set(DK_EINVALID,
	                    "'%s' is not an ISO 8601 date or date-time; "
	                    "write it like 2026-11-28 or 2026-11-28T09:30:00+08:00",
	                    s ? s : "");
}

/* H. Hinnant's algorithms (chrono-Compatible Low-Level Date Algorithms). */
int64_t dk_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void dk_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static char *two(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

void dk_time_format(char *out, int64_t t)
{
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400), y;
	int64_t sod = t - days * 86400;
	int m, d;
	dk_civil_from_days(days, &y, &m, &d);
	if (y < 1000 || y > 9999) { /* strftime's own widths and signs */
		time_t tt = (time_t)t;
		struct tm tm;
		gmtime_r(&tt, &tm);
		strftime(out, DK_TIME_STRLEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
		return;
	}
	/* the usual case, without gmtime's and strftime's locale and zone
	 * work: every event and deadline writes one */
	char *p = two(two(out, (int)(y / 100)), (int)(y % 100));
	*p++ = '-';
	p = two(p, m);
	*p++ = '-';
	p = two(p, d);
	*p++ = 'T';
	p = two(p, (int)(sod / 3600));
	*p++ = ':';
	p = two(p, (int)(sod / 60 % 60));
	*p++ = ':';
	p = two(p, (int)(sod % 60));
	*p++ = 'Z';
	*p = '\0';
}

int dk_time_now(int64_t *out)
{
	const char *env = getenv("DOCKET_NOW");
	if (env && *env) {
		if (dk_time_parse(out, env) < 0)
			return dk_error_set(DK_EINVALID,
			                    "DOCKET_NOW='%s' is not an ISO 8601 date-time; "
			                    "set it like 2026-11-28T09:30:00Z or unset it",
			                    env);
		return 0;
	}
	*out = (int64_t)time(NULL);
	return 0;
}

int dk_duration_parse(dk_duration *out, const char *s)
{
	const char *p = s;
	int in_time = 0, any = 0;
	memset(out, 0, sizeof(*out));
	if (!s || *p++ != 'P')
		goto bad;
	while (*p) {
		if (*p == 'T') {
			if (in_time)
				goto bad;
			in_time = 1;
			p++;
			continue;
		}
		if (!isdigit((unsigned char)*p))
			goto bad;
		long long v = 0;
		while (isdigit((unsigned char)*p)) {
			v = v * 10 + (*p++ - '0');
			if (v > 100000000LL)
				goto bad;
		}
		char unit = *p++;
		any = 1;
		if (!in_time) {
			switch (unit) {
			case 'Y': out->years += (int)v; break;
			case 'M': out->months += (int)v; break;
			case 'W': out->days += (int)v * 7; break;
			case 'D': out->days += (int)v; break;
			default: goto bad;
			}
		} else {
			switch (unit) {
			case 'H': out->seconds += v * 3600; break;
			case 'M': out->seconds += v * 60; break;
			case 'S': out->seconds += v; break;
			default: goto bad;
			}
		}
	}
	if (!any)
		goto bad;
	return 0;
bad:
	return dk_error_set(DK_EINVALID,
	                    "'%s' is not an ISO 8601 duration; write it like "
	                    "P3D (3 days), PT4H (4 hours) or P1M (1 month)",
	                    s ? s : "");
}

int64_t dk_duration_add(int64_t t, const dk_duration *d)
{
	if (d->years || d->months || d->days) {
		time_t tt = (time_t)t;
		struct tm tm;
		gmtime_r(&tt, &tm);
		int months = tm.tm_mon + d->months + 12 * d->years;
		int y = tm.tm_year + 1900 + months / 12;
		int m = months % 12;
		if (m < 0) {
			m += 12;
			y--;
		}
		int dim = days_in_month(y, m + 1);
		if (tm.tm_mday > dim)
			tm.tm_mday = dim;
		tm.tm_year = y - 1900;
		tm.tm_mon = m;
		tm.tm_mday += d->days;
		t = (int64_t)timegm(&tm);
	}
	return t + d->seconds;
}
