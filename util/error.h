/*
 * error.h - docket's single error vocabulary.
 *
 * Every fallible function returns an int: 0 on success or a negative dk_err.
 * The values map one-to-one onto the exit statuses of the docket command
 * (see dk_error_exit_status), and a per-thread message says what went wrong
 * and what to do about it.
 */
#ifndef DK_UTIL_ERROR_H
#define DK_UTIL_ERROR_H

#include <stdarg.h>

typedef enum {
	DK_OK = 0,
	DK_EINVALID = -1,   /* invalid input or internal error: exit 1 */
	DK_EUSAGE = -2,     /* bad command line: exit 2 */
	DK_ENOTFOUND = -3,  /* no such flow, instance, user...: exit 3 */
	DK_EFORBIDDEN = -4, /* the actor may not do this: exit 4 */
	DK_ECONFLICT = -5,  /* stale version, transition not available now: exit 5 */
	DK_EPRECOND = -6,   /* guard false, evidence or comment missing: exit 6 */
	DK_EINTERNAL = -7,  /* I/O, library or allocation failure: exit 1 */
} dk_err;

/* Records a message for this thread and returns code, so callers can write
 * `return dk_error_set(DK_ENOTFOUND, "no flow '%s'", id);`. */
int dk_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int dk_error_vset(int code, const char *fmt, va_list ap);

/* The last message set on this thread, or "" when none. Lent, not owned. */
const char *dk_error_last(void);

/* The code passed with the last message (DK_OK when none). */
int dk_error_code(void);

void dk_error_clear(void);

/* The exit status of the docket command for a dk_err value. */
int dk_error_exit_status(int code);

/* A short lower-case name of a code: "conflict", "not found", ... */
const char *dk_error_name(int code);

#endif
