/* test_util.c - instants, durations, buffers and error codes. */
#include "util/buf.h"
#include "util/error.h"
#include "util/time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

static void time_parse_forms(void **state)
{
	int64_t t;
	char s[DK_TIME_STRLEN];
	(void)state;
	assert_int_equal(dk_time_parse(&t, "2026-11-28T09:30:00Z"), 0);
	dk_time_format(s, t);
	assert_string_equal(s, "2026-11-28T09:30:00Z");
	assert_int_equal(dk_time_parse(&t, "2026-11-28T17:30:00+08:00"), 0);
	dk_time_format(s, t);
	assert_string_equal(s, "2026-11-28T09:30:00Z");
	assert_int_equal(dk_time_parse(&t, "2024-02-29"), 0);
	dk_time_format(s, t);
	assert_string_equal(s, "2024-02-29T00:00:00Z");
}

static void time_parse_rejects(void **state)
{
	int64_t t;
	(void)state;
	assert_int_equal(dk_time_parse(&t, "2025-02-29"), DK_EINVALID);
	assert_int_equal(dk_time_parse(&t, "2026-13-01"), DK_EINVALID);
	assert_int_equal(dk_time_parse(&t, "2026-11-28T25:00"), DK_EINVALID);
	assert_int_equal(dk_time_parse(&t, "yesterday"), DK_EINVALID);
	assert_int_equal(dk_time_parse(&t, "2026-11-28Tx"), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "ISO 8601"));
}

static void duration_parse(void **state)
{
	dk_duration d;
	(void)state;
	assert_int_equal(dk_duration_parse(&d, "P3D"), 0);
	assert_int_equal(d.days, 3);
	assert_int_equal(dk_duration_parse(&d, "PT1H30M"), 0);
	assert_int_equal(d.seconds, 5400);
	assert_int_equal(dk_duration_parse(&d, "P1Y2M10DT2H"), 0);
	assert_int_equal(d.years, 1);
	assert_int_equal(d.months, 2);
	assert_int_equal(d.days, 10);
	assert_int_equal(d.seconds, 7200);
	assert_int_equal(dk_duration_parse(&d, "P2W"), 0);
	assert_int_equal(d.days, 14);
	assert_int_equal(dk_duration_parse(&d, "P"), DK_EINVALID);
	assert_int_equal(dk_duration_parse(&d, "PT"), DK_EINVALID);
	assert_int_equal(dk_duration_parse(&d, "3D"), DK_EINVALID);
	assert_int_equal(dk_duration_parse(&d, "P1H"), DK_EINVALID);
	assert_int_equal(dk_duration_parse(&d, "P-1D"), DK_EINVALID);
}

static void duration_add_clamps_month_end(void **state)
{
	int64_t t;
	dk_duration d;
	char s[DK_TIME_STRLEN];
	(void)state;
	dk_time_parse(&t, "2024-01-31T10:00:00Z");
	dk_duration_parse(&d, "P1M");
	dk_time_format(s, dk_duration_add(t, &d));
	assert_string_equal(s, "2024-02-29T10:00:00Z");
	dk_time_parse(&t, "2026-12-30T00:00:00Z");
	dk_duration_parse(&d, "P3D");
	dk_time_format(s, dk_duration_add(t, &d));
	assert_string_equal(s, "2027-01-02T00:00:00Z");
}

/* dk_time_format writes its digits itself; it must say what gmtime and
 * strftime say, from before 1000 to past 9999, at every second of a day
 * and on every day of several 400-year cycles. */
static void time_format_matches_strftime(void **state)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	(void)state;
	for (int i = 0; i < 200000; i++) {
		char got[DK_TIME_STRLEN], want[DK_TIME_STRLEN];
		int64_t t;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (i < 86400)
			t = 1764316800 + i; /* every second of 2025-11-28 */
		else if (i % 2)
			t = (int64_t)(x % 40000000000ull) - 20000000000ll; /* 1336..2603 */
		else
			t = (int64_t)(x % 600000000000ull) - 300000000000ll; /* 7476 BC..11476 */
		time_t tt = (time_t)t;
		struct tm tm;
		gmtime_r(&tt, &tm);
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
		dk_time_format(got, t);
		if (strcmp(got, want) != 0)
			fail_msg("%lld: %s, want %s", (long long)t, got, want);
		int64_t y;
		int m, d;
		dk_civil_from_days(t >= 0 ? t / 86400 : -((-t + 86399) / 86400), &y, &m, &d);
		assert_int_equal(dk_days_from_civil(y, m, d) * 86400,
		                 t - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec));
	}
}

static void buf_grows(void **state)
{
	dk_buf b = DK_BUF_INIT;
	(void)state;
	assert_string_equal(dk_buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		dk_buf_printf(&b, "%d,", i);
	assert_int_equal(strncmp(b.ptr, "0,1,2,", 6), 0);
	assert_int_equal(b.ptr[b.len], '\0');
	char *p = dk_buf_detach(&b);
	assert_null(b.ptr);
	free(p);
}

static void error_codes_map_to_exit_status(void **state)
{
	(void)state;
	assert_int_equal(dk_error_exit_status(DK_OK), 0);
	assert_int_equal(dk_error_exit_status(DK_EINVALID), 1);
	assert_int_equal(dk_error_exit_status(DK_EUSAGE), 2);
	assert_int_equal(dk_error_exit_status(DK_ENOTFOUND), 3);
	assert_int_equal(dk_error_exit_status(DK_EFORBIDDEN), 4);
	assert_int_equal(dk_error_exit_status(DK_ECONFLICT), 5);
	assert_int_equal(dk_error_exit_status(DK_EPRECOND), 6);
	assert_int_equal(dk_error_exit_status(DK_EINTERNAL), 1);
	assert_int_equal(dk_error_set(DK_ECONFLICT, "x %d", 5), DK_ECONFLICT);
	assert_string_equal(dk_error_last(), "x 5");
	/* wrapping the last message in a new one, as callers do */
	dk_error_set(DK_EINVALID, "premature end of input");
	dk_error_set(DK_EINTERNAL, "instance 7 has a damaged snapshot: %s; restore it",
	             dk_error_last());
	assert_string_equal(
	    dk_error_last(),
	    "instance 7 has a damaged snapshot: premature end of input; restore it");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(time_parse_forms),
	    cmocka_unit_test(time_parse_rejects),
	    cmocka_unit_test(duration_parse),
	    cmocka_unit_test(duration_add_clamps_month_end),
	    cmocka_unit_test(time_format_matches_strftime),
	    cmocka_unit_test(buf_grows),
	    cmocka_unit_test(error_codes_map_to_exit_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
