/*
 * retry.c - when a failed delivery is tried again, and when it is dead.
 *
 * The schedule is the backoff: each entry is the delay before one attempt,
 * growing roughly exponentially (immediately, 5 s, 5 min, 30 min, 2 h, 5 h,
 * 10 h, 10 h, about 28 h in all). Jitter only shortens a delay, so a test or
 * an operator that waits out the schedule's delay knows the retry is due;
 * Retry-After only lengthens one, so a receiver asking for a pause gets it.
 */
#include "web-hooks/hooks.h"

#include "util/error.h"
#include "util/time.h"

#include <curl/curl.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void dk_hook_schedule_default(dk_hook_schedule *out)
{
	static const int64_t d[] = {0, 5, 300, 1800, 7200, 18000, 36000, 36000};
	memset(out, 0, sizeof(*out));
	out->n = sizeof(d) / sizeof(d[0]);
	memcpy(out->delays, d, sizeof(d));
}

/* One entry: plain seconds or an ISO 8601 duration without years or
 * months (their length depends on the calendar). */
static int parse_delay(int64_t *out, const char *s)
{
	if (isdigit((unsigned char)*s)) {
		char *end = NULL;
		long long v = strtoll(s, &end, 10);
		if (*end || v < 0)
			return -1;
		*out = v;
		return 0;
	}
	dk_duration d;
	if (dk_duration_parse(&d, s) < 0 || d.years || d.months)
		return -1;
	*out = (int64_t)d.days * 86400 + d.seconds;
	return 0;
}

int dk_hook_schedule_parse(dk_hook_schedule *out, const char *text)
{
	dk_hook_schedule s;
	const char *p = text ? text : "";

	memset(&s, 0, sizeof(s));
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ' ' && *e != ',')
			e++;
		if (e == p)
			break;
		char word[64];
		size_t n = (size_t)(e - p);
		if (n >= sizeof(word) || s.n == DK_HOOK_SCHEDULE_MAX)
			return dk_error_set(DK_EINVALID,
			                    "retry schedule '%s' is too long: at most %d delays",
			                    text, DK_HOOK_SCHEDULE_MAX);
		memcpy(word, p, n);
		word[n] = '\0';
		if (parse_delay(&s.delays[s.n], word) < 0)
			return dk_error_set(
			    DK_EINVALID,
			    "retry schedule entry '%s' is not a delay; write seconds "
			    "(\"5\") or an ISO 8601 duration (\"PT5M\", \"P1D\")",
			    word);
		s.n++;
		p = e;
	}
	if (s.n == 0)
		return dk_error_set(DK_EINVALID, "the retry schedule is empty; give at least one "
		                                 "delay, e.g. \"0,5,PT5M\"");
	*out = s;
	return 0;
}

int64_t dk_hook_retry_delay(const dk_hook_schedule *s, int attempts, int64_t retry_after,
                            double jitter)
{
	if (attempts < 0)
		attempts = 0;
	if ((size_t)attempts >= s->n)
		return -1;
	int64_t d = s->delays[attempts];
	if (jitter > 0 && jitter < 1)
		d -= (int64_t)((double)d * 0.2 * jitter);
	/* A receiver cannot park a delivery for longer than a day. */
	if (retry_after > DK_HOOK_RETRY_AFTER_MAX)
		retry_after = DK_HOOK_RETRY_AFTER_MAX;
	return retry_after > d ? retry_after : d;
}

int dk_hook_retry_after_parse(int64_t *out, const char *value, int64_t now)
{
	const char *p = value ? value : "";
	while (*p == ' ' || *p == '\t')
		p++;
	if (isdigit((unsigned char)*p)) {
		char *end = NULL;
		long long v = strtoll(p, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end == '\0') {
			*out = v;
			return 0;
		}
	}
	/* An HTTP-date (RFC 9110: IMF-fixdate, RFC 850 or asctime); libcurl
	 * parses all three. */
	time_t t = curl_getdate(p, NULL);
	if (t == (time_t)-1)
		return dk_error_set(DK_EINVALID,
		                    "Retry-After '%s' is neither seconds nor an HTTP date", p);
	*out = (int64_t)t > now ? (int64_t)t - now : 0;
	return 0;
}
