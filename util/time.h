/*
 * time.h - instants and ISO 8601 durations.
 *
 * docket stores every instant as seconds since the epoch, UTC (int64_t),
 * and prints them as "YYYY-MM-DDTHH:MM:SSZ". The clock is DOCKET_NOW when
 * set, so tests and demos control time.
 */
#ifndef DK_UTIL_TIME_H
#define DK_UTIL_TIME_H

#include <stdint.h>

/* Calendar parts are kept apart from the fixed part: P1M added to Jan 31
 * depends on the calendar, PT36H does not. */
typedef struct {
	int years, months, days;
	int64_t seconds;
} dk_duration;

#define DK_TIME_STRLEN 32

/* Parses "2026-11-28", "2026-11-28T09:30", "2026-11-28T09:30:00Z" or with a
 * "+08:00" offset (no offset means UTC). Returns 0 or DK_EINVALID. */
int dk_time_parse(int64_t *out, const char *s);

/* Writes "YYYY-MM-DDTHH:MM:SSZ" into out (DK_TIME_STRLEN bytes). */
void dk_time_format(char *out, int64_t t);

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12,
 * d may run past the month: it counts on), and back: as timegm and gmtime
 * count them, without a broken-down struct. */
int64_t dk_days_from_civil(int64_t y, int m, int d);
void dk_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* The current instant: DOCKET_NOW when set, the system clock otherwise.
 * Returns DK_EINVALID, with a message, when DOCKET_NOW does not parse. */
int dk_time_now(int64_t *out);

/* Parses "P3D", "PT1H30M", "P1Y2M10DT2H", "P2W". Returns 0 or DK_EINVALID
 * with a message naming the bad text. A zero-length duration ("P", "PT")
 * is invalid. */
int dk_duration_parse(dk_duration *out, const char *s);

/* t + d, with the calendar parts applied in UTC and the day of month
 * clamped (Jan 31 + P1M = Feb 28/29). */
int64_t dk_duration_add(int64_t t, const dk_duration *d);

#endif
